//! When a slot's transaction ends: a pure function of its partitions' progress, the clock and
//! the run's tuning, so the rule is testable without brokers.

use std::time::{Duration, Instant};

use ferry_mirror_api::spec::Tuning;

use super::partition::{PartitionProgress, PartitionState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommitDecision {
    /// Nothing to end now.
    KeepGoing,
    /// End the transaction: records, offset mapping and progress together.
    CommitNow,
    /// Committing cannot succeed; abort and copy again from the last commit.
    Abort(AbortReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AbortReason {
    /// A record of the open transaction was not delivered.
    DeliveryFailed,
    /// Open longer than the transaction timeout: the broker has aborted it already.
    TimedOut,
}

impl std::fmt::Display for AbortReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AbortReason::DeliveryFailed => "a record was not delivered",
            AbortReason::TimedOut => "the transaction outlived its timeout",
        })
    }
}

/// How big and how old a transaction may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub max_age: Duration,
    pub max_bytes: u64,
    /// The producer's `transaction.timeout.ms`.
    pub transaction_timeout: Duration,
}

impl Limits {
    pub fn new(tuning: &Tuning, transaction_timeout: Duration) -> Limits {
        Limits {
            // Commit well before the broker would abort the transaction on its own.
            max_age: Duration::from_millis(tuning.transaction_max_ms).min(transaction_timeout / 2),
            max_bytes: tuning.transaction_max_bytes,
            transaction_timeout,
        }
    }
}

/// Decides for one slot from its partitions' progress: its transaction is as old as its
/// first open partition's batch and as big as all batches together. A partition at its goal
/// does not end the transaction by itself: it waits for the slot's regular cadence (age or
/// size), unless nothing else in the slot is left to copy (every partition done, fenced or at
/// its goal) or nothing is open (progress only). A wide run would otherwise commit once per
/// partition. `idle`: the consumer delivered nothing on its last poll. `delivery_failed`: the
/// producer reported a record of this slot as not delivered.
pub(crate) fn decide<'a>(
    partitions: impl IntoIterator<Item = &'a PartitionProgress>,
    now: Instant,
    limits: &Limits,
    idle: bool,
    delivery_failed: bool,
) -> CommitDecision {
    let mut since: Option<Instant> = None;
    let mut bytes = 0u64;
    let mut at_goal = false;
    // Some partition still has records to copy (or is not yet known to be at its goal).
    let mut copying = false;
    for p in partitions {
        match p.state {
            PartitionState::Done | PartitionState::Fenced => {}
            PartitionState::Open {
                since: s, bytes: b, ..
            } => {
                since = Some(since.map_or(s, |earliest| earliest.min(s)));
                bytes += b;
                if p.reached_goal() {
                    at_goal = true;
                } else {
                    copying = true;
                }
            }
            // At the goal with progress not yet committed there (gaps skipped, a partition with
            // nothing to copy), or idle there: to commit, so the partition becomes done and the
            // run's stored progress proves it.
            PartitionState::Idle => {
                if p.reached_goal()
                    && (p.committed_next < p.next_source || p.committed_next < 0 || idle)
                {
                    at_goal = true;
                } else {
                    copying = true;
                }
            }
        }
    }
    if let Some(since) = since {
        let age = now.saturating_duration_since(since);
        if delivery_failed {
            return CommitDecision::Abort(AbortReason::DeliveryFailed);
        }
        if age >= limits.transaction_timeout {
            return CommitDecision::Abort(AbortReason::TimedOut);
        }
        if age >= limits.max_age || bytes >= limits.max_bytes {
            return CommitDecision::CommitNow;
        }
    }
    if at_goal && (!copying || since.is_none()) {
        CommitDecision::CommitNow
    } else {
        CommitDecision::KeepGoing
    }
}

