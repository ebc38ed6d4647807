//! Partitions with nothing (left) to copy before their goal: emptied by DeleteRecords or
//! retention (log start = end), compacted or aborted away, or trailing empty batches. The
//! consumer never delivers anything for them, so its position says nothing; the source is
//! asked instead.
//!
//! Two checks, cheapest first: one batched ListOffsets for the log start offsets (a partition
//! whose log starts at or past its goal has nothing readable before it), then a read of the
//! remaining candidates with a separate `read_committed` consumer: no committed record in
//! `[from, goal)` when the first record it delivers is at or past the goal, or it reaches the
//! end of the partition first. librdkafka names only the partition number of an end-of-partition
//! event, so each read round holds at most one partition per number.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Result;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::end_offsets::list_offsets;
use crate::partition_list::append;
use crate::progress::PartitionKey;

/// A partition short of its goal with nothing delivered: copy from `from`, goal `goal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub key: PartitionKey,
    pub from: i64,
    pub goal: i64,
}

/// The candidates proven to hold no committed record in `[from, goal)`, within about `budget`.
/// Candidates not decided in time are left for the next call.
pub(crate) fn proven_empty(
    reader: &BaseConsumer,
    candidates: &[Candidate],
    budget: Duration,
) -> Result<Vec<PartitionKey>> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let deadline = Instant::now() + budget;
    let starts = log_starts(reader, candidates, budget)?;
    let mut empty = Vec::new();
    let mut to_read = Vec::new();
    for c in candidates {
        match starts.get(&c.key) {
            Some(start) if *start >= c.goal => empty.push(c.key.clone()),
            Some(start) => to_read.push(Candidate {
                from: c.from.max(*start),
                ..c.clone()
            }),
            None => to_read.push(c.clone()),
        }
    }
    for round in rounds(to_read) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        empty.extend(read_round(reader, &round, deadline - now)?);
    }
    Ok(empty)
}

/// Log start offsets (ListOffsets "earliest"), batched; partitions whose offset could not be
/// read are left out (they are not proven empty).
fn log_starts(
    reader: &BaseConsumer,
    candidates: &[Candidate],
    timeout: Duration,
) -> Result<HashMap<PartitionKey, i64>> {
    let keys: Vec<PartitionKey> = candidates.iter().map(|c| c.key.clone()).collect();
    let (found, _unreadable) = list_offsets(reader, &keys, Offset::Beginning, timeout)?;
    Ok(found)
}

/// Splits the candidates so that no round holds two partitions with the same number.
fn rounds(candidates: Vec<Candidate>) -> Vec<Vec<Candidate>> {
    let mut rounds: Vec<(HashSet<i32>, Vec<Candidate>)> = Vec::new();
    for c in candidates {
        match rounds
            .iter_mut()
            .find(|(numbers, _)| !numbers.contains(&c.key.1))
        {
            Some((numbers, round)) => {
                numbers.insert(c.key.1);
                round.push(c);
            }
            None => rounds.push((HashSet::from([c.key.1]), vec![c])),
        }
    }
    rounds.into_iter().map(|(_, r)| r).collect()
}

/// Reads one round; returns the partitions proven empty before their goal.
fn read_round(
    reader: &BaseConsumer,
    round: &[Candidate],
    budget: Duration,
) -> Result<Vec<PartitionKey>> {
    let mut tpl = TopicPartitionList::new();
    for c in round {
        append(&mut tpl, &c.key.0, c.key.1, Offset::Offset(c.from))?;
    }
    reader.assign(&tpl)?;
    let mut open: HashMap<i32, &Candidate> = round.iter().map(|c| (c.key.1, c)).collect();
    let mut empty = Vec::new();
    let deadline = Instant::now() + budget;
    while !open.is_empty() && Instant::now() < deadline {
        match reader.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                if let Some(c) = open.get(&m.partition())
                    && c.key.0 == m.topic()
                {
                    if m.offset() >= c.goal {
                        empty.push(c.key.clone());
                    }
                    open.remove(&m.partition());
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                if let Some(c) = open.remove(&p) {
                    empty.push(c.key.clone());
                }
            }
            Some(Err(e)) => tracing::debug!(error = %e, "reading partitions short of their goal"),
            None => {}
        }
    }
    reader.unassign()?;
    Ok(empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(topic: &str, p: i32) -> Candidate {
        Candidate {
            key: (topic.into(), p),
            from: 0,
            goal: 1,
        }
    }

    #[test]
    fn a_round_never_holds_one_partition_number_twice() {
        let r = rounds(vec![c("a", 0), c("a", 1), c("b", 0), c("b", 1), c("c", 0)]);
        assert_eq!(r.len(), 3);
        for round in &r {
            let numbers: HashSet<i32> = round.iter().map(|c| c.key.1).collect();
            assert_eq!(numbers.len(), round.len());
        }
        assert_eq!(r.iter().map(Vec::len).sum::<usize>(), 5);
    }
}
