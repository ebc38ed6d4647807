"""ferry-mirror at the edges (issue 8): partitions with nothing to copy, committed-only counts, one
final report per run, SIGTERM at width, status of an unreachable cluster."""

import json
import os
import random
import signal
import subprocess
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from conftest import Kafka, peer
from mirror_util import (
    MIRROR,
    commit_group,
    committed,
    contents,
    create_topic,
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


def records(n, partitions, tag="r"):
    base = int(time.time() * 1000) - 60_000
    return [(i % partitions, f"{tag}-k{i}".encode(), f"{tag}-v{i}".encode() * 3, None, base + i) for i in range(n)]


def delete_records(bootstrap, topic, partition, before):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.delete_records([TopicPartition(topic, partition, before)])
    for f in futures.values():
        f.result(timeout=30)


def watermarks(bootstrap, topic, partition):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("wm")})
    low, high = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=15)
    c.close()
    return low, high


def test_partitions_with_nothing_to_copy_count_as_caught_up(clusters, tmp_path):
    """Emptied by DeleteRecords (log start = end = 500), aborted-only, and empty: each counts as
    caught up, next to a topic with records; the counts are exact."""
    a, b = clusters
    full, emptied, aborted, empty = (unique(n) for n in ("full", "emptied", "aborted", "empty"))
    create_topic(a, full, 2)
    produce(a, full, records(1000, 2))
    create_topic(a, emptied, 1)
    produce(a, emptied, records(500, 1, "e"))
    delete_records(a, emptied, 0, 500)
    assert watermarks(a, emptied, 0) == (500, 500)
    create_topic(a, aborted, 1)
    produce(a, aborted, records(300, 1, "x"), transactional_id=f"{aborted}-tx", abort=True)
    create_topic(a, empty, 2)
    commit_group(a, "edge-g1", full, {0: 100, 1: 500})
    commit_group(a, "edge-g1", emptied, {0: 500})
    commit_group(a, "edge-g1", aborted, {0: 0})
    spec = write_spec(
        tmp_path / "spec.json", unique("run"), a, b,
        topics={"names": [full, emptied, aborted, empty]}, consumer_groups_regex="edge-g1",
    )
    started = time.monotonic()
    run = mirror("run", "--spec", str(spec), timeout=300)
    print(f"run with empty partitions completed in {time.monotonic() - started:.1f}s")
    report = json.loads(run.stdout)
    assert report["partitions"] == 6
    assert report["records_copied"] == 1000, report
    assert [g["state"] for g in report["groups"]] == ["translated"], report["groups"]
    for p in range(2):
        assert contents(read_partition(b, full, p)) == contents(read_partition(a, full, p))
    for topic in (emptied, aborted, empty):
        assert read_partition(b, topic, 0) == [], topic
    # The group committed past the emptied and aborted ranges resumes at the (empty) end.
    assert committed(b, "edge-g1", full, 2) == {0: 100, 1: 500}
    status = json.loads(mirror("status", "--spec", str(spec), "--json").stdout)
    assert status["state"] == "complete"
    assert status["records_copied"] == 1000, status["records_copied"]
    assert "0 mismatch(es)" in mirror("verify", "--spec", str(spec)).stdout


def test_two_workers_write_one_report(clusters, tmp_path):
    """Both workers finish; the groups are translated and the report written once, and both
    print that one report."""
    a, b = clusters
    topic = unique("once")
    create_topic(a, topic, 4)
    produce(a, topic, records(4000, 4))
    commit_group(a, "once-g", topic, {p: 10 for p in range(4)})
    spec = write_spec(tmp_path / "spec.json", unique("run"), a, b, topics={"names": [topic]}, consumer_groups_regex="once-g")
    workers = [start_worker(spec, w, tmp_path) for w in ("w1", "w2")]
    for w, proc in zip(("w1", "w2"), workers):
        assert proc.wait(timeout=300) == 0, (tmp_path / f"{w}.log").read_text()[-3000:]
    printed = []
    for w in ("w1", "w2"):
        lines = (tmp_path / f"{w}.log").read_text().splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("{"))
        end = next(i for i in range(start, len(lines)) if lines[i].startswith("}"))
        printed.append(json.loads("\n".join(lines[start:end + 1])))
    assert printed[0] == printed[1], "both workers print the run's one report"
    assert printed[0]["records_copied"] == 4000
    # Exactly one committed report record in the status topic.
    status_topic = f"__ferry.{json.loads(spec.read_text())['run_id']}.status"
    reports = [r for r in read_partition(b, status_topic, 0) if r[1] == b"report"]
    assert len(reports) == 1, f"{len(reports)} reports written"


