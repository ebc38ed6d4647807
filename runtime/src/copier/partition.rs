//! Where the copy of one source partition stands, as plain data: its state, offsets and goal,
//! and the pure rules over them (which offsets to copy, how offsets that are never delivered
//! are accounted for, what the worker reports).

use std::time::Instant;

use ferry_mirror_api::spec::Mode;
use ferry_mirror_api::status::{PartitionStatus, WorkerState};

/// The life of a partition while this worker owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartitionState {
    /// Everything copied so far is committed (or nothing was copied yet).
    Idle,
    /// Records not yet committed: with exactly-once, an open transaction.
    Open {
        since: Instant,
        bytes: u64,
        records: u64,
    },
    /// Progress at the goal is committed: nothing left to do here.
    Done,
    /// Another worker took the partition's slot over; ignored until the next rebalance.
    Fenced,
}

/// Offsets and state of one partition's copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionProgress {
    /// Next source offset to copy; -1 when nothing was ever copied or committed.
    pub next_source: i64,
    /// `next_source` as of the last committed transaction.
    pub committed_next: i64,
    /// `until_caught_up`: the source end offset this partition must reach.
    pub goal: Option<i64>,
    /// Source end offset when last looked at.
    pub end_offset: i64,
    pub state: PartitionState,
    /// Records and key+value bytes committed for this partition over the whole run (every
    /// worker, every restart): stored with the progress, in the same transaction.
    pub committed_records: u64,
    pub committed_bytes: u64,
}

impl PartitionProgress {
    /// A partition taken over with `next_source` committed (-1 if none).
    pub fn taken(next_source: i64, goal: Option<i64>) -> PartitionProgress {
        PartitionProgress {
            next_source,
            committed_next: next_source,
            goal,
            end_offset: goal.unwrap_or(0),
            state: PartitionState::Idle,
            committed_records: 0,
            committed_bytes: 0,
        }
    }

    /// Taken over with the run's committed counts for the partition.
    pub fn with_counts(mut self, records: u64, bytes: u64) -> PartitionProgress {
        self.committed_records = records;
        self.committed_bytes = bytes;
        self
    }

    /// Records and bytes of the open batch (not committed yet).
    pub fn open_counts(&self) -> (u64, u64) {
        match self.state {
            PartitionState::Open { records, bytes, .. } => (records, bytes),
            _ => (0, 0),
        }
    }

    /// Whether nothing is left to copy before the goal except what was proven absent:
    /// `until_caught_up`, not done, nothing open and still short of the goal.
    pub fn short_of_goal_idle(&self) -> Option<(i64, i64)> {
        match (self.state, self.goal) {
            (PartitionState::Idle, Some(goal)) if self.next_source < goal => {
                Some((self.next_source.max(0), goal))
            }
            _ => None,
        }
    }

    /// The source holds no committed record in `[next_source, goal)` (emptied by
    /// DeleteRecords or retention, compacted or aborted away): everything up to the goal is
    /// accounted for.
    pub fn nothing_before_goal(&mut self) {
        if let (PartitionState::Idle, Some(goal)) = (self.state, self.goal)
            && self.next_source < goal
        {
            self.next_source = goal;
        }
    }

    /// Whether the record at `offset` is to be copied: not fenced, not already copied (the
    /// consumer re-delivers after a rewind), and before the goal.
    pub fn wants(&self, offset: i64) -> bool {
        self.state != PartitionState::Fenced
            && offset >= self.next_source
            && self.goal.is_none_or(|g| offset < g)
    }

    pub fn reached_goal(&self) -> bool {
        self.goal.is_some_and(|g| self.next_source >= g)
    }

    /// Whether the slot's next commit writes this partition's progress: it has records in the
    /// open transaction, offsets accounted for since the last commit (gaps, markers), or it
    /// stands at its goal without being done yet (the commit makes it done).
    pub fn in_commit(&self) -> bool {
        match self.state {
            PartitionState::Open { .. } => true,
            PartitionState::Idle => {
                (self.next_source > self.committed_next && self.next_source >= 0)
                    || self.reached_goal()
            }
            PartitionState::Done | PartitionState::Fenced => false,
        }
    }

