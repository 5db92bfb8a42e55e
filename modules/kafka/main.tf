# Kafka: a KRaft cluster on ECS Fargate built from the official apache/kafka image.
# Each controller and each broker is its own ECS service of exactly one task, so it
# keeps a fixed node id, a stable Cloud Map name (controller-N / broker-N) and its own
# EFS access point for its log directory across task replacements. Services deploy
# stop-then-start (0 % / 100 %) so two tasks never open the same log directory.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  data_dir = "/var/lib/kafka/data"

  controller_port = 9093
  broker_port     = 9092

  # Node ids: controllers 1..n, brokers 101..100+n (ids are shared by both roles).
  controllers = {
    for i in range(1, var.controller_count + 1) : "controller-${i}" => {
      node_id   = i
      subnet_id = var.subnet_ids[(i - 1) % length(var.subnet_ids)]
      az        = var.availability_zones[(i - 1) % length(var.availability_zones)]
    }
  }
  brokers = {
    for i in range(1, var.broker_count + 1) : "broker-${i}" => {
      node_id   = 100 + i
      subnet_id = var.subnet_ids[(i - 1) % length(var.subnet_ids)]
      az        = var.availability_zones[(i - 1) % length(var.availability_zones)]
    }
  }
  nodes = merge(
    { for k, v in local.controllers : k => merge(v, { role = "controller" }) },
    { for k, v in local.brokers : k => merge(v, { role = "broker" }) },
  )

  quorum_voters     = join(",", [for k, v in local.controllers : "${v.node_id}@${k}.${var.namespace_name}:${local.controller_port}"])
  bootstrap_servers = join(",", [for k, v in local.brokers : "${k}.${var.namespace_name}:${local.broker_port}"])

  common_environment = {
    CLUSTER_ID                                     = random_id.cluster_id.b64_url
    KAFKA_CONTROLLER_QUORUM_VOTERS                 = local.quorum_voters
    KAFKA_CONTROLLER_LISTENER_NAMES                = "CONTROLLER"
    KAFKA_LISTENER_SECURITY_PROTOCOL_MAP           = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    KAFKA_LOG_DIRS                                 = local.data_dir
    KAFKA_DEFAULT_REPLICATION_FACTOR               = tostring(var.replication_factor)
    KAFKA_MIN_INSYNC_REPLICAS                      = tostring(var.min_insync_replicas)
    KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR         = tostring(var.replication_factor)
    KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR = tostring(var.replication_factor)
    KAFKA_TRANSACTION_STATE_LOG_MIN_ISR            = tostring(var.min_insync_replicas)
    KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE           = "false"
  }

  node_environment = {
    for k, v in local.nodes : k => merge(
      local.common_environment,
      {
        KAFKA_NODE_ID       = tostring(v.node_id)
        KAFKA_PROCESS_ROLES = v.role
      },
      v.role == "controller" ? {
        KAFKA_LISTENERS = "CONTROLLER://0.0.0.0:${local.controller_port}"
        KAFKA_HEAP_OPTS = "-Xms${floor(var.controller_memory / 2)}m -Xmx${floor(var.controller_memory / 2)}m"
        } : {
        KAFKA_LISTENERS                  = "PLAINTEXT://0.0.0.0:${local.broker_port}"
        KAFKA_ADVERTISED_LISTENERS       = "PLAINTEXT://${k}.${var.namespace_name}:${local.broker_port}"
        KAFKA_INTER_BROKER_LISTENER_NAME = "PLAINTEXT"
        KAFKA_BROKER_RACK                = v.az
        KAFKA_NUM_PARTITIONS             = tostring(var.default_partitions)
        KAFKA_HEAP_OPTS                  = "-Xms${floor(var.broker_memory / 2)}m -Xmx${floor(var.broker_memory / 2)}m"
      },
    )
  }
}

# The KRaft cluster id: 16 random bytes, base64url without padding, as
# `kafka-storage random-uuid` prints. It is written into every log directory on first
# start; replacing it makes the existing storage unusable, so never taint it.
resource "random_id" "cluster_id" {
  byte_length = 16

  lifecycle {
    prevent_destroy = true
  }
}

################################################################################
# Durable storage: one EFS file system, one access point per node
################################################################################

# Every node's log directory, including the controllers' metadata log, lives here. It is
# protected from `terraform destroy` and from a replacement (a changed creation_token):
# to really delete a deployment, remove prevent_destroy here first (see infra/README.md).
resource "aws_efs_file_system" "this" {
  #checkov:skip=CKV2_AWS_18:Backed up by AWS Backup through aws_efs_backup_policy below (the service-managed daily plan, 35-day retention, default vault); checkov only recognises an aws_backup_selection.
  creation_token   = "${var.name}-kafka"
  encrypted        = true
  kms_key_id       = var.kms_key_arn
  performance_mode = "generalPurpose"
  throughput_mode  = "elastic"

  tags = merge(var.tags, { Name = "${var.name}-kafka" })

  lifecycle {
    prevent_destroy = true
  }
}

# Automatic backups (AWS Backup's daily EFS plan). Live log segments are not a consistent
# snapshot of a topic, but a backup restores controller metadata and Connect's internal
# topics after an accidental deletion, which replication across brokers cannot.
resource "aws_efs_backup_policy" "this" {
  file_system_id = aws_efs_file_system.this.id

  backup_policy {
    status = "ENABLED"
  }
}

resource "aws_efs_mount_target" "this" {
  count = length(var.subnet_ids)

  file_system_id  = aws_efs_file_system.this.id
  subnet_id       = var.subnet_ids[count.index]
  security_groups = [var.efs_security_group_id]
}