def test_sigterm_stops_a_wide_worker_and_the_copy_resumes_exactly(clusters, tmp_path):
    a, b = clusters
    topic = unique("wide")
    partitions = 200
    create_topic(a, topic, partitions)
    # 100 MB, and the signal as soon as the worker has taken its slots: a worker that starts
    # quickly must still be copying when it is stopped (a fixed sleep let it finish first).
    n = partitions * 500
    base = int(time.time() * 1000) - 60_000
    produce(a, topic, ((i % partitions, f"k{i}".encode(), f"v{i}".encode().ljust(1000, b"."), None, base + i)
                       for i in range(n)))
    spec = write_spec(tmp_path / "spec.json", unique("run"), a, b, topics={"names": [topic]})
    worker = start_worker(spec, "w1", tmp_path)
    deadline = time.monotonic() + 120
    while b"slots assigned" not in (tmp_path / "w1.log").read_bytes() and worker.poll() is None:
        assert time.monotonic() < deadline, (tmp_path / "w1.log").read_text()[-3000:]
        time.sleep(0.05)
    assert worker.poll() is None, "the worker finished before it could be stopped"
    sent = time.monotonic()
    os.killpg(worker.pid, signal.SIGTERM)
    code = worker.wait(timeout=60)
    print(f"SIGTERM to exit with {partitions} partitions: {time.monotonic() - sent:.1f}s")
    assert code == 0, (tmp_path / "w1.log").read_text()[-3000:]
    # What the stopped worker committed stands; a new worker copies the rest exactly once.
    report = json.loads(mirror("run", "--spec", str(spec), timeout=600).stdout)
    assert report["records_copied"] == n
    copied = {p: read_partition(b, topic, p) for p in range(partitions)}
    assert sum(len(r) for r in copied.values()) == n
    for p in random.Random(1).sample(range(partitions), 10):
        assert contents(copied[p]) == contents(read_partition(a, topic, p)), p


def test_status_of_an_unreachable_target_says_so(tmp_path):
    spec = write_spec(tmp_path / "spec.json", "unreachable-status", "127.0.0.1:1", "127.0.0.1:2", topics={"names": ["t"]})
    data = json.loads(spec.read_text())
    data["target"]["timeout_seconds"] = 3
    spec.write_text(json.dumps(data))
    proc = mirror("status", "--spec", str(spec), check=False, timeout=120)
    assert proc.returncode == 1
    assert "could not reach Kafka at 127.0.0.1:2" in proc.stderr, proc.stderr


