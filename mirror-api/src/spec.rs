//! The run specification: what to copy from where to where, and how. A JSON document the
//! provider writes and every `ferry-mirror` command reads.
//!
//! Compatibility (docs/runtime.md, "Spec compatibility"): a runtime reads every version from
//! [`MIN_SPEC_VERSION`] to [`SPEC_VERSION`]. New fields are optional with defaults and only
//! serialised when set, so a document keeps the lowest version that can express it
//! ([`Spec::lowest_version`]). Unknown fields are rejected in a document this crate can read;
//! a document newer than [`SPEC_VERSION`] is refused as a whole, naming the versions read.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The newest spec version this crate reads and writes.
/// 2: `http_listen` may be any address (1 required loopback).
/// 3: `tuning.slots` (runs before 3 always had [`DEFAULT_SLOTS`]); `target_may_hold_records`.
/// 4: `sasl.mechanism` `AWS_MSK_IAM` (no username or password: AWS credentials from the
///    worker's environment), so a worker of an earlier release refuses the run by its version.
pub const SPEC_VERSION: u32 = 4;
/// The oldest spec version this crate still reads.
pub const MIN_SPEC_VERSION: u32 = 1;

/// Prefix of every consumer group the runtime uses; such groups are never translated.
pub const INTERNAL_GROUP_PREFIX: &str = "ferry-mirror.";

#[derive(Debug, Error, PartialEq, Eq)]
#[error("spec field `{field}`: {message}")]
pub struct SpecError {
    /// Path of the offending field, e.g. `source.bootstrap_servers[0]`; `(document)` or
    /// `(file)` when the document as a whole is wrong.
    pub field: String,
    pub message: String,
}

impl SpecError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> SpecError {
        SpecError {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Format version of this document, [`MIN_SPEC_VERSION`]..=[`SPEC_VERSION`].
    pub version: u32,
    /// Names the run: workers with the same run id share the work, and the run's progress,
    /// offset mapping and status live in target topics named after it.
    pub run_id: String,
    pub source: ClusterSpec,
    pub target: ClusterSpec,
    #[serde(default)]
    pub topics: TopicSelection,
    /// Prepended to each source topic name on the target; empty keeps names identical.
    #[serde(default)]
    pub topic_name_prefix: String,
    /// Source consumer groups whose committed offsets are translated (whole-name regex).
    #[serde(default)]
    pub consumer_groups_regex: Option<String>,
    #[serde(default)]
    pub mode: Mode,
    /// Records and progress in one target transaction (default). False: at-least-once.
    #[serde(default = "default_true")]
    pub exactly_once: bool,
    #[serde(default)]
    pub compression: Compression,
    /// Replication factor of created target topics; the source topic's when unset.
    #[serde(default)]
    pub replication_factor: Option<i32>,
    /// `continuous` mode reports "in sync" when total lag is at most this many records.
    #[serde(default = "default_in_sync_lag")]
    pub in_sync_lag: i64,
    #[serde(default)]
    pub tuning: Tuning,
    /// Address for /metrics, /status and /healthz; "127.0.0.1:0" picks a free loopback port.
    /// Version 2 and later: any address, e.g. "0.0.0.0:9464" so a pod can be scraped.
    #[serde(default = "default_http_listen")]
    pub http_listen: String,
    /// Copy into target topics that already hold records, after them. False (the default):
    /// a target topic holding records this run did not copy is refused. Version 3 and later;
    /// left out while false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub target_may_hold_records: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_true() -> bool {
    true
}
fn default_in_sync_lag() -> i64 {
    1000
}
/// The default `http_listen`: loopback, any free port.
pub fn default_http_listen() -> String {
    "127.0.0.1:0".to_string()
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Copy up to the source end offsets seen when the run started, translate groups, exit.
    #[default]
    UntilCaughtUp,
    /// Keep copying until stopped.
    Continuous,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    #[default]
    Lz4,
    Zstd,
}

impl Compression {
    /// The name Kafka clients use for `compression.type`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TopicSelection {
    /// Exact source topic names.
    #[serde(default)]
    pub names: Vec<String>,
    /// Source topics whose whole name matches (in addition to `names`).
    #[serde(default)]
    pub include_regex: Option<String>,
    /// Removes matching names from the selection.
    #[serde(default)]
    pub exclude_regex: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    pub bootstrap_servers: Vec<String>,
    #[serde(default)]
    pub tls: Option<TlsSpec>,
    #[serde(default)]
    pub sasl: Option<SaslSpec>,
    /// Seconds allowed for reaching the cluster and for each admin request (default 30).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// SASL mechanisms, written as Kafka names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    /// Amazon MSK IAM (SASL/OAUTHBEARER with a SigV4-signed token). Version 4 and later. The
    /// AWS credentials come from the standard chain of the worker's own environment (variables,
    /// profile, web identity, container or instance role), never from the spec; the signing
    /// region from MSK broker host names, else the worker's AWS configuration (`AWS_REGION`).
    #[serde(rename = "AWS_MSK_IAM")]
    AwsMskIam,
}

impl SaslMechanism {
    pub const ALL: [SaslMechanism; 4] = [
        SaslMechanism::Plain,
        SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512,
        SaslMechanism::AwsMskIam,
    ];

