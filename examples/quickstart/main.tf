# Quickstart: copy topics and consumer groups from one Kafka cluster to another with ferry_mirror.
# `make demo` runs this against two local clusters after filling the source with data.
#
#   terraform init
#   terraform apply -var 'source_servers=["127.0.0.1:19092"]' -var 'target_servers=["127.0.0.1:29092"]'

terraform {
  required_version = ">= 1.0"
  required_providers {
    ferry = {
      source = "ferry/ferry"
    }
  }
}

variable "source_servers" {
  type    = list(string)
  default = ["127.0.0.1:19092"]
}

variable "target_servers" {
  type    = list(string)
  default = ["127.0.0.1:29092"]
}

variable "topics" {
  description = "Source topics to move."
  type        = list(string)
  default     = ["orders", "payments"]
}

variable "ferry_mirror_binary" {
  description = "Path of ferry-mirror; null uses the one beside the provider."
  type        = string
  default     = null
}

variable "state_dir" {
  type    = string
  default = ".ferry"
}

provider "ferry" {}

resource "ferry_mirror" "migration" {
  source {
    bootstrap_servers = var.source_servers
  }
  target {
    bootstrap_servers = var.target_servers
  }

  topics                = var.topics
  consumer_groups_regex = ".*"
  workers               = 2

  launcher {
    local {
      binary    = var.ferry_mirror_binary
      state_dir = var.state_dir
    }
  }

  timeouts {
    create = "30m"
  }
}

output "report" {
  value = {
    run_id            = ferry_mirror.migration.run_id
    state             = ferry_mirror.migration.state
    records_copied    = ferry_mirror.migration.records_copied
    groups_translated = ferry_mirror.migration.groups_translated
    verification      = ferry_mirror.migration.verification
  }
}
