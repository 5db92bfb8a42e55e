# The helper CLI reads these names; keep them stable.

output "public_url" {
  description = "Stable public URL of the sink's consumer routes (SSE streams, acks, tickets, /healthz, /readyz) for the consumer prefix list; every other path answers 404 there."
  value       = module.sink.public_url
}

output "admin_url" {
  description = "URL of the UI and the admin API (and the consumer routes) on the admin listener (admin_port), for the operator prefix list only."
  value       = module.sink.admin_url
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
  description = "Names of the Kafka broker ECS services (one task each); empty with existing_kafka_bootstrap_servers."
  value       = local.create_kafka ? module.kafka[0].broker_service_names : []
}

output "kafka_controller_service_names" {
  description = "Names of the KRaft controller ECS services (one task each); empty with existing_kafka_bootstrap_servers."
  value       = local.create_kafka ? module.kafka[0].controller_service_names : []
}

output "ecr_repository_url" {
  description = "ECR repository to push the sink image to."
  value       = module.sink.ecr_repository_url
}

output "sink_security_group_id" {
  description = "Security group of the sink tasks (an existing Kafka cluster's security group must admit it on the client port)."
  value       = module.security.sink_security_group_id
}

output "connect_security_group_id" {
  description = "Security group of the Kafka Connect workers (an existing Kafka cluster's security group must admit it on the client port)."
  value       = module.security.connect_security_group_id
}

output "kafka_client_security_group_ids" {
  description = "Security groups of the Kafka clients (the sink and Connect): with existing_kafka_bootstrap_servers, the cluster's security group must admit both on its client port."
  value       = [module.security.sink_security_group_id, module.security.connect_security_group_id]
}

output "sink_autoscaling_policy_arn" {
  description = "ARN of the sink's target tracking policy on average CPU; null when sink_min_count = sink_max_count (fixed count)."
  value       = module.sink.autoscaling_policy_arn
}

output "alarm_names" {
  description = "CloudWatch alarm names of the deployment, by alarm (retained_wal, consumer_lag, kafka_reachable, unhealthy_targets, sink_5xx)."
  value       = module.alarms.alarm_names
}

output "metrics_namespace" {
  description = "CloudWatch namespace of the sink's metrics (dimension Deployment = name_prefix)."
  value       = module.sink.metrics_namespace
}

output "load_balancer_security_group_id" {
  description = "Security group of the public load balancer (its ingress rules reference the two prefix lists, each on its own port)."
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
  description = "Kafka bootstrap string the sink and Connect use: the ECS cluster's brokers, or existing_kafka_bootstrap_servers."
  value       = local.kafka_bootstrap_servers
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
  description = "Latest task definition of every Kafka node (by node name); `tumbleweed kafka roll` moves the node services to them one at a time. Empty with existing_kafka_bootstrap_servers."
  # try(): the module's for-expression output is an object, which a conditional could not
  # unify with {}.
  value = try(module.kafka[0].node_task_definition_arns, {})
}

output "sink_cpu_architecture" {
  description = "CPU architecture of the sink tasks (X86_64 or ARM64): `tumbleweed image build` must build for it (linux/amd64 or linux/arm64)."
  value       = var.sink_cpu_architecture
}

output "deployment_id" {
  description = "The deployment id in every slot and publication name the sink creates (tw_<id>_<source>): keep it stable."
  value       = module.sink.deployment_id
}
