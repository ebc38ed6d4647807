"""ferry_scram_user end to end through both CLIs, on peer s over SASL_SSL with SCRAM-SHA-512:
create, log in with the new credential, no-op plan, rotation (password and password_version),
a credential deleted out of band (drift), import (the password is written once on the next
apply), destroy. Logins and the credentials Kafka keeps are checked with independent clients."""

import os
import time

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    ScramMechanism,
    UserScramCredentialDeletion,
)

from conftest import peer

CONFIG = """
terraform {
  required_providers {
    ferry = { source = "ferry/ferry" }
  }
}

variable "ca_file" { type = string }
variable "user" { type = string }
variable "password" {
  type      = string
  sensitive = true
}
variable "password_version" {
  type    = string
  default = null
}

provider "ferry" {
  bootstrap_servers = ["%s"]
  timeout           = "15s"
  tls {
    ca_cert = file(var.ca_file)
  }
  sasl {
    mechanism = "SCRAM-SHA-512"
    username  = "%s"
  }
}

resource "ferry_scram_user" "app" {
  name             = var.user
  password         = var.password
  password_version = var.password_version
  iterations       = 8192
}
"""


def ca_file():
    return os.path.join(peer("FERRY_KAFKA_S_TLS_DIR"), "ca.pem")


def credentials(user):
    """{mechanism name: iterations} that s keeps for the user (internal listener, super user)."""
    admin = AdminClient({"bootstrap.servers": peer("FERRY_KAFKA_S_PLAIN")})
    futures = admin.describe_user_scram_credentials([user])
    try:
        desc = futures[user].result(timeout=15)
    except KafkaException as e:
        if "RESOURCE_NOT_FOUND" in str(e) or "not found" in str(e).lower():
            return {}
        raise
    return {info.mechanism.name: info.iterations for info in desc.scram_credential_infos}


def delete_out_of_band(user):
    admin = AdminClient({"bootstrap.servers": peer("FERRY_KAFKA_S_PLAIN")})
    futures = admin.alter_user_scram_credentials(
        [UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_512)]
    )
    for f in list(futures.values()):
        f.result(timeout=15)


def logs_in(user, password, seconds=8):
    """Whether a SASL_SSL client can authenticate as user/password (an auth error ends it early)."""
    refused = []
    admin = AdminClient({
        "bootstrap.servers": peer("FERRY_KAFKA_S_SASL_SSL"),
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": ca_file(),
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": user,
        "sasl.password": password,
        "error_cb": lambda e: refused.append(e),
    })
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=1)
            return True
        except KafkaException:
            if any("uthentication" in str(e) for e in refused):
                return False
    return False


def wait_for(predicate, what, seconds=15):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.3)


def test_scram_user_lifecycle(cli, tmp_path):
    user = f"e2e-scram-{cli.name}"
    if credentials(user):
        delete_out_of_band(user)
    env = {"FERRY_KAFKA_SASL_PASSWORD": peer("FERRY_KAFKA_S_PASSWORD")}
    cli.write("main.tf", CONFIG % (peer("FERRY_KAFKA_S_SASL_SSL"), peer("FERRY_KAFKA_S_USER")))
    cli.tfvars(ca_file=ca_file(), user=user, password="first-Secret-1")
    cli.init()

    apply = cli.apply(extra_env=env)
    assert "1 added" in apply.output
    assert "first-Secret-1" not in apply.output
    assert credentials(user) == {"SCRAM_SHA_512": 8192}
    wait_for(lambda: logs_in(user, "first-Secret-1"), "the new user to log in")
    assert not logs_in(user, "wrong-password")
    assert cli.plan(extra_env=env).returncode == 0, "a second plan must show no changes"

    # Rotation: a new password is written in place.
    cli.tfvars(ca_file=ca_file(), user=user, password="second-Secret-2")
    apply = cli.apply(extra_env=env)
    assert "1 changed" in apply.output and "second-Secret-2" not in apply.output
    wait_for(lambda: logs_in(user, "second-Secret-2"), "the rotated password to work")
    assert not logs_in(user, "first-Secret-1")

    # Deleted out of band: drift, planned for re-creation, then restored.
    delete_out_of_band(user)
    wait_for(lambda: credentials(user) == {}, "the out-of-band deletion")
    plan = cli.plan(extra_env=env)
    assert plan.returncode == 2 and "will be created" in plan.output, plan.output
    cli.apply(extra_env=env)
    assert credentials(user) == {"SCRAM_SHA_512": 8192}
    wait_for(lambda: logs_in(user, "second-Secret-2"), "the re-created credential")

    # Import into a fresh state: the password is unknown to Kafka, so the next apply writes the
    # configured one once, in place.
    other = tmp_path / "import"
    other.mkdir()
    imported = type(cli)(cli.name, cli.binary, other, dict(cli.env, TF_DATA_DIR=str(other / ".tfdata")))
    imported.write("main.tf", CONFIG % (peer("FERRY_KAFKA_S_SASL_SSL"), peer("FERRY_KAFKA_S_USER")))
    imported.tfvars(ca_file=ca_file(), user=user, password="third-Secret-3")
    imported.init()
    imp = imported.run("import", "-no-color", "-input=false", "ferry_scram_user.app", f"SCRAM-SHA-512|{user}", extra_env=env)
    assert "Import successful" in imp.output, imp.output
    plan = imported.plan(extra_env=env)
    assert plan.returncode == 2 and "will be updated in-place" in plan.output, plan.output
    assert "must be replaced" not in plan.output
    imported.apply(extra_env=env)
    wait_for(lambda: logs_in(user, "third-Secret-3"), "the password written after import")
    assert imported.plan(extra_env=env).returncode == 0
    bad = imported.run("import", "-no-color", "-input=false", "ferry_scram_user.app", "PLAIN|x", expect=1, extra_env=env)
    assert "Invalid import id" in bad.flat, bad.flat

    # password_version alone writes the password again (here: repairs the one changed above).
    cli.tfvars(ca_file=ca_file(), user=user, password="second-Secret-2", password_version="2")
    apply = cli.apply(extra_env=env)
    assert "1 changed" in apply.output
    wait_for(lambda: logs_in(user, "second-Secret-2"), "the password rewritten by password_version")

    cli.destroy(extra_env=env)
    wait_for(lambda: credentials(user) == {}, "the credential to be deleted")
    # The imported state points at the same credential; destroying it too finds nothing left.
    imported.destroy(extra_env=env)
