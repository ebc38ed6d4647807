//! The exact source→target offset mapping. Every copied record's pair of offsets is kept,
//! collapsed into runs of consecutive offsets, so a consumer group's committed source offset
//! translates exactly even across gaps (compaction, aborted transactions, transaction markers).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Source offsets `source..source+len` were copied to target offsets `target..target+len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetRun {
    pub source: i64,
    pub target: i64,
    pub len: i64,
}

/// One record of the mapping topic: the runs one transaction produced for one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingRecord {
    pub source_topic: String,
    pub target_topic: String,
    pub partition: i32,
    pub runs: Vec<OffsetRun>,
}

impl MappingRecord {
    /// Unique per partition and first source offset, so re-writing the same runs is idempotent
    /// under compaction.
    pub fn key(&self) -> String {
        let first = self.runs.first().map_or(-1, |r| r.source);
        format!("{}/{}/{}", self.target_topic, self.partition, first)
    }
}

/// Collapses `(source, target)` pairs, in copy order, into runs.
pub fn runs_from_pairs(pairs: &[(i64, i64)]) -> Vec<OffsetRun> {
    let mut runs: Vec<OffsetRun> = Vec::new();
    for &(source, target) in pairs {
        match runs.last_mut() {
            Some(r) if r.source + r.len == source && r.target + r.len == target => r.len += 1,
            _ => runs.push(OffsetRun {
                source,
                target,
                len: 1,
            }),
        }
    }
    runs
}

/// All runs of one partition, ordered by source offset.
#[derive(Debug, Clone, Default)]
pub struct PartitionMapping {
    runs: BTreeMap<i64, OffsetRun>,
}

impl PartitionMapping {
    pub fn insert(&mut self, run: OffsetRun) {
        self.runs.insert(run.source, run);
    }

    /// The target offset of the copied record at `source`, if that offset was copied.
    pub fn target_of(&self, source: i64) -> Option<i64> {
        let (_, run) = self.runs.range(..=source).next_back()?;
        (source < run.source + run.len).then(|| run.target + (source - run.source))
    }

    /// Where a consumer resumes on the target, given it would resume at `committed` on the
    /// source: the target offset of the first copied record at or after `committed`, or just
    /// past the last copied record. Only exact when the copy has reached `committed`.
    pub fn translate(&self, committed: i64) -> Option<i64> {
        if let Some(target) = self.target_of(committed) {
            return Some(target);
        }
        if let Some((_, next)) = self.runs.range(committed..).next() {
            return Some(next.target);
        }
        let (_, last) = self.runs.iter().next_back()?;
        Some(last.target + last.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_pairs_collapse_and_gaps_split() {
        // Source 10..13 dense; target has a commit marker after 102; source gap 13→20.
        let pairs = [(10, 100), (11, 101), (12, 102), (20, 104), (21, 105)];
        assert_eq!(
            runs_from_pairs(&pairs),
            vec![
                OffsetRun {
                    source: 10,
                    target: 100,
                    len: 3
                },
                OffsetRun {
                    source: 20,
                    target: 104,
                    len: 2
                }
            ]
        );
    }

    fn mapping() -> PartitionMapping {
        let mut m = PartitionMapping::default();
        for r in runs_from_pairs(&[(10, 100), (11, 101), (12, 102), (20, 104), (21, 105)]) {
            m.insert(r);
        }
        m
    }

    #[test]
    fn translation_is_exact_inside_runs_and_across_gaps() {
        let m = mapping();
        assert_eq!(m.translate(0), Some(100), "before the first copied record");
        assert_eq!(m.translate(11), Some(101));
        assert_eq!(
            m.translate(13),
            Some(104),
            "compacted-away offsets go to the next record"
        );
        assert_eq!(m.translate(19), Some(104));
        assert_eq!(m.translate(21), Some(105));
        assert_eq!(
            m.translate(22),
            Some(106),
            "past the end: just after the last record"
        );
        assert_eq!(m.target_of(15), None);
        assert_eq!(m.target_of(20), Some(104));
        assert_eq!(PartitionMapping::default().translate(5), None);
    }

    #[test]
    fn record_key_is_stable() {
        let r = MappingRecord {
            source_topic: "a".into(),
            target_topic: "x.a".into(),
            partition: 3,
            runs: vec![OffsetRun {
                source: 7,
                target: 9,
                len: 1,
            }],
        };
        assert_eq!(r.key(), "x.a/3/7");
    }
}
