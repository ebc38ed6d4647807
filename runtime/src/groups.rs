//! Consumer-group offset translation: each selected source group's committed offsets become
//! the exact target offsets of the same records, committed on the target.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::clients::reader_config;
use crate::mapping::{MappingRecord, PartitionMapping};
use crate::partition_list::append;
use crate::progress::{self, PartitionKey};
use crate::topics::TopicPair;
use anyhow::{Context, Result};
use ferry_kafka::ConnectionConfig;
use ferry_mirror_api::groups::{GroupPartition, GroupResult, GroupState};
use ferry_mirror_api::spec::Spec;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};

/// Reads the whole offset mapping of the run (read_committed, up to the end).
pub(crate) fn load_mappings(
    spec: &Spec,
    target: &ConnectionConfig,
    timeout: Duration,
) -> Result<HashMap<PartitionKey, PartitionMapping>> {
    let reader: BaseConsumer = crate::connect::create(&reader_config(
        target,
        &format!("{}.reader", spec.worker_group()),
    ))?;
    let topic = spec.offsets_topic();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Beginning)?;
    reader.assign(&tpl)?;
    let mut out: HashMap<PartitionKey, PartitionMapping> = HashMap::new();
    let deadline = Instant::now() + timeout.max(Duration::from_secs(60));
    loop {
        if Instant::now() > deadline {
            anyhow::bail!("timed out reading the offset mapping from {topic}");
        }
        match reader.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                let Some(payload) = m.payload() else { continue };
                let record: MappingRecord =
                    serde_json::from_slice(payload).context("malformed mapping record")?;
                let entry = out
                    .entry((record.target_topic.clone(), record.partition))
                    .or_default();
                for run in record.runs {
                    entry.insert(run);
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(Err(e)) => return Err(e).context("reading the offset mapping"),
            None => {}
        }
    }
    Ok(out)
}

/// Source consumer groups the spec selects (never the run's own groups).
pub(crate) fn selected_groups(
    spec: &Spec,
    source: &ConnectionConfig,
    timeout: Duration,
) -> Result<Vec<String>> {
    if spec.consumer_groups_regex.is_none() {
        return Ok(Vec::new());
    }
    let reader: BaseConsumer = crate::connect::create(&reader_config(
        source,
        &format!("{}.reader", spec.worker_group()),
    ))?;
    let list = reader
        .fetch_group_list(None, timeout)
        .context("listing source consumer groups")?;
    let mut names: Vec<String> = list
        .groups()
        .iter()
        .map(|g| g.name().to_string())
        .filter(|n| spec.selects_group(n))
        .collect();
    names.sort();
    Ok(names)
}

/// Committed offsets of `group` for the given partitions; partitions without one are left out.
pub(crate) fn committed(
    conn: &ConnectionConfig,
    group: &str,
    partitions: &[PartitionKey],
    timeout: Duration,
) -> Result<HashMap<PartitionKey, i64>> {
    let consumer: BaseConsumer = crate::connect::create(&reader_config(conn, group))?;
    let mut tpl = TopicPartitionList::new();
    for (t, p) in partitions {
        tpl.add_partition(t, *p);
    }
    let committed = crate::progress::committed_with_retry(&consumer, &tpl, timeout)
        .with_context(|| format!("reading offsets of group {group}"))?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(n) => Some(((e.topic().to_string(), e.partition()), n)),
            _ => None,
        })
        .collect())
}

fn source_partitions(pairs: &[TopicPair]) -> Vec<PartitionKey> {
    pairs
        .iter()
        .flat_map(|p| (0..p.partitions).map(move |i| (p.source.clone(), i)))
        .collect()
}

