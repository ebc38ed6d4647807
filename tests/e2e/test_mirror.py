"""ferry-mirror against two real Kafka clusters (A = source, B = target)."""

import json
import os
import random
import signal
import time
import urllib.request

import pytest

from conftest import Kafka, peer
from mirror_util import (
    MIRROR,
    commit_group,
    committed,
    contents,
    create_topic,
    digest,
    kill,
    mirror,
    produce,
    read_partition,
    start_worker,
    write_spec,
)


@pytest.fixture(scope="module")
def clusters():
    if not MIRROR.exists():
        pytest.fail(f"{MIRROR} is missing: cargo build -p ferry-mirror")
    return peer("FERRY_KAFKA_A"), peer("FERRY_KAFKA_B")


def unique(name):
    return f"{name}-{os.getpid()}-{random.randrange(1 << 30)}"


def sample_records(n, partitions):
    # Recent timestamps: records older than a topic's retention.ms are deleted by the broker.
    base = int(time.time() * 1000) - 3_600_000
    for i in range(n):
        key = None if i % 7 == 0 else f"key-{i % 500}".encode()
        value = None if i % 11 == 0 else (f"value-{i}-" + "x" * (i % 300)).encode()
        headers = [("trace", f"t{i}".encode()), ("empty", None)] if i % 3 == 0 else None
        yield i % partitions, key, value, headers, base + i


def test_copy_is_exact_and_groups_translate(clusters, tmp_path):
    a, b = clusters
    topic = unique("copy")
    create_topic(a, topic, 3)
    produce(a, topic, sample_records(6000, 3))
    commit_group(a, "copy-billing", topic, {0: 1000, 1: 1999, 2: 2000})
    spec = write_spec(
        tmp_path / "spec.json", unique("run"), a, b, topics={"names": [topic]}, consumer_groups_regex="copy-.*"
    )

    run = mirror("run", "--spec", str(spec))
    report = json.loads(run.stdout)
    assert report["records_in_goal"] == 6000
    assert [g["state"] for g in report["groups"]] == ["translated"]

    for p in range(3):
        src, dst = read_partition(a, topic, p), read_partition(b, topic, p)
        assert contents(dst) == contents(src), f"partition {p} differs"
    # The translated group resumes at the same record it would read next on the source.
    translated = committed(b, "copy-billing", topic, 3)
    for p, source_offset in {0: 1000, 1: 1999, 2: 2000}.items():
        src_next = [r for r in read_partition(a, topic, p) if r[0] >= source_offset]
        dst_next = [r for r in read_partition(b, topic, p) if r[0] >= translated[p]]
        assert contents(dst_next) == contents(src_next), f"partition {p} resumes at the wrong record"

    verify = mirror("verify", "--spec", str(spec))
    assert "0 mismatch(es)" in verify.stdout
    status = json.loads(mirror("status", "--spec", str(spec), "--json").stdout)
    assert status["state"] == "complete"
    assert status["records_copied"] == 6000

    # A second run of the same spec copies nothing more and still completes.
    mirror("run", "--spec", str(spec))
    assert sum(len(read_partition(b, topic, p)) for p in range(3)) == 6000


