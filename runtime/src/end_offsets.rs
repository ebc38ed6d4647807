//! End (and start) offsets of many partitions at once: one ListOffsets round per leader broker
//! (`offsets_for_times` with the "latest" or "earliest" timestamp) instead of one watermark
//! query per partition, which is what thousands of partitions need.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
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
    every_offset(consumer, partitions, Offset::End, timeout)
}

/// Log start offsets of `partitions` (the first offset still held), within `timeout`.
pub(crate) fn start_offsets<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    partitions: &[PartitionKey],
    timeout: Duration,
) -> Result<HashMap<PartitionKey, i64>> {
    every_offset(consumer, partitions, Offset::Beginning, timeout)
}

/// Pause between rounds while leadership settles.
const LEADERSHIP_RETRY_PAUSE: Duration = Duration::from_millis(250);

/// The offset of every one of `partitions`, or an error. Partitions whose leader is moving or
/// not yet known (a topic created a moment ago, a broker restarting) are asked again until
/// `timeout`: those answers are a matter of moments, and failing on them failed whole runs.
fn every_offset<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    partitions: &[PartitionKey],
    at: Offset,
    timeout: Duration,
) -> Result<HashMap<PartitionKey, i64>> {
    let deadline = Instant::now() + timeout;
    let mut found = HashMap::with_capacity(partitions.len());
    let mut asked: Vec<PartitionKey> = partitions.to_vec();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let unread = match list_offsets_with_codes(consumer, &asked, at, left) {
            Ok((round, unread)) => {
                found.extend(round);
                unread
            }
            Err(e) => vec![Unread::whole_call(e)],
        };
        if unread.is_empty() {
            return Ok(found);
        }
        let settling = unread.iter().all(Unread::leadership_is_settling);
        if !settling || Instant::now() + LEADERSHIP_RETRY_PAUSE >= deadline {
            let first = &unread[0].message;
            bail!("{first} (and {} more)", unread.len() - 1);
        }
        tracing::debug!(error = %unread[0].message, unread = unread.len(), "offsets not readable yet; asking again");
        std::thread::sleep(LEADERSHIP_RETRY_PAUSE);
        asked.retain(|k| !found.contains_key(k));
    }
}

/// Why offsets were not read: for one partition, or for the whole call.
struct Unread {
    code: Option<RDKafkaErrorCode>,
    message: String,
}

impl Unread {
    fn whole_call(e: anyhow::Error) -> Unread {
        let code = e
            .downcast_ref::<KafkaError>()
            .and_then(KafkaError::rdkafka_error_code);
        Unread {
            code,
            message: format!("{e:#}"),
        }
    }

    /// Errors a partition gives while its leader is elected or moves; nothing else is retried
    /// (an unknown topic stays an error at once).
    fn leadership_is_settling(&self) -> bool {
        use RDKafkaErrorCode as E;
        matches!(
            self.code,
            Some(
                E::NotLeaderForPartition
                    | E::LeaderNotAvailable
                    | E::FencedLeaderEpoch
                    | E::UnknownLeaderEpoch
                    | E::OffsetNotAvailable
            )
        )
    }
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
pub(crate) const PARTITIONS_PER_CALL: usize = 1_000;

/// ListOffsets for `partitions` (`at` is `Offset::End`, latest, or `Offset::Beginning`,
/// earliest), one round per leader broker and chunk, all within `timeout`: what was read, and
/// what went wrong with the others.
pub(crate) fn list_offsets<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    partitions: &[PartitionKey],
    at: Offset,
    timeout: Duration,
) -> Result<(HashMap<PartitionKey, i64>, Vec<String>)> {
    let (found, unread) = list_offsets_with_codes(consumer, partitions, at, timeout)?;
    Ok((found, unread.into_iter().map(|u| u.message).collect()))
}

fn list_offsets_with_codes<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    partitions: &[PartitionKey],
    at: Offset,
    timeout: Duration,
) -> Result<(HashMap<PartitionKey, i64>, Vec<Unread>)> {
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
) -> Result<(HashMap<PartitionKey, i64>, Vec<Unread>)> {
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
            (Err(err), _) => errors.push(Unread {
                code: err.rdkafka_error_code(),
                message: format!("offset of {}[{}]: {err}", key.0, key.1),
            }),
            (Ok(()), other) => errors.push(Unread {
                code: None,
                message: format!(
                    "offset of {}[{}]: the broker answered {other:?}",
                    key.0, key.1
                ),
            }),
        }
    }
    let answered = answer.count();
    if answered < partitions.len() {
        errors.push(Unread {
            code: None,
            message: format!(
                "{} of {} partitions got no answer",
                partitions.len() - answered,
                partitions.len()
            ),
        });
    }
    Ok((found, errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole_call(code: RDKafkaErrorCode) -> Unread {
        let e: Result<()> = Err(KafkaError::MetadataFetch(code)).context("listing offsets");
        Unread::whole_call(e.unwrap_err())
    }

    #[test]
    fn a_leader_being_elected_is_asked_again_through_the_added_context() {
        let unread = whole_call(RDKafkaErrorCode::NotLeaderForPartition);
        assert_eq!(unread.code, Some(RDKafkaErrorCode::NotLeaderForPartition));
        assert!(unread.leadership_is_settling());
        assert!(
            unread.message.starts_with("listing offsets: "),
            "{}",
            unread.message
        );
    }

    #[test]
    fn an_unknown_topic_is_an_error_at_once() {
        assert!(!whole_call(RDKafkaErrorCode::UnknownTopicOrPartition).leadership_is_settling());
        let no_answer = Unread {
            code: None,
            message: "1 of 2 partitions got no answer".into(),
        };
        assert!(!no_answer.leadership_is_settling());
    }
}