    /// The name in the spec, which is also Kafka's and librdkafka's.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::AwsMskIam => "AWS_MSK_IAM",
        }
    }

    /// Whether the mechanism signs in with a username and password (all but AWS_MSK_IAM).
    pub fn uses_password(self) -> bool {
        self != SaslMechanism::AwsMskIam
    }

    pub fn parse(name: &str) -> Option<SaslMechanism> {
        SaslMechanism::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// SASL credentials. The password is never in the spec itself: it is read from a file
/// (mode 0600, written by the provider) or an environment variable. AWS_MSK_IAM has neither
/// username nor password (both left out).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SaslSpec {
    pub mechanism: SaslMechanism,
    /// Required before version 4 (always written for password mechanisms); empty and left out
    /// for AWS_MSK_IAM.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub password_env: Option<String>,
}

/// Knobs with defaults that suit most runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Tuning {
    /// A partition's transaction commits after this long...
    pub transaction_max_ms: u64,
    /// ...or this many bytes, whichever comes first.
    pub transaction_max_bytes: u64,
    /// Producer batching delay.
    pub linger_ms: u64,
    /// Producer batch size in bytes.
    pub batch_size: u64,
    /// Consumer prefetch per partition, in KiB.
    pub fetch_max_kbytes: u64,
    /// How often progress is published to the status topic.
    pub status_interval_ms: u64,
    /// Work slots of the run: each slot is a fixed set of source partitions with one
    /// transactional producer. Recorded when the run starts (as the partition count of its
    /// slots topic); later workers use the recorded number whatever their spec says.
    /// Version 3 and later; left out while it holds the default.
    #[serde(skip_serializing_if = "is_default_slots")]
    pub slots: u32,
}

/// Slots of a run whose spec does not say.
pub const DEFAULT_SLOTS: u32 = 64;
/// The most slots a run may have (one partition of the slots topic each).
pub const MAX_SLOTS: u32 = 4096;

fn is_default_slots(slots: &u32) -> bool {
    *slots == DEFAULT_SLOTS
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            transaction_max_ms: 2000,
            transaction_max_bytes: 64 << 20,
            linger_ms: 20,
            batch_size: 1 << 20,
            fetch_max_kbytes: 8 << 10,
            status_interval_ms: 2000,
            slots: DEFAULT_SLOTS,
        }
    }
}

/// Just the version, read before the whole document so a newer document is refused for what
/// it is rather than for a field this crate does not know.
#[derive(Deserialize)]
struct VersionProbe {
    version: Option<serde_json::Value>,
}

