"""`terraform import` of an MSK configuration and an MSK cluster by ARN against ministack, through
both CLIs: both are made out of band with boto3, the HCL describes them, `import` adopts them and
the plan afterwards is empty; AWS is unchanged. Then a configuration written differently from what
AWS has shows up as a change, so the empty plan is not vacuous.

ministack gaps: no DeleteConfiguration route, so the imported objects leave the state with
`state rm` and the cluster is deleted with boto3 (destroy through the CLIs is covered by
test_msk_migration.py)."""

import json

from conftest import peer
from test_mirror import unique
from test_msk_data_sources import HEADER
from test_msk_migration import aws_env, ministack

PROPS = b"auto.create.topics.enable = false\nlog.retention.hours = 48\n"


def hcl(name, config_arn, brokers=2, jmx=True):
    return (
        HEADER
        + f"""
resource "ferry_msk_configuration" "target" {{
  name              = "{name}"
  kafka_versions    = ["3.6.0"]
  description       = "imported"
  server_properties = {json.dumps(PROPS.decode())}
}}

resource "ferry_msk_cluster" "target" {{
  cluster_name           = "{name}"
  kafka_version          = "3.6.0"
  number_of_broker_nodes = {brokers}
  tags                   = {{ team = "streaming" }}

  broker_node_group_info {{
    instance_type   = "kafka.m5.large"
    client_subnets  = ["subnet-a", "subnet-b"]
    security_groups = ["sg-kafka"]
    storage_info {{
      ebs_storage_info {{
        volume_size = 100
      }}
    }}
  }}

  encryption_info {{
    encryption_in_transit {{
      client_broker = "TLS"
      in_cluster    = true
    }}
  }}

  configuration_info {{
    arn      = "{config_arn}"
    revision = 1
  }}

  open_monitoring {{
    prometheus {{
      jmx_exporter {{
        enabled_in_broker = {str(jmx).lower()}
      }}
      node_exporter {{
        enabled_in_broker = true
      }}
    }}
  }}
}}
"""
    )


def test_msk_cluster_and_configuration_import_by_arn_then_plan_is_empty(cli):
    msk = ministack()
    name = unique(f"imp-{cli.name}").replace("_", "-")
    config = msk.create_configuration(
        Name=name, KafkaVersions=["3.6.0"], ServerProperties=PROPS, Description="imported"
    )
    cluster = msk.create_cluster(
        ClusterName=name,
        KafkaVersion="3.6.0",
        NumberOfBrokerNodes=2,
        BrokerNodeGroupInfo={
            "InstanceType": "kafka.m5.large",
            "ClientSubnets": ["subnet-a", "subnet-b"],
            "SecurityGroups": ["sg-kafka"],
            "StorageInfo": {"EbsStorageInfo": {"VolumeSize": 100}},
        },
        ConfigurationInfo={"Arn": config["Arn"], "Revision": 1},
        EncryptionInfo={"EncryptionInTransit": {"ClientBroker": "TLS", "InCluster": True}},
        OpenMonitoring={
            "Prometheus": {
                "JmxExporter": {"EnabledInBroker": True},
                "NodeExporter": {"EnabledInBroker": True},
            }
        },
        Tags={"team": "streaming"},
    )
    arn = cluster["ClusterArn"]
    before = msk.describe_cluster(ClusterArn=arn)["ClusterInfo"]
    aws_env(cli)
    cli.tfvars(endpoint=peer("FERRY_MINISTACK_ENDPOINT"))
    cli.write("main.tf", hcl(name, config["Arn"]))
    cli.init()
    try:
        for address, id_ in [("ferry_msk_configuration.target", config["Arn"]), ("ferry_msk_cluster.target", arn)]:
            out = cli.run("import", "-no-color", address, id_)
            assert "Import successful" in out.output, out.output
        plan = cli.plan()
        assert plan.returncode == 0, "a plan right after import must be empty:\n" + plan.output

        state = json.loads(cli.run("show", "-json").stdout)
        values = {r["address"]: r["values"] for r in state["values"]["root_module"]["resources"]}
        c = values["ferry_msk_cluster.target"]
        assert (c["id"], c["arn"], c["state"]) == (arn, arn, "ACTIVE")
        assert c["current_version"] == before["CurrentVersion"]
        assert c["bootstrap_brokers"] == peer("FERRY_MINISTACK_BOOTSTRAP")
        cfg = values["ferry_msk_configuration.target"]
        assert (cfg["arn"], cfg["latest_revision"]) == (config["Arn"], 1)
        assert cfg["server_properties"] == PROPS.decode()

        # The empty plan is not vacuous: a configuration that differs from AWS is a change.
        cli.write("main.tf", hcl(name, config["Arn"], brokers=4, jmx=False))
        plan = cli.plan()
        assert plan.returncode == 2, plan.output
        assert "1 to change" in plan.output, plan.output
        assert "number_of_broker_nodes" in plan.output and "enabled_in_broker" in plan.output

        # Importing changed nothing in AWS.
        after = msk.describe_cluster(ClusterArn=arn)["ClusterInfo"]
        assert after["CurrentVersion"] == before["CurrentVersion"]
        assert after["NumberOfBrokerNodes"] == 2
    finally:
        for address in ("ferry_msk_cluster.target", "ferry_msk_configuration.target"):
            cli.run("state", "rm", address, expect=None)
        msk.delete_cluster(ClusterArn=arn)


def test_msk_import_refuses_an_id_that_is_not_an_arn(cli):
    aws_env(cli)
    cli.tfvars(endpoint=peer("FERRY_MINISTACK_ENDPOINT"))
    cli.write("main.tf", hcl("not-imported", "arn:aws:kafka:us-east-1:000000000000:configuration/x/1"))
    cli.init()
    for address in ("ferry_msk_cluster.target", "ferry_msk_configuration.target"):
        out = cli.run("import", "-no-color", address, "not-imported", expect=1)
        assert "Invalid import id" in out.flat, out.output
    assert cli.run("state", "list", expect=None).stdout.strip() == "", "nothing was imported"
