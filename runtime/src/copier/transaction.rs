//! Ending a partition's transaction on the target: records, the offset-mapping record and the
//! progress commit together (exactly-once), or records, then mapping, then progress
//! (at-least-once); and aborting it.

use std::sync::Mutex;
use std::time::Instant;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext};

use super::decision::AbortReason;
use super::partition::{PartitionCopy, PartitionState};
use super::{CALL_TIMEOUT, Setup};
use crate::mapping::{MappingRecord, runs_from_pairs};
use crate::metrics::Metrics;
use crate::progress::{self, ProgressMeta};
use ferry_kafka::transactions::send_offsets_to_transaction;

/// Delivery reports of one partition's producer: (source offset, target offset) pairs.
#[derive(Default)]
pub(crate) struct DeliveryLog {
    delivered: Mutex<Vec<(i64, i64)>>,
    failure: Mutex<Option<String>>,
}

impl ClientContext for DeliveryLog {}

impl ProducerContext for DeliveryLog {
    /// The source offset of the record, or -1 for the run's own bookkeeping records.
    type DeliveryOpaque = Box<i64>;

    fn delivery(&self, result: &DeliveryResult<'_>, source_offset: Box<i64>) {
        match result {
            Ok(m) if *source_offset >= 0 => {
                if let Ok(mut d) = self.delivered.lock() {
                    d.push((*source_offset, m.offset()));
                }
            }
            Ok(_) => {}
            Err((e, _)) => {
                if let Ok(mut f) = self.failure.lock() {
                    f.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
}

impl DeliveryLog {
    fn take(&self) -> (Vec<(i64, i64)>, Option<String>) {
        let pairs = std::mem::take(&mut *self.delivered.lock().expect("delivery log lock"));
        let failure = self.failure.lock().expect("delivery log lock").take();
        (pairs, failure)
    }

    /// Whether a record was reported as not delivered since the last commit or abort.
    pub fn failed(&self) -> bool {
        self.failure.lock().is_ok_and(|f| f.is_some())
    }
}

#[derive(Debug)]
pub(crate) enum CommitOutcome {
    /// The transaction's records and bytes now count as copied.
    Committed {
        records: u64,
        bytes: u64,
    },
    /// Rewound to the last committed offset; the records will be copied again.
    Aborted(String),
    Fenced(String),
}

/// Commits (`abort` is `None`) or aborts the partition's transaction.
pub(crate) fn end(
    pc: &mut PartitionCopy,
    abort: Option<AbortReason>,
    setup: &Setup,
) -> CommitOutcome {
    match abort {
        None => commit(pc, setup),
        Some(reason) => fail(pc, setup, reason.to_string(), false),
    }
}

/// Ends several partitions' transactions at once: each is a broker round trip of its own.
pub(crate) fn end_in_parallel(
    work: Vec<(&mut PartitionCopy, Option<AbortReason>)>,
    setup: &Setup,
) -> Vec<CommitOutcome> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .into_iter()
            .map(|(pc, abort)| scope.spawn(move || end(pc, abort, setup)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| CommitOutcome::Aborted("the commit thread panicked".into()))
            })
            .collect()
    })
}

