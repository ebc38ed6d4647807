"""ferry_acl and ferry_acls end to end through both CLIs, on peer s (StandardAuthorizer) over
SASL_SSL with SCRAM-SHA-512: for_each sets, drift, import, the data source, destroy. Every step is
checked with an independent admin client on s's internal listener (a super user)."""

import json
import os

import pytest
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from conftest import peer

HEADER = """
terraform {
  required_providers {
    ferry = { source = "ferry/ferry" }
  }
}

variable "ca_file" { type = string }
variable "acls" { type = map(any) }

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

resource "ferry_acl" "this" {
  for_each      = var.acls
  principal     = each.value.principal
  operation     = each.value.operation
  resource_type = each.value.resource_type
  resource_name = each.value.resource_name
  pattern_type  = each.value.pattern_type
}
"""

DATA = """
data "ferry_acls" "mine" {
  principal  = "%s"
  depends_on = [ferry_acl.this]
}

output "ids" {
  value = [for a in data.ferry_acls.mine.acls : a.id]
}
"""


class Acls:
    """An independent view of s's ACLs (internal PLAINTEXT listener, a super user)."""

    def __init__(self):
        self.admin = AdminClient({"bootstrap.servers": peer("FERRY_KAFKA_S_PLAIN")})

    def of(self, principal):
        f = AclBindingFilter(
            ResourceType.ANY, None, ResourcePatternType.ANY, principal, None,
            AclOperation.ANY, AclPermissionType.ANY,
        )
        found = self.admin.describe_acls(f).result(timeout=15)
        return sorted(
            (b.restype.name, b.name, b.resource_pattern_type.name, b.operation.name, b.permission_type.name)
            for b in found
        )

    @staticmethod
    def _wait(futures):
        # Keep the dict alive while waiting: its futures are completed through it.
        for f in list(futures.values()):
            f.result(timeout=15)

    def delete(self, binding):
        self._wait(self.admin.delete_acls([binding]))

    def create(self, binding):
        self._wait(self.admin.create_acls([binding]))

    def clear(self, principal):
        f = AclBindingFilter(
            ResourceType.ANY, None, ResourcePatternType.ANY, principal, None,
            AclOperation.ANY, AclPermissionType.ANY,
        )
        self._wait(self.admin.delete_acls([f]))


def wait_for(predicate, what, seconds=15):
    import time

    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def acl(principal, operation, rtype, name, pattern="LITERAL"):
    return dict(principal=principal, operation=operation, resource_type=rtype, resource_name=name, pattern_type=pattern)


