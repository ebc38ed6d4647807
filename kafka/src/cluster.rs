//! Cluster-level admin calls: partition layouts with ISR, brokers and racks, batched reads of
//! many topics, partition reassignment (KIP-455), preferred-leader election (KIP-460) and
//! replication throttles.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rdkafka::admin::{AdminOptions, ConfigSource, OwnedResourceSpecifier, ResourceSpecifier};
use rdkafka::error::RDKafkaErrorCode;

use crate::admin::{Admin, AdminError, TopicDescription, describe_kafka_error};
use crate::assignment::Broker;
use crate::native::{self, NativeTopic, error_code};
pub use crate::protocol::OngoingReassignment;
use crate::protocol::{self, DecodeError, WireError};

/// One partition: its leader, replicas in order (the first is the preferred leader) and the
/// in-sync replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLayout {
    pub id: i32,
    pub leader: Option<i32>,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// A topic with every partition's replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicLayout {
    pub name: String,
    pub topic_id: String,
    pub partitions: Vec<PartitionLayout>,
}

impl TopicLayout {
    fn from_native(name: &str, t: NativeTopic) -> TopicLayout {
        TopicLayout {
            name: name.to_string(),
            topic_id: t.topic_id,
            partitions: t
                .partitions
                .into_iter()
                .map(|p| PartitionLayout {
                    id: p.id,
                    leader: p.leader,
                    replicas: p.replicas,
                    isr: p.isr,
                })
                .collect(),
        }
    }

    /// The summary `describe_topic` gives.
    pub fn description(&self) -> TopicDescription {
        TopicDescription {
            name: self.name.clone(),
            topic_id: self.topic_id.clone(),
            partitions: self.partitions.len() as i32,
            replication_factor: self
                .partitions
                .first()
                .map_or(0, |p| p.replicas.len() as i32),
            leaderless_partitions: self
                .partitions
                .iter()
                .filter(|p| p.leader.is_none())
                .count(),
        }
    }
}

/// Per-topic outcomes of a batched read.
pub type PerTopic<T> = HashMap<String, Result<T, AdminError>>;

/// Topic config keys that name the replicas a throttle applies to (KIP-73).
pub const LEADER_THROTTLED_REPLICAS: &str = "leader.replication.throttled.replicas";
pub const FOLLOWER_THROTTLED_REPLICAS: &str = "follower.replication.throttled.replicas";
/// Broker config keys that set the throttle's rate, bytes per second.
pub const LEADER_THROTTLE_RATE: &str = "leader.replication.throttled.rate";
pub const FOLLOWER_THROTTLE_RATE: &str = "follower.replication.throttled.rate";

/// Largest number of topics asked for in one DescribeTopics or DescribeConfigs request.
pub const BATCH_LIMIT: usize = 1000;

fn wire_error(operation: &'static str, e: WireError) -> Result<(), AdminError> {
    if e.code == 0 {
        return Ok(());
    }
    let code = error_code(i32::from(e.code));
    Err(AdminError::Kafka {
        operation,
        code,
        message: e
            .message
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| code.to_string()),
    })
}

fn decode_error(operation: &'static str, e: DecodeError) -> AdminError {
    AdminError::Other {
        operation,
        message: format!("could not read the broker's answer: {}", e.0),
    }
}

impl Admin {
    /// Live brokers and their racks.
    pub async fn brokers(&self) -> Result<Vec<Broker>, AdminError> {
        let nodes = self
            .blocking(native::describe_cluster)
            .await?
            .map_err(|e| AdminError::native("describing the cluster", e))?;
        Ok(nodes
            .into_iter()
            .map(|n| Broker {
                id: n.id,
                rack: n.rack,
            })
            .collect())
    }

    /// How many partition replicas each broker holds, over all topics (one Metadata request).
    pub async fn replica_loads(&self) -> Result<HashMap<i32, usize>, AdminError> {
        let md = self.metadata().await?;
        let mut loads = HashMap::new();
        for b in md.brokers() {
            loads.insert(b.id(), 0);
        }
        for t in md.topics() {
            for p in t.partitions() {
                for r in p.replicas() {
                    *loads.entry(*r).or_insert(0) += 1;
                }
            }
        }
        Ok(loads)
    }

