"""A running ferry_mirror with a SASL source whose password is a sensitive variable: planned
again after its status moved on, updated in place and destroyed, through both CLIs.

Terraform before 1.4 panics ("value is marked, so must be unmarked first", format/diff.go
writeNestedBlockDiffs) rendering any change of a resource where a value the configuration marked
sensitive sits inside a single-nested block: `new.Equals(old)` on the block object meets the deep
mark. A running mirror's status changes on every refresh, so its "Objects have changed outside of
Terraform" report crashed every plan, and updates and destroys crashed the same way. Single
blocks are now list blocks of at most one on the wire (tfplugin's `wire` module), which that
renderer compares item by item without the panic; these tests keep it that way.
"""

import json
import time

from conftest import peer
from mirror_util import MIRROR, create_topic, produce, read_partition
from test_mirror import sample_records, unique
from test_mirror_resource import kill_workers

PANIC = "value is marked, so must be unmarked first"


def config(topic, run_id, state_dir, password_expr, workers=1):
    return f"""
terraform {{
  required_providers {{
    ferry = {{ source = "ferry/ferry" }}
  }}
}}

variable "source_password" {{
  type      = string
  sensitive = true
}}

provider "ferry" {{}}

resource "ferry_mirror" "m" {{
  run_id = "{run_id}"
  source {{
    bootstrap_servers = ["{peer("FERRY_KAFKA_A_SASL")}"]
    timeout           = "20s"
    sasl {{
      mechanism = "SCRAM-SHA-512"
      username  = "{peer("FERRY_KAFKA_A_SCRAM_USER")}"
      password  = {password_expr}
    }}
  }}
  target {{
    bootstrap_servers = ["{peer("FERRY_KAFKA_B")}"]
    timeout           = "20s"
  }}
  topics      = ["{topic}"]
  mode        = "continuous"
  in_sync_lag = 0
  workers     = {workers}

  launcher {{
    local {{
      binary    = "{MIRROR}"
      state_dir = "{state_dir}"
    }}
  }}
}}

output "records_copied" {{
  value = ferry_mirror.m.records_copied
}}
"""


def copied(topic):
    return sum(len(read_partition(peer("FERRY_KAFKA_B"), topic, p)) for p in range(2))


def run_and_move_status(cli, tmp_path, password_expr):
    """Applies a continuous SASL mirror, then copies more records so the next refresh differs."""
    a = peer("FERRY_KAFKA_A")
    password = peer("FERRY_KAFKA_A_SCRAM_PASSWORD")
    topic = unique(f"sasl-refresh-{cli.name}")
    run_id = unique(f"sasl-refresh-{cli.name}")
    create_topic(a, topic, 2)
    produce(a, topic, sample_records(200, 2))
    state_dir = tmp_path / "ferry-state"
    cli.write("main.tf", config(topic, run_id, state_dir, password_expr))
    env = {"TF_VAR_source_password": password}
    cli.init()
    created = cli.apply(timeout=240, extra_env=env)
    # Created from a plan that shows the password's line, redacted.
    assert password not in created.output and "(sensitive value)" in created.output, created.output
    before = json.loads(cli.run("output", "-json", "records_copied").stdout)
    produce(a, topic, sample_records(300, 2))
    # The copy must move on and the refresh must see it: the status then differs from state.
    for _ in range(60):
        if copied(topic) >= 500:
            break
        time.sleep(1)
    assert copied(topic) == 500
    return topic, run_id, state_dir, env, password, before


def test_running_sasl_mirror_plans_updates_and_destroys_with_a_sensitive_password(cli, tmp_path):
    try:
        topic, run_id, state_dir, env, password, before = run_and_move_status(
            cli, tmp_path, "var.source_password"
        )
        plan = cli.plan(extra_env=env)
        assert PANIC not in plan.output, plan.output[-4000:]
        # The refresh's changes are shown (the output reads records_copied); nothing to do.
        assert plan.returncode == 2 and "ferry_mirror.m has" in plan.output, plan.output
        assert "records_copied" in plan.output and "will be updated" not in plan.output, plan.output
        assert password not in plan.output
        refreshed = cli.apply(timeout=240, extra_env=env)
        assert password not in refreshed.output
        after = json.loads(cli.run("output", "-json", "records_copied").stdout)
        assert after > before

        # The blocks are lists of one in state; the password is there, but never shown.
        state = json.loads(cli.run("show", "-json").stdout)
        (m,) = state["values"]["root_module"]["resources"]
        source = m["values"]["source"]
        assert isinstance(source, list) and len(source) == 1, source
        assert source[0]["sasl"][0]["password"] == password
        assert m["values"]["target"][0]["sasl"] == []

        # A real in-place update renders and applies, the password redacted.
        cli.write("main.tf", config(topic, run_id, state_dir, "var.source_password", 2))
        plan = cli.plan(extra_env=env)
        assert PANIC not in plan.output, plan.output[-4000:]
        assert plan.returncode == 2 and "will be updated in-place" in plan.output, plan.output
        assert password not in plan.output, plan.output
        updated = cli.apply(timeout=240, extra_env=env)
        assert PANIC not in updated.output and password not in updated.output
        assert "0 added, 1 changed, 0 destroyed" in updated.output, updated.output
        assert cli.plan(extra_env=env).returncode in (0, 2)

        # So does the destroy plan.
        destroyed = cli.destroy(extra_env=env)
        assert PANIC not in destroyed.output and password not in destroyed.output
        assert "1 destroyed" in destroyed.output, destroyed.output
    finally:
        kill_workers(tmp_path / "ferry-state")
