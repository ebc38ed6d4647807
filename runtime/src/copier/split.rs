//! Which work slot each source partition belongs to: a pure, deterministic rule every worker
//! of every restart computes alike.
//!
//! The partitions are taken in sorted order and each topic's partitions are dealt round-robin
//! over the slots, starting at a slot picked by a hash of the topic's name. A partition's slot
//! depends only on its topic, its number and the slot count, never on which other topics or
//! partitions the run holds: adding a topic to a run (or a partition to a topic) never moves
//! an existing partition to another slot, so a slot's transactional id always fences exactly
//! the partitions it ever carried, even while workers with the old and the new spec overlap.

use std::collections::BTreeMap;

use ferry_mirror_api::fnv1a64;

use crate::progress::PartitionKey;

/// The slot of one source partition among `slots` (at least 1).
pub(crate) fn slot_of(topic: &str, partition: i32, slots: u32) -> u32 {
    let slots = u64::from(slots.max(1));
    let start = fnv1a64(topic.as_bytes()) % slots;
    let number = u64::try_from(partition).unwrap_or(0);
    ((start + number % slots) % slots) as u32
}

/// The run's partitions by slot, each slot's list sorted; slots with no partition are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Split {
    pub slots: u32,
    pub by_slot: BTreeMap<u32, Vec<PartitionKey>>,
}

impl Split {
    pub fn new(partitions: &[PartitionKey], slots: u32) -> Split {
        let mut sorted = partitions.to_vec();
        sorted.sort();
        sorted.dedup();
        let mut by_slot: BTreeMap<u32, Vec<PartitionKey>> = BTreeMap::new();
        for key in sorted {
            by_slot
                .entry(slot_of(&key.0, key.1, slots))
                .or_default()
                .push(key);
        }
        Split { slots, by_slot }
    }

    /// The partitions of a slot (none for an empty or unknown slot).
    pub fn partitions(&self, slot: u32) -> &[PartitionKey] {
        self.by_slot.get(&slot).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn topic(name: &str, partitions: i32) -> Vec<PartitionKey> {
        (0..partitions).map(|p| (name.to_string(), p)).collect()
    }

    #[test]
    fn every_partition_is_in_exactly_one_slot_within_range() {
        let mut all = topic("orders", 500);
        all.extend(topic("payments", 37));
        all.extend(topic("audit", 1));
        let split = Split::new(&all, 64);
        let mut seen = HashSet::new();
        for (slot, keys) in &split.by_slot {
            assert!(*slot < 64);
            assert!(!keys.is_empty(), "empty slots are left out");
            assert!(keys.windows(2).all(|w| w[0] < w[1]), "sorted within a slot");
            for k in keys {
                assert!(seen.insert(k.clone()), "{k:?} in two slots");
                assert_eq!(slot_of(&k.0, k.1, 64), *slot);
            }
        }
        assert_eq!(seen.len(), all.len());
    }

    #[test]
    fn the_split_is_the_same_in_every_order_and_every_process() {
        let mut all = topic("a", 10);
        all.extend(topic("b", 7));
        let mut reversed = all.clone();
        reversed.reverse();
        assert_eq!(Split::new(&all, 4), Split::new(&reversed, 4));
        // Fixed values: workers of other builds must agree (FNV-1a is specified, not random).
        assert_eq!(slot_of("orders", 0, 64), (fnv1a64(b"orders") % 64) as u32);
        assert_eq!(slot_of("orders", 64, 64), slot_of("orders", 0, 64));
    }

    #[test]
    fn a_topic_is_spread_evenly_over_the_slots() {
        let split = Split::new(&topic("wide", 1000), 64);
        assert_eq!(split.by_slot.len(), 64);
        let sizes: Vec<usize> = split.by_slot.values().map(Vec::len).collect();
        assert_eq!(sizes.iter().min(), Some(&15));
        assert_eq!(sizes.iter().max(), Some(&16));
        // Fewer partitions than slots: one partition per slot, no slot holds two.
        let narrow = Split::new(&topic("narrow", 6), 64);
        assert_eq!(narrow.by_slot.len(), 6);
    }

    #[test]
    fn adding_topics_or_partitions_moves_no_partition() {
        let before = Split::new(&topic("a", 12), 8);
        let mut grown = topic("a", 20);
        grown.extend(topic("b", 30));
        let after = Split::new(&grown, 8);
        for (slot, keys) in &before.by_slot {
            for k in keys {
                assert!(after.partitions(*slot).contains(k), "{k:?} moved");
            }
        }
    }

    #[test]
    fn one_slot_holds_everything() {
        let all = topic("a", 5);
        let split = Split::new(&all, 1);
        assert_eq!(split.partitions(0), all.as_slice());
        assert!(split.partitions(1).is_empty());
        // A slot count of 0 cannot come from a valid spec; it is treated as 1.
        assert_eq!(slot_of("a", 3, 0), 0);
    }
}
