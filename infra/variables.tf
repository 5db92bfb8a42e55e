################################################################################
# Deployment
################################################################################

variable "region" {
  description = "AWS region to deploy into, such as eu-central-1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "The region must be an AWS region name such as eu-central-1."
  }
}

variable "name_prefix" {
  description = "Short name of this deployment, used in every resource name so that two deployments can share an account and region."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name_prefix))
    error_message = "The name_prefix must match ^[a-z][a-z0-9-]{1,20}$: a lower-case letter, then 1 to 20 lower-case letters, digits or dashes."
  }
}

variable "tags" {
  description = "Tags applied to every resource (through the provider's default_tags and each module's tags)."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "Retention of every CloudWatch log group of the deployment, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "The log_retention_days must be a retention period CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

################################################################################
# Network
################################################################################

variable "vpc_cidr" {
  description = "IPv4 CIDR block of the VPC (/18 or larger)."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 18
    error_message = "The vpc_cidr must be a valid IPv4 CIDR block of /18 or larger."
  }
}

variable "availability_zone_count" {
  description = "Number of availability zones to spread subnets, NAT gateways and Kafka nodes over. At least 3: the 3 controllers and 3 brokers land one per zone, so losing a zone keeps the KRaft quorum and 2 of 3 replicas (min ISR 2). The region must have this many zones (checked at plan), and the VPC must fit this many private /20s after the public /24s (a /18 fits 3)."
  type        = number
  default     = 3

  validation {
    condition     = var.availability_zone_count >= 3 && var.availability_zone_count <= 6 && floor(var.availability_zone_count) == var.availability_zone_count
    error_message = "The availability_zone_count must be a whole number from 3 to 6: with 2 zones, two of the three controllers share a zone and losing it loses the quorum."
  }

  validation {
    # Public /24s take the VPC's first /20; private /20s are numbered 1..n after it.
    condition     = !can(cidrhost(var.vpc_cidr, 0)) || var.availability_zone_count <= pow(2, 20 - tonumber(split("/", var.vpc_cidr)[1])) - 1
    error_message = "The vpc_cidr is too small for availability_zone_count private /20 subnets after the public /24s: a /18 fits 3 zones, a /17 fits 7."
  }
}

variable "vpc_id" {
  description = "An existing VPC to deploy into instead of creating one (then vpc_cidr, availability_zone_count and single_nat_gateway are unused). Its private subnets need outbound access (NAT, or VPC endpoints plus an image mirror) and DNS support."
  type        = string
  default     = null

  validation {
    condition     = var.vpc_id == null || try(startswith(var.vpc_id, "vpc-") && length(var.vpc_id) > 4, false)
    error_message = "The vpc_id must be a VPC id such as vpc-0123456789abcdef0, or null."
  }
}

variable "private_subnet_ids" {
  description = "With vpc_id: the private subnets of the tasks and EFS mount targets, one per availability zone, in at least 3 zones (Kafka node N runs in subnet (N-1) mod count)."
  type        = list(string)
  default     = []

  validation {
    condition     = var.vpc_id == null ? length(var.private_subnet_ids) == 0 : length(var.private_subnet_ids) >= 3 && length(var.private_subnet_ids) <= 6
    error_message = "Give 3 to 6 private_subnet_ids (one per zone) with vpc_id, and none without it."
  }
}

variable "public_subnet_ids" {
  description = "With vpc_id: the public subnets of the load balancer, in at least 2 zones."
  type        = list(string)
  default     = []

  validation {
    condition     = var.vpc_id == null ? length(var.public_subnet_ids) == 0 : length(var.public_subnet_ids) >= 2
    error_message = "Give at least 2 public_subnet_ids with vpc_id, and none without it."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper; a zone outage cuts outbound traffic everywhere) instead of one per zone."
  type        = bool
  default     = false
}

################################################################################
# Public entry point
################################################################################

