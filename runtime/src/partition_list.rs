//! Building librdkafka partition lists of thousands of entries.
//!
//! rdkafka's `add_partition_offset` adds the entry and then looks it up again by name to set its
//! offset: a linear search per entry, so a list of N partitions costs N²/2 string comparisons
//! (`strcmp` was a tenth of a wide worker's CPU). Setting the offset on the entry just added
//! costs nothing more.

use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};

/// Appends `topic`/`partition` at `offset` without searching the list.
pub(crate) fn append(
    list: &mut TopicPartitionList,
    topic: &str,
    partition: i32,
    offset: Offset,
) -> KafkaResult<()> {
    list.add_partition(topic, partition).set_offset(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_entries_keep_their_own_offsets() {
        let mut list = TopicPartitionList::new();
        append(&mut list, "a", 0, Offset::Offset(7)).unwrap();
        append(&mut list, "a", 1, Offset::End).unwrap();
        append(&mut list, "b", 0, Offset::Beginning).unwrap();
        let offsets: Vec<(String, i32, Offset)> = list
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition(), e.offset()))
            .collect();
        assert_eq!(
            offsets,
            vec![
                ("a".into(), 0, Offset::Offset(7)),
                ("a".into(), 1, Offset::End),
                ("b".into(), 0, Offset::Beginning),
            ]
        );
    }
}
