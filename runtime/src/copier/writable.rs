//! Target partitions that can take records yet. A broker announces a new topic's leaders in
//! its metadata before it has created the partitions' logs, and creates them at a few
//! hundred to a few thousand a second (10,000 took 20–30 s on the test peers). A record sent
//! to a partition without a log waits in the producer's retries, and a slot's transaction
//! cannot commit until every one of its partitions has taken its records; slots deal
//! partitions round-robin, so every slot would wait for the broker's last log. Instead a
//! worker gives the copy consumer only the partitions whose target log exists (ListOffsets
//! answers for it), and the others as their logs appear. For a target topic that already
//! existed the first check answers for all of them.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use ferry_kafka::{ConnectionConfig, KafkaErrorCode as RDKafkaErrorCode, each_end_offset};
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::partition::PartitionCopy;
use super::slot::{Owned, SlotCopy, start_offset};
use crate::end_offsets::PARTITIONS_PER_CALL;
use crate::partition_list::append;
use crate::progress::PartitionKey;

/// How often a worker asks again for the target partitions still without a log.
pub(crate) const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Bound of one check.
pub(crate) const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long partitions may stay without a log before the worker says so at warning level.
pub(crate) const WARN_AFTER: Duration = Duration::from_secs(60);

/// The source partitions among `partitions` whose target partitions have a log now (their
/// leader answers ListOffsets for them). An unanswered check counts as none (asked again
/// later).
pub(crate) fn writable(
    target_reader: &BaseConsumer,
    target: &ConnectionConfig,
    partitions: &[(PartitionKey, PartitionKey)],
    timeout: Duration,
) -> HashSet<PartitionKey> {
    let deadline = Instant::now() + timeout;
    let (mut ready, refused) = ask(target_reader, target, partitions, deadline);
    if let Some(((topic, partition), code)) = refused.first() {
        tracing::debug!(%topic, partition, ?code, refused = refused.len(), "target partitions not writable yet");
        // Admin ListOffsets goes by the client's cached metadata (leader, leader epoch), which
        // a reader that never fetches does not refresh on its own for minutes: after a broker
        // restart its stale epoch was refused again and again (FENCED_LEADER_EPOCH). One
        // metadata request brings it up to date, and the refused partitions are asked again.
        let topics: BTreeSet<&str> = refused.iter().map(|((t, _), _)| t.as_str()).collect();
        for topic in topics {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Err(e) = target_reader.fetch_metadata(Some(topic), left) {
                tracing::debug!(error = %e, %topic, "refreshing the target topic's metadata");
            }
        }
        let again: Vec<(PartitionKey, PartitionKey)> = partitions
            .iter()
            .filter(|(_, t)| refused.iter().any(|(r, _)| r == t))
            .cloned()
            .collect();
        ready.extend(ask(target_reader, target, &again, deadline).0);
    }
    ready
}

/// One round of [`writable`]: the ready source partitions, and the target partitions the
/// leaders refused with their error codes.
fn ask(
    target_reader: &BaseConsumer,
    target: &ConnectionConfig,
    partitions: &[(PartitionKey, PartitionKey)],
    deadline: Instant,
) -> (HashSet<PartitionKey>, Vec<(PartitionKey, RDKafkaErrorCode)>) {
    let mut ready = HashSet::new();
    let mut refused = Vec::new();
    // In chunks, like `end_offsets`: librdkafka matches answers to the request by searching it.
    for chunk in partitions.chunks(PARTITIONS_PER_CALL) {
        let targets: Vec<PartitionKey> = chunk.iter().map(|(_, t)| t.clone()).collect();
        let left = deadline.saturating_duration_since(Instant::now());
        match each_end_offset(target_reader.client(), target, &targets, left) {
            Ok(answers) => {
                for (source, target) in chunk {
                    match answers.get(target) {
                        Some(Ok(_)) => {
                            ready.insert(source.clone());
                        }
                        Some(Err(code)) => refused.push((target.clone(), *code)),
                        None => {}
                    }
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "target partitions not checked");
                break;
            }
        }
    }
    (ready, refused)
}

/// The source and target keys of `partitions`, for [`writable`].
pub(crate) fn keys<'a>(
    partitions: impl Iterator<Item = &'a PartitionCopy>,
) -> Vec<(PartitionKey, PartitionKey)> {
    partitions
        .map(|pc| {
            (
                (pc.source_topic.clone(), pc.partition),
                (pc.target_topic.clone(), pc.partition),
            )
        })
        .collect()
}

/// The source and target keys of the owned partitions still waiting for a target log.
pub(crate) fn waiting(owned: &Owned) -> Vec<(PartitionKey, PartitionKey)> {
    keys(owned.partitions().filter(|pc| {
        owned
            .unwritable
            .contains(&(pc.source_topic.clone(), pc.partition))
    }))
}