variable "operator_cidrs" {
  description = "Initial CIDR blocks of the operators' prefix list: the admin listener on admin_port (UI, admin API and consumer routes). Edited later with the helper CLI on the live list; terraform never reverts those edits."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.operator_cidrs : can(cidrnetmask(c))])
    error_message = "Every operator_cidrs entry must be an IPv4 CIDR block such as 203.0.113.0/24."
  }

  validation {
    condition     = length(var.operator_cidrs) <= var.prefix_list_max_entries
    error_message = "There are more operator_cidrs than prefix_list_max_entries."
  }
}

variable "consumer_cidrs" {
  description = "Initial CIDR blocks of the consumers' prefix list: the consumer listener (443, or 80 without certificate), which forwards the consumer routes only (SSE streams, acks, tickets, health). Edited later with the helper CLI on the live list; terraform never reverts those edits."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.consumer_cidrs : can(cidrnetmask(c))])
    error_message = "Every consumer_cidrs entry must be an IPv4 CIDR block such as 203.0.113.0/24."
  }

  validation {
    condition     = length(var.consumer_cidrs) <= var.prefix_list_max_entries
    error_message = "There are more consumer_cidrs than prefix_list_max_entries."
  }
}

variable "prefix_list_max_entries" {
  description = "Capacity of each of the two prefix lists. Each list is referenced once by the load balancer's security group (operators on admin_port, consumers on the consumer port), and each reference counts this many rules against its quota (60 inbound by default)."
  type        = number
  default     = 20

  validation {
    condition     = var.prefix_list_max_entries >= 1 && var.prefix_list_max_entries <= 30 && floor(var.prefix_list_max_entries) == var.prefix_list_max_entries
    error_message = "The prefix_list_max_entries must be a whole number from 1 to 30."
  }
}

variable "certificate_arn" {
  description = "ACM certificate ARN for the load balancer. Set: HTTPS on 443. Null: plain HTTP on 80, for evaluation only."
  type        = string
  default     = null

  validation {
    condition     = var.certificate_arn == null || can(regex("^arn:[^:]+:acm:", var.certificate_arn))
    error_message = "The certificate_arn must be an ACM certificate ARN or null."
  }
}

variable "admin_port" {
  description = "Port of the load balancer's admin listener (UI, admin API and consumer routes; HTTPS with certificate_arn), admitted from the operator prefix list only. The consumer listener (443, or 80 without certificate) forwards the consumer routes only and answers 404 to everything else."
  type        = number
  default     = 8443

  validation {
    condition     = var.admin_port >= 1 && var.admin_port <= 65535 && floor(var.admin_port) == var.admin_port && var.admin_port != (var.certificate_arn == null ? 80 : 443)
    error_message = "The admin_port must be a TCP port number (1-65535) other than the consumer listener's port (443 with certificate_arn, 80 without), such as 8443."
  }
}

variable "lb_deletion_protection" {
  description = "Whether the load balancer refuses deletion. Set to false and apply before terraform destroy."
  type        = bool
  default     = true
}

variable "sse_keepalive_seconds" {
  description = "Interval of the SSE keepalive comments the sink sends on idle streams."
  type        = number
  default     = 15

  validation {
    condition     = var.sse_keepalive_seconds >= 1 && var.sse_keepalive_seconds <= 300
    error_message = "The sse_keepalive_seconds must be between 1 and 300."
  }
}

variable "lb_idle_timeout_seconds" {
  description = "Idle timeout of the load balancer; must exceed sse_keepalive_seconds so idle streams are not cut."
  type        = number
  default     = 120

  validation {
    condition     = var.lb_idle_timeout_seconds > var.sse_keepalive_seconds && var.lb_idle_timeout_seconds <= 4000
    error_message = "The lb_idle_timeout_seconds must be greater than sse_keepalive_seconds and at most 4000."
  }
}

################################################################################
# Source database
################################################################################

