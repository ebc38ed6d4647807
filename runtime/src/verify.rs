//! `ferry-mirror verify`: proves each translated group resumes on the target at the same record
//! it would read next on the source, and that the translation skips nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::clients::reader_config;
use crate::end_offsets::end_offsets;
use crate::groups::{committed, load_mappings, selected_groups};
use crate::partition_list::append;
use crate::progress::PartitionKey;
use crate::topics::TopicPair;
use ferry_kafka::ConnectionConfig;
use ferry_mirror_api::Fnv1a;
use ferry_mirror_api::spec::Spec;
use ferry_mirror_api::verify::{VerifyOutcome, VerifyRow};

/// FNV-1a over everything that makes a record the same record. Optional parts are tagged and
/// length-prefixed so that no two different records feed the same bytes.
pub(crate) fn record_hash(m: &BorrowedMessage<'_>) -> u64 {
    let mut h = Fnv1a::new();
    let mut opt = |v: Option<&[u8]>| match v {
        None => h.write(&[0]),
        Some(b) => {
            h.write(&[1]);
            h.write(&(b.len() as u64).to_le_bytes());
            h.write(b);
        }
    };
    opt(m.key());
    opt(m.payload());
    if let Some(headers) = m.headers() {
        for hd in headers.iter() {
            opt(Some(hd.key.as_bytes()));
            opt(hd.value);
        }
    }
    h.write(&m.timestamp().to_millis().unwrap_or(-1).to_le_bytes());
    h.finish()
}

/// A lookup: the first committed record of `topic[partition]` at or after an offset.
type Lookup = (String, i32, i64);
/// What a lookup found: (the record's offset, its hash), or None at the end of the partition.
type Found = Option<(i64, u64)>;

/// Partitions read at once by one consumer. With split partition queues librdkafka's prefetch
/// limits apply per partition, so this (times [`PREFETCH_KBYTES`]) bounds the reader's memory.
const PARTITIONS_PER_ROUND: usize = 500;
const PREFETCH_KBYTES: u32 = 512;
/// A later lookup on the partition this close after a record found is reached by reading on;
/// a farther one waits for the next round, which assigns the partition at that offset.
const STREAM_GAP: i64 = 500;
/// A round whose remaining partitions answer nothing for this long ends; they are read again
/// in a later round (an end-of-partition event can reach the consumer's main queue, where it
/// does not say which topic it belongs to, before the partition's own queue is split off).
const ROUND_STALL: Duration = Duration::from_secs(5);
/// Rounds a partition may go without an answer before verification fails.
const MAX_SILENT_ROUNDS: u32 = 3;

/// One partition's lookups, sorted ascending and resolved in order.
struct Cursor {
    topic: String,
    partition: i32,
    pending: Vec<i64>,
    silent_rounds: u32,
}

impl Cursor {
    /// A record at `offset` answers every pending lookup at or below it.
    fn record(&mut self, offset: i64, hash: u64, out: &mut HashMap<Lookup, Found>) {
        let answered = self.pending.partition_point(|&o| o <= offset);
        for o in self.pending.drain(..answered) {
            out.insert(
                (self.topic.clone(), self.partition, o),
                Some((offset, hash)),
            );
        }
    }

    /// The end of the partition answers every pending lookup: nothing from there on.
    fn end(&mut self, out: &mut HashMap<Lookup, Found>) {
        for o in self.pending.drain(..) {
            out.insert((self.topic.clone(), self.partition, o), None);
        }
    }
}

/// What a round did with one partition.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Turn {
    Reading,
    /// Its next lookup is far ahead: a later round starts there.
    Later,
    Answered,
}

/// The reader verification uses on one cluster: manual assignment, read_committed, and small
/// per-partition prefetch, since only the first record at a position is wanted.
fn lookup_reader(conn: &ConnectionConfig, group: &str) -> Result<Arc<BaseConsumer>> {
    let mut config = reader_config(conn, group);
    config
        .set("queued.max.messages.kbytes", PREFETCH_KBYTES.to_string())
        .set("queued.min.messages", "100")
        .set("max.partition.fetch.bytes", "262144")
        .set("fetch.wait.max.ms", "100");
    // Shared by the verify threads for as long as verification takes: its MSK IAM token is
    // kept fresh.
    crate::connect::create_shared(&config)
}

