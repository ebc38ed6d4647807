"""ferry_topic end to end: real Terraform 1.0.3 and OpenTofu, real Kafka, state read back with
an independent admin client after every step."""

import shutil

from conftest import REPO, peer

PROVIDER_HEADER = """
terraform {
  required_providers {
    ferry = { source = "ferry/ferry" }
  }
}
"""


def provider_block(servers, extra=""):
    return f'provider "ferry" {{\n  bootstrap_servers = ["{servers}"]\n  timeout = "15s"\n{extra}}}\n'


def test_topics_example_lifecycle(cli, kafka_a):
    """init, plan, apply, no-op plan, import, change, drift and destroy of examples/topics."""
    prefix = f"e2e-{cli.name}-"
    orders, customers, legacy = prefix + "orders", prefix + "customers", prefix + "legacy"
    for t in (orders, customers, legacy):
        kafka_a.delete_if_exists(t)
    shutil.copy(REPO / "examples" / "topics" / "main.tf", cli.workdir / "main.tf")
    base = dict(bootstrap_servers=[peer("FERRY_KAFKA_A")], prefix=prefix)
    cli.tfvars(**base)

    out = cli.init().output
    assert "ferry/ferry" in out
    assert (cli.workdir / ".terraform.lock.hcl").exists(), "init must record the provider in the lock file"

    plan = cli.plan()
    assert plan.returncode == 2, plan.output
    assert "2 to add" in plan.output

    apply = cli.apply()
    assert "Resources: 2 added" in apply.output
    assert kafka_a.topic(orders) == (3, 1)
    assert kafka_a.overrides(orders) == {"retention.ms": "604800000", "cleanup.policy": "delete"}
    assert kafka_a.topic(customers) == (2, 1)
    assert kafka_a.overrides(customers) == {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}
    assert orders in apply.output and customers in apply.output, "the data source lists both topics"

    assert cli.plan().returncode == 0, "a second plan must show no changes"

    # A topic created out of band, then imported: the plan afterwards shows no changes.
    kafka_a.create(legacy, 4, {"retention.ms": "3600000"})
    cli.write(
        "legacy.tf",
        'resource "ferry_topic" "legacy" {\n'
        f'  name       = "{legacy}"\n'
        "  partitions = 4\n"
        '  config     = { "retention.ms" = "3600000" }\n'
        "}\n",
    )
    cli.run("import", "-no-color", "-input=false", "ferry_topic.legacy", legacy)
    after_import = cli.plan()
    # The data source now also lists the imported topic, so outputs change; resources must not.
    assert after_import.returncode in (0, 2), after_import.output
    assert "will be" not in after_import.output and "must be replaced" not in after_import.output, after_import.output
    assert kafka_a.overrides(legacy) == {"retention.ms": "3600000"}

    # Grow partitions, change one key, drop another; an unmanaged override set out of band stays.
    kafka_a.set_config(orders, "segment.ms", "3600000")
    cli.tfvars(**base, orders_partitions=5, orders_config={"retention.ms": "86400000"})
    change = cli.apply()
    assert "2 changed" not in change.output and "1 changed" in change.output, change.output
    assert kafka_a.topic(orders) == (5, 1)
    assert kafka_a.overrides(orders) == {"retention.ms": "86400000", "segment.ms": "3600000"}, (
        "cleanup.policy must be reset, segment.ms (not managed) must survive"
    )

    # Drift on a managed key shows in the next plan and apply puts it back.
    kafka_a.set_config(orders, "retention.ms", "1234")
    drift = cli.plan()
    assert drift.returncode == 2, drift.output
    assert '"retention.ms" = "1234" -> "86400000"' in drift.output
    cli.apply()
    assert kafka_a.overrides(orders)["retention.ms"] == "86400000"

    # Partitions added out of band are seen; going back down is refused, not a destroy.
    kafka_a.add_partitions(orders, 6)
    shrink = cli.plan()
    assert shrink.returncode == 1, shrink.output
    assert "Kafka cannot remove partitions" in shrink.flat
    assert "has 6 partitions" in shrink.flat
    assert "destroy" not in shrink.output.split("Error:")[0], "no destroy may be planned"
    assert kafka_a.topic(orders) == (6, 1)

    cli.tfvars(**base, orders_partitions=6, orders_config={"retention.ms": "86400000"})
    cli.destroy()
    for t in (orders, customers, legacy):
        assert kafka_a.topic(t) is None, f"{t} should be gone after destroy"


