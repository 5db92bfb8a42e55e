variable "name" {
  description = "Name prefix used in every resource name (the deployment's name_prefix)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "The name must match ^[a-z][a-z0-9-]{1,20}$."
  }
}

variable "image" {
  description = "Full image reference of the sink. Null means the ECR repository this module creates, at image_tag."
  type        = string
  default     = null

  validation {
    condition     = var.image == null || can(regex("^[^\\s]+(:[A-Za-z0-9_.-]+|@sha256:[0-9a-f]{64})$", var.image))
    error_message = "The image must carry an explicit tag or a sha256 digest."
  }
}

variable "image_tag" {
  description = "Tag of the sink image in the module's ECR repository (used when image is null). Tags are immutable: push a new tag per release."
  type        = string
  default     = "0.1.0"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag)) && var.image_tag != "latest"
    error_message = "The image_tag must be a valid image tag other than latest (the repository's tags are immutable)."
  }
}

variable "cluster_arn" {
  description = "ARN of the ECS cluster the sink service runs in."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the log group, the admin token secret and the ECR repository."
  type        = string
}

variable "vpc_id" {
  description = "ID of the VPC (for the target group)."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets of the load balancer (two zones at least)."
  type        = list(string)

  validation {
    condition     = length(var.public_subnet_ids) >= 2
    error_message = "A load balancer needs subnets in at least two zones."
  }
}

variable "private_subnet_ids" {
  description = "Private subnets of the sink tasks."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "At least two private subnets (two zones) are required."
  }
}

variable "lb_security_group_id" {
  description = "Security group of the load balancer (admits the operator and consumer prefix lists)."
  type        = string
}

variable "security_group_id" {
  description = "Security group of the sink tasks (admits the load balancer only)."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate ARN. When set, the load balancer listens on HTTPS/443; when null, on plain HTTP/80 (evaluation only: the admin token and the stream crosses the network in clear)."
  type        = string
  default     = null

  validation {
    condition     = var.certificate_arn == null || can(regex("^arn:[^:]+:acm:", var.certificate_arn))
    error_message = "The certificate_arn must be an ACM certificate ARN or null."
  }
}

variable "admin_port" {
  description = "Port of the admin listener: the UI, the admin API and the consumer routes, admitted from the operator prefix list only (modules/security, same admin_port). HTTPS with certificate_arn, HTTP without. The consumer listener (443 or 80) forwards the consumer routes only."
  type        = number
  default     = 8443

  validation {
    condition     = var.admin_port >= 1 && var.admin_port <= 65535 && floor(var.admin_port) == var.admin_port && var.admin_port != (var.certificate_arn == null ? 80 : 443)
    error_message = "The admin_port must be a TCP port number (1-65535) other than the consumer listener's port (443 with certificate_arn, 80 without), such as 8443."
  }
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"

  validation {
    condition     = startswith(var.ssl_policy, "ELBSecurityPolicy-TLS13-") || startswith(var.ssl_policy, "ELBSecurityPolicy-FS-1-2-")
    error_message = "The ssl_policy must be a TLS 1.2+ policy (ELBSecurityPolicy-TLS13-* or ELBSecurityPolicy-FS-1-2-*)."
  }
}

variable "container_port" {
  description = "Port the sink listens on inside the task (TUMBLEWEED_LISTEN is 0.0.0.0:<port>)."
  type        = number
  default     = 8080

  validation {
    condition     = var.container_port >= 1024 && var.container_port <= 65535
    error_message = "The container_port must be an unprivileged port (1024-65535)."
  }
}

variable "health_check_path" {
  description = "HTTP path the load balancer (and so ECS) probes: the sink's liveness route /healthz, which answers without asking Kafka. Never /readyz: a Kafka blip would then get every sink task replaced."
  type        = string
  default     = "/healthz"

  validation {
    condition     = startswith(var.health_check_path, "/") && var.health_check_path != "/readyz"
    error_message = "The health_check_path must start with / and must not be the readiness route /readyz (it fails whenever Kafka is unreachable)."
  }
}

variable "desired_count" {
  description = "Number of sink tasks when the service is created; afterwards Application Auto Scaling owns the count within min_count..max_count (the service ignores this value)."
  type        = number
  default     = 2

  validation {
    condition     = var.desired_count >= var.min_count && var.desired_count <= var.max_count
    error_message = "The desired_count (the count at creation) must lie within min_count..max_count."
  }
}

variable "min_count" {
  description = "Fewest sink tasks the autoscaler keeps (scale-in stops here). Equal to max_count: a fixed count, no scaling policy."
  type        = number
  default     = 2

  validation {
    condition     = var.min_count >= 1 && var.min_count <= var.max_count && floor(var.min_count) == var.min_count
    error_message = "The min_count must be a whole number from 1 to max_count."
  }
}

