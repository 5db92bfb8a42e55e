# Deployment next to an existing Amazon MSK cluster in an existing VPC: no Kafka services,
# EFS file system or Kafka Cloud Map names are created; Connect and the sink use the MSK
# brokers. The sink and Connect speak PLAINTEXT to Kafka, so the cluster must allow
# plaintext client traffic inside the VPC (MSK: port 9092), and its security group must
# admit the kafka_client_security_group_ids output on 9092 (add that rule to the MSK
# group after the first apply, or before it if you create the groups yourself).
#
# infra/ configures the AWS provider itself (region, default tags), so this example
# declares none.

variable "region" {
  description = "AWS region of the VPC and the MSK cluster."
  type        = string
  default     = "eu-central-1"
}

variable "vpc_id" {
  description = "The VPC of the MSK cluster."
  type        = string
  default     = "vpc-0123456789abcdef0"
}

variable "private_subnet_ids" {
  description = "Private subnets of that VPC, one in each of 3 availability zones."
  type        = list(string)
  default     = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2", "subnet-0ccccccccccccccc3"]
}

variable "public_subnet_ids" {
  description = "Public subnets of that VPC for the load balancer (2 zones or more)."
  type        = list(string)
  default     = ["subnet-0ddddddddddddddd4", "subnet-0eeeeeeeeeeeeeee5"]
}

variable "msk_bootstrap_brokers" {
  description = "The MSK cluster's plaintext bootstrap string (aws kafka get-bootstrap-brokers: BootstrapBrokerString)."
  type        = string
  default     = "b-1.tw.abc123.c2.kafka.eu-central-1.amazonaws.com:9092,b-2.tw.abc123.c2.kafka.eu-central-1.amazonaws.com:9092,b-3.tw.abc123.c2.kafka.eu-central-1.amazonaws.com:9092"
}

variable "msk_security_group_id" {
  description = "Security group of the MSK brokers."
  type        = string
  default     = "sg-0123456789abcdef0"
}

module "tumbleweed" {
  source = "../../infra"

  region      = var.region
  name_prefix = "tw-msk"

  vpc_id             = var.vpc_id
  private_subnet_ids = var.private_subnet_ids
  public_subnet_ids  = var.public_subnet_ids

  certificate_arn = "arn:aws:acm:eu-central-1:111122223333:certificate/00000000-0000-0000-0000-000000000000"
  operator_cidrs  = ["203.0.113.10/32"]
  consumer_cidrs  = ["198.51.100.0/24"]

  source_database_cidrs = ["10.50.0.0/24"]

  existing_kafka_bootstrap_servers  = var.msk_bootstrap_brokers
  existing_kafka_security_group_id  = var.msk_security_group_id
  existing_kafka_replication_factor = 3
}

output "public_url" {
  description = "Stable public URL of the sink's consumer routes (SSE streams, acks, tickets)."
  value       = module.tumbleweed.public_url
}

output "admin_url" {
  description = "URL of the UI and the admin API (operator prefix list only)."
  value       = module.tumbleweed.admin_url
}

output "kafka_client_security_group_ids" {
  description = "Admit these on port 9092 in the MSK cluster's security group."
  value       = module.tumbleweed.kafka_client_security_group_ids
}