def test_gaps_from_aborts_and_markers_translate_exactly(clusters, tmp_path):
    """Aborted transactions and commit markers leave gaps in the source offsets, and the target
    log has markers of its own: offsets differ on the two sides, and a translation that rounds to
    a sync point would land on the wrong record. Every translated offset must be exact."""
    a, b = clusters
    topic = unique("gaps")
    create_topic(a, topic, 2)
    rnd = random.Random(7)
    for batch in range(12):
        recs = [(rnd.randrange(2), f"k{batch}-{i}".encode(), f"v{batch}-{i}".encode(), None, None) for i in range(rnd.randrange(5, 60))]
        produce(a, topic, recs, transactional_id=f"{topic}-tx", abort=(batch % 3 == 1))
    # Groups committed at every interesting place: inside aborted ranges, on markers, at the end.
    visible = {p: [r[0] for r in read_partition(a, topic, p)] for p in range(2)}
    hw = {p: max(read_partition(a, topic, p, isolation="read_uncommitted"), key=lambda r: r[0])[0] + 2 for p in range(2)}
    groups = {}
    for i, p_offsets in enumerate(range(8)):
        offsets = {p: rnd.randrange(0, hw[p]) for p in range(2)}
        groups[f"gaps-g{i}"] = offsets
        commit_group(a, f"gaps-g{i}", topic, offsets)
    spec = write_spec(tmp_path / "spec.json", unique("run"), a, b, topics={"names": [topic]}, consumer_groups_regex="gaps-g.*")
    report = json.loads(mirror("run", "--spec", str(spec)).stdout)
    assert {g["state"] for g in report["groups"]} == {"translated"}

    target = {p: read_partition(b, topic, p) for p in range(2)}
    source = {p: read_partition(a, topic, p) for p in range(2)}
    offsets_differ = False
    for group, offsets in groups.items():
        translated = committed(b, group, topic, 2)
        for p, c in offsets.items():
            src_next = [r for r in source[p] if r[0] >= c]
            dst_next = [r for r in target[p] if r[0] >= translated[p]]
            assert contents(dst_next) == contents(src_next), f"{group} partition {p}: resumes at the wrong record"
            offsets_differ |= translated[p] != c
    assert offsets_differ, "the test data should make target offsets differ from source offsets"
    assert any(o not in visible[p] for p in range(2) for o in range(max(visible[p]))), "source has gaps"
    verify = mirror("verify", "--spec", str(spec))
    assert "0 mismatch(es)" in verify.stdout, verify.stdout


def test_verify_reports_a_wrong_translation(clusters, tmp_path):
    a, b = clusters
    topic = unique("wrong")
    create_topic(a, topic, 1)
    produce(a, topic, sample_records(200, 1))
    commit_group(a, "wrong-g", topic, {0: 50})
    spec = write_spec(tmp_path / "spec.json", unique("run"), a, b, topics={"names": [topic]}, consumer_groups_regex="wrong-g")
    mirror("run", "--spec", str(spec))
    commit_group(b, "wrong-g", topic, {0: 60})  # what a rounding translation might do
    verify = mirror("verify", "--spec", str(spec), check=False)
    assert verify.returncode == 1, verify.stdout
    assert "1 mismatch(es)" in verify.stdout

    # Given a result id (as the provider passes it), verify also records its rows and exit code
    # in the status topic, where a caller that cannot read the output (Kubernetes without pod
    # logs) finds them; the latest call's record replaces the earlier one under the same key.
    run_id = json.loads(spec.read_text())["run_id"]
    env = dict(os.environ, FERRY_MIRROR_RESULT_ID="apply-1")
    verify = mirror("verify", "--spec", str(spec), "--json", env=env, check=False)
    assert verify.returncode == 1, verify.stderr
    printed = json.loads(verify.stdout)
    recorded = status_record(b, run_id, "command/verify")
    assert recorded["command"] == "verify" and recorded["result_id"] == "apply-1"
    assert recorded["run_id"] == run_id and recorded["exit_code"] == 1
    assert recorded["verification"] == printed
    [row] = recorded["verification"]
    assert row["outcome"]["kind"] != "ok" and row["group"] == "wrong-g"

    commit_group(b, "wrong-g", topic, {0: 50})  # repaired: resumes where the source does
    verify = mirror("verify", "--spec", str(spec), "--json", "--result-id", "apply-2")
    recorded = status_record(b, run_id, "command/verify")
    assert (recorded["result_id"], recorded["exit_code"]) == ("apply-2", 0)
    assert recorded["verification"] == json.loads(verify.stdout)
    assert [r["result"] for r in recorded["verification"]] == ["ok"]


def status_record(bootstrap, run_id, key):
    """The latest value of `key` in the run's status topic, parsed."""
    latest = {}
    for _, k, v, _, _ in read_partition(bootstrap, f"__ferry.{run_id}.status", 0):
        if k is not None:
            latest[k.decode()] = v
    assert latest.get(key) is not None, f"no {key} in the status topic: {sorted(latest)}"
    return json.loads(latest[key])


