//! Coalesced topic reads. Terraform refreshes every `ferry_topic` with its own ReadResource
//! call, ten at a time; asking the broker per topic costs two or three round trips each, which
//! is minutes at 10,000 topics on a distant cluster. Instead, the first read of a cluster in
//! this provider process takes one snapshot of all its topics — names (Metadata), partitions
//! with replicas and ISR (DescribeTopics, 1,000 topics a request), topic-level overrides
//! (DescribeConfigs, 1,000 a request) and reassignments in progress (one request) — and every
//! read of that cluster is answered from it. Concurrent reads wait for the snapshot being taken
//! rather than each asking.
//!
//! A provider process lives for one CLI command, so a snapshot is as fresh as the plan, and it
//! answers for the whole command: a refresh of 10,000 topics outlasts any fixed age, and taking
//! the snapshot again part-way would multiply the requests by the plan's length. A topic this
//! process changes (create, update, delete) is read from the broker again, alone, and a topic
//! the snapshot does not know (created since by someone else) is asked about alone.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ferry_kafka::cluster::PerTopic;
use ferry_kafka::{Admin, AdminError, ConnectionConfig, OngoingReassignment, TopicLayout};
use tokio::sync::Mutex;

/// What a read of one topic needs.
#[derive(Debug, Clone)]
pub struct TopicRead {
    pub layout: TopicLayout,
    /// Configs set on the topic itself.
    pub overrides: BTreeMap<String, String>,
    /// Reassignments in progress on this topic's partitions.
    pub moving: Vec<OngoingReassignment>,
}

struct Snapshot {
    layouts: PerTopic<Option<TopicLayout>>,
    overrides: PerTopic<BTreeMap<String, String>>,
    moving: Vec<OngoingReassignment>,
}

#[derive(Default)]
struct ClusterReads {
    snapshot: Mutex<Option<Result<Arc<Snapshot>, String>>>,
    /// Topics this process changed since the snapshot: read alone.
    changed: std::sync::Mutex<HashSet<String>>,
}

/// Per-cluster snapshots, shared by every topic read of the provider process.
#[derive(Default)]
pub struct TopicReads {
    clusters: std::sync::Mutex<HashMap<ConnectionConfig, Arc<ClusterReads>>>,
    /// The admin request total last written to the log.
    logged: AtomicU64,
}

impl TopicReads {
    fn cluster(&self, config: &ConnectionConfig) -> Arc<ClusterReads> {
        let mut clusters = self.clusters.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(clusters.entry(config.clone()).or_default())
    }

    /// Marks a topic as changed by this process: later reads ask the broker about it alone.
    pub fn changed(&self, config: &ConnectionConfig, name: &str) {
        let cluster = self.cluster(config);
        let mut changed = cluster.changed.lock().unwrap_or_else(|e| e.into_inner());
        changed.insert(name.to_string());
    }

    /// The topic as the cluster has it; `Ok(None)` when it does not exist.
    pub async fn read(
        &self,
        admin: &Admin,
        config: &ConnectionConfig,
        name: &str,
    ) -> Result<Option<TopicRead>, AdminError> {
        let cluster = self.cluster(config);
        let alone = cluster
            .changed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(name);
        let result = if alone {
            read_alone(admin, name).await
        } else {
            match self.snapshot(&cluster, admin, config).await {
                Ok(snapshot) => match from_snapshot(&snapshot, name) {
                    Some(answer) => answer,
                    // Not in the snapshot at all (created since): ask.
                    None => read_alone(admin, name).await,
                },
                Err(message) => Err(AdminError::Other {
                    operation: "reading the cluster's topics",
                    message,
                }),
            }
        };
        self.log_requests(admin);
        result
    }

