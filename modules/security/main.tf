# Security: the two managed prefix lists that whitelist the public entry point, and
# one security group per component. Every rule names the one port it opens and the
# security group (or prefix list) on the other side. With an existing Kafka cluster the
# broker, controller and EFS groups stay (unused, no cost) and the sink and Connect get
# egress to that cluster's group as well. Nothing in here opens a Kafka,
# Connect or PostgreSQL port to 0.0.0.0/0; the only 0.0.0.0/0 rules are egress on 443
# (AWS APIs and image registries, through the NAT gateways).

locals {
  ports = {
    listener   = var.listener_port
    admin      = var.admin_port
    sink       = var.sink_port
    connect    = 8083
    broker     = 9092
    controller = 9093
    nfs        = 2049
    https      = 443
    postgres   = var.postgres_port
  }
}

################################################################################
# Prefix lists (edited live by the helper CLI)
################################################################################

resource "aws_ec2_managed_prefix_list" "operators" {
  name           = "${var.name}-operators"
  address_family = "IPv4"
  max_entries    = var.prefix_list_max_entries

  dynamic "entry" {
    for_each = toset(var.operator_cidrs)

    content {
      cidr        = entry.value
      description = "operator (initial entry from terraform)"
    }
  }

  # The helper CLI adds and removes entries on the live list; terraform only seeds it.
  lifecycle {
    ignore_changes = [entry]
  }

  tags = merge(var.tags, { Name = "${var.name}-operators", Audience = "operators" })
}

resource "aws_ec2_managed_prefix_list" "consumers" {
  name           = "${var.name}-consumers"
  address_family = "IPv4"
  max_entries    = var.prefix_list_max_entries

  dynamic "entry" {
    for_each = toset(var.consumer_cidrs)

    content {
      cidr        = entry.value
      description = "consumer (initial entry from terraform)"
    }
  }

  # The helper CLI adds and removes entries on the live list; terraform only seeds it.
  lifecycle {
    ignore_changes = [entry]
  }

  tags = merge(var.tags, { Name = "${var.name}-consumers", Audience = "consumers" })
}

################################################################################
# Security groups
################################################################################

