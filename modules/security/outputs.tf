output "operator_prefix_list_id" {
  description = "ID of the operators' managed prefix list (admin listener: UI and admin API)."
  value       = aws_ec2_managed_prefix_list.operators.id
}

output "consumer_prefix_list_id" {
  description = "ID of the consumers' managed prefix list (consumer listener: SSE streams)."
  value       = aws_ec2_managed_prefix_list.consumers.id
}

output "load_balancer_security_group_id" {
  description = "ID of the public load balancer's security group."
  value       = aws_security_group.lb.id
}

output "sink_security_group_id" {
  description = "ID of the sink tasks' security group."
  value       = aws_security_group.sink.id
}

output "connect_security_group_id" {
  description = "ID of the Kafka Connect tasks' security group."
  value       = aws_security_group.connect.id
}

output "broker_security_group_id" {
  description = "ID of the Kafka brokers' security group."
  value       = aws_security_group.broker.id
}

output "controller_security_group_id" {
  description = "ID of the KRaft controllers' security group."
  value       = aws_security_group.controller.id
}

output "efs_security_group_id" {
  description = "ID of the security group on the Kafka EFS mount targets."
  value       = aws_security_group.efs.id
}

output "ports" {
  description = "Ports the rules are written for, so the services use the same numbers."
  value       = local.ports
}
