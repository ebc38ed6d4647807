"""Whole-cluster import with ferry-import: 300 topics made out of band with odd names and
configs, imported through Terraform 1.0.3 (the generated `terraform import` script, one resource
per topic) and OpenTofu (the generated import blocks, one for_each resource); then `plan` shows no
changes and Kafka is exactly as before."""

import os
import re
import subprocess
import uuid
from pathlib import Path

from confluent_kafka.admin import ConfigResource, ConfigSource, NewTopic

from conftest import REPO, peer

COUNT = 300

CONFIGS = [
    {},
    {"retention.ms": "3600000"},
    {"cleanup.policy": "compact"},
    {"cleanup.policy": "compact,delete", "min.compaction.lag.ms": "1000"},
    {"max.message.bytes": "2000000", "segment.ms": "600000"},
    {"message.timestamp.type": "LogAppendTime"},
    {"retention.bytes": "-1", "min.insync.replicas": "1"},
]


def odd_names(p):
    """COUNT topic names containing p: dots, dashes, underscores, capitals, a leading digit, a
    leading dash, and names that collide once sanitised."""
    shapes = [
        "{p}.orders.v{i}",
        "{p}-dash-{i}",
        "{p}_under_{i}",
        "9{p}.lead.digit.{i}",
        "-{p}-lead-dash-{i}",
        "{p}.Mixed.Case.{i}",
        "{p}.a.b{i}",
        "t_9{p}_lead_digit_{i}",  # the identifier the leading-digit name sanitises to
        "{p}-a.b{i}",
        "{p}..dots..{i}",
    ]
    names = []
    i = 0
    while len(names) < COUNT:
        names.append(shapes[len(names) % len(shapes)].format(p=p, i=i))
        if len(names) % len(shapes) == 0:
            i += 1
    return names


def snapshot(admin, names):
    """{name: (partitions, replication_factor, overrides)} read independently of ferry."""
    md = admin.list_topics(timeout=30)
    out = {}
    for start in range(0, len(names), 100):
        chunk = names[start:start + 100]
        resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in chunk]
        for res, fut in admin.describe_configs(resources).items():
            entries = fut.result(timeout=30)
            t = md.topics[res.name]
            parts = list(t.partitions.values())
            out[res.name] = (
                len(parts),
                len(parts[0].replicas),
                {k: e.value for k, e in entries.items() if e.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value},
            )
    return out


def create_all(kafka, specs):
    futures = kafka.admin.create_topics(
        [NewTopic(n, partitions, 1, config=config) for n, (partitions, config) in specs.items()]
    )
    for fut in futures.values():
        fut.result(timeout=60)
    kafka.wait(lambda: set(specs) <= set(kafka.admin.list_topics(timeout=30).topics), "topics to appear", 60)


def delete_all(kafka, names):
    existing = set(kafka.admin.list_topics(timeout=30).topics)
    doomed = [n for n in names if n in existing]
    if doomed:
        for fut in kafka.admin.delete_topics(doomed).values():
            try:
                fut.result(timeout=60)
            except Exception:  # noqa: BLE001 - already gone is fine
                pass


def ferry_import(*args, env=None, expect=0):
    binary = Path(os.environ.get("FERRY_IMPORT_BIN", REPO / "target" / "debug" / "ferry-import"))
    assert binary.exists(), f"{binary} does not exist: cargo build -p ferry-import"
    proc = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, **(env or {})))
    assert proc.returncode == expect, f"ferry-import {args} exited {proc.returncode}\n{proc.stderr}"
    return proc