/// Splits the partitions of newly taken slots into those to copy now, the consumer's list
/// (each from where its copy stands), and those left waiting for their target log.
pub(crate) fn split_ready(
    taken: &[SlotCopy],
    ready: &HashSet<PartitionKey>,
) -> anyhow::Result<(TopicPartitionList, BTreeSet<PartitionKey>)> {
    let mut copy = TopicPartitionList::new();
    let mut waiting = BTreeSet::new();
    for pc in taken.iter().flat_map(|s| s.partitions.iter()) {
        let key = (pc.source_topic.clone(), pc.partition);
        if ready.contains(&key) {
            append(
                &mut copy,
                &pc.source_topic,
                pc.partition,
                start_offset(pc.progress.next_source),
            )?;
        } else {
            waiting.insert(key);
        }
    }
    Ok((copy, waiting))
}

/// Moves `ready` out of `owned.unwritable`: the consumer's list to add, each partition from
/// where its copy stands. Partitions no longer owned or no longer waiting are left out.
pub(crate) fn take_ready(
    owned: &mut Owned,
    ready: &HashSet<PartitionKey>,
) -> anyhow::Result<TopicPartitionList> {
    let mut copy = TopicPartitionList::new();
    let keys: Vec<PartitionKey> = ready
        .iter()
        .filter(|k| owned.unwritable.contains(*k))
        .cloned()
        .collect();
    for (topic, partition) in keys {
        let Some((slot, i)) = owned.locate(&topic, partition) else {
            continue;
        };
        let next = slot.partitions[i].progress.next_source;
        append(&mut copy, &topic, partition, start_offset(next))?;
        owned.unwritable.remove(&(topic, partition));
    }
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rdkafka::producer::BaseProducer;
    use rdkafka::{ClientConfig, Offset};

    use super::*;
    use crate::copier::partition::PartitionProgress;
    use crate::copier::transaction::DeliveryLog;

    /// A slot over partitions of "orders" (copied to "copy.orders"), `next` copied so far
    /// (-1: nothing). Its producer never connects.
    fn slot(index: u32, partitions: &[(i32, i64)]) -> SlotCopy {
        let producer: BaseProducer<DeliveryLog> = ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:9")
            .create_with_context(DeliveryLog::default())
            .expect("a producer");
        SlotCopy {
            index,
            producer: Arc::new(producer),
            partitions: partitions
                .iter()
                .map(|&(partition, next)| PartitionCopy {
                    source_topic: "orders".into(),
                    target_topic: "copy.orders".into(),
                    partition,
                    progress: PartitionProgress::taken(next, None),
                })
                .collect(),
            open: false,
            fenced: false,
            given_up: false,
        }
    }

    fn listed(tpl: &TopicPartitionList) -> Vec<(i32, Offset)> {
        let mut out: Vec<(i32, Offset)> = tpl
            .elements()
            .iter()
            .map(|e| (e.partition(), e.offset()))
            .collect();
        out.sort_by_key(|(p, _)| *p);
        out
    }

    fn key(partition: i32) -> PartitionKey {
        ("orders".to_string(), partition)
    }

    #[test]
    fn only_partitions_with_a_target_log_are_copied_at_first() {
        let taken = vec![slot(0, &[(0, 5), (2, -1)]), slot(1, &[(1, -1), (3, 7)])];
        let keys = keys(taken.iter().flat_map(|s| s.partitions.iter()));
        assert!(keys.contains(&(key(3), ("copy.orders".to_string(), 3))));
        let ready: HashSet<PartitionKey> = [key(0), key(1)].into();
        let (copy, waiting) = split_ready(&taken, &ready).unwrap();
        assert_eq!(
            listed(&copy),
            vec![(0, Offset::Offset(5)), (1, Offset::Beginning)],
            "each from where its copy stands"
        );
        assert_eq!(waiting, BTreeSet::from([key(2), key(3)]));
    }

    #[test]
    fn partitions_whose_log_appeared_are_added_once_from_where_they_stand() {
        let mut owned = Owned::default();
        owned.insert(slot(0, &[(0, 5), (2, -1)]));
        owned.insert(slot(1, &[(1, -1), (3, 7)]));
        owned.unwritable = BTreeSet::from([key(2), key(3)]);
        assert_eq!(waiting(&owned).len(), 2);
        // Partition 0 was copied already; partition 9 is not owned here.
        let ready: HashSet<PartitionKey> = [key(0), key(3), key(9)].into();
        let added = take_ready(&mut owned, &ready).unwrap();
        assert_eq!(listed(&added), vec![(3, Offset::Offset(7))]);
        assert_eq!(owned.unwritable, BTreeSet::from([key(2)]));
        assert_eq!(
            take_ready(&mut owned, &ready).unwrap().count(),
            0,
            "not added twice"
        );
    }
}
