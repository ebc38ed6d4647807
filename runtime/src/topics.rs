//! Which source topics the run copies, and their target topics, created to match.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ferry_kafka::{Admin, ConnectionConfig, NewTopic};
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::BaseProducer;

use crate::clients;
use crate::end_offsets::{end_offsets, start_offsets};
use crate::progress::{self, PartitionKey};
use crate::status;
use ferry_mirror_api::now_ms;
use ferry_mirror_api::spec::Spec;
use ferry_mirror_api::status::TargetTopic;

/// Topic configs that describe the source cluster's operations rather than the data, and are
/// not copied.
const NOT_COPIED: &[&str] = &[
    "follower.replication.throttled.replicas",
    "leader.replication.throttled.replicas",
    "message.timestamp.type",
    "remote.storage.enable",
    "local.retention.ms",
    "local.retention.bytes",
];

/// One selected topic pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicPair {
    pub source: String,
    pub target: String,
    pub partitions: i32,
}

/// The selected source topics, sorted.
pub(crate) async fn selected(spec: &Spec, source: &Admin) -> Result<Vec<TopicPair>> {
    let mut pairs = Vec::new();
    for name in source.topic_names(false).await? {
        if !spec.selects_topic(&name) {
            continue;
        }
        let described = source
            .describe_topic(&name)
            .await?
            .with_context(|| format!("source topic {name} disappeared"))?;
        pairs.push(TopicPair {
            target: spec.target_topic(&name),
            source: name,
            partitions: described.partitions,
        });
    }
    for name in &spec.topics.names {
        if !pairs.iter().any(|p| &p.source == name) {
            bail!("source topic {name:?} (topics.names) does not exist on the source cluster");
        }
    }
    if pairs.is_empty() {
        bail!("the topic selection matches no source topic");
    }
    Ok(pairs)
}

/// Target topics narrower in the metadata than their source when the worker went on: topics
/// grown in steps (see [`ferry_kafka::creation_steps`]) whose later steps the broker had not
/// published yet. By target topic, the width seen.
pub(crate) type NarrowTargets = BTreeMap<String, i32>;

/// Creates missing target topics like their sources; refuses target topics holding records the
/// run did not copy, unless the spec allows appending. The run's internal topics must exist
/// ([`create_internal`]): the status topic records which target topics the run took on.
///
/// A topic this worker creates (or finds being created by another worker of the run) is waited
/// for up to its first step's width only: a broker publishes a later step's partitions once it
/// has made the earlier step's logs (12 s for 5,000 on the test peers), and the copy of the
/// partitions it has published need not wait for that. Returns those topics with their width.
pub(crate) async fn prepare_target(
    spec: &Spec,
    source: &Admin,
    target: &Admin,
    pairs: &[TopicPair],
) -> Result<NarrowTargets> {
    let brokers = target.broker_count().await? as i32;
    let mut existing = Vec::new();
    let mut narrow = NarrowTargets::new();
    for pair in pairs {
        let mut described = target.describe_topic(&pair.target).await?;
        if let Some(t) = &described
            && t.partitions < pair.partitions
            && growing_in_steps(t.partitions, pair.partitions)
        {
            // Another worker of this run may be growing the topic it created in steps.
            described = Some(
                target
                    .wait_until_topic_ready(
                        &pair.target,
                        pair.partitions,
                        ready_within(pair.partitions),
                    )
                    .await
                    .unwrap_or_else(|_| t.clone()),
            );
        }
        match described {
            Some(existing) if existing.partitions < pair.partitions => bail!(
                "target topic {} has {} partitions but source topic {} has {}: records keep their partition, so \
                 the target needs at least as many (add partitions to the target topic)",
                pair.target,
                existing.partitions,
                pair.source,
                pair.partitions
            ),
            Some(_) => existing.push(pair.clone()),
            None => {
                let described = source
                    .describe_topic(&pair.source)
                    .await?
                    .context("source topic vanished")?;
                let mut config: BTreeMap<String, String> = source
                    .topic_config_overrides(&pair.source)
                    .await?
                    .into_iter()
                    .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
                    .collect();
                // Copies carry the source's timestamps; the target must not restamp them.
                config.insert("message.timestamp.type".into(), "CreateTime".into());
                let rf = spec
                    .replication_factor
                    .unwrap_or(described.replication_factor.min(brokers));
                let topic = NewTopic {
                    name: pair.target.clone(),
                    partitions: pair.partitions,
                    replication_factor: Some(rf),
                    config,
                };
                let width = create(target, &topic).await?;
                if width < topic.partitions {
                    narrow.insert(topic.name, width);
                }
            }
        }
    }
    let target_conn = crate::connect::connection(&spec.target, "target")?;
    let (spec, pairs) = (spec.clone(), pairs.to_vec());
    tokio::task::spawn_blocking(move || {
        check_target_topics(&spec, &target_conn, &pairs, &existing)
    })
    .await
    .context("checking the target topics failed")??;
    Ok(narrow)
}

