variable "name" {
  description = "Name prefix used in every resource name (the deployment's name_prefix)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "The name must match ^[a-z][a-z0-9-]{1,20}$."
  }
}

variable "vpc_id" {
  description = "ID of the VPC the security groups belong to."
  type        = string
}

variable "operator_cidrs" {
  description = "Initial entries of the operators' prefix list (UI and admin API). Later edits are made on the live prefix list and are never reverted by terraform."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.operator_cidrs : can(cidrnetmask(c))])
    error_message = "Every operator_cidrs entry must be an IPv4 CIDR block such as 203.0.113.0/24."
  }
}

variable "consumer_cidrs" {
  description = "Initial entries of the consumers' prefix list (SSE streams). Later edits are made on the live prefix list and are never reverted by terraform."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.consumer_cidrs : can(cidrnetmask(c))])
    error_message = "Every consumer_cidrs entry must be an IPv4 CIDR block such as 203.0.113.0/24."
  }
}

variable "prefix_list_max_entries" {
  description = "Capacity of each prefix list. A security group rule that references a prefix list counts max_entries rules against the group's quota (60 inbound by default), and two lists are referenced once each (operators on admin_port, consumers on listener_port)."
  type        = number
  default     = 20

  validation {
    condition     = var.prefix_list_max_entries >= 1 && var.prefix_list_max_entries <= 30 && floor(var.prefix_list_max_entries) == var.prefix_list_max_entries
    error_message = "The prefix_list_max_entries must be a whole number from 1 to 30 (two lists of 30 fill the default 60-rule security group quota)."
  }
}

variable "listener_port" {
  description = "Port of the load balancer's consumer listener (443 with a certificate, 80 without): admitted from the consumer prefix list."
  type        = number

  validation {
    condition     = contains([80, 443], var.listener_port)
    error_message = "The listener_port must be 80 or 443."
  }
}

variable "admin_port" {
  description = "Port of the load balancer's admin listener (UI, admin API): admitted from the operator prefix list only. The sink module's admin_port."
  type        = number
  default     = 8443

  validation {
    condition     = var.admin_port >= 1 && var.admin_port <= 65535 && floor(var.admin_port) == var.admin_port && var.admin_port != var.listener_port
    error_message = "The admin_port must be a TCP port number (1-65535) other than listener_port, such as 8443."
  }
}

variable "sink_port" {
  description = "Container port of the Tumbleweed sink (HTTP API, UI and SSE)."
  type        = number
  default     = 8080

  validation {
    condition     = var.sink_port >= 1024 && var.sink_port <= 65535
    error_message = "The sink_port must be an unprivileged port (1024-65535)."
  }
}

variable "source_database_cidrs" {
  description = "CIDR blocks of the source PostgreSQL database(s). The sink and Kafka Connect may open connections to these on postgres_port; nothing may connect to them from here otherwise."
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

variable "existing_kafka_security_group_id" {
  description = "Security group of an existing Kafka cluster (such as MSK) the sink and Connect use instead of the ECS brokers, or null. They get egress to it on existing_kafka_ports; the group must admit the sink's and Connect's groups itself."
  type        = string
  default     = null

  validation {
    condition     = var.existing_kafka_security_group_id == null || can(regex("^sg-[0-9a-f]{8,17}$", var.existing_kafka_security_group_id))
    error_message = "The existing_kafka_security_group_id must be a security group id (sg-...) or null."
  }
}

variable "existing_kafka_ports" {
  description = "Client ports of the existing Kafka cluster's brokers (from its bootstrap servers), used with existing_kafka_security_group_id."
  type        = list(number)
  default     = []

  validation {
    condition     = alltrue([for p in var.existing_kafka_ports : p >= 1 && p <= 65535])
    error_message = "Every existing_kafka_ports entry must be a TCP port number."
  }
}

variable "tags" {
  description = "Tags added to every resource of this module (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