def test_static_mistakes_point_at_the_attribute(cli):
    cli.write(
        "main.tf",
        PROVIDER_HEADER
        + provider_block("127.0.0.1:19092")
        + 'resource "ferry_topic" "bad" {\n'
        '  name       = "has spaces!"\n'
        "  partitions = 0\n"
        '  config     = { "Retention.MS" = "1" }\n'
        "  timeouts { create = \"5 minutes\" }\n"
        "}\n",
    )
    cli.init()
    v = cli.run("validate", "-no-color", expect=1)
    for text in ("Invalid topic name", "Invalid partition count", "Invalid topic config name", "Invalid duration"):
        assert text in v.flat, v.output
    assert 'name       = "has spaces!"' in v.output, "the diagnostic must quote the offending line"


def test_broker_rejections_fail_the_plan(cli, kafka_a):
    taken = f"e2e-{cli.name}-taken"
    kafka_a.delete_if_exists(taken)
    kafka_a.create(taken, 1)
    cli.write(
        "main.tf",
        PROVIDER_HEADER
        + provider_block(peer("FERRY_KAFKA_A"))
        + f'resource "ferry_topic" "rf" {{\n  name = "e2e-{cli.name}-rf3"\n  partitions = 1\n  replication_factor = 3\n}}\n'
        + f'resource "ferry_topic" "cfg" {{\n  name = "e2e-{cli.name}-cfg"\n  partitions = 1\n'
        '  config = { "no.such.setting" = "1" }\n}\n'
        + f'resource "ferry_topic" "taken" {{\n  name = "{taken}"\n  partitions = 1\n}}\n',
    )
    cli.init()
    plan = cli.plan()
    assert plan.returncode == 1, plan.output
    out = plan.flat
    assert "replication_factor = 3" in out and "replication factor of 3 cannot be reached" in out, out
    assert "Unknown topic config name: no.such.setting" in out, out
    assert "already exists" in out and f"terraform import <resource address> {taken}" in out, out
    assert kafka_a.topic(f"e2e-{cli.name}-rf3") is None and kafka_a.topic(f"e2e-{cli.name}-cfg") is None
    kafka_a.delete_if_exists(taken)


def test_replication_factor_three_on_three_brokers(cli, kafka_c):
    name = f"e2e-{cli.name}-rf3"
    kafka_c.delete_if_exists(name)
    servers = peer("FERRY_KAFKA_C").split(",")[0]
    cli.write(
        "main.tf",
        PROVIDER_HEADER
        + provider_block(servers)
        + f'resource "ferry_topic" "t" {{\n  name = "{name}"\n  partitions = 6\n  replication_factor = 3\n'
        '  config = { "min.insync.replicas" = "2" }\n}\n',
    )
    cli.init()
    cli.apply()
    assert kafka_c.topic(name) == (6, 3)
    assert kafka_c.overrides(name) == {"min.insync.replicas": "2"}
    assert cli.plan().returncode == 0
    cli.destroy()
    assert kafka_c.topic(name) is None


def test_unreachable_brokers_fail_within_the_timeout(cli):
    cli.write(
        "main.tf",
        PROVIDER_HEADER
        + 'provider "ferry" {\n  bootstrap_servers = ["127.0.0.1:1"]\n  timeout = "3s"\n}\n'
        + 'resource "ferry_topic" "t" {\n  name = "never"\n  partitions = 1\n}\n',
    )
    cli.init()
    plan = cli.plan(timeout=120)
    assert plan.returncode == 1, plan.output
    assert "could not reach Kafka at 127.0.0.1:1" in plan.flat, plan.output
    # A bound against hanging, far above the configured 3 s; not a speed claim.
    assert plan.elapsed < 90, f"plan took {plan.elapsed:.0f}s"


def test_missing_connection_names_both_places(cli):
    cli.write("main.tf", PROVIDER_HEADER + 'resource "ferry_topic" "t" {\n  name = "x"\n  partitions = 1\n}\n')
    cli.init()
    plan = cli.plan()
    assert plan.returncode == 1
    assert "No Kafka connection configured" in plan.flat
    assert 'provider "ferry" block' in plan.flat and "cluster { bootstrap_servers" in plan.flat, plan.output