/// Bound for the reads of the target-topic check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Before the run copies into a target topic it records, once, that it took the topic on; a
/// topic that existed before and holds committed records the run did not copy is refused
/// unless the spec allows appending (then the record says how many it held, and every worker
/// says so loudly). Records of the run itself are recognised by that record, or, for a run
/// started by an older release, by its committed progress on the partition.
fn check_target_topics(
    spec: &Spec,
    target: &ConnectionConfig,
    pairs: &[TopicPair],
    existing: &[TopicPair],
) -> Result<()> {
    let reader: BaseConsumer = crate::connect::create(&clients::reader_config(
        target,
        &format!("{}.status", spec.worker_group()),
    ))?;
    let records = status::read_records(&reader, &spec.status_topic(), CHECK_TIMEOUT)?;
    let checked = status::target_checks(&records);
    let unchecked: Vec<&TopicPair> = pairs
        .iter()
        .filter(|p| !checked.contains_key(&p.target))
        .collect();
    let to_inspect: Vec<&TopicPair> = existing
        .iter()
        .filter(|p| !checked.contains_key(&p.target))
        .collect();
    let held = foreign_records(spec, target, &to_inspect)?;
    let refused: Vec<(&String, &u64)> = held.iter().filter(|(_, n)| **n > 0).collect();
    if !refused.is_empty() && !spec.target_may_hold_records {
        let listed: Vec<String> = refused
            .iter()
            .take(10)
            .map(|(t, n)| format!("{t} ({n} records)"))
            .collect();
        bail!(
            "target topic{} {}{} already hold{} records this run did not copy; a copy into a \
             non-empty topic would mix them with the source's records. Empty or delete the topic, \
             copy to other names (topic_name_prefix), or set target_may_hold_records = true to \
             append the copy after them",
            if refused.len() == 1 { "" } else { "s" },
            listed.join(", "),
            if refused.len() > 10 {
                format!(" and {} more", refused.len() - 10)
            } else {
                String::new()
            },
            if refused.len() == 1 { "s" } else { "" },
        );
    }
    let checks: Vec<TargetTopic> = unchecked
        .iter()
        .map(|p| TargetTopic {
            target_topic: p.target.clone(),
            records_before: held.get(&p.target).copied().unwrap_or(0),
            checked_at_ms: now_ms(),
        })
        .collect();
    if !checks.is_empty() {
        let producer: BaseProducer =
            crate::connect::create(&clients::status_producer_config(spec, target))?;
        status::write_target_checks(&producer, &spec.status_topic(), &checks, CHECK_TIMEOUT)?;
    }
    for t in checked.values().chain(&checks) {
        if t.records_before > 0 {
            tracing::warn!(
                topic = %t.target_topic,
                records_before = t.records_before,
                "TARGET TOPIC HELD RECORDS BEFORE THIS RUN: the copy is appended after {} records \
                 this run did not copy (target_may_hold_records = true)",
                t.records_before
            );
        }
    }
    Ok(())
}

