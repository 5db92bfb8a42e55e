# Sink: the Tumbleweed sink on ECS Fargate in the private subnets, behind an
# internet-facing Application Load Balancer whose DNS name is the stable public
# address (consumer URLs survive task restarts). The load balancer has a consumer
# listener (consumer routes only) and an admin listener on admin_port (everything);
# modules/security admits each prefix list to its own port. Also owns the ECR repository
# the sink image is pushed to, the admin token secret, and the load balancer's access log
# bucket.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  # name without dashes, cut to 16 (name is ^[a-z][a-z0-9-]{1,20}$), unless given.
  deployment_id = coalesce(var.deployment_id, substr(replace(var.name, "-", ""), 0, 16))

  https         = var.certificate_arn != null
  listener_port = local.https ? 443 : 80
  scheme        = local.https ? "https" : "http"

  # The consumer routes of the sink (sink/src/http.rs, consumer_api): the only paths the
  # public listener forwards. ALB path patterns: `*` matches any characters (also `/`),
  # case-sensitive, query string not part of the path. Everything else there (the UI, the
  # admin API, /metrics) gets the listener's fixed 404; operators use the admin listener.
  # One rule holds at most 5 condition values and 5 wildcards (ALB quotas): 5 and 3 here.
  consumer_path_patterns = [
    "/v1/consumers/*/events",
    "/v1/consumers/*/ack",
    "/v1/consumers/*/tickets",
    "/healthz",
    "/readyz",
  ]

  # The consumer listener's answer to every other path: the sink's own error shape.
  not_found_body = jsonencode({ error = "not found" })

  # Listener ARNs (one of each pair exists, by certificate_arn).
  public_listener_arn = one(concat(aws_lb_listener.https[*].arn, aws_lb_listener.http[*].arn))
  admin_listener_arns = concat(aws_lb_listener.admin_https[*].arn, aws_lb_listener.admin_http[*].arn)

  image = coalesce(var.image, "${aws_ecr_repository.this.repository_url}:${var.image_tag}")

  environment = merge(var.extra_environment, {
    TUMBLEWEED_KAFKA_BOOTSTRAP          = var.kafka_bootstrap_servers
    TUMBLEWEED_CONNECT_URL              = var.connect_url
    TUMBLEWEED_LISTEN                   = "0.0.0.0:${var.container_port}"
    TUMBLEWEED_SSE_KEEPALIVE_SECS       = tostring(var.sse_keepalive_seconds)
    TUMBLEWEED_TOPIC_REPLICATION_FACTOR = tostring(var.replication_factor)
    TUMBLEWEED_FETCH_WAIT_MAX_MS        = "100" # Apache Kafka ends a fetch as soon as data arrives
    # The event buffers get a fifth of the task's memory: measured RSS is about 20 MiB plus
    # 2 times this budget at rest and 3 times at the peak of 200 simultaneous replays.
    TUMBLEWEED_BUFFER_BYTES = tostring(floor(var.memory * 1048576 / 5))
    # Near 85 % of this (90 % of the task's memory) the sink refuses new streams (503) and
    # slows replays, well before the container's hard limit.
    TUMBLEWEED_MEMORY_LIMIT = tostring(floor(var.memory * 1048576 * 0.9))
    # CloudWatch Embedded Metric Format: once a minute the sink prints its metrics as EMF
    # JSON lines on stdout (namespace metrics_namespace, dimension Deployment = name); the
    # awslogs driver ships them to the service's log group, where CloudWatch extracts the
    # metrics the alarms (modules/alarms) watch. No agent and no IAM permission needed.
    TUMBLEWEED_EMF_NAMESPACE  = var.metrics_namespace
    TUMBLEWEED_EMF_DEPLOYMENT = var.name
    # In every slot and publication name (tw_<id>_<source>): only slots with this prefix
    # that nothing claims are this deployment's orphans, so deployments sharing a database
    # never drop each other's slots.
    TUMBLEWEED_DEPLOYMENT_ID = local.deployment_id
    # Verified TLS to the sources by default: a source without its own sslmode gets
    # source_default_sslmode, checked against the Amazon RDS CA bundle the sink embeds
    # ("rds"). For Debezium the sink writes database.sslrootcert=<this path>: the file the
    # Connect workers download at start (modules/connect, rds_ca_bundle_path).
    TUMBLEWEED_SOURCE_DEFAULT_SSLMODE     = var.source_default_sslmode
    TUMBLEWEED_SOURCE_DEFAULT_SSLROOTCERT = "rds"
    TUMBLEWEED_CONNECT_RDS_CA_PATH        = var.connect_rds_ca_path
  })

  # Source database passwords, fetched by ECS from Secrets Manager at task start: each
  # source_db_password_secrets entry KEY as TUMBLEWEED_SECRET_<KEY> (a source says
  # password_secret: "env:TUMBLEWEED_SECRET_<KEY>"), and the deprecated single
  # source_db_password_secret_arn as TUMBLEWEED_SOURCE_DB_PASSWORD. Connect receives the
  # same names (modules/connect), so the connector configs the sink writes,
  # ${env:TUMBLEWEED_SECRET_<KEY>}, resolve on the workers.
  source_secrets = merge(
    var.source_db_password_secret_arn == null ? {} : {
      TUMBLEWEED_SOURCE_DB_PASSWORD = var.source_db_password_secret_arn
    },
    { for key, arn in var.source_db_password_secrets : "TUMBLEWEED_SECRET_${key}" => arn },
  )

  secrets = merge(
    { TUMBLEWEED_ADMIN_TOKEN = aws_secretsmanager_secret.admin_token.arn },
    local.source_secrets,
  )

  source_secret_kms_key_arns = distinct(concat(
    var.source_db_password_kms_key_arn == null ? [] : [var.source_db_password_kms_key_arn],
    var.source_db_password_kms_key_arns,
  ))

  access_log_prefix = "lb"

  # Regions opened before August 2022 deliver load balancer access logs as a regional
  # ELB account (AWS docs, "Enable access logs for your Application Load Balancer"); newer
  # regions deliver as the logdelivery.elasticloadbalancing.amazonaws.com service
  # principal, which the bucket policy always allows. A map instead of
  # data.aws_elb_service_account, which fails plan in any region missing from the
  # provider's own map.
  elb_log_account_ids = {
    "af-south-1"     = "098369216593"
    "ap-east-1"      = "754344448648"
    "ap-northeast-1" = "582318560864"
    "ap-northeast-2" = "600734575887"
    "ap-northeast-3" = "383597477331"
    "ap-south-1"     = "718504428378"
    "ap-southeast-1" = "114774131450"
    "ap-southeast-2" = "783225319266"
    "ap-southeast-3" = "589379963580"
    "ca-central-1"   = "985666609251"
    "cn-north-1"     = "638102146993"
    "cn-northwest-1" = "037604701340"
    "eu-central-1"   = "054676820928"
    "eu-north-1"     = "897822967062"
    "eu-south-1"     = "635631232127"
    "eu-west-1"      = "156460612806"
    "eu-west-2"      = "652711504416"
    "eu-west-3"      = "009996457667"
    "me-south-1"     = "076674570225"
    "sa-east-1"      = "507241528517"
    "us-east-1"      = "127311923021"
    "us-east-2"      = "033677994240"
    "us-gov-east-1"  = "190560391635"
    "us-gov-west-1"  = "048591011584"
    "us-west-1"      = "027434742980"
    "us-west-2"      = "797873946194"
  }
  elb_log_account_id = lookup(local.elb_log_account_ids, local.region, null)
}