resource "aws_security_group" "lb" {
  #checkov:skip=CKV2_AWS_5:Attached in the sink, kafka and connect modules (and EFS mount targets) through this module\'s outputs; checkov\'s graph does not follow module outputs.
  name_prefix = "${var.name}-lb-"
  description = "Public load balancer of the Tumbleweed sink: whitelisted prefix lists only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-lb" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "sink" {
  #checkov:skip=CKV2_AWS_5:Attached in the sink, kafka and connect modules (and EFS mount targets) through this module\'s outputs; checkov\'s graph does not follow module outputs.
  name_prefix = "${var.name}-sink-"
  description = "Tumbleweed sink tasks: HTTP from the load balancer only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-sink" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "connect" {
  #checkov:skip=CKV2_AWS_5:Attached in the sink, kafka and connect modules (and EFS mount targets) through this module\'s outputs; checkov\'s graph does not follow module outputs.
  name_prefix = "${var.name}-connect-"
  description = "Kafka Connect workers: REST from the sink and from each other only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-connect" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "broker" {
  #checkov:skip=CKV2_AWS_5:Attached in the sink, kafka and connect modules (and EFS mount targets) through this module\'s outputs; checkov\'s graph does not follow module outputs.
  name_prefix = "${var.name}-kafka-broker-"
  description = "Kafka brokers: client port from sink, Connect and other brokers only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-kafka-broker" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "controller" {
  #checkov:skip=CKV2_AWS_5:Attached in the sink, kafka and connect modules (and EFS mount targets) through this module\'s outputs; checkov\'s graph does not follow module outputs.
  name_prefix = "${var.name}-kafka-controller-"
  description = "KRaft controllers: quorum port from brokers and controllers only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-kafka-controller" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "efs" {
  #checkov:skip=CKV2_AWS_5:Attached in the sink, kafka and connect modules (and EFS mount targets) through this module\'s outputs; checkov\'s graph does not follow module outputs.
  name_prefix = "${var.name}-kafka-efs-"
  description = "EFS mount targets of the Kafka log directories: NFS from brokers and controllers only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-kafka-efs" })

  lifecycle {
    create_before_destroy = true
  }
}

################################################################################
# Load balancer
################################################################################

# Each prefix list on its own port: listener rules cannot match the client's address, so
# the port decides what a client reaches (modules/sink). Operators: the admin listener
# (UI, admin API and consumer routes); consumers: the consumer listener (consumer routes
# only). A rule that references a prefix list counts prefix_list_max_entries rules against
# the group's inbound quota: two references here, 2 x prefix_list_max_entries in all.
resource "aws_vpc_security_group_ingress_rule" "lb_from_operators" {
  security_group_id = aws_security_group.lb.id
  description       = "Operators (UI, admin API) on the admin listener from the operators prefix list"
  ip_protocol       = "tcp"
  from_port         = local.ports.admin
  to_port           = local.ports.admin
  prefix_list_id    = aws_ec2_managed_prefix_list.operators.id

  tags = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "lb_from_consumers" {
  security_group_id = aws_security_group.lb.id
  description       = "Consumers (SSE streams) on the consumer listener from the consumers prefix list"
  ip_protocol       = "tcp"
  from_port         = local.ports.listener
  to_port           = local.ports.listener
  prefix_list_id    = aws_ec2_managed_prefix_list.consumers.id

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "lb_to_sink" {
  security_group_id            = aws_security_group.lb.id
  description                  = "Forward requests and health checks to the sink tasks"
  ip_protocol                  = "tcp"
  from_port                    = local.ports.sink
  to_port                      = local.ports.sink
  referenced_security_group_id = aws_security_group.sink.id

  tags = var.tags
}

################################################################################
# Sink
################################################################################

resource "aws_vpc_security_group_ingress_rule" "sink_from_lb" {
  security_group_id            = aws_security_group.sink.id
  description                  = "HTTP from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = local.ports.sink
  to_port                      = local.ports.sink
  referenced_security_group_id = aws_security_group.lb.id

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "sink_to_brokers" {
  security_group_id            = aws_security_group.sink.id
  description                  = "Kafka client connections to the brokers"
  ip_protocol                  = "tcp"
  from_port                    = local.ports.broker
  to_port                      = local.ports.broker
  referenced_security_group_id = aws_security_group.broker.id

  tags = var.tags
}

# An existing Kafka cluster (such as MSK) instead of the ECS brokers: egress to its security
# group on each bootstrap port. Its group must admit the sink's group (outputs).
resource "aws_vpc_security_group_egress_rule" "sink_to_existing_kafka" {
  for_each = var.existing_kafka_security_group_id == null ? toset([]) : toset([for p in var.existing_kafka_ports : tostring(p)])

  security_group_id            = aws_security_group.sink.id
  description                  = "Kafka client connections to the existing Kafka cluster"
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
  referenced_security_group_id = var.existing_kafka_security_group_id

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "sink_to_connect" {
  security_group_id            = aws_security_group.sink.id
  description                  = "Kafka Connect REST API"
  ip_protocol                  = "tcp"
  from_port                    = local.ports.connect
  to_port                      = local.ports.connect
  referenced_security_group_id = aws_security_group.connect.id

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "sink_to_aws_apis" {
  security_group_id = aws_security_group.sink.id
  description       = "HTTPS to AWS APIs (ECR, Secrets Manager, CloudWatch Logs) through the NAT gateways"
  ip_protocol       = "tcp"
  from_port         = local.ports.https
  to_port           = local.ports.https
  cidr_ipv4         = "0.0.0.0/0"

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "sink_to_postgres" {
  for_each = toset(var.source_database_cidrs)

  security_group_id = aws_security_group.sink.id
  description       = "Source PostgreSQL (publication and slot management)"
  ip_protocol       = "tcp"
  from_port         = local.ports.postgres
  to_port           = local.ports.postgres
  cidr_ipv4         = each.value

  tags = var.tags
}

################################################################################
# Kafka Connect
################################################################################

resource "aws_vpc_security_group_ingress_rule" "connect_from_sink" {
  security_group_id            = aws_security_group.connect.id
  description                  = "Connect REST API from the sink"
  ip_protocol                  = "tcp"
  from_port                    = local.ports.connect
  to_port                      = local.ports.connect
  referenced_security_group_id = aws_security_group.sink.id

  tags = var.tags
}

# Distributed workers forward REST calls that need the leader to the leader's REST
# endpoint, so workers must reach each other on the REST port.
resource "aws_vpc_security_group_ingress_rule" "connect_from_connect" {
  security_group_id            = aws_security_group.connect.id
  description                  = "Connect REST forwarding between workers"
  ip_protocol                  = "tcp"
  from_port                    = local.ports.connect
  to_port                      = local.ports.connect
  referenced_security_group_id = aws_security_group.connect.id

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "connect_to_connect" {
  security_group_id            = aws_security_group.connect.id
  description                  = "Connect REST forwarding between workers"
  ip_protocol                  = "tcp"
  from_port                    = local.ports.connect
  to_port                      = local.ports.connect
  referenced_security_group_id = aws_security_group.connect.id

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "connect_to_brokers" {
  security_group_id            = aws_security_group.connect.id
  description                  = "Kafka client connections to the brokers"
  ip_protocol                  = "tcp"
  from_port                    = local.ports.broker
  to_port                      = local.ports.broker
  referenced_security_group_id = aws_security_group.broker.id

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "connect_to_existing_kafka" {
  for_each = var.existing_kafka_security_group_id == null ? toset([]) : toset([for p in var.existing_kafka_ports : tostring(p)])

  security_group_id            = aws_security_group.connect.id
  description                  = "Kafka client connections to the existing Kafka cluster"
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
  referenced_security_group_id = var.existing_kafka_security_group_id

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "connect_to_aws_apis" {
  security_group_id = aws_security_group.connect.id
  description       = "HTTPS to AWS APIs and the image registry through the NAT gateways"
  ip_protocol       = "tcp"
  from_port         = local.ports.https
  to_port           = local.ports.https
  cidr_ipv4         = "0.0.0.0/0"

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "connect_to_postgres" {
  for_each = toset(var.source_database_cidrs)

  security_group_id = aws_security_group.connect.id
  description       = "Source PostgreSQL (Debezium replication connection)"
  ip_protocol       = "tcp"
  from_port         = local.ports.postgres
  to_port           = local.ports.postgres
  cidr_ipv4         = each.value

  tags = var.tags
}

################################################################################
# Kafka brokers
################################################################################

resource "aws_vpc_security_group_ingress_rule" "broker_from_sink" {
  security_group_id            = aws_security_group.broker.id
  description                  = "Kafka clients: the sink"
  ip_protocol                  = "tcp"
  from_port                    = local.ports.broker
  to_port                      = local.ports.broker
  referenced_security_group_id = aws_security_group.sink.id

  tags = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "broker_from_connect" {
  security_group_id            = aws_security_group.broker.id
  description                  = "Kafka clients: Kafka Connect workers"
  ip_protocol                  = "tcp"
  from_port                    = local.ports.broker
  to_port                      = local.ports.broker
  referenced_security_group_id = aws_security_group.connect.id

  tags = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "broker_from_broker" {
  security_group_id            = aws_security_group.broker.id
  description                  = "Inter-broker replication"
  ip_protocol                  = "tcp"
  from_port                    = local.ports.broker
  to_port                      = local.ports.broker
  referenced_security_group_id = aws_security_group.broker.id

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "broker_to_broker" {
  security_group_id            = aws_security_group.broker.id
  description                  = "Inter-broker replication"
  ip_protocol                  = "tcp"
  from_port                    = local.ports.broker
  to_port                      = local.ports.broker
  referenced_security_group_id = aws_security_group.broker.id

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "broker_to_controller" {
  security_group_id            = aws_security_group.broker.id
  description                  = "Metadata from the KRaft controller quorum"
  ip_protocol                  = "tcp"
  from_port                    = local.ports.controller
  to_port                      = local.ports.controller
  referenced_security_group_id = aws_security_group.controller.id

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "broker_to_efs" {
  security_group_id            = aws_security_group.broker.id
  description                  = "NFS to the EFS mount targets holding the log directories"
  ip_protocol                  = "tcp"
  from_port                    = local.ports.nfs
  to_port                      = local.ports.nfs
  referenced_security_group_id = aws_security_group.efs.id

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "broker_to_aws_apis" {
  security_group_id = aws_security_group.broker.id
  description       = "HTTPS to AWS APIs and the image registry through the NAT gateways"
  ip_protocol       = "tcp"
  from_port         = local.ports.https
  to_port           = local.ports.https
  cidr_ipv4         = "0.0.0.0/0"

  tags = var.tags
}

################################################################################
# KRaft controllers
################################################################################

resource "aws_vpc_security_group_ingress_rule" "controller_from_broker" {
  security_group_id            = aws_security_group.controller.id
  description                  = "KRaft quorum: brokers fetching metadata"
  ip_protocol                  = "tcp"
  from_port                    = local.ports.controller
  to_port                      = local.ports.controller
  referenced_security_group_id = aws_security_group.broker.id

  tags = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "controller_from_controller" {
  security_group_id            = aws_security_group.controller.id
  description                  = "KRaft quorum: controller-to-controller Raft traffic"
  ip_protocol                  = "tcp"
  from_port                    = local.ports.controller
  to_port                      = local.ports.controller
  referenced_security_group_id = aws_security_group.controller.id

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "controller_to_controller" {
  security_group_id            = aws_security_group.controller.id
  description                  = "KRaft quorum: controller-to-controller Raft traffic"
  ip_protocol                  = "tcp"
  from_port                    = local.ports.controller
  to_port                      = local.ports.controller
  referenced_security_group_id = aws_security_group.controller.id

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "controller_to_efs" {
  security_group_id            = aws_security_group.controller.id
  description                  = "NFS to the EFS mount targets holding the metadata log"
  ip_protocol                  = "tcp"
  from_port                    = local.ports.nfs
  to_port                      = local.ports.nfs
  referenced_security_group_id = aws_security_group.efs.id

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "controller_to_aws_apis" {
  security_group_id = aws_security_group.controller.id
  description       = "HTTPS to AWS APIs and the image registry through the NAT gateways"
  ip_protocol       = "tcp"
  from_port         = local.ports.https
  to_port           = local.ports.https
  cidr_ipv4         = "0.0.0.0/0"

  tags = var.tags
}

################################################################################
# EFS mount targets
################################################################################

resource "aws_vpc_security_group_ingress_rule" "efs_from_broker" {
  security_group_id            = aws_security_group.efs.id
  description                  = "NFS from the Kafka brokers"
  ip_protocol                  = "tcp"
  from_port                    = local.ports.nfs
  to_port                      = local.ports.nfs
  referenced_security_group_id = aws_security_group.broker.id

  tags = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "efs_from_controller" {
  security_group_id            = aws_security_group.efs.id
  description                  = "NFS from the KRaft controllers"
  ip_protocol                  = "tcp"
  from_port                    = local.ports.nfs
  to_port                      = local.ports.nfs
  referenced_security_group_id = aws_security_group.controller.id

  tags = var.tags
}
