# An Amazon MSK Serverless cluster for new workloads, reachable over SASL/IAM from the given
# subnets. Apply takes a few minutes (create waits until the cluster is ACTIVE); destroy waits
# until AWS no longer knows it.
#
#   terraform init
#   terraform apply -var 'subnet_ids=["subnet-0a1b2c3d","subnet-4e5f6a7b"]' \
#                   -var 'security_group_ids=["sg-0123abcd"]'
#
# Clients authenticate with IAM: Java clients with the aws-msk-iam-auth library
# (security.protocol=SASL_SSL, sasl.mechanism=AWS_MSK_IAM), librdkafka-based ones with
# OAUTHBEARER tokens from aws-msk-iam-sasl-signer. ferry's own Kafka connections do not speak
# IAM yet, so ferry_topic and ferry_mirror target provisioned clusters (examples/msk-migration).
#
# Against an emulator (the end-to-end test uses moto): -var 'msk_endpoint=http://127.0.0.1:5055'.

terraform {
  required_version = ">= 1.0"
  required_providers {
    ferry = {
      source = "ferry/ferry"
    }
  }
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
  default = "events"
}

variable "subnet_ids" {
  description = "Subnets (two or more, in different availability zones) whose clients reach the cluster."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the cluster's endpoints; null for the VPC's default group."
  type        = list(string)
  default     = null
}

variable "tags" {
  type    = map(string)
  default = { managed-by = "ferry" }
}

provider "ferry" {
  aws {
    region = var.aws_region
    endpoints {
      kafka = var.msk_endpoint
    }
  }
}

resource "ferry_msk_serverless_cluster" "this" {
  cluster_name = var.cluster_name
  tags         = var.tags

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = var.security_group_ids
  }

  client_authentication {
    sasl {
      iam = true
    }
  }
}

output "arn" {
  value = ferry_msk_serverless_cluster.this.arn
}

output "bootstrap_brokers_sasl_iam" {
  description = "host:port of the SASL/IAM endpoint (port 9098)."
  value       = ferry_msk_serverless_cluster.this.bootstrap_brokers_sasl_iam
}
