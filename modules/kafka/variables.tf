variable "name" {
  description = "Name prefix used in every resource name (the deployment's name_prefix)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "The name must match ^[a-z][a-z0-9-]{1,20}$."
  }
}

variable "image" {
  description = "Apache Kafka container image (the official apache/kafka image or a mirror of it), with an explicit tag or digest."
  type        = string
  default     = "apache/kafka:3.9.1"

  validation {
    condition     = can(regex("^[^\\s]+(:[A-Za-z0-9_.-]+|@sha256:[0-9a-f]{64})$", var.image)) && !endswith(var.image, ":latest")
    error_message = "The image must carry an explicit version tag or a sha256 digest (not :latest)."
  }
}

variable "cluster_arn" {
  description = "ARN of the ECS cluster the Kafka services run in."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the log groups and the EFS file system."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the tasks and EFS mount targets, one per availability zone. Node N is pinned to subnet (N-1) mod count, so nodes are spread over the zones."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "At least two private subnets (two zones) are required."
  }
}

variable "availability_zones" {
  description = "Availability zone of each entry of subnet_ids (same order); a broker's zone becomes its broker.rack. At least 3 distinct zones, so no zone holds two controllers or two replicas."
  type        = list(string)

  validation {
    condition     = length(distinct(var.availability_zones)) >= 3 && length(distinct(var.availability_zones)) == length(var.availability_zones)
    error_message = "At least three distinct availability zones are required: with two, losing the zone of controller-1 and controller-3 loses the KRaft quorum."
  }
}

variable "broker_security_group_id" {
  description = "Security group of the broker tasks."
  type        = string
}

variable "controller_security_group_id" {
  description = "Security group of the controller tasks."
  type        = string
}

variable "efs_security_group_id" {
  description = "Security group of the EFS mount targets."
  type        = string
}

variable "namespace_name" {
  description = "Cloud Map namespace the nodes are registered in; broker N answers at broker-N.<namespace_name>."
  type        = string
}

variable "service_discovery_arns" {
  description = "Map from Cloud Map service name (broker-1.., controller-1..) to its ARN. Must contain an entry for every node."
  type        = map(string)
}

variable "broker_count" {
  description = "Number of brokers (at least replication_factor)."
  type        = number
  default     = 3

  validation {
    condition     = var.broker_count >= 3 && var.broker_count <= 9
    error_message = "The broker_count must be between 3 and 9."
  }
}

variable "controller_count" {
  description = "Number of KRaft controllers (an odd number, so the quorum survives floor(n/2) failures)."
  type        = number
  default     = 3

  validation {
    condition     = contains([3, 5], var.controller_count)
    error_message = "The controller_count must be 3 or 5."
  }
}

variable "broker_cpu" {
  description = "Fargate CPU units of a broker task (1024 = 1 vCPU)."
  type        = number
  default     = 1024

  validation {
    condition     = contains([512, 1024, 2048, 4096, 8192], var.broker_cpu)
    error_message = "The broker_cpu must be one of 512, 1024, 2048, 4096, 8192."
  }
}

variable "broker_memory" {
  description = "Memory of a broker task in MiB; the JVM heap gets half of it, the rest is page cache."
  type        = number
  default     = 4096

  validation {
    condition     = var.broker_memory >= 2048 && var.broker_memory <= 61440
    error_message = "The broker_memory must be between 2048 and 61440 MiB."
  }
}

variable "controller_cpu" {
  description = "Fargate CPU units of a controller task."
  type        = number
  default     = 512

  validation {
    condition     = contains([256, 512, 1024, 2048], var.controller_cpu)
    error_message = "The controller_cpu must be one of 256, 512, 1024, 2048."
  }
}

variable "controller_memory" {
  description = "Memory of a controller task in MiB."
  type        = number
  default     = 2048

  validation {
    condition     = var.controller_memory >= 1024 && var.controller_memory <= 16384
    error_message = "The controller_memory must be between 1024 and 16384 MiB."
  }
}

variable "replication_factor" {
  description = "Default replication factor of topics, including the internal ones."
  type        = number
  default     = 3

  validation {
    condition     = var.replication_factor >= 1 && var.replication_factor <= 5
    error_message = "The replication_factor must be between 1 and 5."
  }
}

variable "min_insync_replicas" {
  description = "min.insync.replicas: acks=all writes fail when fewer replicas are in sync. Must be below replication_factor so one broker can be down."
  type        = number
  default     = 2

  validation {
    condition     = var.min_insync_replicas >= 1 && var.min_insync_replicas < var.replication_factor
    error_message = "The min_insync_replicas must be at least 1 and below replication_factor."
  }
}

variable "default_partitions" {
  description = "num.partitions for auto-created topics."
  type        = number
  default     = 3

  validation {
    condition     = var.default_partitions >= 1 && var.default_partitions <= 256
    error_message = "The default_partitions must be between 1 and 256."
  }
}

variable "log_retention_days" {
  description = "Retention of the Kafka log groups (container output, not Kafka data), in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "The log_retention_days must be a retention period CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "cpu_architecture" {
  description = "CPU architecture of the task (runtime_platform): X86_64 or ARM64. It must match the image's platform (apache/kafka is published for both)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "The cpu_architecture must be X86_64 or ARM64 (Fargate's names, not amd64/arm64)."
  }
}

variable "exec_log_group_arn" {
  description = "ARN of the cluster's ECS Exec session log group (operators may open a shell in the tasks with aws ecs execute-command), or null when sessions are not logged."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource of this module (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
