"""ferry-mirror through broker restarts on either side (issue 8): a broker of the source, and
separately of the target, is stopped and started again early in a copy and in the middle of it;
the copy resumes, the target ends up exactly like the source, and the time copying took to resume
is printed.

The restarted broker is a dedicated single-node KRaft cluster this module starts on free ports
(with tests/peers' Kafka installation), not one of the shared peers: other tests run against
peers A and B at the same time, and a restart of those would break them. The other side is the
shared peer (A as the source, B as the target), which is never restarted here. The limits are
generous and only catch a hang (a busy machine is slow, not wrong); nothing asserts a speed.
"""

import base64
import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from conftest import PEERS, REPO, peer
from mirror_util import (
    MIRROR,
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

# How long one wait may take before the test calls it a hang.
HANG = 300
BATCH = 80_000
PARTITIONS = 3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A single-node KRaft Kafka of our own, restartable on its data."""

    def __init__(self, root):
        self.root = Path(root)
        self.port, self.controller = free_port(), free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc = None
        java, libs = PEERS.get("FERRY_JAVA"), PEERS.get("FERRY_KAFKA_LIBS")
        if not java or not libs:
            pytest.fail("FERRY_JAVA / FERRY_KAFKA_LIBS are not set: start the peers (make peers)")
        self.java, self.classpath = java, f"{libs}/*"
        self.config = self.root / "server.properties"
        self.config.write_text("\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{self.controller}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={self.root / 'data'}",
            "auto.create.topics.enable=false",
            "group.initial.rebalance.delay.ms=0",
            "num.network.threads=2",
            "num.io.threads=4",
            "num.recovery.threads.per.data.dir=1",
            "log.cleaner.dedupe.buffer.size=16777216",
            "offsets.topic.num.partitions=5",
            "transaction.state.log.num.partitions=5",
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
        ]) + "\n")
        log4j = f"-Dlog4j2.configurationFile={REPO / 'tests/peers/log4j2.properties'}"
        self.jvm = [self.java, "-Xms128m", "-Xmx384m", "-XX:+UseG1GC", "-Djava.awt.headless=true", log4j]
        # A Kafka Uuid: 16 random bytes, url-safe base64; one starting with '-' reads as an option.
        self.cluster_id = "-"
        while self.cluster_id.startswith("-"):
            self.cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        subprocess.run(
            [*self.jvm, "-cp", self.classpath, "kafka.tools.StorageTool", "format", "-t", self.cluster_id, "-c", str(self.config)],
            check=True, capture_output=True, timeout=180,
        )

    def start(self):
        """Starts the broker and returns once it answers metadata requests."""
        log = open(self.root / "broker.log", "ab")
        self.proc = subprocess.Popen(
            [*self.jvm, "-cp", self.classpath, "kafka.Kafka", str(self.config)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + HANG
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.root / "broker.log").read_text()[-3000:]
            # A client per attempt, dropped at once: a lingering one logs every reconnect later.
            admin = AdminClient({"bootstrap.servers": self.address, "log_level": 0})
            try:
                if admin.list_topics(timeout=2).brokers:
                    return
            except Exception:
                pass
            finally:
                del admin
            time.sleep(0.3)
        raise AssertionError(f"broker {self.address} did not start within {HANG}s")

    def stop(self):
        """Controlled shutdown (SIGTERM), SIGKILL if that hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def dedicated(tmp_path_factory):
    if not MIRROR.exists():
        pytest.fail(f"{MIRROR} is missing: cargo build -p ferry-mirror")
    broker = Broker(tmp_path_factory.mktemp("dedicated-kafka"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def unique(name):
    return f"{name}-{os.getpid()}-{time.monotonic_ns() % 1_000_000_000}"


def batch(tag):
    # Incompressible enough that a batch takes a while to copy; recent timestamps (retention).
    base = int(time.time() * 1000) - 60_000
    return ((i % PARTITIONS, f"{tag}-{i}".encode(), os.urandom(400), None, base + i) for i in range(BATCH))


def copied(spec):
    """Committed records copied so far, from the run's status; None while it cannot be read."""
    proc = mirror("status", "--spec", str(spec), "--json", check=False, timeout=120)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout)["records_copied"]


def copied_once(spec, condition):
    """The records copied, once `condition` holds for that count (else None)."""
    n = copied(spec)
    return n if n is not None and condition(n) else None


class Written:
    """The target topic's end offsets, summed: records the copy has written, committed or not
    yet (read every few milliseconds, so a restart can land while a batch is being copied)."""

    def __init__(self, bootstrap, topic):
        self.topic = topic
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"probe-{topic}", "log_level": 0})

    def __call__(self):
        try:
            return sum(
                self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=2, cached=False)[1]
                for p in range(PARTITIONS)
            )
        except Exception:
            return None

    def above(self, threshold):
        """The sum once it is above `threshold` (else None)."""
        n = self()
        return n if n is not None and n > threshold else None

    def close(self):
        self.consumer.close()