/// Answers many lookups on one cluster with few reads: lookups at or past a partition's end
/// (one batched ListOffsets; the common case of a caught-up group) need no read at all; the
/// rest are read by assigning up to [`PARTITIONS_PER_ROUND`] partitions at once, each at its
/// first lookup, with a queue per partition so that an end-of-partition event names its topic.
pub(crate) fn first_records(
    conn: &ConnectionConfig,
    group: &str,
    lookups: &BTreeSet<Lookup>,
    timeout: Duration,
) -> Result<HashMap<Lookup, Found>> {
    let mut out = HashMap::with_capacity(lookups.len());
    if lookups.is_empty() {
        return Ok(out);
    }
    let reader = lookup_reader(conn, group)?;
    let mut by_partition: BTreeMap<PartitionKey, Vec<i64>> = BTreeMap::new();
    for (topic, partition, offset) in lookups {
        by_partition
            .entry((topic.clone(), *partition))
            .or_default()
            .push(*offset);
    }
    let keys: Vec<PartitionKey> = by_partition.keys().cloned().collect();
    let ends = end_offsets(reader.as_ref(), &keys, timeout)?;
    let mut work: VecDeque<Cursor> = VecDeque::new();
    for ((topic, partition), offsets) in by_partition {
        let end = ends[&(topic.clone(), partition)];
        let mut cursor = Cursor {
            topic,
            partition,
            pending: offsets,
            silent_rounds: 0,
        };
        // A read_committed reader sees nothing at or past the last stable offset.
        let readable = cursor.pending.partition_point(|&o| o < end);
        for o in cursor.pending.split_off(readable) {
            out.insert((cursor.topic.clone(), cursor.partition, o), None);
        }
        if !cursor.pending.is_empty() {
            work.push_back(cursor);
        }
    }
    while !work.is_empty() {
        let take = work.len().min(PARTITIONS_PER_ROUND);
        let round: Vec<Cursor> = work.drain(..take).collect();
        for mut cursor in read_round(&reader, round, timeout, &mut out)? {
            if cursor.silent_rounds >= MAX_SILENT_ROUNDS {
                anyhow::bail!(
                    "no answer reading {}[{}] at {} ({} rounds of up to {:?})",
                    cursor.topic,
                    cursor.partition,
                    cursor.pending[0],
                    cursor.silent_rounds,
                    ROUND_STALL.min(timeout)
                );
            }
            cursor.pending.shrink_to_fit();
            work.push_back(cursor);
        }
    }
    Ok(out)
}

/// Reads one round: every cursor's partition assigned at its first pending lookup. Returns the
/// cursors with lookups left (a far lookup, or no answer this round).
fn read_round(
    reader: &Arc<BaseConsumer>,
    mut cursors: Vec<Cursor>,
    timeout: Duration,
    out: &mut HashMap<Lookup, Found>,
) -> Result<Vec<Cursor>> {
    let mut tpl = TopicPartitionList::new();
    for c in &cursors {
        append(
            &mut tpl,
            &c.topic,
            c.partition,
            Offset::Offset(c.pending[0]),
        )?;
    }
    reader.assign(&tpl)?;
    // Split after assigning: assigning routes every partition to the main queue again.
    let queues = cursors
        .iter()
        .map(|c| {
            reader
                .split_partition_queue(&c.topic, c.partition)
                .with_context(|| format!("no queue for {}[{}]", c.topic, c.partition))
        })
        .collect::<Result<Vec<_>>>()?;
    let index: HashMap<PartitionKey, usize> = cursors
        .iter()
        .enumerate()
        .map(|(i, c)| ((c.topic.clone(), c.partition), i))
        .collect();
    let mut turns = vec![Turn::Reading; cursors.len()];
    let mut reading = cursors.len();
    let stall = ROUND_STALL.min(timeout);
    let mut last_answer = Instant::now();
    let step = |cursor: &mut Cursor,
                turn: &mut Turn,
                polled: KafkaResult<BorrowedMessage<'_>>,
                out: &mut HashMap<Lookup, Found>|
     -> Result<bool> {
        match polled {
            // Records before the first lookup are left over from an earlier assignment.
            Ok(m) if m.offset() < cursor.pending[0] => return Ok(false),
            Ok(m) => {
                cursor.record(m.offset(), record_hash(&m), out);
                *turn = match cursor.pending.first() {
                    None => Turn::Answered,
                    Some(&next) if next - m.offset() > STREAM_GAP => Turn::Later,
                    Some(_) => Turn::Reading,
                };
            }
            Err(KafkaError::PartitionEOF(_)) => {
                cursor.end(out);
                *turn = Turn::Answered;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "reading {}[{}] at {}",
                        cursor.topic, cursor.partition, cursor.pending[0]
                    )
                });
            }
        }
        Ok(true)
    };
    while reading > 0 {
        let mut answered = false;
        for (i, queue) in queues.iter().enumerate() {
            while turns[i] == Turn::Reading {
                let Some(polled) = queue.poll(Duration::ZERO) else {
                    break;
                };
                answered |= step(&mut cursors[i], &mut turns[i], polled, out)?;
                if turns[i] != Turn::Reading {
                    reading -= 1;
                }
            }
        }
        // The main queue serves the client's events, and records fetched before the split.
        match reader.poll(Duration::from_millis(10)) {
            Some(Ok(m)) => {
                if let Some(&i) = index.get(&(m.topic().to_string(), m.partition()))
                    && turns[i] == Turn::Reading
                {
                    answered |= step(&mut cursors[i], &mut turns[i], Ok(m), out)?;
                    if turns[i] != Turn::Reading {
                        reading -= 1;
                    }
                }
            }
            // Names no topic: the partition is read again in a later round.
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => tracing::debug!(error = %e, "verify reader"),
        }
        if answered {
            last_answer = Instant::now();
        } else if last_answer.elapsed() > stall {
            break;
        }
    }
    drop(queues);
    reader.unassign()?;
    let mut left = Vec::new();
    for (cursor, turn) in cursors.into_iter().zip(turns) {
        match turn {
            Turn::Answered => {}
            Turn::Later => left.push(Cursor {
                silent_rounds: 0,
                ..cursor
            }),
            Turn::Reading => left.push(Cursor {
                silent_rounds: cursor.silent_rounds + 1,
                ..cursor
            }),
        }
    }
    Ok(left)
}

