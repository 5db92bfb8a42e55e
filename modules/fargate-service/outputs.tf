output "service_name" {
  description = "Name of the ECS service."
  value       = one(concat(aws_ecs_service.this[*].name, aws_ecs_service.ignore_task_definition[*].name, aws_ecs_service.ignore_desired_count[*].name))
}

output "service_id" {
  description = "ID of the ECS service (known once it exists, and with wait_for_steady_state once its tasks run)."
  value       = one(concat(aws_ecs_service.this[*].id, aws_ecs_service.ignore_task_definition[*].id, aws_ecs_service.ignore_desired_count[*].id))
}

output "task_definition_arn" {
  description = "ARN (with revision) of the latest task definition; with ignore_task_definition_changes the service may still run an older one."
  value       = aws_ecs_task_definition.this.arn
}

output "execution_role_arn" {
  description = "ARN of the execution role."
  value       = aws_iam_role.execution.arn
}

output "task_role_arn" {
  description = "ARN of the task role."
  value       = aws_iam_role.task.arn
}

output "log_group_name" {
  description = "Name of the container's log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "autoscaling_policy_arn" {
  description = "ARN of the target tracking policy on average CPU, or null (no autoscaling, or min_count = max_count)."
  value       = one(aws_appautoscaling_policy.cpu[*].arn)
}