variable "source_database_cidrs" {
  description = "CIDR blocks of the source PostgreSQL database(s); the sink and Connect may connect to them on postgres_port."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.source_database_cidrs : can(cidrnetmask(c)) && c != "0.0.0.0/0"])
    error_message = "Every source_database_cidrs entry must be an IPv4 CIDR block, and 0.0.0.0/0 is not allowed."
  }
}

variable "postgres_port" {
  description = "Port of the source PostgreSQL database(s)."
  type        = number
  default     = 5432

  validation {
    condition     = var.postgres_port >= 1 && var.postgres_port <= 65535
    error_message = "The postgres_port must be a TCP port number."
  }
}

variable "source_db_password_secrets" {
  description = "Source database passwords: KEY => full ARN of an existing Secrets Manager secret. ECS gives each to the sink and to Connect as TUMBLEWEED_SECRET_<KEY> (never as a plain value); a source says password_secret: \"env:TUMBLEWEED_SECRET_<KEY>\". The execution roles may read exactly these ARNs."
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
  description = "KMS keys the source_db_password_secrets are encrypted with, when not this deployment's key (for example secrets shared with other systems or accounts); the sink's and Connect's execution roles may decrypt with them through Secrets Manager only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for k in var.source_db_password_kms_key_arns : can(regex("^arn:[^:]+:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", k))])
    error_message = "Every source_db_password_kms_key_arns entry must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)."
  }
}

variable "source_db_password_secret_arn" {
  description = "Deprecated (use source_db_password_secrets): optional ARN of an existing Secrets Manager secret with the source database password, given to the sink and Connect as TUMBLEWEED_SOURCE_DB_PASSWORD (never as a plain value). Still honoured, alongside source_db_password_secrets."
  type        = string
  default     = null

  validation {
    condition     = var.source_db_password_secret_arn == null || (can(regex("^arn:[^:]+:secretsmanager:", var.source_db_password_secret_arn)) && !can(regex("[*?]", var.source_db_password_secret_arn)))
    error_message = "The source_db_password_secret_arn must be a Secrets Manager secret ARN without wildcards (* or ?), or null: the execution roles may read exactly this secret."
  }
}

variable "source_db_password_kms_key_arn" {
  description = "Deprecated (use source_db_password_kms_key_arns): KMS key the source database password secret is encrypted with, when it is not this deployment's key; the sink's and Connect's execution roles may decrypt with it through Secrets Manager only. Null: the deployment's key or the AWS managed key."
  type        = string
  default     = null

  validation {
    condition     = var.source_db_password_kms_key_arn == null || can(regex("^arn:[^:]+:kms:", var.source_db_password_kms_key_arn))
    error_message = "The source_db_password_kms_key_arn must be a KMS key ARN or null."
  }
}

variable "source_default_sslmode" {
  description = "TLS mode of a source that sets no sslmode of its own (the sink's TUMBLEWEED_SOURCE_DEFAULT_SSLMODE): disable, prefer, require, verify-ca or verify-full. The verify modes check the database's certificate against the Amazon RDS CA bundle (the sink embeds it; the Connect workers download it at start, connect_rds_ca_bundle_url)."
  type        = string
  default     = "verify-full"

  validation {
    condition     = contains(["disable", "prefer", "require", "verify-ca", "verify-full"], var.source_default_sslmode)
    error_message = "The source_default_sslmode must be one of disable, prefer, require, verify-ca, verify-full (PostgreSQL's sslmode names; verify-full checks the certificate and the host name)."
  }
}

