//! Committing consumer-group offsets inside a producer transaction, for a group that has no
//! consumer in this process. rust-rdkafka only accepts group metadata taken from a live
//! consumer; the replication runtime stores its progress in a target-cluster group that nobody
//! joins, so the metadata is made from the group id alone (generation -1, no member), which the
//! broker accepts for an Empty group. Zombie writers are fenced by transactional ids instead.

use std::time::Duration;

use rdkafka::TopicPartitionList;
use rdkafka::producer::{BaseProducer, Producer, ProducerContext};
use thiserror::Error;

use crate::native::{self, Handle};

#[derive(Debug, Error)]
#[error("sending offsets to the transaction: {message}")]
pub struct TxnOffsetError {
    pub message: String,
    /// The transaction must be aborted before the producer can continue.
    pub requires_abort: bool,
    /// The producer is unusable (e.g. fenced by a newer instance with the same transactional id).
    pub fatal: bool,
}

/// Adds `offsets` for `group_id` to the producer's open transaction, waiting at most `timeout`.
pub fn send_offsets_to_transaction<C: ProducerContext>(
    producer: &BaseProducer<C>,
    offsets: &TopicPartitionList,
    group_id: &str,
    timeout: Duration,
) -> Result<(), TxnOffsetError> {
    let metadata = native::group_metadata(group_id).map_err(|e| TxnOffsetError {
        message: e.message,
        requires_abort: false,
        fatal: false,
    })?;
    native::send_offsets_to_transaction(Handle::of(producer.client()), offsets, &metadata, timeout)
        .map_err(|e| TxnOffsetError {
            message: e.error.message,
            requires_abort: e.requires_abort,
            fatal: e.fatal,
        })
}
