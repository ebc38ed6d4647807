//! Slots moving between workers. The run's slots group on the target hands out the partitions
//! of the slots topic, one per slot. Eager assignment: a rebalance first revokes everything,
//! and every open transaction is finished before this worker rejoins, so nobody else can own
//! a slot while its transaction is open. Taking a slot over fences its previous owner
//! (`init_transactions` on the slot's transactional id) and reads where each of its
//! partitions' copy stands; the source partitions are then assigned to the copy consumer by
//! hand (no source group).
//!
//! The callbacks run on the worker's thread inside the slots consumer's `poll`. Their blocking
//! broker calls (up to a minute for fencing) are made with no lock held; the slot map is
//! locked only to move slots in or out of it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use rdkafka::TopicPartitionList;
use rdkafka::bindings::rd_kafka_resp_err_t as RespErr;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::producer::BaseProducer;

use super::partition::{PartitionCopy, PartitionProgress};
use super::slot::{Owned, SlotCopy};
use super::split::Split;
use super::transaction::{DeliveryLog, end_in_parallel, record_outcome};
use super::writable;
use super::{CALL_TIMEOUT, Setup};
use crate::clients::target_producer_config;
use crate::connect::create_with;
use crate::end_offsets::end_offsets;
use crate::metrics::Metrics;
use crate::progress::{self, PartitionKey};
use ferry_mirror_api::spec::Mode;

#[derive(Clone)]
pub(crate) struct SlotContext {
    pub setup: Arc<Setup>,
    pub owned: Arc<Mutex<Owned>>,
    pub metrics: Arc<Metrics>,
    pub split: Arc<Split>,
    /// The copy consumer: its assignment follows the owned slots.
    pub source: Arc<BaseConsumer>,
    /// Set on a slots consumer that has been replaced: its callbacks, served while it closes
    /// on a thread of its own, must not touch the slots or the copy consumer any more.
    retired: Arc<AtomicBool>,
}

/// How long giving up slots waits for their producers to be destroyed (see
/// `connect::close_within`).
const CLOSE_WAIT: Duration = Duration::from_secs(10);

impl ClientContext for SlotContext {
    // MSK IAM tokens when the target side says AWS_MSK_IAM (a no-op otherwise): the slots
    // consumer is polled by the worker's loop, which serves librdkafka's refresh requests.
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;
    fn generate_oauth_token(
        &self,
        oauthbearer_config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        ferry_kafka::msk_iam::oauth_token(oauthbearer_config)
    }
}

impl ConsumerContext for SlotContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RespErr, tpl: &mut TopicPartitionList) {
        if self.retired.load(Ordering::Relaxed) {
            if let Err(e) = consumer.unassign() {
                tracing::debug!(error = %e, "unassigning a replaced slots consumer");
            }
            return;
        }
        match err {
            RespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.assign(consumer, tpl),
            RespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.revoke(consumer),
            other => tracing::warn!(error = ?other, "slot rebalance error"),
        }
    }
}

impl SlotContext {
    pub fn new(
        setup: Arc<Setup>,
        owned: Arc<Mutex<Owned>>,
        metrics: Arc<Metrics>,
        split: Arc<Split>,
        source: Arc<BaseConsumer>,
    ) -> SlotContext {
        SlotContext {
            setup,
            owned,
            metrics,
            split,
            source,
            retired: Arc::default(),
        }
    }

    /// The context of a new slots consumer: shares everything but the retired mark.
    pub fn for_new_consumer(&self) -> SlotContext {
        SlotContext {
            retired: Arc::default(),
            ..self.clone()
        }
    }

