"""ferry_mirror through the real CLIs: examples/quickstart end to end, a continuous mirror,
a killed worker restarted by the next apply, and no worker left after destroy."""

import json
import os
import shutil
import signal
import subprocess
import time

from conftest import REPO, peer
from mirror_util import MIRROR, commit_group, committed, contents, create_topic, produce, read_partition
from test_mirror import sample_records, unique


def worker_pids(state_dir):
    """Live ferry-mirror processes whose command line names a spec under state_dir."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        if "ferry-mirror" in cmd and str(state_dir) in cmd and ") Z" not in stat:
            pids.append(int(pid))
    return pids


def kill_workers(state_dir):
    """Test cleanup: no worker may outlive a failed test."""
    for pid in worker_pids(state_dir):
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


def quickstart(cli, topics, state_dir, extra=None):
    shutil.copy(REPO / "examples" / "quickstart" / "main.tf", cli.workdir / "main.tf")
    cli.tfvars(
        source_servers=[peer("FERRY_KAFKA_A")],
        target_servers=[peer("FERRY_KAFKA_B")],
        topics=topics,
        ferry_mirror_binary=str(MIRROR),
        state_dir=str(state_dir),
        **(extra or {}),
    )


def test_quickstart_copies_translates_and_cleans_up(cli, tmp_path):
    a, b = peer("FERRY_KAFKA_A"), peer("FERRY_KAFKA_B")
    topics = [unique(f"qs-{cli.name}-orders"), unique(f"qs-{cli.name}-payments")]
    for t in topics:
        create_topic(a, t, 3)
        produce(a, t, sample_records(3000, 3))
    group = unique(f"qs-{cli.name}-app")
    commit_group(a, group, topics[0], {0: 100, 1: 555, 2: 1000})
    state_dir = tmp_path / "ferry-state"
    quickstart(cli, topics, state_dir)
    cli.init()
    apply = cli.apply(extra_env={"TF_LOG": "INFO"})
    assert "ferry_mirror.migration: Creation complete" in apply.output
    assert "records copied" in apply.output, "progress must be logged at INFO while waiting"
    out = json.loads(cli.run("output", "-json", "report").stdout)
    assert out["state"] == "complete"
    assert out["records_copied"] == 6000
    assert out["groups_translated"] >= 1
    assert out["verification"] and all(r["result"] == "ok" for r in out["verification"])
    for t in topics:
        for p in range(3):
            assert contents(read_partition(b, t, p)) == contents(read_partition(a, t, p))
    translated = committed(b, group, topics[0], 3)
    for p, c in {0: 100, 1: 555, 2: 1000}.items():
        src = [r for r in read_partition(a, topics[0], p) if r[0] >= c]
        dst = [r for r in read_partition(b, topics[0], p) if r[0] >= translated[p]]
        assert contents(dst) == contents(src)
    # Secrets and spec live in the state dir; the secret-free spec is readable, nothing else leaks.
    spec_files = list(state_dir.glob("*/spec.json"))
    assert spec_files, "the spec is written to the state dir"
    assert cli.plan().returncode == 0, "a finished mirror plans no changes"

    # Adding a topic extends the same run in place; the apply returns when it is copied too.
    extra = unique(f"qs-{cli.name}-refunds")
    create_topic(a, extra, 2)
    produce(a, extra, sample_records(1000, 2))
    quickstart(cli, topics + [extra], state_dir)
    plan = cli.plan()
    assert plan.returncode == 2 and "will be updated in-place" in plan.output, plan.output
    cli.apply()
    out = json.loads(cli.run("output", "-json", "report").stdout)
    assert out["state"] == "complete", out
    for p in range(2):
        assert contents(read_partition(b, extra, p)) == contents(read_partition(a, extra, p))
    cli.destroy()
    assert worker_pids(state_dir) == []


def test_continuous_mirror_in_sync_restart_and_drain(cli, tmp_path):
    try:
        continuous_mirror(cli, tmp_path)
    finally:
        kill_workers(tmp_path / "ferry-state")


def continuous_mirror(cli, tmp_path):
    a, b = peer("FERRY_KAFKA_A"), peer("FERRY_KAFKA_B")
    topic = unique(f"cont-{cli.name}")
    create_topic(a, topic, 2)
    produce(a, topic, sample_records(1000, 2))
    state_dir = tmp_path / "ferry-state"
    quickstart(cli, [topic], state_dir)
    main = (cli.workdir / "main.tf").read_text().replace(
        "  workers               = 2\n", '  workers               = 2\n  mode                  = "continuous"\n  in_sync_lag           = 0\n'
    )
    cli.write("main.tf", main)
    cli.init()
    cli.apply(timeout=240)
    out = json.loads(cli.run("output", "-json", "report").stdout)
    assert out["state"] == "in_sync"
    assert len(worker_pids(state_dir)) == 2

    # New records flow while the mirror runs.
    produce(a, topic, sample_records(500, 2))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum(len(read_partition(b, topic, p)) for p in range(2)) < 1500:
        time.sleep(1)
    assert sum(len(read_partition(b, topic, p)) for p in range(2)) == 1500

    # A worker killed out of band is drift; the next apply restarts it.
    victim = worker_pids(state_dir)[0]
    os.killpg(victim, signal.SIGKILL)
    time.sleep(1)
    plan = cli.plan()
    assert plan.returncode == 2 and "ferry_mirror.migration will be updated in-place" in plan.output, plan.output
    cli.apply(timeout=240)
    assert len(worker_pids(state_dir)) == 2

    # Destroy drains the last records, stops every worker and leaves nothing running.
    produce(a, topic, sample_records(200, 2))
    cli.destroy(timeout=240)
    assert worker_pids(state_dir) == []
    for p in range(2):
        assert contents(read_partition(b, topic, p)) == contents(read_partition(a, topic, p))