    /// One topic's partitions with replicas and ISR; `Ok(None)` when it does not exist.
    pub async fn topic_layout(&self, name: &str) -> Result<Option<TopicLayout>, AdminError> {
        let mut all = self.topic_layouts(&[name.to_string()]).await?;
        all.remove(name).unwrap_or(Ok(None))
    }

    /// Many topics' layouts with one DescribeTopics request per [`BATCH_LIMIT`] topics. Each
    /// topic gets its own outcome (`Ok(None)`: it does not exist).
    pub async fn topic_layouts(
        &self,
        names: &[String],
    ) -> Result<PerTopic<Option<TopicLayout>>, AdminError> {
        let mut out = HashMap::with_capacity(names.len());
        for chunk in names.chunks(BATCH_LIMIT) {
            let chunk = chunk.to_vec();
            let asked = chunk.clone();
            let described = self
                .blocking(move |rk, timeout| native::describe_topics(rk, &chunk, timeout))
                .await?
                .map_err(|e| AdminError::native("describing topics", e))?;
            let mut described = described;
            for name in asked {
                let result = match described.remove(&name) {
                    None => Ok(None),
                    Some(r) => r
                        .map(|t| t.map(|t| TopicLayout::from_native(&name, t)))
                        .map_err(|e| AdminError::native("describing topic", e)),
                };
                out.insert(name, result);
            }
        }
        Ok(out)
    }

