"""ferry_topic replication-factor changes at their edges, on the three-broker cluster C with data
in the topic and a low throttle, so a move takes a while:

* an apply SIGKILLed (CLI and provider) while the brokers move partitions: the next plan shows
  the change in progress, the next apply waits for it instead of submitting it again (INFO logs
  show partitions and bytes left) and converges; throttles gone, assignment and ISR read back;
* a reassignment started out of band with Kafka's own kafka-reassign-partitions: an RF change
  on that topic is refused with a clear diagnostic and submits nothing; once the move is over,
  the same apply works.

Reassignments in progress are read with ListPartitionReassignments sent by this file over a
plain socket (cluster C is PLAINTEXT), independently of the provider."""

import json
import os
import re
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from conftest import peer
from test_topic_replication import broker_throttles, check_settled, fill, layout
from test_topics import PROVIDER_HEADER, provider_block

# Low enough that moving a few MiB takes well over a minute whatever the machine's speed (a
# throttle bounds the copy from above), so the move is still running when the test looks.
SLOW = 100 * 1024


# ------------------------------------------------------------- ListPartitionReassignments


def _uvarint(buf, at):
    v, shift = 0, 0
    while True:
        b = buf[at]
        at += 1
        v |= (b & 0x7F) << shift
        if not b & 0x80:
            return v, at
        shift += 7


def _skip_tags(buf, at):
    n, at = _uvarint(buf, at)
    for _ in range(n):
        _, at = _uvarint(buf, at)
        size, at = _uvarint(buf, at)
        at += size
    return at


def _i32s(buf, at):
    n, at = _uvarint(buf, at)
    out = [struct.unpack_from(">i", buf, at + 4 * i)[0] for i in range(max(n - 1, 0))]
    return out, at + 4 * max(n - 1, 0)


def reassignments(bootstrap):
    """{(topic, partition): {"replicas", "adding", "removing"}} in progress on the cluster
    (ListPartitionReassignments v0, which a KRaft broker forwards to the controller)."""
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    client = b"e2e-reassign-edges"
    header = struct.pack(">hhih", 46, 0, 1, len(client)) + client + b"\x00"
    body = struct.pack(">i", 15000) + b"\x00" + b"\x00"  # timeout, null topics (all), tags
    request = header + body
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", _recv(s, 4))[0]
        buf = _recv(s, size)
    at = _skip_tags(buf, 4)  # correlation id, response header tags
    at += 4  # throttle
    (error,) = struct.unpack_from(">h", buf, at)
    assert error == 0, f"ListPartitionReassignments failed with error {error}"
    at += 2
    n, at = _uvarint(buf, at)  # error message (compact nullable string)
    at += max(n - 1, 0)
    out = {}
    topics, at = _uvarint(buf, at)
    for _ in range(max(topics - 1, 0)):
        n, at = _uvarint(buf, at)
        name = buf[at : at + n - 1].decode()
        at += n - 1
        parts, at = _uvarint(buf, at)
        for _ in range(max(parts - 1, 0)):
            (p,) = struct.unpack_from(">i", buf, at)
            at += 4
            replicas, at = _i32s(buf, at)
            adding, at = _i32s(buf, at)
            removing, at = _i32s(buf, at)
            at = _skip_tags(buf, at)
            out[(name, p)] = {"replicas": replicas, "adding": adding, "removing": removing}
        at = _skip_tags(buf, at)
    return out


def _recv(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        assert chunk, "broker closed the connection"
        data += chunk
    return data


def moving(name):
    return {p: m for (t, p), m in reassignments(peer("FERRY_KAFKA_C")).items() if t == name}


def target_of(m):
    return [r for r in m["replicas"] if r not in m["removing"]]


def wait_until(predicate, what, seconds):
    """Polls; `seconds` is a bound only a hang reaches."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"gave up after {seconds} s waiting for {what}")


# ------------------------------------------------------------- helpers


def topic_hcl(name, rf, partitions, throttle, update="30m"):
    return (
        f'resource "ferry_topic" "t" {{\n  name = "{name}"\n  partitions = {partitions}\n'
        f"  replication_factor = {rf}\n"
        f"  reassignment {{\n    throttle_bytes_per_sec = {throttle}\n  }}\n"
        f'  timeouts {{\n    update = "{update}"\n  }}\n}}\n'
    )


def settled_on(kafka, name, rf):
    """check_settled once the brokers' metadata shows the end of the move (it follows the
    controller, which ferry asked, shortly after)."""

    def done():
        parts = layout(kafka, name)
        return all(len(r) == rf and isr == sorted(r) and leader == r[0] for r, isr, leader in parts.values())

    wait_until(done, f"{name}'s metadata to show replication factor {rf} settled", 120)
    return check_settled(kafka, name, rf)


def progress_lines(text):
    """The provider's INFO progress lines as (partitions_left, bytes_left or None). Terraform
    re-renders the provider's JSON numbers as floats, so both are read as floats."""
    out = []
    for line in text.splitlines():
        if "replication-factor change in progress" not in line:
            continue
        left = re.search(r"partitions_left=([0-9.e+]+)", line)
        size = re.search(r"bytes_left=([0-9.e+]+)", line)
        out.append((int(float(left.group(1))) if left else None, int(float(size.group(1))) if size else None))
    return out


