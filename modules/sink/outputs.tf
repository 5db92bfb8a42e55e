output "public_url" {
  description = "Stable public URL of the sink's consumer routes (SSE streams, acks, tickets, health): the load balancer's DNS name, https when a certificate is set. Everything else answers 404 there; use admin_url. Point a CNAME or alias at it for a name of your own."
  value       = "${local.scheme}://${aws_lb.this.dns_name}"
}

output "admin_url" {
  description = "URL of the UI and the admin API (and the consumer routes) for operators: the load balancer's DNS name on admin_port, reachable from the operator prefix list only."
  value       = "${local.scheme}://${aws_lb.this.dns_name}:${var.admin_port}"
}

output "listener_port" {
  description = "Port of the consumer listener (443 with a certificate, 80 without)."
  value       = local.listener_port
}

output "admin_port" {
  description = "Port of the admin listener (UI, admin API, consumer routes)."
  value       = var.admin_port
}

output "consumer_path_patterns" {
  description = "Path patterns the consumer listener forwards (the sink's consumer routes); everything else answers 404 there."
  value       = local.consumer_path_patterns
}

output "lb_dns_name" {
  description = "DNS name of the load balancer."
  value       = aws_lb.this.dns_name
}

output "lb_zone_id" {
  description = "Route 53 hosted zone id of the load balancer (for an alias record)."
  value       = aws_lb.this.zone_id
}

output "service_name" {
  description = "Name of the sink ECS service."
  value       = module.service.service_name
}

output "ecr_repository_url" {
  description = "URL of the ECR repository the sink image is pushed to."
  value       = aws_ecr_repository.this.repository_url
}

output "image" {
  description = "Image reference the sink task definition runs."
  value       = local.image
}

output "admin_token_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the admin token."
  value       = aws_secretsmanager_secret.admin_token.arn
}

output "log_group_name" {
  description = "Name of the sink log group."
  value       = module.service.log_group_name
}

output "access_log_bucket" {
  description = "Name of the S3 bucket holding the load balancer access logs."
  value       = aws_s3_bucket.access_logs.id
}

output "lb_arn_suffix" {
  description = "ARN suffix of the load balancer (the LoadBalancer dimension of AWS/ApplicationELB metrics)."
  value       = aws_lb.this.arn_suffix
}

output "target_group_arn_suffix" {
  description = "ARN suffix of the sink's target group (the TargetGroup dimension of AWS/ApplicationELB metrics)."
  value       = aws_lb_target_group.this.arn_suffix
}

output "metrics_namespace" {
  description = "CloudWatch namespace the sink publishes its Embedded Metric Format metrics in."
  value       = var.metrics_namespace
}

output "metrics_deployment" {
  description = "Value of the Deployment dimension of the sink's metrics (TUMBLEWEED_EMF_DEPLOYMENT)."
  value       = var.name
}

output "autoscaling_policy_arn" {
  description = "ARN of the target tracking policy on average CPU, or null when min_count = max_count."
  value       = module.service.autoscaling_policy_arn
}

output "deployment_id" {
  description = "The deployment id in the sink's slot and publication names (tw_<id>_<source>)."
  value       = local.deployment_id
}