/// Ends the partition's current transaction: records, mapping and progress together.
fn commit(pc: &mut PartitionCopy, setup: &Setup) -> CommitOutcome {
    let spec = &setup.spec;
    if setup.exactly_once && !matches!(pc.progress.state, PartitionState::Open { .. }) {
        // Progress alone (gaps skipped up to the goal) still goes through a transaction.
        if let Err(e) = pc.producer.begin_transaction() {
            return fail(pc, setup, e.to_string(), is_fenced(&e));
        }
        pc.progress.open(Instant::now());
    }
    if let Err(e) = pc.producer.flush(CALL_TIMEOUT) {
        return fail(pc, setup, format!("flushing records: {e}"), is_fenced(&e));
    }
    let (mut pairs, failure) = pc.producer.context().take();
    if let Some(f) = failure {
        return fail(pc, setup, format!("a record was not delivered: {f}"), false);
    }
    pairs.sort_unstable();
    let runs = runs_from_pairs(&pairs);
    if !runs.is_empty() {
        let record = MappingRecord {
            source_topic: pc.source_topic.clone(),
            target_topic: pc.target_topic.clone(),
            partition: pc.partition,
            runs,
        };
        let key = record.key();
        let value = match serde_json::to_vec(&record) {
            Ok(v) => v,
            Err(e) => {
                return fail(
                    pc,
                    setup,
                    format!("encoding the offset mapping: {e}"),
                    false,
                );
            }
        };
        let topic = spec.offsets_topic();
        let rec = BaseRecord::with_opaque_to(&topic, Box::new(-1i64))
            .partition(0)
            .key(&key)
            .payload(&value);
        if let Err((e, _)) = pc.producer.send(rec) {
            return fail(
                pc,
                setup,
                format!("writing the offset mapping: {e}"),
                is_fenced(&e),
            );
        }
    }
    let next = pc.progress.next_source.max(0);
    let (records, bytes) = pc.progress.open_counts();
    let meta = ProgressMeta {
        source_topic: pc.source_topic.clone(),
        goal: pc.progress.goal,
        records: pc.progress.committed_records + records,
        bytes: pc.progress.committed_bytes + bytes,
    };
    let offsets =
        match progress::offsets_list(&[((pc.target_topic.clone(), pc.partition), next, meta)]) {
            Ok(o) => o,
            Err(e) => return fail(pc, setup, format!("{e:#}"), false),
        };
    if setup.exactly_once {
        if let Err(e) = send_offsets_to_transaction(
            &pc.producer,
            &offsets,
            &spec.progress_group(),
            CALL_TIMEOUT,
        ) {
            return fail(pc, setup, e.to_string(), e.fatal);
        }
        if let Err(e) = pc.producer.commit_transaction(CALL_TIMEOUT) {
            return fail(pc, setup, format!("committing: {e}"), is_fenced(&e));
        }
    } else {
        // At-least-once: records first, then progress. A crash in between copies them again.
        if let Err(e) = pc.producer.flush(CALL_TIMEOUT) {
            return fail(
                pc,
                setup,
                format!("flushing the offset mapping: {e}"),
                false,
            );
        }
        if let Err(e) = setup.progress_client.commit(&offsets, CommitMode::Sync) {
            return fail(pc, setup, format!("committing progress: {e}"), false);
        }
    }
    pc.progress.committed();
    CommitOutcome::Committed { records, bytes }
}

pub(crate) fn is_fenced(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::Fenced
        )
    ) || matches!(e, KafkaError::Transaction(t) if t.is_fatal())
}

/// Gives up the partition's open work: fenced, it is left to its new owner; otherwise the
/// transaction is aborted and the copy rewinds to the last commit.
pub(crate) fn fail(
    pc: &mut PartitionCopy,
    setup: &Setup,
    reason: String,
    fenced: bool,
) -> CommitOutcome {
    if fenced {
        pc.progress.fenced();
        return CommitOutcome::Fenced(reason);
    }
    if setup.exactly_once
        && matches!(pc.progress.state, PartitionState::Open { .. })
        && let Err(e) = pc.producer.abort_transaction(CALL_TIMEOUT)
    {
        // Whatever the abort left open is aborted by the next owner's fencing at the latest.
        tracing::debug!(error = %e, topic = %pc.source_topic, partition = pc.partition, "abort failed");
    }
    pc.producer.context().take();
    pc.progress.aborted();
    CommitOutcome::Aborted(reason)
}

/// Counts the outcome; records count as copied only once their transaction committed.
pub(crate) fn record_outcome(metrics: &Metrics, topic: &str, outcome: &CommitOutcome) {
    match outcome {
        CommitOutcome::Committed { records, bytes } => {
            metrics.transactions_committed.inc();
            metrics.record_committed(topic, *records, *bytes);
        }
        CommitOutcome::Aborted(reason) => {
            tracing::warn!(%reason, "transaction aborted; the partition rewinds to its last commit");
            metrics.transactions_aborted.inc();
        }
        CommitOutcome::Fenced(reason) => {
            tracing::warn!(%reason, "another worker owns this partition now");
            metrics.transactions_aborted.inc();
        }
    };
}