def test_verify_reads_hundreds_of_group_partitions_in_batches(clusters, tmp_path):
    """verify at 300 group-partitions (5 groups x 60 partitions, at the start, inside, and at the
    end of the partitions) finds the one planted wrong translation and nothing else; its time is
    printed. FERRY_MIRROR_VERIFY_COMPARE=<another ferry-mirror> also times that binary's verify
    on the same run (for before/after figures)."""
    a, b = clusters
    topic = unique("verify-wide")
    partitions = 60
    create_topic(a, topic, partitions)
    produce(a, topic, records(partitions * 50, partitions))
    rnd = random.Random(11)
    groups = {
        "vw-g0": {p: 0 for p in range(partitions)},
        "vw-g1": {p: rnd.randrange(1, 50) for p in range(partitions)},
        "vw-g2": {p: 50 for p in range(partitions)},
        "vw-g3": {p: rnd.randrange(1, 50) for p in range(partitions)},
        "vw-g4": {p: rnd.choice([0, 25, 49, 50]) for p in range(partitions)},
    }
    for g, offsets in groups.items():
        commit_group(a, g, topic, offsets)
    spec = write_spec(tmp_path / "spec.json", unique("run"), a, b, topics={"names": [topic]}, consumer_groups_regex="vw-g.*")
    report = json.loads(mirror("run", "--spec", str(spec), timeout=600).stdout)
    assert {g["state"] for g in report["groups"]} == {"translated"}, report["groups"]
    translated = committed(b, "vw-g1", topic, partitions)
    commit_group(b, "vw-g1", topic, {7: translated[7] + 1})  # one record too far
    started = time.monotonic()
    proc = mirror("verify", "--spec", str(spec), "--json", check=False, timeout=900)
    elapsed = time.monotonic() - started
    rows = json.loads(proc.stdout)
    print(f"verify of {len(rows)} group-partitions: {elapsed:.1f}s")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert len(rows) == 5 * partitions
    bad = [(r["group"], r["partition"], r["outcome"]["kind"]) for r in rows if r["result"] != "ok"]
    assert bad == [("vw-g1", 7, "record_differs")], bad
    other = os.environ.get("FERRY_MIRROR_VERIFY_COMPARE")
    if other:
        started = time.monotonic()
        subprocess.run([other, "verify", "--spec", str(spec), "--json"], capture_output=True, timeout=3600)
        print(f"verify of {len(rows)} group-partitions by {other}: {time.monotonic() - started:.1f}s")

