//! Committing consumer-group offsets inside a producer transaction, for a group that has no
//! consumer in this process. rust-rdkafka only accepts group metadata taken from a live
//! consumer; the replication runtime stores its progress in a target-cluster group that nobody
//! joins, so the metadata is made from the group id alone (generation -1, no member), which the
//! broker accepts for an Empty group. Zombie writers are fenced by transactional ids instead.

use std::ffi::{CStr, CString};
use std::time::Duration;

use rdkafka::TopicPartitionList;
use rdkafka::bindings as rd;
use rdkafka::producer::{BaseProducer, Producer, ProducerContext};
use thiserror::Error;

#[derive(Debug, Error)]
#[error("sending offsets to the transaction: {message}")]
pub struct TxnOffsetError {
    pub message: String,
    /// The transaction must be aborted before the producer can continue.
    pub requires_abort: bool,
    /// The producer is unusable (e.g. fenced by a newer instance with the same transactional id).
    pub fatal: bool,
}

pub fn send_offsets_to_transaction<C: ProducerContext>(
    producer: &BaseProducer<C>,
    offsets: &TopicPartitionList,
    group_id: &str,
    timeout: Duration,
) -> Result<(), TxnOffsetError> {
    let group = CString::new(group_id).map_err(|_| TxnOffsetError {
        message: "group id contains NUL".into(),
        requires_abort: false,
        fatal: false,
    })?;
    unsafe {
        let metadata = rd::rd_kafka_consumer_group_metadata_new(group.as_ptr());
        let error = rd::rd_kafka_send_offsets_to_transaction(
            producer.client().native_ptr(),
            offsets.ptr(),
            metadata,
            timeout.as_millis().clamp(1, i32::MAX as u128) as i32,
        );
        rd::rd_kafka_consumer_group_metadata_destroy(metadata);
        if error.is_null() {
            return Ok(());
        }
        let message = CStr::from_ptr(rd::rd_kafka_error_string(error))
            .to_string_lossy()
            .into_owned();
        let result = TxnOffsetError {
            message,
            requires_abort: rd::rd_kafka_error_txn_requires_abort(error) != 0,
            fatal: rd::rd_kafka_error_is_fatal(error) != 0,
        };
        rd::rd_kafka_error_destroy(error);
        Err(result)
    }
}