impl Spec {
    /// Parses and validates a spec document.
    pub fn parse(text: &str) -> Result<Spec, SpecError> {
        if let Ok(VersionProbe { version: Some(v) }) = serde_json::from_str(text)
            && let Some(v) = v.as_u64()
        {
            check_version(v)?;
        }
        let de = &mut serde_json::Deserializer::from_str(text);
        let spec: Spec = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            SpecError::new(
                if path == "." {
                    "(document)".into()
                } else {
                    path
                },
                e.inner().to_string(),
            )
        })?;
        spec.validate()?;
        Ok(spec)
    }

    pub fn load(path: &Path) -> Result<Spec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            SpecError::new("(file)", format!("cannot read {}: {e}", path.display()))
        })?;
        Spec::parse(&text)
    }

    /// The lowest version that expresses this spec; writers use it so that workers of older
    /// releases can read what they can.
    pub fn lowest_version(&self) -> u32 {
        self.lowest_version_and_field().0
    }

    /// The lowest version and the field that needs it (`None` for version 1).
    fn lowest_version_and_field(&self) -> (u32, Option<&'static str>) {
        let iam = |c: &ClusterSpec| {
            c.sasl
                .as_ref()
                .is_some_and(|s| s.mechanism == SaslMechanism::AwsMskIam)
        };
        if iam(&self.source) {
            (4, Some("source.sasl.mechanism"))
        } else if iam(&self.target) {
            (4, Some("target.sasl.mechanism"))
        } else if self.tuning.slots != DEFAULT_SLOTS {
            (3, Some("tuning.slots"))
        } else if self.target_may_hold_records {
            (3, Some("target_may_hold_records"))
        } else if !listen_is_loopback(&self.http_listen) {
            (2, Some("http_listen"))
        } else {
            (1, None)
        }
    }

    pub fn validate(&self) -> Result<(), SpecError> {
        check_version(u64::from(self.version))?;
        if self.run_id.is_empty()
            || self.run_id.len() > 100
            || !self
                .run_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(SpecError::new(
                "run_id",
                "use 1 to 100 of ASCII letters, digits, '.', '_' and '-'",
            ));
        }
        self.source.validate("source")?;
        self.target.validate("target")?;
        let t = &self.topics;
        if t.names.is_empty() && t.include_regex.is_none() {
            return Err(SpecError::new(
                "topics",
                "select at least one topic with `names` or `include_regex`",
            ));
        }
        for (i, name) in t.names.iter().enumerate() {
            if name.is_empty() || name.starts_with("__") {
                return Err(SpecError::new(
                    format!("topics.names[{i}]"),
                    format!("{name:?} is not a topic that can be mirrored"),
                ));
            }
        }
        compile(&t.include_regex, "topics.include_regex")?;
        compile(&t.exclude_regex, "topics.exclude_regex")?;
        compile(&self.consumer_groups_regex, "consumer_groups_regex")?;
        if !self
            .topic_name_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(SpecError::new(
                "topic_name_prefix",
                "may only hold ASCII letters, digits, '.', '_' and '-'",
            ));
        }
        if let Some(rf) = self.replication_factor
            && rf < 1
        {
            return Err(SpecError::new("replication_factor", "must be at least 1"));
        }
        if self.in_sync_lag < 0 {
            return Err(SpecError::new("in_sync_lag", "must not be negative"));
        }
        if self.tuning.transaction_max_ms == 0 {
            return Err(SpecError::new(
                "tuning.transaction_max_ms",
                "must be positive",
            ));
        }
        if !(1..=MAX_SLOTS).contains(&self.tuning.slots) {
            return Err(SpecError::new(
                "tuning.slots",
                format!("must be 1 to {MAX_SLOTS}"),
            ));
        }
        if !listen_address_is_valid(&self.http_listen) {
            return Err(SpecError::new(
                "http_listen",
                format!(
                    "{:?} is not an address to listen on; use host:port, e.g. \"0.0.0.0:9464\" \
                     to be scraped from other hosts (a pod) or \"127.0.0.1:0\" for loopback on \
                     any free port",
                    self.http_listen
                ),
            ));
        }
        if !listen_is_loopback(&self.http_listen) && self.version < 2 {
            return Err(SpecError::new(
                "http_listen",
                format!(
                    "{:?} is not a loopback address, which spec version {} requires; set \
                     `version` to 2 (the workers must read it)",
                    self.http_listen, self.version,
                ),
            ));
        }
        if let (needed, Some(field)) = self.lowest_version_and_field()
            && self.version < needed
        {
            return Err(SpecError::new(
                field,
                format!(
                    "needs spec version {needed} (this document is version {}); set `version` \
                     to {needed} (the workers must read it)",
                    self.version
                ),
            ));
        }
        Ok(())
    }

    /// The target name of a source topic under this spec's naming policy.
    pub fn target_topic(&self, source_topic: &str) -> String {
        format!("{}{source_topic}", self.topic_name_prefix)
    }

    /// Whether a source topic is selected.
    pub fn selects_topic(&self, name: &str) -> bool {
        if name.starts_with("__") {
            return false;
        }
        let t = &self.topics;
        let included = t.names.iter().any(|n| n == name)
            || compile(&t.include_regex, "")
                .ok()
                .flatten()
                .is_some_and(|r| r.is_match(name));
        let excluded = compile(&t.exclude_regex, "")
            .ok()
            .flatten()
            .is_some_and(|r| r.is_match(name));
        included && !excluded
    }

    /// Whether a source consumer group is translated; the runtime's own groups never are.
    pub fn selects_group(&self, group: &str) -> bool {
        !group.starts_with(INTERNAL_GROUP_PREFIX)
            && compile(&self.consumer_groups_regex, "")
                .ok()
                .flatten()
                .is_some_and(|r| r.is_match(group))
    }

    /// Group id of the run's clients on the source. Workers before work slots joined it to
    /// spread partitions; workers now assign their slots' partitions by hand and never join it.
    pub fn worker_group(&self) -> String {
        format!("{INTERNAL_GROUP_PREFIX}{}", self.run_id)
    }
    /// Group on the target whose committed offsets are the run's progress (next source offset).
    pub fn progress_group(&self) -> String {
        format!("{INTERNAL_GROUP_PREFIX}{}.progress", self.run_id)
    }
    /// Target topic holding the source→target offset mapping.
    pub fn offsets_topic(&self) -> String {
        format!("__ferry.{}.offsets", self.run_id)
    }
    /// Target topic holding progress and reports, readable by anyone.
    pub fn status_topic(&self) -> String {
        format!("__ferry.{}.status", self.run_id)
    }
    /// Target topic whose partitions are the run's work slots (one per slot). Its partition
    /// count records the run's slot count; workers share the slots through a consumer group
    /// on it.
    pub fn slots_topic(&self) -> String {
        format!("__ferry.{}.slots", self.run_id)
    }
    /// Consumer group on the target, on [`Spec::slots_topic`], that hands out the slots.
    pub fn slots_group(&self) -> String {
        format!("{INTERNAL_GROUP_PREFIX}{}.slots", self.run_id)
    }
    /// Transactional id of the producer of one work slot: whoever takes the slot over fences
    /// its previous owner by this id.
    pub fn slot_transactional_id(&self, slot: u32) -> String {
        format!("{INTERNAL_GROUP_PREFIX}{}.slot.{slot}", self.run_id)
    }
    /// Transactional id of the producer copying one source partition, used by releases
    /// before work slots (spec version 2 and earlier workers). Kept to name what such a run
    /// left behind.
    pub fn transactional_id(&self, source_topic: &str, partition: i32) -> String {
        format!(
            "{INTERNAL_GROUP_PREFIX}{}.{source_topic}.{partition}",
            self.run_id
        )
    }
    /// Transactional id of the worker translating the groups and writing the final report:
    /// one per run, so a later finisher fences an earlier one. (Partition ids end in a number;
    /// this one does not, so they never collide.)
    pub fn finisher_transactional_id(&self) -> String {
        format!("{INTERNAL_GROUP_PREFIX}{}.finish", self.run_id)
    }
}