def test_workers_killed_at_random_lose_and_duplicate_nothing(clusters, tmp_path):
    a, b = clusters
    mb = int(os.environ.get("FERRY_CHAOS_MB", "1000"))
    topic = unique("chaos")
    partitions = 6
    create_topic(a, topic, partitions)
    value = b"v" * 1000
    n = mb * 1000
    produce(a, topic, ((i % partitions, str(i).encode(), value, None, None) for i in range(n)))
    spec = write_spec(tmp_path / "spec.json", unique("run"), a, b, topics={"names": [topic]})
    workers = {w: start_worker(spec, w, tmp_path) for w in ("w1", "w2")}
    kills = 0
    deadline = time.monotonic() + 900
    rnd = random.Random(3)
    # A kill every 1-3 s: with faster starts, kills every 2-5 s let a 1 GB copy finish after two.
    while any(p.poll() is None for p in workers.values()) and time.monotonic() < deadline:
        time.sleep(rnd.uniform(1, 3))
        live = [w for w, p in workers.items() if p.poll() is None]
        if not live or kills >= 12:
            continue
        victim = rnd.choice(live)
        kill(workers[victim])
        kills += 1
        workers[victim] = start_worker(spec, victim, tmp_path)
    for w, p in workers.items():
        assert p.wait(timeout=max(1, deadline - time.monotonic())) == 0, (tmp_path / f"{w}.log").read_text()[-3000:]
    assert kills >= 3, "the copy finished before the chaos started; raise FERRY_CHAOS_MB"
    total = 0
    for p in range(partitions):
        src, dst = read_partition(a, topic, p), read_partition(b, topic, p)
        assert len(dst) == len(src), f"partition {p}: {len(src)} source records, {len(dst)} on the target"
        assert digest(dst) == digest(src), f"partition {p}: contents differ"
        total += len(dst)
    assert total == n


def test_continuous_mode_serves_metrics_and_stops_cleanly(clusters, tmp_path):
    a, b = clusters
    topic = unique("live")
    create_topic(a, topic, 2)
    produce(a, topic, sample_records(500, 2))
    spec = write_spec(
        tmp_path / "spec.json", unique("run"), a, b, topics={"include_regex": topic.replace(".", r"\.")},
        mode="continuous", in_sync_lag=10, http_listen="127.0.0.1:0",
    )
    worker = start_worker(spec, "live", tmp_path)
    log = tmp_path / "live.log"
    deadline = time.monotonic() + 60
    address = None
    while time.monotonic() < deadline and not address:
        for line in log.read_text().splitlines():
            if "http=" in line:
                address = line.split("http=")[1].split()[0]
        time.sleep(0.5)
    assert address, log.read_text()
    produce(a, topic, sample_records(300, 2))
    deadline = time.monotonic() + 60
    state = None
    while time.monotonic() < deadline:
        state = json.loads(mirror("status", "--spec", str(spec), "--json").stdout)
        if state["state"] == "in_sync" and state["records_copied"] >= 800:
            break
        time.sleep(1)
    assert state["state"] == "in_sync" and state["records_copied"] == 800, state
    metrics = urllib.request.urlopen(f"http://{address}/metrics", timeout=10).read().decode()
    assert any(ln.startswith("ferry_mirror_records_copied_total{") and f'topic="{topic}"' in ln and ln.endswith("} 800") for ln in metrics.splitlines()), metrics
    assert urllib.request.urlopen(f"http://{address}/healthz", timeout=10).read() == b"ok\n"
    assert json.loads(urllib.request.urlopen(f"http://{address}/status", timeout=10).read())["state"] == "in_sync"
    os.killpg(worker.pid, signal.SIGTERM)
    assert worker.wait(timeout=60) == 0


def test_bad_spec_names_the_field_and_exits_2(tmp_path):
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({"version": 1, "run_id": "x", "source": {"bootstrap_servers": ["nohost"]},
                                "target": {"bootstrap_servers": ["127.0.0.1:1"]}, "topics": {"names": ["t"]}}))
    proc = mirror("run", "--spec", str(spec), check=False)
    assert proc.returncode == 2
    assert "source.bootstrap_servers[0]" in proc.stderr
    assert mirror("run", check=False).returncode == 2
    assert "USAGE" in mirror("--help").stdout


def test_unreachable_source_fails_in_bounded_time(tmp_path):
    spec = write_spec(tmp_path / "spec.json", "unreachable", "127.0.0.1:1", "127.0.0.1:2", topics={"names": ["t"]})
    data = json.loads(spec.read_text())
    data["source"]["timeout_seconds"] = 3
    spec.write_text(json.dumps(data))
    started = time.monotonic()
    proc = mirror("run", "--spec", str(spec), check=False, timeout=120)
    assert proc.returncode == 1
    assert "could not reach Kafka at 127.0.0.1:1" in proc.stderr
    assert time.monotonic() - started < 90  # a bound against hanging, not a speed claim


