# Connect: Kafka Connect in distributed mode with the Debezium PostgreSQL connector,
# as one ECS service of desired_count workers registered in Cloud Map as
# connect.<namespace>. Its config, offset and status topics are replicated
# replication_factor times. Connectors are created through the REST API by the sink.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

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
  }

  secrets = var.source_db_password_secret_arn == null ? [] : [
    { name = "TUMBLEWEED_SOURCE_DB_PASSWORD", valueFrom = var.source_db_password_secret_arn },
  ]
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/tumbleweed/${var.name}/connect"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

################################################################################
# IAM
################################################################################

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:*"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-connect-execution"
  description        = "ECS starts Connect tasks of ${var.name}: write logs, read the database password secret"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "WriteConnectLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  dynamic "statement" {
    for_each = var.source_db_password_secret_arn == null ? [] : [var.source_db_password_secret_arn]

    content {
      sid       = "ReadDatabasePassword"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.source_db_password_secret_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "DecryptSecretsThroughSecretsManager"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "connect-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# Task role: Connect talks to Kafka and PostgreSQL only; it needs no AWS permission.
resource "aws_iam_role" "task" {
  name               = "${var.name}-connect-task"
  description        = "Connect tasks of ${var.name}: no AWS permissions"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = var.tags
}

################################################################################
# Task definition and service
################################################################################

resource "aws_ecs_task_definition" "this" {
  #checkov:skip=CKV_AWS_336:The Debezium Connect entrypoint writes its rendered worker config and plugin scan cache under /kafka at start, so the root file system must be writable.
  family                   = "${var.name}-connect"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  container_definitions = jsonencode([
    {
      name      = "connect"
      image     = var.image
      essential = true

      portMappings = [
        {
          containerPort = local.rest_port
          protocol      = "tcp"
        }
      ]

      environment = [for k in sort(keys(local.environment)) : { name = k, value = local.environment[k] }]
      secrets     = local.secrets

      healthCheck = {
        command     = ["CMD-SHELL", "curl -fsS http://localhost:${local.rest_port}/ > /dev/null || exit 1"]
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 300
      }

      stopTimeout = 60

      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this.name
          awslogs-region        = local.region
          awslogs-stream-prefix = "connect"
        }
      }
    }
  ])

  tags = merge(var.tags, { Name = "${var.name}-connect" })
}

# Orders the first start: the service is created only once the services in start_after
# (the Kafka nodes, which wait for steady state) exist. The ids never change afterwards.
resource "terraform_data" "start_after" {
  input = var.start_after
}

resource "aws_ecs_service" "this" {
  name             = "${var.name}-connect"
  cluster          = var.cluster_arn
  task_definition  = aws_ecs_task_definition.this.arn
  desired_count    = var.desired_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  deployment_minimum_healthy_percent = 50
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [var.security_group_id]
    assign_public_ip = false
  }

  service_registries {
    registry_arn = var.service_discovery_arn
  }

  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"

  tags = merge(var.tags, { Name = "${var.name}-connect" })

  depends_on = [aws_iam_role_policy.execution, terraform_data.start_after]
}
