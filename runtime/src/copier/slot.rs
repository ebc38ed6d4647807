//! A work slot this worker owns: one producer on the target (with exactly-once, the slot's
//! transactional producer) and the source partitions of the slot.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::BaseProducer;

use super::partition::{PartitionCopy, PartitionProgress};
use super::transaction::DeliveryLog;
use crate::progress::PartitionKey;

pub(crate) struct SlotCopy {
    pub index: u32,
    /// Shared only with a call that may outlive the slot's wait for it (see
    /// `transaction::send_offsets_within`); the producer is destroyed when both let go.
    pub producer: Arc<BaseProducer<DeliveryLog>>,
    /// Sorted; a record's delivery report names its partition by position in this list.
    pub partitions: Vec<PartitionCopy>,
    /// With exactly-once, a transaction is open on the producer; otherwise records were sent
    /// whose progress is not committed yet.
    pub open: bool,
    /// The producer can no longer be used: another worker took the slot over (its
    /// `initTransactions` fenced this producer), or the producer failed for good.
    pub fenced: bool,
    /// This worker gave the producer up itself (a call that never answered): no takeover is
    /// coming, so the slot is taken again at once.
    pub given_up: bool,
    /// For target topics still growing when the run started (`Setup::narrow_targets`), the
    /// width the producer's metadata showed at its last refresh: it refuses a partition
    /// beyond it at once (`writable::known_to_producers`).
    pub known_widths: HashMap<String, i32>,
}

impl SlotCopy {
    pub fn progress(&self) -> impl Iterator<Item = &PartitionProgress> {
        self.partitions.iter().map(|pc| &pc.progress)
    }
}

/// The slots this worker owns, and where each of their partitions is.
#[derive(Default)]
pub(crate) struct Owned {
    pub slots: BTreeMap<u32, SlotCopy>,
    /// Whether the slots group has given this worker its share since it last gave slots up.
    /// Until then, owning nothing says nothing about how far the run has got.
    pub assigned: bool,
    /// Owned source partitions whose target partition has no log yet (a topic the run has
    /// just created): not given to the copy consumer until it has (see `writable`).
    pub unwritable: BTreeSet<PartitionKey>,
    /// Source partition → (slot, position in the slot's partitions).
    index: HashMap<PartitionKey, (u32, usize)>,
}

impl Owned {
    pub fn insert(&mut self, slot: SlotCopy) {
        for (i, pc) in slot.partitions.iter().enumerate() {
            self.index
                .insert((pc.source_topic.clone(), pc.partition), (slot.index, i));
        }
        self.slots.insert(slot.index, slot);
    }

    /// Removes every slot (and its partitions), until the group assigns slots again.
    pub fn drain(&mut self) -> Vec<SlotCopy> {
        self.assigned = false;
        self.unwritable.clear();
        self.index.clear();
        std::mem::take(&mut self.slots).into_values().collect()
    }

    /// Takes a slot out for a blocking call without the lock; `put_back` returns it. Its
    /// partitions stay indexed, so records for them are looked up and skipped meanwhile.
    pub fn take(&mut self, slot: u32) -> Option<SlotCopy> {
        self.slots.remove(&slot)
    }

    pub fn put_back(&mut self, slot: SlotCopy) {
        self.slots.insert(slot.index, slot);
    }

    /// The slot and partition a source record belongs to.
    pub fn locate(&mut self, topic: &str, partition: i32) -> Option<(&mut SlotCopy, usize)> {
        // The key is owned only for the lookup; records of partitions not owned are rare.
        let &(slot, i) = self.index.get(&(topic.to_string(), partition))?;
        self.slots.get_mut(&slot).map(|s| (s, i))
    }

    pub fn partitions(&self) -> impl Iterator<Item = &PartitionCopy> {
        self.slots.values().flat_map(|s| s.partitions.iter())
    }

    pub fn partitions_mut(&mut self) -> impl Iterator<Item = &mut PartitionCopy> {
        self.slots
            .values_mut()
            .flat_map(|s| s.partitions.iter_mut())
    }

    pub fn partition_count(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

/// Where the consumer must read a partition again from.
#[derive(Debug)]
pub(crate) struct Rewind {
    pub topic: String,
    pub partition: i32,
    pub to: i64,
}

impl Rewind {
    pub fn of(pc: &PartitionCopy) -> Rewind {
        Rewind {
            topic: pc.source_topic.clone(),
            partition: pc.partition,
            to: pc.progress.next_source,
        }
    }

    pub fn apply(&self, consumer: &BaseConsumer) -> Result<()> {
        consumer
            .seek(
                &self.topic,
                self.partition,
                start_offset(self.to),
                Duration::from_secs(10),
            )
            .with_context(|| format!("rewinding {}[{}]", self.topic, self.partition))
    }
}

/// Where the consumer starts a partition whose next source offset is `next` (-1: nothing
/// copied yet).
pub(crate) fn start_offset(next: i64) -> Offset {
    if next >= 0 {
        Offset::Offset(next)
    } else {
        Offset::Beginning
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn giving_slots_up_means_waiting_for_the_group_again() {
        let mut owned = Owned::default();
        assert!(
            !owned.assigned,
            "a new worker waits for its first assignment"
        );
        owned.assigned = true;
        assert!(owned.drain().is_empty());
        assert!(!owned.assigned);
    }
}