    /// The configs set on each topic itself, with one DescribeConfigs request per
    /// [`BATCH_LIMIT`] topics.
    pub async fn topics_config_overrides(
        &self,
        names: &[String],
    ) -> Result<PerTopic<BTreeMap<String, String>>, AdminError> {
        const OP: &str = "describing topic configs";
        let mut out = HashMap::with_capacity(names.len());
        for chunk in names.chunks(BATCH_LIMIT) {
            self.count_request();
            let specs: Vec<ResourceSpecifier<'_>> =
                chunk.iter().map(|n| ResourceSpecifier::Topic(n)).collect();
            let opts = AdminOptions::new().request_timeout(Some(self.timeout));
            let results = self
                .client
                .describe_configs(&specs, &opts)
                .await
                .map_err(|e| AdminError::Other {
                    operation: OP,
                    message: describe_kafka_error(&e),
                })?;
            for (i, result) in results.into_iter().enumerate() {
                match result {
                    Ok(resource) => {
                        let OwnedResourceSpecifier::Topic(name) = &resource.specifier else {
                            continue;
                        };
                        let overrides = resource
                            .entries
                            .iter()
                            .filter(|e| e.source == ConfigSource::DynamicTopic)
                            .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
                            .collect();
                        out.insert(name.clone(), Ok(overrides));
                    }
                    Err(code) => {
                        if let Some(name) = chunk.get(i) {
                            out.insert(
                                name.clone(),
                                Err(AdminError::Kafka {
                                    operation: OP,
                                    code,
                                    message: code.to_string(),
                                }),
                            );
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// The dynamic configs set on one broker (not static or default ones).
    pub async fn broker_config_overrides(
        &self,
        broker: i32,
    ) -> Result<BTreeMap<String, String>, AdminError> {
        const OP: &str = "describing broker configs";
        self.count_request();
        let opts = AdminOptions::new().request_timeout(Some(self.timeout));
        let results = self
            .client
            .describe_configs(&[ResourceSpecifier::Broker(broker)], &opts)
            .await
            .map_err(|e| AdminError::Other {
                operation: OP,
                message: describe_kafka_error(&e),
            })?;
        let mut out = BTreeMap::new();
        for result in results {
            let resource = result.map_err(|code| AdminError::Kafka {
                operation: OP,
                code,
                message: code.to_string(),
            })?;
            for e in resource.entries {
                if e.source == ConfigSource::DynamicBroker
                    && let Some(v) = e.value
                {
                    out.insert(e.name, v);
                }
            }
        }
        Ok(out)
    }

    /// Sets and resets dynamic config keys of one broker.
    pub async fn alter_broker_config(
        &self,
        broker: i32,
        set: &BTreeMap<String, String>,
        reset: &[String],
    ) -> Result<(), AdminError> {
        let set: Vec<(String, String)> = set.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let reset = reset.to_vec();
        self.blocking(move |rk, timeout| {
            native::incremental_alter_broker(rk, broker, &set, &reset, timeout)
        })
        .await?
        .map_err(|e| AdminError::native("altering broker config", e))
    }

    /// Every partition reassignment in progress on the cluster (ListPartitionReassignments,
    /// sent over librdkafka's connection; see `native::raw_request`).
    pub async fn list_reassignments(&self) -> Result<Vec<OngoingReassignment>, AdminError> {
        const OP: &str = "listing partition reassignments";
        let response = self
            .blocking(move |rk, timeout| {
                let body = protocol::list_reassignments_request(native::timeout_ms(timeout), None);
                native::raw_request(
                    rk,
                    protocol::LIST_PARTITION_REASSIGNMENTS,
                    0,
                    true,
                    &body,
                    timeout,
                )
            })
            .await?
            .map_err(|e| AdminError::native(OP, e))?;
        let (error, list) =
            protocol::list_reassignments_response(&response).map_err(|e| decode_error(OP, e))?;
        wire_error(OP, error)?;
        Ok(list)
    }

    /// Submits new replica lists for partitions of `topic` (AlterPartitionReassignments).
    /// The brokers copy in the background; [`Admin::list_reassignments`] shows what is left.
    pub async fn alter_reassignments(
        &self,
        topic: &str,
        targets: &BTreeMap<i32, Vec<i32>>,
    ) -> Result<(), AdminError> {
        self.submit_reassignments(
            topic,
            targets.iter().map(|(p, r)| (*p, Some(r.clone()))).collect(),
        )
        .await
    }

    /// Cancels the reassignments in progress on these partitions: they go back to their
    /// original replicas.
    pub async fn cancel_reassignments(
        &self,
        topic: &str,
        partitions: &[i32],
    ) -> Result<(), AdminError> {
        self.submit_reassignments(topic, partitions.iter().map(|p| (*p, None)).collect())
            .await
    }

    async fn submit_reassignments(
        &self,
        topic: &str,
        targets: BTreeMap<i32, Option<Vec<i32>>>,
    ) -> Result<(), AdminError> {
        const OP: &str = "reassigning partitions";
        if targets.is_empty() {
            return Ok(());
        }
        let request = BTreeMap::from([(topic.to_string(), targets)]);
        let response = self
            .blocking(move |rk, timeout| {
                let body =
                    protocol::alter_reassignments_request(native::timeout_ms(timeout), &request);
                native::raw_request(
                    rk,
                    protocol::ALTER_PARTITION_REASSIGNMENTS,
                    0,
                    true,
                    &body,
                    timeout,
                )
            })
            .await?
            .map_err(|e| AdminError::native(OP, e))?;
        let parsed =
            protocol::alter_reassignments_response(&response).map_err(|e| decode_error(OP, e))?;
        wire_error(OP, parsed.error)?;
        for (t, p, e) in parsed.partitions {
            wire_error(OP, e).map_err(|e| match e {
                AdminError::Kafka {
                    operation,
                    code,
                    message,
                } => AdminError::Kafka {
                    operation,
                    code,
                    message: format!("{t}-{p}: {message}"),
                },
                other => other,
            })?;
        }
        Ok(())
    }

    /// A preferred-leader election (KIP-460) for these partitions of `topic`. Partitions whose
    /// leader already is the preferred replica are fine.
    pub async fn elect_preferred_leaders(
        &self,
        topic: &str,
        partitions: &[i32],
    ) -> Result<(), AdminError> {
        if partitions.is_empty() {
            return Ok(());
        }
        let asked: Vec<(String, i32)> =
            partitions.iter().map(|p| (topic.to_string(), *p)).collect();
        let outcomes = self
            .blocking(move |rk, timeout| native::elect_preferred_leaders(rk, &asked, timeout))
            .await?
            .map_err(|e| AdminError::native("electing preferred leaders", e))?;
        let mut sorted: Vec<_> = outcomes.into_iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        for ((t, p), result) in sorted {
            match result {
                Ok(()) => {}
                Err(e) if e.code == RDKafkaErrorCode::ElectionNotNeeded => {}
                Err(e) => {
                    return Err(AdminError::Kafka {
                        operation: "electing preferred leaders",
                        code: e.code,
                        message: format!("{t}-{p}: {}", e.message),
                    });
                }
            }
        }
        Ok(())
    }

    /// Throttles the replication a reassignment causes: on the topic, the replicas that send
    /// (current ones) and receive (added ones) for the moving partitions; on every broker
    /// involved, the rate. Partitions that only lose replicas move no data and are not listed.
    /// Returns the brokers whose rate was set, for [`Admin::clear_replication_throttle`].
    pub async fn set_replication_throttle(
        &self,
        topic: &str,
        current: &BTreeMap<i32, Vec<i32>>,
        targets: &BTreeMap<i32, Vec<i32>>,
        bytes_per_sec: u64,
    ) -> Result<Vec<i32>, AdminError> {
        let (leaders, followers) = throttled_replicas(current, targets);
        if followers.is_empty() {
            return Ok(Vec::new());
        }
        let brokers: BTreeSet<i32> = leaders
            .iter()
            .chain(followers.iter())
            .map(|(_, b)| *b)
            .collect();
        let rate = bytes_per_sec.to_string();
        let rates = BTreeMap::from([
            (LEADER_THROTTLE_RATE.to_string(), rate.clone()),
            (FOLLOWER_THROTTLE_RATE.to_string(), rate),
        ]);
        for b in &brokers {
            self.alter_broker_config(*b, &rates, &[]).await?;
        }
        let list = |pairs: &[(i32, i32)]| {
            pairs
                .iter()
                .map(|(p, b)| format!("{p}:{b}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let topic_keys = BTreeMap::from([
            (LEADER_THROTTLED_REPLICAS.to_string(), list(&leaders)),
            (FOLLOWER_THROTTLED_REPLICAS.to_string(), list(&followers)),
        ]);
        self.alter_topic_config(topic, &topic_keys, &[], false)
            .await?;
        Ok(brokers.into_iter().collect())
    }

    /// Removes a topic's throttled-replica lists and, on `brokers`, the throttle rates.
    pub async fn clear_replication_throttle(
        &self,
        topic: Option<&str>,
        brokers: &[i32],
    ) -> Result<(), AdminError> {
        if let Some(topic) = topic {
            let keys = [
                LEADER_THROTTLED_REPLICAS.to_string(),
                FOLLOWER_THROTTLED_REPLICAS.to_string(),
            ];
            self.alter_topic_config(topic, &BTreeMap::new(), &keys, false)
                .await?;
        }
        let keys = [
            LEADER_THROTTLE_RATE.to_string(),
            FOLLOWER_THROTTLE_RATE.to_string(),
        ];
        for b in brokers {
            self.alter_broker_config(*b, &BTreeMap::new(), &keys)
                .await?;
        }
        Ok(())
    }
}

/// (partition, broker) pairs, as the throttled-replicas topic configs list them.
pub type ReplicaPairs = Vec<(i32, i32)>;

/// The pairs a reassignment throttles: current replicas of partitions that gain replicas lead
/// (send), the added replicas follow (receive).
pub fn throttled_replicas(
    current: &BTreeMap<i32, Vec<i32>>,
    targets: &BTreeMap<i32, Vec<i32>>,
) -> (ReplicaPairs, ReplicaPairs) {
    let (mut leaders, mut followers) = (Vec::new(), Vec::new());
    for (p, target) in targets {
        let before = current.get(p).cloned().unwrap_or_default();
        let added: Vec<i32> = target
            .iter()
            .copied()
            .filter(|b| !before.contains(b))
            .collect();
        if added.is_empty() {
            continue;
        }
        leaders.extend(before.iter().map(|b| (*p, *b)));
        followers.extend(added.iter().map(|b| (*p, *b)));
    }
    (leaders, followers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_partitions_that_gain_replicas_are_throttled() {
        let current = BTreeMap::from([(0, vec![1]), (1, vec![1, 2, 3])]);
        let targets = BTreeMap::from([(0, vec![1, 2, 3]), (1, vec![1, 2])]);
        let (leaders, followers) = throttled_replicas(&current, &targets);
        assert_eq!(leaders, vec![(0, 1)]);
        assert_eq!(followers, vec![(0, 2), (0, 3)]);
    }
}
