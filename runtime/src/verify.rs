//! `ferry-mirror verify`: proves each translated group resumes on the target at the same record
//! it would read next on the source, and that the translation skips nothing.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::clients::reader_config;
use crate::groups::{committed, load_mappings, selected_groups};
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

/// The first committed record at or after `offset`: (its offset, its hash), or None at the end.
pub(crate) fn first_record(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    offset: i64,
    timeout: Duration,
) -> Result<Option<(i64, u64)>> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) if m.topic() == topic && m.partition() == partition => {
                return Ok(Some((m.offset(), record_hash(&m))));
            }
            Some(Ok(_)) => {}
            Some(Err(KafkaError::PartitionEOF(_))) => return Ok(None),
            Some(Err(e)) => {
                return Err(e).with_context(|| format!("reading {topic}[{partition}] at {offset}"));
            }
            None => {}
        }
    }
    anyhow::bail!("no answer reading {topic}[{partition}] at {offset} within {timeout:?}")
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
    let source_reader: BaseConsumer =
        reader_config(source, &format!("{}.verify", spec.worker_group())).create()?;
    let target_reader: BaseConsumer =
        reader_config(target, &format!("{}.verify", spec.worker_group())).create()?;
    let source_keys: Vec<PartitionKey> = pairs
        .iter()
        .flat_map(|p| (0..p.partitions).map(move |i| (p.source.clone(), i)))
        .collect();
    let target_keys: Vec<PartitionKey> = pairs
        .iter()
        .flat_map(|p| (0..p.partitions).map(move |i| (p.target.clone(), i)))
        .collect();

    let mut rows = Vec::new();
    for group in groups {
        let on_source = committed(source, &group, &source_keys, timeout)?;
        let on_target = committed(target, &group, &target_keys, timeout)?;
        let mut keys: Vec<&PartitionKey> = on_source.keys().collect();
        keys.sort();
        for key in keys {
            let (source_topic, partition) = key;
            let source_offset = on_source[key];
            let target_topic = spec.target_topic(source_topic);
            let target_offset = on_target.get(&(target_topic.clone(), *partition)).copied();
            let outcome = match target_offset {
                None => VerifyOutcome::NoTargetOffset,
                Some(t) => {
                    let src = first_record(
                        &source_reader,
                        source_topic,
                        *partition,
                        source_offset,
                        timeout,
                    )?;
                    let dst = first_record(&target_reader, &target_topic, *partition, t, timeout)?;
                    let mapped = mappings.get(&(target_topic.clone(), *partition));
                    compare(src, dst, t, |s| mapped.and_then(|m| m.target_of(s)))
                }
            };
            rows.push(VerifyRow {
                group: group.clone(),
                source_topic: source_topic.clone(),
                partition: *partition,
                source_offset,
                target_offset,
                outcome,
            });
        }
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
