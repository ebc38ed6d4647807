//! Changing a topic's replication factor in place: a minimal-move assignment submitted as a
//! partition reassignment (KIP-455), throttled, waited for within `timeouts.update`, then a
//! preferred-leader election (KIP-460). Throttles are removed at the end, on failure, and by
//! the next apply after one that was interrupted.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferry_kafka::cluster::{FOLLOWER_THROTTLED_REPLICAS, LEADER_THROTTLED_REPLICAS};
use ferry_kafka::{
    Admin, AdminError, CurrentPartition, OngoingReassignment, change_replication_factor,
};
use tfplugin::{AttributePath, Diagnostics};

use crate::provider::Ctx;

/// Replication throttle when the resource sets none: 50 MiB/s per broker.
pub const DEFAULT_THROTTLE: u64 = 50 * 1024 * 1024;

const POLL: Duration = Duration::from_secs(1);
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// True when a topic config key is a reassignment throttle, which ferry sets and removes.
pub fn is_throttle_key(key: &str) -> bool {
    key == LEADER_THROTTLED_REPLICAS || key == FOLLOWER_THROTTLED_REPLICAS
}

fn rf_error(diags: &mut Diagnostics, summary: &str, detail: impl Into<String>) {
    diags.attribute_error(AttributePath::root("replication_factor"), summary, detail);
}

