output "alarm_arns" {
  description = "ARN of every alarm, by alarm (retained_wal, consumer_lag, kafka_reachable, unhealthy_targets, sink_5xx)."
  value = {
    retained_wal      = aws_cloudwatch_metric_alarm.retained_wal.arn
    consumer_lag      = aws_cloudwatch_metric_alarm.consumer_lag.arn
    kafka_reachable   = aws_cloudwatch_metric_alarm.kafka_reachable.arn
    unhealthy_targets = aws_cloudwatch_metric_alarm.unhealthy_targets.arn
    sink_5xx          = aws_cloudwatch_metric_alarm.sink_5xx.arn
  }
}

output "alarm_names" {
  description = "Name of every alarm, by alarm."
  value = {
    retained_wal      = aws_cloudwatch_metric_alarm.retained_wal.alarm_name
    consumer_lag      = aws_cloudwatch_metric_alarm.consumer_lag.alarm_name
    kafka_reachable   = aws_cloudwatch_metric_alarm.kafka_reachable.alarm_name
    unhealthy_targets = aws_cloudwatch_metric_alarm.unhealthy_targets.alarm_name
    sink_5xx          = aws_cloudwatch_metric_alarm.sink_5xx.alarm_name
  }
}