# Each node sees only its own directory, as the image's unprivileged user (uid 1000).
resource "aws_efs_access_point" "node" {
  for_each = local.nodes

  file_system_id = aws_efs_file_system.this.id

  posix_user {
    uid = 1000
    gid = 1000
  }

  root_directory {
    path = "/kafka/${each.key}"

    creation_info {
      owner_uid   = 1000
      owner_gid   = 1000
      permissions = "0750"
    }
  }

  tags = merge(var.tags, { Name = "${var.name}-kafka-${each.key}" })
}

data "aws_iam_policy_document" "efs" {
  statement {
    sid       = "DenyWithoutTls"
    effect    = "Deny"
    actions   = ["*"]
    resources = [aws_efs_file_system.this.arn]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "MountOnlyThroughAccessPoints"
    actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    resources = [aws_efs_file_system.this.arn]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.task.arn]
    }

    condition {
      test     = "Bool"
      variable = "elasticfilesystem:AccessedViaMountTarget"
      values   = ["true"]
    }

    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [for ap in aws_efs_access_point.node : ap.arn]
    }
  }
}

resource "aws_efs_file_system_policy" "this" {
  file_system_id = aws_efs_file_system.this.id
  policy         = data.aws_iam_policy_document.efs.json
}

################################################################################
# Logs
################################################################################

resource "aws_cloudwatch_log_group" "this" {
  name              = "/tumbleweed/${var.name}/kafka"
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

# Execution role: what ECS itself needs to start a task (write its logs). The image
# comes from a public registry, so no registry permission is granted.
resource "aws_iam_role" "execution" {
  name               = "${var.name}-kafka-execution"
  description        = "ECS starts Kafka tasks of ${var.name}: write to the Kafka log group"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "WriteKafkaLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "kafka-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# Task role: the Kafka processes only mount their own EFS access point.
resource "aws_iam_role" "task" {
  name               = "${var.name}-kafka-task"
  description        = "Kafka tasks of ${var.name}: mount their EFS access point"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = var.tags
}

data "aws_iam_policy_document" "task" {
  statement {
    sid       = "MountOwnAccessPoint"
    actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    resources = [aws_efs_file_system.this.arn]

    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [for ap in aws_efs_access_point.node : ap.arn]
    }
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "kafka-task"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

################################################################################
# Task definitions and services, one per node
################################################################################

resource "aws_ecs_task_definition" "node" {
  #checkov:skip=CKV_AWS_336:The apache/kafka entrypoint renders server.properties under /opt/kafka/config at start, so the root file system must be writable; data lives on EFS.
  for_each = local.nodes

  family                   = "${var.name}-kafka-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.role == "broker" ? var.broker_cpu : var.controller_cpu
  memory                   = each.value.role == "broker" ? var.broker_memory : var.controller_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  volume {
    name = "data"

    efs_volume_configuration {
      file_system_id     = aws_efs_file_system.this.id
      transit_encryption = "ENABLED"

      authorization_config {
        access_point_id = aws_efs_access_point.node[each.key].id
        iam             = "ENABLED"
      }
    }
  }

  container_definitions = jsonencode([
    {
      name      = "kafka"
      image     = var.image
      essential = true

      portMappings = [
        {
          containerPort = each.value.role == "broker" ? local.broker_port : local.controller_port
          protocol      = "tcp"
        }
      ]

      environment = [for k in sort(keys(local.node_environment[each.key])) : { name = k, value = local.node_environment[each.key][k] }]

      mountPoints = [
        {
          sourceVolume  = "data"
          containerPath = local.data_dir
          readOnly      = false
        }
      ]

      ulimits = [
        {
          name      = "nofile"
          softLimit = 65536
          hardLimit = 65536
        }
      ]

      # Room for a controlled shutdown (leadership moves before the process exits).
      stopTimeout = 120

      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this.name
          awslogs-region        = local.region
          awslogs-stream-prefix = each.key
        }
      }
    }
  ])

  tags = merge(var.tags, { Name = "${var.name}-kafka-${each.key}", KafkaRole = each.value.role })
}

resource "aws_ecs_service" "node" {
  for_each = local.nodes

  name             = "${var.name}-kafka-${each.key}"
  cluster          = var.cluster_arn
  task_definition  = aws_ecs_task_definition.node[each.key].arn
  desired_count    = 1
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  # Stop the old task before starting the new one: a node's log directory must never
  # be open by two processes.
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = [each.value.subnet_id]
    security_groups  = [each.value.role == "broker" ? var.broker_security_group_id : var.controller_security_group_id]
    assign_public_ip = false
  }

  service_registries {
    registry_arn = var.service_discovery_arns[each.key]
  }

  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"

  tags = merge(var.tags, { Name = "${var.name}-kafka-${each.key}", KafkaRole = each.value.role })

  # The first apply waits until every node runs, so Connect and the sink (which start
  # after the node services exist, see their start_after input) find a working cluster.
  wait_for_steady_state = true

  # Day 2: Terraform registers each node's new task definition revision but does not
  # move the service to it. Six independent services updated by one apply would stop all
  # controllers and brokers at once (0 % minimum healthy each). Rolls are done one node
  # at a time by `tumbleweed kafka roll`, which moves each service to the revision in the
  # node_task_definition_arns output and waits for it (see infra/README.md).
  lifecycle {
    ignore_changes = [task_definition]
  }

  depends_on = [aws_efs_mount_target.this, aws_efs_file_system_policy.this, aws_iam_role_policy.execution, aws_iam_role_policy.task]
}
