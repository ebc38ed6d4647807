//! The copy loop of one worker.
//!
//! Partitions come from the source consumer group of the run. For each source partition the
//! worker holds one producer on the target; with exactly-once it is transactional, with a
//! transactional id derived from the partition, so a worker that takes a partition over fences
//! the previous owner and aborts whatever it left open. A transaction carries the partition's
//! records, its offset-mapping record and its progress (the next source offset, committed as an
//! offset of the run's progress group on the target). A worker killed at any point therefore
//! leaves either all of a transaction or none of it, and its successor resumes exactly there.
//!
//! - `partition`: where one partition's copy stands (an enum state) and the pure rules on it;
//! - `decision`: when a transaction ends (pure);
//! - `transaction`: ending it on the target;
//! - `rebalance`: taking partitions over and giving them up.

mod decision;
mod empty;
mod partition;
mod rebalance;
mod transaction;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use self::decision::{AbortReason, CommitDecision, Limits, decide};
use self::partition::{PartitionCopy, PartitionState, worker_state};
use self::rebalance::CopyContext;
use self::transaction::{CommitOutcome, end_in_parallel, fail, is_fenced, record_outcome};
use crate::clients::{
    TRANSACTION_TIMEOUT, reader_config, source_consumer_config, target_producer_config,
};
use crate::end_offsets::some_end_offsets;
use crate::metrics::Metrics;
use crate::progress::PartitionKey;
use ferry_kafka::ConnectionConfig;
use ferry_mirror_api::now_ms;
use ferry_mirror_api::spec::{Mode, Spec};
use ferry_mirror_api::status::{PartitionStatus, WorkerState, WorkerStatus};

/// Bound of each blocking transactional call (init, flush, commit, abort) and progress read.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The partitions this worker owns, by source topic and partition.
type Owned = HashMap<PartitionKey, PartitionCopy>;

/// What the copy loop and the rebalance callbacks share.
struct Setup {
    spec: Spec,
    target: ConnectionConfig,
    exactly_once: bool,
    /// Reads (and, without transactions, commits) the progress group on the target.
    progress_client: BaseConsumer,
    /// Reads source end offsets (never joins a group).
    watermarks: BaseConsumer,
    /// Reads partitions short of their goal with nothing delivered (never joins a group).
    probe: BaseConsumer,
    /// Set by a callback that cannot go on; the loop returns it as the worker's error.
    fatal: Mutex<Option<String>>,
}

/// How a worker's run ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Finish {
    /// `until_caught_up` reached every partition's goal.
    CaughtUp,
    /// Asked to stop (signal).
    Stopped,
}

/// Receives each status a worker publishes.
pub(crate) type StatusCallback = Box<dyn Fn(&WorkerStatus) + Send + Sync>;

pub(crate) struct Worker {
    pub spec: Spec,
    pub worker_id: String,
    pub source: ConnectionConfig,
    pub target: ConnectionConfig,
    pub metrics: Arc<Metrics>,
    pub stop: Arc<AtomicBool>,
    /// Latest status, shared with the HTTP endpoint.
    pub status: Arc<Mutex<WorkerStatus>>,
    pub http_address: Option<String>,
    /// Source topics to copy.
    pub topics: Vec<String>,
    /// Called with each status the worker publishes (progress display).
    pub on_status: Option<StatusCallback>,
}

/// Where the consumer must read a partition again from.
struct Rewind {
    topic: String,
    partition: i32,
    to: i64,
}

impl Rewind {
    fn of(pc: &PartitionCopy) -> Rewind {
        Rewind {
            topic: pc.source_topic.clone(),
            partition: pc.partition,
            to: pc.progress.next_source,
        }
    }

    fn apply(&self, consumer: &BaseConsumer<CopyContext>) -> Result<()> {
        let offset = if self.to >= 0 {
            Offset::Offset(self.to)
        } else {
            Offset::Beginning
        };
        consumer
            .seek(&self.topic, self.partition, offset, Duration::from_secs(10))
            .with_context(|| format!("rewinding {}[{}]", self.topic, self.partition))
    }
}

