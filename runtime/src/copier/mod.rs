//! The copy loop of one worker.
//!
//! The run's source partitions are split into a fixed number of work slots (`split`), recorded
//! when the run starts (`control`). Workers share the slots through a consumer group on the
//! run's slots topic on the target (`rebalance`); a worker owning a slot assigns the slot's
//! source partitions to its copy consumer by hand. Each owned slot has one producer on the
//! target; with exactly-once it is transactional, with the slot's transactional id, so a
//! worker that takes a slot over fences the previous owner and aborts whatever it left open. A
//! transaction carries the records, offset-mapping records and progress (the next source
//! offset of each partition, committed as offsets of the run's progress group on the target)
//! of all the slot's partitions. A worker killed at any point therefore leaves either all of a
//! transaction or none of it, and its successor resumes exactly there.
//!
//! - `split`: which slot each partition belongs to (pure);
//! - `control`: the slots topic, the run's record of its slot count;
//! - `partition`: where one partition's copy stands (an enum state) and the pure rules on it;
//! - `slot`: an owned slot (its producer and partitions);
//! - `decision`: when a slot's transaction ends (pure);
//! - `transaction`: ending it on the target;
//! - `rebalance`: taking slots over and giving them up.

mod control;
mod decision;
mod empty;
mod partition;
mod rebalance;
mod slot;
mod split;
mod transaction;
mod watch;
mod writable;

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
use self::rebalance::SlotContext;
use self::slot::{Owned, Rewind, SlotCopy};
use self::split::Split;
use self::transaction::{CommitOutcome, Sent, end_in_parallel, fail, is_fenced, record_outcome};
use crate::clients::{
    SLOT_SESSION_TIMEOUT, TRANSACTION_TIMEOUT, reader_config, slots_consumer_config,
    source_consumer_config, status_producer_config,
};
use crate::connect::{create_shared, create_with};
use crate::end_offsets::some_end_offsets;
use crate::metrics::Metrics;
use crate::progress::PartitionKey;
use crate::topics::NarrowTargets;
use ferry_kafka::ConnectionConfig;
use ferry_mirror_api::now_ms;
use ferry_mirror_api::spec::{Mode, Spec};
use ferry_mirror_api::status::{PartitionStatus, WorkerState, WorkerStatus};

/// How long, and for how many records, the loop copies before it looks at commits again.
const DRAIN_FOR: Duration = Duration::from_millis(50);
const DRAIN_MAX: usize = 10_000;

/// Bound of each blocking transactional call (init, flush, commit, abort) and progress read.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the loop waits for a slots consumer it is done with to close (it leaves the
/// group, giving up its slots); see `connect::close_within`.
const SLOTS_CLOSE_WAIT: Duration = Duration::from_secs(10);

/// How long a slot fenced while still assigned here waits for the revocation a takeover
/// brings (two session timeouts) before the worker takes it again.
const FENCED_REJOIN_AFTER: Duration = Duration::from_secs(2 * SLOT_SESSION_TIMEOUT.as_secs());

/// How long past the records' own timeout a slot's full producer queue is waited on.
const QUEUE_FULL_MARGIN: Duration = Duration::from_secs(10);

/// Records the run's slot count (creates its slots topic) if no worker has yet, before the
/// run's target topics are created: a broker applies topic creations in order, and a slots
/// topic created after 10,000 target partitions waited about 20 s behind their logs, delaying
/// the first copied record by as much. Blocking; the worker reads the recorded count again.
pub(crate) fn record_slot_count(
    spec: &Spec,
    target: &ConnectionConfig,
    source_partitions: &[PartitionKey],
) -> Result<u32> {
    let progress_reader: BaseConsumer =
        crate::connect::create(&reader_config(target, &spec.progress_group()))?;
    control::slot_count(
        spec,
        target,
        &progress_reader,
        source_partitions,
        CALL_TIMEOUT,
    )
}

