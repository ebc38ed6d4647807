//! The copy loop of one worker.
//!
//! Partitions come from the source consumer group of the run. For each source partition the
//! worker holds one producer on the target; with exactly-once it is transactional, with a
//! transactional id derived from the partition, so a worker that takes a partition over fences
//! the previous owner and aborts whatever it left open. A transaction carries the partition's
//! records, its offset-mapping record and its progress (the next source offset, committed as an
//! offset of the run's progress group on the target). A worker killed at any point therefore
//! leaves either all of a transaction or none of it, and its successor resumes exactly there.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use rdkafka::bindings::rd_kafka_resp_err_t as RespErr;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};

use crate::clients::{reader_config, source_consumer_config, target_producer_config};
use crate::mapping::{MappingRecord, runs_from_pairs};
use crate::metrics::Metrics;
use crate::progress::{self, PartitionKey, ProgressMeta};
use crate::spec::{Mode, Spec};
use crate::status::{PartitionStatus, WorkerStatus, now_ms};
use ferry_kafka::ConnectionConfig;
use ferry_kafka::transactions::send_offsets_to_transaction;

const TXN_TIMEOUT: Duration = Duration::from_secs(60);

/// Delivery reports of one partition's producer: (source offset, target offset) pairs.
#[derive(Default)]
pub struct DeliveryLog {
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
}

/// One source partition this worker currently owns.
struct PartitionCopy {
    source_topic: String,
    target_topic: String,
    partition: i32,
    producer: BaseProducer<DeliveryLog>,
    /// Next source offset to copy.
    next_source: i64,
    /// `next_source` as of the last committed transaction.
    committed_next: i64,
    goal: Option<i64>,
    in_txn: bool,
    txn_started: Instant,
    txn_bytes: u64,
    txn_records: u64,
    /// Progress at `goal` is committed: nothing left to do here.
    done: bool,
    /// Another worker took over; ignore until the next rebalance.
    fenced: bool,
    end_offset: i64,
}

enum CommitOutcome {
    Committed,
    /// Rewound to the last committed offset; the records will be copied again.
    Aborted(String),
    Fenced(String),
}

/// What the rebalance callback needs to take partitions over.
struct Setup {
    spec: Spec,
    target: ConnectionConfig,
    exactly_once: bool,
    /// Reads (and, without transactions, commits) the progress group on the target.
    progress_client: BaseConsumer,
    /// Reads source end offsets (never joins a group).
    watermarks: BaseConsumer,
    fatal: Mutex<Option<String>>,
}

struct CopyContext {
    setup: Arc<Setup>,
    owned: Arc<Mutex<HashMap<PartitionKey, PartitionCopy>>>,
    metrics: Arc<Metrics>,
}

impl ClientContext for CopyContext {}

impl ConsumerContext for CopyContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RespErr, tpl: &mut TopicPartitionList) {
        let mut owned = self.owned.lock().expect("partition lock");
        match err {
            RespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let wanted: Vec<PartitionKey> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                match take_partitions(&self.setup, &wanted) {
                    Ok(taken) => {
                        for pc in taken {
                            let offset = if pc.next_source >= 0 {
                                Offset::Offset(pc.next_source)
                            } else {
                                Offset::Beginning
                            };
                            let _ =
                                tpl.set_partition_offset(&pc.source_topic, pc.partition, offset);
                            owned.insert((pc.source_topic.clone(), pc.partition), pc);
                        }
                        tracing::info!(partitions = owned.len(), "partitions assigned");
                    }
                    Err(e) => {
                        tracing::error!(error = format!("{e:#}"), "cannot take over partitions");
                        *self.setup.fatal.lock().expect("fatal lock") = Some(format!("{e:#}"));
                    }
                }
                self.metrics.assigned_partitions.set(owned.len() as i64);
                if let Err(e) = consumer.assign(tpl) {
                    tracing::error!(error = %e, "assign failed");
                }
            }
            RespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                // Finish open transactions before anyone else may own these partitions.
                for pc in owned.values_mut() {
                    if pc.in_txn && !pc.fenced {
                        let outcome = commit(pc, &self.setup);
                        record_outcome(&self.metrics, &outcome);
                    }
                }
                owned.clear();
                self.metrics.assigned_partitions.set(0);
                tracing::info!("partitions revoked");
                if let Err(e) = consumer.unassign() {
                    tracing::error!(error = %e, "unassign failed");
                }
            }
            other => tracing::warn!(error = ?other, "rebalance error"),
        }
    }
}

