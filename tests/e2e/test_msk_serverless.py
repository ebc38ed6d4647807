"""ferry_msk_serverless_cluster through both CLIs against moto (the MSK v2 API).

What moto does and does not do, and so what is asserted here:
- CreateClusterV2 / DescribeClusterV2 / ListClustersV2 / DeleteCluster / tags work; the
  `creationTime` it returns has no zone offset (read as UTC by the provider's lenient timestamp
  layer, or DescribeClusterV2 would fail to parse at all).
- A cluster stays CREATING forever: create is applied with a short `timeouts.create`, and the test
  asserts the wait ends at that limit naming the last state, with the cluster kept in state
  (tainted) so the next plan replaces it.
- DescribeClusterV2 of a deleted or unknown cluster answers HTTP 500 instead of 404
  NotFoundException, so the delete wait cannot see the cluster go: destroy deletes it (checked in
  moto), then reports that 500; the resource leaves the state with `state rm`. For the same reason
  drift (a cluster deleted behind Terraform's back) cannot be shown here.
- GetBootstrapBrokers answers HTTP 500; the provider calls it only for an ACTIVE cluster, which
  moto never has, so `bootstrap_brokers_sasl_iam` stays null.
ACTIVE, FAILED, NotFound on read and after delete, the bootstrap string, throttling and access
denied are unit-tested against aws-smithy-mocks (provider/src/msk/serverless_tests.rs)."""

import json
import shutil

import boto3

from conftest import REPO, peer
from test_mirror import unique
from test_msk_migration import REGION, aws_env

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