/// Translates every selected group and commits it on the target where the group is idle.
pub(crate) fn translate_all(
    spec: &Spec,
    source: &ConnectionConfig,
    target: &ConnectionConfig,
    pairs: &[TopicPair],
    timeout: Duration,
) -> Result<Vec<GroupResult>> {
    let groups = selected_groups(spec, source, timeout)?;
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let mappings = load_mappings(spec, target, timeout)?;
    let target_keys: Vec<PartitionKey> = pairs
        .iter()
        .flat_map(|p| (0..p.partitions).map(move |i| (p.target.clone(), i)))
        .collect();
    let progress_reader: BaseConsumer =
        crate::connect::create(&reader_config(target, &spec.progress_group()))?;
    let progress = progress::read(&progress_reader, &target_keys, timeout)?;
    let target_reader: BaseConsumer = crate::connect::create(&reader_config(
        target,
        &format!("{}.reader", spec.worker_group()),
    ))?;

    let mut results = Vec::new();
    for group in groups {
        let mut result = GroupResult::new(group.clone(), GroupState::Pending);
        let offsets = committed(source, &group, &source_partitions(pairs), timeout)?;
        let mut pending = Vec::new();
        for ((source_topic, partition), source_offset) in offsets {
            let target_topic = spec.target_topic(&source_topic);
            let key = (target_topic.clone(), partition);
            let copied_to = progress.get(&key).and_then(|p| p.next_source).unwrap_or(0);
            let target_offset = if copied_to < source_offset {
                pending.push(format!(
                    "{source_topic}[{partition}] copied to {copied_to}, group at {source_offset}"
                ));
                None
            } else {
                match mappings.get(&key).and_then(|m| m.translate(source_offset)) {
                    Some(t) => Some(t),
                    // Nothing was copied from this partition: the group sits where copies would start.
                    None => Some(
                        target_reader
                            .fetch_watermarks(&target_topic, partition, timeout)
                            .map(|(low, _)| low)?,
                    ),
                }
            };
            result.partitions.push(GroupPartition {
                source_topic,
                target_topic,
                partition,
                source_offset,
                target_offset,
            });
        }
        result
            .partitions
            .sort_by(|a, b| (&a.source_topic, a.partition).cmp(&(&b.source_topic, b.partition)));
        if result.partitions.is_empty() {
            result.state = GroupState::NoOffsets;
            result.detail = "the group has no committed offsets on the selected topics".into();
        } else if !pending.is_empty() {
            result.state = GroupState::Pending;
            result.detail = pending.join("; ");
        } else if group_is_active(&target_reader, &group, timeout)? {
            result.state = GroupState::ActiveOnTarget;
            result.detail = "the group has members on the target; offsets were not changed".into();
        } else {
            match commit_on_target(target, &group, &result.partitions, timeout) {
                Ok(()) => result.state = GroupState::Translated,
                Err(e) => {
                    result.state = GroupState::Failed;
                    result.detail = format!("{e:#}");
                }
            }
        }
        tracing::info!(group = %result.group, state = %result.state, "consumer group translation");
        results.push(result);
    }
    Ok(results)
}

fn group_is_active(reader: &BaseConsumer, group: &str, timeout: Duration) -> Result<bool> {
    let list = reader.fetch_group_list(Some(group), timeout)?;
    Ok(list
        .groups()
        .iter()
        .any(|g| g.name() == group && !g.members().is_empty()))
}

fn commit_on_target(
    target: &ConnectionConfig,
    group: &str,
    partitions: &[GroupPartition],
    timeout: Duration,
) -> Result<()> {
    let consumer: BaseConsumer = crate::connect::create(&reader_config(target, group))?;
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        if let Some(t) = p.target_offset {
            append(&mut tpl, &p.target_topic, p.partition, Offset::Offset(t))?;
        }
    }
    consumer
        .commit(&tpl, CommitMode::Sync)
        .with_context(|| format!("committing translated offsets of {group} on the target"))?;
    // Read back: the commit is only done when the target reports these offsets.
    let keys: Vec<PartitionKey> = partitions
        .iter()
        .map(|p| (p.target_topic.clone(), p.partition))
        .collect();
    let stored = committed(target, group, &keys, timeout)?;
    for p in partitions {
        if p.target_offset != stored.get(&(p.target_topic.clone(), p.partition)).copied() {
            anyhow::bail!(
                "target reports a different offset for {}[{}] after the commit",
                p.target_topic,
                p.partition
            );
        }
    }
    Ok(())
}
