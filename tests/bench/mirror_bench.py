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
time to the first copied record, threads, fds and peak RSS per worker, the transactions the workers
committed, and the ratio to the few-partition 2-worker exactly-once rate of the same run (when a data
kind was benched too; `FERRY_BENCH_MM2=0` skips MirrorMaker 2 there).

FERRY_BENCH_WIDE_DEDICATED=1 runs the wide case on two dedicated single-node KRaft brokers (their
group.initial.rebalance.delay.ms is FERRY_BENCH_REBALANCE_DELAY_MS, default 3000 as in Kafka and
MSK; the test peers use 0) (source
and target) that this script starts on free ports, with their open-files limit raised toward
FERRY_BENCH_NOFILE (default 200000; without CAP_SYS_RESOURCE only up to the hard limit, 20,000 on
the project machine) and stops at the end, in a directory of their own. The shared peer B runs out
of open files at 10,000 partitions (it already holds thousands of other sessions' partitions, one
open log file each); a dedicated broker peaked at 10,228 open files with 10,000, so:

  cargo build --release -p ferry-mirror
  source .peers/env
  FERRY_BENCH_DATA=random FERRY_BENCH_GB=0.5 FERRY_BENCH_MM2=0 FERRY_BENCH_WIDE=10000 \
    FERRY_BENCH_WIDE_DEDICATED=1 .peers/venv/bin/python tests/bench/mirror_bench.py

