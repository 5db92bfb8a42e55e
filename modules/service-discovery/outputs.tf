output "namespace_id" {
  description = "ID of the private DNS namespace."
  value       = aws_service_discovery_private_dns_namespace.this.id
}

output "namespace_name" {
  description = "DNS name of the namespace; a service answers at <service>.<namespace_name>."
  value       = aws_service_discovery_private_dns_namespace.this.name
}

output "service_arns" {
  description = "Map from service name to the ARN of its Cloud Map service (for an ECS service's service_registries)."
  value       = { for k, s in aws_service_discovery_service.this : k => s.arn }
}

output "service_dns_names" {
  description = "Map from service name to its fully qualified DNS name."
  value       = { for k, s in aws_service_discovery_service.this : k => "${s.name}.${aws_service_discovery_private_dns_namespace.this.name}" }
}
