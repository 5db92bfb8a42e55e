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
    # Task producers send at once (the local stack does the same; see sink/benches/end_to_end.rs
    # for what it changed at 5,000 commits/s).
    CONNECT_PRODUCER_LINGER_MS = "0"
    # With exactly-once, each poll of a Debezium task first re-reads its offsets, and that read
    # waited for the offsets consumer's fetch in flight (fetch.max.wait.ms, 500 ms by default):
    # half-second stalls at 5,000 commits/s. Same as the local stack (scripts/stack).
    CONNECT_CONSUMER_FETCH_MAX_WAIT_MS = "20"
  }

  # Source database passwords, fetched by ECS from Secrets Manager at task start, under the
  # names the sink gets them (modules/sink): the connector configs the sink writes say
  # "${env:TUMBLEWEED_SECRET_<KEY>}" (or "${env:TUMBLEWEED_SOURCE_DB_PASSWORD}" for the
  # deprecated single secret), resolved here by the EnvVarConfigProvider.
  secrets = merge(
    var.source_db_password_secret_arn == null ? {} : {
      TUMBLEWEED_SOURCE_DB_PASSWORD = var.source_db_password_secret_arn
    },
    { for key, arn in var.source_db_password_secrets : "TUMBLEWEED_SECRET_${key}" => arn },
  )

  secret_kms_key_arns = distinct(concat(
    var.source_db_password_kms_key_arn == null ? [] : [var.source_db_password_kms_key_arn],
    var.source_db_password_kms_key_arns,
  ))

  # Verified TLS to the sources (sslmode verify-ca/verify-full): the sink puts
  # database.sslrootcert=<rds_ca_bundle_path> into the Debezium connector configs, and the
  # stock Debezium image has no such file. So the worker starts through a shell that
  # downloads the Amazon RDS CA bundle there (HTTPS only, checked by curl against the
  # image's CA store; egress 443 through the NAT gateways) and then execs the image's own
  # ENTRYPOINT ["/docker-entrypoint.sh"] with its CMD ["start"] (connect-base Dockerfile).
  # A failed download fails the task (exit 1): better a worker that does not start than
  # connectors that fail their TLS handshake one by one. Downloaded at each start rather
  # than baked into a custom image: the stock image stays usable and the bundle stays
  # current as AWS adds CAs. Path and URL are validated to characters that need no shell
  # quoting beyond the single quotes below.
  rds_ca_bundle_path = var.rds_ca_bundle_path
  # "" only when the script is not used (rds_ca_bundle_url null): a template cannot hold null.
  rds_ca_bundle_url   = var.rds_ca_bundle_url == null ? "" : var.rds_ca_bundle_url
  fetch_rds_ca_bundle = <<-EOT
    set -eu
    mkdir -p '${dirname(local.rds_ca_bundle_path)}'
    if ! curl --fail --silent --show-error --proto '=https' --tlsv1.2 --retry 5 --retry-all-errors --connect-timeout 10 --max-time 60 --output '${local.rds_ca_bundle_path}.part' '${local.rds_ca_bundle_url}' || ! grep -q 'BEGIN CERTIFICATE' '${local.rds_ca_bundle_path}.part'; then
      echo "tumbleweed: cannot download the Amazon RDS CA bundle from ${local.rds_ca_bundle_url} to ${local.rds_ca_bundle_path} (egress 443 through the NAT gateways?)" >&2
      exit 1
    fi
    mv '${local.rds_ca_bundle_path}.part' '${local.rds_ca_bundle_path}'
    echo "tumbleweed: Amazon RDS CA bundle at ${local.rds_ca_bundle_path}"
    exec /docker-entrypoint.sh start
  EOT
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
  secret_kms_key_arns = local.secret_kms_key_arns
  kms_key_arn         = var.kms_key_arn

  # The image's entrypoint, preceded by the CA bundle download (null URL: unchanged).
  entry_point = var.rds_ca_bundle_url == null ? null : ["/bin/sh", "-c"]
  command     = var.rds_ca_bundle_url == null ? null : [local.fetch_rds_ca_bundle]

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
