//! The run's slots topic on the target: created with `tuning.slots` partitions when the run
//! starts, and from then on the record of the run's slot count (its partition count), read by
//! every later worker and restart. Workers share the slots through a consumer group on it.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ferry_kafka::{Admin, ConnectionConfig, KafkaErrorCode, NewTopic};
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::progress::{self, PartitionKey};
use ferry_mirror_api::spec::Spec;

/// The selected source partitions, sorted, from one metadata request.
pub(crate) fn source_partitions(
    watermarks: &BaseConsumer,
    topics: &[String],
    timeout: Duration,
) -> Result<Vec<PartitionKey>> {
    let metadata = watermarks
        .fetch_metadata(None, timeout)
        .context("reading the source topics' partitions")?;
    let mut out = Vec::new();
    for name in topics {
        let topic = metadata
            .topics()
            .iter()
            .find(|t| t.name() == name)
            .with_context(|| format!("source topic {name} is not in the source's metadata"))?;
        out.extend(topic.partitions().iter().map(|p| (name.clone(), p.id())));
    }
    out.sort();
    Ok(out)
}

/// The run's slot count: the partition count of its slots topic, which the first worker of
/// the run creates with `tuning.slots` partitions. A run that already holds progress but has
/// no slots topic was started by a release with one transactional id per partition; it is
/// refused (see docs/runtime.md).
pub(crate) fn slot_count(
    spec: &Spec,
    target: &ConnectionConfig,
    progress_reader: &BaseConsumer,
    partitions: &[PartitionKey],
    timeout: Duration,
) -> Result<u32> {
    let handle = tokio::runtime::Handle::current();
    let admin = handle
        .block_on(Admin::connect(target))
        .context("target cluster")?;
    let topic = spec.slots_topic();
    let wanted = slots_for(spec.tuning.slots, partitions.len());
    if let Some(existing) = handle.block_on(admin.describe_topic(&topic))? {
        return recorded(wanted, existing.partitions);
    }
    let target_keys: Vec<PartitionKey> = partitions
        .iter()
        .map(|(t, p)| (spec.target_topic(t), *p))
        .collect();
    let stored = progress::read(progress_reader, &target_keys, timeout)?;
    if let Some(((topic_name, partition), _)) = stored.iter().find(|(_, p)| p.next_source.is_some())
    {
        bail!(
            "run {run} was started by an earlier ferry-mirror that copies with one transactional \
             id per partition (progress exists, e.g. for {topic_name}[{partition}], but the run \
             has no slots topic {slots_topic}); this release copies with work slots and cannot \
             take such a run over safely. Finish the run with the release that started it, or \
             start a new run (a new run_id)",
            run = spec.run_id,
            slots_topic = spec.slots_topic(),
        );
    }
    let brokers = handle.block_on(admin.broker_count())? as i32;
    let new = NewTopic {
        name: topic.clone(),
        partitions: wanted as i32,
        replication_factor: Some(spec.replication_factor.unwrap_or(brokers.min(3))),
        config: BTreeMap::new(),
    };
    match handle.block_on(admin.create_topic(&new, false)) {
        Ok(()) => {}
        // Another worker of the same run created it first: its count is the run's.
        Err(e) if e.code() == Some(KafkaErrorCode::TopicAlreadyExists) => {}
        Err(e) => return Err(e).with_context(|| format!("creating the slots topic {topic}")),
    }
    let created = loop_describe(&handle, &admin, &topic)?;
    handle
        .block_on(admin.wait_until_topic_ready(&topic, created, Duration::from_secs(180)))
        .with_context(|| format!("waiting for the slots topic {topic}"))?;
    tracing::info!(topic = %topic, slots = created, "slots topic ready");
    recorded(wanted, created)
}

/// Waits for a topic just created to be described. A broker still applying the creation of
/// thousands of partitions (the run's target topics, created just before) publishes the new
/// topic only after them: 30 s was not enough for 5,000 partitions on a busy 2-core machine.
fn loop_describe(handle: &tokio::runtime::Handle, admin: &Admin, topic: &str) -> Result<i32> {
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(d) = handle.block_on(admin.describe_topic(topic))? {
            return Ok(d.partitions);
        }
        if std::time::Instant::now() >= deadline {
            bail!("the slots topic {topic} was created but cannot be described");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Pairs of (slot producer, partition) a run is sized for. Each slot producer holds librdkafka
/// state for every partition of the target topics it writes, about 2.3 KB each (at 10,000
/// partitions a worker peaked at 2.24 GB having held 64 slots and 1.12 GB having held 16; see
/// docs/benchmarks.md), so memory grows with slots × partitions, not with the partitions
/// alone. 160,000 pairs keep the slots' share near 400 MB.
const SLOT_PARTITION_PAIRS: usize = 160_000;

/// The slot count of a new run: `tuning.slots`, fewer for runs over more than 2,500 partitions
/// (160,000 / partitions, at least 8) so that memory stays bounded (see
/// [`SLOT_PARTITION_PAIRS`]).
pub(crate) fn slots_for(requested: u32, partitions: usize) -> u32 {
    let cap = (SLOT_PARTITION_PAIRS / partitions.max(1)).max(8);
    requested.min(u32::try_from(cap).unwrap_or(u32::MAX)).max(1)
}

fn recorded(wanted: u32, partitions: i32) -> Result<u32> {
    let slots = u32::try_from(partitions)
        .ok()
        .filter(|n| *n > 0)
        .with_context(|| format!("the slots topic has {partitions} partitions"))?;
    if slots != wanted {
        tracing::warn!(
            recorded = slots,
            wanted,
            "the run started with {slots} slots; tuning.slots only applies to a new run"
        );
    }
    Ok(slots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_runs_get_fewer_slots_so_memory_stays_bounded() {
        assert_eq!(slots_for(64, 12), 64);
        assert_eq!(slots_for(64, 1000), 64);
        assert_eq!(slots_for(64, 2500), 64);
        assert_eq!(slots_for(64, 5000), 32);
        assert_eq!(slots_for(64, 10_000), 16);
        assert_eq!(slots_for(64, 100_000), 8, "never fewer than 8");
        assert_eq!(slots_for(4, 100_000), 4, "never more than asked for");
        assert_eq!(slots_for(4096, 10), 4096);
        assert_eq!(slots_for(64, 0), 64);
    }
}
