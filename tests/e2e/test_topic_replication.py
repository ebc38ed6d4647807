"""ferry_topic replication-factor changes in place, on the three-broker cluster C, with data in
the topic so replicas really copy: assignment and ISR read back with an independent admin
client, throttles gone afterwards, every leader its preferred replica."""

import time

from confluent_kafka import Producer
from confluent_kafka.admin import ConfigResource, ConfigSource

from conftest import peer
from test_topics import PROVIDER_HEADER, provider_block

THROTTLE_TOPIC_KEYS = {"leader.replication.throttled.replicas", "follower.replication.throttled.replicas"}
THROTTLE_BROKER_KEYS = {"leader.replication.throttled.rate", "follower.replication.throttled.rate"}


def layout(kafka, name):
    md = kafka.admin.list_topics(topic=name, timeout=15)
    t = md.topics[name]
    return {p.id: (list(p.replicas), sorted(p.isrs), p.leader) for p in t.partitions.values()}


def broker_throttles(kafka):
    """Throttle rates set dynamically on any broker."""
    brokers = kafka.admin.list_topics(timeout=15).brokers
    found = {}
    for b in brokers:
        res = ConfigResource(ConfigResource.Type.BROKER, str(b))
        entries = kafka.admin.describe_configs([res])[res].result(timeout=15)
        for k, e in entries.items():
            if k in THROTTLE_BROKER_KEYS and e.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value:
                found[(b, k)] = e.value
    return found


def fill(name, records=4000, size=1024):
    p = Producer({"bootstrap.servers": peer("FERRY_KAFKA_C"), "linger.ms": 20})
    payload = b"x" * size
    for i in range(records):
        p.produce(name, key=str(i).encode(), value=payload)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(60) == 0


def topic_hcl(name, rf, throttle=None):
    extra = f"  reassignment {{\n    throttle_bytes_per_sec = {throttle}\n  }}\n" if throttle is not None else ""
    return (
        f'resource "ferry_topic" "t" {{\n  name = "{name}"\n  partitions = 4\n'
        f"  replication_factor = {rf}\n{extra}}}\n"
    )


def check_settled(kafka, name, rf):
    parts = layout(kafka, name)
    print(f"{name} rf={rf}: {parts}")
    for p, (replicas, isr, leader) in parts.items():
        assert len(replicas) == rf, (p, replicas)
        assert len(set(replicas)) == rf, (p, replicas)
        assert isr == sorted(replicas), (p, replicas, isr)
        assert leader == replicas[0], f"partition {p}: leader {leader} is not the preferred {replicas[0]}"
    assert THROTTLE_TOPIC_KEYS.isdisjoint(kafka.overrides(name)), kafka.overrides(name)
    assert broker_throttles(kafka) == {}
    return parts


def test_replication_factor_1_to_3_to_2_with_data(cli, kafka_c):
    name = f"e2e-{cli.name}-rf-change"
    kafka_c.delete_if_exists(name)
    servers = peer("FERRY_KAFKA_C").split(",")[0]
    header = PROVIDER_HEADER + provider_block(servers)
    cli.write("main.tf", header + topic_hcl(name, 1))
    cli.init()
    cli.apply()
    one = check_settled(kafka_c, name, 1)
    fill(name)

    cli.write("main.tf", header + topic_hcl(name, 3, throttle=10 * 1024 * 1024))
    plan = cli.plan()
    assert plan.returncode == 2, plan.output
    assert "replication_factor" in plan.output and "1 -> 3" in plan.output, plan.output
    applied = cli.apply()
    print(f"{cli.name}: RF 1->3 apply took {applied.elapsed:.1f}s")
    three = check_settled(kafka_c, name, 3)
    for p, (replicas, _, _) in one.items():
        # Minimal move: the old replica stays, and stays first (the leader).
        assert three[p][0][0] == replicas[0], (p, replicas, three[p])
    assert cli.plan().returncode == 0

    cli.write("main.tf", header + topic_hcl(name, 2))
    cli.apply()
    two = check_settled(kafka_c, name, 2)
    for p, (replicas, _, _) in three.items():
        assert set(two[p][0]) <= set(replicas), "lowering only removes replicas"
    assert cli.plan().returncode == 0
    cli.destroy()
    assert kafka_c.topic(name) is None


def test_a_throttle_left_behind_is_planned_away_and_removed(cli, kafka_c):
    """An apply that died mid-change leaves throttles; the next plan shows them, apply removes
    them (topic lists and broker rates)."""
    name = f"e2e-{cli.name}-rf-leftover"
    kafka_c.delete_if_exists(name)
    servers = peer("FERRY_KAFKA_C").split(",")[0]
    cli.write("main.tf", PROVIDER_HEADER + provider_block(servers) + topic_hcl(name, 2))
    cli.init()
    cli.apply()
    kafka_c.set_config(name, "leader.replication.throttled.replicas", "0:1")
    kafka_c.set_config(name, "follower.replication.throttled.replicas", "0:2")
    broker = str(min(kafka_c.admin.list_topics(timeout=15).brokers))
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry

    res = ConfigResource(
        ConfigResource.Type.BROKER,
        broker,
        incremental_configs=[
            ConfigEntry("leader.replication.throttled.rate", "1000000", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    kafka_c.admin.incremental_alter_configs([res])[res].result(timeout=15)
    # Dynamic broker configs reach the brokers through the metadata log: wait until they show.
    deadline = time.monotonic() + 60
    while broker_throttles(kafka_c) == {} and time.monotonic() < deadline:
        time.sleep(0.5)
    assert broker_throttles(kafka_c) != {}, "the broker throttle never became visible"

    plan = cli.plan()
    assert plan.returncode == 2, plan.output
    assert "leader.replication.throttled.replicas" in plan.output, plan.output
    cli.apply()
    assert THROTTLE_TOPIC_KEYS.isdisjoint(kafka_c.overrides(name))
    assert broker_throttles(kafka_c) == {}
    assert cli.plan().returncode == 0
    cli.destroy()