variable "deployment_id" {
  description = "This deployment's id in the name of every replication slot and publication it creates (tw_<id>_<source>; TUMBLEWEED_DEPLOYMENT_ID): 1 to 16 characters among a-z and 0-9. Null derives it from name_prefix without dashes, cut to 16. Deployments sharing a source database must have different ids; keep it stable for the life of the deployment (a new id no longer recognises the old slots as its own)."
  type        = string
  default     = null

  validation {
    condition     = var.deployment_id == null || can(regex("^[a-z0-9]{1,16}$", var.deployment_id))
    error_message = "The deployment_id must be 1 to 16 characters among a-z and 0-9 (no dash or underscore: the slot prefix tw_<id>_ must not be a prefix of another deployment's), or null to derive it from name_prefix."
  }
}

variable "connect_rds_ca_bundle_url" {
  description = "HTTPS URL of the Amazon RDS CA bundle the Connect workers download at start (for database.sslrootcert in verify-ca/verify-full connectors); a failed download fails the worker's start. Null: no download (sources that do not verify against the RDS CA, or a Connect image that already holds the bundle at the path)."
  type        = string
  default     = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"

  validation {
    condition     = var.connect_rds_ca_bundle_url == null || can(regex("^https://[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._~/%+=-]*$", var.connect_rds_ca_bundle_url))
    error_message = "The connect_rds_ca_bundle_url must be an https:// URL without query string, quotes or spaces (such as https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem), or null."
  }
}

################################################################################
# Kafka
################################################################################

variable "kafka_image" {
  description = "Official Apache Kafka image (or a mirror of it) with an explicit version tag; the version of Kafka is chosen here."
  type        = string
  default     = "apache/kafka:3.9.1"

  validation {
    condition     = can(regex("^[^\\s]+(:[A-Za-z0-9_.-]+|@sha256:[0-9a-f]{64})$", var.kafka_image)) && !endswith(var.kafka_image, ":latest")
    error_message = "The kafka_image must carry an explicit version tag or a sha256 digest (not :latest)."
  }
}

variable "broker_cpu" {
  description = "Fargate CPU units of each Kafka broker (1024 = 1 vCPU)."
  type        = number
  default     = 1024

  validation {
    condition     = contains([512, 1024, 2048, 4096, 8192], var.broker_cpu)
    error_message = "The broker_cpu must be one of 512, 1024, 2048, 4096, 8192."
  }
}

variable "broker_memory" {
  description = "Memory of each Kafka broker in MiB (half JVM heap, half page cache)."
  type        = number
  default     = 4096

  validation {
    condition     = var.broker_memory >= 2048 && var.broker_memory <= 61440
    error_message = "The broker_memory must be between 2048 and 61440 MiB."
  }

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
    }, tostring(var.broker_cpu), []), var.broker_memory)
    error_message = "The broker_memory is not a Fargate combination with broker_cpu: 256 CPU takes 512-2048 MiB; 512 takes 1024-4096; 1024 takes 2048-8192; 2048 takes 4096-16384; 4096 takes 8192-30720 (1024 steps); 8192 takes 16384-61440 (4096 steps)."
  }
}

variable "controller_cpu" {
  description = "Fargate CPU units of each KRaft controller."
  type        = number
  default     = 512

  validation {
    condition     = contains([256, 512, 1024, 2048], var.controller_cpu)
    error_message = "The controller_cpu must be one of 256, 512, 1024, 2048."
  }
}

variable "controller_memory" {
  description = "Memory of each KRaft controller in MiB."
  type        = number
  default     = 2048

  validation {
    condition     = var.controller_memory >= 1024 && var.controller_memory <= 16384
    error_message = "The controller_memory must be between 1024 and 16384 MiB."
  }

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
    }, tostring(var.controller_cpu), []), var.controller_memory)
    error_message = "The controller_memory is not a Fargate combination with controller_cpu: 256 CPU takes 512-2048 MiB; 512 takes 1024-4096; 1024 takes 2048-8192; 2048 takes 4096-16384; 4096 takes 8192-30720 (1024 steps); 8192 takes 16384-61440 (4096 steps)."
  }
}