################################################################################
# Container registry
################################################################################

resource "aws_ecr_repository" "this" {
  name                 = "${var.name}/sink"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name

  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Expire untagged images after 7 days"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = 7
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the 50 most recent tagged images"
        selection = {
          tagStatus      = "tagged"
          tagPatternList = ["*"]
          countType      = "imageCountMoreThan"
          countNumber    = 50
        }
        action = { type = "expire" }
      },
    ]
  })
}

################################################################################
# Admin token
################################################################################

resource "random_password" "admin_token" {
  length  = 48
  special = false
}

resource "aws_secretsmanager_secret" "admin_token" {
  #checkov:skip=CKV2_AWS_57:The admin token is a bearer token the operators hold; rotating it is an operator action (put-secret-value, then force a new sink deployment), not a Lambda rotation.
  name                    = "${var.name}/sink/admin-token"
  description             = "Tumbleweed ${var.name}: admin API token of the sink (TUMBLEWEED_ADMIN_TOKEN)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7

  tags = var.tags
}

resource "aws_secretsmanager_secret_version" "admin_token" {
  secret_id     = aws_secretsmanager_secret.admin_token.id
  secret_string = random_password.admin_token.result

  # A token rotated by hand on the live secret is not reverted by the next apply.
  lifecycle {
    ignore_changes = [secret_string]
  }
}

################################################################################
# Load balancer access logs
################################################################################

resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV_AWS_18:This bucket is itself the access log destination; logging it to another bucket would recurse.
  #checkov:skip=CKV_AWS_144:Load balancer access logs are operational data; cross-region replication is not worth its cost here.
  #checkov:skip=CKV_AWS_145:ELB access log delivery supports SSE-S3 only, not SSE-KMS.
  #checkov:skip=CKV2_AWS_62:Nothing consumes events of new log objects.
  bucket_prefix = "${var.name}-lb-logs-"
  force_destroy = false

  tags = var.tags
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"

    filter {}

    expiration {
      days = var.lb_access_log_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 7
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.access_logs]
}