def group_gone(pgid):
    """No live (non-zombie) process is left in the process group."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            return False
    return True


def tail(text, n=4000):
    return text[-n:]


# ------------------------------------------------------------- tests


def test_apply_killed_mid_reassignment_then_reapplied_converges(cli, kafka_c, tmp_path):
    name = f"e2e-{cli.name}-rf-killed"
    kafka_c.delete_if_exists(name)
    servers = peer("FERRY_KAFKA_C").split(",")[0]
    header = PROVIDER_HEADER + provider_block(servers)
    cli.write("main.tf", header + topic_hcl(name, 1, 4, SLOW))
    cli.init()
    cli.apply()
    fill(name, records=12000)
    assert moving(name) == {}

    cli.write("main.tf", header + topic_hcl(name, 3, 4, SLOW))
    first_log = tmp_path / "killed-apply.log"
    with open(first_log, "w") as out:
        # Its own process group: the SIGKILL reaches the CLI and the provider it started.
        proc = subprocess.Popen(
            [cli.binary, "apply", "-auto-approve", "-no-color", "-input=false"],
            cwd=cli.workdir,
            env=dict(cli.env, TF_LOG="INFO"),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            in_progress = wait_until(
                lambda: moving(name) or proc.poll() is not None,
                "the apply to start moving partitions",
                300,
            )
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    assert in_progress is not True and proc.returncode == -signal.SIGKILL, (
        f"{cli.name} apply ended (exit {proc.returncode}) before the reassignment was seen\n"
        + tail(first_log.read_text())
    )
    wait_until(lambda: group_gone(proc.pid), "the killed CLI's provider process to go", 60)
    targets = {p: target_of(m) for p, m in in_progress.items()}
    print(f"{cli.name}: killed with {len(in_progress)} partitions moving: {targets}")
    assert all(len(t) == 3 for t in targets.values()), targets
    assert kafka_c.topic(name) is not None

    # The move goes on without ferry; the plan says so and still shows the change.
    plan = cli.plan()
    assert moving(name), "the move finished before the plan: the throttle did not hold it"
    assert plan.returncode == 2, tail(plan.output)
    assert "1 -> 3" in plan.flat, tail(plan.output)
    assert "Replication-factor change in progress" in plan.flat, tail(plan.output)
    assert "waits for it to finish instead of submitting it again" in plan.flat, tail(plan.output)

    log = tmp_path / "reapply.log"
    again = cli.apply(expect=None, timeout=1800, extra_env={"TF_LOG": "INFO", "TF_LOG_PATH": str(log)})
    text = log.read_text() if log.exists() else ""
    assert again.returncode == 0, tail(again.output) + "\n--- log\n" + tail(text)
    assert "already running on the brokers" in text, tail(text)
    assert "reassigning partitions to replication factor" not in text, "the re-apply submitted the move again"
    progress = progress_lines(text)
    print(f"{cli.name}: re-apply progress (partitions left, bytes left): {progress}")
    assert progress, "no INFO progress line while waiting\n" + tail(text)
    left, size = progress[0]
    assert left is not None and 1 <= left <= 4, progress
    assert size is not None and size > 0, f"the first progress line shows no bytes left: {progress}"
    # At most two new replicas of every partition's whole log (about 1,040 bytes a record on disk).
    assert size <= 2 * 12000 * 1100, f"more bytes left than the topic holds twice: {progress}"

    settled = settled_on(kafka_c, name, 3)
    for p, target in targets.items():
        assert settled[p][0] == target, f"partition {p}: {settled[p][0]}, the move in progress was to {target}"
    assert moving(name) == {}
    assert cli.plan().returncode == 0
    cli.destroy()
    assert kafka_c.topic(name) is None


def test_a_change_that_outlasts_its_timeout_keeps_running_and_the_next_apply_finishes_it(cli, kafka_c, tmp_path):
    """timeouts.update ends the wait, not the move: the apply fails saying so, the throttle stays
    while the brokers copy, and the next apply, with a higher throttle, waits for the same move
    (never submitting it again) and finishes it."""
    name = f"e2e-{cli.name}-rf-timeout"
    kafka_c.delete_if_exists(name)
    servers = peer("FERRY_KAFKA_C").split(",")[0]
    header = PROVIDER_HEADER + provider_block(servers)
    cli.write("main.tf", header + topic_hcl(name, 1, 4, SLOW))
    cli.init()
    cli.apply()
    fill(name, records=12000)

    cli.write("main.tf", header + topic_hcl(name, 3, 4, SLOW, update="5s"))
    short = cli.apply(expect=1)
    assert "Replication-factor change still running" in short.flat, tail(short.output)
    assert "keeps running on the brokers" in short.flat, tail(short.output)
    still = moving(name)
    assert still, "the move finished within 5 s although throttled: nothing was tested"
    targets = {p: target_of(m) for p, m in still.items()}
    overrides = kafka_c.overrides(name)
    assert "follower.replication.throttled.replicas" in overrides, (
        f"the throttle must stay while the move runs: {overrides}"
    )
    plan = cli.plan()
    assert plan.returncode == 2 and "1 -> 3" in plan.flat, tail(plan.output)
    assert "Replication-factor change in progress" in plan.flat, tail(plan.output)

    # A higher throttle and a longer wait: the same move, faster.
    cli.write("main.tf", header + topic_hcl(name, 3, 4, 50 * 1024 * 1024))
    log = tmp_path / "finish.log"
    done = cli.apply(expect=None, timeout=1800, extra_env={"TF_LOG": "INFO", "TF_LOG_PATH": str(log)})
    text = log.read_text() if log.exists() else ""
    assert done.returncode == 0, tail(done.output) + "\n--- log\n" + tail(text)
    assert "already running on the brokers" in text, tail(text)
    assert "reassigning partitions to replication factor" not in text, "the move was submitted again"
    settled = settled_on(kafka_c, name, 3)
    for p, target in targets.items():
        assert settled[p][0] == target, f"partition {p}: {settled[p][0]}, the move in progress was to {target}"
    assert cli.plan().returncode == 0
    cli.destroy()
    assert kafka_c.topic(name) is None


def reassign_tool(*args):
    java, libs = peer("FERRY_JAVA"), peer("FERRY_KAFKA_LIBS")
    proc = subprocess.run(
        [java, "-cp", f"{libs}/*", "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
         "--bootstrap-server", peer("FERRY_KAFKA_C").split(",")[0], *args],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, f"kafka-reassign-partitions {args} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_a_reassignment_ferry_did_not_start_is_reported_not_overwritten(cli, kafka_c, tmp_path):
    name = f"e2e-{cli.name}-rf-foreign"
    kafka_c.delete_if_exists(name)
    servers = peer("FERRY_KAFKA_C").split(",")[0]
    header = PROVIDER_HEADER + provider_block(servers)
    cli.write("main.tf", header + topic_hcl(name, 1, 2, 0))
    cli.init()
    cli.apply()
    fill(name, records=8000)

    # Someone moves each partition to the next broker by hand, throttled, at replication factor 1.
    brokers = sorted(kafka_c.admin.list_topics(timeout=15).brokers)
    before = layout(kafka_c, name)
    theirs = {p: [brokers[(brokers.index(r[0]) + 1) % len(brokers)]] for p, (r, _, _) in before.items()}
    plan_file = tmp_path / "move.json"
    plan_file.write_text(json.dumps({
        "version": 1,
        "partitions": [{"topic": name, "partition": p, "replicas": r} for p, r in theirs.items()],
    }))
    try:
        reassign_tool("--reassignment-json-file", str(plan_file), "--execute", "--throttle", str(SLOW // 2))
        assert moving(name), "the out-of-band move finished at once: the throttle did not hold it"

        cli.write("main.tf", header + topic_hcl(name, 2, 2, 0))
        plan = cli.plan()
        assert plan.returncode == 1, tail(plan.output)
        assert "Another partition reassignment is in progress" in plan.flat, tail(plan.output)
        assert "does not overwrite a reassignment" in plan.flat, tail(plan.output)
        assert f"{name}-0" in plan.flat or f"{name}-1" in plan.flat, tail(plan.output)
        applied = cli.apply(expect=1)
        assert "Another partition reassignment is in progress" in applied.flat, tail(applied.output)
        # Nothing was submitted: what moves is still their move, to their targets.
        now = moving(name)
        assert now, "the out-of-band move is gone while ferry refused to touch it"
        assert {p: target_of(m) for p, m in now.items()} == {p: theirs[p] for p in now}, now
    finally:
        # The operator lets it finish: the throttle rates off, then --verify, which clears the
        # throttles once the move is complete.
        for b in brokers:
            from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

            res = ConfigResource(
                ConfigResource.Type.BROKER,
                str(b),
                incremental_configs=[
                    ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE)
                    for k in ("leader.replication.throttled.rate", "follower.replication.throttled.rate")
                ],
            )
            kafka_c.admin.incremental_alter_configs([res])[res].result(timeout=15)
        wait_until(lambda: moving(name) == {}, "the out-of-band move to finish", 600)
    # The controller says it is over; the brokers' metadata follows shortly after.
    wait_until(
        lambda: {p: r for p, (r, _, _) in layout(kafka_c, name).items()} == theirs,
        f"their move to reach its targets {theirs} in metadata",
        120,
    )
    reassign_tool("--reassignment-json-file", str(plan_file), "--verify")
    wait_until(lambda: broker_throttles(kafka_c) == {}, "the tool's broker throttles to go", 120)

    applied = cli.apply()
    settled = settled_on(kafka_c, name, 2)
    for p, r in theirs.items():
        assert settled[p][0][0] == r[0], "the replica they moved to stays, and leads"
    assert cli.plan().returncode == 0
    cli.destroy()
    assert kafka_c.topic(name) is None
