# Kafka: a KRaft cluster on ECS Fargate built from the official apache/kafka image.
# Each controller and each broker is its own ECS service of exactly one task, so it
# keeps a fixed node id, a stable Cloud Map name (controller-N / broker-N) and its own
# EFS access point for its log directory across task replacements. Services deploy
# stop-then-start (0 % / 100 %) so two tasks never open the same log directory.

locals {
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
      identifiers = [for k in sort(keys(local.nodes)) : module.node[k].task_role_arn]
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
# One Fargate service per node (task definition, roles, log group, service)
################################################################################

# Each node's task role may mount only its own access point.
data "aws_iam_policy_document" "node" {
  for_each = local.nodes

  statement {
    sid       = "MountOwnAccessPoint"
    actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    resources = [aws_efs_file_system.this.arn]

    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [aws_efs_access_point.node[each.key].arn]
    }
  }
}

module "node" {
  source   = "../fargate-service"
  for_each = local.nodes

  name             = "${var.name}-kafka-${each.key}"
  container_name   = "kafka"
  image            = var.image
  cpu              = each.value.role == "broker" ? var.broker_cpu : var.controller_cpu
  memory           = each.value.role == "broker" ? var.broker_memory : var.controller_memory
  cpu_architecture = var.cpu_architecture
  port             = each.value.role == "broker" ? local.broker_port : local.controller_port

  cluster_arn        = var.cluster_arn
  subnet_ids         = [each.value.subnet_id]
  security_group_ids = [each.value.role == "broker" ? var.broker_security_group_id : var.controller_security_group_id]
  desired_count      = 1

  environment = local.node_environment[each.key]
  kms_key_arn = var.kms_key_arn

  log_group_name     = "/tumbleweed/${var.name}/kafka/${each.key}"
  log_stream_prefix  = each.key
  log_retention_days = var.log_retention_days

  efs_volume = {
    file_system_id  = aws_efs_file_system.this.id
    access_point_id = aws_efs_access_point.node[each.key].id
    container_path  = local.data_dir
  }
  ulimits = [{ name = "nofile", softLimit = 65536, hardLimit = 65536 }]

  # Room for a controlled shutdown (leadership moves before the process exits).
  stop_timeout = 120

  # Stop the old task before starting the new one: a node's log directory must never be
  # open by two processes. No rollback: a singleton node has nothing healthy to go back to.
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100
  circuit_breaker_rollback           = false

  # The first apply waits until every node runs, so Connect and the sink (start_after =
  # node_service_ids) find a working cluster.
  wait_for_steady_state = true

  # Day 2: Terraform registers each node's new task definition revision but does not move
  # the service to it. Six independent services updated by one apply would stop all
  # controllers and brokers at once (0 % minimum healthy each). `tumbleweed kafka roll`
  # moves one node at a time to the revision in node_task_definition_arns.
  ignore_task_definition_changes = true

  service_registry_arn = var.service_discovery_arns[each.key]
  task_policy_json     = data.aws_iam_policy_document.node[each.key].json
  task_role_purpose    = "mount its own EFS access point; ECS Exec"
  exec_log_group_arn   = var.exec_log_group_arn

  start_after = concat(aws_efs_mount_target.this[*].id, [aws_efs_file_system_policy.this.id])

  tags = merge(var.tags, { KafkaRole = each.value.role })
}
