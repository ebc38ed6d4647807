# Client quotas on an existing Kafka cluster, managed by ferry.
#
#   terraform init
#   terraform apply -var 'bootstrap_servers=["127.0.0.1:19092"]'
#
# Check with Kafka's own tool:
#   kafka-configs.sh --bootstrap-server 127.0.0.1:19092 --describe --entity-type users --entity-name orders-app

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
  description = "Prepended to every user and client id, so several copies of this example can share a cluster."
  type        = string
  default     = ""
}

provider "ferry" {
  bootstrap_servers = var.bootstrap_servers
}

# One user, whatever client id it connects with.
resource "ferry_quota" "orders_app" {
  user = "${var.prefix}orders-app"
  config = {
    producer_byte_rate = 1048576 # bytes per second, per broker
    consumer_byte_rate = 2097152
  }
}

# The same user from its batch client: a tighter request share.
resource "ferry_quota" "orders_app_batch" {
  user      = "${var.prefix}orders-app"
  client_id = "${var.prefix}orders-batch"
  config = {
    producer_byte_rate = 524288
    request_percentage = 25
  }
}

# Every client id that has no quota of its own. Uncomment on a cluster you own: it applies to
# every client connecting to it.
# resource "ferry_quota" "default_client" {
#   default_client_id = true
#   config = {
#     controller_mutation_rate = 10
#   }
# }

output "quota_ids" {
  description = "Import ids of the quotas."
  value       = [ferry_quota.orders_app.id, ferry_quota.orders_app_batch.id]
}
