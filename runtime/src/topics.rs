//! Which source topics the run copies, and their target topics, created to match.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ferry_kafka::{Admin, NewTopic};

use ferry_mirror_api::spec::Spec;

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

/// Creates missing target topics like their sources, and the run's internal topics.
pub(crate) async fn prepare_target(
    spec: &Spec,
    source: &Admin,
    target: &Admin,
    pairs: &[TopicPair],
) -> Result<()> {
    let brokers = target.broker_count().await? as i32;
    for pair in pairs {
        match target.describe_topic(&pair.target).await? {
            Some(existing) if existing.partitions < pair.partitions => bail!(
                "target topic {} has {} partitions but source topic {} has {}: records keep their partition, so \
                 the target needs at least as many (add partitions to the target topic)",
                pair.target,
                existing.partitions,
                pair.source,
                pair.partitions
            ),
            Some(_) => {}
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
                create(target, &topic).await?;
            }
        }
    }
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

async fn create(target: &Admin, topic: &NewTopic) -> Result<()> {
    match target.create_topic(topic, false).await {
        Ok(()) => {}
        // Another worker of the same run created it first.
        Err(e) if e.code() == Some(ferry_kafka::KafkaErrorCode::TopicAlreadyExists) => {}
        Err(e) => return Err(e).with_context(|| format!("creating target topic {}", topic.name)),
    }
    target
        .wait_until_topic_ready(&topic.name, topic.partitions, Duration::from_secs(60))
        .await?;
    tracing::info!(topic = %topic.name, partitions = topic.partitions, "target topic ready");
    Ok(())
}