fn describe(moving: &[OngoingReassignment]) -> String {
    moving
        .iter()
        .map(|m| {
            format!(
                "{}-{}: {:?} -> {:?}",
                m.topic,
                m.partition,
                m.original(),
                m.target()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a plan says about a replication-factor change, given the reassignments in progress
/// on the topic: nothing to add, a warning (ours, apply waits for it), or an error (someone
/// else's, with a different target).
pub fn check_in_progress(moving: &[OngoingReassignment], target: usize, diags: &mut Diagnostics) {
    if moving.is_empty() {
        return;
    }
    if moving.iter().all(|m| m.target().len() == target) {
        diags.attribute_warning(
            AttributePath::root("replication_factor"),
            "Replication-factor change in progress",
            format!(
                "A partition reassignment to replication factor {target} is still running on the brokers \
                 ({}). Apply waits for it to finish instead of submitting it again.",
                describe(moving)
            ),
        );
    } else {
        rf_error(
            diags,
            "Another partition reassignment is in progress",
            format!(
                "The brokers are moving this topic's partitions to a different replica set than \
                 replication factor {target} ({}). ferry does not overwrite a reassignment it did \
                 not start: wait for it to finish (or cancel it with kafka-reassign-partitions \
                 --cancel), then plan again.",
                describe(moving)
            ),
        );
    }
}

/// Changes the topic's replication factor to `target`; `Ok(true)` when done (and leaders are
/// balanced), `Ok(false)` when the wait ended before the brokers finished (the reassignment
/// keeps running, throttled; an error diagnostic says so).
pub async fn change_replication_factor_in_place(
    ctx: &Ctx,
    admin: &Admin,
    topic: &str,
    target: usize,
    throttle: u64,
    within: Duration,
    diags: &mut Diagnostics,
) -> bool {
    let moving = match moving_on(admin, topic).await {
        Ok(m) => m,
        Err(e) => {
            diags.error_from(
                Some(AttributePath::root("replication_factor")),
                "Could not list partition reassignments",
                &e,
            );
            return false;
        }
    };
    let mut partitions: Vec<i32>;
    if !moving.is_empty() {
        // An earlier apply started it (or someone with the same target): wait, never resubmit.
        check_in_progress(&moving, target, diags);
        if diags.has_errors() {
            return false;
        }
        diags
            .0
            .retain(|d| d.severity != tfplugin::diagnostics::Severity::Warning);
        tracing::info!(
            topic,
            partitions = moving.len(),
            "ferry: a reassignment to replication factor {target} is already running; waiting for it"
        );
        partitions = moving.iter().map(|m| m.partition).collect();
    } else {
        match submit(admin, topic, target, throttle).await {
            Ok(p) => partitions = p,
            Err(e) => {
                let _ = clear_throttles(admin, topic).await;
                report(diags, "Could not start the replication-factor change", &e);
                return false;
            }
        }
    }
    partitions.sort_unstable();

    let ctx = ctx.with_timeout(within);
    let started = Instant::now();
    let mut last_progress = Instant::now();
    loop {
        let left = match moving_on(admin, topic).await {
            Ok(m) => m,
            Err(e) => {
                report(diags, "Could not follow the partition reassignment", &e);
                return false;
            }
        };
        let lagging = match admin.topic_layout(topic).await {
            Ok(Some(layout)) => layout
                .partitions
                .iter()
                .filter(|p| p.isr.len() < p.replicas.len().min(target))
                .count(),
            Ok(None) => {
                rf_error(
                    diags,
                    "Topic disappeared",
                    "The topic was deleted during the change.",
                );
                return false;
            }
            Err(e) => {
                report(diags, "Could not follow the partition reassignment", &e);
                return false;
            }
        };
        if left.is_empty() && lagging == 0 {
            tracing::info!(
                topic,
                elapsed_s = started.elapsed().as_secs(),
                "ferry: replication factor is now {target}"
            );
            break;
        }
        if last_progress.elapsed() >= PROGRESS_EVERY {
            tracing::info!(
                topic,
                partitions_moving = left.len(),
                partitions_out_of_sync = lagging,
                of = partitions.len(),
                elapsed_s = started.elapsed().as_secs(),
                "ferry: replication-factor change in progress"
            );
            last_progress = Instant::now();
        }
        if let Err(why) = ctx.sleep(POLL).await {
            rf_error(
                diags,
                "Replication-factor change still running",
                format!(
                    "The wait ended ({why}) with {} of {} partitions still moving ({}). The \
                     reassignment keeps running on the brokers, throttled. The next plan shows the \
                     change again and the next apply waits for it and then removes the throttles; \
                     raise timeouts.update for large topics.",
                    left.len(),
                    partitions.len(),
                    describe(&left)
                ),
            );
            return false;
        }
    }

    if let Err(e) = clear_throttles(admin, topic).await {
        report(diags, "Could not remove the replication throttles", &e);
    }
    let all: Vec<i32> = match admin.topic_layout(topic).await {
        Ok(Some(l)) => l.partitions.iter().map(|p| p.id).collect(),
        _ => partitions,
    };
    if let Err(e) = admin.elect_preferred_leaders(topic, &all).await {
        report(
            diags,
            "Could not move leaders back to their preferred replicas",
            &e,
        );
    }
    !diags.has_errors()
}

async fn moving_on(admin: &Admin, topic: &str) -> Result<Vec<OngoingReassignment>, AdminError> {
    Ok(admin
        .list_reassignments()
        .await?
        .into_iter()
        .filter(|m| m.topic == topic)
        .collect())
}

/// Computes the assignment, sets the throttles and submits; the partitions that move.
async fn submit(
    admin: &Admin,
    topic: &str,
    target: usize,
    throttle: u64,
) -> Result<Vec<i32>, AdminError> {
    let layout = admin
        .topic_layout(topic)
        .await?
        .ok_or_else(|| AdminError::Other {
            operation: "changing the replication factor",
            message: format!("topic {topic} does not exist"),
        })?;
    let brokers = admin.brokers().await?;
    let loads = admin.replica_loads().await?;
    let current: Vec<CurrentPartition> = layout
        .partitions
        .iter()
        .map(|p| CurrentPartition {
            partition: p.id,
            replicas: p.replicas.clone(),
            leader: p.leader,
        })
        .collect();
    let targets = change_replication_factor(&current, &brokers, &loads, target).map_err(|m| {
        AdminError::Kafka {
            operation: "changing the replication factor",
            code: ferry_kafka::KafkaErrorCode::InvalidReplicationFactor,
            message: m,
        }
    })?;
    let before: BTreeMap<i32, Vec<i32>> = current
        .iter()
        .map(|p| (p.partition, p.replicas.clone()))
        .collect();
    if throttle > 0 {
        admin
            .set_replication_throttle(topic, &before, &targets, throttle)
            .await?;
    }
    tracing::info!(
        topic,
        partitions = targets.len(),
        throttle_bytes_per_sec = throttle,
        "ferry: reassigning partitions to replication factor {target}: {targets:?}"
    );
    admin.alter_reassignments(topic, &targets).await?;
    Ok(targets.keys().copied().collect())
}

/// Removes the topic's throttled-replica lists, and the brokers' throttle rates unless another
/// topic's reassignment still runs (then a log line says they stay, and why).
pub async fn clear_throttles(admin: &Admin, topic: &str) -> Result<(), AdminError> {
    let others: Vec<OngoingReassignment> = admin
        .list_reassignments()
        .await?
        .into_iter()
        .filter(|m| m.topic != topic)
        .collect();
    let brokers: Vec<i32> = if others.is_empty() {
        admin.brokers().await?.into_iter().map(|b| b.id).collect()
    } else {
        tracing::warn!(
            "ferry: broker replication throttle rates stay while other reassignments run: {}",
            describe(&others)
        );
        Vec::new()
    };
    admin
        .clear_replication_throttle(Some(topic), &brokers)
        .await
}

fn report(diags: &mut Diagnostics, summary: &str, e: &AdminError) {
    super::topic_rules::report_topic_error(diags, summary, "", e);
    if let Some(last) = diags.0.last_mut()
        && last.path.is_none()
    {
        last.path = Some(AttributePath::root("replication_factor"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfplugin::diagnostics::Severity;

    fn moving(replicas: &[i32], adding: &[i32], removing: &[i32]) -> OngoingReassignment {
        OngoingReassignment {
            topic: "t".into(),
            partition: 0,
            replicas: replicas.to_vec(),
            adding: adding.to_vec(),
            removing: removing.to_vec(),
        }
    }

    #[test]
    fn a_move_to_the_same_factor_is_waited_for_and_another_is_refused() {
        let mut d = Diagnostics::default();
        check_in_progress(&[], 3, &mut d);
        assert!(d.0.is_empty());

        check_in_progress(&[moving(&[1, 2, 3], &[2, 3], &[])], 3, &mut d);
        assert_eq!(d.0.len(), 1);
        assert_eq!(d.0[0].severity, Severity::Warning);

        let mut d = Diagnostics::default();
        check_in_progress(&[moving(&[1, 2, 3], &[3], &[1])], 3, &mut d);
        assert!(d.has_errors(), "target [2, 3] is not replication factor 3");
        assert!(d.0[0].detail.contains("t-0"), "{}", d.0[0].detail);
    }

    #[test]
    fn throttle_keys_are_recognised() {
        assert!(is_throttle_key("leader.replication.throttled.replicas"));
        assert!(is_throttle_key("follower.replication.throttled.replicas"));
        assert!(!is_throttle_key("retention.ms"));
    }
}
