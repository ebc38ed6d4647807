"""Opt-in acceptance test against a real AWS account: an MSK Serverless cluster and an MSK
configuration through Terraform 1.0.3, from create (waiting for ACTIVE) to destroy (waiting until
AWS no longer knows the cluster). It costs money (roughly US$1 a run; see
docs/resources/msk_serverless_cluster.md) and needs an account CI does not have, so it is skipped
unless FERRY_ACC_AWS=1 is set together with FERRY_ACC_AWS_REGION and FERRY_ACC_AWS_SUBNETS;
credentials come from the standard AWS chain (AWS_PROFILE, AWS_ACCESS_KEY_ID/..., SSO is not
built in)."""

import json
import os
import uuid

import boto3
import pytest

RUN = os.environ.get("FERRY_ACC_AWS") == "1"
HOW = (
    "real-AWS acceptance test (creates an MSK Serverless cluster, costs roughly US$1): to run it set "
    "FERRY_ACC_AWS=1 FERRY_ACC_AWS_REGION=<region> FERRY_ACC_AWS_SUBNETS=<subnet-id>,<subnet-id> "
    "(two AZs; optional FERRY_ACC_AWS_SECURITY_GROUPS=<sg-id>,...) and AWS credentials "
    "(AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), then run "
    "`pytest test_msk_aws_acceptance.py`; see docs/resources/msk_serverless_cluster.md"
)

pytestmark = pytest.mark.skipif(not RUN, reason=HOW)


def settings():
    region = os.environ.get("FERRY_ACC_AWS_REGION", "")
    subnets = [s for s in os.environ.get("FERRY_ACC_AWS_SUBNETS", "").split(",") if s]
    groups = [s for s in os.environ.get("FERRY_ACC_AWS_SECURITY_GROUPS", "").split(",") if s]
    if not region or not subnets:
        pytest.fail("FERRY_ACC_AWS=1 needs FERRY_ACC_AWS_REGION and FERRY_ACC_AWS_SUBNETS: " + HOW)
    return region, subnets, groups


def hcl(name, subnets, groups, tags):
    sg = f"\n    security_group_ids = {json.dumps(groups)}" if groups else ""
    tag_text = ", ".join(f'{k} = "{v}"' for k, v in tags.items())
    return f"""
terraform {{
  required_providers {{
    ferry = {{ source = "ferry/ferry" }}
  }}
}}

variable "region" {{
  type = string
}}

provider "ferry" {{
  aws {{
    region = var.region
  }}
}}

resource "ferry_msk_configuration" "acc" {{
  name              = "{name}"
  kafka_versions    = ["3.6.0"]
  description       = "ferry acceptance test"
  server_properties = "auto.create.topics.enable = false\\n"
}}

resource "ferry_msk_serverless_cluster" "acc" {{
  cluster_name = "{name}"
  tags         = {{ {tag_text} }}

  vpc_config {{
    subnet_ids = {json.dumps(subnets)}{sg}
  }}

  client_authentication {{
    sasl {{
      iam = true
    }}
  }}

  timeouts {{
    create = "60m"
    delete = "60m"
  }}
}}

output "cluster" {{
  value = ferry_msk_serverless_cluster.acc
}}

output "configuration" {{
  value = ferry_msk_configuration.acc
}}
"""


@pytest.mark.parametrize("cli", ["terraform"], indirect=True)
def test_msk_serverless_and_configuration_on_real_aws(cli):
    region, subnets, groups = settings()
    kafka = boto3.client("kafka", region_name=region)
    name = f"ferry-acc-{uuid.uuid4().hex[:8]}"
    long = 3600
    cli.tfvars(region=region)
    cli.write("main.tf", hcl(name, subnets, groups, {"team": "ferry-acc"}))
    cli.init()
    applied = False
    try:
        cli.apply(timeout=long)
        applied = True
        out = {k: v["value"] for k, v in json.loads(cli.run("output", "-json").stdout).items()}
        c = out["cluster"]
        assert c["state"] == "ACTIVE", c
        assert c["bootstrap_brokers_sasl_iam"] and ":9098" in c["bootstrap_brokers_sasl_iam"], c
        arn = c["arn"]
        info = kafka.describe_cluster_v2(ClusterArn=arn)["ClusterInfo"]
        assert (info["ClusterType"], info["State"]) == ("SERVERLESS", "ACTIVE")
        assert sorted(info["Serverless"]["VpcConfigs"][0]["SubnetIds"]) == sorted(subnets)
        assert out["configuration"]["latest_revision"] == 1

        plan = cli.plan(timeout=long)
        assert plan.returncode == 0, "a plan right after apply must be empty:\n" + plan.output

        # Import the live cluster by ARN: the plan stays empty.
        cli.run("state", "rm", "ferry_msk_serverless_cluster.acc")
        cli.run("import", "-no-color", "ferry_msk_serverless_cluster.acc", arn)
        plan = cli.plan(timeout=long)
        assert plan.returncode == 0, "a plan right after import must be empty:\n" + plan.output

        # Tags change in place.
        cli.write("main.tf", hcl(name, subnets, groups, {"team": "ferry-acc", "run": "2"}))
        cli.apply(timeout=long)
        assert kafka.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "ferry-acc", "run": "2"}

        cli.destroy(timeout=long)
        applied = False
        with pytest.raises(kafka.exceptions.NotFoundException):
            kafka.describe_cluster_v2(ClusterArn=arn)
    finally:
        if applied:
            left = cli.destroy(timeout=long, expect=None)
            if left.returncode != 0:
                print(f"cleanup failed; MSK objects named {name} may remain in {region}; "
                      f"run `terraform destroy` in {cli.workdir}:\n{left.output}")
