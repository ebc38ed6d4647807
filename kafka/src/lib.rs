//! Kafka connections and admin operations shared by the ferry provider and runtime.
//!
//! One admin stack on purpose: librdkafka (through rust-rdkafka and, for the admin calls
//! rust-rdkafka does not wrap, rdkafka-sys). TLS, SASL and later MSK IAM are configured once,
//! in [`connection`], for the admin client, the runtime's consumers and its transactional
//! producers alike. docs/design/kafka-client.md explains the choice.

pub mod acl;
pub mod admin;
pub mod assignment;
pub mod cluster;
pub mod connection;
pub mod msk_iam;
mod native;
mod protocol;
mod protocol_logdirs;
pub mod quota;
pub mod reassign_progress;
pub mod records;
pub mod scram;
pub mod transactions;

pub use acl::{
    AclBinding, AclFilter, AclOperation, AclPatternType, AclPermission, AclResourceType,
};
pub use admin::{
    Admin, AdminError, NewTopic, PARTITIONS_PER_REQUEST, Refusal, TopicDescription, creation_steps,
};
pub use assignment::{Broker, CurrentPartition, change_replication_factor};
pub use cluster::{OngoingReassignment, PartitionLayout, TopicLayout};
pub use connection::{ConnectionConfig, SaslConfig, SaslMechanism, Secret, TlsConfig};
pub use rdkafka::error::RDKafkaErrorCode as KafkaErrorCode;
pub use records::{
    KafkaClientError, each_end_offset, end_offsets, flush_promptly, read_latest_by_key, write_keyed,
};
pub use scram::{ScramCredential, ScramMechanism};
