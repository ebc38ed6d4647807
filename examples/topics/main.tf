# Topics on an existing Kafka cluster, managed by ferry.
#
#   terraform init
#   terraform apply -var 'bootstrap_servers=["127.0.0.1:19092"]'

terraform {
  required_version = ">= 1.0"
  required_providers {
    ferry = {
      source = "ferry/ferry"
    }
  }
}

variable "bootstrap_servers" {
  description = "Kafka brokers as host:port."
  type        = list(string)
  default     = ["127.0.0.1:19092"]
}

variable "prefix" {
  description = "Prepended to every topic name, so several copies of this example can share a cluster."
  type        = string
  default     = ""
}

variable "orders_partitions" {
  type    = number
  default = 3
}

variable "orders_config" {
  type = map(string)
  default = {
    "retention.ms"   = "604800000"
    "cleanup.policy" = "delete"
  }
}

provider "ferry" {
  bootstrap_servers = var.bootstrap_servers
  timeout           = "20s"
}

# A topic with a few overrides; everything else keeps the broker defaults.
resource "ferry_topic" "orders" {
  name               = "${var.prefix}orders"
  partitions         = var.orders_partitions
  replication_factor = 1
  config             = var.orders_config
}

# A compacted topic keyed by customer id.
resource "ferry_topic" "customers" {
  name       = "${var.prefix}customers"
  partitions = 2
  config = {
    "cleanup.policy"            = "compact"
    "min.compaction.lag.ms"     = "60000"
  }
}

# Reads back what Kafka holds, e.g. for other modules.
data "ferry_topics" "ours" {
  name_regex = "${var.prefix}.*"
  depends_on = [ferry_topic.orders, ferry_topic.customers]
}

output "orders_topic_id" {
  value = ferry_topic.orders.topic_id
}

output "topics" {
  value = data.ferry_topics.ours.names
}
