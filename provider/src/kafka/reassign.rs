//! Changing a topic's replication factor in place: a minimal-move assignment submitted as a
//! partition reassignment (KIP-455), throttled, waited for within `timeouts.update`, then a
//! preferred-leader election (KIP-460). Throttles are removed at the end, on failure, and by
//! the next apply after one that was interrupted.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferry_kafka::cluster::{FOLLOWER_THROTTLED_REPLICAS, LEADER_THROTTLED_REPLICAS};
use ferry_kafka::{
    Admin, AdminError, CurrentPartition, OngoingReassignment, change_replication_factor,
    reassign_progress,
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

/// True when a reassignment in progress on a partition is one ferry could have started for
/// replication factor `target`: it ends with `target` replicas, starts from a different
/// count, and only adds (raising) or only removes (lowering) replicas, as ferry's minimal
/// moves do. Anything else (a move between brokers, a different factor) is someone else's.
pub fn resumable(m: &OngoingReassignment, target: usize) -> bool {
    m.target().len() == target
        && m.original().len() != target
        && (m.adding.is_empty() || m.removing.is_empty())
}

/// What a plan says about a replication-factor change, given the reassignments in progress
/// on the topic: nothing to add, a warning (one ferry could have started: apply waits for it
/// and never submits it again), or an error (someone else's, which ferry does not overwrite).
pub fn check_in_progress(moving: &[OngoingReassignment], target: usize, diags: &mut Diagnostics) {
    if moving.is_empty() {
        return;
    }
    let foreign: Vec<OngoingReassignment> = moving
        .iter()
        .filter(|m| !resumable(m, target))
        .cloned()
        .collect();
    if foreign.is_empty() {
        diags.attribute_warning(
            AttributePath::root("replication_factor"),
            "Replication-factor change in progress",
            format!(
                "A partition reassignment to replication factor {target} is still running on the brokers \
                 ({} partitions: {}). Apply waits for it to finish instead of submitting it again.",
                moving.len(),
                describe(moving)
            ),
        );
    } else {
        rf_error(
            diags,
            "Another partition reassignment is in progress",
            format!(
                "The brokers are moving {} of this topic's partitions to replica sets that are not a \
                 change to replication factor {target} ({}). ferry does not overwrite a reassignment \
                 it would not have submitted for this change (one started by hand or by another \
                 tool, or by an earlier apply towards another factor): wait for it to finish \
                 (kafka-reassign-partitions --verify), or cancel it (kafka-reassign-partitions \
                 --cancel), then plan again.",
                foreign.len(),
                describe(&foreign)
            ),
        );
    }
}

/// Changes the topic's replication factor to `target`; `Ok(true)` when done (and leaders are
/// balanced), `Ok(false)` when the wait ended before the brokers finished (the reassignment
/// keeps running, throttled; an error diagnostic says so).
///
/// A reassignment already running towards `target` (an earlier apply that timed out or was
/// killed) is waited for, never submitted again; its throttle is set to this apply's
/// `throttle`. Partitions still short of `target` afterwards are then submitted.
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
    let ctx = ctx.with_timeout(within);
    let started = Instant::now();
    if !moving.is_empty() {
        let mut check = Diagnostics::default();
        check_in_progress(&moving, target, &mut check);
        if check.has_errors() {
            diags.0.extend(check.0);
            return false;
        }
        tracing::info!(
            topic,
            partitions_left = moving.len(),
            "ferry: a reassignment to replication factor {target} is already running on the \
             brokers (an earlier apply that was interrupted, or someone with the same target, \
             started it); waiting for it, not submitting it again"
        );
        if let Err(e) = rethrottle(admin, topic, &moving, throttle).await {
            report(diags, "Could not set the replication throttle", &e);
            return false;
        }
        if !wait(&ctx, admin, topic, target, moving.len(), started, diags).await {
            return false;
        }
    }
    match submit(admin, topic, target, throttle).await {
        Ok(0) => {}
        Ok(n) => {
            if !wait(&ctx, admin, topic, target, n, started, diags).await {
                return false;
            }
        }
        Err(e) => {
            let _ = clear_throttles(admin, topic).await;
            report(diags, "Could not start the replication-factor change", &e);
            return false;
        }
    }
    tracing::info!(
        topic,
        elapsed_s = started.elapsed().as_secs(),
        "ferry: replication factor is now {target}"
    );

    if let Err(e) = clear_throttles(admin, topic).await {
        report(diags, "Could not remove the replication throttles", &e);
    }
    let all: Vec<i32> = match admin.topic_layout(topic).await {
        Ok(Some(l)) => l.partitions.iter().map(|p| p.id).collect(),
        Ok(None) => Vec::new(),
        Err(e) => {
            report(diags, "Could not read the topic after the change", &e);
            Vec::new()
        }
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

/// Sets this apply's throttle on a reassignment an earlier one started (0: removes it), so
/// raising `throttle_bytes_per_sec` and applying again speeds up a move that timed out.
async fn rethrottle(
    admin: &Admin,
    topic: &str,
    moving: &[OngoingReassignment],
    throttle: u64,
) -> Result<(), AdminError> {
    if throttle == 0 {
        return clear_throttles(admin, topic).await;
    }
    let before: BTreeMap<i32, Vec<i32>> =
        moving.iter().map(|m| (m.partition, m.original())).collect();
    let targets: BTreeMap<i32, Vec<i32>> =
        moving.iter().map(|m| (m.partition, m.target())).collect();
    admin
        .set_replication_throttle(topic, &before, &targets, throttle)
        .await?;
    Ok(())
}

/// Waits until no partition of the topic moves and every one has its replicas in sync,
/// logging partitions and bytes left at INFO at once and then every [`PROGRESS_EVERY`].
/// False (with an error diagnostic) when the wait ended first or the topic went away.
async fn wait(
    ctx: &Ctx,
    admin: &Admin,
    topic: &str,
    target: usize,
    of: usize,
    started: Instant,
    diags: &mut Diagnostics,
) -> bool {
    let mut last_progress: Option<Instant> = None;
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
            return true;
        }
        if last_progress.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
            log_progress(ctx, admin, topic, &left, lagging, of, started).await;
            last_progress = Some(Instant::now());
        }
        if let Err(why) = ctx.sleep(POLL).await {
            rf_error(
                diags,
                "Replication-factor change still running",
                format!(
                    "The wait ended ({why}) with {} of {} partitions still moving ({}). The \
                     reassignment keeps running on the brokers, throttled. The next plan shows the \
                     change as in progress and the next apply waits for it (never submitting it \
                     again) and then removes the throttles; raise timeouts.update for large topics, \
                     or reassignment.throttle_bytes_per_sec to copy faster.",
                    left.len(),
                    of,
                    describe(&left)
                ),
            );
            return false;
        }
    }
}

