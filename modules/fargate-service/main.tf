# Fargate service: one container as one ECS service on Fargate, with what every
# Tumbleweed component needs around it: its log group, an execution role limited to that
# log group (plus, when given, one ECR repository and exactly the secrets the container
# receives), a task role (ECS Exec, plus an optional policy), the task definition, the
# service and, optionally, target tracking autoscaling of its task count. Used by
# modules/kafka (once per node), modules/connect and modules/sink, so the three do not
# drift apart.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  secret_arns = distinct(values(var.secrets))

  autoscaled = var.autoscaling != null

  container = merge(
    {
      name                   = var.container_name
      image                  = var.image
      essential              = true
      readonlyRootFilesystem = var.readonly_root_filesystem

      portMappings = [{ containerPort = var.port, protocol = "tcp" }]

      environment = [for k in sort(keys(var.environment)) : { name = k, value = var.environment[k] }]
      secrets     = [for k in sort(keys(var.secrets)) : { name = k, valueFrom = var.secrets[k] }]

      mountPoints = concat(
        var.efs_volume == null ? [] : [{ sourceVolume = "data", containerPath = var.efs_volume.container_path, readOnly = false }],
        var.scratch_path == null ? [] : [{ sourceVolume = "scratch", containerPath = var.scratch_path, readOnly = false }],
      )

      ulimits = var.ulimits

      linuxParameters = { initProcessEnabled = var.init_process_enabled }

      stopTimeout = var.stop_timeout

      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this.name
          awslogs-region        = local.region
          awslogs-stream-prefix = var.log_stream_prefix
        }
      }
    },
    # The image's ENTRYPOINT and CMD unless overridden (Connect: a shell that fetches the
    # RDS CA bundle, then execs the image's own entrypoint).
    var.entry_point == null ? {} : { entryPoint = var.entry_point },
    var.command == null ? {} : { command = var.command },
    var.health_check == null ? {} : {
      healthCheck = {
        command     = var.health_check.command
        interval    = var.health_check.interval
        timeout     = var.health_check.timeout
        retries     = var.health_check.retries
        startPeriod = var.health_check.start_period
      }
    },
  )
}

################################################################################
# Logs
################################################################################

