# Alarms: CloudWatch alarms on the sink's own metrics (published by the sink as Embedded
# Metric Format log lines, see modules/sink) and on its load balancer target group. Every
# alarm notifies alarm_actions (SNS topic ARNs) on ALARM and on OK; with no actions the
# alarms still show state in the console.
#
# The metric names and the dimension set [["Deployment"]] are the contract with the sink's
# EMF output; tests/terraform-check checks them against its list of that contract.

locals {
  deployment_dimensions = { Deployment = var.deployment }

  target_group_dimensions = {
    LoadBalancer = var.lb_arn_suffix
    TargetGroup  = var.target_group_arn_suffix
  }
}

################################################################################
# The sink's own metrics (namespace metrics_namespace, dimension Deployment)
################################################################################

# Retained WAL: the largest amount of WAL any replication slot of the deployment holds back
# on its source database. It grows when Debezium does not confirm LSNs (Connect or Kafka
# down, a connector FAILED) and ends with a full disk on the source database.
resource "aws_cloudwatch_metric_alarm" "retained_wal" {
  alarm_name          = "${var.name}-retained-wal"
  alarm_description   = "Tumbleweed ${var.deployment}: a replication slot retains more than ${var.retained_wal_bytes_threshold} bytes of WAL on its source database (MaxRetainedWalBytes). Check the connectors' status (Connect REST GET /connectors?expand=status, through ECS Exec on a Connect task) and Connect's log; the per-slot metric RetainedWalBytes (dimension Slot) names the slot."
  namespace           = var.metrics_namespace
  metric_name         = "MaxRetainedWalBytes"
  dimensions          = local.deployment_dimensions
  unit                = "Bytes"
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.retained_wal_bytes_threshold
  # No data means no sink publishing: the kafka_reachable alarm (missing = breaching)
  # reports that; this one stays quiet.
  treat_missing_data = "notBreaching"
  alarm_actions      = var.alarm_actions
  ok_actions         = var.alarm_actions

  tags = var.tags
}

# Consumer lag: the largest number of events any consumer is behind, for 5 minutes in a row
# (a snapshot or a burst raises it briefly).
resource "aws_cloudwatch_metric_alarm" "consumer_lag" {
  alarm_name          = "${var.name}-consumer-lag"
  alarm_description   = "Tumbleweed ${var.deployment}: a consumer has been more than ${var.consumer_lag_events_threshold} events behind for 5 minutes (MaxConsumerLagEvents). The per-consumer metric ConsumerLagEvents (dimension Consumer) names it; check that consumer and the sink's CPU and memory."
  namespace           = var.metrics_namespace
  metric_name         = "MaxConsumerLagEvents"
  dimensions          = local.deployment_dimensions
  unit                = "Count"
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.consumer_lag_events_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = var.tags
}

# Kafka reachability as the sink sees it: 1 when it reaches a broker, 0 when not. Minimum
# over the tasks, so one task that cannot reach Kafka is enough. Missing data is breaching:
# no data means no sink task is publishing at all.
resource "aws_cloudwatch_metric_alarm" "kafka_reachable" {
  alarm_name          = "${var.name}-kafka-unreachable"
  alarm_description   = "Tumbleweed ${var.deployment}: the sink could not reach Kafka (KafkaReachable < 1) or published no metrics for ${var.kafka_unreachable_periods} minutes. Check the sink service's running tasks and log, then GET /v1/kafka/health on the admin API and the Kafka services."
  namespace           = var.metrics_namespace
  metric_name         = "KafkaReachable"
  dimensions          = local.deployment_dimensions
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = var.kafka_unreachable_periods
  datapoints_to_alarm = var.kafka_unreachable_periods
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = var.tags
}

################################################################################
# Load balancer (AWS/ApplicationELB, the sink's target group)
################################################################################

resource "aws_cloudwatch_metric_alarm" "unhealthy_targets" {
  alarm_name          = "${var.name}-sink-unhealthy-targets"
  alarm_description   = "Tumbleweed ${var.deployment}: more than ${var.unhealthy_targets_threshold} sink task(s) failed the load balancer's liveness check (/healthz) for 3 minutes. ECS replaces them; check the sink service's events and stopped tasks (OOM, image pull, crash)."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "UnHealthyHostCount"
  dimensions          = local.target_group_dimensions
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.unhealthy_targets_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "sink_5xx" {
  alarm_name          = "${var.name}-sink-5xx"
  alarm_description   = "Tumbleweed ${var.deployment}: the sink answered more than ${var.sink_5xx_threshold} 5xx responses in 5 minutes. 503 is the sink refusing streams near its memory limit or without Kafka; check the sink's log and the kafka-unreachable alarm."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HTTPCode_Target_5XX_Count"
  dimensions          = local.target_group_dimensions
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.sink_5xx_threshold
  # The load balancer publishes no data point for a period without 5xx.
  treat_missing_data = "notBreaching"
  alarm_actions      = var.alarm_actions
  ok_actions         = var.alarm_actions

  tags = var.tags
}