def wait_for(what, predicate, worker, log, poll=0.3):
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline:
        assert worker.poll() is None, f"the worker exited while {what}:\n{log.read_text()[-4000:]}"
        value = predicate()
        if value is not None:
            return value
        time.sleep(poll)
    raise AssertionError(f"no progress within {HANG}s while {what}:\n{log.read_text()[-4000:]}")


def restart_during_copy(side, source, target, broker, tmp_path):
    topic = unique(f"restart-{side}")
    create_topic(source, topic, PARTITIONS)
    total = produce(source, topic, batch("b0"))
    # Created here (empty, so the run takes it on) so that the probe below sees the first records.
    create_topic(target, topic, PARTITIONS)
    spec = write_spec(tmp_path / "spec.json", unique("run"), source, target, topics={"names": [topic]}, mode="continuous")
    written = Written(target, topic)
    deadline = time.monotonic() + HANG
    while written() != 0:  # connected and looking at the (empty) target topic before the copy starts
        assert time.monotonic() < deadline, f"cannot read the end offsets of {topic} on {target}"
        time.sleep(0.2)
    worker = start_worker(spec, "w1", tmp_path)
    log = tmp_path / "w1.log"
    try:
        for point in ("early", "mid"):
            producing = None
            if point == "early":
                # As soon as the first records reach the target.
                threshold = 0
            else:
                # Halfway through a batch that is being produced and copied at the same time.
                producing = concurrent.futures.ThreadPoolExecutor(1).submit(produce, source, topic, batch("b-mid"))
                threshold = total + BATCH // 2
            at_stop = wait_for(
                f"waiting for the {point} point", lambda: written.above(threshold), worker, log, poll=0.02
            )
            stopped = time.monotonic()
            broker.stop()
            time.sleep(2)
            broker.start()
            back = time.monotonic()
            # More records (produced while the copy resumes), so that there is copying to resume
            # even if everything was copied before the stop.
            after = concurrent.futures.ThreadPoolExecutor(1).submit(produce, source, topic, batch(f"b-after-{point}"))
            baseline = wait_for("reading the run's status", lambda: copied(spec), worker, log)
            wait_for(
                f"waiting for copying to resume after the {side} restart ({point})",
                lambda: copied_once(spec, lambda n: n > baseline), worker, log,
            )
            resumed = time.monotonic()
            if producing is not None:
                total += producing.result(timeout=HANG)
            total += after.result(timeout=HANG)
            print(
                f"{side} broker restarted {point} (target end offsets {at_stop}, stop threshold {threshold}): "
                f"down {back - stopped:.1f}s; first commit after it was back (beyond the {baseline} records "
                f"committed then) {resumed - back:.1f}s after it was back"
            )
        wait_for(f"copying the rest ({total} records)", lambda: copied_once(spec, lambda n: n == total), worker, log)
        os.killpg(worker.pid, signal.SIGTERM)
        assert worker.wait(timeout=HANG) == 0, log.read_text()[-4000:]
    finally:
        kill(worker)
        written.close()
    n = 0
    for p in range(PARTITIONS):
        src, dst = read_partition(source, topic, p), read_partition(target, topic, p)
        assert len(dst) == len(src), f"partition {p}: {len(src)} source records, {len(dst)} on the target"
        assert digest(dst) == digest(src), f"partition {p}: contents differ"
        assert contents(dst[:3]) == contents(src[:3])
        n += len(dst)
    assert n == total


def test_source_broker_restarts_early_and_mid_copy(dedicated, tmp_path):
    restart_during_copy("source", dedicated.address, peer("FERRY_KAFKA_B"), dedicated, tmp_path)


def test_target_broker_restarts_early_and_mid_copy(dedicated, tmp_path):
    restart_during_copy("target", peer("FERRY_KAFKA_A"), dedicated.address, dedicated, tmp_path)
