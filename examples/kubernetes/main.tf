# ferry_mirror with its workers as pods of an existing Kubernetes cluster.
#
#   terraform init
#   terraform apply -var 'image=registry.example.com/ferry-mirror:0.1.0' \
#     -var 'source_servers=["kafka-1.internal:9092"]' -var 'target_servers=["b-1.msk.example:9092"]'
#
# The namespace must exist (kubectl create namespace kafka-migration). The image is the runtime
# image built from runtime/Dockerfile and pushed where the cluster pulls from. The provider reaches
# the cluster through KUBECONFIG / ~/.kube/config unless kubeconfig_path, context or in_cluster say
# otherwise. Destroying the mirror is the cutover: stop the source's producers first.

terraform {
  required_version = ">= 1.0"
  required_providers {
    ferry = {
      source = "ferry/ferry"
    }
  }
}

variable "source_servers" {
  type = list(string)
}

variable "target_servers" {
  type = list(string)
}

variable "source_sasl_username" {
  type    = string
  default = "ferry"
}

variable "source_sasl_password" {
  description = "Goes into the run's Secret, mounted into the pods as a file; never into a pod spec."
  type        = string
  sensitive   = true
}

variable "topics_regex" {
  type    = string
  default = "orders\\..*"
}

variable "image" {
  description = "The ferry-mirror runtime image."
  type        = string
}

variable "namespace" {
  type    = string
  default = "kafka-migration"
}

variable "workers" {
  description = "Worker pods; changing it scales the Deployment in place."
  type        = number
  default     = 3
}

variable "kubeconfig_path" {
  description = "null: KUBECONFIG, then ~/.kube/config."
  type        = string
  default     = null
}

variable "kube_context" {
  description = "null: the kubeconfig's current context."
  type        = string
  default     = null
}

provider "ferry" {}

resource "ferry_mirror" "migration" {
  source {
    bootstrap_servers = var.source_servers
    sasl {
      mechanism = "SCRAM-SHA-512"
      username  = var.source_sasl_username
      password  = var.source_sasl_password
    }
  }
  target {
    bootstrap_servers = var.target_servers
  }

  topics_regex          = var.topics_regex
  consumer_groups_regex = ".*"
  mode                  = "continuous"
  workers               = var.workers

  launcher {
    kubernetes {
      namespace         = var.namespace
      image             = var.image
      image_pull_policy = "IfNotPresent"
      kubeconfig_path   = var.kubeconfig_path
      context           = var.kube_context

      resources {
        cpu_request    = "500m"
        memory_request = "256Mi"
        memory_limit   = "1Gi"
      }

      # Where Kafka is reachable only from the nodes (or the cluster has no pod network):
      # host_network = true
    }
  }

  timeouts {
    create = "4h"
    delete = "30m"
  }
}

output "mirror" {
  value = {
    state          = ferry_mirror.migration.state
    records_copied = ferry_mirror.migration.records_copied
    lag            = ferry_mirror.migration.lag
    drift          = ferry_mirror.migration.launcher[0].kubernetes[0].drift
  }
}
