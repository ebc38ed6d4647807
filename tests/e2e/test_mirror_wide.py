"""ferry-mirror at width (issue 8): a run of many partitions shares a bounded number of work slots;
workers SIGKILLed at random and restarted lose and duplicate nothing, and the offset map is exact."""

import json
import os
import random
import re
import time

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from conftest import peer
from mirror_util import MIRROR, commit_group, create_topic, digest, kill, mirror, produce, start_worker, write_spec


@pytest.fixture(scope="module")
def clusters():
    if not MIRROR.exists():
        pytest.fail(f"{MIRROR} is missing: cargo build -p ferry-mirror")
    return peer("FERRY_KAFKA_A"), peer("FERRY_KAFKA_B")


def unique(name):
    return f"{name}-{os.getpid()}-{random.randrange(1 << 30)}"


def read_topic(bootstrap, topic, partitions):
    """Every committed record of a topic by partition, in one consumer: {partition: [(offset, key,
    value, headers, ts)]}. Reading 600 partitions one by one would take minutes."""
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": unique("wide-reader"),
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
    })
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out = {p: [] for p in range(partitions)}
    at_end = set()
    idle = time.monotonic()
    while len(at_end) < partitions:
        msgs = c.consume(10000, timeout=1.0)
        if not msgs and time.monotonic() - idle > 60:
            raise AssertionError(f"stuck reading {topic}: {partitions - len(at_end)} partitions not at their end")
        for m in msgs:
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(m.partition())
                    continue
                raise AssertionError(m.error())
            idle = time.monotonic()
            at_end.discard(m.partition())
            out[m.partition()].append((m.offset(), m.key(), m.value(), m.headers(), m.timestamp()[1]))
    c.close()
    return out