variable "existing_kafka_bootstrap_servers" {
  description = "Bootstrap servers (host:port,host:port) of an existing Kafka cluster, such as Amazon MSK, to use instead of creating the ECS Kafka cluster. Empty: create it (modules/kafka). The sink and Connect speak PLAINTEXT: the cluster must accept plaintext clients (MSK: port 9092) until TLS/IAM authentication is supported."
  type        = string
  default     = ""

  validation {
    condition = var.existing_kafka_bootstrap_servers == "" || alltrue([
      for s in split(",", var.existing_kafka_bootstrap_servers) :
      can(regex("^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?:[0-9]{1,5}$", s)) && try(tonumber(split(":", s)[1]) >= 1 && tonumber(split(":", s)[1]) <= 65535, false)
    ])
    error_message = "The existing_kafka_bootstrap_servers must be empty or comma-separated host:port pairs without spaces, such as b-1.tw.abc123.c2.kafka.eu-central-1.amazonaws.com:9092,b-2.tw.abc123.c2.kafka.eu-central-1.amazonaws.com:9092."
  }
}

variable "existing_kafka_security_group_id" {
  description = "With existing_kafka_bootstrap_servers: the security group of the existing cluster's brokers. The sink and Connect get egress to it on the bootstrap ports; the group itself must admit them (outputs kafka_client_security_group_ids)."
  type        = string
  default     = null

  validation {
    condition     = var.existing_kafka_bootstrap_servers == "" ? var.existing_kafka_security_group_id == null : can(regex("^sg-[0-9a-f]{8,17}$", var.existing_kafka_security_group_id))
    error_message = "Give existing_kafka_security_group_id (sg-...) with existing_kafka_bootstrap_servers, and none without it."
  }
}

variable "existing_kafka_replication_factor" {
  description = "With existing_kafka_bootstrap_servers: replication factor of the topics Tumbleweed creates there (Connect's config, offset and status topics, and the sink's topics). Unused when the ECS Kafka cluster is created (it uses 3)."
  type        = number
  default     = 3

  validation {
    condition     = var.existing_kafka_replication_factor >= 1 && var.existing_kafka_replication_factor <= 5 && floor(var.existing_kafka_replication_factor) == var.existing_kafka_replication_factor
    error_message = "The existing_kafka_replication_factor must be a whole number from 1 to 5 (and at most the cluster's broker count)."
  }
}

################################################################################
# Kafka Connect
################################################################################

variable "connect_image" {
  description = "Kafka Connect image with the Debezium PostgreSQL connector (or a mirror of it), with an explicit tag."
  type        = string
  default     = "debezium/connect:2.7.3.Final"

  validation {
    condition     = can(regex("^[^\\s]+(:[A-Za-z0-9_.-]+|@sha256:[0-9a-f]{64})$", var.connect_image)) && !endswith(var.connect_image, ":latest")
    error_message = "The connect_image must carry an explicit version tag or a sha256 digest (not :latest)."
  }
}

variable "connect_cpu" {
  description = "Fargate CPU units of each Connect worker."
  type        = number
  default     = 1024

  validation {
    condition     = contains([512, 1024, 2048, 4096], var.connect_cpu)
    error_message = "The connect_cpu must be one of 512, 1024, 2048, 4096."
  }
}

variable "connect_memory" {
  description = "Memory of each Connect worker in MiB."
  type        = number
  default     = 2048

  validation {
    condition     = var.connect_memory >= 1024 && var.connect_memory <= 30720
    error_message = "The connect_memory must be between 1024 and 30720 MiB."
  }

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
    }, tostring(var.connect_cpu), []), var.connect_memory)
    error_message = "The connect_memory is not a Fargate combination with connect_cpu: 256 CPU takes 512-2048 MiB; 512 takes 1024-4096; 1024 takes 2048-8192; 2048 takes 4096-16384; 4096 takes 8192-30720 (1024 steps); 8192 takes 16384-61440 (4096 steps)."
  }
}

