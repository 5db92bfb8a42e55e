# The helper CLI reads these names; keep them stable.

output "public_url" {
  description = "Stable public URL of the sink (UI, admin API, SSE streams)."
  value       = module.sink.public_url
}

output "operator_prefix_list_id" {
  description = "ID of the operators' managed prefix list (edit entries with the helper CLI)."
  value       = module.security.operator_prefix_list_id
}

output "consumer_prefix_list_id" {
  description = "ID of the consumers' managed prefix list (edit entries with the helper CLI)."
  value       = module.security.consumer_prefix_list_id
}

output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = module.cluster.cluster_name
}

output "sink_service_name" {
  description = "Name of the sink ECS service."
  value       = module.sink.service_name
}

output "connect_service_name" {
  description = "Name of the Kafka Connect ECS service."
  value       = module.connect.service_name
}

output "kafka_broker_service_names" {
  description = "Names of the Kafka broker ECS services (one task each)."
  value       = module.kafka.broker_service_names
}

output "kafka_controller_service_names" {
  description = "Names of the KRaft controller ECS services (one task each)."
  value       = module.kafka.controller_service_names
}

output "ecr_repository_url" {
  description = "ECR repository to push the sink image to."
  value       = module.sink.ecr_repository_url
}

output "sink_security_group_id" {
  description = "Security group of the sink tasks."
  value       = module.security.sink_security_group_id
}

output "load_balancer_security_group_id" {
  description = "Security group of the public load balancer (its ingress rules reference the two prefix lists)."
  value       = module.security.load_balancer_security_group_id
}

output "admin_token_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the sink's admin token."
  value       = module.sink.admin_token_secret_arn
}

output "vpc_id" {
  description = "ID of the VPC."
  value       = local.vpc_id
}

output "kafka_bootstrap_servers" {
  description = "Kafka bootstrap string inside the VPC."
  value       = module.kafka.bootstrap_servers
}

output "connect_url" {
  description = "Kafka Connect REST URL inside the VPC (reachable from the sink only)."
  value       = module.connect.rest_url
}

output "nat_public_ips" {
  description = "Source addresses of outbound traffic (allow these at the source database); empty with an existing VPC (its own NAT addresses apply)."
  value       = local.create_vpc ? module.network[0].nat_public_ips : []
}

output "kafka_node_task_definition_arns" {
  description = "Latest task definition of every Kafka node (by node name); `tumbleweed kafka roll` moves the node services to them one at a time."
  value       = module.kafka.node_task_definition_arns
}

output "sink_cpu_architecture" {
  description = "CPU architecture of the sink tasks (X86_64 or ARM64): `tumbleweed image build` must build for it (linux/amd64 or linux/arm64)."
  value       = var.sink_cpu_architecture
}
