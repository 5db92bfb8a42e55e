variable "name" {
  description = "Name of the service, its task definition family, log group owner and IAM roles (<name>-execution, <name>-task), such as tw-prod-kafka-broker-1."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,50}$", var.name))
    error_message = "The name must match ^[a-z][a-z0-9-]{1,50}$ (IAM role names add up to 10 characters)."
  }
}

variable "container_name" {
  description = "Name of the one container of the task."
  type        = string
}

variable "image" {
  description = "Container image with an explicit tag or digest."
  type        = string

  validation {
    condition     = can(regex("^[^\\s]+(:[A-Za-z0-9_.-]+|@sha256:[0-9a-f]{64})$", var.image)) && !endswith(var.image, ":latest")
    error_message = "The image must carry an explicit version tag or a sha256 digest (not :latest)."
  }
}

variable "cpu" {
  description = "Fargate CPU units of the task (1024 = 1 vCPU)."
  type        = number

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.cpu)
    error_message = "The cpu must be one of 256, 512, 1024, 2048, 4096, 8192, 16384."
  }
}

variable "memory" {
  description = "Memory of the task in MiB; must be a combination Fargate accepts with cpu."
  type        = number

  validation {
    # The CPU/memory combinations Fargate accepts (Linux tasks).
    condition = contains(lookup({
      "256"   = [512, 1024, 2048]
      "512"   = range(1024, 4097, 1024)
      "1024"  = range(2048, 8193, 1024)
      "2048"  = range(4096, 16385, 1024)
      "4096"  = range(8192, 30721, 1024)
      "8192"  = range(16384, 61441, 4096)
      "16384" = range(32768, 122881, 8192)
    }, tostring(var.cpu), []), var.memory)
    error_message = "The memory is not a Fargate combination with cpu: 256 CPU takes 512-2048 MiB; 512 takes 1024-4096; 1024 takes 2048-8192; 2048 takes 4096-16384; 4096 takes 8192-30720 (1024 steps); 8192 takes 16384-61440 (4096 steps)."
  }
}

variable "cpu_architecture" {
  description = "CPU architecture of the task: X86_64 or ARM64, matching the image's platform."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "The cpu_architecture must be X86_64 or ARM64 (Fargate's names, not amd64/arm64)."
  }
}

variable "cluster_arn" {
  description = "ARN of the ECS cluster."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the tasks (private; no public address is assigned)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1
    error_message = "At least one subnet is required."
  }
}

variable "security_group_ids" {
  description = "Security groups of the tasks."
  type        = list(string)
}

variable "port" {
  description = "Container port (TCP)."
  type        = number

  validation {
    condition     = var.port >= 1 && var.port <= 65535
    error_message = "The port must be a TCP port number."
  }
}

variable "environment" {
  description = "Non-secret environment of the container (name => value)."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Secret environment of the container: name => Secrets Manager secret ARN. The execution role may read exactly these ARNs."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for arn in values(var.secrets) : can(regex("^arn:[^:]+:secretsmanager:", arn)) && !can(regex("[*?]", arn))])
    error_message = "Every secrets value must be a Secrets Manager secret ARN without wildcards (* or ?): the execution role may read exactly these ARNs."
  }
}

variable "entry_point" {
  description = "Container entryPoint overriding the image's ENTRYPOINT, or null for the image's."
  type        = list(string)
  default     = null
}

variable "command" {
  description = "Container command overriding the image's CMD, or null for the image's."
  type        = list(string)
  default     = null
}

variable "secret_kms_key_arns" {
  description = "KMS keys (besides kms_key_arn) the secrets are encrypted with; the execution role may decrypt through Secrets Manager with them."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "The deployment's KMS key: encrypts the log group, ECS Exec sessions and (by default) the secrets."
  type        = string
}

variable "ecr_repository_arn" {
  description = "ECR repository the image is pulled from, or null for a public registry image."
  type        = string
  default     = null
}

variable "log_group_name" {
  description = "Name of the CloudWatch log group this module creates for the container."
  type        = string
}

variable "log_stream_prefix" {
  description = "awslogs stream prefix."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the log group, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "The log_retention_days must be a retention period CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "desired_count" {
  description = "Number of tasks. With autoscaling: the number at creation only (the service then ignores it; Application Auto Scaling keeps the count within min_count..max_count)."
  type        = number
  default     = 1
}

variable "deployment_minimum_healthy_percent" {
  description = "Lower limit of running tasks during a deployment, in percent of desired_count (0 = stop before start)."
  type        = number
  default     = 100
}

variable "deployment_maximum_percent" {
  description = "Upper limit of running tasks during a deployment, in percent of desired_count (100 with minimum 0 = stop, then start)."
  type        = number
  default     = 200
}

variable "circuit_breaker_rollback" {
  description = "Whether a failed deployment rolls back to the last completed one."
  type        = bool
  default     = true
}

variable "health_check" {
  description = "Container health check (ECS), or null for none. start_period is at most 300 s."
  type = object({
    command      = list(string)
    interval     = optional(number, 30)
    timeout      = optional(number, 5)
    retries      = optional(number, 3)
    start_period = optional(number, 300)
  })
  default = null

  validation {
    condition     = var.health_check == null || try(var.health_check.start_period <= 300, false)
    error_message = "The health_check start_period must be at most 300 seconds."
  }
}