    /// Marks this context's consumer as replaced (see `retired`).
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Relaxed);
    }

    fn assign(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let slots: Vec<u32> = tpl
            .elements()
            .iter()
            .filter_map(|e| u32::try_from(e.partition()).ok())
            .collect();
        tracing::debug!(
            slots = slots.len(),
            "the group handed out slots: taking them over"
        );
        match take_slots(&self.setup, &self.split, &slots) {
            Ok(mut taken) => {
                // Only partitions whose target log exists (and that the slot's producer knows)
                // are copied now; the loop adds the others as they become writable (see
                // `writable`).
                let mut ready = writable::writable(
                    &self.setup.progress_peek,
                    &self.setup.target,
                    &writable::keys(taken.iter().flat_map(|s| s.partitions.iter())),
                    writable::CHECK_TIMEOUT,
                );
                writable::known_to_producers(
                    taken.iter_mut(),
                    &self.setup.narrow_targets,
                    &mut ready,
                    writable::CHECK_TIMEOUT,
                    writable::refresh_width,
                );
                let (copy, waiting) = match writable::split_ready(&taken, &ready) {
                    Ok(split) => split,
                    Err(e) => {
                        tracing::error!(
                            error = format!("{e:#}"),
                            "cannot list the source partitions"
                        );
                        self.set_fatal(format!("listing the source partitions: {e:#}"));
                        (TopicPartitionList::new(), Default::default())
                    }
                };
                if !waiting.is_empty() {
                    tracing::info!(
                        waiting = waiting.len(),
                        "target partitions not writable yet (a topic being created, or a \
                         leader moving): each is copied once its leader answers for it"
                    );
                }
                let mut owned = self.owned.lock().expect("slot lock");
                for slot in taken {
                    owned.insert(slot);
                }
                owned.unwritable.extend(waiting);
                owned.assigned = true;
                let (slot_count, partitions) = (owned.slots.len(), owned.partition_count());
                drop(owned);
                if let Err(e) = self.source.assign(&copy) {
                    tracing::error!(error = %e, "assigning the source partitions failed");
                    self.set_fatal(format!("assigning the source partitions: {e}"));
                }
                self.metrics.assigned_partitions.set(partitions as i64);
                tracing::info!(
                    slots = slots.len(),
                    slots_with_partitions = slot_count,
                    partitions,
                    "slots assigned"
                );
            }
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "cannot take over slots");
                self.set_fatal(format!("{e:#}"));
            }
        }
        if let Err(e) = consumer.assign(tpl) {
            tracing::error!(error = %e, "assigning the slots failed");
        }
        // The slots topic holds no records: its partitions are only tokens of ownership.
        if let Err(e) = consumer.pause(tpl) {
            tracing::debug!(error = %e, "pausing the slots topic");
        }
    }

    fn revoke(&self, consumer: &BaseConsumer<Self>) {
        self.release();
        if let Err(e) = consumer.unassign() {
            tracing::error!(error = %e, "unassigning the slots failed");
        }
    }

    /// Gives up every owned slot: open transactions are committed first, so nobody else can
    /// own a slot while its transaction is open (a commit that fails leaves the transaction to
    /// the next owner's fencing).
    pub fn release(&self) {
        let mut revoked = self.owned.lock().expect("slot lock").drain();
        let open: Vec<_> = revoked
            .iter_mut()
            .filter(|s| s.open && !s.fenced)
            .map(|s| (s, None))
            .collect();
        let indexes: Vec<u32> = open.iter().map(|(s, _)| s.index).collect();
        for (slot, outcome) in indexes.iter().zip(end_in_parallel(open, &self.setup)) {
            record_outcome(&self.metrics, *slot, &outcome);
        }
        if !revoked.is_empty() {
            crate::connect::close_within(revoked, "the given-up slots' producers", CLOSE_WAIT);
        }
        if let Err(e) = self.source.unassign() {
            tracing::error!(error = %e, "unassigning the source partitions failed");
        }
        self.metrics.assigned_partitions.set(0);
        tracing::info!("slots revoked");
    }

    fn set_fatal(&self, message: String) {
        self.setup
            .fatal
            .lock()
            .expect("fatal lock")
            .get_or_insert(message);
    }
}

