"""Prints the topics of a cluster as Kafka itself reports them (used by the demo)."""

import sys

from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource


def main(bootstrap, prefix):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    md = admin.list_topics(timeout=15)
    names = sorted(n for n in md.topics if n.startswith(prefix))
    print(f"{'topic':<24} {'partitions':>10} {'replicas':>8}  overrides")
    for name in names:
        parts = list(md.topics[name].partitions.values())
        res = ConfigResource(ConfigResource.Type.TOPIC, name)
        entries = admin.describe_configs([res])[res].result(timeout=15)
        overrides = {
            k: e.value for k, e in entries.items() if e.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
        }
        print(f"{name:<24} {len(parts):>10} {len(parts[0].replicas):>8}  {overrides}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "")