Never use `make bench-mirror` while others use the shared peers: it stops peers A and B at exit.
"""

import base64
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka import IsolationLevel  # noqa: E402
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic, OffsetSpec  # noqa: E402

from conftest import PEERS  # noqa: E402

A, B = PEERS["FERRY_KAFKA_A"], PEERS["FERRY_KAFKA_B"]
LIBS, JAVA = PEERS["FERRY_KAFKA_LIBS"], PEERS["FERRY_JAVA"]
MIRROR = Path(os.environ.get("FERRY_MIRROR_BIN", REPO / "target" / "release" / "ferry-mirror"))
GB = float(os.environ.get("FERRY_BENCH_GB", "2"))
# group.initial.rebalance.delay.ms of the dedicated wide-case brokers.
REBALANCE_DELAY_MS = int(os.environ.get("FERRY_BENCH_REBALANCE_DELAY_MS", "3000"))
PARTITIONS = int(os.environ.get("FERRY_BENCH_PARTITIONS", "12"))
KINDS = [k for k in os.environ.get("FERRY_BENCH_DATA", "text,random").split(",") if k]
WIDE = int(os.environ.get("FERRY_BENCH_WIDE", "1000"))
WIDE_SECONDS = float(os.environ.get("FERRY_BENCH_WIDE_SECONDS", "300"))
ALO = os.environ.get("FERRY_BENCH_ALO") == "1"
MM2 = os.environ.get("FERRY_BENCH_MM2", "1") != "0"
WIDE_DEDICATED = os.environ.get("FERRY_BENCH_WIDE_DEDICATED") == "1"
NOFILE = int(os.environ.get("FERRY_BENCH_NOFILE", "200000"))
# Spec `tuning` of the wide run, as JSON (e.g. '{"fetch_max_kbytes": 65536}'), to try settings.
WIDE_TUNING = json.loads(os.environ.get("FERRY_BENCH_WIDE_TUNING", "{}"))
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


_STALE = []


def end_offsets(bs, topic, partitions, attempts=30):
    """Sum of the partitions' last stable offsets (committed records and markers), in one batched
    ListOffsets request per broker: thousands of per-partition requests took seconds and
    delayed the first-record time. Retried while leaders of a new topic are being elected, with a
    new client each time: a client that saw the topic while ferry-mirror was still growing it keeps
    the narrower metadata for minutes ("Unknown partition")."""
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    for attempt in range(attempts):
        try:
            futures = admin(bs).list_offsets({tp: OffsetSpec.latest() for tp in tps},
                                             isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=30)
            return sum(f.result().offset for f in futures.values())
        except Exception:
            if attempt == attempts - 1:
                raise
            _STALE.append(_ADMINS.pop(bs, None))  # kept alive: its futures may still complete
            time.sleep(0.5)
            time.sleep(1)


def answered_end_offsets(bs, topic, partitions):
    """Sum of the last stable offsets of the partitions that answer: while the target broker is
    still making a new topic's logs some do not, and the first copied record may already be in
    one that does (all-or-nothing put the first record after the broker's last log)."""
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    futures = admin(bs).list_offsets({tp: OffsetSpec.latest() for tp in tps},
                                     isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=30)
    total = 0
    for f in futures.values():
        try:
            total += f.result().offset
        except Exception:
            pass
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


def cpu_seconds(pid):
    """User + system CPU seconds a live process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile():
    """In the broker's child process: open-files limit NOFILE, or as high as allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, max(hard, NOFILE)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class DedicatedBroker:
    """A single-node KRaft Kafka of the benchmark's own (as tests/e2e/test_mirror_restarts.py
    starts them), with a raised open-files limit and a heap for thousands of partitions."""

    def __init__(self, name):
        self.root = WORK / name
        self.root.mkdir()
        self.port, controller = free_port(), free_port()
        self.address = f"127.0.0.1:{self.port}"
        config = self.root / "server.properties"
        config.write_text("\n".join([
            "process.roles=broker,controller", "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller}", "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{controller}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={self.root / 'data'}", "auto.create.topics.enable=false",
            # Kafka's (and MSK's) default, unlike the test peers' 0: workers started together
            # join the slots group together instead of the first taking every slot for seconds.
            f"group.initial.rebalance.delay.ms={REBALANCE_DELAY_MS}", "num.network.threads=2",
            "num.io.threads=4",
            "num.recovery.threads.per.data.dir=1", "log.cleaner.dedupe.buffer.size=16777216",
            # Small segments preallocate nothing big: 10,000 partitions x 2 brokers fit on disk.
            "log.segment.bytes=67108864", "log.index.size.max.bytes=1048576",
            "offsets.topic.num.partitions=5", "transaction.state.log.num.partitions=5",
            "offsets.topic.replication.factor=1", "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1", "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
        ]) + "\n")
        log4j = f"-Dlog4j2.configurationFile={REPO / 'tests/peers/log4j2.properties'}"
        self.jvm = [JAVA, "-Xms512m", "-Xmx2g", "-XX:+UseG1GC", "-Djava.awt.headless=true", log4j,
                    "-cp", f"{LIBS}/*"]
        cluster_id = "-"
        while cluster_id.startswith("-"):
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        subprocess.run([*self.jvm, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)],
                       check=True, capture_output=True, timeout=300)
        self.proc = subprocess.Popen([*self.jvm, "kafka.Kafka", str(config)], stdout=open(self.root / "broker.log", "wb"),
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=raise_nofile)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"dedicated broker {name} exited: {(self.root / 'broker.log').read_text()[-3000:]}")
            a = AdminClient({"bootstrap.servers": self.address, "log_level": 0})
            try:
                if a.list_topics(timeout=2).brokers:
                    break
            except Exception:
                pass
            finally:
                del a
            time.sleep(0.5)
        limit = next(line for line in Path(f"/proc/{self.proc.pid}/limits").read_text().splitlines()
                     if line.startswith("Max open files"))
        print(f"dedicated broker {name} at {self.address}: {' '.join(limit.split()[3:5])} open files (soft, hard)",
              flush=True)
        self.warm_up()

    def warm_up(self):
        """Creates the group and transaction coordinators' topics, as on any cluster in use: the
        first FindCoordinator on a fresh broker creates them, and with thousands of partitions
        being created at the same time that took over a minute (the workers' first progress read
        timed out)."""
        topic = "bench-warm-up"
        admin(self.address).create_topics([NewTopic(topic, 1, 1)])[topic].result()
        time.sleep(1)
        p = Producer({"bootstrap.servers": self.address, "transactional.id": "bench-warm-up"})
        p.init_transactions(120)
        p.begin_transaction()
        p.produce(topic, b"x")
        p.commit_transaction(120)
        c = Consumer({"bootstrap.servers": self.address, "group.id": "bench-warm-up"})
        c.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
        c.close()

    def fds(self):
        try:
            return len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        except OSError:
            return 0

    def stop(self):
        _ADMINS.pop(self.address, None)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=60)


