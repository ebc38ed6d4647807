//! librdkafka clients configured for the runtime's jobs.

use std::time::Duration;

use rdkafka::ClientConfig;

use ferry_kafka::ConnectionConfig;
use ferry_mirror_api::spec::Spec;

/// `transaction.timeout.ms` of the target producers: the broker aborts a transaction left
/// open longer (the commit decision commits well before).
pub(crate) const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a killed worker's slots wait before the slots group hands them to another worker.
pub(crate) const SLOT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the source: committed data only (aborted transactions are never copied), no offset
/// commits to the source. Partitions are assigned by hand, those of the slots the worker owns;
/// the group id only names the client (it never joins a group).
pub(crate) fn source_consumer_config(
    spec: &Spec,
    source: &ConnectionConfig,
    run_partitions: usize,
) -> ClientConfig {
    let mut c = source.client_config();
    c.set("group.id", spec.worker_group())
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        // Prefetch is bounded (one queue for the whole consumer): records are decompressed in
        // memory, so large prefetch costs resident memory without making the copy faster. A
        // fetch must fit in that queue, and when the queue is full librdkafka postpones the
        // partition's next fetch by `fetch.queue.backoff.ms` (1 s by default): with
        // incompressible records the queue fills on every fetch, and that pause, not the
        // brokers, set the rate (14 MB/s). Fetches are half the queue and the pause is short
        // (see `fetch_queue_backoff`).
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
        .set(
            "fetch.queue.backoff.ms",
            fetch_queue_backoff(run_partitions).as_millis().to_string(),
        );
    c
}

/// How long a partition's fetch waits when the prefetch queue is full. Each time the pause ends,
/// librdkafka's fetcher wakes and walks every assigned partition under its lock: at 10 ms and
/// 5,000 partitions that walk took half a worker's CPU. A wide run has always another partition
/// with data queued, so a longer pause costs it nothing; a narrow run keeps 10 ms, which the
/// incompressible few-partition copy needs.
pub(crate) fn fetch_queue_backoff(run_partitions: usize) -> Duration {
    let millis = u64::try_from(run_partitions / 20).unwrap_or(u64::MAX);
    Duration::from_millis(millis.clamp(10, 500))
}

/// Joins the run's slots group on the target, which hands out the slots (partitions of the
/// slots topic). Static membership (the worker id): a worker restarted under the same id gets
/// its slots back without a rebalance. Eager assignment: every rebalance revokes all, so a
/// slot's transaction is finished before anyone else can own the slot.
pub(crate) fn slots_consumer_config(
    spec: &Spec,
    target: &ConnectionConfig,
    worker_id: &str,
) -> ClientConfig {
    let mut c = target.client_config();
    c.set("group.id", spec.slots_group())
        .set("group.instance.id", worker_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "latest")
        .set("partition.assignment.strategy", "roundrobin")
        .set(
            "session.timeout.ms",
            SLOT_SESSION_TIMEOUT.as_millis().to_string(),
        )
        .set("heartbeat.interval.ms", "1000")
        .set("max.poll.interval.ms", "300000");
    c
}

/// Writes the records of one work slot (or the run's status and report) to the target. With
/// exactly-once the transactional id is the slot's, so whoever takes the slot over fences the
/// previous owner.
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
        // One producer per owned slot: together they buffer at most about 256 MiB, each a
        // few batches.
        .set(
            "queue.buffering.max.kbytes",
            (262_144 / u64::from(spec.tuning.slots.max(1)))
                .clamp(4096, 32768)
                .to_string(),
        )
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

/// Writes the run's own bookkeeping (status, target checks, command results, group results)
/// outside any transaction. Not idempotent: an idempotent producer first needs a producer id,
/// which librdkafka asks for on a 500 ms timer when no broker is up yet, so every new one
/// waited half a second before its first write, on the start and finish paths of every run.
/// One request in flight keeps these keyed records in order on retries; a retried duplicate of
/// a record is harmless in a compacted topic read by key.
pub(crate) fn status_producer_config(spec: &Spec, target: &ConnectionConfig) -> ClientConfig {
    let mut c = target_producer_config(spec, target, None);
    c.set("enable.idempotence", "false")
        .set("max.in.flight.requests.per.connection", "1")
        .set("linger.ms", "0");
    c
}

/// A plain reader of one cluster, used to look at single records and committed offsets.
pub(crate) fn reader_config(conn: &ConnectionConfig, group: &str) -> ClientConfig {
    let mut c = conn.client_config();
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        // Readers read to the end and stop there; the end is known when a fetch comes back
        // empty, which the broker holds for `fetch.wait.max.ms` (500 ms by default, paid by
        // every read of the mapping or status topic on the way to the final report).
        .set(
            "fetch.wait.max.ms",
            READER_FETCH_WAIT.as_millis().to_string(),
        );
    c
}

/// How long a reader's empty fetch waits at the broker (see [`reader_config`]).
const READER_FETCH_WAIT: Duration = Duration::from_millis(20);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_queue_pause_grows_with_the_runs_width() {
        assert_eq!(fetch_queue_backoff(12), Duration::from_millis(10));
        assert_eq!(fetch_queue_backoff(200), Duration::from_millis(10));
        assert_eq!(fetch_queue_backoff(1_000), Duration::from_millis(50));
        assert_eq!(fetch_queue_backoff(5_000), Duration::from_millis(250));
        assert_eq!(fetch_queue_backoff(100_000), Duration::from_millis(500));
    }
}
