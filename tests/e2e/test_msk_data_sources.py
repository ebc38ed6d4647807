"""MSK data sources through both CLIs against ministack. The cluster and configuration are made
with boto3, independently of the provider. ferry_msk_kafka_version meets a ministack gap (no
ListKafkaVersions route): the test asserts the error the plan shows; its logic is unit-tested."""

import json

from conftest import peer
from test_mirror import unique
from test_msk_migration import REGION, aws_env, ministack

HEADER = """
terraform {
  required_providers {
    ferry = { source = "ferry/ferry" }
  }
}

variable "endpoint" {
  type = string
}

provider "ferry" {
  aws {
    region      = "%s"
    max_retries = 1
    endpoints {
      kafka = var.endpoint
    }
  }
}
""" % REGION


def test_msk_data_sources_read_what_exists(cli):
    msk = ministack()
    name = unique(f"ds-{cli.name}").replace("_", "-")
    props = b"auto.create.topics.enable = false\nlog.retention.hours = 48\n"
    config = msk.create_configuration(Name=name, KafkaVersions=["3.6.0"], ServerProperties=props)
    cluster = msk.create_cluster(
        ClusterName=name,
        KafkaVersion="3.6.0",
        NumberOfBrokerNodes=2,
        BrokerNodeGroupInfo={"InstanceType": "kafka.m5.large", "ClientSubnets": ["subnet-a", "subnet-b"]},
        Tags={"team": "streaming"},
    )
    aws_env(cli)
    cli.tfvars(endpoint=peer("FERRY_MINISTACK_ENDPOINT"))
    cli.write(
        "main.tf",
        HEADER
        + f"""
data "ferry_msk_cluster" "by_name" {{
  cluster_name = "{name}"
}}

data "ferry_msk_cluster" "by_arn" {{
  arn = "{cluster['ClusterArn']}"
}}

data "ferry_msk_bootstrap_brokers" "b" {{
  cluster_arn = data.ferry_msk_cluster.by_name.arn
}}

data "ferry_msk_configuration" "c" {{
  name = "{name}"
}}

output "by_name" {{
  value = data.ferry_msk_cluster.by_name
}}

output "same" {{
  value = data.ferry_msk_cluster.by_arn.cluster_name
}}

output "brokers" {{
  value = data.ferry_msk_bootstrap_brokers.b
}}

output "configuration" {{
  value = data.ferry_msk_configuration.c
}}
""",
    )
    cli.init()
    cli.apply()
    out = {k: v["value"] for k, v in json.loads(cli.run("output", "-json").stdout).items()}
    c = out["by_name"]
    assert c["arn"] == cluster["ClusterArn"]
    assert (c["kafka_version"], c["number_of_broker_nodes"], c["state"]) == ("3.6.0", 2, "ACTIVE")
    assert c["tags"] == {"team": "streaming"}
    assert c["bootstrap_brokers"] == peer("FERRY_MINISTACK_BOOTSTRAP")
    assert c["bootstrap_brokers_public_tls"] is None, "ministack's empty string means none"
    assert out["same"] == name
    assert out["brokers"]["bootstrap_brokers"] == peer("FERRY_MINISTACK_BOOTSTRAP")
    assert out["brokers"]["bootstrap_brokers_tls"], "ministack answers a TLS string too"
    cfg = out["configuration"]
    assert cfg["arn"] == config["Arn"]
    assert (cfg["latest_revision"], cfg["kafka_versions"]) == (1, ["3.6.0"])
    assert cfg["server_properties"] == props.decode()

    # A name nobody has is an error on the attribute, not an empty result.
    cli.write("missing.tf", 'data "ferry_msk_cluster" "missing" {\n  cluster_name = "no-such-cluster-x"\n}\n')
    missing = cli.plan()
    assert missing.returncode == 1
    assert "MSK cluster not found" in missing.flat and "0 provisioned clusters" in missing.flat, missing.output
    msk.delete_cluster(ClusterArn=cluster["ClusterArn"])


def test_msk_kafka_version_on_ministack_shows_its_gap(cli):
    aws_env(cli)
    cli.tfvars(endpoint=peer("FERRY_MINISTACK_ENDPOINT"))
    cli.write(
        "main.tf",
        HEADER + 'data "ferry_msk_kafka_version" "v" {\n  preferred_versions = ["3.6.0"]\n}\n',
    )
    cli.init()
    plan = cli.plan()
    assert plan.returncode == 1, plan.output
    assert "kafka:ListKafkaVersions failed" in plan.flat, plan.output
    assert "No route" in plan.flat, plan.output
