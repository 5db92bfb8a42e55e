variable "name" {
  description = "Name prefix of the deployment; the namespace is <name>.<namespace_suffix>."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "The name must match ^[a-z][a-z0-9-]{1,20}$."
  }
}

variable "namespace_suffix" {
  description = "DNS suffix of the private namespace. Use a name you do not own publicly, or a subdomain of one you do."
  type        = string
  default     = "tumbleweed.internal"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$", var.namespace_suffix))
    error_message = "The namespace_suffix must be a DNS name with at least two labels, such as tumbleweed.internal."
  }
}

variable "vpc_id" {
  description = "ID of the VPC the private DNS namespace is attached to."
  type        = string
}

variable "services" {
  description = "Names of the services to register, one DNS name each (<service>.<namespace>), such as broker-1, controller-1, connect."
  type        = list(string)

  validation {
    condition     = length(var.services) > 0 && alltrue([for s in var.services : can(regex("^[a-z][a-z0-9-]{0,62}$", s))])
    error_message = "Each service name must be a DNS label: lower-case letters, digits and dashes, starting with a letter."
  }
}

variable "dns_ttl_seconds" {
  description = "TTL of the A records. Short, so a replaced task's new address is picked up quickly."
  type        = number
  default     = 10

  validation {
    condition     = var.dns_ttl_seconds >= 0 && var.dns_ttl_seconds <= 300
    error_message = "The dns_ttl_seconds must be between 0 and 300."
  }
}

variable "tags" {
  description = "Tags added to every resource of this module (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
