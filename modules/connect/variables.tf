variable "name" {
  description = "Name prefix used in every resource name (the deployment's name_prefix)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "The name must match ^[a-z][a-z0-9-]{1,20}$."
  }
}

variable "image" {
  description = "Kafka Connect image with the Debezium PostgreSQL connector (the Debezium connect image or a mirror of it), with an explicit tag or digest."
  type        = string
  default     = "debezium/connect:2.7.3.Final"

  validation {
    condition     = can(regex("^[^\\s]+(:[A-Za-z0-9_.-]+|@sha256:[0-9a-f]{64})$", var.image)) && !endswith(var.image, ":latest")
    error_message = "The image must carry an explicit version tag or a sha256 digest (not :latest)."
  }
}

variable "cluster_arn" {
  description = "ARN of the ECS cluster the Connect service runs in."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the log group (and the database password secret, if any)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets the Connect workers run in."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "At least two private subnets (two zones) are required."
  }
}

variable "security_group_id" {
  description = "Security group of the Connect workers (REST reachable from the sink only)."
  type        = string
}

variable "service_discovery_arn" {
  description = "ARN of the Cloud Map service the workers register under (connect.<namespace>)."
  type        = string
}

variable "rest_dns_name" {
  description = "Fully qualified Cloud Map name of the workers (connect.<namespace>), used to build the REST URL."
  type        = string
}

variable "bootstrap_servers" {
  description = "Kafka bootstrap string (host:port,...)."
  type        = string
}

variable "desired_count" {
  description = "Number of Connect workers. Two or more keep connectors running through a task replacement."
  type        = number
  default     = 2

  validation {
    condition     = var.desired_count >= 1 && var.desired_count <= 10
    error_message = "The desired_count must be between 1 and 10."
  }
}

variable "cpu" {
  description = "Fargate CPU units of a Connect task (1024 = 1 vCPU)."
  type        = number
  default     = 1024

  validation {
    condition     = contains([512, 1024, 2048, 4096], var.cpu)
    error_message = "The cpu must be one of 512, 1024, 2048, 4096."
  }
}

variable "memory" {
  description = "Memory of a Connect task in MiB; the JVM heap gets half of it."
  type        = number
  default     = 2048

  validation {
    condition     = var.memory >= 1024 && var.memory <= 30720
    error_message = "The memory must be between 1024 and 30720 MiB."
  }
}

variable "replication_factor" {
  description = "Replication factor of Connect's internal config, offset and status topics."
  type        = number
  default     = 3

  validation {
    condition     = var.replication_factor >= 1 && var.replication_factor <= 5
    error_message = "The replication_factor must be between 1 and 5."
  }
}

variable "source_db_password_secret_arn" {
  description = "Deprecated (use source_db_password_secrets): optional Secrets Manager ARN of one source database password, exposed to the workers as TUMBLEWEED_SOURCE_DB_PASSWORD; connector configs refer to it as $${env:TUMBLEWEED_SOURCE_DB_PASSWORD} (EnvVarConfigProvider), so the password never appears in a connector config."
  type        = string
  default     = null

  validation {
    condition     = var.source_db_password_secret_arn == null || (can(regex("^arn:[^:]+:secretsmanager:", var.source_db_password_secret_arn)) && !can(regex("[*?]", var.source_db_password_secret_arn)))
    error_message = "The source_db_password_secret_arn must be a Secrets Manager secret ARN without wildcards (* or ?), or null: the execution roles may read exactly this secret."
  }
}