fn lock(owned: &Mutex<Owned>) -> std::sync::MutexGuard<'_, Owned> {
    owned.lock().expect("partition lock")
}

impl Worker {
    /// Copies until caught up (or stopped). `run_complete` is asked now and then whether the
    /// whole run (all workers) is done.
    pub fn run(&self, run_complete: &dyn Fn() -> Result<bool>) -> Result<Finish> {
        let spec = &self.spec;
        let setup = Arc::new(Setup {
            spec: spec.clone(),
            target: self.target.clone(),
            exactly_once: spec.exactly_once,
            progress_client: reader_config(&self.target, &spec.progress_group()).create()?,
            watermarks: reader_config(&self.source, &format!("{}.watermarks", spec.worker_group()))
                .create()?,
            probe: reader_config(&self.source, &format!("{}.probe", spec.worker_group()))
                .create()?,
            fatal: Mutex::new(None),
        });
        let owned: Arc<Mutex<Owned>> = Arc::default();
        let context = CopyContext {
            setup: Arc::clone(&setup),
            owned: Arc::clone(&owned),
            metrics: Arc::clone(&self.metrics),
        };
        let consumer: BaseConsumer<CopyContext> = source_consumer_config(spec, &self.source)
            .create_with_context(context)
            .context("creating the source consumer")?;
        let names: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&names)
            .context("subscribing to the source topics")?;
        let status_producer: BaseProducer =
            target_producer_config(spec, &self.target, None).create()?;

        let limits = Limits::new(&spec.tuning, TRANSACTION_TIMEOUT);
        let status_every = Duration::from_millis(spec.tuning.status_interval_ms);
        let mut last_status = Instant::now() - status_every;
        let mut rate = RateWindow::default();
        let mut idle = false;
        let mut last_report_poll = Instant::now();
        let mut last_trim = Instant::now();
        let mut stalled: HashMap<PartitionKey, i64> = HashMap::new();

