variable "name" {
  description = "Name prefix used in every resource name and Name tag (the deployment's name_prefix)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "The name must match ^[a-z][a-z0-9-]{1,20}$."
  }
}

variable "cidr" {
  description = "IPv4 CIDR block of the VPC. Public subnets are /24s and private subnets /20s carved out of it, so a /16 is recommended."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.cidr, 0)) && tonumber(split("/", var.cidr)[1]) <= 18
    error_message = "The cidr must be a valid IPv4 CIDR block of /18 or larger."
  }
}

variable "azs" {
  description = "Availability zones to spread the subnets over, one public and one private subnet per zone."
  type        = list(string)

  validation {
    condition     = length(var.azs) >= 2 && length(var.azs) <= 6 && length(distinct(var.azs)) == length(var.azs)
    error_message = "Between two and six distinct availability zones are required."
  }
}

variable "single_nat_gateway" {
  description = "When true, one NAT gateway in the first zone serves every private subnet (cheaper, but a zone outage cuts egress for all). When false, one NAT gateway per zone."
  type        = bool
  default     = false
}

variable "enable_flow_logs" {
  description = "Whether to send VPC flow logs (rejected and accepted traffic) to CloudWatch Logs."
  type        = bool
  default     = true
}

variable "flow_log_retention_days" {
  description = "Retention of the VPC flow log group, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "The flow_log_retention_days must be a retention period CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the flow log group."
  type        = string

  validation {
    condition     = can(regex("^arn:[^:]+:kms:", var.kms_key_arn))
    error_message = "The kms_key_arn must be a KMS key ARN."
  }
}

variable "tags" {
  description = "Tags added to every resource of this module (on top of the provider's default_tags)."
  type        = map(string)
  default     = {}
}
