"""Helpers for the ferry-mirror tests: specs, data, and exact reads of both clusters."""

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import REPO

MIRROR = Path(os.environ.get("FERRY_MIRROR_BIN", REPO / "target" / "debug" / "ferry-mirror"))


def write_spec(path, run_id, source, target, **fields):
    spec = {
        "version": 1,
        "run_id": run_id,
        "source": {"bootstrap_servers": [source], "timeout_seconds": 15},
        "target": {"bootstrap_servers": [target], "timeout_seconds": 15},
        "tuning": {"transaction_max_ms": 500, "status_interval_ms": 500},
    }
    spec.update(fields)
    Path(path).write_text(json.dumps(spec, indent=2))
    return Path(path)


def create_topic(bootstrap, name, partitions, config=None):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1, config=config or {})])[name].result(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        t = admin.list_topics(topic=name, timeout=10).topics.get(name)
        if t is not None and t.error is None and all(p.leader >= 0 for p in t.partitions.values()):
            return
        time.sleep(0.2)
    raise AssertionError(f"topic {name} not ready")


def produce(bootstrap, topic, records, transactional_id=None, abort=False):
    """records: iterable of (partition, key, value, headers, timestamp)."""
    conf = {"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1 << 20, "enable.idempotence": True}
    if transactional_id:
        conf["transactional.id"] = transactional_id
    p = Producer(conf)
    if transactional_id:
        p.init_transactions(30)
        p.begin_transaction()
    n = 0
    for partition, key, value, headers, ts in records:
        while True:
            try:
                kw = {"timestamp": ts} if ts is not None else {}
                p.produce(topic, key=key, value=value, partition=partition, headers=headers, **kw)
                break
            except BufferError:
                p.poll(0.05)
        n += 1
        if n % 5000 == 0:
            p.poll(0)
    if transactional_id:
        (p.abort_transaction if abort else p.commit_transaction)(30)
    p.flush(60)
    return n


def read_partition(bootstrap, topic, partition, start=0, isolation="read_committed"):
    """All committed records of one partition from `start`: list of (offset, key, value, headers, ts)."""
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"reader-{os.getpid()}-{time.monotonic_ns()}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": isolation,
    })
    c.assign([TopicPartition(topic, partition, start)])
    out = []
    idle = time.monotonic()
    while True:
        msgs = c.consume(5000, timeout=1.0)
        if not msgs and time.monotonic() - idle > 30:
            raise AssertionError(f"stuck reading {topic}[{partition}]")
        done = False
        for m in msgs:
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    done = True
                    continue
                raise AssertionError(m.error())
            idle = time.monotonic()
            out.append((m.offset(), m.key(), m.value(), m.headers(), m.timestamp()[1]))
        if done:
            break
    c.close()
    return out


def contents(records):
    """A partition's records without offsets: what must be identical after a copy."""
    return [(k, v, tuple(h) if h else None, ts) for _, k, v, h, ts in records]


def digest(records):
    h = hashlib.sha256()
    for k, v, hd, ts in contents(records):
        h.update(repr((k, v, hd, ts)).encode())
    return h.hexdigest()


def committed(bootstrap, group, topic, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=15)
    c.close()
    return {tp.partition: tp.offset for tp in got}


def commit_group(bootstrap, group, topic, offsets):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    c.close()


def mirror(*args, timeout=600, env=None, check=True):
    proc = subprocess.run(
        [str(MIRROR), *args], capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"ferry-mirror {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr[-5000:]}")
    return proc


def start_worker(spec, worker_id, log_dir, env=None):
    log = open(Path(log_dir) / f"{worker_id}.log", "ab")
    return subprocess.Popen(
        [str(MIRROR), "run", "--spec", str(spec), "--worker-id", worker_id],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill(proc, sig=signal.SIGKILL):
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    proc.wait(timeout=60)