def test_cluster_known_only_at_apply_plans_a_clean_create(cli, kafka_a):
    """The bootstrap servers of the second topic depend on the first topic's computed id, the
    same shape as topics whose cluster is created in the same apply."""
    first, second = f"e2e-{cli.name}-first", f"e2e-{cli.name}-second"
    for t in (first, second):
        kafka_a.delete_if_exists(t)
    servers = peer("FERRY_KAFKA_A")
    cli.write(
        "main.tf",
        PROVIDER_HEADER
        + 'provider "ferry" {}\n'
        + f'resource "ferry_topic" "first" {{\n  name = "{first}"\n  partitions = 1\n'
        f'  cluster {{\n    bootstrap_servers = ["{servers}"]\n  }}\n}}\n'
        + f'resource "ferry_topic" "second" {{\n  name = "{second}"\n  partitions = 2\n'
        '  cluster {\n'
        f'    bootstrap_servers = [replace("{servers}#${{ferry_topic.first.topic_id}}", "/#.*/", "")]\n'
        "  }\n}\n",
    )
    cli.init()
    plan = cli.plan()
    assert plan.returncode == 2, plan.output
    assert "2 to add" in plan.output
    cli.apply()
    assert kafka_a.topic(second) == (2, 1)
    cli.destroy()
    assert kafka_a.topic(first) is None and kafka_a.topic(second) is None


def test_sasl_scram_with_password_from_the_environment(cli, kafka_a):
    name = f"e2e-{cli.name}-sasl"
    kafka_a.delete_if_exists(name)
    password = peer("FERRY_KAFKA_A_SCRAM_PASSWORD")
    cli.write(
        "main.tf",
        PROVIDER_HEADER
        + provider_block(
            peer("FERRY_KAFKA_A_SASL"),
            f'  sasl {{\n    mechanism = "SCRAM-SHA-512"\n    username = "{peer("FERRY_KAFKA_A_SCRAM_USER")}"\n  }}\n',
        )
        + f'resource "ferry_topic" "t" {{\n  name = "{name}"\n  partitions = 1\n}}\n',
    )
    cli.init()
    env = {"FERRY_KAFKA_SASL_PASSWORD": password, "TF_LOG": "TRACE"}
    apply = cli.apply(extra_env=env)
    assert kafka_a.topic(name) == (1, 1)
    assert password not in apply.output, "the SASL password must never be logged"
    wrong = cli.plan(extra_env={"FERRY_KAFKA_SASL_PASSWORD": "wrong"})
    assert wrong.returncode == 1 and "authentication failed" in wrong.flat.lower(), wrong.output
    cli.destroy(extra_env=env)
    assert kafka_a.topic(name) is None


def test_provider_logs_reach_tf_log(cli):
    cli.write(
        "main.tf",
        PROVIDER_HEADER + provider_block(peer("FERRY_KAFKA_A")) + 'data "ferry_topics" "all" {}\n',
    )
    cli.init()
    plan = cli.plan(extra_env={"TF_LOG": "DEBUG"})
    assert plan.returncode in (0, 2), plan.output
    lines = [l for l in plan.stderr.splitlines() if "configuring the ferry provider" in l]
    assert lines, "our INFO line should appear in the CLI's debug log"
    assert "[INFO]" in lines[0], lines[0]


def test_rename_replaces_the_topic_even_with_fewer_partitions(cli, kafka_a):
    old, new = f"e2e-{cli.name}-old", f"e2e-{cli.name}-new"
    for t in (old, new):
        kafka_a.delete_if_exists(t)

    def write(name, partitions):
        cli.write(
            "main.tf",
            PROVIDER_HEADER
            + provider_block(peer("FERRY_KAFKA_A"))
            + f'resource "ferry_topic" "t" {{\n  name = "{name}"\n  partitions = {partitions}\n}}\n',
        )

    write(old, 3)
    cli.init()
    cli.apply()
    write(new, 1)
    plan = cli.plan()
    assert plan.returncode == 2, plan.output
    assert "must be replaced" in plan.flat and "1 to add" in plan.flat and "1 to destroy" in plan.flat
    cli.apply()
    assert kafka_a.topic(old) is None
    assert kafka_a.topic(new) == (1, 1)
    cli.destroy()
    assert kafka_a.topic(new) is None
