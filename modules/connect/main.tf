# Connect: Kafka Connect in distributed mode with the Debezium PostgreSQL connector,
# as one ECS service of desired_count workers registered in Cloud Map as
# connect.<namespace>. Its config, offset and status topics are replicated
# replication_factor times. Connectors are created through the REST API by the sink.

locals {
  rest_port = 8083
  group_id  = "${var.name}-connect"

  environment = {
    # Named variables the Debezium entrypoint (connect-base docker-entrypoint.sh) reads.
    BOOTSTRAP_SERVERS    = var.bootstrap_servers
    GROUP_ID             = local.group_id
    CONFIG_STORAGE_TOPIC = "_${var.name}_connect_configs"
    OFFSET_STORAGE_TOPIC = "_${var.name}_connect_offsets"
    STATUS_STORAGE_TOPIC = "_${var.name}_connect_statuses"
    REST_PORT            = tostring(local.rest_port)
    HEAP_OPTS            = "-Xms${floor(var.memory / 2)}m -Xmx${floor(var.memory / 2)}m"
    # Everything else is a worker property: the entrypoint turns CONNECT_FOO_BAR into
    # foo.bar in connect-distributed.properties. The image's stock file sets the three
    # internal topics' replication factor to 1, so these must be set here.
    CONNECT_CONFIG_STORAGE_REPLICATION_FACTOR = tostring(var.replication_factor)
    CONNECT_OFFSET_STORAGE_REPLICATION_FACTOR = tostring(var.replication_factor)
    CONNECT_STATUS_STORAGE_REPLICATION_FACTOR = tostring(var.replication_factor)
    CONNECT_CONFIG_PROVIDERS                  = "env"
    CONNECT_CONFIG_PROVIDERS_ENV_CLASS        = "org.apache.kafka.common.config.provider.EnvVarConfigProvider"
    # Topics Debezium creates get the same durability as everything else.
    CONNECT_TOPIC_CREATION_ENABLE = "true"
    # Source records and their offsets in one Kafka transaction (KIP-618); the sink's
    # connectors ask for it with exactly.once.support=required.
    CONNECT_EXACTLY_ONCE_SOURCE_SUPPORT = "enabled"
    # A task killed mid-transaction leaves it open, and a restarted worker reads its offsets
    # with read_committed: with the default 60 s timeout every source pauses that long.
    CONNECT_PRODUCER_TRANSACTION_TIMEOUT_MS = "10000"
  }

  # Connector configs say "${env:TUMBLEWEED_SOURCE_DB_PASSWORD}" (EnvVarConfigProvider).
  secrets = var.source_db_password_secret_arn == null ? {} : {
    TUMBLEWEED_SOURCE_DB_PASSWORD = var.source_db_password_secret_arn
  }
}

################################################################################
# Task definition, roles, log group and service
################################################################################

module "service" {
  source = "../fargate-service"

  name             = "${var.name}-connect"
  container_name   = "connect"
  image            = var.image
  cpu              = var.cpu
  memory           = var.memory
  cpu_architecture = var.cpu_architecture
  port             = local.rest_port

  cluster_arn        = var.cluster_arn
  subnet_ids         = var.subnet_ids
  security_group_ids = [var.security_group_id]
  desired_count      = var.desired_count

  environment         = local.environment
  secrets             = local.secrets
  secret_kms_key_arns = var.source_db_password_kms_key_arn == null ? [] : [var.source_db_password_kms_key_arn]
  kms_key_arn         = var.kms_key_arn

  log_group_name     = "/tumbleweed/${var.name}/connect"
  log_stream_prefix  = "connect"
  log_retention_days = var.log_retention_days

  deployment_minimum_healthy_percent = 50
  deployment_maximum_percent         = 200

  # The REST root answers once the worker joined its group. 300 s (the ECS maximum) of
  # start period: on a first start the brokers may still be electing.
  health_check = {
    command      = ["CMD-SHELL", "curl -fsS http://localhost:${local.rest_port}/ > /dev/null || exit 1"]
    start_period = 300
  }
  stop_timeout = 60

  service_registry_arn   = var.service_discovery_arn
  enable_execute_command = true
  exec_log_group_arn     = var.exec_log_group_arn
  task_role_purpose      = "no AWS permissions besides ECS Exec"
  start_after            = var.start_after

  tags = var.tags
}

moved {
  from = aws_cloudwatch_log_group.this
  to   = module.service.aws_cloudwatch_log_group.this
}

moved {
  from = aws_iam_role.execution
  to   = module.service.aws_iam_role.execution
}

moved {
  from = aws_iam_role.task
  to   = module.service.aws_iam_role.task
}

moved {
  from = aws_ecs_task_definition.this
  to   = module.service.aws_ecs_task_definition.this
}

moved {
  from = aws_ecs_service.this
  to   = module.service.aws_ecs_service.this[0]
}
