# The whole migration in one module: an MSK configuration and cluster, the topics on the new
# cluster (through its bootstrap brokers, known only after apply), and a ferry_mirror copying
# the data and consumer groups from the self-managed source cluster into it.
#
#   terraform init
#   terraform apply -var 'source_bootstrap_servers=["kafka-1.internal:9092"]' \
#                   -var 'client_subnets=["subnet-a","subnet-b","subnet-c"]' -var 'security_groups=["sg-kafka"]'
#
# Against an emulator (the end-to-end test uses ministack): -var 'msk_endpoint=http://127.0.0.1:4566'.

terraform {
  required_version = ">= 1.0"
  required_providers {
    ferry = {
      source = "ferry/ferry"
    }
  }
}

variable "source_bootstrap_servers" {
  description = "The self-managed Kafka cluster to move away from."
  type        = list(string)
}

variable "aws_region" {
  type    = string
  default = "eu-west-1"
}

variable "msk_endpoint" {
  description = "MSK API endpoint override (private endpoint, emulator); null for AWS's own."
  type        = string
  default     = null
}

variable "cluster_name" {
  type    = string
  default = "orders-target"
}

variable "kafka_version" {
  type    = string
  default = "3.6.0"
}

variable "client_subnets" {
  type    = list(string)
  default = ["subnet-a", "subnet-b", "subnet-c"]
}

variable "security_groups" {
  type    = list(string)
  default = ["sg-kafka"]
}

variable "topics" {
  description = "Topics to create on MSK and copy from the source: name => partitions (at least the source's)."
  type        = map(number)
  default     = { orders = 12, payments = 6 }
}

variable "ferry_mirror_binary" {
  description = "Path of ferry-mirror; null uses the one beside the provider."
  type        = string
  default     = null
}

variable "mirror_state_dir" {
  type    = string
  default = ".ferry"
}

provider "ferry" {
  aws {
    region = var.aws_region
    endpoints {
      kafka = var.msk_endpoint
    }
  }
}

resource "ferry_msk_configuration" "target" {
  name           = var.cluster_name
  kafka_versions = [var.kafka_version]
  description    = "ferry migration target"

  server_properties = <<-PROPS
    auto.create.topics.enable = false
    default.replication.factor = 3
    min.insync.replicas = 2
  PROPS
}

resource "ferry_msk_cluster" "target" {
  cluster_name           = var.cluster_name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = length(var.client_subnets)

  broker_node_group_info {
    instance_type   = "kafka.m5.large"
    client_subnets  = var.client_subnets
    security_groups = var.security_groups
    storage_info {
      ebs_storage_info {
        volume_size = 500
      }
    }
  }

  # PLAINTEXT next to TLS, so the mirror and the topics can use bootstrap_brokers inside the VPC.
  encryption_info {
    encryption_in_transit {
      client_broker = "TLS_PLAINTEXT"
      in_cluster    = true
    }
  }

  configuration_info {
    arn      = ferry_msk_configuration.target.arn
    revision = ferry_msk_configuration.target.latest_revision
  }

  # Prometheus exporters on every broker: JMX on 11001, node on 11002 (see prometheus.yml).
  open_monitoring {
    prometheus {
      jmx_exporter {
        enabled_in_broker = true
      }
      node_exporter {
        enabled_in_broker = true
      }
    }
  }

  tags = { managed-by = "ferry" }

  timeouts {
    create = "90m"
  }
}

locals {
  msk_bootstrap = split(",", ferry_msk_cluster.target.bootstrap_brokers)
}

resource "ferry_topic" "target" {
  for_each   = var.topics
  name       = each.key
  partitions = each.value
  config     = { "message.timestamp.type" = "CreateTime" }

  cluster {
    bootstrap_servers = local.msk_bootstrap
  }
}

resource "ferry_mirror" "into_msk" {
  source {
    bootstrap_servers = var.source_bootstrap_servers
  }
  target {
    bootstrap_servers = local.msk_bootstrap
  }

  topics                = keys(var.topics)
  consumer_groups_regex = ".*"

  launcher {
    local {
      binary    = var.ferry_mirror_binary
      state_dir = var.mirror_state_dir
    }
  }

  timeouts {
    create = "60m"
  }

  depends_on = [ferry_topic.target]
}

output "cluster_arn" {
  value = ferry_msk_cluster.target.arn
}

output "bootstrap_brokers" {
  value = ferry_msk_cluster.target.bootstrap_brokers
}

# `terraform output -json prometheus_file_sd > msk-targets.json` feeds prometheus.yml.
output "prometheus_file_sd" {
  value = [
    {
      targets = flatten([for b in local.msk_bootstrap : [
        "${split(":", b)[0]}:11001",
        "${split(":", b)[0]}:11002",
      ]])
      labels = { cluster = var.cluster_name }
    }
  ]
}

output "migration" {
  value = {
    state          = ferry_mirror.into_msk.state
    records_copied = ferry_mirror.into_msk.records_copied
    verification   = ferry_mirror.into_msk.verification
  }
}
