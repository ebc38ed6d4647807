//! When a partition's transaction ends: a pure function of its progress, the clock and the
//! run's tuning, so the rule is testable without brokers.

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

/// Decides for one partition. `idle`: the consumer delivered nothing on its last poll.
/// `delivery_failed`: the producer reported a record of this partition as not delivered.
pub(crate) fn decide(
    p: &PartitionProgress,
    now: Instant,
    limits: &Limits,
    idle: bool,
    delivery_failed: bool,
) -> CommitDecision {
    match p.state {
        PartitionState::Done | PartitionState::Fenced => CommitDecision::KeepGoing,
        PartitionState::Open { since, bytes, .. } => {
            let age = now.saturating_duration_since(since);
            if delivery_failed {
                CommitDecision::Abort(AbortReason::DeliveryFailed)
            } else if age >= limits.transaction_timeout {
                CommitDecision::Abort(AbortReason::TimedOut)
            } else if age >= limits.max_age || bytes >= limits.max_bytes || p.reached_goal() {
                CommitDecision::CommitNow
            } else {
                CommitDecision::KeepGoing
            }
        }
        // At the goal with progress not yet committed there (gaps skipped, a partition with
        // nothing to copy), or idle there: commit, so the partition becomes done and the run's
        // stored progress proves it.
        PartitionState::Idle
            if p.reached_goal()
                && (p.committed_next < p.next_source || p.committed_next < 0 || idle) =>
        {
            CommitDecision::CommitNow
        }
        PartitionState::Idle => CommitDecision::KeepGoing,
    }
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
                &young,
                t0 + Duration::from_millis(500),
                &LIMITS,
                false,
                false
            ),
            CommitDecision::KeepGoing
        );
        assert_eq!(
            decide(&young, t0 + Duration::from_secs(2), &LIMITS, false, false),
            CommitDecision::CommitNow
        );
        let big = open(5, None, 1000, t0);
        assert_eq!(
            decide(&big, t0, &LIMITS, false, false),
            CommitDecision::CommitNow
        );
    }

    #[test]
    fn reaching_the_goal_commits_at_once() {
        let t0 = Instant::now();
        assert_eq!(
            decide(&open(10, Some(10), 1, t0), t0, &LIMITS, false, false),
            CommitDecision::CommitNow
        );
        // Trailing markers skipped: nothing open, but progress at the goal is not committed.
        let mut skipped = PartitionProgress::taken(8, Some(10));
        skipped.next_source = 10;
        assert_eq!(
            decide(&skipped, t0, &LIMITS, false, false),
            CommitDecision::CommitNow
        );
        // Empty partition: goal 0, nothing ever committed.
        let mut empty = PartitionProgress::taken(-1, Some(0));
        empty.next_source = 0;
        assert_eq!(
            decide(&empty, t0, &LIMITS, false, false),
            CommitDecision::CommitNow
        );
        // Taken over already at the goal: committed once the consumer is idle.
        let at_goal = PartitionProgress::taken(10, Some(10));
        assert_eq!(
            decide(&at_goal, t0, &LIMITS, false, false),
            CommitDecision::KeepGoing
        );
        assert_eq!(
            decide(&at_goal, t0, &LIMITS, true, false),
            CommitDecision::CommitNow
        );
        let short = PartitionProgress::taken(5, Some(10));
        assert_eq!(
            decide(&short, t0, &LIMITS, true, false),
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
                decide(&p, t0 + Duration::from_secs(600), &LIMITS, true, true),
                CommitDecision::KeepGoing
            );
        }
    }

    #[test]
    fn a_failed_delivery_or_an_expired_transaction_aborts() {
        let t0 = Instant::now();
        let p = open(5, None, 10, t0);
        assert_eq!(
            decide(&p, t0, &LIMITS, false, true),
            CommitDecision::Abort(AbortReason::DeliveryFailed)
        );
        assert_eq!(
            decide(&p, t0 + Duration::from_secs(61), &LIMITS, false, false),
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
}