/// Committed offsets of many groups, a few groups at a time.
fn committed_of_groups(
    conn: &ConnectionConfig,
    groups: &[String],
    keys: &[PartitionKey],
    timeout: Duration,
) -> Result<Vec<HashMap<PartitionKey, i64>>> {
    const AT_ONCE: usize = 8;
    let mut out = Vec::with_capacity(groups.len());
    for chunk in groups.chunks(AT_ONCE) {
        let fetched: Vec<Result<HashMap<PartitionKey, i64>>> = std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|g| s.spawn(move || committed(conn, g, keys, timeout)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("reading offsets panicked")))
                })
                .collect()
        });
        for f in fetched {
            out.push(f?);
        }
    }
    Ok(out)
}

pub(crate) fn verify(
    spec: &Spec,
    source: &ConnectionConfig,
    target: &ConnectionConfig,
    pairs: &[TopicPair],
    timeout: Duration,
) -> Result<Vec<VerifyRow>> {
    let groups = selected_groups(spec, source, timeout)?;
    let mappings = load_mappings(spec, target, timeout)?;
    let source_keys: Vec<PartitionKey> = pairs
        .iter()
        .flat_map(|p| (0..p.partitions).map(move |i| (p.source.clone(), i)))
        .collect();
    let target_keys: Vec<PartitionKey> = pairs
        .iter()
        .flat_map(|p| (0..p.partitions).map(move |i| (p.target.clone(), i)))
        .collect();
    let on_source = committed_of_groups(source, &groups, &source_keys, timeout)?;
    let on_target = committed_of_groups(target, &groups, &target_keys, timeout)?;

    // Every row first, then all reads at once per cluster.
    let mut rows = Vec::new();
    let (mut source_lookups, mut target_lookups) = (BTreeSet::new(), BTreeSet::new());
    for ((group, on_source), on_target) in groups.iter().zip(&on_source).zip(&on_target) {
        let mut keys: Vec<&PartitionKey> = on_source.keys().collect();
        keys.sort();
        for key in keys {
            let (source_topic, partition) = key;
            let source_offset = on_source[key];
            let target_topic = spec.target_topic(source_topic);
            let target_offset = on_target.get(&(target_topic.clone(), *partition)).copied();
            if let Some(t) = target_offset {
                source_lookups.insert((source_topic.clone(), *partition, source_offset));
                target_lookups.insert((target_topic, *partition, t));
            }
            rows.push(VerifyRow {
                group: group.clone(),
                source_topic: source_topic.clone(),
                partition: *partition,
                source_offset,
                target_offset,
                outcome: VerifyOutcome::NoTargetOffset,
            });
        }
    }
    let reader_group = format!("{}.verify", spec.worker_group());
    let (on_source, on_target) = std::thread::scope(|s| {
        let src = s.spawn(|| first_records(source, &reader_group, &source_lookups, timeout));
        let dst = first_records(target, &reader_group, &target_lookups, timeout);
        let src = src
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("reading the source panicked")));
        (src, dst)
    });
    let (on_source, on_target) = (
        on_source.context("reading the source")?,
        on_target.context("reading the target")?,
    );
    for row in &mut rows {
        let Some(t) = row.target_offset else { continue };
        let target_topic = spec.target_topic(&row.source_topic);
        let src = on_source[&(row.source_topic.clone(), row.partition, row.source_offset)];
        let dst = on_target[&(target_topic.clone(), row.partition, t)];
        let mapped = mappings.get(&(target_topic, row.partition));
        row.outcome = compare(src, dst, t, |s| mapped.and_then(|m| m.target_of(s)));
    }
    Ok(rows)
}

