# Cluster: the pieces every service shares. One customer-managed KMS key (log groups,
# secrets, EFS, ECR, ECS Exec sessions) and the ECS cluster with Container Insights
# and audited ECS Exec.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
}

################################################################################
# KMS
################################################################################

# A key policy's "Resource": "*" means "this key": key policies cannot name anything
# else, so the wildcard checks on policy documents do not apply here.
data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:Key policy; "*" is the key itself and administration is limited to the account's IAM.
  #checkov:skip=CKV_AWS_111:Key policy; "*" is the key itself and write access is limited to the account's IAM.
  #checkov:skip=CKV_AWS_356:Key policy; a key policy's resource is always "*" (this key).
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid = "CloudWatchLogsOfThisDeployment"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values = [
        "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/tumbleweed/${var.name}/*",
        "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/ecs/containerinsights/${var.name}-cluster/*",
      ]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "Tumbleweed ${var.name}: logs, secrets, EFS, ECR and ECS Exec"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.kms.json

  tags = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/tumbleweed-${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

################################################################################
# ECS cluster
################################################################################

resource "aws_cloudwatch_log_group" "exec" {
  name              = "/tumbleweed/${var.name}/ecs-exec"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn

  tags = var.tags
}

resource "aws_ecs_cluster" "this" {
  name = "${var.name}-cluster"

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  configuration {
    execute_command_configuration {
      kms_key_id = aws_kms_key.this.arn
      logging    = "OVERRIDE"

      log_configuration {
        cloud_watch_encryption_enabled = true
        cloud_watch_log_group_name     = aws_cloudwatch_log_group.exec.name
      }
    }
  }

  tags = var.tags
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}