fn check_version(version: u64) -> Result<(), SpecError> {
    check_version_for(version, SPEC_VERSION)
}

/// [`check_version`] of a runtime whose newest version is `newest` (tests show what a worker
/// of an earlier release says).
fn check_version_for(version: u64, newest: u32) -> Result<(), SpecError> {
    if version > u64::from(newest) {
        return Err(SpecError::new(
            "version",
            format!(
                "this spec is version {version}, newer than this ferry-mirror reads (versions \
                 {MIN_SPEC_VERSION} to {newest}); upgrade the workers to a ferry-mirror \
                 that reads version {version}"
            ),
        ));
    }
    if version < u64::from(MIN_SPEC_VERSION) {
        return Err(SpecError::new(
            "version",
            format!(
                "unsupported version {version}; this ferry-mirror reads versions \
                 {MIN_SPEC_VERSION} to {newest}"
            ),
        ));
    }
    Ok(())
}

/// `host:port` or a socket address; port 0 picks a free port.
fn listen_address_is_valid(address: &str) -> bool {
    address.parse::<SocketAddr>().is_ok()
        || address.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty()
                && !host.contains([':', '[', ']', '/'])
                && !host.contains(char::is_whitespace)
                && port.parse::<u16>().is_ok()
        })
}

fn listen_is_loopback(address: &str) -> bool {
    match address.parse::<SocketAddr>() {
        Ok(a) => a.ip().is_loopback(),
        Err(_) => address
            .rsplit_once(':')
            .is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost")),
    }
}

