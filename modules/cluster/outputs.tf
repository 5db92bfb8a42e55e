output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "kms_key_arn" {
  description = "ARN of the deployment's customer-managed KMS key."
  value       = aws_kms_key.this.arn
}

output "kms_key_id" {
  description = "ID of the deployment's customer-managed KMS key."
  value       = aws_kms_key.this.key_id
}

output "exec_log_group_name" {
  description = "Name of the log group that records ECS Exec sessions."
  value       = aws_cloudwatch_log_group.exec.name
}

output "exec_log_group_arn" {
  description = "ARN of the log group that records ECS Exec sessions (task roles may write to it)."
  value       = aws_cloudwatch_log_group.exec.arn
}