variable "source_db_password_secrets" {
  description = "Source database passwords by key: KEY => full Secrets Manager secret ARN, the same map as the sink's. Each is exposed to the workers as TUMBLEWEED_SECRET_<KEY>, and connector configs refer to it as $${env:TUMBLEWEED_SECRET_<KEY>} (EnvVarConfigProvider), so no password appears in a connector config. The execution role may read exactly these ARNs."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.source_db_password_secrets) : can(regex("^[A-Z0-9_]{1,64}$", k))])
    error_message = "Every source_db_password_secrets key must match ^[A-Z0-9_]{1,64}$ (it becomes the environment variable TUMBLEWEED_SECRET_<KEY>): use upper-case letters, digits and _, such as ORDERS."
  }

  validation {
    condition     = alltrue([for arn in values(var.source_db_password_secrets) : can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$", arn))])
    error_message = "Every source_db_password_secrets value must be the full ARN of a Secrets Manager secret (arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>, as aws secretsmanager describe-secret prints it): no wildcard, no partial ARN (IAM would not match it), no JSON key suffix (store the password as the whole secret string)."
  }
}

variable "source_db_password_kms_key_arns" {
  description = "KMS keys the source_db_password_secrets are encrypted with, when not the deployment's key (kms_key_arn); the execution role may decrypt with them through Secrets Manager only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for k in var.source_db_password_kms_key_arns : can(regex("^arn:[^:]+:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", k))])
    error_message = "Every source_db_password_kms_key_arns entry must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)."
  }
}

variable "rds_ca_bundle_url" {
  description = "HTTPS URL of the Amazon RDS CA bundle each worker downloads to rds_ca_bundle_path before it starts (a failed download fails the task). Null: no download and the image's entrypoint unchanged, for sources that do not verify against the RDS CA or an image that already holds the file at rds_ca_bundle_path."
  type        = string
  default     = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"

  validation {
    condition     = var.rds_ca_bundle_url == null || can(regex("^https://[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._~/%+=-]*$", var.rds_ca_bundle_url))
    error_message = "The rds_ca_bundle_url must be an https:// URL without query string, quotes or spaces (such as https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem), or null."
  }
}

variable "rds_ca_bundle_path" {
  description = "Where the workers keep the Amazon RDS CA bundle: the sink writes it into connector configs as database.sslrootcert (its connect_rds_ca_path, from the rds_ca_bundle_path output). Must be writable by the image's user (kafka): /tmp is."
  type        = string
  default     = "/tmp/tumbleweed/rds-global-bundle.pem"

  validation {
    condition     = can(regex("^/[A-Za-z0-9._/-]+$", var.rds_ca_bundle_path)) && !endswith(var.rds_ca_bundle_path, "/") && !strcontains(var.rds_ca_bundle_path, "..")
    error_message = "The rds_ca_bundle_path must be an absolute file path of letters, digits and . _ / - without .., such as /tmp/tumbleweed/rds-global-bundle.pem."
  }
}

variable "log_retention_days" {
  description = "Retention of the Connect log group, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "The log_retention_days must be a retention period CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "cpu_architecture" {
  description = "CPU architecture of the task (runtime_platform): X86_64 or ARM64. It must match the image's platform (the Debezium image is published for both)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "The cpu_architecture must be X86_64 or ARM64 (Fargate's names, not amd64/arm64)."
  }
}

variable "start_after" {
  description = "Ids of services this one must start after (the Kafka node services). Only ordering: their values are not used."
  type        = list(string)
  default     = []
}

variable "exec_log_group_arn" {
  description = "ARN of the cluster's ECS Exec session log group (operators may open a shell in the tasks with aws ecs execute-command), or null when sessions are not logged."
  type        = string
  default     = null
}

variable "source_db_password_kms_key_arn" {
  description = "Deprecated (use source_db_password_kms_key_arns): KMS key the source database password secret is encrypted with, when it is not the deployment's key (kms_key_arn); null otherwise."
  type        = string
  default     = null

  validation {
    condition     = var.source_db_password_kms_key_arn == null || can(regex("^arn:[^:]+:kms:", var.source_db_password_kms_key_arn))
    error_message = "The source_db_password_kms_key_arn must be a KMS key ARN or null."
  }
}

variable "tags" {
  description = "Tags added to every resource of this module (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
