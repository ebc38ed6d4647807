"""ferry_mirror's copy_acls (issue 10) through both CLIs: ACL bindings of the copied topics and
translated groups copied as they are (ALL stays ALL, DENY and hosts kept) with principals mapped,
a prefixed binding that also covers an uncopied topic skipped with ferry's reason, bindings of
other topics left alone, the same result on a second apply, copied bindings kept after destroy;
and a target without an authorizer refusing with the broker's reason.

Every binding is read back with an independent admin client on s's internal listener.

GAP: peer s is the only cluster with an authorizer, so the copy that succeeds runs from s to s
(over SASL_SSL + SCRAM-SHA-512 on both sides, two connections) with topic_name_prefix, so the
target bindings are distinct from the source ones. A copy between two distinct authorizer-enabled
clusters is not exercised: that needs a second secured peer in tests/peers/start.sh. The refusal
test goes from s to peer B, whose broker has no authorizer and refuses every binding."""

import json
import os

from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from conftest import peer
from mirror_util import MIRROR, create_topic
from test_acl import Acls
from test_mirror import status_record, unique

HEADER = """
terraform {
  required_providers {
    ferry = { source = "ferry/ferry" }
  }
}

variable "topics" { type = list(string) }
variable "groups" { type = string }
variable "prefix" { type = string }
variable "s_servers" { type = list(string) }
variable "target_servers" { type = list(string) }
variable "user" { type = string }
# Not `sensitive` here: Terraform 1.0 crashes rendering an in-place update of nested blocks
# holding a marked value (the schema marks the password attribute sensitive anyway).
variable "password" { type = string }
variable "ca_file" { type = string }
variable "binary" { type = string }
variable "state_dir" { type = string }
variable "principal_map" { type = map(string) }
variable "verify" { type = bool }
"""

SOURCE = """
  source {
    bootstrap_servers = var.s_servers
    timeout           = "30s"
    tls {
      ca_cert = file(var.ca_file)
    }
    sasl {
      mechanism = "SCRAM-SHA-512"
      username  = var.user
      password  = var.password
    }
  }
"""

MIRROR_TO_S = HEADER + """
resource "ferry_mirror" "m" {
%s
  target {
    bootstrap_servers = var.target_servers
    timeout           = "30s"
    tls {
      ca_cert = file(var.ca_file)
    }
    sasl {
      mechanism = "SCRAM-SHA-512"
      username  = var.user
      password  = var.password
    }
  }
  topics                = var.topics
  topic_name_prefix     = var.prefix
  consumer_groups_regex = var.groups
  verify                = var.verify
  copy_acls             = true
  acl_principal_map     = var.principal_map
  launcher {
    local {
      binary    = var.binary
      state_dir = var.state_dir
    }
  }
}

output "acls" {
  value = {
    copied  = ferry_mirror.m.acls_copied
    refused = ferry_mirror.m.acls_refused
    run_id  = ferry_mirror.m.run_id
  }
}
""" % SOURCE

MIRROR_TO_B = HEADER + """
resource "ferry_mirror" "m" {
%s
  target {
    bootstrap_servers = var.target_servers
  }
  topics                = var.topics
  topic_name_prefix     = var.prefix
  consumer_groups_regex = var.groups
  verify                = var.verify
  copy_acls             = true
  launcher {
    local {
      binary    = var.binary
      state_dir = var.state_dir
    }
  }
}

output "acls" {
  value = {
    copied  = ferry_mirror.m.acls_copied
    refused = ferry_mirror.m.acls_refused
    run_id  = ferry_mirror.m.run_id
  }
}
""" % SOURCE


def ca_file():
    return os.path.join(peer("FERRY_KAFKA_S_TLS_DIR"), "ca.pem")


def binding(rtype, name, pattern, principal, op, perm=AclPermissionType.ALLOW, host="*"):
    return AclBinding(rtype, name, pattern, principal, host, op, perm)