data "aws_iam_policy_document" "access_logs" {
  # Regions opened before August 2022 deliver as the regional ELB account (only there),
  # newer ones as the log delivery service; each only into this prefix.
  dynamic "statement" {
    for_each = local.elb_log_account_id == null ? [] : [local.elb_log_account_id]

    content {
      sid       = "ElbLogDelivery"
      actions   = ["s3:PutObject"]
      resources = ["${aws_s3_bucket.access_logs.arn}/${local.access_log_prefix}/AWSLogs/${local.account_id}/*"]

      principals {
        type        = "AWS"
        identifiers = ["arn:${local.partition}:iam::${statement.value}:root"]
      }
    }
  }

  statement {
    sid       = "ElbLogDeliveryService"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/${local.access_log_prefix}/AWSLogs/${local.account_id}/*"]

    principals {
      type        = "Service"
      identifiers = ["logdelivery.elasticloadbalancing.amazonaws.com"]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.access_logs.arn, "${aws_s3_bucket.access_logs.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  policy = data.aws_iam_policy_document.access_logs.json

  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}

################################################################################
# Load balancer
################################################################################

resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_28:Entry is already restricted to the operator and consumer prefix lists and the admin API needs a token; a WAF web ACL can be associated by the platform team where policy requires one.
  #checkov:skip=CKV2_AWS_76:No WAF web ACL here (see CKV2_AWS_28); the sink is not a Java application.
  #checkov:skip=CKV2_AWS_20:No port 80 to redirect: with a certificate both listeners (consumer 443, admin admin_port) are HTTPS, without one HTTP is the deliberate evaluation mode.
  name                       = "${var.name}-sink"
  internal                   = false
  load_balancer_type         = "application"
  security_groups            = [var.lb_security_group_id]
  subnets                    = var.public_subnet_ids
  idle_timeout               = var.lb_idle_timeout_seconds
  drop_invalid_header_fields = true
  enable_deletion_protection = var.lb_deletion_protection
  desync_mitigation_mode     = "defensive"

  access_logs {
    bucket  = aws_s3_bucket.access_logs.id
    prefix  = local.access_log_prefix
    enabled = true
  }

  tags = merge(var.tags, { Name = "${var.name}-sink" })

  depends_on = [aws_s3_bucket_policy.access_logs]
}

resource "aws_lb_target_group" "this" {
  #checkov:skip=CKV_AWS_378:TLS ends at the load balancer; the hop to the tasks stays inside the VPC's private subnets, admitted only from the load balancer's security group.
  # name_prefix (at most 6 characters for a target group): create_before_destroy needs
  # the replacement to get a new name. The Name tag carries the deployment's name.
  name_prefix = "sink-"
  port        = var.container_port
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id

  # Long-lived SSE streams: give them a short drain on deploys; consumers reconnect
  # with Last-Event-ID to another task.
  deregistration_delay = 30

  health_check {
    enabled             = true
    path                = var.health_check_path
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = merge(var.tags, { Name = "${var.name}-sink" })

  lifecycle {
    create_before_destroy = true
  }
}

# Two listeners, because listener rules cannot match the client's address and so cannot
# tell an operator from a consumer; the load balancer's security group can, per port
# (modules/security):
# - the consumer listener (443 with a certificate, 80 without), open to the consumer
#   prefix list, forwards only the consumer routes (local.consumer_path_patterns) and
#   answers everything else (the UI, the admin API, /metrics) with a fixed 404;
# - the admin listener (admin_port), open to the operator prefix list only, forwards
#   everything (UI, admin API and the consumer routes) to the same target group.
# The admin API still requires the admin token on top.
resource "aws_lb_listener" "https" {
  count = local.https ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.certificate_arn

  # Not a forward: only the listener rule below forwards (consumer routes).
  default_action {
    type = "fixed-response"

    fixed_response {
      content_type = "application/json"
      message_body = local.not_found_body
      status_code  = "404"
    }
  }

  tags = var.tags
}

# Without a certificate the consumer listener is plain HTTP on port 80. This exists for
# evaluation deployments; production sets certificate_arn, which removes this listener
# (count = 0) and creates the HTTPS one instead. Port 80 is never opened alongside 443:
# each prefix list referenced on a port costs prefix_list_max_entries rules of the
# security group quota.
resource "aws_lb_listener" "http" {
  #checkov:skip=CKV_AWS_2:Created only when certificate_arn is null (evaluation); with a certificate only the HTTPS listener exists. Entry is limited to the consumer prefix list.
  #checkov:skip=CKV_AWS_103:Same listener: TLS policy applies to the HTTPS listener, which replaces this one when certificate_arn is set.
  #checkov:skip=CKV2_AWS_20:No redirect: port 80 is not opened at all when HTTPS is configured.
  count = local.https ? 0 : 1

  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "fixed-response"

    fixed_response {
      content_type = "application/json"
      message_body = local.not_found_body
      status_code  = "404"
    }
  }

  tags = var.tags
}

resource "aws_lb_listener_rule" "consumer_routes" {
  listener_arn = local.public_listener_arn
  priority     = 100

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }

  condition {
    path_pattern {
      values = local.consumer_path_patterns
    }
  }

  tags = merge(var.tags, { Name = "${var.name}-sink-consumer-routes" })

  lifecycle {
    precondition {
      condition     = length(local.consumer_path_patterns) <= 5
      error_message = "An ALB listener rule holds at most 5 condition values: split consumer_path_patterns over more rules."
    }
  }
}

# The operators' listener: everything, on admin_port. Same certificate and TLS policy.
resource "aws_lb_listener" "admin_https" {
  count = local.https ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = var.admin_port
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }

  tags = var.tags
}

resource "aws_lb_listener" "admin_http" {
  #checkov:skip=CKV_AWS_2:Created only when certificate_arn is null (evaluation); with a certificate the admin listener is HTTPS (admin_https). Entry is limited to the operator prefix list.
  #checkov:skip=CKV_AWS_103:Same listener: TLS policy applies to admin_https, which replaces this one when certificate_arn is set.
  #checkov:skip=CKV2_AWS_20:No redirect: with a certificate this listener does not exist and admin_port speaks HTTPS.
  count = local.https ? 0 : 1

  load_balancer_arn = aws_lb.this.arn
  port              = var.admin_port
  protocol          = "HTTP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }

  tags = var.tags
}

################################################################################
# Task definition, roles, log group and service
################################################################################

module "service" {
  source = "../fargate-service"

  name             = "${var.name}-sink"
  container_name   = "sink"
  image            = local.image
  cpu              = var.cpu
  memory           = var.memory
  cpu_architecture = var.cpu_architecture
  port             = var.container_port

  cluster_arn        = var.cluster_arn
  subnet_ids         = var.private_subnet_ids
  security_group_ids = [var.security_group_id]
  desired_count      = var.desired_count

  # The count belongs to Application Auto Scaling (target tracking on average CPU): the
  # service ignores desired_count after creation, so an apply never undoes a scale-out.
  # min_count = max_count pins the count (no policy). Scale-in waits scale_in_cooldown_seconds
  # (15 min by default): SSE streams are long-lived, every task removed cuts its streams
  # (consumers reconnect with Last-Event-ID), and a new task only gets new connections, so
  # CPU on the old tasks falls slowly after a scale-out.
  autoscaling = {
    min_count                  = var.min_count
    max_count                  = var.max_count
    target_cpu_percent         = var.target_cpu_percent
    scale_in_cooldown_seconds  = var.scale_in_cooldown_seconds
    scale_out_cooldown_seconds = var.scale_out_cooldown_seconds
  }

  environment         = local.environment
  secrets             = local.secrets
  secret_kms_key_arns = local.source_secret_kms_key_arns
  kms_key_arn         = var.kms_key_arn
  ecr_repository_arn  = aws_ecr_repository.this.arn

  log_group_name     = "/tumbleweed/${var.name}/sink"
  log_stream_prefix  = "sink"
  log_retention_days = var.log_retention_days

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  # Health: the load balancer's check on the liveness route (health_check_path), which
  # ECS uses to replace tasks; the distroless image has no shell for a container check.
  load_balancer                     = { target_group_arn = aws_lb_target_group.this.arn }
  health_check_grace_period_seconds = 180

  readonly_root_filesystem = true
  scratch_path             = "/tmp"
  stop_timeout             = 30

  enable_execute_command = var.enable_execute_command
  exec_log_group_arn     = var.exec_log_group_arn
  task_role_purpose      = "no AWS permissions besides ECS Exec"

  # The sink exits when Kafka is unreachable at start: created after the Kafka node
  # services (start_after) and after a listener forwards to its target group.
  start_after = concat(var.start_after, [aws_lb_listener_rule.consumer_routes.arn], local.admin_listener_arns)

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

# Autoscaling (#12): the service moved to the variant that ignores desired_count (chained
# after the move above, so both older layouts arrive here).
moved {
  from = module.service.aws_ecs_service.this[0]
  to   = module.service.aws_ecs_service.ignore_desired_count[0]
}