    /// Opens the batch (exactly-once: after `begin_transaction` succeeded).
    pub fn open(&mut self, now: Instant) {
        if !matches!(self.state, PartitionState::Open { .. }) {
            self.state = PartitionState::Open {
                since: now,
                bytes: 0,
                records: 0,
            };
        }
    }

    /// Accounts a record handed to the producer; returns the records in the open batch.
    pub fn copied(&mut self, offset: i64, size: u64) -> u64 {
        self.next_source = offset + 1;
        match &mut self.state {
            PartitionState::Open { bytes, records, .. } => {
                *bytes += size;
                *records += 1;
                *records
            }
            _ => 0,
        }
    }

    /// The transaction carrying everything up to `next_source` committed.
    pub fn committed(&mut self) {
        let (records, bytes) = self.open_counts();
        self.committed_records += records;
        self.committed_bytes += bytes;
        // Progress is written as at least 0, so that is where the copy now stands.
        self.next_source = self.next_source.max(0);
        self.committed_next = self.next_source;
        self.state = if self.reached_goal() {
            PartitionState::Done
        } else {
            PartitionState::Idle
        };
    }

    /// The open transaction was aborted: copy again from the last commit.
    pub fn aborted(&mut self) {
        self.next_source = self.committed_next;
        self.state = PartitionState::Idle;
    }

    pub fn fenced(&mut self) {
        self.state = PartitionState::Fenced;
    }

    /// Accounts source offsets the consumer passed without delivering them.
    ///
    /// Transaction markers, aborted records (the source is read `read_committed`) and
    /// compacted-away offsets are never delivered, so `next_source` alone would stop short of
    /// them. Called only when the consumer is idle (its queue is empty), so every record before
    /// its `position` was delivered and copied.
    /// - `until_caught_up`: once the position reaches the goal, everything before the goal is
    ///   copied; a partition whose goal is 0 has nothing to copy at all.
    /// - `continuous`: the same without a goal, once something was copied or committed, so
    ///   lag reaches 0 after trailing markers.
    pub fn skip_undelivered(&mut self, position: Option<i64>) {
        match self.goal {
            Some(goal) => {
                if position.is_some_and(|p| p >= goal) && self.next_source < goal {
                    self.next_source = goal;
                }
                if self.next_source < 0 && goal == 0 {
                    self.next_source = 0;
                }
            }
            None => {
                if let Some(p) = position
                    && self.next_source >= 0
                    && p > self.next_source
                {
                    self.next_source = p;
                }
            }
        }
    }

    /// Lag behind the source end offset.
    pub fn lag(&self) -> i64 {
        (self.end_offset - self.next_source.max(0)).max(0)
    }

    /// Lag as reported: a finished partition is measured against its goal, since records
    /// written after the goal are not part of the run.
    pub fn reported_lag(&self) -> i64 {
        match (self.state, self.goal) {
            (PartitionState::Done, Some(g)) => (g - self.next_source.max(0)).max(0),
            _ => self.lag(),
        }
    }
}

/// One source partition of a slot this worker owns: its names and where its copy stands
/// (the slot holds the producer).
pub(crate) struct PartitionCopy {
    pub source_topic: String,
    pub target_topic: String,
    pub partition: i32,
    pub progress: PartitionProgress,
}

impl PartitionCopy {
    pub fn status(&self) -> PartitionStatus {
        PartitionStatus {
            source_topic: self.source_topic.clone(),
            target_topic: self.target_topic.clone(),
            partition: self.partition,
            copied_up_to: self.progress.next_source.max(0),
            end_offset: self.progress.end_offset,
            lag: self.progress.reported_lag(),
            goal: self.progress.goal,
            records_copied: self.progress.committed_records,
            bytes_copied: self.progress.committed_bytes,
        }
    }
}