def variables(topics, groups, prefix, target, state_dir, principal_map=None, verify=True):
    return dict(
        topics=topics,
        groups=groups,
        prefix=prefix,
        s_servers=[peer("FERRY_KAFKA_S_SASL_SSL")],
        target_servers=[target],
        user=peer("FERRY_KAFKA_S_USER"),
        ca_file=ca_file(),
        binary=str(MIRROR),
        state_dir=str(state_dir),
        principal_map=principal_map or {},
        verify=verify,
    )


def password_env():
    return {"TF_VAR_password": peer("FERRY_KAFKA_S_PASSWORD")}


def test_copy_acls_from_s_to_s_with_mapping_skips_and_idempotence(cli, tmp_path):
    s = peer("FERRY_KAFKA_S_PLAIN")
    u = unique(f"acl-{cli.name}")
    orders, audit, group = f"{u}-orders", f"{u}-audit", f"{u}-app"
    prefix = "dr."
    old, new, other = f"User:{u}-old", f"User:{u}-new", f"User:{u}-x"
    create_topic(s, orders, 1)
    create_topic(s, audit, 1)
    acls = Acls()
    source_bindings = [
        binding(ResourceType.TOPIC, orders, ResourcePatternType.LITERAL, old, AclOperation.ALL),
        binding(ResourceType.TOPIC, orders, ResourcePatternType.LITERAL, other, AclOperation.READ,
                AclPermissionType.DENY, host="10.1.2.3"),
        binding(ResourceType.TOPIC, f"{u}-ord", ResourcePatternType.PREFIXED, other, AclOperation.WRITE),
        # Covers audit too: skipped with ferry's reason.
        binding(ResourceType.TOPIC, f"{u}-", ResourcePatternType.PREFIXED, other, AclOperation.READ),
        # Not the run's: left alone, not reported.
        binding(ResourceType.TOPIC, audit, ResourcePatternType.LITERAL, old, AclOperation.ALL),
        binding(ResourceType.GROUP, group, ResourcePatternType.LITERAL, old, AclOperation.READ),
    ]
    state_dir = tmp_path / "ferry-state"
    try:
        for b in source_bindings:
            acls.create(b)
        cli.write("main.tf", MIRROR_TO_S)
        cli.tfvars(**variables([orders], group, prefix, peer("FERRY_KAFKA_S_SASL_SSL"), state_dir,
                               principal_map={old: new}))
        cli.init()
        apply = cli.apply(extra_env=password_env(), timeout=600)
        assert "ferry_mirror.m: Creation complete" in apply.output, apply.output
        first = json.loads(cli.run("output", "-json", "acls").stdout)

        # On the target (s, other names): exactly the copies, ALL still ALL, DENY and host kept.
        want_new = [
            ("GROUP", group, "LITERAL", "READ", "ALLOW"),
            ("TOPIC", f"{prefix}{orders}", "LITERAL", "ALL", "ALLOW"),
        ]
        want_other = [
            ("TOPIC", f"{prefix}{u}-ord", "PREFIXED", "WRITE", "ALLOW"),
            ("TOPIC", f"{prefix}{orders}", "LITERAL", "READ", "DENY"),
        ]
        assert acls.of(new) == want_new
        on_other = acls.of(other)
        assert [b for b in on_other if b[1].startswith(prefix)] == want_other, on_other
        # The old principal gained nothing on the target names.
        assert not [b for b in acls.of(old) if b[1].startswith(prefix)]
        hosts = {b.host for b in acls.admin.describe_acls(_filter(other)).result(timeout=15)
                 if b.name == f"{prefix}{orders}"}
        assert hosts == {"10.1.2.3"}

        copied, refused = sorted(first["copied"]), first["refused"]
        assert copied == sorted([
            f"ALLOW {new} ALL on TOPIC LITERAL {prefix}{orders} from * (from {old})",
            f"ALLOW {new} READ on GROUP LITERAL {group} from * (from {old})",
            f"DENY {other} READ on TOPIC LITERAL {prefix}{orders} from 10.1.2.3",
            f"ALLOW {other} WRITE on TOPIC PREFIXED {prefix}{u}-ord from *",
        ]), first
        assert len(refused) == 1, refused
        assert refused[0].startswith(f"ALLOW {other} READ on TOPIC PREFIXED {u}- from *: not copied:"), refused
        assert audit in refused[0], refused
        assert not any(audit in c for c in copied)

        assert cli.plan(extra_env=password_env()).returncode == 0, "a finished mirror plans no changes"

        # An update runs the copy again: nothing new on the target, the same report.
        before = (acls.of(new), acls.of(other))
        cli.tfvars(**variables([orders], group, prefix, peer("FERRY_KAFKA_S_SASL_SSL"), state_dir,
                               principal_map={old: new}, verify=False))
        cli.apply(extra_env=password_env(), timeout=600)
        second = json.loads(cli.run("output", "-json", "acls").stdout)
        # Same cluster on both sides: the group binding copied for the mapped principal is now
        # also a source binding of a selected group, so it is reported too (copied onto itself).
        # Between two clusters the report is exactly the same.
        echo = f"ALLOW {new} READ on GROUP LITERAL {group} from *"
        assert sorted(second["copied"]) == sorted(copied + [echo]), second
        assert second["refused"] == refused
        assert (acls.of(new), acls.of(other)) == before

        # Destroy leaves the copied bindings: clients of the target depend on them after cutover.
        cli.destroy(extra_env=password_env(), timeout=600)
        assert acls.of(new) == want_new
    finally:
        for p in (old, new, other):
            acls.clear(p)


