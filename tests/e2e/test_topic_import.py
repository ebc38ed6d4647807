"""Import of a ferry_topic whose resource has its own `cluster` block: the import id carries the
cluster (`BOOTSTRAP_SERVERS/TOPIC`), so the provider block may point at another cluster."""

import uuid

from conftest import Kafka, peer

HEADER = """
terraform {
  required_providers {
    ferry = { source = "ferry/ferry" }
  }
}
"""


def topic_hcl(name, cluster):
    return (
        'resource "ferry_topic" "t" {\n'
        f'  name       = "{name}"\n'
        "  partitions = 3\n"
        '  config     = { "retention.ms" = "3600000", "cleanup.policy" = "compact" }\n'
        f"  cluster {{\n{cluster}  }}\n"
        "}\n"
    )


def import_topic(cli, import_id):
    """`terraform import` for Terraform 1.0; an `import` block (then apply) for OpenTofu."""
    if cli.name == "terraform":
        return cli.run("import", "-no-color", "-input=false", "ferry_topic.t", import_id)
    cli.write("import.tf", f'import {{\n  to = ferry_topic.t\n  id = "{import_id}"\n}}\n')
    plan = cli.plan()
    assert "1 to import, 0 to add, 0 to change, 0 to destroy" in plan.output, plan.output
    out = cli.apply()
    (cli.workdir / "import.tf").unlink()
    return out


def test_topic_on_another_cluster_imports_with_its_cluster_in_the_id(cli, kafka_a):
    kafka_b = Kafka(peer("FERRY_KAFKA_B"))
    a, b = peer("FERRY_KAFKA_A"), peer("FERRY_KAFKA_B")
    name = f"e2e-{cli.name}-imp-{uuid.uuid4().hex[:8]}.v1"
    kafka_b.create(name, 3, {"retention.ms": "3600000", "cleanup.policy": "compact"})
    try:
        cli.write(
            "main.tf",
            HEADER
            + f'provider "ferry" {{\n  bootstrap_servers = ["{a}"]\n  timeout = "15s"\n}}\n'
            + topic_hcl(name, f'    bootstrap_servers = ["{b}"]\n'),
        )
        cli.init()

        # By name alone the provider's default connection (A) is used, where the topic is not.
        by_name = cli.run("import", "-no-color", "-input=false", "ferry_topic.t", name, expect=1)
        assert "non-existent" in by_name.flat or "does not exist" in by_name.flat, by_name.output

        bad = cli.run("import", "-no-color", "-input=false", "ferry_topic.t", f"{b}x/{name}", expect=1)
        assert "Invalid import id" in bad.flat and "BOOTSTRAP_SERVERS/TOPIC" in bad.flat, bad.output

        import_topic(cli, f"{b}/{name}")
        state = cli.run("state", "show", "-no-color", "ferry_topic.t").output
        assert b in state and a not in state, state
        assert '"retention.ms"' in state and "partitions" in state, state

        plan = cli.plan()
        assert plan.returncode == 0, plan.output
        assert kafka_b.topic(name) == (3, 1)
        assert kafka_b.overrides(name) == {"retention.ms": "3600000", "cleanup.policy": "compact"}
        assert kafka_a.topic(name) is None, "nothing may be created on the provider's cluster"

        # The configuration's block says more than the id did (a timeout): an in-place update
        # that only records it, never a replacement; Kafka is untouched and the plan is then empty.
        cli.write("main.tf", HEADER
                  + f'provider "ferry" {{\n  bootstrap_servers = ["{a}"]\n  timeout = "15s"\n}}\n'
                  + topic_hcl(name, f'    bootstrap_servers = ["{b}"]\n    timeout = "20s"\n'))
        more = cli.plan()
        assert more.returncode == 2, more.output
        assert "1 to change" in more.output and "must be replaced" not in more.output, more.output
        cli.apply()
        assert cli.plan().returncode == 0
        assert kafka_b.topic(name) == (3, 1)
        assert kafka_b.overrides(name) == {"retention.ms": "3600000", "cleanup.policy": "compact"}

        cli.destroy()
        assert kafka_b.topic(name) is None
    finally:
        kafka_b.delete_if_exists(name)


def test_imported_cluster_block_gains_sasl_from_the_configuration_in_place(cli, kafka_a):
    """Imported through A's plaintext listener; the configuration's block then names A's SASL
    listener with credentials. No replacement, and the update changes nothing in Kafka."""
    plain, sasl = peer("FERRY_KAFKA_A"), peer("FERRY_KAFKA_A_SASL")
    user, password = peer("FERRY_KAFKA_A_SCRAM_USER"), peer("FERRY_KAFKA_A_SCRAM_PASSWORD")
    name = f"e2e-{cli.name}-imp-sasl-{uuid.uuid4().hex[:8]}"
    kafka_a.create(name, 3, {"retention.ms": "3600000", "cleanup.policy": "compact"})
    provider = f'provider "ferry" {{\n  bootstrap_servers = ["{peer("FERRY_KAFKA_B")}"]\n}}\n'
    variable = 'variable "password" {\n  type      = string\n  sensitive = true\n}\n'
    try:
        cli.write("main.tf", HEADER + provider + variable + topic_hcl(name, f'    bootstrap_servers = ["{plain}"]\n'))
        cli.tfvars(password=password)
        cli.init()
        import_topic(cli, f"{plain}/{name}")
        assert cli.plan().returncode == 0

        secured = (
            f'    bootstrap_servers = ["{sasl}"]\n'
            '    sasl {\n      mechanism = "SCRAM-SHA-512"\n'
            f'      username  = "{user}"\n      password  = var.password\n    }}\n'
        )
        cli.write("main.tf", HEADER + provider + variable + topic_hcl(name, secured))
        plan = cli.plan()
        assert plan.returncode == 2, plan.output
        assert "1 to change" in plan.output and "must be replaced" not in plan.output, plan.output
        assert password not in plan.output
        apply = cli.apply()
        assert "1 changed" in apply.output, apply.output
        assert cli.plan().returncode == 0
        assert kafka_a.topic(name) == (3, 1)
        assert kafka_a.overrides(name) == {"retention.ms": "3600000", "cleanup.policy": "compact"}
        cli.destroy()
        assert kafka_a.topic(name) is None
    finally:
        kafka_a.delete_if_exists(name)
