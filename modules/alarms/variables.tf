variable "name" {
  description = "Name prefix of every alarm (the deployment's name_prefix)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "The name must match ^[a-z][a-z0-9-]{1,20}$."
  }
}

variable "deployment" {
  description = "Value of the Deployment dimension of the sink's metrics (the sink's TUMBLEWEED_EMF_DEPLOYMENT)."
  type        = string
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the sink's metrics (the sink's TUMBLEWEED_EMF_NAMESPACE)."
  type        = string
  default     = "Tumbleweed"

  validation {
    condition     = can(regex("^[0-9A-Za-z.#:_/-]{1,255}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "The metrics_namespace must be 1 to 255 of the characters CloudWatch allows (letters, digits, . - _ / # :) and must not start with AWS/."
  }
}

variable "lb_arn_suffix" {
  description = "ARN suffix of the sink's load balancer (LoadBalancer dimension)."
  type        = string
}

variable "target_group_arn_suffix" {
  description = "ARN suffix of the sink's target group (TargetGroup dimension)."
  type        = string
}

variable "alarm_actions" {
  description = "SNS topic ARNs notified when an alarm goes to ALARM and back to OK. Empty: the alarms only show their state."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.alarm_actions : can(regex("^arn:[^:]+:sns:[^:]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$", a))])
    error_message = "Every alarm_actions entry must be an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>)."
  }
}

variable "retained_wal_bytes_threshold" {
  description = "Alarm when a replication slot retains more WAL than this many bytes (MaxRetainedWalBytes, maximum over 5 minutes)."
  type        = number
  default     = 10737418240

  validation {
    condition     = var.retained_wal_bytes_threshold >= 1048576
    error_message = "The retained_wal_bytes_threshold must be at least 1 MiB (1048576 bytes)."
  }
}

variable "consumer_lag_events_threshold" {
  description = "Alarm when a consumer stays more than this many events behind for 5 minutes (MaxConsumerLagEvents)."
  type        = number
  default     = 100000

  validation {
    condition     = var.consumer_lag_events_threshold >= 1
    error_message = "The consumer_lag_events_threshold must be at least 1."
  }
}

variable "kafka_unreachable_periods" {
  description = "Alarm when the sink reports Kafka unreachable (KafkaReachable minimum < 1), or publishes nothing, for this many consecutive minutes."
  type        = number
  default     = 3

  validation {
    condition     = var.kafka_unreachable_periods >= 1 && var.kafka_unreachable_periods <= 60 && floor(var.kafka_unreachable_periods) == var.kafka_unreachable_periods
    error_message = "The kafka_unreachable_periods must be a whole number from 1 to 60."
  }
}

variable "unhealthy_targets_threshold" {
  description = "Alarm when more sink targets than this are unhealthy for 3 minutes (UnHealthyHostCount)."
  type        = number
  default     = 0

  validation {
    condition     = var.unhealthy_targets_threshold >= 0 && floor(var.unhealthy_targets_threshold) == var.unhealthy_targets_threshold
    error_message = "The unhealthy_targets_threshold must be a whole number, 0 or more."
  }
}

variable "sink_5xx_threshold" {
  description = "Alarm when the sink answers more than this many 5xx responses in 5 minutes (HTTPCode_Target_5XX_Count, sum)."
  type        = number
  default     = 10

  validation {
    condition     = var.sink_5xx_threshold >= 0 && floor(var.sink_5xx_threshold) == var.sink_5xx_threshold
    error_message = "The sink_5xx_threshold must be a whole number, 0 or more."
  }
}

variable "tags" {
  description = "Tags added to every alarm (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
