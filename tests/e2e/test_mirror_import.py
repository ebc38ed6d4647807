"""Importing a ferry_mirror must not change the run it adopts (issue 7): the spec the workers
read stays byte-for-byte as the create wrote it, through import, refresh and plan."""

import difflib
import json
import stat

from conftest import Kafka, peer
from mirror_util import MIRROR, create_topic, produce
from test_mirror import sample_records, unique
from test_mirror_resource import kill_workers, worker_pids


def mirror_config(run_id, topic):
    # Everything the spec carries that has a non-default value here: SASL on the source, a
    # timeout on both sides, the exclusion, prefix, mode, delivery and lag settings.
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

resource "ferry_mirror" "x" {{
  run_id = "{run_id}"

  source {{
    bootstrap_servers = ["{peer("FERRY_KAFKA_A_SASL")}"]
    timeout           = "20s"
    sasl {{
      mechanism = "SCRAM-SHA-512"
      username  = "{peer("FERRY_KAFKA_A_SCRAM_USER")}"
      password  = var.source_password
    }}
  }}
  target {{
    bootstrap_servers = ["{peer("FERRY_KAFKA_B")}"]
    timeout           = "25s"
  }}

  topics            = ["{topic}"]
  exclude_regex     = "never-.*"
  topic_name_prefix = "imported."
  mode              = "continuous"
  in_sync_lag       = 0
  exactly_once      = false
  workers           = 1

  timeouts {{
    create = "5m"
    delete = "5m"
  }}
}}
"""


def secret_modes(run_dir):
    """Mode bits of the secret files the create wrote (`source.password` and the like)."""
    return {
        p.name: stat.S_IMODE(p.stat().st_mode)
        for p in run_dir.iterdir()
        if p.name.startswith(("source.", "target."))
    }


def spec_diff(before, after):
    return "".join(
        difflib.unified_diff(
            before.decode().splitlines(True), after.decode().splitlines(True), "spec.json (create)", "spec.json (now)"
        )
    )


def test_mirror_import_then_refresh_leaves_spec_unchanged(cli, tmp_path):
    topic = unique(f"imp-{cli.name}")
    run_id = unique(f"imp-{cli.name}")
    # The default state_dir, `.ferry` in the working directory, is where import looks.
    run_dir = cli.workdir / ".ferry" / run_id
    env = {"FERRY_MIRROR_BIN": str(MIRROR), "TF_VAR_source_password": peer("FERRY_KAFKA_A_SCRAM_PASSWORD")}
    try:
        create_topic(peer("FERRY_KAFKA_A"), topic, 2)
        produce(peer("FERRY_KAFKA_A"), topic, sample_records(300, 2))
        cli.write("main.tf", mirror_config(run_id, topic))
        cli.init()
        cli.apply(extra_env=env, timeout=400)
        spec_path = run_dir / "spec.json"
        before = spec_path.read_bytes()
        spec = json.loads(before)
        # The create wrote what the configuration says; otherwise the comparison proves little.
        assert spec["source"]["sasl"]["mechanism"] == "SCRAM-SHA-512", spec
        assert spec["topic_name_prefix"] == "imported." and spec["topics"]["exclude_regex"] == "never-.*", spec
        assert spec["mode"] == "continuous" and spec["exactly_once"] is False and spec["in_sync_lag"] == 0, spec
        modes = secret_modes(run_dir)
        assert modes.get("source.password") == 0o600, modes

        cli.run("state", "rm", "ferry_mirror.x", extra_env=env)
        imported = cli.run("import", "-no-color", "-input=false", "ferry_mirror.x", run_id, expect=None, extra_env=env)
        after = spec_path.read_bytes()
        assert after == before, f"import rewrote the run's spec\n{spec_diff(before, after)}\n{imported.output[-3000:]}"
        assert imported.returncode == 0, imported.output

        refresh = cli.apply("-refresh-only", expect=None, extra_env=env, timeout=400)
        after = spec_path.read_bytes()
        assert after == before, f"refresh after import rewrote the run's spec\n{spec_diff(before, after)}\n{refresh.output[-3000:]}"
        assert refresh.returncode == 0, refresh.output

        plan = cli.plan(extra_env=env)
        after = spec_path.read_bytes()
        assert after == before, f"plan after import rewrote the run's spec\n{spec_diff(before, after)}\n{plan.output[-3000:]}"
        assert plan.returncode in (0, 2), plan.output
        assert secret_modes(run_dir) == modes, "secret files keep their names and 0600 modes"
        print(f"{cli.name} plan after import and refresh (exit {plan.returncode}):\n{plan.output[-3000:]}")

        cli.destroy(extra_env=env, timeout=400)
        assert worker_pids(cli.workdir / ".ferry") == []
    finally:
        kill_workers(cli.workdir / ".ferry")
        Kafka(peer("FERRY_KAFKA_A")).delete_if_exists(topic)
        Kafka(peer("FERRY_KAFKA_B")).delete_if_exists("imported." + topic)
