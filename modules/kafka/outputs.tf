output "broker_service_names" {
  description = "Names of the broker ECS services, broker-1 first."
  value       = [for k in keys(local.brokers) : module.node[k].service_name]
}

output "controller_service_names" {
  description = "Names of the controller ECS services, controller-1 first."
  value       = [for k in keys(local.controllers) : module.node[k].service_name]
}

output "bootstrap_servers" {
  description = "Kafka bootstrap string (host:port of every broker, by Cloud Map name)."
  value       = local.bootstrap_servers
}

output "controller_quorum_voters" {
  description = "The controller.quorum.voters value the nodes are configured with."
  value       = local.quorum_voters
}

output "cluster_id" {
  description = "KRaft cluster id written into every log directory."
  value       = random_id.cluster_id.b64_url
}

output "file_system_id" {
  description = "ID of the EFS file system holding the log directories."
  value       = aws_efs_file_system.this.id
}

output "log_group_names" {
  description = "Name of each node's log group, by node name."
  value       = { for k, m in module.node : k => m.log_group_name }
}

output "replication_factor" {
  description = "Default replication factor the brokers are configured with."
  value       = var.replication_factor
}

output "node_task_definition_arns" {
  description = "Latest task definition ARN (with revision) of every node, by node name. Terraform does not move a running node service to a new revision: `tumbleweed kafka roll` does, one node at a time."
  value       = { for k, m in module.node : k => m.task_definition_arn }
}

output "node_service_ids" {
  description = "ECS service ids of every node; available once every node reached steady state on create (used to order Connect and the sink after Kafka)."
  value       = [for k in sort(keys(module.node)) : module.node[k].service_id]
}
