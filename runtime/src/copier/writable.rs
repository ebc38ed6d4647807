//! Target partitions that can take records yet. A broker announces a new topic's leaders in
//! its metadata before it has created the partitions' logs, and creates them at a few
//! hundred to a few thousand a second (10,000 took 20–30 s on the test peers). A record sent
//! to a partition without a log waits in the producer's retries, and a slot's transaction
//! cannot commit until every one of its partitions has taken its records; slots deal
//! partitions round-robin, so every slot would wait for the broker's last log. Instead a
//! worker gives the copy consumer only the partitions whose target log exists (ListOffsets
//! answers for it), and the others as their logs appear. For a target topic that already
//! existed the first check answers for all of them.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use ferry_kafka::{ConnectionConfig, each_end_offset};
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::Producer;

use super::partition::PartitionCopy;
use super::slot::{Owned, SlotCopy, start_offset};
use crate::end_offsets::PARTITIONS_PER_CALL;
use crate::partition_list::append;
use crate::progress::PartitionKey;
use crate::topics::NarrowTargets;

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
    let mut ready = ask(target_reader, target, partitions, deadline);
    let unready: Vec<(PartitionKey, PartitionKey)> = partitions
        .iter()
        .filter(|(s, _)| !ready.contains(s))
        .cloned()
        .collect();
    if let Some((_, (topic, partition))) = unready.first() {
        tracing::debug!(%topic, partition, unready = unready.len(), "target partitions not writable yet");
        // Admin ListOffsets goes by the client's cached metadata (leaders, leader epochs, the
        // topic's width), which a reader that never fetches does not refresh on its own for
        // minutes: after a broker restart its stale epoch was refused again and again
        // (FENCED_LEADER_EPOCH), and a partition beyond the cached width is refused without
        // asking. One metadata request per topic brings it up to date; then ask again.
        let topics: BTreeSet<&str> = unready.iter().map(|(_, (t, _))| t.as_str()).collect();
        for topic in topics {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Err(e) = target_reader.fetch_metadata(Some(topic), left) {
                tracing::debug!(error = %e, %topic, "refreshing the target topic's metadata");
            }
        }
        ready.extend(ask(target_reader, target, &unready, deadline));
    }
    ready
}

/// Leaves out of `ready` (source keys) the partitions of still-growing target topics that their
/// slot's producer does not know yet. A librdkafka producer refuses a partition beyond the
/// topic width in its metadata at once (UNKNOWN_PARTITION), which would abort the slot's
/// transaction; so a producer whose slot has a newly ready partition beyond the width it knows
/// refreshes its metadata for that topic first (once per step the broker publishes, not per
/// partition). Topics at full width when the run started cost nothing here. `refresh` asks a
/// producer for a topic's width within the time given (`None`: no answer).
pub(crate) fn known_to_producers<'a>(
    slots: impl Iterator<Item = &'a mut SlotCopy>,
    narrow: &NarrowTargets,
    ready: &mut HashSet<PartitionKey>,
    timeout: Duration,
    mut refresh: impl FnMut(&SlotCopy, &str, Duration) -> Option<i32>,
) {
    if narrow.is_empty() {
        return;
    }
    let deadline = Instant::now() + timeout;
    for slot in slots {
        // The widest partition each growing topic needs in this slot.
        let mut needed: BTreeMap<&str, i32> = BTreeMap::new();
        for pc in &slot.partitions {
            if narrow.contains_key(&pc.target_topic)
                && ready.contains(&(pc.source_topic.clone(), pc.partition))
            {
                let widest = needed.entry(pc.target_topic.as_str()).or_insert(0);
                *widest = (*widest).max(pc.partition + 1);
            }
        }
        let mut learned = Vec::new();
        for (topic, width) in needed {
            let known = known_width(slot, narrow, topic);
            if width > known {
                let left = deadline.saturating_duration_since(Instant::now());
                if let Some(now) = refresh(slot, topic, left).filter(|w| *w > known) {
                    learned.push((topic.to_string(), now));
                }
            }
        }
        slot.known_widths.extend(learned);
        for pc in &slot.partitions {
            if narrow.contains_key(&pc.target_topic)
                && pc.partition >= known_width(slot, narrow, &pc.target_topic)
            {
                ready.remove(&(pc.source_topic.clone(), pc.partition));
            }
        }
    }
}

/// The width of a growing target topic that `slot`'s producer knows: its last refresh, or the
/// width the worker saw before the producer was made (its first metadata shows at least that).
fn known_width(slot: &SlotCopy, narrow: &NarrowTargets, topic: &str) -> i32 {
    slot.known_widths
        .get(topic)
        .copied()
        .or_else(|| narrow.get(topic).copied())
        .unwrap_or(i32::MAX)
}

