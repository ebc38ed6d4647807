"""Throughput and memory of ferry-mirror against MirrorMaker 2 and the brokers' own ceiling.

Everything runs in this process tree on the same two loopback clusters (A = source, B = target)
and the same source data. Prints a table; a benchmark, not a test: nothing here asserts a speed.

  make bench-mirror                  # FERRY_BENCH_GB=2 by default

Data kinds (FERRY_BENCH_DATA, default "text,random"): `text` is JSON-like text values of 200-2000
bytes (lz4 shrinks it several times), `random` is incompressible random 1 KiB values. For each kind
the same records are copied by every contender, and the produce ceiling is those same records
produced to the target by librdkafka (acks=all, lz4) timed in this process (no JVM or process start).
The wide case (FERRY_BENCH_WIDE partitions, default 1000; 0 skips it) copies small records from
that many partitions with 2 workers, bounded by FERRY_BENCH_WIDE_SECONDS (default 300), and prints
time to the first copied record, threads, fds and peak RSS per worker.
"""

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from conftest import PEERS  # noqa: E402

A, B = PEERS["FERRY_KAFKA_A"], PEERS["FERRY_KAFKA_B"]
LIBS, JAVA = PEERS["FERRY_KAFKA_LIBS"], PEERS["FERRY_JAVA"]
MIRROR = Path(os.environ.get("FERRY_MIRROR_BIN", REPO / "target" / "release" / "ferry-mirror"))
GB = float(os.environ.get("FERRY_BENCH_GB", "2"))
PARTITIONS = int(os.environ.get("FERRY_BENCH_PARTITIONS", "12"))
KINDS = [k for k in os.environ.get("FERRY_BENCH_DATA", "text,random").split(",") if k]
WIDE = int(os.environ.get("FERRY_BENCH_WIDE", "1000"))
WIDE_SECONDS = float(os.environ.get("FERRY_BENCH_WIDE_SECONDS", "300"))
ALO = os.environ.get("FERRY_BENCH_ALO") == "1"
WORK = Path(tempfile.mkdtemp(prefix="ferry-bench-"))


class PeakRss:
    """Polls VmHWM (peak resident set) of a set of processes until they exit."""

    def __init__(self):
        self.peaks = {}
        self.stop = False
        self.pids = set()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def watch(self, pid):
        self.pids.add(pid)

    def run(self):
        while not self.stop:
            for pid in list(self.pids):
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            self.peaks[pid] = max(self.peaks.get(pid, 0), int(line.split()[1]) * 1024)
                except OSError:
                    self.pids.discard(pid)
            time.sleep(0.1)

    def total_mb(self):
        self.stop = True
        self.thread.join()
        return sum(self.peaks.values()) / 1e6


_ADMINS = {}


def admin(bs):
    # Kept alive: futures fail if their client is garbage-collected first.
    if bs not in _ADMINS:
        _ADMINS[bs] = AdminClient({"bootstrap.servers": bs})
    return _ADMINS[bs]


def end_offsets(bs, topic, partitions):
    c = Consumer({"bootstrap.servers": bs, "group.id": "bench-probe"})
    total = sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions))
    c.close()
    return total


def generate(kind):
    """The benchmark's records, as (key, value) pairs, forever; the same sequence every call."""
    rnd = random.Random(1)
    if kind == "random":
        # 4 MiB of distinct random values: repeats are further apart than lz4's 64 KiB window.
        blobs = [rnd.randbytes(1024) for _ in range(4096)]
    else:
        # Realistic-ish records: JSON-like text values of 200–2000 bytes, 16-byte keys.
        blobs = [("{\"event\":\"order\",\"payload\":\"" + "".join(rnd.choice("abcdefghijklmnop0123456789") for _ in range(n)) + "\"}").encode()
                 for n in (200, 500, 800, 1200, 2000)]
    n = 0
    while True:
        yield f"customer-{n % 100000:07d}".encode(), blobs[n % len(blobs)]
        n += 1


def produce_all(bs, topic, kind, target_bytes, partitions, acks):
    """Produces `target_bytes` of the kind's records; returns (records, bytes, seconds)."""
    p = Producer({"bootstrap.servers": bs, "linger.ms": 20, "batch.size": 1 << 20, "compression.type": "lz4",
                  "acks": acks, "queue.buffering.max.kbytes": 262144})
    sent = n = 0
    started = time.monotonic()
    for key, v in generate(kind):
        if sent >= target_bytes:
            break
        while True:
            try:
                p.produce(topic, key=key, value=v, partition=n % partitions)
                break
            except BufferError:
                p.poll(0.01)
        sent += len(v) + len(key)
        n += 1
        if n % 20000 == 0:
            p.poll(0)
    p.flush(300)
    return n, sent, time.monotonic() - started


def fill(topic, kind):
    a = admin(A)
    a.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result()
    time.sleep(2)
    return produce_all(A, topic, kind, GB * 1e9, PARTITIONS, 1)