    async fn snapshot(
        &self,
        cluster: &ClusterReads,
        admin: &Admin,
        config: &ConnectionConfig,
    ) -> Result<Arc<Snapshot>, String> {
        // Readers queue here while the first one takes the snapshot: that is the coalescing.
        let mut slot = cluster.snapshot.lock().await;
        match slot.as_ref() {
            Some(Ok(s)) => return Ok(Arc::clone(s)),
            Some(Err(e)) => return Err(e.clone()),
            None => {}
        }
        let before = admin.requests_sent();
        let started = Instant::now();
        let taken = take_snapshot(admin).await.map_err(|e| e.to_string());
        if let Ok(s) = &taken {
            tracing::debug!(
                cluster = %config.bootstrap(),
                topics = s.layouts.len(),
                admin_requests = admin.requests_sent() - before,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "ferry: topic snapshot taken"
            );
            // Changes made before this snapshot are in it.
            cluster
                .changed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
        }
        *slot = Some(taken.clone());
        taken
    }

    /// Writes the connection's admin request total to the log (DEBUG) when it has grown;
    /// `make bench-plan` reads it from there.
    pub fn log_requests(&self, admin: &Admin) {
        let total = admin.requests_sent();
        if self.logged.fetch_max(total, Ordering::Relaxed) < total {
            tracing::debug!(admin_requests_total = total, "ferry: admin requests");
        }
    }
}

async fn take_snapshot(admin: &Admin) -> Result<Arc<Snapshot>, AdminError> {
    let names = admin.topic_names(true).await?;
    let layouts = admin.topic_layouts(&names).await?;
    let existing: Vec<String> = names
        .iter()
        .filter(|n| matches!(layouts.get(*n), Some(Ok(Some(_)))))
        .cloned()
        .collect();
    let overrides = admin.topics_config_overrides(&existing).await?;
    let moving = admin.list_reassignments().await?;
    Ok(Arc::new(Snapshot {
        layouts,
        overrides,
        moving,
    }))
}

/// The snapshot's answer for `name`; `None` when the snapshot does not know the topic (it
/// may have been created since) or could not describe it.
fn from_snapshot(s: &Snapshot, name: &str) -> Option<Result<Option<TopicRead>, AdminError>> {
    let layout = match s.layouts.get(name) {
        None | Some(Ok(None)) | Some(Err(_)) => return None,
        Some(Ok(Some(layout))) => layout.clone(),
    };
    let overrides = match s.overrides.get(name)? {
        Ok(o) => o.clone(),
        Err(_) => return None,
    };
    Some(Ok(Some(TopicRead {
        layout,
        overrides,
        moving: s
            .moving
            .iter()
            .filter(|m| m.topic == name)
            .cloned()
            .collect(),
    })))
}

/// One topic, asked about alone (three requests).
pub async fn read_alone(admin: &Admin, name: &str) -> Result<Option<TopicRead>, AdminError> {
    let Some(layout) = admin.topic_layout(name).await? else {
        return Ok(None);
    };
    let overrides = admin.topic_config_overrides(name).await?;
    let moving = admin
        .list_reassignments()
        .await?
        .into_iter()
        .filter(|m| m.topic == name)
        .collect();
    Ok(Some(TopicRead {
        layout,
        overrides,
        moving,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(name: &str) -> TopicLayout {
        TopicLayout {
            name: name.into(),
            topic_id: "id".into(),
            partitions: vec![],
        }
    }

    #[test]
    fn the_snapshot_answers_for_known_topics_only() {
        let s = Snapshot {
            layouts: HashMap::from([
                ("a".to_string(), Ok(Some(layout("a")))),
                ("gone".to_string(), Ok(None)),
            ]),
            overrides: HashMap::from([(
                "a".to_string(),
                Ok(BTreeMap::from([("retention.ms".into(), "1".into())])),
            )]),
            moving: vec![OngoingReassignment {
                topic: "a".into(),
                partition: 0,
                replicas: vec![1, 2],
                adding: vec![2],
                removing: vec![],
            }],
        };
        let a = from_snapshot(&s, "a").unwrap().unwrap().unwrap();
        assert_eq!(a.overrides["retention.ms"], "1");
        assert_eq!(a.moving.len(), 1);
        assert!(from_snapshot(&s, "gone").is_none(), "asked again, alone");
        assert!(from_snapshot(&s, "new").is_none());
    }
}
