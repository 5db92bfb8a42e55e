# Root module: one Tumbleweed deployment (VPC, Kafka in KRaft mode, Kafka Connect with
# Debezium, the sink behind a load balancer) in one region, every name prefixed with
# var.name_prefix. The modules under ../modules own the pieces; this file wires them.

data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:Only the first availability_zone_count names (sorted) are used; AWS names new zones with the next letter, so a new zone sorts last and never changes the chosen set, and any change would show in the plan as subnet replacement.
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }

  lifecycle {
    # Fails plan with a message instead of slice() failing on a short list.
    postcondition {
      condition     = var.vpc_id != null || length(self.names) >= var.availability_zone_count
      error_message = "The region has fewer available (non-opt-in) availability zones than availability_zone_count."
    }
  }
}

locals {
  azs = slice(data.aws_availability_zones.available.names, 0, min(var.availability_zone_count, length(data.aws_availability_zones.available.names)))

  # Either the network module's VPC, or an existing one (vpc_id and its subnets).
  create_vpc         = var.vpc_id == null
  vpc_id             = local.create_vpc ? module.network[0].vpc_id : var.vpc_id
  private_subnet_ids = local.create_vpc ? module.network[0].private_subnet_ids : var.private_subnet_ids
  public_subnet_ids  = local.create_vpc ? module.network[0].public_subnet_ids : var.public_subnet_ids
  private_subnet_azs = local.create_vpc ? module.network[0].azs : [for id in var.private_subnet_ids : data.aws_subnet.private[id].availability_zone]

  # The consumer listener: 443 with a certificate, else 80, never both. The admin listener
  # is var.admin_port. Each prefix list is admitted on one port only (consumers on this one,
  # operators on admin_port): each reference costs prefix_list_max_entries rules against
  # the load balancer security group's quota.
  listener_port = var.certificate_arn == null ? 80 : 443

  controller_names = [for i in range(1, 4) : "controller-${i}"]
  broker_names     = [for i in range(1, 4) : "broker-${i}"]

  # Either the Kafka cluster on ECS (modules/kafka), or an existing one (such as MSK) given
  # by existing_kafka_bootstrap_servers. With an existing cluster nothing orders Connect and
  # the sink after Kafka (start_after is empty): the cluster is there before this apply.
  create_kafka             = var.existing_kafka_bootstrap_servers == ""
  kafka_bootstrap_servers  = local.create_kafka ? module.kafka[0].bootstrap_servers : var.existing_kafka_bootstrap_servers
  kafka_replication_factor = local.create_kafka ? module.kafka[0].replication_factor : var.existing_kafka_replication_factor
  # Ports of the existing cluster's bootstrap servers: the sink's and Connect's egress.
  existing_kafka_ports = distinct([for s in compact(split(",", var.existing_kafka_bootstrap_servers)) : tonumber(split(":", s)[1])])

  tags = merge(var.tags, { Deployment = var.name_prefix })
}

module "cluster" {
  source = "../modules/cluster"

  name               = var.name_prefix
  log_retention_days = var.log_retention_days
  tags               = local.tags
}

# An existing VPC's private subnets: their zones place the Kafka nodes (and become the
# brokers' rack ids).
data "aws_subnet" "private" {
  for_each = toset(var.private_subnet_ids)

  id = each.value
}

module "network" {
  source = "../modules/network"
  count  = local.create_vpc ? 1 : 0

  name                    = var.name_prefix
  cidr                    = var.vpc_cidr
  azs                     = local.azs
  single_nat_gateway      = var.single_nat_gateway
  kms_key_arn             = module.cluster.kms_key_arn
  flow_log_retention_days = var.log_retention_days
  tags                    = local.tags
}

module "security" {
  source = "../modules/security"

  name                    = var.name_prefix
  vpc_id                  = local.vpc_id
  operator_cidrs          = var.operator_cidrs
  consumer_cidrs          = var.consumer_cidrs
  prefix_list_max_entries = var.prefix_list_max_entries
  listener_port           = local.listener_port
  admin_port              = var.admin_port
  source_database_cidrs   = var.source_database_cidrs
  postgres_port           = var.postgres_port

  existing_kafka_security_group_id = var.existing_kafka_security_group_id
  existing_kafka_ports             = local.existing_kafka_ports

  tags = local.tags
}

module "service_discovery" {
  source = "../modules/service-discovery"

  name     = var.name_prefix
  vpc_id   = local.vpc_id
  services = concat(local.create_kafka ? concat(local.controller_names, local.broker_names) : [], ["connect"])
  tags     = local.tags
}

module "kafka" {
  source = "../modules/kafka"
  count  = local.create_kafka ? 1 : 0

