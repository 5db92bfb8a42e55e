# Deployment into an existing VPC: no VPC, subnets, NAT gateways or flow logs are created.
# The private subnets (3 zones, one subnet each) need outbound access to pull images and
# reach AWS APIs (NAT, or VPC endpoints plus an image mirror); the public subnets hold the
# load balancer.
#
# infra/ configures the AWS provider itself (region, default tags), so this example
# declares none.

variable "region" {
  description = "AWS region of the VPC."
  type        = string
  default     = "eu-central-1"
}

variable "vpc_id" {
  description = "The existing VPC."
  type        = string
  default     = "vpc-0123456789abcdef0"
}

variable "private_subnet_ids" {
  description = "Private subnets of the existing VPC, one in each of 3 availability zones."
  type        = list(string)
  default     = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2", "subnet-0ccccccccccccccc3"]
}

variable "public_subnet_ids" {
  description = "Public subnets of the existing VPC for the load balancer (2 zones or more)."
  type        = list(string)
  default     = ["subnet-0ddddddddddddddd4", "subnet-0eeeeeeeeeeeeeee5", "subnet-0fffffffffffffff6"]
}

variable "certificate_arn" {
  description = "ACM certificate for HTTPS on 443 (same region)."
  type        = string
  default     = "arn:aws:acm:eu-central-1:111122223333:certificate/00000000-0000-0000-0000-000000000000"
}

module "tumbleweed" {
  source = "../../infra"

  region      = var.region
  name_prefix = "tw-shared"

  vpc_id             = var.vpc_id
  private_subnet_ids = var.private_subnet_ids
  public_subnet_ids  = var.public_subnet_ids

  certificate_arn = var.certificate_arn
  operator_cidrs  = ["203.0.113.10/32"]
  consumer_cidrs  = ["198.51.100.0/24"]

  source_database_cidrs = ["10.50.0.0/24"]

  # One secret per source database: TUMBLEWEED_SECRET_ORDERS and TUMBLEWEED_SECRET_BILLING in
  # the sink and Connect (a source says "password_secret": "env:TUMBLEWEED_SECRET_ORDERS").
  # The billing secret is encrypted with another team's key.
  source_db_password_secrets = {
    ORDERS  = "arn:aws:secretsmanager:eu-central-1:111122223333:secret:tw-shared/orders-db-password-AbCdEf"
    BILLING = "arn:aws:secretsmanager:eu-central-1:111122223333:secret:tw-shared/billing-db-password-GhIjKl"
  }
  source_db_password_kms_key_arns = ["arn:aws:kms:eu-central-1:111122223333:key/11111111-2222-3333-4444-555555555555"]

  # The private subnets reach the internet through the VPC's own NAT: the Connect workers
  # download the Amazon RDS CA bundle at start (connect_rds_ca_bundle_url).

  # 2 to 6 sink tasks on average CPU (starts with 2).
  sink_min_count          = 2
  sink_max_count          = 6
  sink_target_cpu_percent = 50

  # The platform team's on-call topic; a tighter WAL limit for a small source disk.
  alarm_actions                      = ["arn:aws:sns:eu-central-1:111122223333:platform-on-call"]
  alarm_retained_wal_bytes_threshold = 5368709120
}

output "public_url" {
  description = "Stable public URL of the sink's consumer routes (SSE streams, acks, tickets)."
  value       = module.tumbleweed.public_url
}

output "admin_url" {
  description = "URL of the UI and the admin API (operator prefix list only)."
  value       = module.tumbleweed.admin_url
}

output "alarm_names" {
  description = "The deployment's CloudWatch alarms."
  value       = module.tumbleweed.alarm_names
}

output "kafka_node_task_definition_arns" {
  description = "Revisions `tumbleweed kafka roll` moves the Kafka nodes to."
  value       = module.tumbleweed.kafka_node_task_definition_arns
}