/// Per target topic, how many committed records it holds that the run did not copy, counted
/// by offsets (log start to last stable offset) over the partitions that have any. Partitions
/// with the run's progress are the run's own. A partition with offsets but no committed
/// record (only aborted transactions of a killed worker, say) holds nothing.
fn foreign_records(
    spec: &Spec,
    target: &ConnectionConfig,
    topics: &[&TopicPair],
) -> Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    if topics.is_empty() {
        return Ok(out);
    }
    let keys: Vec<PartitionKey> = topics
        .iter()
        .flat_map(|p| (0..p.partitions).map(move |i| (p.target.clone(), i)))
        .collect();
    let reader: BaseConsumer = crate::connect::create(&clients::reader_config(
        target,
        &format!("{}.check", spec.worker_group()),
    ))?;
    let starts = start_offsets(&reader, &keys, CHECK_TIMEOUT)
        .context("listing the target topics' start offsets")?;
    let ends = end_offsets(&reader, &keys, CHECK_TIMEOUT)
        .context("listing the target topics' end offsets")?;
    let with_offsets: Vec<&PartitionKey> = keys.iter().filter(|k| ends[*k] > starts[*k]).collect();
    if with_offsets.is_empty() {
        return Ok(out);
    }
    let progress_reader: BaseConsumer =
        crate::connect::create(&clients::reader_config(target, &spec.progress_group()))?;
    let owned: Vec<PartitionKey> = with_offsets.iter().map(|k| (*k).clone()).collect();
    let progress = progress::read(&progress_reader, &owned, CHECK_TIMEOUT)?;
    let lookups: BTreeSet<(String, i32, i64)> = with_offsets
        .iter()
        .filter(|k| progress.get(*k).is_none_or(|p| p.next_source.is_none()))
        .map(|(t, p)| (t.clone(), *p, starts[&(t.clone(), *p)]))
        .collect();
    let found = crate::verify::first_records(
        target,
        &format!("{}.check", spec.worker_group()),
        &lookups,
        CHECK_TIMEOUT,
    )?;
    for (lookup, first) in &found {
        if first.is_some() {
            let (topic, partition, start) = lookup;
            let end = ends[&(topic.clone(), *partition)];
            *out.entry(topic.clone()).or_insert(0) += (end - start) as u64;
        }
    }
    Ok(out)
}

/// Creates the run's internal topics (offsets and status, compacted, one partition) where
/// missing: by the first worker, or by a one-off command recording its result before any
/// worker started (`copy-acls`).
pub(crate) async fn create_internal(spec: &Spec, target: &Admin) -> Result<()> {
    let brokers = target.broker_count().await? as i32;
    let internal_rf = spec.replication_factor.unwrap_or(brokers.min(3));
    for name in [spec.offsets_topic(), spec.status_topic()] {
        if target.describe_topic(&name).await?.is_none() {
            let topic = NewTopic {
                name,
                partitions: 1,
                replication_factor: Some(internal_rf),
                config: BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]),
            };
            create(target, &topic).await?;
        }
    }
    Ok(())
}

/// Creates a topic and waits until its first creation step is led; returns the width then
/// in the metadata (see [`prepare_target`]).
async fn create(target: &Admin, topic: &NewTopic) -> Result<i32> {
    match target.create_topic(topic, false).await {
        Ok(()) => {}
        // Another worker of the same run created it first (it grows it in the same steps).
        Err(e) if e.code() == Some(ferry_kafka::KafkaErrorCode::TopicAlreadyExists) => {}
        Err(e) => return Err(e).with_context(|| format!("creating target topic {}", topic.name)),
    }
    let first_step = ferry_kafka::creation_steps(topic.partitions)[0];
    let ready = target
        .wait_until_topic_ready(&topic.name, first_step, ready_within(first_step))
        .await?;
    let width = ready.partitions.min(topic.partitions);
    if width < topic.partitions {
        tracing::info!(
            topic = %topic.name,
            partitions = width,
            of = topic.partitions,
            "target topic ready at its first step: the rest are copied as the broker publishes them"
        );
    } else {
        tracing::info!(topic = %topic.name, partitions = width, "target topic ready");
    }
    Ok(width)
}

/// How long a new target topic may take to have all its partitions led: a minute, and a second
/// more per 100 partitions (a fresh broker took minutes for 10,000).
fn ready_within(partitions: i32) -> Duration {
    Duration::from_secs(60 + u64::try_from(partitions / 100).unwrap_or(0))
}

/// Whether a target topic with `have` partitions may be one a worker of this run is still
/// growing to `want` ([`ferry_kafka::creation_steps`] stops only at multiples of the step).
fn growing_in_steps(have: i32, want: i32) -> bool {
    have > 0 && ferry_kafka::creation_steps(want).contains(&have)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_step_of_a_wide_creation_is_waited_for() {
        assert!(growing_in_steps(5_000, 12_000));
        assert!(growing_in_steps(10_000, 12_000));
        assert!(
            !growing_in_steps(12, 24),
            "a narrower topic made by hand is refused at once"
        );
        assert!(!growing_in_steps(5_000, 5_000 - 1));
        assert!(!growing_in_steps(7_000, 12_000));
        assert!(ready_within(10_000) > ready_within(12));
    }
}