variable "health_check_grace_period_seconds" {
  description = "Seconds ECS ignores load balancer health checks of a new task (used with load_balancer)."
  type        = number
  default     = 180
}

variable "stop_timeout" {
  description = "Seconds between SIGTERM and SIGKILL (Fargate: at most 120)."
  type        = number
  default     = 30

  validation {
    condition     = var.stop_timeout >= 2 && var.stop_timeout <= 120
    error_message = "The stop_timeout must be between 2 and 120 seconds."
  }
}

variable "readonly_root_filesystem" {
  description = "Whether the container's root file system is read-only (give scratch_path for temporary files)."
  type        = bool
  default     = false
}

variable "scratch_path" {
  description = "Path of a writable scratch volume on task storage, or null."
  type        = string
  default     = null
}

variable "init_process_enabled" {
  description = "Whether an init process reaps zombies and forwards signals."
  type        = bool
  default     = true
}

variable "ulimits" {
  description = "Container ulimits (ECS shape: name, softLimit, hardLimit)."
  type = list(object({
    name      = string
    softLimit = number
    hardLimit = number
  }))
  default = []
}

variable "efs_volume" {
  description = "EFS access point mounted read-write at container_path (TLS and IAM authorization), or null."
  type = object({
    file_system_id  = string
    access_point_id = string
    container_path  = string
  })
  default = null
}

variable "service_registry_arn" {
  description = "Cloud Map service the tasks register in, or null."
  type        = string
  default     = null
}

variable "load_balancer" {
  description = "Target group the container port is registered in, or null."
  type = object({
    target_group_arn = string
  })
  default = null
}

variable "task_policy_json" {
  description = "Inline IAM policy of the task role (what the container may do in AWS), or null."
  type        = string
  default     = null
}

variable "task_role_purpose" {
  description = "What the task role allows, for its description."
  type        = string
  default     = "ECS Exec only"
}

variable "enable_execute_command" {
  description = "Whether operators may open a shell in the tasks with ECS Exec (aws ecs execute-command); sessions are encrypted with kms_key_arn."
  type        = bool
  default     = true
}

variable "exec_log_group_arn" {
  description = "ARN of the cluster's ECS Exec session log group, or null when sessions are not logged."
  type        = string
  default     = null
}

variable "wait_for_steady_state" {
  description = "Whether terraform apply waits until the service's tasks run (and are healthy)."
  type        = bool
  default     = false
}

variable "ignore_task_definition_changes" {
  description = "When true, Terraform registers new task definition revisions but never moves the running service to them (the caller rolls it, e.g. one Kafka node at a time)."
  type        = bool
  default     = false
}

variable "autoscaling" {
  description = "Target tracking autoscaling of the task count on the service's average CPU, or null for a fixed desired_count. With it the service ignores desired_count after creation (the autoscaler owns the count); min_count = max_count pins the count through the scalable target. scale_in_cooldown_seconds: seconds after a scale-in before the next one; scale_out_cooldown_seconds: after a scale-out before the next."
  type = object({
    min_count                  = number
    max_count                  = number
    target_cpu_percent         = number
    scale_in_cooldown_seconds  = optional(number, 900)
    scale_out_cooldown_seconds = optional(number, 120)
  })
  default = null

  validation {
    condition     = var.autoscaling == null || try(var.autoscaling.min_count >= 1 && var.autoscaling.min_count <= var.autoscaling.max_count && var.autoscaling.max_count <= 100, false)
    error_message = "The autoscaling min_count and max_count must satisfy 1 <= min_count <= max_count <= 100."
  }

  validation {
    condition     = var.autoscaling == null || try(var.autoscaling.target_cpu_percent >= 10 && var.autoscaling.target_cpu_percent <= 90, false)
    error_message = "The autoscaling target_cpu_percent must be between 10 and 90."
  }

  validation {
    condition     = var.autoscaling == null || try(var.autoscaling.scale_in_cooldown_seconds >= 0 && var.autoscaling.scale_out_cooldown_seconds >= 0 && var.autoscaling.scale_in_cooldown_seconds <= 3600 && var.autoscaling.scale_out_cooldown_seconds <= 3600, false)
    error_message = "The autoscaling cooldowns must be between 0 and 3600 seconds."
  }

  validation {
    condition     = var.autoscaling == null || try(var.desired_count >= var.autoscaling.min_count && var.desired_count <= var.autoscaling.max_count, false)
    error_message = "With autoscaling, desired_count (the count at creation) must lie within min_count..max_count."
  }

  validation {
    condition     = var.autoscaling == null || !var.ignore_task_definition_changes
    error_message = "The autoscaling and ignore_task_definition_changes cannot be combined (one service resource ignores either desired_count or task_definition, not both)."
  }
}

variable "start_after" {
  description = "Ids (or ARNs) of resources the service must be created after, such as the Kafka node services. Only ordering: the values are not used."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource of this module (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
