"""examples/msk-migration end to end on ministack, through both CLIs: one apply creates the MSK
configuration and cluster (ministack), the topics on the cluster's bootstrap brokers (ministack
answers GetBootstrapBrokers with Kafka cluster B) and a ferry_mirror from cluster A into it; the
plan afterwards is empty; destroy removes the mirror, the topics and the cluster.

ministack gap, asserted here so it cannot go unnoticed: it has no DeleteConfiguration route
(HTTP 400 "No route"), so destroy reports that one failure and the configuration leaves the state
with `state rm`. Update* calls are not implemented there either; they are unit-tested with
aws-smithy-mocks (provider/src/msk/)."""

import json
import shutil

import boto3

from conftest import REPO, Kafka, peer
from mirror_util import MIRROR, contents, create_topic, produce, read_partition
from test_mirror import sample_records, unique
from test_mirror_resource import kill_workers

REGION = "us-east-1"


def aws_env(cli):
    """Static test credentials and a region, so the AWS chain never looks further (no IMDS)."""
    cli.env.update(
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
    )
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KAFKA"):
        cli.env.pop(k, None)


def ministack():
    return boto3.client(
        "kafka",
        endpoint_url=peer("FERRY_MINISTACK_ENDPOINT"),
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def cluster_names(client):
    return {c["ClusterName"] for c in client.list_clusters()["ClusterInfoList"]}


def test_msk_migration_example_on_ministack(cli, tmp_path):
    a, b = peer("FERRY_KAFKA_A"), peer("FERRY_KAFKA_B")
    assert peer("FERRY_MINISTACK_BOOTSTRAP") == b, "ministack must answer with cluster B"
    msk = ministack()
    name = unique(f"msk-{cli.name}").replace("_", "-")
    topics = {unique(f"msk-{cli.name}-orders"): 3, unique(f"msk-{cli.name}-payments"): 2}
    for t, partitions in topics.items():
        create_topic(a, t, partitions)
        produce(a, t, sample_records(1500, partitions))
    state_dir = tmp_path / "ferry-state"

    shutil.copy(REPO / "examples" / "msk-migration" / "main.tf", cli.workdir / "main.tf")
    cli.tfvars(
        source_bootstrap_servers=[a],
        aws_region=REGION,
        msk_endpoint=peer("FERRY_MINISTACK_ENDPOINT"),
        cluster_name=name,
        topics=topics,
        ferry_mirror_binary=str(MIRROR),
        mirror_state_dir=str(state_dir),
    )
    aws_env(cli)
    try:
        cli.init()
        plan = cli.plan()
        assert plan.returncode == 2, plan.output
        assert "5 to add" in plan.output, plan.output
        assert "bootstrap_brokers" in plan.output and "(known after apply)" in plan.output

        apply = cli.apply()
        assert "Resources: 5 added" in apply.output, apply.output
        outputs = json.loads(cli.run("output", "-json").stdout)
        arn = outputs["cluster_arn"]["value"]
        assert arn.startswith("arn:aws:kafka:") and f"cluster/{name}/" in arn
        assert outputs["bootstrap_brokers"]["value"] == b
        host = b.split(":")[0]
        assert outputs["prometheus_file_sd"]["value"][0]["targets"] == [f"{host}:11001", f"{host}:11002"]

        # The cluster as ministack has it: what the module asked for.
        info = msk.describe_cluster(ClusterArn=arn)["ClusterInfo"]
        assert info["State"] == "ACTIVE"
        assert info["NumberOfBrokerNodes"] == 3
        assert info["BrokerNodeGroupInfo"]["InstanceType"] == "kafka.m5.large"
        assert info["OpenMonitoring"]["Prometheus"]["JmxExporter"]["EnabledInBroker"] is True
        software = info["CurrentBrokerSoftwareInfo"]
        config_arn = software["ConfigurationArn"]
        assert software["ConfigurationRevision"] == 1
        assert info["Tags"] == {"managed-by": "ferry"}
        props = msk.describe_configuration_revision(Arn=config_arn, Revision=1)["ServerProperties"]
        assert b"auto.create.topics.enable = false" in props

        # The topics live on the "MSK" cluster, which is really B, and hold A's records.
        kafka_b = Kafka(b)
        migration = outputs["migration"]["value"]
        assert migration["state"] == "complete", migration
        assert migration["records_copied"] == 3000
        for t, partitions in topics.items():
            assert kafka_b.topic(t) == (partitions, 1)
            for p in range(partitions):
                assert contents(read_partition(b, t, p)) == contents(read_partition(a, t, p))

        again = cli.plan()
        assert again.returncode == 0, "a plan right after apply must be empty:\n" + again.output

        destroy = cli.destroy(expect=1)
        assert "Access denied" not in destroy.flat
        assert "kafka:DeleteConfiguration failed" in destroy.flat, destroy.output
        assert "No route for DELETE" in destroy.flat, destroy.output
        assert name not in cluster_names(msk), "the cluster is deleted"
        for t in topics:
            assert kafka_b.topic(t) is None, f"topic {t} deleted from the MSK cluster"
        left = cli.run("state", "list").stdout.split()
        assert left == ["ferry_msk_configuration.target"], left
        cli.run("state", "rm", "ferry_msk_configuration.target")
        assert cli.run("state", "list").stdout.strip() == ""
    finally:
        kill_workers(state_dir)