def test_a_partition_compacted_to_nothing_counts_as_caught_up(clusters, tmp_path):
    """A compacted partition where every key ends in a tombstone and the log cleaner removed
    the records and then the tombstones: offsets 0..end, nothing readable. The segments are
    rolled by aborted transactions (a plain record would stay readable in the active segment),
    so what is left besides the holes is aborted data and transaction markers, which a
    read_committed reader passes too. The run completes, copies nothing from it, and a group
    committed inside it translates to the target's (empty) start."""
    a, b = clusters
    topic, full = unique("compacted-empty"), unique("full")
    create_topic(a, topic, 1, {
        "cleanup.policy": "compact", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.001",
        "min.compaction.lag.ms": "0", "delete.retention.ms": "0", "max.compaction.lag.ms": "1000",
    })
    keys = [f"k{i}".encode() for i in range(20)]
    for round_ in range(5):
        produce(a, topic, [(0, k, f"v{round_}".encode() * 50, None, None) for k in keys])
    produce(a, topic, [(0, k, None, None, None) for k in keys])
    create_topic(a, full, 1)
    produce(a, full, records(100, 1))

    ticker = Producer({"bootstrap.servers": a, "transactional.id": f"{topic}-tick"})
    ticker.init_transactions(30)

    def tick():
        # Rolls the segment holding the tombstones, and leaves nothing a read_committed reader
        # sees: the record is written (flushed) before its transaction is aborted.
        time.sleep(0.3)
        ticker.begin_transaction()
        ticker.produce(topic, key=b"tick", value=b"t", partition=0)
        assert ticker.flush(30) == 0
        ticker.abort_transaction(30)

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        tick()
        if read_partition(a, topic, 0) == []:
            break
        time.sleep(2)
    assert read_partition(a, topic, 0) == [], f"the log cleaner did not remove every record of {topic} within 180 s"
    low, end = watermarks(a, topic, 0)
    assert end > low, (low, end)
    print(f"{topic}: offsets {low}..{end}, nothing readable")
    # Freeze it: nothing more to clean on the source while it is copied.
    Kafka(a).set_config(topic, "cleanup.policy", "delete")
    commit_group(a, "cnothing-g", topic, {0: end // 2})
    commit_group(a, "cnothing-g", full, {0: 40})
    spec = write_spec(
        tmp_path / "spec.json", unique("run"), a, b, topics={"names": [topic, full]}, consumer_groups_regex="cnothing-g",
    )
    run = mirror("run", "--spec", str(spec), timeout=300)
    report = json.loads(run.stdout)
    assert report["records_copied"] == 100, report
    assert [g["state"] for g in report["groups"]] == ["translated"], report["groups"]
    assert read_partition(b, topic, 0) == []
    assert contents(read_partition(b, full, 0)) == contents(read_partition(a, full, 0))
    assert committed(b, "cnothing-g", topic, 1) == {0: 0}
    assert "0 mismatch(es)" in mirror("verify", "--spec", str(spec)).stdout

def test_target_topic_holding_records_is_refused_unless_appending_is_allowed(clusters, tmp_path):
    """A target topic with records the run did not copy stops the run with the topic and its
    record count named; target_may_hold_records appends after them and says so in the log and
    the status. The run's own copies never count as someone else's: a restarted run, and one
    started before runs recorded their target topics (its record withdrawn here), go on."""
    a, b = clusters
    topic = unique("held")
    create_topic(a, topic, 3)
    produce(a, topic, records(600, 3))
    create_topic(b, topic, 3)
    produce(b, topic, records(120, 3, "foreign"))
    spec = write_spec(tmp_path / "spec.json", unique("run"), a, b, topics={"names": [topic]})
    proc = mirror("run", "--spec", str(spec), check=False, timeout=300)
    assert proc.returncode == 1, proc.stdout
    assert f"target topic {topic} (120 records) already holds records this run did not copy" in proc.stderr, proc.stderr[-3000:]
    assert "target_may_hold_records" in proc.stderr
    assert sum(len(read_partition(b, topic, p)) for p in range(3)) == 120, "nothing was copied"

    data = json.loads(spec.read_text())
    data.update(version=3, target_may_hold_records=True)
    spec.write_text(json.dumps(data))
    proc = mirror("run", "--spec", str(spec), timeout=300)
    assert json.loads(proc.stdout)["records_copied"] == 600
    assert "TARGET TOPIC HELD RECORDS BEFORE THIS RUN" in proc.stderr and "120" in proc.stderr, proc.stderr[-3000:]
    for p in range(3):
        target, source = read_partition(b, topic, p), read_partition(a, topic, p)
        assert contents(target[-len(source):]) == contents(source), p
        assert len(target) == len(source) + 40, p
    status = json.loads(mirror("status", "--spec", str(spec), "--json").stdout)
    assert [(t["target_topic"], t["records_before"]) for t in status["appended_to"]] == [(topic, 120)]
    assert f"WARNING: target topic {topic} held 120 records" in mirror("status", "--spec", str(spec)).stdout


def test_a_run_recognises_its_own_copies_in_the_target(clusters, tmp_path):
    a, b = clusters
    topic = unique("own")
    create_topic(a, topic, 2)
    produce(a, topic, records(400, 2))
    spec = write_spec(tmp_path / "spec.json", unique("run"), a, b, topics={"names": [topic]})
    mirror("run", "--spec", str(spec), timeout=300)
    # Run again: the topic is recorded as the run's own.
    mirror("run", "--spec", str(spec), timeout=300)
    # A run from before target topics were recorded: its progress shows the records are its own.
    run_id = json.loads(spec.read_text())["run_id"]
    produce(b, f"__ferry.{run_id}.status", [(0, f"target/{topic}".encode(), None, None, None)])
    produce(a, topic, records(100, 2, "more"))
    spec2 = write_spec(tmp_path / "spec2.json", run_id, a, b, topics={"names": [topic]}, mode="continuous")
    worker = start_worker(spec2, "w1", tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and sum(len(read_partition(b, topic, p)) for p in range(2)) < 500:
        assert worker.poll() is None, (tmp_path / "w1.log").read_text()[-3000:]
        time.sleep(1)
    os.killpg(worker.pid, signal.SIGTERM)
    assert worker.wait(timeout=60) == 0, (tmp_path / "w1.log").read_text()[-3000:]
    for p in range(2):
        assert contents(read_partition(b, topic, p)) == contents(read_partition(a, topic, p)), p


@pytest.mark.skipif(not os.environ.get("FERRY_VERIFY_WIDE"), reason="a measurement: set FERRY_VERIFY_WIDE=1")
def test_verify_at_ten_thousand_group_partitions(clusters, tmp_path):
    """verify's time at 10,000 group-partitions (20 groups x 500 partitions), printed. No copy
    is run (one worker takes long to copy 500 partitions today): the target topic gets the same
    records at the same offsets, the groups the same offsets on both sides, and the run's offset
    map stays empty, so verify compares the records the groups resume at; one planted mismatch."""
    a, b = clusters
    topic = unique("verify-10k")
    partitions, per_partition, groups = 500, 100, 20
    data = records(partitions * per_partition, partitions)
    for side in (a, b):
        create_topic(side, topic, partitions)
        produce(side, topic, data)
    run_id = unique("run")
    create_topic(b, f"__ferry.{run_id}.offsets", 1, {"cleanup.policy": "compact"})
    rnd = random.Random(5)
    for g in range(groups):
        # Half the groups caught up (at the end), the rest anywhere in the partition.
        offsets = {p: per_partition if g % 2 else rnd.randrange(0, per_partition) for p in range(partitions)}
        commit_group(a, f"vk-g{g}", topic, offsets)
        if g == 0:
            offsets[3] += 1
        commit_group(b, f"vk-g{g}", topic, offsets)
    spec = write_spec(tmp_path / "spec.json", run_id, a, b, topics={"names": [topic]}, consumer_groups_regex="vk-g.*")
    started = time.monotonic()
    proc = mirror("verify", "--spec", str(spec), "--json", check=False, timeout=1800)
    elapsed = time.monotonic() - started
    rows = json.loads(proc.stdout)
    print(f"verify of {len(rows)} group-partitions: {elapsed:.1f}s")
    assert len(rows) == groups * partitions
    assert [(r["group"], r["partition"]) for r in rows if r["result"] != "ok"] == [("vk-g0", 3)]


def test_a_slot_fenced_without_a_takeover_is_taken_again(clusters, tmp_path):
    """Every slot's transactional id is fenced from outside while the worker keeps its slots
    (what a broker that ends a transaction which outlived its timeout does too): nobody takes
    the slots over, so the worker must take them again itself, and still copy exactly once."""
    a, b = clusters
    topic, slots, partitions = unique("fenced"), 4, 4
    create_topic(a, topic, partitions)
    run_id = unique("run")
    spec = write_spec(tmp_path / "spec.json", run_id, a, b, topics={"names": [topic]}, mode="continuous")
    config = json.loads(spec.read_text())
    config["tuning"]["slots"] = slots
    config["version"] = 3
    spec.write_text(json.dumps(config))
    total = produce(a, topic, records(2_000, partitions, "before"))
    worker = start_worker(spec, "w1", tmp_path)
    log = tmp_path / "w1.log"

    def copied():
        proc = mirror("status", "--spec", str(spec), "--json", check=False, timeout=120)
        return json.loads(proc.stdout)["records_copied"] if proc.returncode == 0 else None

    def wait_copied(n, what):
        deadline = time.monotonic() + 300
        while copied() != n:
            assert worker.poll() is None, f"the worker exited while {what}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"{what}: not {n} records copied:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)

    try:
        wait_copied(total, "copying the first records")
        # What a new owner does first: initialise transactions under each slot's id.
        for slot in range(slots):
            fencer = Producer({"bootstrap.servers": b, "transactional.id": f"ferry-mirror.{run_id}.slot.{slot}"})
            fencer.init_transactions(30)
            del fencer
        total += produce(a, topic, records(2_000, partitions, "after"))
        wait_copied(total, "copying after every slot was fenced")
        assert "rejoining the slots group to take it again" in log.read_text()
        os.killpg(worker.pid, signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=60)
    for p in range(partitions):
        source, target = read_partition(a, topic, p), read_partition(b, topic, p)
        assert contents(target) == contents(source), f"partition {p} differs"