resource "aws_cloudwatch_log_group" "this" {
  name              = var.log_group_name
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

# Execution role: what ECS itself needs to start the task.
resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  description        = "ECS starts ${var.name} tasks: write its logs, pull its image, read its secrets"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  dynamic "statement" {
    for_each = var.ecr_repository_arn == null ? [] : [var.ecr_repository_arn]

    content {
      sid = "EcrAuthorization"
      # GetAuthorizationToken has no resource-level permissions.
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = var.ecr_repository_arn == null ? [] : [var.ecr_repository_arn]

    content {
      sid = "PullImage"
      actions = [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
      ]
      resources = [statement.value]
    }
  }

  # Exactly the secrets the container receives, nothing else (their full ARNs, validated
  # on var.secrets: no wildcard).
  dynamic "statement" {
    for_each = length(local.secret_arns) == 0 ? [] : [local.secret_arns]

    content {
      sid       = "ReadSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = statement.value
    }
  }

  dynamic "statement" {
    for_each = length(local.secret_arns) == 0 ? [] : [distinct(concat([var.kms_key_arn], var.secret_kms_key_arns))]

    content {
      sid       = "DecryptSecretsThroughSecretsManager"
      actions   = ["kms:Decrypt"]
      resources = statement.value

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# Task role: what the container may do in AWS. ECS Exec (an operator shell through SSM,
# encrypted with the deployment key) plus the caller's own policy, if any.
resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  description        = "${var.name} tasks: ${var.task_role_purpose}"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = var.tags
}

data "aws_iam_policy_document" "exec" {
  count = var.enable_execute_command ? 1 : 0

  statement {
    sid = "EcsExecChannels"
    # The SSM message channel actions have no resource-level permissions.
    actions = [
      "ssmmessages:CreateControlChannel",
      "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel",
      "ssmmessages:OpenDataChannel",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "EcsExecSessionKey"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }

  dynamic "statement" {
    for_each = var.exec_log_group_arn == null ? [] : [var.exec_log_group_arn]

    content {
      sid       = "EcsExecSessionLogs"
      actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
      resources = ["${statement.value}:*"]
    }
  }

  dynamic "statement" {
    for_each = var.exec_log_group_arn == null ? [] : [var.exec_log_group_arn]

    content {
      sid = "EcsExecFindLogGroup"
      # DescribeLogGroups has no resource-level permissions.
      actions   = ["logs:DescribeLogGroups"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "exec" {
  count = var.enable_execute_command ? 1 : 0

  name   = "ecs-exec"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.exec[0].json
}

resource "aws_iam_role_policy" "task" {
  count = var.task_policy_json == null ? 0 : 1

  name   = "task"
  role   = aws_iam_role.task.id
  policy = var.task_policy_json
}

################################################################################
# Task definition
################################################################################

resource "aws_ecs_task_definition" "this" {
  #checkov:skip=CKV_AWS_336:Callers choose readonly_root_filesystem; the Kafka and Debezium entrypoints render their configuration into the image's file system at start, the sink runs read-only.
  family                   = var.name
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

  dynamic "volume" {
    for_each = var.efs_volume == null ? [] : [var.efs_volume]

    content {
      name = "data"

      efs_volume_configuration {
        file_system_id     = volume.value.file_system_id
        transit_encryption = "ENABLED"

        authorization_config {
          access_point_id = volume.value.access_point_id
          iam             = "ENABLED"
        }
      }
    }
  }

  # Scratch space on task storage (for a read-only root file system).
  dynamic "volume" {
    for_each = var.scratch_path == null ? [] : [var.scratch_path]

    content {
      name = "scratch"
    }
  }

  container_definitions = jsonencode([local.container])

  tags = merge(var.tags, { Name = var.name })
}

################################################################################
# Service
################################################################################

# Orders the first start after other services (start_after): this service is created
# only once they exist. Their ids never change afterwards, so this never triggers again.
resource "terraform_data" "start_after" {
  input = var.start_after
}

resource "aws_ecs_service" "this" {
  count = var.ignore_task_definition_changes || local.autoscaled ? 0 : 1

  name                   = var.name
  cluster                = var.cluster_arn
  task_definition        = aws_ecs_task_definition.this.arn
  desired_count          = var.desired_count
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  enable_execute_command = var.enable_execute_command
  wait_for_steady_state  = var.wait_for_steady_state

  deployment_minimum_healthy_percent = var.deployment_minimum_healthy_percent
  deployment_maximum_percent         = var.deployment_maximum_percent
  health_check_grace_period_seconds  = var.load_balancer == null ? null : var.health_check_grace_period_seconds

  deployment_circuit_breaker {
    enable   = true
    rollback = var.circuit_breaker_rollback
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = false
  }

  dynamic "service_registries" {
    for_each = var.service_registry_arn == null ? [] : [var.service_registry_arn]

    content {
      registry_arn = service_registries.value
    }
  }

  dynamic "load_balancer" {
    for_each = var.load_balancer == null ? [] : [var.load_balancer]

    content {
      target_group_arn = load_balancer.value.target_group_arn
      container_name   = var.container_name
      container_port   = var.port
    }
  }

  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"

  tags = merge(var.tags, { Name = var.name })

  depends_on = [aws_iam_role_policy.execution, aws_iam_role_policy.task, aws_iam_role_policy.exec, terraform_data.start_after]
}

# The same service for callers that roll task definitions themselves (the Kafka nodes,
# one at a time with `tumbleweed kafka roll`): Terraform registers new revisions but never
# moves the service to them. ignore_changes cannot be conditional, hence separate resources.
resource "aws_ecs_service" "ignore_task_definition" {
  count = var.ignore_task_definition_changes ? 1 : 0

  name                   = var.name
  cluster                = var.cluster_arn
  task_definition        = aws_ecs_task_definition.this.arn
  desired_count          = var.desired_count
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  enable_execute_command = var.enable_execute_command
  wait_for_steady_state  = var.wait_for_steady_state

  deployment_minimum_healthy_percent = var.deployment_minimum_healthy_percent
  deployment_maximum_percent         = var.deployment_maximum_percent
  health_check_grace_period_seconds  = var.load_balancer == null ? null : var.health_check_grace_period_seconds

  deployment_circuit_breaker {
    enable   = true
    rollback = var.circuit_breaker_rollback
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = false
  }

  dynamic "service_registries" {
    for_each = var.service_registry_arn == null ? [] : [var.service_registry_arn]

    content {
      registry_arn = service_registries.value
    }
  }

  dynamic "load_balancer" {
    for_each = var.load_balancer == null ? [] : [var.load_balancer]

    content {
      target_group_arn = load_balancer.value.target_group_arn
      container_name   = var.container_name
      container_port   = var.port
    }
  }

  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"

  tags = merge(var.tags, { Name = var.name })

  lifecycle {
    ignore_changes = [task_definition]
  }

  depends_on = [aws_iam_role_policy.execution, aws_iam_role_policy.task, aws_iam_role_policy.exec, terraform_data.start_after]
}

# The same service for callers whose task count Application Auto Scaling owns (the sink):
# desired_count is only the count at creation, after which the scalable target below moves
# it within [min_count, max_count]. Without ignore_changes every apply would reset the
# count the autoscaler chose (scaling in tasks that carry live streams). ignore_changes
# cannot be conditional, hence a third resource; a count that must change is changed
# through autoscaling's min_count/max_count, which RegisterScalableTarget enforces at once
# (it moves the current count into the new range). Not combinable with
# ignore_task_definition_changes (validated on var.autoscaling).
resource "aws_ecs_service" "ignore_desired_count" {
  count = local.autoscaled ? 1 : 0

  name                   = var.name
  cluster                = var.cluster_arn
  task_definition        = aws_ecs_task_definition.this.arn
  desired_count          = var.desired_count
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  enable_execute_command = var.enable_execute_command
  wait_for_steady_state  = var.wait_for_steady_state

  deployment_minimum_healthy_percent = var.deployment_minimum_healthy_percent
  deployment_maximum_percent         = var.deployment_maximum_percent
  health_check_grace_period_seconds  = var.load_balancer == null ? null : var.health_check_grace_period_seconds

  deployment_circuit_breaker {
    enable   = true
    rollback = var.circuit_breaker_rollback
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = false
  }

  dynamic "service_registries" {
    for_each = var.service_registry_arn == null ? [] : [var.service_registry_arn]

    content {
      registry_arn = service_registries.value
    }
  }

  dynamic "load_balancer" {
    for_each = var.load_balancer == null ? [] : [var.load_balancer]

    content {
      target_group_arn = load_balancer.value.target_group_arn
      container_name   = var.container_name
      container_port   = var.port
    }
  }

  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"

  tags = merge(var.tags, { Name = var.name })

  lifecycle {
    ignore_changes = [desired_count]
  }

  depends_on = [aws_iam_role_policy.execution, aws_iam_role_policy.task, aws_iam_role_policy.exec, terraform_data.start_after]
}

################################################################################
# Autoscaling
################################################################################

locals {
  # service/<cluster name>/<service name>; the cluster ARN ends in cluster/<name>.
  autoscaling_resource_id = local.autoscaled ? "service/${element(split("/", var.cluster_arn), 1)}/${one(aws_ecs_service.ignore_desired_count[*].name)}" : null
}

# Registered even when min_count = max_count: the scalable target then pins the count, and
# changing the range later reaches the running service through RegisterScalableTarget
# (the service itself ignores desired_count).
resource "aws_appautoscaling_target" "this" {
  count = local.autoscaled ? 1 : 0

  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = local.autoscaling_resource_id
  min_capacity       = var.autoscaling.min_count
  max_capacity       = var.autoscaling.max_count

  tags = var.tags
}

# Target tracking on the service's average CPU. Only with room to move (max > min).
resource "aws_appautoscaling_policy" "cpu" {
  count = local.autoscaled && try(var.autoscaling.max_count > var.autoscaling.min_count, false) ? 1 : 0

  name               = "${var.name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension
  resource_id        = aws_appautoscaling_target.this[0].resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.autoscaling.target_cpu_percent
    scale_in_cooldown  = var.autoscaling.scale_in_cooldown_seconds
    scale_out_cooldown = var.autoscaling.scale_out_cooldown_seconds

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
