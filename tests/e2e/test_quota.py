"""ferry_quota end to end through both CLIs, on peer A: create (a user with the default client
id, a client id, the default IP address), change a value and add a key, remove a key, quotas
changed and removed out of band (drift), refused keys and values, import, destroy. Every step
is checked with Kafka's own kafka-configs tool (ConfigCommand from the peer's jars),
independently of the provider."""

import subprocess

import pytest

from conftest import peer

CONFIG = """
terraform {
  required_providers {
    ferry = { source = "ferry/ferry" }
  }
}

variable "user" { type = string }
variable "client" { type = string }
variable "user_quotas" { type = map(string) }

provider "ferry" {
  bootstrap_servers = ["%s"]
  timeout           = "15s"
}

resource "ferry_quota" "user" {
  user              = var.user
  default_client_id = true
  config            = var.user_quotas
}

resource "ferry_quota" "client" {
  client_id = var.client
  config = {
    consumer_byte_rate = 2097152
  }
}

# The default IP entity, at Kafka's own default rate: nothing on the shared peer is limited.
resource "ferry_quota" "any_address" {
  default_ip = true
  config = {
    connection_creation_rate = 2147483647
  }
}
"""


def kafka_configs(*args):
    """Runs kafka-configs (ConfigCommand) against peer A; its output without log lines."""
    proc = subprocess.run(
        [
            peer("FERRY_JAVA"), "-cp", peer("FERRY_KAFKA_LIBS") + "/*",
            "kafka.admin.ConfigCommand", "--bootstrap-server", peer("FERRY_KAFKA_A"), *args,
        ],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    lines = [l for l in (proc.stdout + proc.stderr).splitlines() if "] INFO " not in l]
    assert proc.returncode == 0, "\n".join(lines)
    return lines


def user_entity(user):
    return ["--entity-type", "users", "--entity-name", user, "--entity-type", "clients",
            "--entity-default"]


def client_entity(client):
    return ["--entity-type", "clients", "--entity-name", client]


def quotas(entity):
    """{key: value} Kafka keeps for exactly this entity."""
    for line in kafka_configs("--describe", *entity):
        if line.startswith("Quota configs for") and " are " in line:
            values = line.rsplit(" are ", 1)[1]
            return {k: float(v) for k, v in (kv.split("=", 1) for kv in values.split(", "))}
    return {}


def alter(entity, add=None, delete=None):
    args = ["--alter", *entity]
    if add:
        args += ["--add-config", ",".join(f"{k}={v}" for k, v in add.items())]
    if delete:
        args += ["--delete-config", ",".join(delete)]
    kafka_configs(*args)


DEFAULT_IP = ["--entity-type", "ips", "--entity-default"]
UNLIMITED = {"connection_creation_rate": 2147483647.0}


def clear(entity):
    keys = quotas(entity)
    if keys:
        alter(entity, delete=list(keys))


def test_quota_lifecycle(cli, tmp_path):
    user, client = f"e2e-quota-{cli.name}", f"e2e-quota-app-{cli.name}"
    users, clients = user_entity(user), client_entity(client)
    clear(users)
    clear(clients)
    clear(DEFAULT_IP)
    main = CONFIG % peer("FERRY_KAFKA_A")
    cli.write("main.tf", main)

    def configure(**user_quotas):
        cli.tfvars(user=user, client=client, user_quotas=user_quotas)

    configure(producer_byte_rate="1048576", request_percentage="12.5")
    cli.init()
    apply = cli.apply()
    assert "3 added" in apply.output, apply.output
    # Written values are visible when apply returns.
    assert quotas(users) == {"producer_byte_rate": 1048576.0, "request_percentage": 12.5}
    assert quotas(clients) == {"consumer_byte_rate": 2097152.0}
    assert quotas(DEFAULT_IP) == UNLIMITED
    # The user alone is another entity: untouched.
    assert quotas(["--entity-type", "users", "--entity-name", user]) == {}
    assert cli.plan().returncode == 0, "a second plan must show no changes"

    # Change a value and add a key, in place.
    configure(producer_byte_rate="2000000", request_percentage="12.5", controller_mutation_rate="5")
    apply = cli.apply()
    assert "1 changed" in apply.output and "0 destroyed" in apply.output, apply.output
    assert quotas(users) == {
        "producer_byte_rate": 2000000.0, "request_percentage": 12.5, "controller_mutation_rate": 5.0,
    }

    # Removing a key removes that quota and leaves the others.
    configure(producer_byte_rate="2000000", controller_mutation_rate="5")
    apply = cli.apply()
    assert "1 changed" in apply.output, apply.output
    assert quotas(users) == {"producer_byte_rate": 2000000.0, "controller_mutation_rate": 5.0}
    assert cli.plan().returncode == 0

    # Changed and added out of band: drift, planned back in place.
    alter(users, add={"producer_byte_rate": 999, "consumer_byte_rate": 4096})
    plan = cli.plan()
    assert plan.returncode == 2, plan.output
    assert "consumer_byte_rate" in plan.output and "999" in plan.output, plan.output
    assert "1 to change" in plan.output, plan.output
    cli.apply()
    assert quotas(users) == {"producer_byte_rate": 2000000.0, "controller_mutation_rate": 5.0}

    # Every quota removed out of band: planned for re-creation.
    alter(clients, delete=["consumer_byte_rate"])
    plan = cli.plan()
    assert plan.returncode == 2 and "will be created" in plan.output, plan.output
    cli.apply()
    assert quotas(clients) == {"consumer_byte_rate": 2097152.0}

    # Refused at validate, at the attribute, before anything is sent.
    configure(producer_bytes_rate="10")
    plan = cli.plan()
    assert plan.returncode == 1 and "is not a client quota key" in plan.flat, plan.output
    configure(producer_byte_rate="1.5", controller_mutation_rate="5")
    plan = cli.plan()
    assert plan.returncode == 1 and "must be a whole number" in plan.flat, plan.output
    assert quotas(users) == {"producer_byte_rate": 2000000.0, "controller_mutation_rate": 5.0}
    configure(producer_byte_rate="2000000", controller_mutation_rate="5")

    # Import into a fresh state: nothing to change.
    other = tmp_path / "import"
    other.mkdir()
    imported = type(cli)(cli.name, cli.binary, other, dict(cli.env, TF_DATA_DIR=str(other / ".tfdata")))
    imported.write("main.tf", main)
    imported.tfvars(user=user, client=client,
                    user_quotas={"producer_byte_rate": "2000000", "controller_mutation_rate": "5"})
    imported.init()
    imported.run("import", "-no-color", "-input=false", "ferry_quota.user",
                 f"user={user}|default_client_id")
    imported.run("import", "-no-color", "-input=false", "ferry_quota.client", f"client_id={client}")
    imported.run("import", "-no-color", "-input=false", "ferry_quota.any_address", "default_ip")
    plan = imported.plan()
    assert plan.returncode == 0, plan.output
    bad = imported.run("import", "-no-color", "-input=false", "ferry_quota.user", "alice", expect=1)
    assert "Invalid import id" in bad.flat, bad.output

    # Destroy removes every key of every entity.
    destroy = cli.destroy()
    assert "3 destroyed" in destroy.output, destroy.output
    assert quotas(users) == {}
    assert quotas(clients) == {}
    assert quotas(DEFAULT_IP) == {}