def test_acl_lifecycle_over_sasl_ssl(cli):
    principal = f"User:e2e-{cli.name}-alice"
    other = f"User:e2e-{cli.name}-bob"
    prefix = f"e2e-{cli.name}-"
    acls = Acls()
    acls.clear(principal)
    acls.clear(other)
    env = {"FERRY_KAFKA_SASL_PASSWORD": peer("FERRY_KAFKA_S_PASSWORD")}
    ca = os.path.join(peer("FERRY_KAFKA_S_TLS_DIR"), "ca.pem")
    cli.write("main.tf", HEADER % (peer("FERRY_KAFKA_S_SASL_SSL"), peer("FERRY_KAFKA_S_USER")))
    two = {
        "read": acl(principal, "READ", "TOPIC", prefix + "orders"),
        "group": acl(principal, "READ", "GROUP", prefix, "PREFIXED"),
    }
    cli.tfvars(ca_file=ca, acls=two)
    cli.init()

    apply = cli.apply(extra_env=env)
    assert "Resources: 2 added" in apply.output
    assert acls.of(principal) == [
        ("GROUP", prefix, "PREFIXED", "READ", "ALLOW"),
        ("TOPIC", prefix + "orders", "LITERAL", "READ", "ALLOW"),
    ]
    assert cli.plan(extra_env=env).returncode == 0, "a second plan must show no changes"

    # One more ACL in the for_each set: one to add, nothing else touched.
    three = dict(two, write=acl(principal, "WRITE", "TOPIC", prefix + "orders"))
    cli.tfvars(ca_file=ca, acls=three)
    plan = cli.plan(extra_env=env)
    assert plan.returncode == 2
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in plan.output, plan.output
    cli.write("data.tf", DATA % principal)
    apply = cli.apply(extra_env=env)
    assert "Resources: 1 added, 0 changed, 0 destroyed" in apply.output
    ids = json.loads(cli.run("output", "-json", "ids").stdout)
    # Sorted by resource type, resource name, pattern type, principal, host, operation.
    assert ids == [
        f"{principal}|*|READ|ALLOW|TOPIC|LITERAL|{prefix}orders",
        f"{principal}|*|WRITE|ALLOW|TOPIC|LITERAL|{prefix}orders",
        f"{principal}|*|READ|ALLOW|GROUP|PREFIXED|{prefix}",
    ], ids
    assert cli.plan(extra_env=env).returncode == 0

    # Deleted out of band: drift, planned back and restored.
    acls.delete(
        AclBindingFilter(
            ResourceType.TOPIC, prefix + "orders", ResourcePatternType.LITERAL, principal, "*",
            AclOperation.WRITE, AclPermissionType.ALLOW,
        )
    )
    wait_for(lambda: len(acls.of(principal)) == 2, "the out-of-band delete")
    plan = cli.plan(extra_env=env)
    assert plan.returncode == 2
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in plan.output, plan.output
    assert 'ferry_acl.this["write"] will be created' in plan.output
    cli.apply(extra_env=env)
    assert ("TOPIC", prefix + "orders", "LITERAL", "WRITE", "ALLOW") in acls.of(principal)

    # An ACL created elsewhere, imported by its documented id: no changes afterwards.
    acls.create(
        AclBinding(
            ResourceType.TOPIC, prefix + "audit", ResourcePatternType.LITERAL, other, "*",
            AclOperation.DESCRIBE, AclPermissionType.DENY,
        )
    )
    cli.write(
        "imported.tf",
        'resource "ferry_acl" "audit" {\n'
        f'  principal     = "{other}"\n'
        '  operation     = "DESCRIBE"\n'
        '  permission    = "DENY"\n'
        '  resource_type = "TOPIC"\n'
        f'  resource_name = "{prefix}audit"\n'
        "}\n",
    )
    import_id = f"{other}|*|DESCRIBE|DENY|TOPIC|LITERAL|{prefix}audit"
    cli.run("import", "-no-color", "-input=false", "ferry_acl.audit", import_id, extra_env=env)
    assert cli.plan(extra_env=env).returncode == 0, "an imported ACL plans no changes"
    bad = cli.run("import", "-no-color", "-input=false", "ferry_acl.audit", "User:x|*|READ", expect=1, extra_env=env)
    assert "Invalid import id" in bad.flat and "7 fields" in bad.flat

    cli.destroy(extra_env=env)
    assert acls.of(principal) == [] and acls.of(other) == [], "destroy removes every ACL it manages"


def test_acl_without_an_authorizer_says_so(cli):
    """Cluster A has no authorizer: the error says that, not a generic failure."""
    cli.write(
        "main.tf",
        HEADER.split("variable")[0]
        + f'provider "ferry" {{\n  bootstrap_servers = ["{peer("FERRY_KAFKA_A")}"]\n  timeout = "15s"\n}}\n'
        + 'resource "ferry_acl" "x" {\n  principal = "User:nobody"\n  operation = "READ"\n'
        + '  resource_type = "TOPIC"\n  resource_name = "x"\n}\n',
    )
    cli.init()
    out = cli.apply(expect=1)
    assert "Could not create ACL" in out.flat
    assert "no authorizer" in out.flat


def test_acl_validation_names_the_attribute(cli):
    cli.write(
        "main.tf",
        HEADER.split("variable")[0]
        + 'provider "ferry" {\n  bootstrap_servers = ["127.0.0.1:1"]\n}\n'
        + 'resource "ferry_acl" "x" {\n  principal = "alice"\n  operation = "FLY"\n'
        + '  resource_type = "TOPIC"\n  resource_name = "x"\n}\n',
    )
    cli.init()
    out = cli.run("validate", "-no-color", expect=1)
    assert "Invalid principal" in out.flat and "Type:name" in out.flat
    assert "Invalid ACL operation" in out.flat
