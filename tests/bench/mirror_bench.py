"""Throughput and memory of ferry-mirror against MirrorMaker 2 and the brokers' own ceiling.

Everything runs in this process tree on the same two loopback clusters (A = source, B = target)
and the same source data. Prints a table; a benchmark, not a test: nothing here asserts a speed.

  make bench-mirror                  # FERRY_BENCH_GB=2 by default
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
PARTITIONS = int(os.environ.get("FERRY_BENCH_PARTITIONS", "6"))
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


def fill(topic):
    a = admin(A)
    a.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result()
    time.sleep(2)
    p = Producer({"bootstrap.servers": A, "linger.ms": 50, "batch.size": 1 << 20, "compression.type": "lz4", "acks": 1})
    rnd = random.Random(1)
    # Realistic-ish records: JSON-like text values of 200–2000 bytes, 16-byte keys.
    blobs = [("{\"event\":\"order\",\"payload\":\"" + "".join(rnd.choice("abcdefghijklmnop0123456789") for _ in range(n)) + "\"}").encode()
             for n in (200, 500, 800, 1200, 2000)]
    target = GB * 1e9
    sent = n = 0
    started = time.monotonic()
    while sent < target:
        v = blobs[n % len(blobs)]
        while True:
            try:
                p.produce(topic, key=f"customer-{n % 100000:07d}".encode(), value=v, partition=n % PARTITIONS)
                break
            except BufferError:
                p.poll(0.01)
        sent += len(v) + 16
        n += 1
        if n % 20000 == 0:
            p.poll(0)
    p.flush(120)
    return n, sent, time.monotonic() - started


def run_ferry(topic, records, source_bytes, workers, exactly_once):
    run_id = f"bench-{workers}w-{'eos' if exactly_once else 'alo'}-{int(time.time())}"
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


def run_perf(kind, topic, records, source_bytes):
    rss = PeakRss()
    started = time.monotonic()
    if kind == "produce":
        args = ["org.apache.kafka.tools.ProducerPerformance", "--topic", topic, "--num-records", str(records),
                "--record-size", str(int(source_bytes / records)), "--throughput", "-1",
                "--producer-props", f"bootstrap.servers={B}", "acks=all", "linger.ms=20", "batch.size=1048576", "compression.type=lz4"]
        admin(B).create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result()
        time.sleep(2)
    else:
        args = ["org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server", A, "--topic", topic,
                "--messages", str(records), "--timeout", "60000"]
    proc = subprocess.Popen([JAVA, "-Xmx1G", "-cp", f"{LIBS}/*", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rss.watch(proc.pid)
    out, _ = proc.communicate()
    elapsed = time.monotonic() - started
    if kind == "produce":
        admin(B).delete_topics([topic])
    return dict(name=f"ceiling: brokers' raw {kind}-only rate (Kafka's own perf tool)", seconds=elapsed,
                mb_s=source_bytes / 1e6 / elapsed, rss_mb=rss.total_mb(), ok=proc.returncode == 0,
                note="includes JVM start")


def main():
    if not MIRROR.exists():
        sys.exit(f"{MIRROR} is missing: cargo build --release -p ferry-mirror")
    topic = f"bench-src-{int(time.time())}"
    records, source_bytes, secs = fill(topic)
    print(f"source: {topic}, {PARTITIONS} partitions, {records} records, {source_bytes / 1e9:.2f} GB of keys+values "
          f"(filled in {secs:.0f}s)", flush=True)
    results = [run_perf("consume", topic, records, source_bytes),
               run_perf("produce", f"bench-perf-{int(time.time())}", records, source_bytes)]
    for workers in (1, 2):
        for eos in (True, False):
            results.append(run_ferry(topic, records, source_bytes, workers, eos))
            print(f"  {results[-1]['name']}: {results[-1]['mb_s']:.1f} MB/s", flush=True)
    results.append(run_mm2(topic, records, source_bytes))
    admin(A).delete_topics([topic])
    mm2 = results[-1]
    ceiling = min(r["mb_s"] for r in results[:2])
    print()
    print(f"{'run':<62} {'seconds':>8} {'MB/s':>8} {'peak RSS MB':>12} {'vs MM2':>7} {'of ceiling':>10}  ok")
    for r in results:
        print(f"{r['name']:<62} {r['seconds']:>8.1f} {r['mb_s']:>8.1f} {r['rss_mb']:>12.0f} "
              f"{r['mb_s'] / mm2['mb_s']:>6.2f}x {r['mb_s'] / ceiling:>9.0%}  {'yes' if r['ok'] else 'NO'}")
    print("\nnotes:")
    for r in results:
        print(f"  {r['name']}: {r['note']}")
    print(f"  ceiling = the lower of the produce-only and consume-only rates: {ceiling:.1f} MB/s")
    print(f"  logs and specs: {WORK}")


if __name__ == "__main__":
    main()