/// Whether a slot's open transaction is old enough to join a commit round another slot
/// started: half its age limit. Slots then commit in rounds rather than one at a time, and
/// a round blocks the copy loop once instead of once per slot.
pub(crate) fn ripe<'a>(
    partitions: impl IntoIterator<Item = &'a PartitionProgress>,
    now: Instant,
    limits: &Limits,
) -> bool {
    partitions.into_iter().any(|p| match p.state {
        PartitionState::Open { since, .. } => {
            now.saturating_duration_since(since) >= limits.max_age / 2
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_age: Duration::from_secs(2),
        max_bytes: 1000,
        transaction_timeout: Duration::from_secs(60),
    };

    fn open(next: i64, goal: Option<i64>, bytes: u64, since: Instant) -> PartitionProgress {
        let mut p = PartitionProgress::taken(next, goal);
        p.state = PartitionState::Open {
            since,
            bytes,
            records: 1,
        };
        p
    }

    #[test]
    fn an_open_transaction_commits_when_old_or_big_enough() {
        let t0 = Instant::now();
        let young = open(5, None, 10, t0);
        assert_eq!(
            decide(
                [&young],
                t0 + Duration::from_millis(500),
                &LIMITS,
                false,
                false
            ),
            CommitDecision::KeepGoing
        );
        assert_eq!(
            decide([&young], t0 + Duration::from_secs(2), &LIMITS, false, false),
            CommitDecision::CommitNow
        );
        let big = open(5, None, 1000, t0);
        assert_eq!(
            decide([&big], t0, &LIMITS, false, false),
            CommitDecision::CommitNow
        );
    }

    #[test]
    fn a_lone_partition_reaching_its_goal_commits_at_once() {
        let t0 = Instant::now();
        assert_eq!(
            decide([&open(10, Some(10), 1, t0)], t0, &LIMITS, false, false),
            CommitDecision::CommitNow
        );
        // Trailing markers skipped: nothing open, but progress at the goal is not committed.
        let mut skipped = PartitionProgress::taken(8, Some(10));
        skipped.next_source = 10;
        assert_eq!(
            decide([&skipped], t0, &LIMITS, false, false),
            CommitDecision::CommitNow
        );
        // Empty partition: goal 0, nothing ever committed.
        let mut empty = PartitionProgress::taken(-1, Some(0));
        empty.next_source = 0;
        assert_eq!(
            decide([&empty], t0, &LIMITS, false, false),
            CommitDecision::CommitNow
        );
        // Taken over already at the goal: committed once the consumer is idle.
        let at_goal = PartitionProgress::taken(10, Some(10));
        assert_eq!(
            decide([&at_goal], t0, &LIMITS, false, false),
            CommitDecision::KeepGoing
        );
        assert_eq!(
            decide([&at_goal], t0, &LIMITS, true, false),
            CommitDecision::CommitNow
        );
        let short = PartitionProgress::taken(5, Some(10));
        assert_eq!(
            decide([&short], t0, &LIMITS, true, false),
            CommitDecision::KeepGoing
        );
    }

    #[test]
    fn done_and_fenced_partitions_are_left_alone() {
        let t0 = Instant::now();
        for state in [PartitionState::Done, PartitionState::Fenced] {
            let mut p = PartitionProgress::taken(10, Some(10));
            p.state = state;
            assert_eq!(
                decide([&p], t0 + Duration::from_secs(600), &LIMITS, true, true),
                CommitDecision::KeepGoing
            );
        }
    }

    #[test]
    fn a_failed_delivery_or_an_expired_transaction_aborts() {
        let t0 = Instant::now();
        let p = open(5, None, 10, t0);
        assert_eq!(
            decide([&p], t0, &LIMITS, false, true),
            CommitDecision::Abort(AbortReason::DeliveryFailed)
        );
        assert_eq!(
            decide([&p], t0 + Duration::from_secs(61), &LIMITS, false, false),
            CommitDecision::Abort(AbortReason::TimedOut)
        );
    }

    #[test]
    fn transactions_commit_well_within_their_timeout_whatever_the_tuning() {
        let tuning = Tuning {
            transaction_max_ms: 600_000,
            ..Tuning::default()
        };
        let limits = Limits::new(&tuning, Duration::from_secs(60));
        assert_eq!(limits.max_age, Duration::from_secs(30));
        assert_eq!(
            Limits::new(&Tuning::default(), Duration::from_secs(60)).max_age,
            Duration::from_secs(2)
        );
    }

    #[test]
    fn a_slot_transaction_is_as_old_as_its_first_batch_and_as_big_as_all() {
        let t0 = Instant::now();
        let old = open(5, None, 10, t0);
        let young = open(5, None, 10, t0 + Duration::from_millis(1500));
        let at = t0 + Duration::from_millis(2000);
        assert_eq!(
            decide([&young], at, &LIMITS, false, false),
            CommitDecision::KeepGoing
        );
        assert_eq!(
            decide([&young, &old], at, &LIMITS, false, false),
            CommitDecision::CommitNow,
            "the transaction began with the older batch"
        );
        let (a, b) = (open(5, None, 600, t0), open(5, None, 600, t0));
        assert_eq!(
            decide([&a], t0, &LIMITS, false, false),
            CommitDecision::KeepGoing
        );
        assert_eq!(
            decide([&a, &b], t0, &LIMITS, false, false),
            CommitDecision::CommitNow,
            "bytes of all partitions together"
        );
    }

    #[test]
    fn a_partition_at_its_goal_waits_for_the_slots_cadence_while_others_copy() {
        let t0 = Instant::now();
        let copying = open(5, Some(100), 10, t0);
        let mut done = PartitionProgress::taken(10, Some(10));
        done.state = PartitionState::Done;
        assert_eq!(
            decide([&copying, &done], t0, &LIMITS, true, false),
            CommitDecision::KeepGoing
        );
        let at_goal = open(10, Some(10), 1, t0);
        assert_eq!(
            decide([&copying, &at_goal], t0, &LIMITS, false, false),
            CommitDecision::KeepGoing,
            "one partition at its goal does not commit a slot still copying"
        );
        assert_eq!(
            decide(
                [&copying, &at_goal],
                t0 + Duration::from_secs(2),
                &LIMITS,
                false,
                false
            ),
            CommitDecision::CommitNow,
            "it is committed (and so done) with the slot's next round"
        );
        let big = open(5, Some(100), 1000, t0);
        assert_eq!(
            decide([&big, &at_goal], t0, &LIMITS, false, false),
            CommitDecision::CommitNow
        );
        // A partition short of its goal with nothing delivered yet keeps the slot copying too.
        let waiting = PartitionProgress::taken(3, Some(100));
        assert_eq!(
            decide([&waiting, &at_goal], t0, &LIMITS, true, false),
            CommitDecision::KeepGoing
        );
        assert_eq!(
            decide([&copying, &at_goal], t0, &LIMITS, false, true),
            CommitDecision::Abort(AbortReason::DeliveryFailed)
        );
        let idle = PartitionProgress::taken(3, Some(100));
        assert_eq!(
            decide([&idle], t0, &LIMITS, true, true),
            CommitDecision::KeepGoing,
            "nothing open: nothing to abort"
        );
    }

    #[test]
    fn a_slot_whose_partitions_are_all_at_their_goal_or_done_commits_at_once() {
        let t0 = Instant::now();
        let mut done = PartitionProgress::taken(10, Some(10));
        done.state = PartitionState::Done;
        let mut fenced = PartitionProgress::taken(3, Some(10));
        fenced.state = PartitionState::Fenced;
        let (a, b) = (open(10, Some(10), 1, t0), open(7, Some(7), 1, t0));
        assert_eq!(
            decide([&a, &b, &done, &fenced], t0, &LIMITS, false, false),
            CommitDecision::CommitNow
        );
        // Gaps skipped up to the goal count as at the goal.
        let mut skipped = PartitionProgress::taken(8, Some(10));
        skipped.next_source = 10;
        assert_eq!(
            decide([&a, &skipped], t0, &LIMITS, false, false),
            CommitDecision::CommitNow
        );
        // Taken over at its goal, nothing new: at the goal once the consumer is idle.
        let taken_at_goal = PartitionProgress::taken(10, Some(10));
        assert_eq!(
            decide([&a, &taken_at_goal], t0, &LIMITS, false, false),
            CommitDecision::KeepGoing
        );
        assert_eq!(
            decide([&a, &taken_at_goal], t0, &LIMITS, true, false),
            CommitDecision::CommitNow
        );
    }

    #[test]
    fn progress_at_the_goal_with_nothing_open_commits_at_once() {
        // No transaction to wait for: the progress-only commit makes the partition done.
        let t0 = Instant::now();
        let mut skipped = PartitionProgress::taken(8, Some(10));
        skipped.next_source = 10;
        let waiting = PartitionProgress::taken(3, Some(100));
        assert_eq!(
            decide([&waiting, &skipped], t0, &LIMITS, false, false),
            CommitDecision::CommitNow
        );
    }

    #[test]
    fn a_slot_half_way_to_its_age_limit_joins_a_commit_round() {
        let t0 = Instant::now();
        let p = open(5, None, 10, t0);
        assert!(!ripe([&p], t0 + Duration::from_millis(999), &LIMITS));
        assert!(ripe([&p], t0 + Duration::from_secs(1), &LIMITS));
        let idle = PartitionProgress::taken(5, None);
        assert!(!ripe([&idle], t0 + Duration::from_secs(100), &LIMITS));
    }
}