/// Creates (and with exactly-once, initialises, fencing earlier owners) one producer per
/// partition, in parallel, then reads where each partition's copy stands.
fn take_partitions(setup: &Setup, wanted: &[PartitionKey]) -> Result<Vec<PartitionCopy>> {
    let spec = &setup.spec;
    let producers: Vec<Result<BaseProducer<DeliveryLog>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = wanted
            .iter()
            .map(|(topic, p)| {
                scope.spawn(move || -> Result<BaseProducer<DeliveryLog>> {
                    let txn_id = format!("ferry-mirror.{}.{topic}.{p}", spec.run_id);
                    let producer: BaseProducer<DeliveryLog> = target_producer_config(
                        spec,
                        &setup.target,
                        setup.exactly_once.then_some(txn_id.as_str()),
                    )
                    .create_with_context(DeliveryLog::default())
                    .context("creating a target producer")?;
                    if setup.exactly_once {
                        producer
                            .init_transactions(TXN_TIMEOUT)
                            .with_context(|| format!("initialising transactions for {txn_id}"))?;
                    }
                    Ok(producer)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("producer setup panicked")))
            })
            .collect()
    });
    let target_keys: Vec<PartitionKey> = wanted
        .iter()
        .map(|(t, p)| (spec.target_topic(t), *p))
        .collect();
    // After init_transactions every earlier owner's transaction is finished, so this is stable.
    let progress = progress::read(&setup.progress_client, &target_keys, TXN_TIMEOUT)?;
    let mut out = Vec::new();
    for (((source_topic, partition), target_key), producer) in
        wanted.iter().zip(&target_keys).zip(producers)
    {
        let producer = producer?;
        let stored = progress.get(target_key);
        let next_source = stored.and_then(|p| p.next_source).unwrap_or(-1);
        let goal = match setup.spec.mode {
            Mode::Continuous => None,
            Mode::UntilCaughtUp => match stored.and_then(|p| p.meta.goal) {
                Some(goal) => Some(goal),
                // First time anyone takes this partition: its goal is the end offset now.
                None => Some(
                    setup
                        .watermarks
                        .fetch_watermarks(source_topic, *partition, TXN_TIMEOUT)
                        .with_context(|| {
                            format!("reading the end offset of {source_topic}[{partition}]")
                        })?
                        .1,
                ),
            },
        };
        tracing::debug!(topic = %source_topic, partition, next_source, ?goal, "taking partition");
        out.push(PartitionCopy {
            source_topic: source_topic.clone(),
            target_topic: target_key.0.clone(),
            partition: *partition,
            producer,
            next_source,
            committed_next: next_source,
            goal,
            in_txn: false,
            txn_started: Instant::now(),
            txn_bytes: 0,
            txn_records: 0,
            done: false,
            fenced: false,
            end_offset: goal.unwrap_or(0),
        });
    }
    Ok(out)
}