def run_produce_ceiling(kind, records, source_bytes):
    topic = f"bench-ceiling-{kind}-{int(time.time())}"
    admin(B).create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result()
    time.sleep(2)
    n, sent, secs = produce_all(B, topic, kind, source_bytes, PARTITIONS, "all")
    admin(B).delete_topics([topic])
    return dict(name="ceiling: the same records produced to the target", seconds=secs, mb_s=sent / 1e6 / secs,
                rss_mb=0, ok=n == records,
                note="librdkafka producer in the bench process, acks=all, lz4, linger 20 ms, 1 MiB batches; no process start")


def run_ferry(topic, records, source_bytes, workers, exactly_once):
    run_id = f"bench-{workers}w-{'eos' if exactly_once else 'alo'}-{time.time_ns()}"
    prefix = run_id + "."
    spec = {
        "version": 1, "run_id": run_id,
        "source": {"bootstrap_servers": [A]}, "target": {"bootstrap_servers": [B]},
        "topics": {"names": [topic]}, "topic_name_prefix": prefix,
        "exactly_once": exactly_once, "compression": "lz4",
    }
    path = WORK / f"{run_id}.json"
    path.write_text(json.dumps(spec))
    rss = PeakRss()
    started = time.monotonic()
    procs = [subprocess.Popen([str(MIRROR), "run", "--spec", str(path), "--worker-id", f"w{i}"],
                              stdout=subprocess.DEVNULL, stderr=open(WORK / f"{run_id}-w{i}.log", "w")) for i in range(workers)]
    for pr in procs:
        rss.watch(pr.pid)
    codes = [pr.wait() for pr in procs]
    elapsed = time.monotonic() - started
    copied = end_offsets(B, prefix + topic, PARTITIONS)
    admin(B).delete_topics([prefix + topic])
    ok = all(c == 0 for c in codes)
    return dict(name=f"ferry-mirror {workers} worker(s), {'exactly-once' if exactly_once else 'at-least-once'}",
                seconds=elapsed, mb_s=source_bytes / 1e6 / elapsed, rss_mb=rss.total_mb(), ok=ok,
                note=f"target end offsets {copied} (records + markers) for {records} records")