def transactions_committed(bs, run_id):
    """The workers' last published counts of committed transactions, summed (status topic)."""
    c = Consumer({"bootstrap.servers": bs, "group.id": "bench-status", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "enable.partition.eof": True})
    c.assign([TopicPartition(f"__ferry.{run_id}.status", 0, 0)])
    last = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = c.poll(1)
        if m is None:
            continue
        if m.error():
            break
        try:
            v = json.loads(m.value())
            if "transactions_committed" in v:
                last[v["worker_id"]] = v["transactions_committed"]
        except (TypeError, ValueError, KeyError):
            pass
    c.close()
    return sum(last.values()) if last else None


def run_wide(few_rate=None):
    """Many partitions, small records, 2 workers: first record, threads, fds, RSS, throughput."""
    brokers = [DedicatedBroker("source"), DedicatedBroker("target")] if WIDE_DEDICATED else []
    src, tgt = (brokers[0].address, brokers[1].address) if brokers else (A, B)
    try:
        return wide_on(src, tgt, brokers, few_rate)
    finally:
        for b in brokers:
            b.stop()


def create_wide_topic(bs, name, partitions):
    """A KRaft controller refuses to create more than about 10,000 partition records in one
    request ("Unable to perform excessively large batch operation"): 5,000 at a time."""
    step = 5000
    admin(bs).create_topics([NewTopic(name, min(partitions, step), 1)])[name].result()
    have = min(partitions, step)
    while have < partitions:
        time.sleep(2)
        have = min(partitions, have + step)
        admin(bs).create_partitions([NewPartitions(name, have)])[name].result()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        t = admin(bs).list_topics(name, timeout=30).topics.get(name)
        if t is not None and len(t.partitions) == partitions and all(p.leader >= 0 for p in t.partitions.values()):
            return
        time.sleep(2)
    sys.exit(f"{name}: {partitions} partitions not all led after 300 s")