/// What the records at the group's source and target positions say, given where the offset
/// map put the source record.
fn compare(
    source: Option<(i64, u64)>,
    target: Option<(i64, u64)>,
    target_offset: i64,
    mapped: impl Fn(i64) -> Option<i64>,
) -> VerifyOutcome {
    match (source, target) {
        (None, None) => VerifyOutcome::Ok,
        (Some((s, _)), None) => VerifyOutcome::TargetMissing {
            source_record: s,
            target_offset,
        },
        (None, Some((d, _))) => VerifyOutcome::TargetExtra {
            target_record: d,
            target_offset,
        },
        (Some((s, hs)), Some((d, hd))) => match mapped(s) {
            _ if hs != hd => VerifyOutcome::RecordDiffers {
                source_record: s,
                target_record: d,
            },
            Some(e) if e != d => VerifyOutcome::WrongPosition {
                source_record: s,
                mapped_target: e,
                target_record: d,
            },
            _ => VerifyOutcome::Ok,
        },
    }
}

pub(crate) fn render(rows: &[VerifyRow]) -> String {
    let mut out = format!(
        "{:<24} {:<24} {:>5} {:>12} {:>12}  result\n",
        "group", "topic", "part", "source", "target"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<24} {:<24} {:>5} {:>12} {:>12}  {}\n",
            r.group,
            r.source_topic,
            r.partition,
            r.source_offset,
            r.target_offset.map_or("-".to_string(), |t| t.to_string()),
            r.outcome
        ));
    }
    let bad = rows.iter().filter(|r| !r.ok()).count();
    out.push_str(&format!(
        "{} partition(s) checked, {} mismatch(es)\n",
        rows.len(),
        bad
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_answers_every_lookup_up_to_it_and_the_end_answers_the_rest() {
        let mut out = HashMap::new();
        let mut c = Cursor {
            topic: "t".into(),
            partition: 2,
            pending: vec![3, 5, 9, 40],
            silent_rounds: 0,
        };
        // Offsets 3..5 were compacted away or markers: the record at 7 is the first at or after both.
        c.record(7, 77, &mut out);
        assert_eq!(c.pending, vec![9, 40]);
        assert_eq!(out[&("t".to_string(), 2, 3)], Some((7, 77)));
        assert_eq!(out[&("t".to_string(), 2, 5)], Some((7, 77)));
        c.record(9, 99, &mut out);
        assert_eq!(out[&("t".to_string(), 2, 9)], Some((9, 99)));
        c.end(&mut out);
        assert!(c.pending.is_empty());
        assert_eq!(out[&("t".to_string(), 2, 40)], None);
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn comparison_names_what_is_wrong() {
        let map = |s: i64| Some(s + 10);
        assert_eq!(compare(None, None, 5, map), VerifyOutcome::Ok);
        assert_eq!(
            compare(Some((3, 7)), Some((13, 7)), 13, map),
            VerifyOutcome::Ok
        );
        assert_eq!(
            compare(Some((3, 7)), Some((14, 7)), 14, map),
            VerifyOutcome::WrongPosition {
                source_record: 3,
                mapped_target: 13,
                target_record: 14
            }
        );
        assert_eq!(
            compare(Some((3, 7)), Some((13, 8)), 13, map),
            VerifyOutcome::RecordDiffers {
                source_record: 3,
                target_record: 13
            }
        );
        assert_eq!(
            compare(Some((3, 7)), None, 13, map),
            VerifyOutcome::TargetMissing {
                source_record: 3,
                target_offset: 13
            }
        );
        assert_eq!(
            compare(None, Some((13, 7)), 12, map),
            VerifyOutcome::TargetExtra {
                target_record: 13,
                target_offset: 12
            }
        );
        assert_eq!(
            compare(Some((3, 7)), Some((20, 7)), 20, |_| None),
            VerifyOutcome::Ok,
            "without a mapping only the contents can be compared"
        );
    }
}
