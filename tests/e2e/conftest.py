"""Fixtures for driving the real Terraform and OpenTofu CLIs against real Kafka peers.

The peers come from tests/peers/start.sh (their addresses are in .peers/env); the provider
binary is the one `cargo build` left in target/debug. Each test gets its own CLI config
(TF_CLI_CONFIG_FILE) with a filesystem mirror holding that binary, so `init` installs it the
way a registry install would, lock file included.
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
)

REPO = Path(__file__).resolve().parents[2]
VERSION = "0.1.0"
CLIS = ["terraform", "tofu"]


def _peer_env():
    """FERRY_* settings: from the environment, else from .peers/env."""
    env = {k: v for k, v in os.environ.items() if k.startswith("FERRY_")}
    path = REPO / ".peers" / "env"
    if path.exists():
        for line in path.read_text().splitlines():
            if line.startswith("export FERRY_"):
                key, _, value = line[len("export "):].partition("=")
                env.setdefault(key, value.strip('"'))
    return env


PEERS = _peer_env()


def _k8s_env():
    """FERRY_K8S_*: from the environment, else from .peers/k8s/env (written by
    tests/peers/k8s/start.sh, removed by stop.sh)."""
    env = {k: v for k, v in os.environ.items() if k.startswith("FERRY_K8S_")}
    path = REPO / ".peers" / "k8s" / "env"
    if "FERRY_K8S_KUBECONFIG" not in env and path.exists():
        for line in path.read_text().splitlines():
            if line.startswith("export FERRY_K8S_"):
                key, _, value = line[len("export "):].partition("=")
                env.setdefault(key, value.strip('"'))
    return env


# The k8s peer (tests/peers/k8s/). Tests that need it carry the `k8s` marker. `make test` (and
# `make e2e-k8s`) start the peer and set FERRY_REQUIRE_K8S=1: a missing peer is then a failure.
# A pytest run by hand without the peer skips them.
K8S = _k8s_env()
K8S_REQUIRED = os.environ.get("FERRY_REQUIRE_K8S") == "1"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "k8s: needs the k8s peer (make k8s-peer); skipped when it is not running unless "
        "FERRY_REQUIRE_K8S=1 (make test), which makes that a failure",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if item.get_closest_marker("k8s") is None or K8S.get("FERRY_K8S_KUBECONFIG"):
        return
    why = "the k8s peer is not running (FERRY_K8S_KUBECONFIG unset, no .peers/k8s/env)"
    if K8S_REQUIRED:
        pytest.fail(f"{why}, and FERRY_REQUIRE_K8S=1 says it must be (make test starts it)", pytrace=False)
    pytest.skip(f"{why}: start it with `make k8s-peer`, stop it with `make stop-k8s-peer`")


def peer(name):
    value = PEERS.get(name)
    if not value:
        pytest.fail(f"{name} is not set: start the peers with tests/peers/start.sh (make peers)")
    return value


class Cli:
    """One CLI (terraform or tofu) in one working directory."""

    def __init__(self, name, binary, workdir, env):
        self.name = name
        self.binary = binary
        self.workdir = Path(workdir)
        self.env = env

    def run(self, *args, expect=0, timeout=300, extra_env=None):
        env = dict(self.env, **(extra_env or {}))
        started = time.monotonic()
        proc = subprocess.run(
            [self.binary, *args],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        proc.elapsed = time.monotonic() - started
        proc.output = proc.stdout + proc.stderr
        # The CLIs wrap diagnostics to the terminal width; `flat` undoes that for phrase checks.
        proc.flat = " ".join(proc.output.split())
        if expect is not None and proc.returncode != expect:
            raise AssertionError(
                f"{self.name} {' '.join(args)} exited {proc.returncode}, expected {expect}\n"
                f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr[-6000:]}"
            )
        return proc

    def init(self):
        return self.run("init", "-no-color", "-input=false")

    def apply(self, *args, **kw):
        return self.run("apply", "-auto-approve", "-no-color", "-input=false", *args, **kw)

    def plan(self, *args, **kw):
        """`plan -detailed-exitcode`: 0 no changes, 2 changes, 1 error."""
        kw.setdefault("expect", None)
        return self.run("plan", "-detailed-exitcode", "-no-color", "-input=false", *args, **kw)

    def destroy(self, *args, **kw):
        return self.run("destroy", "-auto-approve", "-no-color", "-input=false", *args, **kw)

    def write(self, filename, text):
        (self.workdir / filename).write_text(text)

    def tfvars(self, **values):
        self.write("terraform.tfvars.json", json.dumps(values, indent=2))


@pytest.fixture(scope="session")
def provider_binary():
    path = Path(os.environ.get("FERRY_PROVIDER_BIN", REPO / "target" / "debug" / "terraform-provider-ferry"))
    if not path.exists():
        pytest.fail(f"{path} does not exist: build it first (cargo build -p terraform-provider-ferry)")
    return path


@pytest.fixture(scope="session")
def cli_config(tmp_path_factory, provider_binary):
    """A CLI config whose only install source is a filesystem mirror of our provider.

    The same binary is mirrored under both default registry hosts: `ferry/ferry` means
    registry.terraform.io/ferry/ferry to Terraform and registry.opentofu.org/ferry/ferry to
    OpenTofu."""
    root = tmp_path_factory.mktemp("cli")
    mirror = root / "mirror"
    for host in ["registry.terraform.io", "registry.opentofu.org"]:
        target = mirror / host / "ferry" / "ferry" / VERSION / "linux_amd64"
        target.mkdir(parents=True)
        shutil.copy2(provider_binary, target / f"terraform-provider-ferry_v{VERSION}")
    config = root / "cli.tfrc"
    config.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n  }}\n}}\n')
    return config


@pytest.fixture(params=CLIS)
def cli(request, tmp_path, cli_config):
    binary = PEERS.get("FERRY_TERRAFORM" if request.param == "terraform" else "FERRY_TOFU")
    if not binary or not Path(binary).exists():
        pytest.fail(f"{request.param} is not installed: run tests/peers/install.sh")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TF_") and k not in ("FERRY_KAFKA_BOOTSTRAP_SERVERS",)
    }
    env.update(
        TF_CLI_CONFIG_FILE=str(cli_config),
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",
        TF_DATA_DIR=str(tmp_path / ".tfdata"),
    )
    return Cli(request.param, binary, tmp_path, env)


class Kafka:
    """Reads and changes a cluster with confluent-kafka, independently of the provider."""

    def __init__(self, bootstrap):
        self.admin = AdminClient({"bootstrap.servers": bootstrap})

    def topic(self, name):
        """(partitions, replication_factor) or None when the topic does not exist."""
        md = self.admin.list_topics(topic=name, timeout=15)
        t = md.topics.get(name)
        if t is None or t.error is not None:
            return None
        partitions = list(t.partitions.values())
        return len(partitions), len(partitions[0].replicas)

    def overrides(self, name):
        """Configs set on the topic itself."""
        res = ConfigResource(ConfigResource.Type.TOPIC, name)
        entries = self.admin.describe_configs([res])[res].result(timeout=15)
        return {
            k: e.value
            for k, e in entries.items()
            if e.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
        }

    def create(self, name, partitions, config=None):
        fut = self.admin.create_topics([NewTopic(name, partitions, 1, config=config or {})])[name]
        fut.result(timeout=15)
        self.wait(lambda: self.topic(name) is not None, f"topic {name} to appear")

    def delete_if_exists(self, name):
        try:
            self.admin.delete_topics([name])[name].result(timeout=15)
        except KafkaException:
            return
        self.wait(lambda: self.topic(name) is None, f"topic {name} to go")

    def add_partitions(self, name, total):
        self.admin.create_partitions([NewPartitions(name, total)])[name].result(timeout=15)

    def set_config(self, name, key, value):
        res = ConfigResource(
            ConfigResource.Type.TOPIC,
            name,
            incremental_configs=[ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)],
        )
        self.admin.incremental_alter_configs([res])[res].result(timeout=15)
        # The controller answers once the change is committed; the broker that answers the
        # next describe applies it a moment later. Out-of-band changes must be visible before
        # a test asks the provider to notice them.
        self.wait(lambda: self.overrides(name).get(key) == value, f"{key}={value} on {name}")

    @staticmethod
    def wait(predicate, what, seconds=30):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="session")
def kafka_a():
    return Kafka(peer("FERRY_KAFKA_A"))


@pytest.fixture(scope="session")
def kafka_c():
    return Kafka(peer("FERRY_KAFKA_C"))
