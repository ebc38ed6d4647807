"""Smoke check of the running test peers (after tests/peers/start.sh).

    . .peers/env && "$FERRY_PEERS_PYTHON" tests/peers/smoke.py

Creates and deletes a topic on clusters A, B and C (replication factor 3 on
C), checks that C describes 3 brokers, lists topics over SASL PLAIN,
SCRAM-SHA-256 and SCRAM-SHA-512 on A's SASL listener, and GETs moto.
Peers not named in FERRY_PEERS_STARTED are skipped.
"""

import os
import sys
import time
import urllib.request
import uuid

from confluent_kafka.admin import AdminClient, NewTopic

STARTED = os.environ.get("FERRY_PEERS_STARTED", "a b c moto").split()
failures = 0
passes = 0


def report(ok, what):
    global failures, passes
    print(f"{'ok  ' if ok else 'FAIL'} {what}")
    if ok:
        passes += 1
    else:
        failures += 1


def admin(bootstrap, **extra):
    return AdminClient({"bootstrap.servers": bootstrap, **extra})


def create_delete(name, bootstrap, rf):
    a = admin(bootstrap)
    topic = f"ferry-smoke-{uuid.uuid4().hex[:8]}"
    try:
        a.create_topics([NewTopic(topic, num_partitions=3, replication_factor=rf)])[topic].result(30)
        md = a.list_topics(topic, timeout=10).topics[topic]
        reps = {len(p.replicas) for p in md.partitions.values()}
        created = len(md.partitions) == 3 and reps == {rf}
        a.delete_topics([topic])[topic].result(30)
        deadline = time.monotonic() + 15
        while topic in a.list_topics(timeout=10).topics and time.monotonic() < deadline:
            time.sleep(0.2)
        gone = topic not in a.list_topics(timeout=10).topics
        report(created and gone, f"{name}: create+delete topic rf={rf} on {bootstrap}")
    except Exception as e:  # noqa: BLE001
        report(False, f"{name}: create+delete topic on {bootstrap}: {e}")


if "a" in STARTED:
    create_delete("A", os.environ["FERRY_KAFKA_A"], 1)
    for mech, user, pw in [
        ("PLAIN", os.environ["FERRY_KAFKA_A_PLAIN_USER"], os.environ["FERRY_KAFKA_A_PLAIN_PASSWORD"]),
        ("SCRAM-SHA-256", os.environ["FERRY_KAFKA_A_SCRAM_USER"], os.environ["FERRY_KAFKA_A_SCRAM_PASSWORD"]),
        ("SCRAM-SHA-512", os.environ["FERRY_KAFKA_A_SCRAM_USER"], os.environ["FERRY_KAFKA_A_SCRAM_PASSWORD"]),
    ]:
        try:
            md = admin(
                os.environ["FERRY_KAFKA_A_SASL"],
                **{
                    "security.protocol": "SASL_PLAINTEXT",
                    "sasl.mechanism": mech,
                    "sasl.username": user,
                    "sasl.password": pw,
                },
            ).list_topics(timeout=10)
            report(True, f"A: SASL {mech} as {user}: {len(md.topics)} topics listed")
        except Exception as e:  # noqa: BLE001
            report(False, f"A: SASL {mech} as {user}: {e}")
    # A wrong password must be refused.
    try:
        admin(
            os.environ["FERRY_KAFKA_A_SASL"],
            **{
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "SCRAM-SHA-512",
                "sasl.username": os.environ["FERRY_KAFKA_A_SCRAM_USER"],
                "sasl.password": "wrong",
                "error_cb": lambda e: None,
                "log_level": 0,
            },
        ).list_topics(timeout=5)
        report(False, "A: SASL with a wrong password was accepted")
    except Exception:  # noqa: BLE001
        report(True, "A: SASL with a wrong password is refused")

if "b" in STARTED:
    create_delete("B", os.environ["FERRY_KAFKA_B"], 1)

if "c1" in STARTED or "c" in STARTED:
    c = os.environ["FERRY_KAFKA_C"]
    try:
        client = admin(c)  # keep a reference until the future resolves
        desc = client.describe_cluster().result(10)
        report(len(desc.nodes) == 3, f"C: describe_cluster sees {len(desc.nodes)} brokers")
    except Exception as e:  # noqa: BLE001
        report(False, f"C: describe_cluster: {e}")
    create_delete("C", c, 3)

if "moto" in STARTED:
    url = os.environ["FERRY_MOTO_ENDPOINT"] + "/moto-api/"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            report(r.status == 200, f"moto: GET {url} -> {r.status}")
    except Exception as e:  # noqa: BLE001
        report(False, f"moto: GET {url}: {e}")

print(f"smoke: {passes} ok, {failures} failed")
sys.exit(1 if failures else 0)
