//! Partitions moving between workers. Eager assignment: a rebalance first revokes everything,
//! and every open transaction is finished before this worker rejoins, so nobody else can own
//! a partition while its transaction is open. Taking a partition over fences its previous
//! owner (`init_transactions`) and reads where its copy stands.
//!
//! The callbacks run on the worker's thread inside `consumer.poll`. Their blocking broker calls
//! (up to a minute for fencing) are made with no lock held; the partition map is locked only
//! to move partitions in or out of it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow};
use rdkafka::bindings::rd_kafka_resp_err_t as RespErr;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};

use super::partition::{PartitionCopy, PartitionProgress, PartitionState};
use super::transaction::{DeliveryLog, end_in_parallel, record_outcome};
use super::{CALL_TIMEOUT, Owned, Setup};
use crate::clients::target_producer_config;
use crate::end_offsets::end_offsets;
use crate::metrics::Metrics;
use crate::progress::{self, PartitionKey};
use ferry_mirror_api::spec::Mode;

pub(crate) struct CopyContext {
    pub setup: Arc<Setup>,
    pub owned: Arc<Mutex<Owned>>,
    pub metrics: Arc<Metrics>,
}

impl ClientContext for CopyContext {}

impl ConsumerContext for CopyContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RespErr, tpl: &mut TopicPartitionList) {
        match err {
            RespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.assign(consumer, tpl),
            RespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.revoke(consumer),
            other => tracing::warn!(error = ?other, "rebalance error"),
        }
    }
}

impl CopyContext {
    fn assign(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let wanted: Vec<PartitionKey> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        match take_partitions(&self.setup, &wanted) {
            Ok(taken) => {
                for pc in &taken {
                    let offset = if pc.progress.next_source >= 0 {
                        Offset::Offset(pc.progress.next_source)
                    } else {
                        Offset::Beginning
                    };
                    if let Err(e) = tpl.set_partition_offset(&pc.source_topic, pc.partition, offset)
                    {
                        // The consumer then starts at the earliest offset; `wants` still skips
                        // everything before the stored progress.
                        tracing::warn!(error = %e, topic = %pc.source_topic, partition = pc.partition, "cannot set the start offset");
                    }
                }
                let mut owned = self.owned.lock().expect("partition lock");
                for pc in taken {
                    owned.insert((pc.source_topic.clone(), pc.partition), pc);
                }
                let count = owned.len();
                drop(owned);
                self.metrics.assigned_partitions.set(count as i64);
                tracing::info!(partitions = count, "partitions assigned");
            }
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "cannot take over partitions");
                self.set_fatal(format!("{e:#}"));
            }
        }
        if let Err(e) = consumer.assign(tpl) {
            tracing::error!(error = %e, "assign failed");
        }
    }

    fn revoke(&self, consumer: &BaseConsumer<Self>) {
        let mut revoked: Vec<PartitionCopy> = self
            .owned
            .lock()
            .expect("partition lock")
            .drain()
            .map(|(_, pc)| pc)
            .collect();
        // Finish open transactions before anyone else may own these partitions.
        let open: Vec<_> = revoked
            .iter_mut()
            .filter(|pc| matches!(pc.progress.state, PartitionState::Open { .. }))
            .map(|pc| (pc, None))
            .collect();
        let topics: Vec<String> = open.iter().map(|(pc, _)| pc.source_topic.clone()).collect();
        for (topic, outcome) in topics.iter().zip(end_in_parallel(open, &self.setup)) {
            record_outcome(&self.metrics, topic, &outcome);
        }
        drop(revoked);
        self.metrics.assigned_partitions.set(0);
        tracing::info!("partitions revoked");
        if let Err(e) = consumer.unassign() {
            tracing::error!(error = %e, "unassign failed");
        }
    }

    fn set_fatal(&self, message: String) {
        self.setup
            .fatal
            .lock()
            .expect("fatal lock")
            .get_or_insert(message);
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
                    let txn_id = spec.transactional_id(topic, *p);
                    let producer: BaseProducer<DeliveryLog> = target_producer_config(
                        spec,
                        &setup.target,
                        setup.exactly_once.then_some(txn_id.as_str()),
                    )
                    .create_with_context(DeliveryLog::default())
                    .context("creating a target producer")?;
                    if setup.exactly_once {
                        producer
                            .init_transactions(CALL_TIMEOUT)
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
    let stored = progress::read(&setup.progress_client, &target_keys, CALL_TIMEOUT)?;
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
    let mut out = Vec::with_capacity(wanted.len());
    for ((source_key, target_key), producer) in wanted.iter().zip(&target_keys).zip(producers) {
        let producer = producer?;
        let stored = stored.get(target_key);
        let next_source = stored.and_then(|p| p.next_source).unwrap_or(-1);
        let goal = match spec.mode {
            Mode::Continuous => None,
            Mode::UntilCaughtUp => stored
                .and_then(|p| p.meta.goal)
                .or_else(|| goals.get(source_key).copied()),
        };
        let (source_topic, partition) = source_key;
        tracing::debug!(topic = %source_topic, partition, next_source, ?goal, "taking partition");
        out.push(PartitionCopy {
            source_topic: source_topic.clone(),
            target_topic: target_key.0.clone(),
            partition: *partition,
            producer,
            progress: PartitionProgress::taken(next_source, goal).with_counts(
                stored.map_or(0, |p| p.meta.records),
                stored.map_or(0, |p| p.meta.bytes),
            ),
        });
    }
    Ok(out)
}