variable "connect_desired_count" {
  description = "Number of Connect workers (distributed mode)."
  type        = number
  default     = 2

  validation {
    condition     = var.connect_desired_count >= 1 && var.connect_desired_count <= 10
    error_message = "The connect_desired_count must be between 1 and 10."
  }
}

################################################################################
# Sink
################################################################################

variable "sink_image" {
  description = "Full image reference of the Tumbleweed sink. Null: this deployment's ECR repository at sink_image_tag."
  type        = string
  default     = null

  validation {
    condition     = var.sink_image == null || can(regex("^[^\\s]+(:[A-Za-z0-9_.-]+|@sha256:[0-9a-f]{64})$", var.sink_image))
    error_message = "The sink_image must carry an explicit tag or a sha256 digest."
  }
}

variable "sink_image_tag" {
  description = "Tag of the sink image in this deployment's ECR repository (used when sink_image is null). The repository's tags are immutable."
  type        = string
  default     = "0.1.0"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.sink_image_tag)) && var.sink_image_tag != "latest"
    error_message = "The sink_image_tag must be a valid image tag other than latest."
  }
}

variable "sink_cpu" {
  description = "Fargate CPU units of each sink task."
  type        = number
  default     = 512

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096], var.sink_cpu)
    error_message = "The sink_cpu must be one of 256, 512, 1024, 2048, 4096."
  }
}

variable "sink_memory" {
  description = "Memory of each sink task in MiB."
  type        = number
  default     = 1024

  validation {
    condition     = var.sink_memory >= 512 && var.sink_memory <= 30720
    error_message = "The sink_memory must be between 512 and 30720 MiB."
  }

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
    }, tostring(var.sink_cpu), []), var.sink_memory)
    error_message = "The sink_memory is not a Fargate combination with sink_cpu: 256 CPU takes 512-2048 MiB; 512 takes 1024-4096; 1024 takes 2048-8192; 2048 takes 4096-16384; 4096 takes 8192-30720 (1024 steps); 8192 takes 16384-61440 (4096 steps)."
  }
}

variable "sink_desired_count" {
  description = "Number of sink tasks when the service is created. Afterwards the autoscaler owns the count within sink_min_count..sink_max_count and Terraform ignores this value (change the range instead)."
  type        = number
  default     = 2

  validation {
    condition     = var.sink_desired_count >= var.sink_min_count && var.sink_desired_count <= var.sink_max_count
    error_message = "The sink_desired_count (the count at creation) must lie within sink_min_count..sink_max_count."
  }
}

variable "sink_min_count" {
  description = "Fewest sink tasks: the autoscaler never scales in below it. Equal to sink_max_count: a fixed count (no scaling policy)."
  type        = number
  default     = 2

  validation {
    condition     = var.sink_min_count >= 1 && var.sink_min_count <= var.sink_max_count && floor(var.sink_min_count) == var.sink_min_count
    error_message = "The sink_min_count must be a whole number with 1 <= sink_min_count <= sink_max_count."
  }
}

variable "sink_max_count" {
  description = "Most sink tasks: the autoscaler never scales out beyond it."
  type        = number
  default     = 4

  validation {
    condition     = var.sink_max_count >= 1 && var.sink_max_count <= 20 && floor(var.sink_max_count) == var.sink_max_count
    error_message = "The sink_max_count must be a whole number from 1 to 20."
  }
}

variable "sink_target_cpu_percent" {
  description = "Average CPU of the sink service (percent) that target tracking holds: tasks are added above it (2 min cooldown) and removed well below it (15 min cooldown, as every removed task cuts its SSE streams)."
  type        = number
  default     = 60

  validation {
    condition     = var.sink_target_cpu_percent >= 10 && var.sink_target_cpu_percent <= 90
    error_message = "The sink_target_cpu_percent must be between 10 and 90."
  }
}