/// What the copy loop and the rebalance callbacks share.
struct Setup {
    spec: Spec,
    target: ConnectionConfig,
    exactly_once: bool,
    /// Reads (and, without transactions, commits) the progress group on the target.
    progress_client: Arc<BaseConsumer>,
    /// Reads the progress group without waiting for transactions in flight (see `may_be_complete`).
    progress_peek: Arc<BaseConsumer>,
    /// Reads source end offsets (never joins a group).
    watermarks: Arc<BaseConsumer>,
    /// Reads partitions short of their goal with nothing delivered (never joins a group).
    probe: Arc<BaseConsumer>,
    /// Set by a callback that cannot go on; the loop returns it as the worker's error.
    fatal: Mutex<Option<String>>,
    /// Target topics whose later partitions the broker had not published yet (see
    /// `topics::prepare_target`): their slot producers learn them before copying to them.
    narrow_targets: NarrowTargets,
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
    /// Target topics not at full width in the metadata yet (`topics::prepare_target`).
    pub narrow_targets: NarrowTargets,
    /// Called with each status the worker publishes (progress display).
    pub on_status: Option<StatusCallback>,
}

fn lock(owned: &Mutex<Owned>) -> std::sync::MutexGuard<'_, Owned> {
    owned.lock().expect("slot lock")
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
            // Kept for the whole run and not polled: MSK IAM tokens refreshed by a thread.
            progress_client: create_shared(&reader_config(&self.target, &spec.progress_group()))?,
            progress_peek: create_shared(
                reader_config(&self.target, &spec.progress_group())
                    .set("isolation.level", "read_uncommitted"),
            )?,
            watermarks: create_shared(&reader_config(
                &self.source,
                &format!("{}.watermarks", spec.worker_group()),
            ))?,
            probe: create_shared(&reader_config(
                &self.source,
                &format!("{}.probe", spec.worker_group()),
            ))?,
            fatal: Mutex::new(None),
            narrow_targets: self.narrow_targets.clone(),
        });
        let partitions = control::source_partitions(&setup.watermarks, &self.topics, CALL_TIMEOUT)?;
        let slots = control::slot_count(
            spec,
            &self.target,
            &setup.progress_client,
            &partitions,
            CALL_TIMEOUT,
        )?;
        let split = Arc::new(Split::new(&partitions, slots));
        tracing::info!(
            slots,
            slots_with_partitions = split.by_slot.len(),
            partitions = partitions.len(),
            "work split into slots"
        );
        let owned: Arc<Mutex<Owned>> = Arc::default();
        let consumer: Arc<BaseConsumer> = create_shared(&source_consumer_config(
            spec,
            &self.source,
            partitions.len(),
        ))
        .context("creating the source consumer")?;
        // librdkafka asks for the metadata of a topic first assigned to a consumer only on its
        // one-second timer, so the first fetch after taking slots waited up to a second. One
        // metadata request now fills the consumer's cache (a failure only costs that second).
        if let Err(e) = consumer.fetch_metadata(None, CALL_TIMEOUT) {
            tracing::debug!(error = %e, "reading the source's metadata ahead of the first assignment");
        }
        let context = SlotContext::new(
            Arc::clone(&setup),
            Arc::clone(&owned),
            Arc::clone(&self.metrics),
            split,
            Arc::clone(&consumer),
        );
        let join = |context: SlotContext| -> Result<BaseConsumer<SlotContext>> {
            let c: BaseConsumer<SlotContext> = create_with(
                &slots_consumer_config(spec, &self.target, &self.worker_id),
                context,
            )
            .context("creating the slots consumer")?;
            c.subscribe(&[&spec.slots_topic()])
                .context("joining the run's slots group")?;
            Ok(c)
        };
        let mut slots_consumer = join(context.for_new_consumer())?;
        // Gives every slot up (committing what is open) and joins the slots group again with
        // a new consumer, whose assignment takes slots over afresh.
        let rejoin = |old: BaseConsumer<SlotContext>, what: &str| {
            context.release();
            old.context().retire();
            crate::connect::close_within(old, what, SLOTS_CLOSE_WAIT);
            join(context.for_new_consumer())
        };
        let mut fenced_since: Option<Instant> = None;
        let (mut group_errors, mut source_errors) = (ErrorLog::default(), ErrorLog::default());
        let mut fenced_at: Vec<Instant> = Vec::new();
        let status_producer: Arc<BaseProducer> =
            create_shared(&status_producer_config(spec, &self.target))?;

        let limits = Limits::new(&spec.tuning, TRANSACTION_TIMEOUT);
        let status_every = Duration::from_millis(spec.tuning.status_interval_ms);
        let mut last_status = Instant::now() - status_every;
        let mut rate = RateWindow::default();
        let mut idle;
        let mut last_report_poll = Instant::now();
        let mut last_trim = Instant::now();
        let mut stalled: HashMap<PartitionKey, i64> = HashMap::new();
        let mut last_writable_check = Instant::now();
        let mut waiting_since: Option<Instant> = None;
        let watch = watch::LoopWatch::start();

        loop {
            if let Some(fatal) = setup.fatal.lock().expect("fatal lock").take() {
                return Err(anyhow!(fatal));
            }
            if self.stop.load(Ordering::Relaxed) {
                watch.step("stopping");
                self.finish_all(&owned, &setup);
                self.publish_status(&owned, &setup, &status_producer, &mut rate);
                flush_status(&status_producer);
                slots_consumer.unsubscribe();
                crate::connect::close_within(
                    slots_consumer,
                    "the slots consumer",
                    SLOTS_CLOSE_WAIT,
                );
                crate::connect::close_in_background((context, consumer, setup));
                return Ok(Finish::Stopped);
            }
            // Serves the slots group: heartbeats run on librdkafka's thread, rebalances here.
            watch.step("serving the slots group (taking or giving up slots)");
            if let Some(Err(e)) = slots_consumer.poll(Duration::ZERO) {
                self.metrics.errors.inc();
                if let Some((code, reason)) = slots_consumer.client().fatal_error() {
                    // Static membership: after the group coordinator restarts, librdkafka can
                    // rejoin under a new member id and find its old one fencing it
                    // (FENCED_INSTANCE_ID), which leaves the consumer dead. Give the slots up
                    // and rejoin with a new consumer; fenced again and again means another
                    // live worker has this worker id.
                    fenced_at.retain(|t| t.elapsed() < Duration::from_secs(120));
                    fenced_at.push(Instant::now());
                    if fenced_at.len() > 3 {
                        return Err(anyhow!(
                            "the slots group keeps fencing this worker ({code:?}: {reason}); is \
                             another worker running with worker id {:?}?",
                            self.worker_id
                        ));
                    }
                    tracing::warn!(?code, %reason, "the slots consumer failed; giving up the slots and rejoining");
                    slots_consumer = rejoin(slots_consumer, "the failed slots consumer")?;
                } else {
                    group_errors.log(&e.to_string(), "slots group error");
                }
            }
            // Copies what the consumer holds (bounded) before looking at commits: a commit
            // round blocks the loop, so one record per round would copy a record per round
            // trip.
            watch.step("copying records");
            let (mut copied, drain_until) = (0usize, Instant::now() + DRAIN_FOR);
            idle = false;
            loop {
                let wait = if copied == 0 {
                    Duration::from_millis(100)
                } else {
                    Duration::ZERO
                };
                match consumer.poll(wait) {
                    Some(Ok(m)) => {
                        copied += 1;
                        for rewind in self.copy_one(&m, &owned, &setup) {
                            rewind.apply(&consumer)?;
                        }
                        if copied >= DRAIN_MAX || Instant::now() >= drain_until {
                            break;
                        }
                    }
                    Some(Err(e)) => {
                        source_errors.log(&e.to_string(), "source consumer error");
                        self.metrics.errors.inc();
                        break;
                    }
                    None => {
                        idle = copied == 0;
                        break;
                    }
                }
            }
            if last_report_poll.elapsed() >= Duration::from_millis(20) {
                last_report_poll = Instant::now();
                for slot in lock(&owned).slots.values() {
                    slot.producer.poll(Duration::ZERO);
                }
            }
            if last_trim.elapsed() >= Duration::from_secs(1) {
                last_trim = Instant::now();
                crate::memory::release_free_memory();
            }
            watch.step("ending transactions");
            self.commit_due(&consumer, &owned, &setup, &limits, idle)?;
            if last_writable_check.elapsed() >= writable::CHECK_EVERY {
                last_writable_check = Instant::now();
                watch.step("checking for new target partition logs");
                self.copy_newly_writable(&consumer, &owned, &setup, &mut waiting_since)?;
            }
            // A slot fenced while the group still gives it to this worker was not taken over
            // (a takeover revokes it here within a session timeout): its producer failed for
            // good, or the broker ended its transaction (one that outlived the transaction
            // timeout across a broker restart). Left alone it would copy nothing until the
            // next rebalance; rejoining takes it again, with a producer that reads where its
            // partitions stand. A producer this worker gave up itself (a call that never
            // answered) is retaken at once: no takeover is coming.
            let (any_fenced, any_given_up) = {
                let owned = lock(&owned);
                let mut slots = owned.slots.values();
                (slots.clone().any(|s| s.fenced), slots.any(|s| s.given_up))
            };
            match fenced_since {
                _ if !any_fenced => fenced_since = None,
                None if !any_given_up => fenced_since = Some(Instant::now()),
                Some(since) if !any_given_up && since.elapsed() < FENCED_REJOIN_AFTER => {}
                since => {
                    fenced_since = None;
                    if any_given_up {
                        tracing::warn!(
                            "a slot's producer was given up; rejoining the slots group to take \
                             the slot again"
                        );
                    } else {
                        tracing::warn!(
                            "a slot fenced {}s ago is still assigned to this worker; rejoining \
                             the slots group to take it again",
                            since.map_or(0, |s| s.elapsed().as_secs())
                        );
                    }
                    watch.step("serving the slots group (taking or giving up slots)");
                    slots_consumer = rejoin(slots_consumer, "the slots consumer")?;
                }
            }
            // Once every owned partition is done, check for completion right away instead of
            // waiting for the next status tick.
            let (finished_here, owns_nothing) = {
                let owned = lock(&owned);
                let done = owned
                    .partitions()
                    .all(|pc| pc.progress.state == PartitionState::Done);
                (!owned.is_empty() && done, owned.is_empty())
            };
            let finished_here = spec.mode == Mode::UntilCaughtUp && finished_here;
            let due = if finished_here {
                Duration::from_millis(200)
            } else {
                status_every
            };
            if last_status.elapsed() >= due {
                if spec.mode == Mode::UntilCaughtUp {
                    watch.step("checking partitions short of their goal");
                    self.settle_empty(&consumer, &owned, &setup, &mut stalled);
                }
                last_status = Instant::now();
                watch.step("publishing the status");
                let status = self.publish_status(&owned, &setup, &status_producer, &mut rate);
                watch.step("checking whether the run is complete");
                // A worker holding no partition (more workers than slots with partitions)
                // finishes when the others have.
                if spec.mode == Mode::UntilCaughtUp
                    && (status.state == WorkerState::CaughtUp || owns_nothing)
                    && may_be_complete(&setup, &partitions)
                    && run_complete()?
                {
                    flush_status(&status_producer);
                    // Leaves the slots group now (revoking the slots); the readers go aside.
                    crate::connect::close_within(
                        slots_consumer,
                        "the slots consumer",
                        SLOTS_CLOSE_WAIT,
                    );
                    crate::connect::close_in_background((context, consumer, setup));
                    return Ok(Finish::CaughtUp);
                }
            }
        }
    }

    /// Hands one source record to its slot's producer. Returns where to rewind partitions
    /// whose open work had to be abandoned.
    fn copy_one(
        &self,
        m: &BorrowedMessage<'_>,
        owned: &Mutex<Owned>,
        setup: &Setup,
    ) -> Vec<Rewind> {
        let mut owned = lock(owned);
        let Some((slot, i)) = owned.locate(m.topic(), m.partition()) else {
            return Vec::new();
        };
        if slot.fenced || !slot.partitions[i].progress.wants(m.offset()) {
            return Vec::new();
        }
        if !slot.open {
            if setup.exactly_once
                && let Err(e) = slot.producer.begin_transaction()
            {
                // Not copied: fenced, the slot is its new owner's; otherwise read the record
                // again rather than skip it.
                let outcome = fail(
                    slot,
                    setup,
                    format!("beginning a transaction: {e}"),
                    is_fenced(&e),
                );
                record_outcome(&self.metrics, slot.index, &outcome);
                let mut rewinds = rewinds_of(outcome);
                rewinds.push(Rewind::of(&slot.partitions[i]));
                return rewinds;
            }
            slot.open = true;
        }
        let pc = &mut slot.partitions[i];
        pc.progress.open(Instant::now());
        let size = m.payload_len() + m.key().map_or(0, <[u8]>::len);
        let sent = Sent::Copied {
            partition: i as u32,
            source: m.offset(),
        };
        let mut record =
            BaseRecord::with_opaque_to(&pc.target_topic, Box::new(sent)).partition(m.partition());
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
        let full_since = Instant::now();
        loop {
            match slot.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // Records leave the queue delivered or, after `message.timeout.ms` (the
                    // transaction timeout), failed: a queue full for longer means the
                    // producer is stuck, and the slot's work is redone rather than waited on.
                    if full_since.elapsed() > TRANSACTION_TIMEOUT + QUEUE_FULL_MARGIN {
                        let outcome = fail(
                            slot,
                            setup,
                            format!(
                                "the slot's producer queue stayed full for {}s: the target \
                                 takes no records",
                                full_since.elapsed().as_secs()
                            ),
                            false,
                        );
                        record_outcome(&self.metrics, slot.index, &outcome);
                        // The partition is open (this transaction), so it rewinds too.
                        return rewinds_of(outcome);
                    }
                    // Serves delivery reports only (no broker request) until there is room.
                    record = back;
                    slot.producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => {
                    tracing::warn!(error = %e, slot = slot.index, "produce failed; aborting the slot's transaction");
                    let outcome = fail(slot, setup, e.to_string(), is_fenced(&e));
                    record_outcome(&self.metrics, slot.index, &outcome);
                    // The aborted records are gone from the target: read them again.
                    return rewinds_of(outcome);
                }
            }
        }
        let in_batch = slot.partitions[i].progress.copied(m.offset(), size as u64);
        // Delivered records stay in memory until their reports are served: serve them often.
        if in_batch % 256 == 0 {
            slot.producer.poll(Duration::ZERO);
        }
        Vec::new()
    }

    /// Ends the slot transactions that are due (old or big enough, a partition at its goal,
    /// or doomed), in parallel and with no lock held, and rewinds the aborted partitions.
    fn commit_due(
        &self,
        consumer: &BaseConsumer,
        owned: &Mutex<Owned>,
        setup: &Setup,
        limits: &Limits,
        idle: bool,
    ) -> Result<()> {
        // The position is the consumer's local state, not a broker request.
        let positions = if idle {
            consumer.position().ok().map(|l| Positions::of(&l))
        } else {
            None
        };
        let now = Instant::now();
        let rewinds = self.end_transactions(owned, setup, Some((now, limits)), |slot| {
            if slot.fenced {
                return CommitDecision::KeepGoing;
            }
            if let Some(positions) = &positions {
                for pc in &mut slot.partitions {
                    if !matches!(
                        pc.progress.state,
                        PartitionState::Done | PartitionState::Fenced
                    ) {
                        pc.progress.skip_undelivered(position_of(
                            positions,
                            &pc.source_topic,
                            pc.partition,
                        ));
                    }
                }
            }
            decide(
                slot.progress(),
                now,
                limits,
                idle,
                slot.producer.context().failed(),
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
    /// Gives the copy consumer the owned partitions whose target log has appeared since the
    /// last check (see `writable`); says so when some wait for long.
    fn copy_newly_writable(
        &self,
        consumer: &BaseConsumer,
        owned: &Mutex<Owned>,
        setup: &Setup,
        waiting_since: &mut Option<Instant>,
    ) -> Result<()> {
        let waiting = writable::waiting(&lock(owned));
        if waiting.is_empty() {
            *waiting_since = None;
            return Ok(());
        }
        let since = *waiting_since.get_or_insert_with(Instant::now);
        let mut ready = writable::writable(
            &setup.progress_peek,
            &setup.target,
            &waiting,
            writable::CHECK_TIMEOUT,
        );
        let mut owned = lock(owned);
        writable::known_to_producers(
            owned.slots.values_mut(),
            &setup.narrow_targets,
            &mut ready,
            writable::CHECK_TIMEOUT,
            writable::refresh_width,
        );
        let added = writable::take_ready(&mut owned, &ready)?;
        drop(owned);
        let still = waiting.len() - added.count();
        if added.count() > 0 {
            consumer
                .incremental_assign(&added)
                .context("adding partitions whose target log appeared to the copy")?;
            if still == 0 {
                tracing::info!(
                    added = added.count(),
                    still_waiting = still,
                    "target partitions now have logs: copying them (every owned partition is \
                     being copied now)"
                );
            } else {
                tracing::debug!(
                    added = added.count(),
                    still_waiting = still,
                    "target partitions now have logs: copying them"
                );
            }
        }
        let first_waiting = waiting.iter().find(|(s, _)| !ready.contains(s));
        if let Some((source, target)) = first_waiting
            && since.elapsed() >= writable::WARN_AFTER
        {
            tracing::warn!(
                still_waiting = still,
                "{still} target partitions have had no log for {}s (first: {}[{}], copied from \
                 {}[{}]); is their leader down?",
                since.elapsed().as_secs(),
                target.0,
                target.1,
                source.0,
                source.1
            );
            *waiting_since = Some(Instant::now());
        }
        Ok(())
    }

    fn settle_empty(
        &self,
        consumer: &BaseConsumer,
        owned: &Mutex<Owned>,
        setup: &Setup,
        stalled: &mut HashMap<PartitionKey, i64>,
    ) {
        let positions = consumer.position().ok().map(|l| Positions::of(&l));
        let owned_now = lock(owned);
        let now: HashMap<PartitionKey, empty::Candidate> = owned_now
            .partitions()
            .filter_map(|pc| {
                let key = (pc.source_topic.clone(), pc.partition);
                // Not given to the copy consumer yet: nothing is delivered for it anyway.
                if owned_now.unwritable.contains(&key) {
                    return None;
                }
                let (from, goal) = pc.progress.short_of_goal_idle()?;
                let position = positions
                    .as_ref()
                    .and_then(|p| position_of(p, &pc.source_topic, pc.partition));
                // Read from where the copy stands, not from the position: after a rewind the
                // position may not reflect the seek yet.
                (position.is_none_or(|p| p < goal))
                    .then(|| (key.clone(), empty::Candidate { key, from, goal }))
            })
            .collect();
        drop(owned_now);
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
                    if let Some((slot, i)) = owned.locate(&key.0, key.1) {
                        tracing::debug!(topic = %key.0, partition = key.1, "nothing left to copy before the goal");
                        slot.partitions[i].progress.nothing_before_goal();
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
        self.end_transactions(owned, setup, None, |slot| {
            if slot.open && !slot.fenced {
                CommitDecision::CommitNow
            } else {
                CommitDecision::KeepGoing
            }
        });
    }

    /// Takes the slots `decide` wants committed or aborted out of the map, ends their
    /// transactions in parallel without the lock, and puts them back. Returns where the
    /// aborted partitions must be read again. Rebalances only happen inside the slots
    /// consumer's `poll`, on this thread, so nothing else looks for the slots while they are
    /// out. With `round`, slots half way to their age limit join a round another slot
    /// started.
    fn end_transactions(
        &self,
        owned: &Mutex<Owned>,
        setup: &Setup,
        round: Option<(Instant, &Limits)>,
        mut decide: impl FnMut(&mut SlotCopy) -> CommitDecision,
    ) -> Vec<Rewind> {
        let mut due: Vec<(SlotCopy, Option<AbortReason>)> = {
            let mut owned = lock(owned);
            let decisions: Vec<(u32, CommitDecision)> = owned
                .slots
                .iter_mut()
                .map(|(k, slot)| (*k, decide(slot)))
                .collect();
            let any_due = decisions
                .iter()
                .any(|(_, d)| *d != CommitDecision::KeepGoing);
            let keys: Vec<(u32, Option<AbortReason>)> = decisions
                .into_iter()
                .filter_map(|(k, d)| match d {
                    CommitDecision::CommitNow => Some((k, None)),
                    CommitDecision::Abort(reason) => Some((k, Some(reason))),
                    CommitDecision::KeepGoing => {
                        let slot = owned.slots.get(&k)?;
                        let joins = any_due
                            && !slot.fenced
                            && round.is_some_and(|(now, limits)| {
                                decision::ripe(slot.progress(), now, limits)
                            });
                        joins.then_some((k, None))
                    }
                })
                .collect();
            keys.into_iter()
                .filter_map(|(k, abort)| owned.take(k).map(|slot| (slot, abort)))
                .collect()
        };
        if due.is_empty() {
            return Vec::new();
        }
        let work = due.iter_mut().map(|(slot, abort)| (slot, *abort)).collect();
        let started = Instant::now();
        let outcomes = end_in_parallel(work, setup);
        // The copy loop waits for the round: how long, for tuning the cadence.
        tracing::debug!(
            slots = outcomes.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "transaction round ended"
        );
        let mut rewinds = Vec::new();
        let mut owned = lock(owned);
        for ((slot, _), outcome) in due.into_iter().zip(outcomes) {
            record_outcome(&self.metrics, slot.index, &outcome);
            rewinds.extend(rewinds_of(outcome));
            owned.put_back(slot);
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
        let keys: Vec<PartitionKey> = lock(owned)
            .partitions()
            .map(|pc| (pc.source_topic.clone(), pc.partition))
            .collect();
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
            for pc in owned.partitions_mut() {
                if let Some(end) = ends.get(&(pc.source_topic.clone(), pc.partition)) {
                    pc.progress.end_offset = *end;
                }
                self.metrics
                    .set_lag(&pc.source_topic, pc.partition, pc.progress.lag());
            }
            let mut partitions: Vec<PartitionStatus> =
                owned.partitions().map(PartitionCopy::status).collect();
            partitions.sort_by(|a, b| {
                (&a.source_topic, a.partition).cmp(&(&b.source_topic, b.partition))
            });
            let state = worker_state(
                self.spec.mode,
                self.spec.in_sync_lag,
                owned.assigned,
                owned.partitions().map(|pc| &pc.progress),
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

/// Whether the run's committed progress, read without waiting for transactions in flight,
/// has every partition at its goal. The stable read behind `run_complete` waits for a killed
/// worker's open transaction until the slot's next owner fences it; blocked there, this
/// worker would not serve the slots group, and the rebalance that hands the slot on would
/// wait for it. So the stable read is only made once this one says the run may be done.
fn may_be_complete(setup: &Setup, partitions: &[PartitionKey]) -> bool {
    let keys: Vec<PartitionKey> = partitions
        .iter()
        .map(|(t, p)| (setup.spec.target_topic(t), *p))
        .collect();
    match crate::progress::read(&setup.progress_peek, &keys, Duration::from_secs(5)) {
        Ok(stored) => keys.iter().all(|k| {
            stored.get(k).is_some_and(
                |p| matches!((p.next_source, p.meta.goal), (Some(n), Some(g)) if n >= g),
            )
        }),
        Err(e) => {
            tracing::debug!(error = format!("{e:#}"), "progress not read");
            false
        }
    }
}

/// The partitions to read again after an outcome (only an abort has any).
fn rewinds_of(outcome: CommitOutcome) -> Vec<Rewind> {
    match outcome {
        CommitOutcome::Aborted(_, rewinds) => rewinds,
        _ => Vec::new(),
    }
}

/// The consumer's positions, indexed once per look: `TopicPartitionList::find_partition` is a
/// linear search (a `strcmp` per element), so looking every owned partition up in the list
/// was quadratic — a quarter of a worker's CPU at 5,000 partitions (docs/benchmarks.md).
struct Positions(HashMap<String, HashMap<i32, i64>>);

impl Positions {
    fn of(list: &TopicPartitionList) -> Positions {
        let mut by_topic: HashMap<String, HashMap<i32, i64>> = HashMap::new();
        for e in list.elements() {
            if let Offset::Offset(p) = e.offset() {
                by_topic
                    .entry(e.topic().to_string())
                    .or_default()
                    .insert(e.partition(), p);
            }
        }
        Positions(by_topic)
    }
}

/// The consumer's position in one partition, if it has one.
fn position_of(positions: &Positions, topic: &str, partition: i32) -> Option<i64> {
    positions.0.get(topic)?.get(&partition).copied()
}

/// Waits for the last status records; a status lost at exit is replaced by the next worker's.
fn flush_status(producer: &BaseProducer) {
    if let Err(e) = ferry_kafka::flush_promptly(producer, Duration::from_secs(10)) {
        tracing::warn!(error = %e, "the last status was not published");
    }
}

/// Logs an error of a client the loop polls every few milliseconds: a new error at once, the
/// same one again at most every 10 s (a broker down gives the same error on every poll).
#[derive(Default)]
struct ErrorLog {
    last: Option<(String, Instant)>,
}

impl ErrorLog {
    fn log(&mut self, error: &str, what: &str) {
        let repeat = self
            .last
            .as_ref()
            .is_some_and(|(e, at)| e == error && at.elapsed() < Duration::from_secs(10));
        if repeat {
            tracing::debug!(error, "{what}");
        } else {
            tracing::warn!(error, "{what}");
            self.last = Some((error.to_string(), Instant::now()));
        }
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

#[cfg(test)]
mod positions_tests {
    use super::*;

    #[test]
    fn positions_are_found_by_topic_and_partition() {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset("a", 0, Offset::Offset(7))
            .unwrap();
        list.add_partition_offset("a", 1, Offset::Invalid).unwrap();
        list.add_partition_offset("b", 0, Offset::Offset(3))
            .unwrap();
        let positions = Positions::of(&list);
        assert_eq!(position_of(&positions, "a", 0), Some(7));
        assert_eq!(position_of(&positions, "a", 1), None, "no position yet");
        assert_eq!(position_of(&positions, "b", 0), Some(3));
        assert_eq!(position_of(&positions, "b", 1), None);
        assert_eq!(position_of(&positions, "c", 0), None);
    }
}
