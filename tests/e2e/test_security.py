"""Every kind of object against peer s's SASL_SSL listener (SCRAM-SHA-512, MSK's port-9096 shape)
through both CLIs, and secret hygiene (issue 10):

- ferry_topic with the ferry_topic and ferry_topics data sources, and ferry_quota, over SASL_SSL;
  each checked with an independent client on s's internal listener.
- ferry_mirror copying from peer A into s over SASL_SSL + SCRAM-SHA-512; the copy is read back
  over SASL_SSL with confluent-kafka and compared record by record.
- A canary password (a ferry_scram_user's, then the mirror's target SASL password, the user being
  granted what the mirror needs with ferry_acl) run at TF_LOG=TRACE: the canary is in no log line,
  no process argument list (sampled while the apply runs and the workers copy), no file but the
  runtime's 0600 credential files, and no non-sensitive state attribute.
(ferry_acl and ferry_scram_user have their own SASL_SSL lifecycles in test_acl.py and
test_scram_user.py; the bad-credential table is in test_tls_connection.py.)"""

import json
import os
import stat
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from conftest import peer
from mirror_util import MIRROR, commit_group, contents, create_topic, produce, read_partition
from test_mirror import sample_records, unique

HEADER = """
terraform {
  required_providers {
    ferry = { source = "ferry/ferry" }
  }
}
"""

# The provider's connection to s: the password comes from FERRY_KAFKA_SASL_PASSWORD.
PROVIDER = """
variable "ca_file" { type = string }

provider "ferry" {
  bootstrap_servers = ["%s"]
  timeout           = "30s"
  tls {
    ca_cert = file(var.ca_file)
  }
  sasl {
    mechanism = "SCRAM-SHA-512"
    username  = "%s"
  }
}
"""


def ca_file():
    return os.path.join(peer("FERRY_KAFKA_S_TLS_DIR"), "ca.pem")


def provider_block():
    return PROVIDER % (peer("FERRY_KAFKA_S_SASL_SSL"), peer("FERRY_KAFKA_S_USER"))


def admin_env():
    return {"FERRY_KAFKA_SASL_PASSWORD": peer("FERRY_KAFKA_S_PASSWORD")}


def internal_admin():
    """s's internal PLAINTEXT listener: ANONYMOUS is a super user there."""
    return AdminClient({"bootstrap.servers": peer("FERRY_KAFKA_S_PLAIN")})


def sasl_ssl_client_config(user=None, password=None):
    return {
        "bootstrap.servers": peer("FERRY_KAFKA_S_SASL_SSL"),
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": ca_file(),
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": user or peer("FERRY_KAFKA_S_USER"),
        "sasl.password": password or peer("FERRY_KAFKA_S_PASSWORD"),
    }


def wait_for(predicate, what, seconds=30):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.3)


# ---------------------------------------------------------------------------------------------
# ferry_topic, ferry_topic / ferry_topics data sources


TOPICS = """
variable "name" { type = string }
variable "partitions" { type = number }

resource "ferry_topic" "t" {
  name       = var.name
  partitions = var.partitions
  config     = { "retention.ms" = "3600000" }
}

data "ferry_topic" "t" {
  name       = ferry_topic.t.name
  depends_on = [ferry_topic.t]
}

data "ferry_topics" "mine" {
  name_regex = "${var.name}.*"
  depends_on = [ferry_topic.t]
}

output "read" {
  value = {
    partitions         = data.ferry_topic.t.partitions
    replication_factor = data.ferry_topic.t.replication_factor
    config             = data.ferry_topic.t.config
    names              = data.ferry_topics.mine.names
  }
}
"""


def topic_on_s(name):
    md = internal_admin().list_topics(topic=name, timeout=15)
    t = md.topics.get(name)
    if t is None or t.error is not None:
        return None
    return len(t.partitions)


def test_topic_and_topic_data_sources_over_sasl_ssl(cli):
    name = f"e2e-sec-topic-{cli.name}-{uuid.uuid4().hex[:6]}"
    cli.write("main.tf", HEADER + provider_block() + TOPICS)
    cli.tfvars(ca_file=ca_file(), name=name, partitions=2)
    cli.init()
    apply = cli.apply(extra_env=admin_env())
    assert "1 added" in apply.output, apply.output
    assert topic_on_s(name) == 2
    read = json.loads(cli.run("output", "-json", "read").stdout)
    assert read == {
        "partitions": 2,
        "replication_factor": 1,
        "config": {"retention.ms": "3600000"},
        "names": [name],
    }, read
    assert cli.plan(extra_env=admin_env()).returncode == 0

    # Partition growth in place, seen by the data source on the next refresh.
    cli.tfvars(ca_file=ca_file(), name=name, partitions=3)
    apply = cli.apply(extra_env=admin_env())
    assert "1 changed" in apply.output, apply.output
    wait_for(lambda: topic_on_s(name) == 3, "three partitions")
    cli.apply("-refresh-only", extra_env=admin_env())
    assert json.loads(cli.run("output", "-json", "read").stdout)["partitions"] == 3

    cli.destroy(extra_env=admin_env())
    wait_for(lambda: topic_on_s(name) is None, f"{name} to be deleted")