def run_mm2(topic, records, source_bytes):
    props = WORK / "mm2.properties"
    props.write_text(f"""clusters = A, B
A.bootstrap.servers = {A}
B.bootstrap.servers = {B}
A->B.enabled = true
A->B.topics = {topic}
B->A.enabled = false
replication.factor = 1
offset-syncs.topic.replication.factor = 1
checkpoints.topic.replication.factor = 1
heartbeats.topic.replication.factor = 1
config.storage.replication.factor = 1
offset.storage.replication.factor = 1
status.storage.replication.factor = 1
sync.topic.acls.enabled = false
sync.topic.configs.enabled = false
refresh.topics.interval.seconds = 5
tasks.max = {PARTITIONS}
""")
    log4j = REPO / "tests" / "peers" / "log4j2.properties"
    rss = PeakRss()
    started = time.monotonic()
    # The heap connect-mirror-maker.sh gives it.
    proc = subprocess.Popen([JAVA, "-Xms256M", "-Xmx2G", f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{LIBS}/*",
                             "org.apache.kafka.connect.mirror.MirrorMaker", str(props), "--clusters", "B"],
                            stdout=open(WORK / "mm2.log", "w"), stderr=subprocess.STDOUT)
    rss.watch(proc.pid)
    target = f"A.{topic}"
    done_at = None
    deadline = started + 3600
    while time.monotonic() < deadline:
        time.sleep(1)
        try:
            if end_offsets(B, target, PARTITIONS) >= records:
                done_at = time.monotonic()
                break
        except Exception:
            pass
        if proc.poll() is not None:
            break
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    elapsed = (done_at or time.monotonic()) - started
    admin(B).delete_topics([target])
    return dict(name="MirrorMaker 2 (connect-mirror 4.3.1, dedicated mode)", seconds=elapsed,
                mb_s=source_bytes / 1e6 / elapsed, rss_mb=rss.total_mb(), ok=done_at is not None,
                note="time until the target held every record; includes JVM start")


def run_consume_ceiling(topic, records, source_bytes):
    """Kafka's ConsumerPerformance; its own MB/s (counted from its first fetch, so JVM start excluded)."""
    args = ["org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server", A, "--topic", topic,
            "--messages", str(records), "--timeout", "60000"]
    started = time.monotonic()
    proc = subprocess.run([JAVA, "-Xmx1G", "-cp", f"{LIBS}/*", *args], capture_output=True, text=True)
    elapsed = time.monotonic() - started
    mb_s = source_bytes / 1e6 / elapsed
    for line in proc.stdout.splitlines():
        cols = [c.strip() for c in line.split(",")]
        if len(cols) > 4 and cols[0][:2] == "20":
            # start.time, end.time, data.consumed.in.MB (MiB of values), MB.sec, ...
            mib, mib_s = float(cols[2]), float(cols[3])
            if mib > 0 and mib_s > 0:
                elapsed = mib / mib_s
                mb_s = source_bytes / 1e6 / elapsed
    return dict(name="ceiling: raw consume-only (ConsumerPerformance)", seconds=elapsed, mb_s=mb_s, rss_mb=0,
                ok=proc.returncode == 0, note="its own timing, JVM start excluded")


def process_counts(pid):
    """(threads, open fds) of a live process."""
    try:
        threads = int(next(line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                           if line.startswith("Threads:")))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return threads, fds
    except (OSError, StopIteration):
        return 0, 0


def run_wide():
    """Many partitions, small records, 2 workers: first record, threads, fds, RSS, throughput."""
    topic = f"bench-wide-{int(time.time())}"
    admin(A).create_topics([NewTopic(topic, WIDE, 1)])[topic].result()
    time.sleep(5)
    per_partition = 200
    n, sent, _ = produce_all(A, topic, "random", WIDE * per_partition * 1040, WIDE, 1)
    run_id = f"bench-wide-{int(time.time())}"
    spec = {"version": 1, "run_id": run_id, "source": {"bootstrap_servers": [A]},
            "target": {"bootstrap_servers": [B]}, "topics": {"names": [topic]}, "topic_name_prefix": run_id + "."}
    path = WORK / f"{run_id}.json"
    path.write_text(json.dumps(spec))
    rss = PeakRss()
    started = time.monotonic()
    procs = [subprocess.Popen([str(MIRROR), "run", "--spec", str(path), "--worker-id", f"w{i}"],
                              stdout=subprocess.DEVNULL, stderr=open(WORK / f"{run_id}-w{i}.log", "w")) for i in range(2)]
    for pr in procs:
        rss.watch(pr.pid)
    first = None
    peak_threads = peak_fds = 0
    copied = 0
    while time.monotonic() - started < WIDE_SECONDS and any(pr.poll() is None for pr in procs):
        for pr in procs:
            t, f = process_counts(pr.pid)
            peak_threads, peak_fds = max(peak_threads, t), max(peak_fds, f)
        try:
            copied = end_offsets(B, run_id + "." + topic, WIDE)
        except Exception:
            copied = 0
        if first is None and copied > 0:
            first = time.monotonic() - started
        time.sleep(1)
    elapsed = time.monotonic() - started
    finished = all(pr.poll() == 0 for pr in procs)
    for pr in procs:
        if pr.poll() is None:
            pr.kill()
            pr.wait()
    copied = end_offsets(B, run_id + "." + topic, WIDE)
    admin(B).delete_topics([run_id + "." + topic])
    admin(A).delete_topics([topic])
    peak = rss.total_mb()
    print(f"\nwide case: {WIDE} partitions, {n} random 1 KiB records ({sent / 1e6:.0f} MB), 2 workers, exactly-once")
    print(f"  finished: {'yes' if finished else f'NO (stopped after {WIDE_SECONDS:.0f}s)'} in {elapsed:.1f}s; "
          f"target end offsets {copied} (records + markers) for {n} records")
    print(f"  first copied record after {first:.1f}s" if first is not None else "  no record copied")
    print(f"  peak per worker: {peak_threads} threads, {peak_fds} fds; peak RSS of both workers {peak:.0f} MB")
    print(f"  rate: {sent / 1e6 / elapsed:.1f} MB/s" if finished else "  rate: not finished")


def bench_kind(kind):
    topic = f"bench-src-{kind}-{int(time.time())}"
    records, source_bytes, secs = fill(topic, kind)
    print(f"\n== {kind}: {topic}, {PARTITIONS} partitions, {records} records, {source_bytes / 1e9:.2f} GB of keys+values "
          f"(filled in {secs:.0f}s)", flush=True)
    results = [run_consume_ceiling(topic, records, source_bytes), run_produce_ceiling(kind, records, source_bytes)]
    for workers in (1, 2):
        for eos in ((True, False) if ALO else (True,)):
            results.append(run_ferry(topic, records, source_bytes, workers, eos))
            print(f"  {results[-1]['name']}: {results[-1]['mb_s']:.1f} MB/s", flush=True)
    results.append(run_mm2(topic, records, source_bytes))
    admin(A).delete_topics([topic])
    mm2 = results[-1]
    ceiling = min(r["mb_s"] for r in results[:2])
    print()
    print(f"{'run (' + kind + ')':<62} {'seconds':>8} {'MB/s':>8} {'peak RSS MB':>12} {'vs MM2':>7} {'of ceiling':>10}  ok")
    for r in results:
        print(f"{r['name']:<62} {r['seconds']:>8.1f} {r['mb_s']:>8.1f} {r['rss_mb']:>12.0f} "
              f"{r['mb_s'] / mm2['mb_s']:>6.2f}x {r['mb_s'] / ceiling:>9.0%}  {'yes' if r['ok'] else 'NO'}")
    print("notes:")
    for r in results:
        print(f"  {r['name']}: {r['note']}")
    print(f"  ceiling = the lower of the produce-only and consume-only rates: {ceiling:.1f} MB/s", flush=True)


def main():
    if not MIRROR.exists():
        sys.exit(f"{MIRROR} is missing: cargo build --release -p ferry-mirror")
    for kind in KINDS:
        bench_kind(kind)
    if WIDE > 0:
        run_wide()
    print(f"\nlogs and specs: {WORK}")


if __name__ == "__main__":
    main()
