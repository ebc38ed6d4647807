//! Source end offsets of many partitions at once: one ListOffsets round per leader broker
//! (`offsets_for_times` with the "latest" timestamp) instead of one watermark query per
//! partition, which is what thousands of partitions need.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

use crate::progress::PartitionKey;

/// End offsets of `partitions`, within `timeout`. The consumer's isolation level applies:
/// a `read_committed` reader gets the last stable offset, as the copy sees the source.
pub(crate) fn end_offsets<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    partitions: &[PartitionKey],
    timeout: Duration,
) -> Result<HashMap<PartitionKey, i64>> {
    if partitions.is_empty() {
        return Ok(HashMap::new());
    }
    let mut request = TopicPartitionList::new();
    for (topic, partition) in partitions {
        // Offset::End is the ListOffsets timestamp -1: the latest offset.
        request.add_partition_offset(topic, *partition, Offset::End)?;
    }
    let answer = consumer
        .offsets_for_times(request, timeout)
        .context("listing end offsets")?;
    let mut out = HashMap::with_capacity(partitions.len());
    for e in answer.elements() {
        if let Err(err) = e.error() {
            bail!("end offset of {}[{}]: {err}", e.topic(), e.partition());
        }
        match e.offset() {
            Offset::Offset(n) => {
                out.insert((e.topic().to_string(), e.partition()), n);
            }
            other => bail!(
                "end offset of {}[{}]: the broker answered {other:?}",
                e.topic(),
                e.partition()
            ),
        }
    }
    for (topic, partition) in partitions {
        if !out.contains_key(&(topic.clone(), *partition)) {
            bail!("no end offset for {topic}[{partition}]");
        }
    }
    Ok(out)
}