/// Ends the partition's current transaction: records, mapping and progress together.
fn commit(pc: &mut PartitionCopy, setup: &Setup) -> CommitOutcome {
    let spec = &setup.spec;
    if setup.exactly_once && !pc.in_txn {
        if let Err(e) = pc.producer.begin_transaction() {
            return fail(pc, setup, e.to_string(), is_fenced(&e));
        }
        pc.in_txn = true;
    }
    if let Err(e) = pc.producer.flush(TXN_TIMEOUT) {
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
        let value = serde_json::to_vec(&record).unwrap_or_default();
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
    let next = pc.next_source.max(0);
    let meta = ProgressMeta {
        source_topic: pc.source_topic.clone(),
        goal: pc.goal,
    };
    let offsets =
        match progress::offsets_list(&[((pc.target_topic.clone(), pc.partition), next, meta)]) {
            Ok(o) => o,
            Err(e) => return fail(pc, setup, format!("{e:#}"), false),
        };
    if setup.exactly_once {
        if let Err(e) =
            send_offsets_to_transaction(&pc.producer, &offsets, &spec.progress_group(), TXN_TIMEOUT)
        {
            return fail(pc, setup, e.to_string(), e.fatal);
        }
        if let Err(e) = pc.producer.commit_transaction(TXN_TIMEOUT) {
            return fail(pc, setup, format!("committing: {e}"), is_fenced(&e));
        }
    } else {
        // At-least-once: records first, then progress. A crash in between copies them again.
        if let Err(e) = pc.producer.flush(TXN_TIMEOUT) {
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
    pc.in_txn = false;
    pc.committed_next = next;
    pc.txn_bytes = 0;
    pc.txn_records = 0;
    if pc.goal.is_some_and(|g| next >= g) {
        pc.done = true;
    }
    CommitOutcome::Committed
}

fn is_fenced(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::Fenced
        )
    ) || matches!(e, KafkaError::Transaction(t) if t.is_fatal())
}

fn fail(pc: &mut PartitionCopy, setup: &Setup, reason: String, fenced: bool) -> CommitOutcome {
    if fenced {
        pc.fenced = true;
        pc.in_txn = false;
        return CommitOutcome::Fenced(reason);
    }
    if setup.exactly_once && pc.in_txn {
        let _ = pc.producer.abort_transaction(TXN_TIMEOUT);
    }
    pc.producer.context().take();
    pc.in_txn = false;
    pc.next_source = pc.committed_next;
    pc.txn_bytes = 0;
    pc.txn_records = 0;
    CommitOutcome::Aborted(reason)
}

fn record_outcome(metrics: &Metrics, outcome: &CommitOutcome) {
    match outcome {
        CommitOutcome::Committed => {
            metrics.transactions_committed.inc();
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

/// How a worker's run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Finish {
    /// `until_caught_up` reached every partition's goal.
    CaughtUp,
    /// Asked to stop (signal).
    Stopped,
}

/// Receives each status a worker publishes.
pub type StatusCallback = Box<dyn Fn(&WorkerStatus) + Send + Sync>;

pub struct Worker {
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
            fatal: Mutex::new(None),
        });
        let owned: Arc<Mutex<HashMap<PartitionKey, PartitionCopy>>> = Arc::default();
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

        let tuning = &spec.tuning;
        let txn_max = Duration::from_millis(tuning.transaction_max_ms);
        let status_every = Duration::from_millis(tuning.status_interval_ms);
        let mut last_status = Instant::now() - status_every;
        let mut rate = RateWindow::default();
        let mut idle_polls = 0u32;
        let mut last_report_poll = Instant::now();
        let mut last_trim = Instant::now();

        loop {
            if let Some(fatal) = setup.fatal.lock().expect("fatal lock").take() {
                return Err(anyhow!(fatal));
            }
            if self.stop.load(Ordering::Relaxed) {
                self.finish_all(&owned, &setup);
                self.publish_status(&owned, &setup, &status_producer, &mut rate);
                let _ = status_producer.flush(Duration::from_secs(10));
                consumer.unsubscribe();
                return Ok(Finish::Stopped);
            }
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    idle_polls = 0;
                    self.copy_one(&m, &owned, &setup)?;
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "source consumer error");
                    self.metrics.errors.inc();
                }
                None => idle_polls += 1,
            }
            if last_report_poll.elapsed() >= Duration::from_millis(20) {
                last_report_poll = Instant::now();
                for pc in owned.lock().expect("partition lock").values() {
                    pc.producer.poll(Duration::ZERO);
                }
            }
            if last_trim.elapsed() >= Duration::from_secs(1) {
                last_trim = Instant::now();
                crate::memory::release_free_memory();
            }
            self.commit_due(&consumer, &owned, &setup, txn_max, idle_polls > 0)?;
            // Once every owned partition is done, check for completion right away instead of
            // waiting for the next status tick.
            let finished_here = spec.mode == Mode::UntilCaughtUp && {
                let owned = owned.lock().expect("partition lock");
                !owned.is_empty() && owned.values().all(|pc| pc.done)
            };
            let due = if finished_here {
                Duration::from_millis(200)
            } else {
                status_every
            };
            if last_status.elapsed() >= due {
                last_status = Instant::now();
                let status = self.publish_status(&owned, &setup, &status_producer, &mut rate);
                if spec.mode == Mode::UntilCaughtUp
                    && status.state == "caught_up"
                    && run_complete()?
                {
                    let _ = status_producer.flush(Duration::from_secs(10));
                    return Ok(Finish::CaughtUp);
                }
            }
        }
    }

    fn copy_one(
        &self,
        m: &BorrowedMessage<'_>,
        owned: &Mutex<HashMap<PartitionKey, PartitionCopy>>,
        setup: &Setup,
    ) -> Result<()> {
        let mut owned = owned.lock().expect("partition lock");
        let key = (m.topic().to_string(), m.partition());
        let Some(pc) = owned.get_mut(&key) else {
            return Ok(());
        };
        if pc.fenced || m.offset() < pc.next_source || pc.goal.is_some_and(|g| m.offset() >= g) {
            return Ok(());
        }
        if setup.exactly_once && !pc.in_txn {
            match pc.producer.begin_transaction() {
                Ok(()) => {
                    pc.in_txn = true;
                    pc.txn_started = Instant::now();
                }
                Err(e) => {
                    pc.fenced = is_fenced(&e);
                    return Ok(());
                }
            }
        } else if !pc.in_txn {
            pc.in_txn = true;
            pc.txn_started = Instant::now();
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
                    record = back;
                    pc.producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => {
                    tracing::warn!(error = %e, "produce failed; aborting the partition's transaction");
                    let outcome = fail(pc, setup, e.to_string(), is_fenced(&e));
                    record_outcome(&self.metrics, &outcome);
                    return Ok(());
                }
            }
        }
        pc.next_source = m.offset() + 1;
        pc.txn_bytes += size as u64;
        pc.txn_records += 1;
        // Delivered records stay in memory until their reports are served: serve them often.
        if pc.txn_records % 256 == 0 {
            pc.producer.poll(Duration::ZERO);
        }
        self.metrics.record_copied(&pc.source_topic, size as u64);
        Ok(())
    }

    /// Commits transactions that are old or big enough (in parallel: each is one round trip),
    /// rewinds aborted partitions, and marks partitions that reached their goal.
    fn commit_due(
        &self,
        consumer: &BaseConsumer<CopyContext>,
        owned: &Mutex<HashMap<PartitionKey, PartitionCopy>>,
        setup: &Setup,
        txn_max: Duration,
        idle: bool,
    ) -> Result<()> {
        let mut owned = owned.lock().expect("partition lock");
        let positions = if idle { consumer.position().ok() } else { None };
        for pc in owned.values_mut() {
            if pc.done || pc.fenced {
                continue;
            }
            // The source may end in transaction markers, which are never delivered: once the
            // consumer's position passes the goal while idle, everything before it is copied.
            if let (Some(goal), Some(pos)) = (pc.goal, positions.as_ref()) {
                if let Some(Offset::Offset(p)) = pos
                    .find_partition(&pc.source_topic, pc.partition)
                    .map(|e| e.offset())
                    && p >= goal
                    && pc.next_source < goal
                {
                    pc.next_source = goal;
                }
                if pc.next_source < 0 && goal == 0 {
                    pc.next_source = 0;
                }
            } else if let Some(Some(Offset::Offset(p))) = positions.as_ref().map(|pos| {
                pos.find_partition(&pc.source_topic, pc.partition)
                    .map(|e| e.offset())
            }) && pc.next_source >= 0
                && p > pc.next_source
            {
                // Continuous: the same reasoning without a goal, so lag reaches 0 after markers.
                pc.next_source = p;
            }
        }
        let due: Vec<&mut PartitionCopy> = owned
            .values_mut()
            .filter(|pc| !pc.done && !pc.fenced)
            .filter(|pc| {
                let reached_goal = pc.goal.is_some_and(|g| pc.next_source >= g);
                (pc.in_txn
                    && (pc.txn_started.elapsed() >= txn_max
                        || pc.txn_bytes >= setup.spec.tuning.transaction_max_bytes))
                    || (reached_goal
                        && (pc.in_txn
                            || pc.committed_next < pc.next_source
                            || pc.committed_next < 0
                            || idle))
            })
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        let outcomes: Vec<(PartitionKey, i64, CommitOutcome)> = std::thread::scope(|scope| {
            let handles: Vec<_> = due
                .into_iter()
                .map(|pc| {
                    scope.spawn(move || {
                        let outcome = commit(pc, setup);
                        (
                            (pc.source_topic.clone(), pc.partition),
                            pc.next_source,
                            outcome,
                        )
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        for ((topic, partition), next, outcome) in outcomes {
            if let CommitOutcome::Aborted(_) = &outcome {
                let offset = if next >= 0 {
                    Offset::Offset(next)
                } else {
                    Offset::Beginning
                };
                consumer
                    .seek(&topic, partition, offset, Duration::from_secs(10))
                    .with_context(|| format!("rewinding {topic}[{partition}]"))?;
            }
            record_outcome(&self.metrics, &outcome);
        }
        Ok(())
    }

    fn finish_all(&self, owned: &Mutex<HashMap<PartitionKey, PartitionCopy>>, setup: &Setup) {
        let mut owned = owned.lock().expect("partition lock");
        for pc in owned.values_mut() {
            if pc.in_txn && !pc.fenced {
                let outcome = commit(pc, setup);
                record_outcome(&self.metrics, &outcome);
            }
        }
    }

    fn publish_status(
        &self,
        owned: &Mutex<HashMap<PartitionKey, PartitionCopy>>,
        setup: &Setup,
        producer: &BaseProducer,
        rate: &mut RateWindow,
    ) -> WorkerStatus {
        let mut owned = owned.lock().expect("partition lock");
        let mut partitions = Vec::new();
        for pc in owned.values_mut() {
            if let Ok((_, high)) = setup.watermarks.fetch_watermarks(
                &pc.source_topic,
                pc.partition,
                Duration::from_secs(5),
            ) {
                pc.end_offset = high;
            }
            let copied = pc.next_source.max(0);
            let lag = (pc.end_offset - copied).max(0);
            self.metrics.set_lag(&pc.source_topic, pc.partition, lag);
            partitions.push(PartitionStatus {
                source_topic: pc.source_topic.clone(),
                target_topic: pc.target_topic.clone(),
                partition: pc.partition,
                copied_up_to: copied,
                end_offset: pc.end_offset,
                lag: if pc.done {
                    pc.goal.map_or(lag, |g| (g - copied).max(0))
                } else {
                    lag
                },
                goal: pc.goal,
            });
        }
        partitions
            .sort_by(|a, b| (&a.source_topic, a.partition).cmp(&(&b.source_topic, b.partition)));
        let total_lag: i64 = partitions.iter().map(|p| p.lag).sum();
        let all_done = !owned.is_empty() && owned.values().all(|pc| pc.done);
        drop(owned);
        let records = self.metrics.records_total();
        let bytes = self.metrics.bytes_total();
        let (rps, bps) = rate.update(records, bytes);
        let state = match self.spec.mode {
            Mode::UntilCaughtUp if all_done => "caught_up",
            Mode::Continuous if total_lag <= self.spec.in_sync_lag => "in_sync",
            _ => "copying",
        };
        let status = WorkerStatus {
            worker_id: self.worker_id.clone(),
            run_id: self.spec.run_id.clone(),
            updated_at_ms: now_ms(),
            state: state.to_string(),
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
        let key = format!("worker/{}", self.worker_id);
        let value = serde_json::to_vec(&status).unwrap_or_default();
        let topic = self.spec.status_topic();
        if let Err((e, _)) = producer.send(
            BaseRecord::to(&topic)
                .partition(0)
                .key(&key)
                .payload(&value),
        ) {
            tracing::warn!(error = %e, "cannot publish status");
        }
        producer.poll(Duration::ZERO);
        if let Some(show) = &self.on_status {
            show(&status);
        }
        *self.status.lock().expect("status lock") = status.clone();
        status
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
