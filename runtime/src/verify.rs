//! `ferry-mirror verify`: proves each translated group resumes on the target at the same record
//! it would read next on the source, and that the translation skips nothing.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::clients::reader_config;
use crate::groups::{committed, load_mappings, selected_groups};
use crate::progress::PartitionKey;
use crate::spec::Spec;
use crate::topics::TopicPair;
use ferry_kafka::ConnectionConfig;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyRow {
    pub group: String,
    pub source_topic: String,
    pub partition: i32,
    pub source_offset: i64,
    pub target_offset: Option<i64>,
    /// ok, or what is wrong
    pub result: String,
}

impl VerifyRow {
    pub fn ok(&self) -> bool {
        self.result == "ok"
    }
}

/// FNV-1a over everything that makes a record the same record.
pub fn record_hash(m: &BorrowedMessage<'_>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    let opt = |v: Option<&[u8]>, feed: &mut dyn FnMut(&[u8])| match v {
        None => feed(&[0]),
        Some(b) => {
            feed(&[1]);
            feed(&(b.len() as u64).to_le_bytes());
            feed(b);
        }
    };
    opt(m.key(), &mut feed);
    opt(m.payload(), &mut feed);
    if let Some(headers) = m.headers() {
        for hd in headers.iter() {
            opt(Some(hd.key.as_bytes()), &mut feed);
            opt(hd.value, &mut feed);
        }
    }
    feed(&m.timestamp().to_millis().unwrap_or(-1).to_le_bytes());
    h
}

/// The first committed record at or after `offset`: (its offset, its hash), or None at the end.
pub fn first_record(
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

pub fn verify(
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
            let result = match target_offset {
                None => "group has no offset on the target".to_string(),
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
                    match (src, dst) {
                        (None, None) => "ok".to_string(),
                        (Some((s, _)), None) => {
                            format!("source has record {s} but the target has nothing from {t}")
                        }
                        (None, Some((d, _))) => {
                            format!("source is at its end but the target has record {d} from {t}")
                        }
                        (Some((s, hs)), Some((d, hd))) => {
                            let expected = mapped.and_then(|m| m.target_of(s));
                            if hs != hd {
                                format!("record differs: source {s} vs target {d}")
                            } else if expected.is_some_and(|e| e != d) {
                                format!(
                                    "source {s} maps to target {}, but the group resumes at {d}",
                                    expected.unwrap_or(-1)
                                )
                            } else {
                                "ok".to_string()
                            }
                        }
                    }
                }
            };
            rows.push(VerifyRow {
                group: group.clone(),
                source_topic: source_topic.clone(),
                partition: *partition,
                source_offset,
                target_offset,
                result,
            });
        }
    }
    Ok(rows)
}

pub fn render(rows: &[VerifyRow]) -> String {
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
            r.result
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
