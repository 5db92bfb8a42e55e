# Minimal deployment: a new VPC over 3 zones, plain HTTP (evaluation only: no certificate),
# one address whitelisted as operator and consumer: the UI and admin API on port 8443
# (admin_url), the consumer routes on port 80 (public_url). Everything else keeps its
# default.
#
#   terraform init && terraform apply -var region=eu-west-1 -var operator_cidr=203.0.113.7/32
#
# infra/ configures the AWS provider itself (region, default tags), so this example
# declares none.

variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"
}

variable "operator_cidr" {
  description = "The one address (CIDR) allowed to reach the UI, the admin API and the streams."
  type        = string
  default     = "203.0.113.7/32"
}

module "tumbleweed" {
  source = "../../infra"

  region         = var.region
  name_prefix    = "tw-min"
  operator_cidrs = [var.operator_cidr]
  consumer_cidrs = [var.operator_cidr]

  # Evaluation: HTTP on ports 80 and 8443 and a load balancer terraform destroy may delete.
  certificate_arn        = null
  lb_deletion_protection = false
  single_nat_gateway     = true
}

output "public_url" {
  description = "Stable public URL of the sink's consumer routes (SSE streams, acks, tickets)."
  value       = module.tumbleweed.public_url
}

output "admin_url" {
  description = "URL of the UI and the admin API (operator prefix list only)."
  value       = module.tumbleweed.admin_url
}

output "ecr_repository_url" {
  description = "Push the sink image here (tumbleweed image push) before the first full apply."
  value       = module.tumbleweed.ecr_repository_url
}