/// Compiles an optional whole-name regex.
fn compile(pattern: &Option<String>, field: &str) -> Result<Option<Regex>, SpecError> {
    match pattern {
        None => Ok(None),
        Some(p) => Regex::new(&format!("^(?:{p})$"))
            .map(Some)
            .map_err(|e| SpecError::new(field, format!("invalid regular expression: {e}"))),
    }
}

impl ClusterSpec {
    fn validate(&self, field: &str) -> Result<(), SpecError> {
        if self.bootstrap_servers.is_empty() {
            return Err(SpecError::new(
                format!("{field}.bootstrap_servers"),
                "list at least one host:port",
            ));
        }
        for (i, s) in self.bootstrap_servers.iter().enumerate() {
            let ok = s
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                return Err(SpecError::new(
                    format!("{field}.bootstrap_servers[{i}]"),
                    format!("{s:?} is not host:port"),
                ));
            }
        }
        if let Some(sasl) = &self.sasl {
            if !sasl.mechanism.uses_password() {
                if sasl.password_file.is_some()
                    || sasl.password_env.is_some()
                    || !sasl.username.is_empty()
                {
                    return Err(SpecError::new(
                        format!("{field}.sasl"),
                        format!(
                            "{} takes no username, password_file or password_env: the worker \
                             signs in with the AWS credentials of its own environment",
                            sasl.mechanism
                        ),
                    ));
                }
            } else if sasl.password_file.is_none() == sasl.password_env.is_none() {
                return Err(SpecError::new(
                    format!("{field}.sasl"),
                    "set exactly one of password_file and password_env",
                ));
            }
        }
        if self.timeout_seconds == Some(0) {
            return Err(SpecError::new(
                format!("{field}.timeout_seconds"),
                "must be positive",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> serde_json::Value {
        serde_json::json!({
            "version": 1,
            "run_id": "r1",
            "source": {"bootstrap_servers": ["127.0.0.1:19092"]},
            "target": {"bootstrap_servers": ["127.0.0.1:29092"]},
            "topics": {"names": ["orders"], "include_regex": "app\\..*", "exclude_regex": "app\\.tmp.*"},
            "consumer_groups_regex": "billing-.*"
        })
    }

    fn parse(v: &serde_json::Value) -> Result<Spec, SpecError> {
        Spec::parse(&v.to_string())
    }

    #[test]
    fn minimal_spec_gets_good_defaults() {
        let spec = parse(&minimal()).unwrap();
        assert_eq!(spec.mode, Mode::UntilCaughtUp);
        assert!(spec.exactly_once);
        assert_eq!(spec.compression, Compression::Lz4);
        assert_eq!(spec.http_listen, "127.0.0.1:0");
        assert_eq!(spec.target_topic("orders"), "orders");
        assert_eq!(spec.lowest_version(), 1);
    }

    #[test]
    fn internal_names_derive_from_the_run_id() {
        let spec = parse(&minimal()).unwrap();
        assert_eq!(spec.worker_group(), "ferry-mirror.r1");
        assert_eq!(spec.progress_group(), "ferry-mirror.r1.progress");
        assert_eq!(spec.offsets_topic(), "__ferry.r1.offsets");
        assert_eq!(spec.status_topic(), "__ferry.r1.status");
        assert_eq!(
            spec.transactional_id("orders", 3),
            "ferry-mirror.r1.orders.3"
        );
    }

    #[test]
    fn selection_applies_names_regexes_and_exclusions() {
        let spec = parse(&minimal()).unwrap();
        assert!(spec.selects_topic("orders"));
        assert!(spec.selects_topic("app.events"));
        assert!(!spec.selects_topic("app.tmp1"));
        assert!(
            !spec.selects_topic("xapp.events"),
            "regexes match whole names"
        );
        assert!(!spec.selects_topic("__consumer_offsets"));
        assert!(spec.selects_group("billing-eu") && !spec.selects_group("other"));
        let mut v = minimal();
        v["consumer_groups_regex"] = serde_json::json!(".*");
        assert!(!parse(&v).unwrap().selects_group("ferry-mirror.r1"));
    }

    #[test]
    fn errors_name_the_field() {
        let field = |v: serde_json::Value| parse(&v).unwrap_err().field;
        let mut v = minimal();
        v["source"]["bootstrap_servers"] = serde_json::json!(["nohost"]);
        assert_eq!(field(v), "source.bootstrap_servers[0]");

        let mut v = minimal();
        v["mode"] = serde_json::json!("sometimes");
        assert_eq!(field(v), "mode");

        let mut v = minimal();
        v["target"]["sasl"] =
            serde_json::json!({"mechanism": "PLAIN", "username": "u", "password": "p"});
        assert!(field(v).starts_with("target.sasl"));

        let mut v = minimal();
        v["source"]["sasl"] =
            serde_json::json!({"mechanism": "GSSAPI", "username": "u", "password_env": "P"});
        let e = parse(&v).unwrap_err();
        assert_eq!(e.field, "source.sasl.mechanism");
        assert!(e.message.contains("SCRAM-SHA-512"), "{e}");

        let mut v = minimal();
        v["topics"]["include_regex"] = serde_json::json!("(");
        assert_eq!(field(v), "topics.include_regex");

        let mut v = minimal();
        v["surprise"] = serde_json::json!(1);
        assert_eq!(field(v), "surprise", "unknown fields are rejected");

        assert!(Spec::parse("{").is_err());
    }

    #[test]
    fn sasl_mechanisms_keep_their_kafka_names() {
        for m in SaslMechanism::ALL {
            let mut v = minimal();
            v["version"] = serde_json::json!(SPEC_VERSION);
            v["source"]["sasl"] = if m.uses_password() {
                serde_json::json!({"mechanism": m.name(), "username": "u", "password_env": "P"})
            } else {
                serde_json::json!({"mechanism": m.name()})
            };
            let spec = parse(&v).unwrap();
            assert_eq!(spec.source.sasl.as_ref().unwrap().mechanism, m);
            let written = serde_json::to_value(&spec).unwrap();
            assert_eq!(written["source"]["sasl"]["mechanism"], m.name());
            assert_eq!(SaslMechanism::parse(m.name()), Some(m));
        }
    }

    #[test]
    fn a_newer_document_is_refused_by_version_even_with_unknown_fields() {
        let mut v = minimal();
        v["version"] = serde_json::json!(SPEC_VERSION + 1);
        v["field_from_the_future"] = serde_json::json!(true);
        let e = parse(&v).unwrap_err();
        assert_eq!(e.field, "version");
        assert!(e.message.contains("upgrade the workers"), "{e}");
        assert!(
            e.message
                .contains(&format!("versions {MIN_SPEC_VERSION} to {SPEC_VERSION}")),
            "{e}"
        );

        let mut v = minimal();
        v["version"] = serde_json::json!(0);
        assert_eq!(parse(&v).unwrap_err().field, "version");
    }

    #[test]
    fn every_version_in_the_range_is_read() {
        for version in MIN_SPEC_VERSION..=SPEC_VERSION {
            let mut v = minimal();
            v["version"] = serde_json::json!(version);
            assert_eq!(parse(&v).unwrap().version, version);
        }
    }

    #[test]
    fn a_document_written_today_round_trips() {
        let spec = parse(&minimal()).unwrap();
        let text = serde_json::to_string(&spec).unwrap();
        assert_eq!(Spec::parse(&text).unwrap(), spec);
    }

    #[test]
    fn http_listen_any_address_needs_version_2() {
        let mut v = minimal();
        v["http_listen"] = serde_json::json!("0.0.0.0:9464");
        let e = parse(&v).unwrap_err();
        assert_eq!(e.field, "http_listen");
        assert!(e.message.contains("set `version` to 2"), "{e}");

        v["version"] = serde_json::json!(2);
        let spec = parse(&v).unwrap();
        assert_eq!(spec.lowest_version(), 2);

        for ok in [
            "[::]:9464",
            "metrics.pod.local:9464",
            "localhost:0",
            "[::1]:0",
        ] {
            v["http_listen"] = serde_json::json!(ok);
            assert!(parse(&v).is_ok(), "{ok}");
        }
        for bad in ["9464", "0.0.0.0", ":9464", "host:99999", "a b:1", ""] {
            v["http_listen"] = serde_json::json!(bad);
            let e = parse(&v).unwrap_err();
            assert_eq!(e.field, "http_listen", "{bad}");
            assert!(e.message.contains("0.0.0.0:9464"), "{e}");
        }

        let mut v = minimal();
        v["http_listen"] = serde_json::json!("localhost:9464");
        assert_eq!(parse(&v).unwrap().lowest_version(), 1);
    }

    #[test]
    fn target_may_hold_records_is_left_out_while_false_and_needs_version_3() {
        let spec = parse(&minimal()).unwrap();
        assert!(!spec.target_may_hold_records);
        let written = serde_json::to_value(&spec).unwrap();
        assert!(written.get("target_may_hold_records").is_none());

        let mut v = minimal();
        v["target_may_hold_records"] = serde_json::json!(true);
        let e = parse(&v).unwrap_err();
        assert_eq!(e.field, "target_may_hold_records");
        assert!(e.message.contains("set `version` to 3"), "{e}");
        v["version"] = serde_json::json!(3);
        let spec = parse(&v).unwrap();
        assert!(spec.target_may_hold_records);
        assert_eq!(spec.lowest_version(), 3);
        let text = serde_json::to_string(&spec).unwrap();
        assert_eq!(Spec::parse(&text).unwrap(), spec);
    }

    #[test]
    fn slots_default_is_left_out_and_other_values_need_version_3() {
        let spec = parse(&minimal()).unwrap();
        assert_eq!(spec.tuning.slots, DEFAULT_SLOTS);
        let written = serde_json::to_value(&spec).unwrap();
        assert!(
            written["tuning"].get("slots").is_none(),
            "a version 1 document stays readable by older workers"
        );
        assert_eq!(spec.slot_transactional_id(7), "ferry-mirror.r1.slot.7");
        assert_eq!(spec.slots_topic(), "__ferry.r1.slots");
        assert_eq!(spec.slots_group(), "ferry-mirror.r1.slots");

        let mut v = minimal();
        v["tuning"] = serde_json::json!({"slots": 8});
        let e = parse(&v).unwrap_err();
        assert_eq!(e.field, "tuning.slots");
        assert!(e.message.contains("set `version` to 3"), "{e}");
        v["version"] = serde_json::json!(3);
        let spec = parse(&v).unwrap();
        assert_eq!((spec.tuning.slots, spec.lowest_version()), (8, 3));
        assert_eq!(
            Spec::parse(&serde_json::to_string(&spec).unwrap()).unwrap(),
            spec
        );
        for bad in [0, MAX_SLOTS + 1] {
            v["tuning"]["slots"] = serde_json::json!(bad);
            assert_eq!(parse(&v).unwrap_err().field, "tuning.slots", "{bad}");
        }
    }

    #[test]
    fn msk_iam_needs_version_4_and_no_credentials_in_the_spec() {
        for side in ["source", "target"] {
            let mut v = minimal();
            v[side]["sasl"] = serde_json::json!({"mechanism": "AWS_MSK_IAM"});
            let e = parse(&v).unwrap_err();
            assert_eq!(e.field, format!("{side}.sasl.mechanism"));
            assert!(e.message.contains("set `version` to 4"), "{e}");

            v["version"] = serde_json::json!(4);
            let spec = parse(&v).unwrap();
            assert_eq!(spec.lowest_version(), 4);
            let sasl = if side == "source" {
                &spec.source.sasl
            } else {
                &spec.target.sasl
            };
            assert_eq!(sasl.as_ref().unwrap().mechanism, SaslMechanism::AwsMskIam);
            // Written with no username and no password source.
            let written = serde_json::to_value(&spec).unwrap();
            assert_eq!(
                written[side]["sasl"],
                serde_json::json!({"mechanism": "AWS_MSK_IAM", "password_file": null, "password_env": null})
            );
            assert_eq!(
                Spec::parse(&serde_json::to_string(&spec).unwrap()).unwrap(),
                spec
            );

            for extra in [
                serde_json::json!({"username": "u"}),
                serde_json::json!({"password_env": "P"}),
                serde_json::json!({"password_file": "/run/pw"}),
            ] {
                let mut bad = v.clone();
                for (k, x) in extra.as_object().unwrap() {
                    bad[side]["sasl"][k] = x.clone();
                }
                let e = parse(&bad).unwrap_err();
                assert_eq!(e.field, format!("{side}.sasl"), "{extra}");
                assert!(e.message.contains("AWS credentials"), "{e}");
            }
        }
        // A password mechanism still needs a password source, and keeps its username.
        let mut v = minimal();
        v["source"]["sasl"] = serde_json::json!({"mechanism": "SCRAM-SHA-512", "username": "u"});
        assert_eq!(parse(&v).unwrap_err().field, "source.sasl");
        v["source"]["sasl"]["password_env"] = serde_json::json!("P");
        let spec = parse(&v).unwrap();
        assert_eq!(spec.lowest_version(), 1);
        let written = serde_json::to_value(&spec).unwrap();
        assert_eq!(written["source"]["sasl"]["username"], "u");
    }

    #[test]
    fn a_version_3_worker_refuses_an_msk_iam_document_by_its_version() {
        // What a worker of the previous release (SPEC_VERSION 3) says: the document is version
        // 4, so it is refused as a whole before the unknown mechanism is looked at.
        let mut v = minimal();
        v["version"] = serde_json::json!(4);
        v["target"]["sasl"] = serde_json::json!({"mechanism": "AWS_MSK_IAM"});
        let written = parse(&v).unwrap();
        assert_eq!(written.version, 4);
        let e = check_version_for(u64::from(written.version), 3).unwrap_err();
        assert_eq!(e.field, "version");
        assert!(
            e.message
                .contains("newer than this ferry-mirror reads (versions 1 to 3)")
                && e.message.contains("upgrade the workers"),
            "{e}"
        );
    }
}