# ---------------------------------------------------------------------------------------------
# ferry_quota


QUOTA = """
variable "user" { type = string }
variable "rate" { type = number }

resource "ferry_quota" "u" {
  user   = var.user
  config = { producer_byte_rate = var.rate, consumer_byte_rate = 2097152 }
}
"""


def quotas_on_s(user):
    """{key: value} s keeps for exactly user=<user>, by Kafka's own kafka-configs tool."""
    proc = subprocess.run(
        [
            peer("FERRY_JAVA"), "-cp", peer("FERRY_KAFKA_LIBS") + "/*", "kafka.admin.ConfigCommand",
            "--bootstrap-server", peer("FERRY_KAFKA_S_PLAIN"),
            "--describe", "--entity-type", "users", "--entity-name", user,
        ],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    lines = [l for l in (proc.stdout + proc.stderr).splitlines() if "] INFO " not in l]
    assert proc.returncode == 0, "\n".join(lines)
    for line in lines:
        if line.startswith("Quota configs for") and " are " in line:
            values = line.rsplit(" are ", 1)[1]
            return {k: float(v) for k, v in (kv.split("=", 1) for kv in values.split(", "))}
    return {}


def test_quota_over_sasl_ssl(cli):
    user = f"e2e-sec-quota-{cli.name}"
    cli.write("main.tf", HEADER + provider_block() + QUOTA)
    cli.tfvars(ca_file=ca_file(), user=user, rate=1048576)
    cli.init()
    apply = cli.apply(extra_env=admin_env())
    assert "1 added" in apply.output, apply.output
    assert quotas_on_s(user) == {"producer_byte_rate": 1048576.0, "consumer_byte_rate": 2097152.0}
    assert cli.plan(extra_env=admin_env()).returncode == 0

    cli.tfvars(ca_file=ca_file(), user=user, rate=524288)
    apply = cli.apply(extra_env=admin_env())
    assert "1 changed" in apply.output, apply.output
    assert quotas_on_s(user) == {"producer_byte_rate": 524288.0, "consumer_byte_rate": 2097152.0}

    cli.destroy(extra_env=admin_env())
    assert quotas_on_s(user) == {}


# ---------------------------------------------------------------------------------------------
# ferry_mirror from A into s over SASL_SSL


MIRROR_CONFIG = """
variable "topics" { type = list(string) }
variable "source_servers" { type = list(string) }
variable "target_servers" { type = list(string) }
variable "target_user" { type = string }
variable "target_password" {
  type      = string
  sensitive = true
}
variable "target_ca_file" { type = string }
variable "binary" { type = string }
variable "state_dir" { type = string }
variable "mode" { type = string }

resource "ferry_mirror" "m" {
  source {
    bootstrap_servers = var.source_servers
  }
  target {
    bootstrap_servers = var.target_servers
    timeout           = "30s"
    tls {
      ca_cert = file(var.target_ca_file)
    }
    sasl {
      mechanism = "SCRAM-SHA-512"
      username  = var.target_user
      password  = var.target_password
    }
  }
  topics      = var.topics
  workers     = 1
  mode        = var.mode
  in_sync_lag = 0
  launcher {
    local {
      binary    = var.binary
      state_dir = var.state_dir
    }
  }
  timeouts {
    create = "10m"
  }
  %s
}

output "report" {
  value = {
    state          = ferry_mirror.m.state
    records_copied = ferry_mirror.m.records_copied
    verification   = ferry_mirror.m.verification
  }
}
"""


def read_partition_sasl_ssl(topic, partition, user=None, password=None):
    """All committed records of one partition of s, read over SASL_SSL: (offset, key, value, headers, ts)."""
    c = Consumer(dict(
        sasl_ssl_client_config(user, password),
        **{
            "group.id": f"e2e-sec-reader-{os.getpid()}-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        },
    ))
    c.assign([TopicPartition(topic, partition, 0)])
    out, idle = [], time.monotonic()
    try:
        while True:
            msgs = c.consume(5000, timeout=1.0)
            if not msgs and time.monotonic() - idle > 30:
                raise AssertionError(f"stuck reading {topic}[{partition}] over SASL_SSL")
            done = False
            for m in msgs:
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        done = True
                        continue
                    raise AssertionError(m.error())
                idle = time.monotonic()
                out.append((m.offset(), m.key(), m.value(), m.headers(), m.timestamp()[1]))
            if done:
                return out
    finally:
        c.close()


def mirror_vars(cli, topics, state_dir, user, password, mode="until_caught_up"):
    return dict(
        topics=topics,
        source_servers=[peer("FERRY_KAFKA_A")],
        target_servers=[peer("FERRY_KAFKA_S_SASL_SSL")],
        target_user=user,
        target_password=password,
        target_ca_file=ca_file(),
        binary=str(MIRROR),
        state_dir=str(state_dir),
        mode=mode,
    )


def worker_pids(state_dir):
    """Live ferry-mirror processes whose command line names a spec under state_dir."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
            st = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        if "ferry-mirror" in cmd and str(state_dir) in cmd and ") Z" not in st:
            pids.append(int(pid))
    return pids


def kill_workers(state_dir):
    for pid in worker_pids(state_dir):
        try:
            os.killpg(pid, 9)
        except OSError:
            pass


def test_mirror_into_sasl_ssl_target(cli, tmp_path):
    state_dir = tmp_path / "ferry-state"
    try:
        mirror_into_sasl_ssl(cli, state_dir)
    finally:
        kill_workers(state_dir)


def mirror_into_sasl_ssl(cli, state_dir):
    a = peer("FERRY_KAFKA_A")
    topic = unique(f"sec-mirror-{cli.name}")
    create_topic(a, topic, 2)
    produce(a, topic, sample_records(1500, 2))
    group = unique(f"sec-mirror-{cli.name}-app")
    commit_group(a, group, topic, {0: 100, 1: 700})
    cli.write("main.tf", HEADER + MIRROR_CONFIG % f'consumer_groups_regex = "{group}"')
    # The password goes in through the environment: no file in the working directory holds it.
    cli.tfvars(**{k: v for k, v in mirror_vars(cli, [topic], state_dir, peer("FERRY_KAFKA_S_USER"), "").items()
                  if k != "target_password"})
    env = {"TF_VAR_target_password": peer("FERRY_KAFKA_S_PASSWORD")}
    cli.init()
    apply = cli.apply(extra_env=env, timeout=600)
    assert "ferry_mirror.m: Creation complete" in apply.output, apply.output
    report = json.loads(cli.run("output", "-json", "report").stdout)
    assert report["state"] == "complete", report
    assert report["records_copied"] == 1500, report
    assert len(report["verification"]) == 2, report
    assert all(r["result"] == "ok" for r in report["verification"]), report
    for p in range(2):
        source = read_partition(a, topic, p)
        copied = read_partition_sasl_ssl(topic, p)
        assert len(copied) == len(source) > 0
        assert contents(copied) == contents(source)
    # The group's translated offsets, read over SASL_SSL, resume at the same records.
    c = Consumer(dict(sasl_ssl_client_config(), **{"group.id": group, "enable.auto.commit": False}))
    translated = {tp.partition: tp.offset for tp in c.committed([TopicPartition(topic, p) for p in range(2)], timeout=15)}
    c.close()
    for p, at in {0: 100, 1: 700}.items():
        src = [r for r in read_partition(a, topic, p) if r[0] >= at]
        dst = [r for r in read_partition_sasl_ssl(topic, p) if r[0] >= translated[p]]
        assert contents(dst) == contents(src) and src
    assert cli.plan(extra_env=env).returncode == 0, "a finished mirror plans no changes"
    cli.destroy(extra_env=env, timeout=600)
    assert worker_pids(state_dir) == []


# ---------------------------------------------------------------------------------------------
# Secrets: a canary password at TF_LOG=TRACE


CANARY = """
variable "user" { type = string }
variable "canary" {
  type      = string
  sensitive = true
}
variable "topics" { type = list(string) }
variable "source_servers" { type = list(string) }
variable "binary" { type = string }
variable "state_dir" { type = string }

resource "ferry_scram_user" "canary" {
  name       = var.user
  password   = var.canary
  iterations = 8192
}

# What the mirror's workers need on the target, for the canary user only.
resource "ferry_acl" "mirror" {
  for_each = {
    topics       = ["TOPIC", "*"]
    groups       = ["GROUP", "*"]
    transactions = ["TRANSACTIONAL_ID", "*"]
    cluster      = ["CLUSTER", "kafka-cluster"]
  }
  principal     = "User:${var.user}"
  operation     = "ALL"
  resource_type = each.value[0]
  resource_name = each.value[1]
}

resource "ferry_mirror" "m" {
  source {
    bootstrap_servers = var.source_servers
  }
  target {
    bootstrap_servers = [%s]
    timeout           = "30s"
    tls {
      ca_cert = file(var.ca_file)
    }
    sasl {
      mechanism = "SCRAM-SHA-512"
      username  = ferry_scram_user.canary.name
      password  = var.canary
    }
  }
  topics      = var.topics
  workers     = 2
  mode        = "continuous"
  in_sync_lag = 0
  launcher {
    local {
      binary    = var.binary
      state_dir = var.state_dir
    }
  }
  depends_on = [ferry_acl.mirror]
}

output "state" {
  value = ferry_mirror.m.state
}
"""


class ArgvSampler(threading.Thread):
    """Reads /proc/*/cmdline of every process until stopped: which ones held `needle`, and
    which provider and worker processes were seen at all (so the sampling saw something)."""

    def __init__(self, needle, state_dir):
        super().__init__(daemon=True)
        self.needle, self.state_dir = needle.encode(), str(state_dir)
        self.leaks, self.providers, self.workers, self.samples = [], set(), set(), 0
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    raw = open(f"/proc/{pid}/cmdline", "rb").read()
                except OSError:
                    continue
                if self.needle in raw:
                    self.leaks.append((pid, raw.replace(b"\0", b" ").decode(errors="replace")))
                if b"terraform-provider-ferry" in raw:
                    self.providers.add(pid)
                if b"ferry-mirror" in raw and self.state_dir.encode() in raw:
                    self.workers.add(pid)
            self.samples += 1
            time.sleep(0.1)

    def stop(self):
        self.stopping.set()
        self.join(timeout=30)


def credential_file(path, run_dirs):
    """The runtime's credential files: `<side>.<what>` in a run directory, mode 0600."""
    return path.parent in run_dirs and path.name.split(".", 1)[0] in ("source", "target") \
        and path.name != "spec.json"


def files_holding(root, needle):
    out = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            try:
                if needle.encode() in path.read_bytes():
                    out.append(path)
            except OSError:
                continue
    return out


def non_sensitive_values(values, block):
    """(path, value) of every attribute of `values` (one state instance) that `block` (its
    provider schema) does not mark sensitive, nested blocks included."""
    for name, value in (values or {}).items():
        attr = block.get("attributes", {}).get(name)
        if attr is not None:
            if not attr.get("sensitive"):
                yield name, value
            continue
        nested = block.get("block_types", {}).get(name)
        if nested is None:
            yield name, value
            continue
        items = value if isinstance(value, list) else ([value] if value else [])
        if isinstance(value, dict) and nested.get("nesting_mode") == "map":
            items = list(value.values())
        for item in items:
            for sub, v in non_sensitive_values(item, nested["block"]):
                yield f"{name}.{sub}", v


def test_canary_password_appears_only_in_credential_files(cli, tmp_path):
    state_dir = tmp_path / "ferry-state"
    try:
        canary_run(cli, tmp_path, state_dir)
    finally:
        kill_workers(state_dir)


def canary_run(cli, tmp_path, state_dir):
    canary = f"Canary-{uuid.uuid4().hex}"
    user = f"e2e-canary-{cli.name}-{uuid.uuid4().hex[:6]}"
    a = peer("FERRY_KAFKA_A")
    topic = unique(f"sec-canary-{cli.name}")
    create_topic(a, topic, 2)
    produce(a, topic, sample_records(4000, 2))
    log_path = tmp_path / "logs" / "terraform.log"
    log_path.parent.mkdir()
    cli.write("main.tf", HEADER + provider_block() + CANARY % f'"{peer("FERRY_KAFKA_S_SASL_SSL")}"')
    cli.tfvars(ca_file=ca_file(), user=user, topics=[topic], source_servers=[a],
               binary=str(MIRROR), state_dir=str(state_dir))
    # The canary goes in through the environment, as TF_VAR_canary: no file the test writes
    # holds it, so any file that does was written by Terraform, the provider or the workers.
    env = dict(admin_env(), TF_VAR_canary=canary, TF_LOG="TRACE", TF_LOG_PATH=str(log_path))
    cli.init()

    sampler = ArgvSampler(canary, state_dir)
    sampler.start()
    try:
        apply = cli.apply(extra_env=env, timeout=600)
        assert cli.run("output", "-raw", "state").stdout == "in_sync"
        # New records while the workers run: they log in with the canary, copy, and are sampled.
        produce(a, topic, sample_records(500, 2))
        wait_for(lambda: sum(len(read_partition_sasl_ssl(topic, p, user, canary)) for p in range(2)) == 4500,
                 "the new records on s", seconds=120)
        run_dirs = {p.parent for p in state_dir.glob("*/spec.json")}
        assert len(run_dirs) == 1, run_dirs
        run_dir = next(iter(run_dirs))
        during = files_holding(tmp_path, canary)
        plan = cli.plan(extra_env=env)
    finally:
        sampler.stop()
    # A continuous mirror's progress is drift, not a change.
    assert plan.returncode in (0, 2) and "will be" not in plan.output, plan.output
    assert sampler.samples > 10 and sampler.providers and len(sampler.workers) >= 2, (
        sampler.samples, sampler.providers, sampler.workers)
    assert sampler.leaks == [], f"the canary is on a command line: {sampler.leaks}"

    # Logs: the CLI's output and every line of the TRACE log file (the provider's own lines
    # included: TRACE shows them).
    for out in (apply, plan):
        assert canary not in out.output
    log = log_path.read_text(errors="replace")
    assert "terraform-provider-ferry" in log and len(log.splitlines()) > 1000, "TRACE log written"
    assert [l for l in log.splitlines() if canary in l] == []
    for log_file in run_dir.glob("*.log"):
        assert canary not in log_file.read_text(errors="replace"), log_file

    # Files: only the run's 0600 credential files (and the state file, checked below).
    state_file = cli.workdir / "terraform.tfstate"
    allowed = {state_file, cli.workdir / "terraform.tfstate.backup"}
    credentials = [p for p in during if credential_file(p, run_dirs)]
    assert credentials == [run_dir / "target.password"], during
    assert stat.S_IMODE(os.stat(run_dir / "target.password").st_mode) == 0o600
    assert [p for p in during if p not in credentials and p not in allowed] == []
    assert canary not in (run_dir / "spec.json").read_text()

    # State: the canary is there (Terraform keeps sensitive values), but in no attribute the
    # schema leaves non-sensitive; and no output holds it.
    state = json.loads(state_file.read_text())
    assert canary in state_file.read_text(), "the walk below must have something to miss"
    schema = json.loads(cli.run("providers", "schema", "-json").stdout)["provider_schemas"]
    (resources,) = [s["resource_schemas"] for s in schema.values()]
    walked = 0
    for res in state["resources"]:
        if res["mode"] != "managed":
            continue
        for inst in res["instances"]:
            for path, value in non_sensitive_values(inst["attributes"], resources[res["type"]]["block"]):
                walked += 1
                assert canary not in json.dumps(value), f"{res['type']}.{res['name']}: {path}"
    assert walked > 20
    assert canary not in json.dumps(state.get("outputs", {}))

    cli.destroy(extra_env=env, timeout=600)
    assert worker_pids(state_dir) == []
    log = log_path.read_text(errors="replace")
    assert [l for l in log.splitlines() if canary in l] == []
    leftover = [p for p in files_holding(tmp_path, canary) if p not in allowed]
    assert all(credential_file(p, run_dirs) for p in leftover), leftover


def test_credential_files_are_removed_on_destroy(cli, tmp_path):
    """The run's 0600 credential files stay while the resource exists (later applies and
    destroy start runtime commands with them) and go on destroy; spec and logs stay."""
    state_dir = tmp_path / "ferry-state"
    try:
        a = peer("FERRY_KAFKA_A")
        topic = unique(f"sec-files-{cli.name}")
        create_topic(a, topic, 1)
        produce(a, topic, sample_records(100, 1))
        cli.write("main.tf", HEADER + MIRROR_CONFIG % "")
        cli.tfvars(**{k: v for k, v in mirror_vars(cli, [topic], state_dir, peer("FERRY_KAFKA_S_USER"), "").items()
                      if k != "target_password"})
        env = {"TF_VAR_target_password": peer("FERRY_KAFKA_S_PASSWORD")}
        cli.init()
        cli.apply(extra_env=env, timeout=600)
        assert json.loads(cli.run("output", "-json", "report").stdout)["state"] == "complete"
        written = list(state_dir.glob("*/target.*"))
        assert written, "the run wrote its credential files"
        cli.destroy(extra_env=env, timeout=600)
        assert [p for p in written if p.exists()] == [], "credential files left after destroy"
    finally:
        kill_workers(state_dir)