def test_cluster_import_then_plan_is_empty_and_kafka_unchanged(cli, kafka_a):
    a = peer("FERRY_KAFKA_A")
    p = f"ci{cli.name[:2]}{uuid.uuid4().hex[:6]}"
    names = odd_names(p)
    excluded, internal = f"{p}-skip-me", f"__{p}-internal"
    specs = {n: (1 + i % 4, CONFIGS[i % len(CONFIGS)]) for i, n in enumerate(names)}
    specs[excluded] = (1, {})
    specs[internal] = (1, {})
    assert len(set(names)) == COUNT
    try:
        create_all(kafka_a, specs)
        before = snapshot(kafka_a.admin, list(specs))
        assert before[f"{p}.orders.v0"][2] == {}
        assert before[f"{p}-dash-0"][2] == {"retention.ms": "3600000"}

        layout = ["--for-each", "all_topics"] if cli.name == "tofu" else ["--no-import-blocks"]
        run = ferry_import("--bootstrap-servers", a, "--include", p.replace(".", r"\."), "--exclude", "skip-me$",
                           "--out", str(cli.workdir), *layout)
        assert f"{COUNT} topics" in run.stderr, run.stderr
        tf = (cli.workdir / "ferry_topics.tf").read_text()
        assert excluded not in tf and internal not in tf, "--exclude and internal topics"
        assert ("ferry_imports.tf" in os.listdir(cli.workdir)) == (cli.name == "tofu")
        if cli.name == "terraform":
            assert f'resource "ferry_topic" "t_9{p}_lead_digit_0" {{\n  name               = "t_9{p}_lead_digit_0"' in tf, (
                "the topic named like the identifier keeps it"
            )
            assert f'resource "ferry_topic" "t_9{p}_lead_digit_0_' in tf, "the other one gets a hash suffix"
            assert f'resource "ferry_topic" "{p}_a_b0"' in tf
            assert tf.count("resource \"ferry_topic\"") == COUNT
        else:
            assert 'resource "ferry_topic" "all_topics"' in tf and "for_each" in tf
        # Nothing but overrides: broker defaults such as segment.bytes never appear.
        assert "segment.bytes" not in tf

        cli.write("main.tf", f"""
terraform {{
  required_providers {{
    ferry = {{ source = "ferry/ferry" }}
  }}
}}

provider "ferry" {{
  bootstrap_servers = ["{a}"]
}}
""")
        cli.init()
        if cli.name == "terraform":
            script = subprocess.run(["sh", str(cli.workdir / "ferry_import.sh")], cwd=cli.workdir,
                                    env=dict(cli.env, TERRAFORM=cli.binary), capture_output=True,
                                    text=True, timeout=3600)
            assert script.returncode == 0, script.stdout[-3000:] + script.stderr[-3000:]
            assert script.stdout.count("Import successful!") == COUNT
        else:
            imports = cli.plan()
            assert imports.returncode == 2, imports.output[-3000:]
            assert f"{COUNT} to import, 0 to add, 0 to change, 0 to destroy" in imports.output, imports.output[-3000:]
            cli.apply()

        log = cli.workdir / "provider-debug.log"
        plan = cli.plan(timeout=900, extra_env={"TF_LOG_PROVIDER": "DEBUG", "TF_LOG_PATH": str(log)})
        assert plan.returncode == 0, plan.output[-5000:]
        assert "No changes" in plan.output
        # The refresh reads one snapshot of the cluster, not each topic: a handful of admin
        # requests for 300 topics (per-topic reads would be about 900; other tests' topics on the
        # peer are in the snapshot too, 1,000 to a request).
        totals = [int(m) for m in re.findall(r'admin_requests_total["=:\s]+(\d+)', log.read_text())]
        assert totals and max(totals) <= 30, f"admin requests for a {COUNT}-topic plan: {totals[-5:]}"
        state = cli.run("state", "list").stdout.split()
        assert len(state) == COUNT, state[:5]

        assert snapshot(kafka_a.admin, list(specs)) == before, "Kafka must be unchanged"

        # Internal topics only when asked.
        more = cli.workdir / "internal"
        ferry_import("--bootstrap-servers", a, "--include", f"^__{p}", "--include-internal", "--out", str(more))
        assert internal in (more / "ferry_topics.tf").read_text()
        # Existing files are kept without --force.
        again = ferry_import("--bootstrap-servers", a, "--include", f"^__{p}", "--out", str(more), expect=1)
        assert "--force" in again.stderr
    finally:
        delete_all(kafka_a, list(specs))


def test_cluster_import_refuses_a_password_argument():
    run = ferry_import("--bootstrap-servers", "127.0.0.1:1", "--sasl-password", "hunter2", expect=2)
    assert "FERRY_KAFKA_SASL_PASSWORD" in run.stderr and "hunter2" not in run.stderr