def wide_on(src, tgt, brokers, few_rate):
    topic = f"bench-wide-{int(time.time())}"
    create_wide_topic(src, topic, WIDE)
    time.sleep(5)
    per_partition = 200
    n, sent, _ = produce_all(src, topic, "random", WIDE * per_partition * 1040, WIDE, 1)
    run_id = f"bench-wide-{int(time.time())}"
    # ferry-mirror creates the wide target topic itself (in steps of 5,000 partitions, which KRaft
    # accepts in one request); its time is part of the time to the first record.
    spec = {"version": 1, "run_id": run_id, "source": {"bootstrap_servers": [src]},
            "target": {"bootstrap_servers": [tgt]}, "topics": {"names": [topic]}, "topic_name_prefix": run_id + "."}
    if WIDE_TUNING:
        spec["tuning"] = WIDE_TUNING
        spec["version"] = 3  # tuning.slots needs version 3
    path = WORK / f"{run_id}.json"
    path.write_text(json.dumps(spec))
    rss = PeakRss()
    started = time.monotonic()
    procs = [subprocess.Popen([str(MIRROR), "run", "--spec", str(path), "--worker-id", f"w{i}"],
                              stdout=subprocess.DEVNULL, stderr=open(WORK / f"{run_id}-w{i}.log", "w")) for i in range(2)]
    for pr in procs:
        rss.watch(pr.pid)
    first = None
    peak_threads = peak_fds = peak_broker_fds = 0
    copied = 0
    # Where the two cores went during the run: each worker's CPU (last sample before it exits)
    # and each dedicated broker's.
    broker_cpu_at_start = [cpu_seconds(b.proc.pid) for b in brokers]
    worker_cpu = [0.0 for _ in procs]
    while time.monotonic() - started < WIDE_SECONDS and any(pr.poll() is None for pr in procs):
        for i, pr in enumerate(procs):
            t, f = process_counts(pr.pid)
            peak_threads, peak_fds = max(peak_threads, t), max(peak_fds, f)
            worker_cpu[i] = max(worker_cpu[i], cpu_seconds(pr.pid))
        peak_broker_fds = max([peak_broker_fds] + [b.fds() for b in brokers])
        if first is None:
            try:
                copied = answered_end_offsets(tgt, run_id + "." + topic, WIDE)
            except Exception:
                _STALE.append(_ADMINS.pop(tgt, None))
                copied = 0
            if copied > 0:
                first = time.monotonic() - started
            else:
                # A client that saw the topic narrower keeps that metadata: ask with a new one.
                _STALE.append(_ADMINS.pop(tgt, None))
        time.sleep(1)
    elapsed = time.monotonic() - started
    broker_cpu = [cpu_seconds(b.proc.pid) - at for b, at in zip(brokers, broker_cpu_at_start)]
    finished = all(pr.poll() == 0 for pr in procs)
    for pr in procs:
        if pr.poll() is None:
            pr.kill()
            pr.wait()
    copied = end_offsets(tgt, run_id + "." + topic, WIDE)
    txns = transactions_committed(tgt, run_id)
    admin(tgt).delete_topics([run_id + "." + topic])
    admin(src).delete_topics([topic])
    rss.stop = True
    rss.thread.join()
    per_worker = " and ".join(f"{rss.peaks.get(pr.pid, 0) / 1e6:.0f}" for pr in procs)
    where = "dedicated brokers" if brokers else "peers A -> B"
    print(f"\nwide case: {WIDE} partitions, {n} random 1 KiB records ({sent / 1e6:.0f} MB), 2 workers, exactly-once, "
          f"{where}{', tuning ' + json.dumps(WIDE_TUNING) if WIDE_TUNING else ''}")
    print(f"  finished: {'yes' if finished else f'NO (stopped after {WIDE_SECONDS:.0f}s)'} in {elapsed:.1f}s; "
          f"target end offsets {copied} (records + markers) for {n} records")
    print(f"  first copied record after {first:.1f}s" if first is not None else "  no record copied")
    print(f"  peak per worker: {peak_threads} threads, {peak_fds} fds; peak RSS per worker {per_worker} MB")
    if brokers:
        print(f"  peak open files of a dedicated broker: {peak_broker_fds}")
        print(f"  CPU seconds in {elapsed:.0f}s of wall clock (2 cores = {2 * elapsed:.0f}): workers "
              f"{' and '.join(f'{c:.0f}' for c in worker_cpu)} (at least: sampled once a second), "
              f"source broker {broker_cpu[0]:.0f}, target broker {broker_cpu[1]:.0f}")
    print(f"  transactions committed (both workers): {txns}")
    if finished:
        rate = sent / 1e6 / elapsed
        ratio = f"; {rate / few_rate:.0%} of the few-partition 2-worker rate {few_rate:.1f} MB/s" if few_rate else ""
        print(f"  rate: {rate:.1f} MB/s{ratio}")
    else:
        print("  rate: not finished")


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
    if MM2:
        results.append(run_mm2(topic, records, source_bytes))
    admin(A).delete_topics([topic])
    mm2 = results[-1] if MM2 else None
    ceiling = min(r["mb_s"] for r in results[:2])
    print()
    print(f"{'run (' + kind + ')':<62} {'seconds':>8} {'MB/s':>8} {'peak RSS MB':>12} {'vs MM2':>7} {'of ceiling':>10}  ok")
    for r in results:
        print(f"{r['name']:<62} {r['seconds']:>8.1f} {r['mb_s']:>8.1f} {r['rss_mb']:>12.0f} "
              f"{(r['mb_s'] / mm2['mb_s']) if mm2 else 0:>6.2f}x {r['mb_s'] / ceiling:>9.0%}  {'yes' if r['ok'] else 'NO'}")
    print("notes:")
    for r in results:
        print(f"  {r['name']}: {r['note']}")
    print(f"  ceiling = the lower of the produce-only and consume-only rates: {ceiling:.1f} MB/s", flush=True)
    return next(r["mb_s"] for r in results if r["name"] == "ferry-mirror 2 worker(s), exactly-once")


def main():
    if not MIRROR.exists():
        sys.exit(f"{MIRROR} is missing: cargo build --release -p ferry-mirror")
    few = None
    for kind in KINDS:
        few = bench_kind(kind)
    if WIDE > 0:
        run_wide(few)
    print(f"\nlogs and specs: {WORK}")


if __name__ == "__main__":
    main()
