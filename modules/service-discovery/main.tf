# Service discovery: a Cloud Map private DNS namespace in the VPC and one service per
# component, so that ECS registers each task's address under a stable name
# (broker-1.<namespace>, controller-1.<namespace>, connect.<namespace>). Kafka's
# advertised listeners and controller quorum voters are written with these names.

resource "aws_service_discovery_private_dns_namespace" "this" {
  name        = "${var.name}.${var.namespace_suffix}"
  description = "Tumbleweed ${var.name}: stable names for Kafka and Kafka Connect tasks"
  vpc         = var.vpc_id

  tags = var.tags
}

resource "aws_service_discovery_service" "this" {
  for_each = toset(var.services)

  name        = each.key
  description = "Tumbleweed ${var.name}: ${each.key}"

  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.this.id
    routing_policy = "MULTIVALUE"

    dns_records {
      type = "A"
      ttl  = var.dns_ttl_seconds
    }
  }

  # ECS reports task health to Cloud Map; an unhealthy task is deregistered.
  # (failure_threshold is deprecated: AWS always uses 1.)
  health_check_custom_config {}

  tags = merge(var.tags, { Name = "${var.name}-${each.key}" })
}
