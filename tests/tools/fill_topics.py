"""Writes sample records into topics and commits a consumer group part-way (used by the demo)."""

import sys

from confluent_kafka import Consumer, Producer, TopicPartition


def main(bootstrap, group, topics, records_per_topic=20000):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for topic in topics:
        for i in range(records_per_topic):
            p.produce(topic, key=f"customer-{i % 997}".encode(), value=f'{{"seq": {i}, "topic": "{topic}"}}'.encode())
            if i % 10000 == 0:
                p.poll(0)
    p.flush(60)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    offsets = []
    for topic in topics:
        md = c.list_topics(topic, timeout=10).topics[topic]
        for part in md.partitions:
            low, high = c.get_watermark_offsets(TopicPartition(topic, part), timeout=10)
            offsets.append(TopicPartition(topic, part, low + (high - low) // 2))
    c.commit(offsets=offsets, asynchronous=False)
    c.close()
    print(f"wrote {records_per_topic} records to each of {', '.join(topics)}; group {group} committed half way")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3].split(","))