/// One INFO line: partitions left, out of sync, and bytes the new replicas still lack (from
/// DescribeLogDirs on the brokers involved; "unknown", with the reason at DEBUG, when the
/// brokers do not say).
async fn log_progress(
    ctx: &Ctx,
    admin: &Admin,
    topic: &str,
    left: &[OngoingReassignment],
    lagging: usize,
    of: usize,
    started: Instant,
) {
    let partitions: Vec<i32> = left.iter().map(|m| m.partition).collect();
    let brokers = reassign_progress::brokers_involved(left);
    let bytes = match ctx
        .run(admin.replica_log_sizes(topic, &partitions, &brokers))
        .await
    {
        Ok(Ok(sizes)) => reassign_progress::bytes_left(left, &sizes),
        Ok(Err(e)) => {
            tracing::debug!(topic, "ferry: replica log sizes unavailable: {e}");
            None
        }
        Err(_) => None,
    };
    let elapsed_s = started.elapsed().as_secs();
    match bytes {
        Some(bytes_left) => tracing::info!(
            topic,
            partitions_left = left.len(),
            partitions_out_of_sync = lagging,
            partitions = of,
            // As text: Terraform re-renders numbers as floats (1.8e+07).
            bytes_left = %bytes_left,
            elapsed_s,
            "ferry: replication-factor change in progress: {} of {of} partitions moving, {} left to copy",
            left.len(),
            human_bytes(bytes_left)
        ),
        None => tracing::info!(
            topic,
            partitions_left = left.len(),
            partitions_out_of_sync = lagging,
            partitions = of,
            bytes_left = "unknown",
            elapsed_s,
            "ferry: replication-factor change in progress: {} of {of} partitions moving",
            left.len()
        ),
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

async fn moving_on(admin: &Admin, topic: &str) -> Result<Vec<OngoingReassignment>, AdminError> {
    Ok(admin
        .list_reassignments()
        .await?
        .into_iter()
        .filter(|m| m.topic == topic)
        .collect())
}

/// Computes the assignment for the partitions whose replica count is not `target` yet, sets
/// the throttles and submits; how many partitions move (0: none needed to).
async fn submit(
    admin: &Admin,
    topic: &str,
    target: usize,
    throttle: u64,
) -> Result<usize, AdminError> {
    let layout = admin
        .topic_layout(topic)
        .await?
        .ok_or_else(|| AdminError::Other {
            operation: "changing the replication factor",
            message: format!("topic {topic} does not exist"),
        })?;
    let current: Vec<CurrentPartition> = layout
        .partitions
        .iter()
        .filter(|p| p.replicas.len() != target)
        .map(|p| CurrentPartition {
            partition: p.id,
            replicas: p.replicas.clone(),
            leader: p.leader,
        })
        .collect();
    if current.is_empty() {
        return Ok(0);
    }
    let brokers = admin.brokers().await?;
    let loads = admin.replica_loads().await?;
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
    Ok(targets.len())
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
    fn only_minimal_moves_to_the_target_are_resumed() {
        // Raising 1 -> 3 and lowering 3 -> 2, as ferry submits them.
        assert!(resumable(&moving(&[1, 2, 3], &[2, 3], &[]), 3));
        assert!(resumable(&moving(&[1, 2, 3], &[], &[3]), 2));
        // A move between brokers at the same factor is no replication-factor change.
        let swap = moving(&[2, 1], &[2], &[1]);
        assert!(!resumable(&swap, 1));
        // Adding and removing at once, even ending at the target factor.
        assert!(!resumable(&moving(&[1, 2, 3], &[2, 3], &[1]), 2));
        // One foreign partition among resumable ones refuses the lot, and names it.
        let mut d = Diagnostics::default();
        let other = OngoingReassignment {
            partition: 7,
            ..swap
        };
        check_in_progress(&[moving(&[1, 2], &[2], &[]), other], 2, &mut d);
        assert!(d.has_errors());
        assert!(d.0[0].detail.contains("t-7") && !d.0[0].detail.contains("t-0"));
    }

    #[test]
    fn byte_counts_read_as_people_write_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn throttle_keys_are_recognised() {
        assert!(is_throttle_key("leader.replication.throttled.replicas"));
        assert!(is_throttle_key("follower.replication.throttled.replicas"));
        assert!(!is_throttle_key("retention.ms"));
    }
}
