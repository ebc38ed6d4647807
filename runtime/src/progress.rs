//! The run's progress: for each target partition, the next source offset to copy, committed as
//! an offset of the run's progress group on the target (inside the same transaction as the
//! records it covers), with the partition's goal in the offset metadata.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

/// Stored in the committed offset's metadata (Kafka allows 4 KiB by default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressMeta {
    pub source_topic: String,
    /// `until_caught_up`: the source end offset recorded when the partition was first taken.
    #[serde(default)]
    pub goal: Option<i64>,
    /// Records committed for this partition over the whole run, up to this progress.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub records: u64,
    /// Key and value bytes of those records.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Next source offset to copy; `None` when nothing was committed yet.
    pub next_source: Option<i64>,
    pub meta: ProgressMeta,
}

pub type PartitionKey = (String, i32);

/// Reads committed progress for the given target partitions. The reader is read_committed, so
/// librdkafka asks for stable offsets and waits out transactions still in flight.
pub fn read(
    reader: &BaseConsumer,
    partitions: &[PartitionKey],
    timeout: Duration,
) -> Result<HashMap<PartitionKey, Progress>> {
    let mut tpl = TopicPartitionList::new();
    for (topic, p) in partitions {
        tpl.add_partition(topic, *p);
    }
    let committed = committed_with_retry(reader, &tpl, timeout)
        .context("reading the run's progress from the target")?;
    let mut out = HashMap::new();
    for e in committed.elements() {
        let next_source = match e.offset() {
            Offset::Offset(n) => Some(n),
            _ => None,
        };
        let meta = serde_json::from_str(e.metadata()).unwrap_or_default();
        out.insert(
            (e.topic().to_string(), e.partition()),
            Progress { next_source, meta },
        );
    }
    Ok(out)
}

/// Committed offsets, retrying the coordinator errors a new or restarting cluster gives for a
/// while (the group coordinator is elected lazily).
pub fn committed_with_retry<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    tpl: &TopicPartitionList,
    timeout: Duration,
) -> rdkafka::error::KafkaResult<TopicPartitionList> {
    use rdkafka::error::RDKafkaErrorCode as E;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        // Each attempt gets what is left of the bound, so retries never add up past it.
        let left = deadline
            .saturating_duration_since(std::time::Instant::now())
            .max(Duration::from_millis(100));
        match consumer.committed_offsets(tpl.clone(), left) {
            Err(e)
                if std::time::Instant::now() < deadline
                    && matches!(
                        e.rdkafka_error_code(),
                        Some(
                            E::NotCoordinator
                                | E::CoordinatorLoadInProgress
                                | E::CoordinatorNotAvailable
                                | E::OperationTimedOut
                                | E::RequestTimedOut
                        )
                    ) =>
            {
                tracing::debug!(error = %e, "committed offsets not readable yet; retrying");
                std::thread::sleep(Duration::from_millis(500));
            }
            other => return other,
        }
    }
}

/// The offsets list to commit: next source offset per target partition, with metadata.
pub fn offsets_list(entries: &[(PartitionKey, i64, ProgressMeta)]) -> Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for ((topic, p), next, meta) in entries {
        let mut e = tpl.add_partition(topic, *p);
        e.set_offset(Offset::Offset(*next))?;
        e.set_metadata(serde_json::to_string(meta)?);
    }
    Ok(tpl)
}