/// The worker's state from its partitions' (flattening for the status record): caught up
/// when it owns partitions and all are done; in sync when continuous, holding the slots the
/// group gave it, and its total lag is within `in_sync_lag`; copying otherwise.
pub(crate) fn worker_state<'a>(
    mode: Mode,
    in_sync_lag: i64,
    slots_assigned: bool,
    partitions: impl IntoIterator<Item = &'a PartitionProgress>,
) -> WorkerState {
    let (mut owned, mut done, mut lag) = (0usize, 0usize, 0i64);
    for p in partitions {
        owned += 1;
        done += usize::from(p.state == PartitionState::Done);
        lag += p.reported_lag();
    }
    match mode {
        Mode::UntilCaughtUp if owned > 0 && done == owned => WorkerState::CaughtUp,
        // A worker waiting for its slots (at its start, or after giving them up in a
        // rebalance or a broker restart) has no lag because it holds nothing: not in sync.
        Mode::Continuous if slots_assigned && lag <= in_sync_lag => WorkerState::InSync,
        _ => WorkerState::Copying,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_at(next: i64, goal: Option<i64>) -> PartitionProgress {
        let mut p = PartitionProgress::taken(next, goal);
        p.open(Instant::now());
        p
    }

    #[test]
    fn offsets_already_copied_or_past_the_goal_are_not_copied() {
        let p = PartitionProgress::taken(10, Some(20));
        assert!(!p.wants(9), "re-delivered after a rewind");
        assert!(p.wants(10) && p.wants(19));
        assert!(!p.wants(20), "at the goal");
        let fresh = PartitionProgress::taken(-1, None);
        assert!(fresh.wants(0) && fresh.wants(1_000_000));
        let mut fenced = fresh.clone();
        fenced.fenced();
        assert!(!fenced.wants(5));
    }

    #[test]
    fn commit_and_abort_move_the_offsets() {
        let mut p = open_at(10, Some(13));
        assert_eq!(p.copied(10, 100), 1);
        assert_eq!(p.copied(11, 100), 2);
        assert!(matches!(p.state, PartitionState::Open { bytes: 200, .. }));
        p.aborted();
        assert_eq!((p.next_source, p.state), (10, PartitionState::Idle));
        p.open(Instant::now());
        p.copied(10, 1);
        p.committed();
        assert_eq!((p.committed_next, p.state), (11, PartitionState::Idle));
        p.open(Instant::now());
        p.copied(11, 1);
        p.copied(12, 1);
        p.committed();
        assert_eq!(p.state, PartitionState::Done, "the goal is reached");
    }

    #[test]
    fn counts_are_committed_records_only() {
        let mut p = open_at(0, None).with_counts(5, 50);
        p.copied(0, 10);
        p.copied(1, 10);
        p.aborted();
        assert_eq!(
            (p.committed_records, p.committed_bytes),
            (5, 50),
            "aborted: not counted"
        );
        p.open(Instant::now());
        p.copied(0, 10);
        assert_eq!(p.open_counts(), (1, 10));
        p.committed();
        assert_eq!((p.committed_records, p.committed_bytes), (6, 60));
        assert_eq!(p.open_counts(), (0, 0));
    }

    #[test]
    fn a_partition_proven_empty_up_to_its_goal_reaches_it() {
        // Emptied by DeleteRecords: log start = end = 500, nothing ever delivered.
        let mut p = PartitionProgress::taken(-1, Some(500));
        assert_eq!(p.short_of_goal_idle(), Some((0, 500)));
        p.nothing_before_goal();
        assert!(p.reached_goal());
        assert_eq!(p.short_of_goal_idle(), None);
        // Never while a transaction is open, never without a goal.
        let mut open = open_at(3, Some(10));
        assert_eq!(open.short_of_goal_idle(), None);
        open.nothing_before_goal();
        assert_eq!(open.next_source, 3);
        let mut cont = PartitionProgress::taken(3, None);
        cont.nothing_before_goal();
        assert_eq!(cont.next_source, 3);
    }

    #[test]
    fn trailing_transaction_markers_count_as_copied_once_the_position_passes_the_goal() {
        // Records 0..8 copied; 8 and 9 are a commit marker and an aborted record; goal 10.
        let mut p = PartitionProgress::taken(8, Some(10));
        p.skip_undelivered(Some(9));
        assert_eq!(
            p.next_source, 8,
            "not past the goal yet: a record may still come"
        );
        p.skip_undelivered(None);
        assert_eq!(p.next_source, 8, "no position known");
        p.skip_undelivered(Some(10));
        assert_eq!(p.next_source, 10);
        assert!(p.reached_goal());
        p.skip_undelivered(Some(15));
        assert_eq!(p.next_source, 10, "never past the goal");
    }

    #[test]
    fn an_empty_partition_with_goal_zero_is_copied_without_a_position() {
        let mut p = PartitionProgress::taken(-1, Some(0));
        p.skip_undelivered(None);
        assert_eq!(p.next_source, 0);
        assert!(p.reached_goal());
    }

    #[test]
    fn continuous_skips_markers_only_after_something_was_copied() {
        let mut p = PartitionProgress::taken(-1, None);
        p.skip_undelivered(Some(5));
        assert_eq!(
            p.next_source, -1,
            "the position alone proves nothing was skipped"
        );
        p.next_source = 3;
        p.skip_undelivered(Some(5));
        assert_eq!(p.next_source, 5);
        p.skip_undelivered(Some(4));
        assert_eq!(p.next_source, 5, "never backwards");
    }

    #[test]
    fn lag_of_a_done_partition_is_measured_against_its_goal() {
        let mut p = PartitionProgress::taken(10, Some(10));
        p.end_offset = 25;
        assert_eq!(p.reported_lag(), 15, "not done yet: lag to the end");
        p.state = PartitionState::Done;
        assert_eq!(p.reported_lag(), 0);
        assert_eq!(p.lag(), 15);
        let fresh = PartitionProgress::taken(-1, None);
        assert_eq!(fresh.lag(), 0);
    }

    #[test]
    fn worker_state_flattens_partition_states() {
        let mut done = PartitionProgress::taken(5, Some(5));
        done.state = PartitionState::Done;
        let mut copying = PartitionProgress::taken(2, Some(5));
        copying.end_offset = 5;
        let until = Mode::UntilCaughtUp;
        assert_eq!(worker_state(until, 0, true, []), WorkerState::Copying);
        assert_eq!(worker_state(until, 0, true, [&done]), WorkerState::CaughtUp);
        assert_eq!(
            worker_state(until, 0, true, [&done, &copying]),
            WorkerState::Copying
        );
        let mut fenced = done.clone();
        fenced.state = PartitionState::Fenced;
        assert_eq!(
            worker_state(until, 0, true, [&done, &fenced]),
            WorkerState::Copying,
            "a fenced partition is not done here"
        );
        let cont = Mode::Continuous;
        assert_eq!(worker_state(cont, 3, true, [&copying]), WorkerState::InSync);
        assert_eq!(
            worker_state(cont, 2, true, [&copying]),
            WorkerState::Copying
        );
        assert_eq!(
            worker_state(cont, 0, true, []),
            WorkerState::InSync,
            "the group gave this worker no slot: the others hold them all"
        );
        assert_eq!(
            worker_state(cont, 3, false, [&copying]),
            WorkerState::Copying,
            "slots given up, not assigned again yet"
        );
        assert_eq!(worker_state(cont, 0, false, []), WorkerState::Copying);
    }

    #[test]
    fn a_slot_commit_carries_only_partitions_whose_progress_moved() {
        let untouched = PartitionProgress::taken(-1, None);
        assert!(!untouched.in_commit(), "nothing copied, nothing to write");
        let resumed = PartitionProgress::taken(7, Some(20));
        assert!(!resumed.in_commit());
        assert!(open_at(7, Some(20)).in_commit());
        let mut skipped = PartitionProgress::taken(7, None);
        skipped.skip_undelivered(Some(9));
        assert!(skipped.in_commit(), "markers passed since the last commit");
        let at_goal = PartitionProgress::taken(20, Some(20));
        assert!(at_goal.in_commit(), "committing makes it done");
        let mut empty = PartitionProgress::taken(-1, Some(0));
        empty.skip_undelivered(None);
        assert!(empty.in_commit());
        let mut done = at_goal.clone();
        done.committed();
        assert_eq!(done.state, PartitionState::Done);
        assert!(!done.in_commit());
        let mut fenced = open_at(1, None);
        fenced.fenced();
        assert!(!fenced.in_commit());
    }
}
