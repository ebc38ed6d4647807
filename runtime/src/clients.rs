//! librdkafka clients configured for the runtime's jobs.

use std::time::Duration;

use rdkafka::ClientConfig;

use ferry_kafka::ConnectionConfig;
use ferry_mirror_api::spec::Spec;

/// `transaction.timeout.ms` of the target producers: the broker aborts a transaction left
/// open longer (the commit decision commits well before).
pub(crate) const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Reads the source: committed data only (aborted transactions are never copied), no offset
/// commits to the source, partitions spread across the run's workers by the group protocol.
pub(crate) fn source_consumer_config(spec: &Spec, source: &ConnectionConfig) -> ClientConfig {
    let mut c = source.client_config();
    c.set("group.id", spec.worker_group())
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        // Eager assignment: every rebalance revokes all, so a partition's transaction is
        // finished before anyone else can own it.
        .set("partition.assignment.strategy", "roundrobin")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set("max.poll.interval.ms", "300000")
        // Prefetch is bounded (one queue for the whole consumer): records are decompressed in
        // memory, so large prefetch costs resident memory without making the copy faster. A
        // fetch must fit in that queue, and when the queue is full librdkafka postpones the
        // partition's next fetch by `fetch.queue.backoff.ms` (1 s by default): with
        // incompressible records the queue fills on every fetch, and that pause, not the
        // brokers, set the rate (14 MB/s). Fetches are half the queue and the pause is 10 ms.
        .set(
            "queued.max.messages.kbytes",
            spec.tuning.fetch_max_kbytes.to_string(),
        )
        .set(
            "fetch.max.bytes",
            (spec.tuning.fetch_max_kbytes * 1024 / 2)
                .max(1 << 20)
                .to_string(),
        )
        .set("max.partition.fetch.bytes", "1048576")
        .set("fetch.queue.backoff.ms", "10");
    c
}

/// Writes one source partition's records to the target. With exactly-once the transactional
/// id is per source partition, so whoever takes the partition over fences the previous owner.
pub(crate) fn target_producer_config(
    spec: &Spec,
    target: &ConnectionConfig,
    transactional_id: Option<&str>,
) -> ClientConfig {
    let mut c = target.client_config();
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", spec.compression.name())
        .set("linger.ms", spec.tuning.linger_ms.to_string())
        .set("batch.size", spec.tuning.batch_size.to_string())
        // Per partition producer: a few batches in flight is enough to keep the link busy.
        .set("queue.buffering.max.kbytes", "32768")
        .set("queue.buffering.max.messages", "100000")
        .set("message.max.bytes", "10485760");
    if let Some(id) = transactional_id {
        c.set("transactional.id", id).set(
            "transaction.timeout.ms",
            TRANSACTION_TIMEOUT.as_millis().to_string(),
        );
    }
    c
}

/// A plain reader of one cluster, used to look at single records and committed offsets.
pub(crate) fn reader_config(conn: &ConnectionConfig, group: &str) -> ClientConfig {
    let mut c = conn.client_config();
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true");
    c
}