variable "max_count" {
  description = "Most sink tasks the autoscaler starts (scale-out stops here)."
  type        = number
  default     = 4

  validation {
    condition     = var.max_count >= 1 && var.max_count <= 20 && floor(var.max_count) == var.max_count
    error_message = "The max_count must be a whole number from 1 to 20."
  }
}

variable "target_cpu_percent" {
  description = "Average CPU utilization of the sink service (percent of the tasks' CPU) that target tracking keeps: above it tasks are added, well below it removed."
  type        = number
  default     = 60

  validation {
    condition     = var.target_cpu_percent >= 10 && var.target_cpu_percent <= 90
    error_message = "The target_cpu_percent must be between 10 and 90."
  }
}

variable "scale_in_cooldown_seconds" {
  description = "Seconds after a scale-in before the next one. Long by default: SSE streams are long-lived, each removed task cuts its streams (consumers reconnect with Last-Event-ID), and streams stay on the tasks they opened on, so CPU settles slowly."
  type        = number
  default     = 900

  validation {
    condition     = var.scale_in_cooldown_seconds >= 60 && var.scale_in_cooldown_seconds <= 3600
    error_message = "The scale_in_cooldown_seconds must be between 60 and 3600."
  }
}

variable "scale_out_cooldown_seconds" {
  description = "Seconds after a scale-out before the next one (a new task needs about a minute to pass its health check and take connections)."
  type        = number
  default     = 120

  validation {
    condition     = var.scale_out_cooldown_seconds >= 0 && var.scale_out_cooldown_seconds <= 3600
    error_message = "The scale_out_cooldown_seconds must be between 0 and 3600."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the metrics the sink publishes as Embedded Metric Format log lines (TUMBLEWEED_EMF_NAMESPACE); the dimension Deployment is name (TUMBLEWEED_EMF_DEPLOYMENT)."
  type        = string
  default     = "Tumbleweed"

  validation {
    condition     = can(regex("^[0-9A-Za-z.#:_/-]{1,255}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "The metrics_namespace must be 1 to 255 of the characters CloudWatch allows (letters, digits, . - _ / # :) and must not start with AWS/."
  }
}

variable "replication_factor" {
  description = "Replication factor of the topics the sink creates (TUMBLEWEED_TOPIC_REPLICATION_FACTOR): the Kafka cluster's."
  type        = number
  default     = 3

  validation {
    condition     = var.replication_factor >= 1 && var.replication_factor <= 5 && floor(var.replication_factor) == var.replication_factor
    error_message = "The replication_factor must be a whole number from 1 to 5."
  }
}

variable "cpu" {
  description = "Fargate CPU units of a sink task (1024 = 1 vCPU)."
  type        = number
  default     = 512

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096], var.cpu)
    error_message = "The cpu must be one of 256, 512, 1024, 2048, 4096."
  }
}

variable "memory" {
  description = "Memory of a sink task in MiB."
  type        = number
  default     = 1024

  validation {
    condition     = var.memory >= 512 && var.memory <= 30720
    error_message = "The memory must be between 512 and 30720 MiB."
  }
}

variable "sse_keepalive_seconds" {
  description = "Interval of the SSE keepalive comments the sink sends on idle streams (TUMBLEWEED_SSE_KEEPALIVE_SECS)."
  type        = number
  default     = 15

  validation {
    condition     = var.sse_keepalive_seconds >= 1 && var.sse_keepalive_seconds <= 300
    error_message = "The sse_keepalive_seconds must be between 1 and 300."
  }
}

variable "lb_idle_timeout_seconds" {
  description = "Idle timeout of the load balancer. It must exceed the SSE keepalive, or idle streams are cut between two keepalives."
  type        = number
  default     = 120

  validation {
    condition     = var.lb_idle_timeout_seconds > var.sse_keepalive_seconds && var.lb_idle_timeout_seconds <= 4000
    error_message = "The lb_idle_timeout_seconds must be greater than sse_keepalive_seconds and at most 4000."
  }
}

variable "lb_deletion_protection" {
  description = "Whether the load balancer refuses deletion (turn off before terraform destroy)."
  type        = bool
  default     = true
}

variable "lb_access_log_retention_days" {
  description = "Days the load balancer access logs are kept in their S3 bucket."
  type        = number
  default     = 365

  validation {
    condition     = var.lb_access_log_retention_days >= 1 && var.lb_access_log_retention_days <= 3653
    error_message = "The lb_access_log_retention_days must be between 1 and 3653."
  }
}

variable "kafka_bootstrap_servers" {
  description = "Kafka bootstrap string (TUMBLEWEED_KAFKA_BOOTSTRAP); the sink speaks PLAINTEXT to it."
  type        = string
}

variable "connect_url" {
  description = "Kafka Connect REST URL (TUMBLEWEED_CONNECT_URL)."
  type        = string
}

variable "source_db_password_secret_arn" {
  description = "Deprecated (use source_db_password_secrets): optional Secrets Manager ARN of one source database password, exposed to the sink as TUMBLEWEED_SOURCE_DB_PASSWORD."
  type        = string
  default     = null

  validation {
    condition     = var.source_db_password_secret_arn == null || (can(regex("^arn:[^:]+:secretsmanager:", var.source_db_password_secret_arn)) && !can(regex("[*?]", var.source_db_password_secret_arn)))
    error_message = "The source_db_password_secret_arn must be a Secrets Manager secret ARN without wildcards (* or ?), or null: the execution roles may read exactly this secret."
  }
}

variable "source_db_password_secrets" {
  description = "Source database passwords by key: KEY => full Secrets Manager secret ARN. ECS injects each as TUMBLEWEED_SECRET_<KEY> into the sink and into Connect (same map there), and the execution role may read exactly these ARNs. A source refers to one as password_secret: \"env:TUMBLEWEED_SECRET_<KEY>\"."
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

variable "source_default_sslmode" {
  description = "TLS mode of a source that does not set its own sslmode (TUMBLEWEED_SOURCE_DEFAULT_SSLMODE): disable, prefer, require, verify-ca or verify-full. The verify modes check the server against the Amazon RDS CA bundle (TUMBLEWEED_SOURCE_DEFAULT_SSLROOTCERT=rds), which the Connect workers download at start."
  type        = string
  default     = "verify-full"

  validation {
    condition     = contains(["disable", "prefer", "require", "verify-ca", "verify-full"], var.source_default_sslmode)
    error_message = "The source_default_sslmode must be one of disable, prefer, require, verify-ca, verify-full (PostgreSQL's sslmode names; verify-full checks the certificate and the host name)."
  }
}

variable "deployment_id" {
  description = "This deployment's id in the name of every replication slot and publication it creates (tw_<id>_<source>; TUMBLEWEED_DEPLOYMENT_ID): 1 to 16 characters among a-z and 0-9. Null derives it from name without dashes, cut to 16. Deployments sharing a source database must have different ids; keep it stable for the life of the deployment (a new id no longer recognises the old slots as its own)."
  type        = string
  default     = null

  validation {
    condition     = var.deployment_id == null || can(regex("^[a-z0-9]{1,16}$", var.deployment_id))
    error_message = "The deployment_id must be 1 to 16 characters among a-z and 0-9 (no dash or underscore: the slot prefix tw_<id>_ must not be a prefix of another deployment's), or null to derive it from name."
  }
}

variable "connect_rds_ca_path" {
  description = "Path of the Amazon RDS CA bundle on the Connect workers (TUMBLEWEED_CONNECT_RDS_CA_PATH): the sink writes it into Debezium connector configs as database.sslrootcert. Pass the connect module's rds_ca_bundle_path output."
  type        = string
  default     = "/tmp/tumbleweed/rds-global-bundle.pem"

  validation {
    condition     = can(regex("^/[A-Za-z0-9._/-]+$", var.connect_rds_ca_path)) && !endswith(var.connect_rds_ca_path, "/") && !strcontains(var.connect_rds_ca_path, "..")
    error_message = "The connect_rds_ca_path must be an absolute file path of letters, digits and . _ / - without .. (the connect module's rds_ca_bundle_path output)."
  }
}

variable "extra_environment" {
  description = "Additional non-secret environment variables of the sink container. Never put a password here: use a secret."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.extra_environment) : can(regex("^[A-Z_][A-Z0-9_]*$", k)) && !can(regex("(PASSWORD|SECRET|TOKEN)", k))])
    error_message = "Keys must be upper-case environment variable names, and none may look like a secret (PASSWORD, SECRET, TOKEN): pass those as secrets."
  }
}

variable "log_retention_days" {
  description = "Retention of the sink log group, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "The log_retention_days must be a retention period CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "cpu_architecture" {
  description = "CPU architecture of the task (runtime_platform): X86_64 or ARM64. It must match the image's platform (tumbleweed image build --platform linux/amd64 for X86_64, linux/arm64 for ARM64)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "The cpu_architecture must be X86_64 or ARM64 (Fargate's names, not amd64/arm64)."
  }
}

variable "start_after" {
  description = "Ids of services this one must start after (the Kafka node services; empty with a Kafka cluster not managed here). Only ordering: their values are not used."
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

variable "enable_execute_command" {
  description = "Whether operators may open a session in sink tasks with ECS Exec. The image is distroless (no shell), so this is off by default."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource of this module (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