        loop {
            if let Some(fatal) = setup.fatal.lock().expect("fatal lock").take() {
                return Err(anyhow!(fatal));
            }
            if self.stop.load(Ordering::Relaxed) {
                self.finish_all(&owned, &setup);
                self.publish_status(&owned, &setup, &status_producer, &mut rate);
                flush_status(&status_producer);
                consumer.unsubscribe();
                return Ok(Finish::Stopped);
            }
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    idle = false;
                    if let Some(rewind) = self.copy_one(&m, &owned, &setup) {
                        rewind.apply(&consumer)?;
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "source consumer error");
                    self.metrics.errors.inc();
                }
                None => idle = true,
            }
            if last_report_poll.elapsed() >= Duration::from_millis(20) {
                last_report_poll = Instant::now();
                for pc in lock(&owned).values() {
                    pc.producer.poll(Duration::ZERO);
                }
            }
            if last_trim.elapsed() >= Duration::from_secs(1) {
                last_trim = Instant::now();
                crate::memory::release_free_memory();
            }
            self.commit_due(&consumer, &owned, &setup, &limits, idle)?;
            // Once every owned partition is done, check for completion right away instead of
            // waiting for the next status tick.
            let finished_here = spec.mode == Mode::UntilCaughtUp && {
                let owned = lock(&owned);
                !owned.is_empty()
                    && owned
                        .values()
                        .all(|pc| pc.progress.state == PartitionState::Done)
            };
            let due = if finished_here {
                Duration::from_millis(200)
            } else {
                status_every
            };
            if last_status.elapsed() >= due {
                if spec.mode == Mode::UntilCaughtUp {
                    self.settle_empty(&consumer, &owned, &setup, &mut stalled);
                }
                last_status = Instant::now();
                let status = self.publish_status(&owned, &setup, &status_producer, &mut rate);
                if spec.mode == Mode::UntilCaughtUp
                    && status.state == WorkerState::CaughtUp
                    && run_complete()?
                {
                    flush_status(&status_producer);
                    return Ok(Finish::CaughtUp);
                }
            }
        }
    }

    /// Hands one source record to its partition's producer. Returns where to rewind the
    /// partition when its open work had to be abandoned.
    fn copy_one(
        &self,
        m: &BorrowedMessage<'_>,
        owned: &Mutex<Owned>,
        setup: &Setup,
    ) -> Option<Rewind> {
        let mut owned = lock(owned);
        let key = (m.topic().to_string(), m.partition());
        let pc = owned.get_mut(&key)?;
        if !pc.progress.wants(m.offset()) {
            return None;
        }
        if !matches!(pc.progress.state, PartitionState::Open { .. }) {
            if setup.exactly_once
                && let Err(e) = pc.producer.begin_transaction()
            {
                // Not copied: fenced, the partition is its new owner's; otherwise read the
                // record again rather than skip it.
                let outcome = fail(
                    pc,
                    setup,
                    format!("beginning a transaction: {e}"),
                    is_fenced(&e),
                );
                record_outcome(&self.metrics, &pc.source_topic, &outcome);
                return matches!(outcome, CommitOutcome::Aborted(_)).then(|| Rewind::of(pc));
            }
            pc.progress.open(Instant::now());
        }
        let size = m.payload_len() + m.key().map_or(0, <[u8]>::len);
        let mut record = BaseRecord::with_opaque_to(&pc.target_topic, Box::new(m.offset()))
            .partition(m.partition());
        if let Some(k) = m.key() {
            record = record.key(k);
        }
        if let Some(v) = m.payload() {
            record = record.payload(v);
        }
        if let Some(ts) = m.timestamp().to_millis() {
            record = record.timestamp(ts);
        }
        if let Some(h) = m.headers() {
            record = record.headers(h.detach());
        }
        loop {
            match pc.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // Serves delivery reports only (no broker request) until there is room.
                    record = back;
                    pc.producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => {
                    tracing::warn!(error = %e, "produce failed; aborting the partition's transaction");
                    let outcome = fail(pc, setup, e.to_string(), is_fenced(&e));
                    record_outcome(&self.metrics, &pc.source_topic, &outcome);
                    // The aborted records are gone from the target: read them again.
                    return matches!(outcome, CommitOutcome::Aborted(_)).then(|| Rewind::of(pc));
                }
            }
        }
        let in_batch = pc.progress.copied(m.offset(), size as u64);
        // Delivered records stay in memory until their reports are served: serve them often.
        if in_batch % 256 == 0 {
            pc.producer.poll(Duration::ZERO);
        }
        None
    }

    /// Ends the transactions that are due (old or big enough, at the goal, or doomed), in
    /// parallel and with no lock held, and rewinds the aborted partitions.
    fn commit_due(
        &self,
        consumer: &BaseConsumer<CopyContext>,
        owned: &Mutex<Owned>,
        setup: &Setup,
        limits: &Limits,
        idle: bool,
    ) -> Result<()> {
        // The position is the consumer's local state, not a broker request.
        let positions = if idle { consumer.position().ok() } else { None };
        let now = Instant::now();
        let rewinds = self.end_transactions(owned, setup, |pc| {
            if let Some(positions) = &positions
                && !matches!(
                    pc.progress.state,
                    PartitionState::Done | PartitionState::Fenced
                )
            {
                pc.progress.skip_undelivered(position_of(
                    positions,
                    &pc.source_topic,
                    pc.partition,
                ));
            }
            decide(
                &pc.progress,
                now,
                limits,
                idle,
                pc.producer.context().failed(),
            )
        });
        for rewind in rewinds {
            rewind.apply(consumer)?;
        }
        Ok(())
    }

    /// Partitions short of their goal that delivered nothing since the last look (same
    /// `next_source`, nothing open, the consumer's position short of the goal or unknown) are
    /// checked on the source; those with no committed record left before their goal reach it,
    /// and the next commit decision commits that progress.
    fn settle_empty(
        &self,
        consumer: &BaseConsumer<CopyContext>,
        owned: &Mutex<Owned>,
        setup: &Setup,
        stalled: &mut HashMap<PartitionKey, i64>,
    ) {
        let positions = consumer.position().ok();
        let now: HashMap<PartitionKey, empty::Candidate> = lock(owned)
            .iter()
            .filter_map(|(key, pc)| {
                let (from, goal) = pc.progress.short_of_goal_idle()?;
                let position = positions
                    .as_ref()
                    .and_then(|p| position_of(p, &pc.source_topic, pc.partition));
                // Read from where the copy stands, not from the position: after a rewind the
                // position may not reflect the seek yet.
                (position.is_none_or(|p| p < goal)).then(|| {
                    (
                        key.clone(),
                        empty::Candidate {
                            key: key.clone(),
                            from,
                            goal,
                        },
                    )
                })
            })
            .collect();
        let due: Vec<empty::Candidate> = now
            .values()
            .filter(|c| stalled.get(&c.key) == Some(&c.from))
            .cloned()
            .collect();
        *stalled = now.into_iter().map(|(k, c)| (k, c.from)).collect();
        if due.is_empty() {
            return;
        }
        match empty::proven_empty(&setup.probe, &due, Duration::from_secs(3)) {
            Ok(keys) => {
                let mut owned = lock(owned);
                for key in keys {
                    if let Some(pc) = owned.get_mut(&key) {
                        tracing::debug!(topic = %key.0, partition = key.1, "nothing left to copy before the goal");
                        pc.progress.nothing_before_goal();
                    }
                }
            }
            Err(e) => tracing::debug!(
                error = format!("{e:#}"),
                "partitions short of their goal not checked"
            ),
        }
    }

    /// Commits every open transaction (on stop; nothing is read again after it).
    fn finish_all(&self, owned: &Mutex<Owned>, setup: &Setup) {
        self.end_transactions(owned, setup, |pc| match pc.progress.state {
            PartitionState::Open { .. } => CommitDecision::CommitNow,
            _ => CommitDecision::KeepGoing,
        });
    }

    /// Takes the partitions `decide` wants committed or aborted out of the map, ends their
    /// transactions in parallel without the lock, and puts them back. Returns where the
    /// aborted ones must be read again. Rebalances only happen inside `consumer.poll`, on this
    /// thread, so nothing else looks for the partitions while they are out.
    fn end_transactions(
        &self,
        owned: &Mutex<Owned>,
        setup: &Setup,
        mut decide: impl FnMut(&mut PartitionCopy) -> CommitDecision,
    ) -> Vec<Rewind> {
        let mut due: Vec<(PartitionCopy, Option<AbortReason>)> = {
            let mut owned = lock(owned);
            let keys: Vec<(PartitionKey, Option<AbortReason>)> = owned
                .iter_mut()
                .filter_map(|(k, pc)| match decide(pc) {
                    CommitDecision::KeepGoing => None,
                    CommitDecision::CommitNow => Some((k.clone(), None)),
                    CommitDecision::Abort(reason) => Some((k.clone(), Some(reason))),
                })
                .collect();
            keys.into_iter()
                .filter_map(|(k, abort)| owned.remove(&k).map(|pc| (pc, abort)))
                .collect()
        };
        if due.is_empty() {
            return Vec::new();
        }
        let work = due.iter_mut().map(|(pc, abort)| (pc, *abort)).collect();
        let outcomes = end_in_parallel(work, setup);
        let mut rewinds = Vec::new();
        {
            let mut owned = lock(owned);
            for ((pc, _), outcome) in due.into_iter().zip(outcomes) {
                if let CommitOutcome::Aborted(_) = &outcome {
                    rewinds.push(Rewind::of(&pc));
                }
                record_outcome(&self.metrics, &pc.source_topic, &outcome);
                owned.insert((pc.source_topic.clone(), pc.partition), pc);
            }
        }
        rewinds
    }

    fn publish_status(
        &self,
        owned: &Mutex<Owned>,
        setup: &Setup,
        producer: &BaseProducer,
        rate: &mut RateWindow,
    ) -> WorkerStatus {
        let keys: Vec<PartitionKey> = lock(owned).keys().cloned().collect();
        // One batched request for every owned partition, with no lock held.
        // Partitions whose end offset is not read now keep the last one.
        let ends = match some_end_offsets(&setup.watermarks, &keys, Duration::from_secs(5)) {
            Ok((ends, errors)) => {
                if let Some(e) = errors.first() {
                    tracing::debug!(error = %e, more = errors.len() - 1, "end offsets not read");
                }
                ends
            }
            Err(e) => {
                tracing::debug!(error = format!("{e:#}"), "end offsets not read");
                HashMap::new()
            }
        };
        let (partitions, state) = {
            let mut owned = lock(owned);
            for (key, pc) in owned.iter_mut() {
                if let Some(end) = ends.get(key) {
                    pc.progress.end_offset = *end;
                }
                self.metrics
                    .set_lag(&pc.source_topic, pc.partition, pc.progress.lag());
            }
            let mut partitions: Vec<PartitionStatus> =
                owned.values().map(PartitionCopy::status).collect();
            partitions.sort_by(|a, b| {
                (&a.source_topic, a.partition).cmp(&(&b.source_topic, b.partition))
            });
            let state = worker_state(
                self.spec.mode,
                self.spec.in_sync_lag,
                owned.values().map(|pc| &pc.progress),
            );
            (partitions, state)
        };
        let records = self.metrics.records_total();
        let bytes = self.metrics.bytes_total();
        let (rps, bps) = rate.update(records, bytes);
        let status = WorkerStatus {
            worker_id: self.worker_id.clone(),
            run_id: self.spec.run_id.clone(),
            updated_at_ms: now_ms(),
            state,
            http: self.http_address.clone(),
            records_copied: records,
            bytes_copied: bytes,
            records_per_second: rps,
            bytes_per_second: bps,
            transactions_committed: self.metrics.transactions_committed.get(),
            transactions_aborted: self.metrics.transactions_aborted.get(),
            partitions,
            errors: Vec::new(),
        };
        match serde_json::to_vec(&status) {
            Ok(value) => {
                let (key, topic) = (status.key(), self.spec.status_topic());
                if let Err((e, _)) = producer.send(
                    BaseRecord::to(&topic)
                        .partition(0)
                        .key(&key)
                        .payload(&value),
                ) {
                    tracing::warn!(error = %e, "cannot publish status");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot encode status"),
        }
        producer.poll(Duration::ZERO);
        if let Some(show) = &self.on_status {
            show(&status);
        }
        *self.status.lock().expect("status lock") = status.clone();
        status
    }
}

/// The consumer's position in one partition, if it has one.
fn position_of(positions: &TopicPartitionList, topic: &str, partition: i32) -> Option<i64> {
    match positions.find_partition(topic, partition)?.offset() {
        Offset::Offset(p) => Some(p),
        _ => None,
    }
}

/// Waits for the last status records; a status lost at exit is replaced by the next worker's.
fn flush_status(producer: &BaseProducer) {
    if let Err(e) = producer.flush(Duration::from_secs(10)) {
        tracing::warn!(error = %e, "the last status was not published");
    }
}

/// Records and bytes per second over the last status interval.
#[derive(Default)]
struct RateWindow {
    last: Option<(Instant, u64, u64)>,
}

impl RateWindow {
    fn update(&mut self, records: u64, bytes: u64) -> (f64, f64) {
        let now = Instant::now();
        let out = match self.last {
            Some((at, r, b)) => {
                let secs = now.duration_since(at).as_secs_f64().max(1e-3);
                ((records - r) as f64 / secs, (bytes - b) as f64 / secs)
            }
            None => (0.0, 0.0),
        };
        self.last = Some((now, records, bytes));
        out
    }
}