  name                         = var.name_prefix
  image                        = var.kafka_image
  cluster_arn                  = module.cluster.cluster_arn
  kms_key_arn                  = module.cluster.kms_key_arn
  subnet_ids                   = local.private_subnet_ids
  availability_zones           = local.private_subnet_azs
  broker_security_group_id     = module.security.broker_security_group_id
  controller_security_group_id = module.security.controller_security_group_id
  efs_security_group_id        = module.security.efs_security_group_id
  namespace_name               = module.service_discovery.namespace_name
  service_discovery_arns       = module.service_discovery.service_arns
  broker_count                 = length(local.broker_names)
  controller_count             = length(local.controller_names)
  broker_cpu                   = var.broker_cpu
  broker_memory                = var.broker_memory
  controller_cpu               = var.controller_cpu
  controller_memory            = var.controller_memory
  replication_factor           = 3
  min_insync_replicas          = 2
  log_retention_days           = var.log_retention_days
  exec_log_group_arn           = module.cluster.exec_log_group_arn
  tags                         = local.tags
}

module "connect" {
  source = "../modules/connect"

  name                            = var.name_prefix
  image                           = var.connect_image
  cluster_arn                     = module.cluster.cluster_arn
  kms_key_arn                     = module.cluster.kms_key_arn
  subnet_ids                      = local.private_subnet_ids
  security_group_id               = module.security.connect_security_group_id
  service_discovery_arn           = module.service_discovery.service_arns["connect"]
  rest_dns_name                   = module.service_discovery.service_dns_names["connect"]
  bootstrap_servers               = local.kafka_bootstrap_servers
  desired_count                   = var.connect_desired_count
  cpu                             = var.connect_cpu
  memory                          = var.connect_memory
  replication_factor              = local.kafka_replication_factor
  source_db_password_secrets      = var.source_db_password_secrets
  source_db_password_kms_key_arns = var.source_db_password_kms_key_arns
  source_db_password_secret_arn   = var.source_db_password_secret_arn
  source_db_password_kms_key_arn  = var.source_db_password_kms_key_arn
  rds_ca_bundle_url               = var.connect_rds_ca_bundle_url
  start_after                     = local.create_kafka ? module.kafka[0].node_service_ids : []
  log_retention_days              = var.log_retention_days
  exec_log_group_arn              = module.cluster.exec_log_group_arn
  tags                            = local.tags
}

module "sink" {
  source = "../modules/sink"

  name                            = var.name_prefix
  image                           = var.sink_image
  image_tag                       = var.sink_image_tag
  cluster_arn                     = module.cluster.cluster_arn
  kms_key_arn                     = module.cluster.kms_key_arn
  vpc_id                          = local.vpc_id
  public_subnet_ids               = local.public_subnet_ids
  private_subnet_ids              = local.private_subnet_ids
  lb_security_group_id            = module.security.load_balancer_security_group_id
  security_group_id               = module.security.sink_security_group_id
  certificate_arn                 = var.certificate_arn
  admin_port                      = var.admin_port
  lb_deletion_protection          = var.lb_deletion_protection
  desired_count                   = var.sink_desired_count
  min_count                       = var.sink_min_count
  max_count                       = var.sink_max_count
  target_cpu_percent              = var.sink_target_cpu_percent
  cpu                             = var.sink_cpu
  memory                          = var.sink_memory
  cpu_architecture                = var.sink_cpu_architecture
  sse_keepalive_seconds           = var.sse_keepalive_seconds
  lb_idle_timeout_seconds         = var.lb_idle_timeout_seconds
  kafka_bootstrap_servers         = local.kafka_bootstrap_servers
  replication_factor              = local.kafka_replication_factor
  connect_url                     = module.connect.rest_url
  start_after                     = local.create_kafka ? module.kafka[0].node_service_ids : []
  source_db_password_secrets      = var.source_db_password_secrets
  source_db_password_kms_key_arns = var.source_db_password_kms_key_arns
  source_db_password_secret_arn   = var.source_db_password_secret_arn
  source_db_password_kms_key_arn  = var.source_db_password_kms_key_arn
  source_default_sslmode          = var.source_default_sslmode
  deployment_id                   = var.deployment_id
  connect_rds_ca_path             = module.connect.rds_ca_bundle_path
  extra_environment               = var.sink_extra_environment
  metrics_namespace               = var.metrics_namespace
  log_retention_days              = var.log_retention_days
  exec_log_group_arn              = module.cluster.exec_log_group_arn
  tags                            = local.tags
}

module "alarms" {
  source = "../modules/alarms"

  name                          = var.name_prefix
  deployment                    = module.sink.metrics_deployment
  metrics_namespace             = module.sink.metrics_namespace
  lb_arn_suffix                 = module.sink.lb_arn_suffix
  target_group_arn_suffix       = module.sink.target_group_arn_suffix
  alarm_actions                 = var.alarm_actions
  retained_wal_bytes_threshold  = var.alarm_retained_wal_bytes_threshold
  consumer_lag_events_threshold = var.alarm_consumer_lag_events_threshold
  kafka_unreachable_periods     = var.alarm_kafka_unreachable_periods
  unhealthy_targets_threshold   = var.alarm_unhealthy_targets_threshold
  sink_5xx_threshold            = var.alarm_sink_5xx_threshold
  tags                          = local.tags
}

moved {
  from = module.network
  to   = module.network[0]
}

moved {
  from = module.kafka
  to   = module.kafka[0]
}
