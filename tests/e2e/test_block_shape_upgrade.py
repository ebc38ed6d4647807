"""State written before single blocks became lists of one still works, through both CLIs.

ferry used to announce `cluster`, `sasl`, `timeouts` and every other single block as a single
nested block; it now announces them as list blocks of at most one (tfplugin's `wire` module). A
state written by the earlier shape has objects (or null) there, and its `sensitive_attributes`
paths have no index step. This test writes such a state from a fresh one, as the earlier provider
would have written it, and checks that the next plan and apply read it, with a password from a
sensitive variable inside `cluster { sasl { ... } }` and a data source with the same block.
Observed: OpenTofu plans no change; Terraform 1.0.3 refuses the data source's old state until it
is removed from state, then plans a one-time update of the resource that changes no value.
"""

import json

from conftest import peer
from test_mirror import unique


def config(name):
    block = f"""
  cluster {{
    bootstrap_servers = ["{peer("FERRY_KAFKA_A_SASL")}"]
    timeout           = "20s"
    sasl {{
      mechanism = "SCRAM-SHA-512"
      username  = "{peer("FERRY_KAFKA_A_SCRAM_USER")}"
      password  = var.password
    }}
  }}"""
    return f"""
terraform {{
  required_providers {{
    ferry = {{ source = "ferry/ferry" }}
  }}
}}

variable "password" {{
  type      = string
  sensitive = true
}}

provider "ferry" {{}}

resource "ferry_topic" "t" {{
  name       = "{name}"
  partitions = 1
{block}
}}

data "ferry_topic" "d" {{
  name = ferry_topic.t.name
{block}
}}

output "servers" {{
  value = ferry_topic.t.cluster[0].bootstrap_servers
}}

output "partitions" {{
  value = data.ferry_topic.d.partitions
}}
"""


def single_blocks(schema_block):
    """{name: nested schema} of the blocks that were single blocks: now lists of at most one."""
    return {
        name: nested["block"]
        for name, nested in schema_block.get("block_types", {}).items()
        if nested["nesting_mode"] == "list" and nested.get("max_items") == 1
    }


def to_old_shape(values, schema_block):
    """A state object as the earlier provider stored it: single blocks as objects or null."""
    out = dict(values)
    for name, inner in single_blocks(schema_block).items():
        items = out.get(name) or []
        assert len(items) <= 1, (name, items)
        out[name] = to_old_shape(items[0], inner) if items else None
    return out


def old_path(path, schema_block):
    """A sensitive_attributes path without the index steps into single blocks."""
    out, block, steps = [], schema_block, list(path)
    while steps:
        step = steps.pop(0)
        out.append(step)
        inner = single_blocks(block or {}).get(step.get("value")) if step["type"] == "get_attr" else None
        if inner is not None and steps and steps[0]["type"] == "index":
            steps.pop(0)
        block = inner
    return out


def legacy_terraform(cli):
    version = json.loads(cli.run("version", "-json").stdout)["terraform_version"]
    return cli.name == "terraform" and tuple(int(x) for x in version.split(".")[:2]) < (1, 4)


def test_state_written_with_single_object_blocks_is_upgraded(cli):
    name = unique(f"shape-upgrade-{cli.name}")
    password = peer("FERRY_KAFKA_A_SCRAM_PASSWORD")
    env = {"TF_VAR_password": password}
    cli.write("main.tf", config(name))
    cli.init()
    try:
        cli.apply(timeout=240, extra_env=env)
        schemas = json.loads(cli.run("providers", "schema", "-json").stdout)
        (provider,) = schemas["provider_schemas"].values()

        path = cli.workdir / "terraform.tfstate"
        state = json.loads(path.read_text())
        marked = 0
        for res in state["resources"]:
            kind = "resource_schemas" if res["mode"] == "managed" else "data_source_schemas"
            block = provider[kind][res["type"]]["block"]
            for inst in res["instances"]:
                assert isinstance(inst["attributes"]["cluster"], list), inst["attributes"]
                inst["attributes"] = to_old_shape(inst["attributes"], block)
                paths = inst.get("sensitive_attributes", [])
                inst["sensitive_attributes"] = [old_path(p, block) for p in paths]
                marked += len(paths)
        assert marked >= 1, "the password's mark is in state"
        state["serial"] += 1
        path.write_text(json.dumps(state, indent=2))


        plan = cli.plan(extra_env=env)
        assert "panic" not in plan.output and password not in plan.output, plan.output
        if legacy_terraform(cli):
            # Terraform < 1.4 decodes a data source's stored state itself, with the current
            # schema, and fails on the object-shaped block ("missing expected ["); a data
            # source is read again on every plan, so forgetting it is harmless.
            assert plan.returncode == 1 and "missing expected [" in plan.output, plan.output
            cli.run("state", "rm", "data.ferry_topic.d")
            plan = cli.plan(extra_env=env)
            # The resource itself upgrades; the mark's path in state gained `[0]` steps, which
            # that Terraform shows as a one-time update with no change of value.
            assert plan.returncode == 2, plan.output
            assert "0 to add, 1 to change, 0 to destroy" in plan.output, plan.output
            assert "The value is unchanged" in plan.flat, plan.output
        else:
            assert plan.returncode == 0, plan.output
        applied = cli.apply(timeout=240, extra_env=env)
        assert password not in applied.output
        assert cli.plan(extra_env=env).returncode == 0
        servers = json.loads(cli.run("output", "-json", "servers").stdout)
        assert servers == [peer("FERRY_KAFKA_A_SASL")]
        upgraded = json.loads(path.read_text())
        for res in upgraded["resources"]:
            for inst in res["instances"]:
                assert isinstance(inst["attributes"]["cluster"], list), inst["attributes"]
    finally:
        cli.destroy(extra_env=env, expect=None)
