//! The contract between the ferry provider and the `ferry-mirror` runtime, and nothing else:
//! the run spec (versioned, with a compatibility range), the records the workers write to the
//! run's status topic, group-translation and verification results, internal topic and group
//! names, and the run-id derivation. Data and pure rules only: no Kafka client, no async
//! runtime, so a provider and workers from neighbouring releases agree by construction.

pub mod acls;
pub mod groups;
pub mod hash;
pub mod spec;
pub mod status;
pub mod verify;

pub use groups::{GroupPartition, GroupResult, GroupState};
pub use hash::{Fnv1a, RunIdentity, derive_run_id, fnv1a64};
pub use spec::{
    ClusterSpec, Compression, DEFAULT_SLOTS, MAX_SLOTS, MIN_SPEC_VERSION, Mode, SPEC_VERSION,
    SaslMechanism, SaslSpec, Spec, SpecError, TlsSpec, TopicSelection, Tuning,
};
pub use status::{
    CommandResult, EndOffset, FinalReport, PartitionStatus, RunState, RunStatus, WorkerState,
    WorkerStatus,
};
pub use verify::{VerifyOutcome, VerifyRow};

/// Milliseconds since the Unix epoch, the clock of every record in the status topic.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