def test_target_topic_with_fewer_partitions_is_an_error(clusters, tmp_path):
    a, b = clusters
    topic = unique("narrow")
    create_topic(a, topic, 4)
    create_topic(b, topic, 2)
    spec = write_spec(tmp_path / "spec.json", unique("run"), a, b, topics={"names": [topic]})
    proc = mirror("run", "--spec", str(spec), check=False)
    assert proc.returncode == 1
    assert "has 2 partitions but source topic" in proc.stderr and "has 4" in proc.stderr, proc.stderr


def test_group_with_members_on_the_target_is_left_alone(clusters, tmp_path):
    from confluent_kafka import Consumer

    a, b = clusters
    topic = unique("busy")
    create_topic(a, topic, 1)
    create_topic(b, topic, 1)
    produce(a, topic, sample_records(100, 1))
    commit_group(a, "busy-g", topic, {0: 40})
    member = Consumer({"bootstrap.servers": b, "group.id": "busy-g", "session.timeout.ms": 30000})
    member.subscribe([topic])
    deadline = time.monotonic() + 30
    while not member.assignment() and time.monotonic() < deadline:
        member.poll(0.5)
    try:
        spec = write_spec(tmp_path / "spec.json", unique("run"), a, b, topics={"names": [topic]}, consumer_groups_regex="busy-g")
        report = json.loads(mirror("run", "--spec", str(spec)).stdout)
        assert [g["state"] for g in report["groups"]] == ["active_on_target"]
    finally:
        member.close()


def test_compaction_gaps_translate_exactly(clusters, tmp_path):
    """The log cleaner removes superseded records, leaving holes in the source offsets; groups
    committed inside the holes must resume on the target at the next surviving record."""
    a, b = clusters
    topic = unique("compacted")
    create_topic(a, topic, 1, {
        "cleanup.policy": "compact", "segment.ms": "200", "min.cleanable.dirty.ratio": "0.001",
        "min.compaction.lag.ms": "0", "delete.retention.ms": "0",
    })
    base = int(time.time() * 1000)
    # Ten keys written over and over: almost every early offset is superseded.
    for round_ in range(40):
        produce(a, topic, [(0, f"k{i}".encode(), f"v{round_}-{i}".encode() + b"x" * 200, None, base + round_ * 10 + i) for i in range(10)])
    deadline = time.monotonic() + 120
    offsets = []
    while time.monotonic() < deadline:
        produce(a, topic, [(0, f"tick-{time.monotonic_ns()}".encode(), b"t", None, None)])  # lets segments roll
        offsets = [r[0] for r in read_partition(a, topic, 0)]
        if len(offsets) < max(offsets) / 2:
            break
        time.sleep(3)
    assert len(offsets) < max(offsets) / 2, f"the log cleaner did not compact {topic} within 120 s"
    # Freeze both sides: no more cleaning on the source, none at all on the target.
    Kafka(a).set_config(topic, "cleanup.policy", "delete")
    create_topic(b, topic, 1, {"cleanup.policy": "delete", "retention.ms": "-1"})
    offsets = [r[0] for r in read_partition(a, topic, 0)]
    holes = [o for o in range(0, offsets[-1]) if o not in set(offsets)]
    group_offsets = {f"compact-g{i}": o for i, o in enumerate([holes[0], holes[len(holes) // 2], holes[-1], offsets[-1] + 1])}
    for g, o in group_offsets.items():
        commit_group(a, g, topic, {0: o})
    spec = write_spec(tmp_path / "spec.json", unique("run"), a, b, topics={"names": [topic]}, consumer_groups_regex="compact-g.*")
    report = json.loads(mirror("run", "--spec", str(spec)).stdout)
    assert {g["state"] for g in report["groups"]} == {"translated"}
    source, target = read_partition(a, topic, 0), read_partition(b, topic, 0)
    for g, c in group_offsets.items():
        t = committed(b, g, topic, 1)[0]
        assert contents([r for r in target if r[0] >= t]) == contents([r for r in source if r[0] >= c]), g
    assert "0 mismatch(es)" in mirror("verify", "--spec", str(spec)).stdout