def moto():
    return boto3.client(
        "kafka",
        endpoint_url=peer("FERRY_MOTO_ENDPOINT"),
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def clusters_named(client, name):
    found = client.list_clusters_v2(ClusterNameFilter=name)["ClusterInfoList"]
    return [c for c in found if c["ClusterName"] == name]


def serverless_hcl(name, subnets, security_groups, tags, extra=""):
    sg = f"\n    security_group_ids = {json.dumps(security_groups)}" if security_groups else ""
    return f"""
resource "ferry_msk_serverless_cluster" "events" {{
  cluster_name = "{name}"
  tags         = {json.dumps(tags).replace('":', '" =')}

  vpc_config {{
    subnet_ids = {json.dumps(subnets)}{sg}
  }}

  client_authentication {{
    sasl {{
      iam = true
    }}
  }}
{extra}
}}
"""


def setup(cli):
    aws_env(cli)
    cli.tfvars(endpoint=peer("FERRY_MOTO_ENDPOINT"))


def test_serverless_create_waits_for_active_and_stops_at_the_create_timeout(cli):
    client = moto()
    name = unique(f"sls-{cli.name}").replace("_", "-")
    setup(cli)
    cli.write(
        "main.tf",
        HEADER
        + serverless_hcl(
            name,
            ["subnet-0a", "subnet-0b"],
            ["sg-01"],
            {"team": "streaming"},
            extra='\n  timeouts {\n    create = "3s"\n  }\n',
        ),
    )
    cli.init()
    plan = cli.plan()
    assert plan.returncode == 2, plan.output
    assert "1 to add" in plan.output, plan.output
    assert "bootstrap_brokers_sasl_iam" in plan.output and "(known after apply)" in plan.output

    apply = cli.apply(expect=1)
    assert "MSK Serverless cluster created but not ACTIVE" in apply.flat, apply.output
    assert "time limit" in apply.flat and "CREATING" in apply.flat, apply.output

    # What moto holds is what the configuration asked for, through CreateClusterV2.
    [c] = clusters_named(client, name)
    assert c["ClusterType"] == "SERVERLESS" and c["State"] == "CREATING"
    sls = c["Serverless"]
    assert sls["VpcConfigs"] == [{"SubnetIds": ["subnet-0a", "subnet-0b"], "SecurityGroupIds": ["sg-01"]}]
    assert sls["ClientAuthentication"] == {"Sasl": {"Iam": {"Enabled": True}}}
    assert c["Tags"] == {"team": "streaming"}

    # The cluster stays in state, tainted, with what is known about it.
    state = json.loads(cli.run("show", "-json").stdout)
    [res] = state["values"]["root_module"]["resources"]
    assert res["values"]["arn"] == c["ClusterArn"]
    assert res["values"]["state"] == "CREATING"
    assert res["values"]["bootstrap_brokers_sasl_iam"] is None
    again = cli.plan()
    assert again.returncode == 2, again.output
    assert "tainted" in again.flat and "must be replaced" in again.flat, again.output

    # Destroy deletes it; moto then answers the delete wait's DescribeClusterV2 with HTTP 500.
    destroy = cli.destroy(expect=1)
    assert "kafka:DescribeClusterV2 failed" in destroy.flat, destroy.output
    assert "HTTP 500" in destroy.flat, destroy.output
    assert clusters_named(client, name) == [], "DeleteCluster reached moto"
    cli.run("state", "rm", "ferry_msk_serverless_cluster.events")


def test_serverless_import_by_arn_plans_empty_and_changes_tags_in_place(cli):
    client = moto()
    name = unique(f"sls-imp-{cli.name}").replace("_", "-")
    made = client.create_cluster_v2(
        ClusterName=name,
        Serverless={
            "VpcConfigs": [{"SubnetIds": ["subnet-1b", "subnet-1a"], "SecurityGroupIds": ["sg-11"]}],
            "ClientAuthentication": {"Sasl": {"Iam": {"Enabled": True}}},
        },
        Tags={"team": "streaming"},
    )
    arn = made["ClusterArn"]
    setup(cli)
    # Subnets in another order than AWS returns them: a set, so no difference.
    hcl = HEADER + serverless_hcl(name, ["subnet-1a", "subnet-1b"], None, {"team": "streaming"})
    cli.write("main.tf", hcl)
    cli.init()
    imported = cli.run("import", "-no-color", "ferry_msk_serverless_cluster.events", arn)
    assert "Import successful" in imported.output, imported.output
    plan = cli.plan()
    assert plan.returncode == 0, "a plan right after import must be empty:\n" + plan.output
    state = json.loads(cli.run("show", "-json").stdout)
    [res] = state["values"]["root_module"]["resources"]
    values = res["values"]
    assert (values["id"], values["arn"], values["state"]) == (arn, arn, "CREATING")
    assert values["vpc_config"] == [{"subnet_ids": ["subnet-1a", "subnet-1b"], "security_group_ids": ["sg-11"]}]

    # Tags change in place (TagResource / UntagResource).
    cli.write("main.tf", hcl.replace('{"team" = "streaming"}', '{"team" = "data", "env" = "prod"}'))
    plan = cli.plan()
    assert plan.returncode == 2 and "1 to change" in plan.output, plan.output
    cli.apply()
    tags = client.list_tags_for_resource(ResourceArn=arn)["Tags"]
    assert tags == {"team": "data", "env": "prod"}
    assert cli.plan().returncode == 0

    # Anything else replaces the cluster, and the plan says why.
    cli.write("main.tf", hcl.replace('"subnet-1b"]', '"subnet-1c"]'))
    plan = cli.plan()
    assert plan.returncode == 2 and "must be replaced" in plan.flat, plan.output
    assert "forces replacement" in plan.flat, plan.output

    cli.run("state", "rm", "ferry_msk_serverless_cluster.events")
    client.delete_cluster(ClusterArn=arn)


def test_serverless_import_refuses_what_is_not_a_serverless_cluster_arn(cli):
    client = moto()
    name = unique(f"sls-prov-{cli.name}").replace("_", "-")
    provisioned = client.create_cluster_v2(
        ClusterName=name,
        Provisioned={
            "BrokerNodeGroupInfo": {"InstanceType": "kafka.m5.large", "ClientSubnets": ["subnet-2a", "subnet-2b"]},
            "KafkaVersion": "3.6.0",
            "NumberOfBrokerNodes": 2,
        },
    )
    setup(cli)
    cli.write("main.tf", HEADER + serverless_hcl(name, ["subnet-2a"], None, {"team": "x"}))
    cli.init()
    wrong = cli.run("import", "-no-color", "ferry_msk_serverless_cluster.events", provisioned["ClusterArn"], expect=1)
    assert "Not an MSK Serverless cluster" in wrong.flat, wrong.output
    assert "manage it with ferry_msk_cluster" in wrong.flat, wrong.output
    not_arn = cli.run("import", "-no-color", "ferry_msk_serverless_cluster.events", name, expect=1)
    assert "Import an MSK Serverless cluster by its ARN" in not_arn.flat, not_arn.output
    assert cli.run("state", "list", expect=None).stdout.strip() == "", "nothing was imported"
    client.delete_cluster(ClusterArn=provisioned["ClusterArn"])


def test_serverless_bad_input_is_a_diagnostic_on_the_attribute(cli):
    setup(cli)
    hcl = HEADER + serverless_hcl("bad-input", ["sg-0a"], ["subnet-0b"], {"team": "x"})
    cli.write("main.tf", hcl.replace("iam = true", "iam = false"))
    cli.init()
    plan = cli.plan()
    assert plan.returncode == 1, plan.output
    flat = plan.flat
    assert "MSK Serverless needs IAM authentication" in flat, plan.output
    assert "Invalid subnet id" in flat and '"sg-0a" is not a subnet id' in flat, plan.output
    assert "Invalid security group id" in flat, plan.output
    # Each points at its attribute.
    assert flat.count('in resource "ferry_msk_serverless_cluster" "events"') >= 3, plan.output
    assert "subnet_ids" in flat and "security_group_ids" in flat and "iam" in flat


def test_msk_serverless_example_plans_what_it_says(cli):
    """examples/msk-serverless: the plan creates one cluster as written; security groups left
    out are AWS's choice, known after apply."""
    name = unique(f"sls-ex-{cli.name}").replace("_", "-")
    shutil.copy(REPO / "examples" / "msk-serverless" / "main.tf", cli.workdir / "main.tf")
    aws_env(cli)
    cli.tfvars(
        aws_region=REGION,
        msk_endpoint=peer("FERRY_MOTO_ENDPOINT"),
        cluster_name=name,
        subnet_ids=["subnet-3a", "subnet-3b"],
    )
    cli.init()
    plan = cli.plan("-out=tfplan")
    assert plan.returncode == 2 and "1 to add" in plan.output, plan.output
    shown = json.loads(cli.run("show", "-json", "tfplan").stdout)
    [change] = shown["resource_changes"]
    assert (change["type"], change["change"]["actions"]) == ("ferry_msk_serverless_cluster", ["create"])
    after = change["change"]["after"]
    assert after["cluster_name"] == name
    assert after["tags"] == {"managed-by": "ferry"}
    assert after["client_authentication"] == [{"sasl": [{"iam": True}]}], after
    assert after["vpc_config"][0]["subnet_ids"] == ["subnet-3a", "subnet-3b"]
    unknown = change["change"]["after_unknown"]
    assert unknown["vpc_config"][0]["security_group_ids"] is True
    assert unknown["arn"] is True and unknown["bootstrap_brokers_sasl_iam"] is True
