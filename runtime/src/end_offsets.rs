//! End (and start) offsets of many partitions at once: one ListOffsets round per leader broker
//! (`offsets_for_times` with the "latest" or "earliest" timestamp) instead of one watermark
//! query per partition, which is what thousands of partitions need.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

use crate::partition_list::append;
use crate::progress::PartitionKey;

/// End offsets of `partitions`, within `timeout`; an error if any is missing. The consumer's
/// isolation level applies: a `read_committed` reader gets the last stable offset, as the copy
/// sees the source.
pub(crate) fn end_offsets<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    partitions: &[PartitionKey],
    timeout: Duration,
) -> Result<HashMap<PartitionKey, i64>> {
    let (found, errors) = some_end_offsets(consumer, partitions, timeout)?;
    if let Some(first) = errors.first() {
        bail!("{first} (and {} more)", errors.len() - 1);
    }
    Ok(found)
}

/// Log start offsets of `partitions` (the first offset still held), within `timeout`.
pub(crate) fn start_offsets<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    partitions: &[PartitionKey],
    timeout: Duration,
) -> Result<HashMap<PartitionKey, i64>> {
    let (found, errors) = list_offsets(consumer, partitions, Offset::Beginning, timeout)?;
    if let Some(first) = errors.first() {
        bail!("{first} (and {} more)", errors.len() - 1);
    }
    Ok(found)
}

/// The end offsets that could be read, and what went wrong with the others.
pub(crate) fn some_end_offsets<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    partitions: &[PartitionKey],
    timeout: Duration,
) -> Result<(HashMap<PartitionKey, i64>, Vec<String>)> {
    list_offsets(consumer, partitions, Offset::End, timeout)
}

/// Partitions per `offsets_for_times` call: librdkafka matches each answer to its request entry
/// by a linear search, so one call over N partitions costs N² comparisons; chunks keep it at
/// N × this, for one more round trip per chunk.
const PARTITIONS_PER_CALL: usize = 1_000;

/// ListOffsets for `partitions` (`at` is `Offset::End`, latest, or `Offset::Beginning`,
/// earliest), one round per leader broker and chunk, all within `timeout`: what was read, and
/// what went wrong with the others.
pub(crate) fn list_offsets<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    partitions: &[PartitionKey],
    at: Offset,
    timeout: Duration,
) -> Result<(HashMap<PartitionKey, i64>, Vec<String>)> {
    let deadline = Instant::now() + timeout;
    let mut found = HashMap::with_capacity(partitions.len());
    let mut errors = Vec::new();
    for chunk in partitions.chunks(PARTITIONS_PER_CALL) {
        let left = deadline.saturating_duration_since(Instant::now());
        let (chunk_found, chunk_errors) = list_offsets_once(consumer, chunk, at, left)?;
        found.extend(chunk_found);
        errors.extend(chunk_errors);
    }
    Ok((found, errors))
}

fn list_offsets_once<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    partitions: &[PartitionKey],
    at: Offset,
    timeout: Duration,
) -> Result<(HashMap<PartitionKey, i64>, Vec<String>)> {
    if partitions.is_empty() {
        return Ok((HashMap::new(), Vec::new()));
    }
    let mut request = TopicPartitionList::new();
    for (topic, partition) in partitions {
        // Offset::End is the ListOffsets timestamp -1 (latest), Offset::Beginning -2 (earliest).
        append(&mut request, topic, *partition, at)?;
    }
    let answer = consumer
        .offsets_for_times(request, timeout)
        .context("listing offsets")?;
    let mut found = HashMap::with_capacity(partitions.len());
    let mut errors = Vec::new();
    for e in answer.elements() {
        let key = (e.topic().to_string(), e.partition());
        match (e.error(), e.offset()) {
            (Ok(()), Offset::Offset(n)) => {
                found.insert(key, n);
            }
            (Err(err), _) => errors.push(format!("offset of {}[{}]: {err}", key.0, key.1)),
            (Ok(()), other) => errors.push(format!(
                "offset of {}[{}]: the broker answered {other:?}",
                key.0, key.1
            )),
        }
    }
    let answered = answer.count();
    if answered < partitions.len() {
        errors.push(format!(
            "{} of {} partitions got no answer",
            partitions.len() - answered,
            partitions.len()
        ));
    }
    Ok((found, errors))
}