/// The width of `topic` in the metadata of `slot`'s producer, refreshed now (for
/// [`known_to_producers`]). librdkafka applies the answer to the producer's own topic state.
pub(crate) fn refresh_width(slot: &SlotCopy, topic: &str, timeout: Duration) -> Option<i32> {
    match slot.producer.client().fetch_metadata(Some(topic), timeout) {
        Ok(metadata) => metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .and_then(|t| i32::try_from(t.partitions().len()).ok()),
        Err(e) => {
            tracing::debug!(error = %e, slot = slot.index, %topic, "refreshing a slot producer's metadata");
            None
        }
    }
}

/// One round of [`writable`]: the ready source partitions.
fn ask(
    target_reader: &BaseConsumer,
    target: &ConnectionConfig,
    partitions: &[(PartitionKey, PartitionKey)],
    deadline: Instant,
) -> HashSet<PartitionKey> {
    let mut ready = HashSet::new();
    // In chunks, like `end_offsets`: librdkafka matches answers to the request by searching it.
    for chunk in partitions.chunks(PARTITIONS_PER_CALL) {
        let targets: Vec<PartitionKey> = chunk.iter().map(|(_, t)| t.clone()).collect();
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match each_end_offset(target_reader.client(), target, &targets, left) {
            Ok(answers) => {
                for (source, target) in chunk {
                    if let Some(Ok(_)) = answers.get(target) {
                        ready.insert(source.clone());
                    }
                }
            }
            // A chunk none of whose partitions the client can place (all beyond the width it
            // knows) fails as a whole; the next chunk may still answer.
            Err(e) => tracing::debug!(error = %e, "target partitions not checked"),
        }
    }
    ready
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
    use std::collections::HashMap;
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
            known_widths: HashMap::new(),
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

    #[test]
    fn a_growing_topics_partitions_wait_until_the_slot_producer_knows_them() {
        let narrow = NarrowTargets::from([("copy.orders".to_string(), 4)]);
        let mut slots = [slot(0, &[(0, -1), (2, -1), (4, -1), (6, -1)])];
        let asked = std::cell::RefCell::new(Vec::new());
        let answers = std::cell::RefCell::new(vec![Some(8), None, Some(5)]);
        let refresh = |s: &SlotCopy, topic: &str, _: Duration| {
            asked.borrow_mut().push((s.index, topic.to_string()));
            answers.borrow_mut().pop().expect("an answer")
        };
        let all: HashSet<PartitionKey> = [key(0), key(2), key(4), key(6)].into();
        // What the slot may copy now, when all four partitions have a log.
        let check = |slots: &mut [SlotCopy]| {
            let mut ready = all.clone();
            known_to_producers(
                slots.iter_mut(),
                &narrow,
                &mut ready,
                Duration::ZERO,
                refresh,
            );
            ready
        };
        let below_five: HashSet<PartitionKey> = [key(0), key(2), key(4)].into();

        assert_eq!(
            check(&mut slots),
            below_five,
            "partition 6 is beyond the 5 partitions the producer knows"
        );
        assert_eq!(slots[0].known_widths["copy.orders"], 5);
        assert_eq!(
            check(&mut slots),
            below_five,
            "an unanswered refresh teaches nothing"
        );
        assert_eq!(check(&mut slots), all, "the producer knows all 8 now");
        assert_eq!(asked.borrow().len(), 3);
        assert_eq!(check(&mut slots), all);
        assert_eq!(
            asked.borrow().len(),
            3,
            "a known width is not asked for again"
        );
        assert_eq!(slots[0].known_widths["copy.orders"], 8);
    }

    #[test]
    fn topics_at_full_width_never_ask_the_producers() {
        let mut slots = [slot(0, &[(0, -1), (7, -1)])];
        let all: HashSet<PartitionKey> = [key(0), key(7)].into();
        let never = |_: &SlotCopy, _: &str, _: Duration| -> Option<i32> {
            panic!("no producer metadata request for a topic at full width")
        };
        let mut ready = all.clone();
        known_to_producers(
            slots.iter_mut(),
            &NarrowTargets::new(),
            &mut ready,
            Duration::ZERO,
            never,
        );
        assert_eq!(ready, all);
        let other = NarrowTargets::from([("copy.other".to_string(), 1)]);
        known_to_producers(slots.iter_mut(), &other, &mut ready, Duration::ZERO, never);
        assert_eq!(ready, all);
    }
}