variable "sink_cpu_architecture" {
  description = "CPU architecture of the sink tasks: X86_64 or ARM64. It must match the platform of the sink image: `tumbleweed image build` takes the sink binary's architecture from its ELF header (linux/amd64 = X86_64, linux/arm64 = ARM64), and `tumbleweed image push` refuses an image that does not match this output."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.sink_cpu_architecture)
    error_message = "The sink_cpu_architecture must be X86_64 or ARM64 (Fargate's names, not amd64/arm64)."
  }
}

variable "sink_extra_environment" {
  description = "Additional non-secret environment variables of the sink container (no passwords: use source_db_password_secrets)."
  type        = map(string)
  default     = {}
}

################################################################################
# Metrics and alarms
################################################################################

variable "metrics_namespace" {
  description = "CloudWatch namespace of the metrics the sink publishes as Embedded Metric Format log lines (dimension Deployment = name_prefix), which the alarms watch."
  type        = string
  default     = "Tumbleweed"

  validation {
    condition     = can(regex("^[0-9A-Za-z.#:_/-]{1,255}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "The metrics_namespace must be 1 to 255 of the characters CloudWatch allows (letters, digits, . - _ / # :) and must not start with AWS/."
  }
}

variable "alarm_actions" {
  description = "SNS topic ARNs every alarm notifies on ALARM and on OK. Empty: the alarms exist and show their state, but notify nobody."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.alarm_actions : can(regex("^arn:[^:]+:sns:[^:]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$", a))])
    error_message = "Every alarm_actions entry must be an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>)."
  }
}

variable "alarm_retained_wal_bytes_threshold" {
  description = "Alarm when a replication slot retains more WAL than this on its source database, in bytes (MaxRetainedWalBytes). Default 10 GiB."
  type        = number
  default     = 10737418240

  validation {
    condition     = var.alarm_retained_wal_bytes_threshold >= 1048576
    error_message = "The alarm_retained_wal_bytes_threshold must be at least 1 MiB (1048576 bytes)."
  }
}

variable "alarm_consumer_lag_events_threshold" {
  description = "Alarm when a consumer stays more than this many events behind for 5 minutes (MaxConsumerLagEvents)."
  type        = number
  default     = 100000

  validation {
    condition     = var.alarm_consumer_lag_events_threshold >= 1
    error_message = "The alarm_consumer_lag_events_threshold must be at least 1."
  }
}

variable "alarm_kafka_unreachable_periods" {
  description = "Alarm when the sink reports Kafka unreachable (KafkaReachable < 1), or publishes no metrics, for this many consecutive minutes."
  type        = number
  default     = 3

  validation {
    condition     = var.alarm_kafka_unreachable_periods >= 1 && var.alarm_kafka_unreachable_periods <= 60 && floor(var.alarm_kafka_unreachable_periods) == var.alarm_kafka_unreachable_periods
    error_message = "The alarm_kafka_unreachable_periods must be a whole number from 1 to 60."
  }
}

variable "alarm_unhealthy_targets_threshold" {
  description = "Alarm when more sink targets than this fail the load balancer health check for 3 minutes (UnHealthyHostCount)."
  type        = number
  default     = 0

  validation {
    condition     = var.alarm_unhealthy_targets_threshold >= 0 && floor(var.alarm_unhealthy_targets_threshold) == var.alarm_unhealthy_targets_threshold
    error_message = "The alarm_unhealthy_targets_threshold must be a whole number, 0 or more."
  }
}

variable "alarm_sink_5xx_threshold" {
  description = "Alarm when the sink answers more than this many 5xx responses in 5 minutes (HTTPCode_Target_5XX_Count)."
  type        = number
  default     = 10

  validation {
    condition     = var.alarm_sink_5xx_threshold >= 0 && floor(var.alarm_sink_5xx_threshold) == var.alarm_sink_5xx_threshold
    error_message = "The alarm_sink_5xx_threshold must be a whole number, 0 or more."
  }
}