def delete_topics(bootstrap, names):
    """Wide topics left on the shared peers slow every later broker restart (each partition is
    loaded at start-up), so this test removes what it created."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = admin.list_topics(timeout=30).topics
    names = [n for n in names if n in existing]
    for future in admin.delete_topics(names, operation_timeout=60).values() if names else []:
        future.result(timeout=60)


def proc_figures(pid):
    """Threads, open file descriptors and resident MB of a live process, from /proc."""
    try:
        threads = len(os.listdir(f"/proc/{pid}/task"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        rss = next(int(line.split()[1]) // 1024 for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS:"))
        return threads, fds, rss
    except (FileNotFoundError, ProcessLookupError, StopIteration):
        return None


def test_wide_run_with_workers_killed_at_random_is_exact(clusters, tmp_path):
    a, b = clusters
    topic, run_id = unique("wide"), unique("run")
    try:
        run_wide(a, b, topic, run_id, tmp_path)
    finally:
        delete_topics(a, [topic])
        delete_topics(b, [topic] + [f"__ferry.{run_id}.{k}" for k in ("offsets", "status", "slots")])


def run_wide(a, b, topic, run_id, tmp_path):
    partitions = int(os.environ.get("FERRY_WIDE_PARTITIONS", "600"))
    per_partition = 1000
    create_topic(a, topic, partitions)
    n = partitions * per_partition
    base = int(time.time() * 1000) - 3_600_000
    produce(a, topic, ((i % partitions, f"k{i}".encode(), os.urandom(200), None, base + i) for i in range(n)))
    # Source gaps: a committed transaction leaves a marker in some partitions, so source and
    # target offsets differ there and the offset map has to be exact, not the identity.
    produce(a, topic, ((p, f"tx{p}".encode(), b"t", None, base + n + p) for p in range(0, partitions, 7)),
            transactional_id=f"{topic}-tx")
    produce(a, topic, ((p, f"late{p}".encode(), b"l", None, base + n + p) for p in range(0, partitions, 7)))
    group = unique("wide-g")
    positions = {p: random.Random(p).randrange(1, per_partition) for p in range(0, partitions, 5)}
    commit_group(a, group, topic, positions)
    spec = write_spec(
        tmp_path / "spec.json", run_id, a, b, topics={"names": [topic]}, consumer_groups_regex=group,
        version=3, tuning={"transaction_max_ms": 500, "status_interval_ms": 500, "slots": 16},
    )
    workers = {w: start_worker(spec, w, tmp_path) for w in ("w1", "w2", "w3")}
    kills, figures = 0, []
    deadline = time.monotonic() + 1800
    rnd = random.Random(8)
    while any(p.poll() is None for p in workers.values()) and time.monotonic() < deadline:
        time.sleep(rnd.uniform(2, 6))
        live = [w for w, p in workers.items() if p.poll() is None]
        for w in live:
            f = proc_figures(workers[w].pid)
            if f:
                figures.append(f)
        if not live or kills >= 10:
            continue
        victim = rnd.choice(live)
        kill(workers[victim])
        kills += 1
        # Half the restarts come back under the same id (static membership gives the slots back
        # at once), half under a new one (the killed worker's slots move after its session).
        new_id = victim if kills % 2 else f"{victim}r{kills}"
        del workers[victim]
        workers[new_id] = start_worker(spec, new_id, tmp_path)
    try:
        for w, p in workers.items():
            assert p.wait(timeout=max(1, deadline - time.monotonic())) == 0, (tmp_path / f"{w}.log").read_text()[-3000:]
    finally:
        for p in workers.values():
            kill(p)
    threads, fds, rss = (max(f[i] for f in figures) for i in range(3)) if figures else (0, 0, 0)
    print(f"\n{partitions} partitions, 16 slots, 3 workers, {kills} SIGKILLs; per worker at most "
          f"{threads} threads, {fds} fds, {rss} MB resident")
    assert kills >= 3, "the copy finished before the chaos started; raise FERRY_WIDE_PARTITIONS"
    # One producer per owned slot (16 at most) and a fixed set of clients, not one producer
    # (four threads, eight fds) per partition.
    assert figures and threads < partitions // 2, f"{threads} threads for {partitions} partitions"

    src, dst = read_topic(a, topic, partitions), read_topic(b, topic, partitions)
    total = 0
    for p in range(partitions):
        assert len(dst[p]) == len(src[p]), f"partition {p}: {len(src[p])} source records, {len(dst[p])} on the target"
        assert digest(dst[p]) == digest(src[p]), f"partition {p}: contents differ"
        total += len(dst[p])
    assert total == n + 2 * len(range(0, partitions, 7))

    # The offset map is exact: each translated group position is the target offset of the very
    # record the group would have read next on the source.
    report = json.loads(mirror("status", "--spec", str(spec), "--json").stdout)["report"]
    assert report["records_copied"] == total, report
    [g] = [g for g in report["groups"] if g["group"] == group]
    assert g["state"] == "translated", g
    translated = {x["partition"]: x["target_offset"] for x in g["partitions"]}
    assert set(translated) == set(positions)
    for p, source_offset in positions.items():
        s_rec = next(r for r in src[p] if r[0] >= source_offset)
        t_rec = next(r for r in dst[p] if r[0] == translated[p])
        assert t_rec[1:] == s_rec[1:], f"partition {p}: group at {source_offset} translated to {translated[p]}"
    verify = mirror("verify", "--spec", str(spec), "--json")
    rows = json.loads(verify.stdout)
    assert len(rows) == len(positions) and all(r["result"] == "ok" for r in rows), verify.stdout[-2000:]


def test_a_run_creating_a_wide_target_copies_as_the_target_logs_appear(clusters, tmp_path):
    """A broker names a new topic's leaders before it has made the partitions' logs, and makes
    them a few hundred to a few thousand a second. The worker copies each partition once its
    target log exists instead of waiting for the last one; the copy is exact either way.

    5,001 partitions: the run creates the target in two steps (5,000, then one more), and the
    broker publishes the second step only after making the first step's logs. The worker goes
    on at the first step; the last partition is copied once its slot's producer knows it."""
    a, b = clusters
    topic, run_id = unique("wide-new"), unique("run")
    partitions = int(os.environ.get("FERRY_WIDE_NEW_PARTITIONS", "5001"))
    try:
        create_topic(a, topic, partitions)
        produce(a, topic, ((i % partitions, f"k{i}".encode(), os.urandom(100), None, None) for i in range(2 * partitions)))
        spec = write_spec(tmp_path / "spec.json", run_id, a, b, topics={"names": [topic]})
        # Debug level: each check that adds partitions says how many.
        worker = start_worker(spec, "w1", tmp_path, env={**os.environ, "FERRY_LOG": "ferry_mirror=debug"})
        try:
            assert worker.wait(timeout=900) == 0, (tmp_path / "w1.log").read_text()[-3000:]
        finally:
            kill(worker)
        log = (tmp_path / "w1.log").read_text()
        waiting = sum(int(n) for n in re.findall(r"target partitions not writable yet.*?waiting=(\d+)", log))
        added = sum(int(n) for n in re.findall(r"target partitions now have logs: copying them.*?added=(\d+)", log))
        first_step = re.search(r"target topic ready at its first step.*?partitions=(\d+)", log)
        print(f"\n{partitions} target partitions created by the run: the worker went on at "
              f"{first_step.group(1) if first_step else partitions} of them; {waiting} waited for their log at the "
              f"first assignment, {added} added to the copy as their logs appeared")
        # Each partition that waited was copied once its log appeared (else the run would not end,
        # or would end short), and none was added twice.
        assert added == waiting, log[-3000:]
        src, dst = read_topic(a, topic, partitions), read_topic(b, topic, partitions)
        for p in range(partitions):
            assert digest(dst[p]) == digest(src[p]), f"partition {p}: contents differ"
        report = json.loads(mirror("status", "--spec", str(spec), "--json").stdout)["report"]
        assert report["records_copied"] == 2 * partitions, report
    finally:
        delete_topics(a, [topic])
        delete_topics(b, [topic] + [f"__ferry.{run_id}.{k}" for k in ("offsets", "status", "slots")])


def test_a_run_started_with_per_partition_transactional_ids_is_refused(clusters, tmp_path):
    """What an earlier release leaves behind: progress on the target and no slots topic. Taking
    such a run over could copy a partition twice, so the worker refuses it and says why."""
    a, b = clusters
    topic, run_id = unique("old-run"), unique("run")
    try:
        create_topic(a, topic, 2)
        produce(a, topic, ((i % 2, f"k{i}".encode(), b"v", None, None) for i in range(20)))
        create_topic(b, topic, 2)
        commit_group(b, f"ferry-mirror.{run_id}.progress", topic, {0: 5})
        spec = write_spec(tmp_path / "spec.json", run_id, a, b, topics={"names": [topic]})
        proc = mirror("run", "--spec", str(spec), "--worker-id", "w1", check=False, timeout=300)
        assert proc.returncode == 1, proc.stderr[-2000:]
        assert "one transactional id per partition" in proc.stderr, proc.stderr[-2000:]
        assert f"__ferry.{run_id}.slots" in proc.stderr
        slots_topic = AdminClient({"bootstrap.servers": b}).list_topics(timeout=30).topics.get(f"__ferry.{run_id}.slots")
        assert slots_topic is None, "a refused run gets no slots topic"
    finally:
        delete_topics(a, [topic])
        delete_topics(b, [topic] + [f"__ferry.{run_id}.{k}" for k in ("offsets", "status", "slots")])