def _filter(principal):
    from confluent_kafka.admin import AclBindingFilter

    return AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, principal, None,
        AclOperation.ANY, AclPermissionType.ANY,
    )


def test_a_target_without_authorizer_refuses_with_the_brokers_reason(cli, tmp_path):
    s = peer("FERRY_KAFKA_S_PLAIN")
    u = unique(f"acl-refused-{cli.name}")
    topic, principal = f"{u}-t", f"User:{u}"
    create_topic(s, topic, 1)
    acls = Acls()
    state_dir = tmp_path / "ferry-state"
    try:
        acls.create(binding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, principal, AclOperation.ALL))
        cli.write("main.tf", MIRROR_TO_B)
        cli.tfvars(**variables([topic], f"{u}-none", "", peer("FERRY_KAFKA_B"), state_dir))
        cli.init()
        apply = cli.apply(extra_env=password_env(), timeout=600)
        assert "The target refused some ACL bindings" in apply.flat, apply.output
        out = json.loads(cli.run("output", "-json", "acls").stdout)
        assert out["copied"] == [], out
        assert len(out["refused"]) == 1, out
        line = out["refused"][0]
        assert line.startswith(f"ALLOW {principal} ALL on TOPIC LITERAL {topic} from *: refused by the target:"), line
        assert "SecurityDisabled" in line, line
        # The provider gave copy-acls a result id: it also recorded its rows in the run's status
        # topic on the target (created before any worker), read back where output is not.
        recorded = status_record(peer("FERRY_KAFKA_B"), out["run_id"], "command/copy-acls")
        assert recorded["command"] == "copy-acls" and recorded["result_id"], recorded
        assert recorded["exit_code"] == 1 and recorded["verification"] is None, recorded
        assert [r["outcome"] for r in recorded["acls"]] == ["refused"], recorded
        cli.destroy(extra_env=password_env(), timeout=600)

        # A principal map without copy_acls is refused at plan time.
        cli.write("main.tf", MIRROR_TO_B.replace("copy_acls             = true",
                                                 'acl_principal_map = { "User:a" = "User:b" }'))
        plan = cli.plan(extra_env=password_env())
        assert plan.returncode == 1 and "acl_principal_map without copy_acls" in plan.flat, plan.output
    finally:
        acls.clear(principal)
