output "service_name" {
  description = "Name of the Connect ECS service."
  value       = module.service.service_name
}

output "rest_url" {
  description = "URL of the Connect REST API inside the VPC (reachable from the sink's security group only)."
  value       = "http://${var.rest_dns_name}:${local.rest_port}"
}

output "group_id" {
  description = "Connect worker group id."
  value       = local.group_id
}

output "internal_topics" {
  description = "Connect's internal topics (config, offset, status)."
  value = {
    config = local.environment.CONFIG_STORAGE_TOPIC
    offset = local.environment.OFFSET_STORAGE_TOPIC
    status = local.environment.STATUS_STORAGE_TOPIC
  }
}

output "log_group_name" {
  description = "Name of the Connect log group."
  value       = module.service.log_group_name
}

output "rds_ca_bundle_path" {
  description = "Path of the Amazon RDS CA bundle on the workers: pass it to the sink module's connect_rds_ca_path (TUMBLEWEED_CONNECT_RDS_CA_PATH)."
  value       = local.rds_ca_bundle_path
}