/// Creates (and with exactly-once, initialises, fencing earlier owners) one producer per slot
/// holding partitions, in parallel, then reads where each partition's copy stands. Slots with
/// no partition get no producer.
fn take_slots(setup: &Setup, split: &Split, slots: &[u32]) -> Result<Vec<SlotCopy>> {
    let started = std::time::Instant::now();
    let spec = &setup.spec;
    let slots: Vec<u32> = slots
        .iter()
        .copied()
        .filter(|s| !split.partitions(*s).is_empty())
        .collect();
    let producers: Vec<Result<BaseProducer<DeliveryLog>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = slots
            .iter()
            .map(|&slot| {
                scope.spawn(move || -> Result<BaseProducer<DeliveryLog>> {
                    let txn_id = spec.slot_transactional_id(slot);
                    // The first MSK IAM token now (init_transactions does not poll); later
                    // ones from DeliveryLog when the copy loop polls the producer.
                    let producer: BaseProducer<DeliveryLog> = create_with(
                        &target_producer_config(
                            spec,
                            &setup.target,
                            setup.exactly_once.then_some(txn_id.as_str()),
                        ),
                        DeliveryLog::default(),
                    )
                    .context("creating a target producer")?;
                    if setup.exactly_once {
                        crate::connect::init_transactions(
                            &producer,
                            &spec.status_topic(),
                            CALL_TIMEOUT,
                        )
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
    let producers_ready = started.elapsed();
    let wanted: Vec<PartitionKey> = slots
        .iter()
        .flat_map(|s| split.partitions(*s).iter().cloned())
        .collect();
    let target_keys: Vec<PartitionKey> = wanted
        .iter()
        .map(|(t, p)| (spec.target_topic(t), *p))
        .collect();
    // After init_transactions every earlier owner's transaction is finished, so this is stable.
    let stored = progress::read(&setup.progress_client, &target_keys, CALL_TIMEOUT)?;
    let progress_read = started.elapsed();
    // First time anyone takes a partition: its goal is its end offset now.
    let goals: HashMap<PartitionKey, i64> = match spec.mode {
        Mode::Continuous => HashMap::new(),
        Mode::UntilCaughtUp => {
            let first: Vec<PartitionKey> = wanted
                .iter()
                .zip(&target_keys)
                .filter(|(_, t)| stored.get(*t).and_then(|p| p.meta.goal).is_none())
                .map(|(s, _)| s.clone())
                .collect();
            end_offsets(&setup.watermarks, &first, CALL_TIMEOUT)
                .context("reading the end offsets of newly taken partitions")?
        }
    };
    tracing::debug!(
        producers = slots.len(),
        producers_ms = producers_ready.as_millis() as u64,
        progress_ms = (progress_read - producers_ready).as_millis() as u64,
        goals_ms = (started.elapsed() - progress_read).as_millis() as u64,
        "slots taken over"
    );
    let mut out = Vec::with_capacity(slots.len());
    for (slot, producer) in slots.iter().zip(producers) {
        let producer = producer?;
        let partitions = split
            .partitions(*slot)
            .iter()
            .map(|source_key| {
                let (source_topic, partition) = source_key;
                let target_key = (spec.target_topic(source_topic), *partition);
                let stored = stored.get(&target_key);
                let next_source = stored.and_then(|p| p.next_source).unwrap_or(-1);
                let goal = match spec.mode {
                    Mode::Continuous => None,
                    Mode::UntilCaughtUp => stored
                        .and_then(|p| p.meta.goal)
                        .or_else(|| goals.get(source_key).copied()),
                };
                tracing::debug!(slot, topic = %source_topic, partition, next_source, ?goal, "taking partition");
                PartitionCopy {
                    source_topic: source_topic.clone(),
                    target_topic: target_key.0,
                    partition: *partition,
                    progress: PartitionProgress::taken(next_source, goal).with_counts(
                        stored.map_or(0, |p| p.meta.records),
                        stored.map_or(0, |p| p.meta.bytes),
                    ),
                }
            })
            .collect();
        out.push(SlotCopy {
            index: *slot,
            producer: Arc::new(producer),
            partitions,
            open: false,
            fenced: false,
            given_up: false,
            known_widths: HashMap::new(),
        });
    }
    Ok(out)
}
