//! The run specification: what to copy from where to where, and how. JSON, versioned, and the
//! one definition shared by `ferry-mirror` and the Terraform provider.

use std::path::PathBuf;
use std::time::Duration;

use ferry_kafka::{ConnectionConfig, SaslConfig, SaslMechanism, Secret, TlsConfig};
use regex::Regex;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const SPEC_VERSION: u32 = 1;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("spec field `{field}`: {message}")]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.into(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Format version of this document; currently 1.
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
    /// Loopback address for /metrics, /status and /healthz; "127.0.0.1:0" picks a free port.
    #[serde(default = "default_http_listen")]
    pub http_listen: String,
}

fn default_true() -> bool {
    true
}
fn default_in_sync_lag() -> i64 {
    1000
}
fn default_http_listen() -> String {
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
    pub fn librdkafka_name(self) -> &'static str {
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

/// SASL credentials. The password is never in the spec itself: it is read from a file
/// (mode 0600, written by the provider) or an environment variable.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SaslSpec {
    pub mechanism: String,
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
        }
    }
}

impl Spec {
    /// Parses and validates a spec document.
    pub fn parse(text: &str) -> Result<Spec, SpecError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let spec: Spec = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            err(
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

    pub fn load(path: &std::path::Path) -> Result<Spec, SpecError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err("(file)", format!("cannot read {}: {e}", path.display())))?;
        Spec::parse(&text)
    }

    pub fn validate(&self) -> Result<(), SpecError> {
        if self.version != SPEC_VERSION {
            return Err(err(
                "version",
                format!(
                    "unsupported version {}; this ferry-mirror reads version {SPEC_VERSION}",
                    self.version
                ),
            ));
        }
        if self.run_id.is_empty()
            || self.run_id.len() > 100
            || !self
                .run_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(err(
                "run_id",
                "use 1 to 100 of ASCII letters, digits, '.', '_' and '-'",
            ));
        }
        self.source.validate("source")?;
        self.target.validate("target")?;
        let t = &self.topics;
        if t.names.is_empty() && t.include_regex.is_none() {
            return Err(err(
                "topics",
                "select at least one topic with `names` or `include_regex`",
            ));
        }
        for (i, name) in t.names.iter().enumerate() {
            if name.is_empty() || name.starts_with("__") {
                return Err(err(
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
            return Err(err(
                "topic_name_prefix",
                "may only hold ASCII letters, digits, '.', '_' and '-'",
            ));
        }
        if let Some(rf) = self.replication_factor
            && rf < 1
        {
            return Err(err("replication_factor", "must be at least 1"));
        }
        if self.in_sync_lag < 0 {
            return Err(err("in_sync_lag", "must not be negative"));
        }
        if self.tuning.transaction_max_ms == 0 {
            return Err(err("tuning.transaction_max_ms", "must be positive"));
        }
        if !self.http_listen.starts_with("127.")
            && !self.http_listen.starts_with("[::1]")
            && !self.http_listen.starts_with("localhost:")
        {
            return Err(err(
                "http_listen",
                "must be a loopback address such as 127.0.0.1:9464",
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

    pub fn selects_group(&self, group: &str) -> bool {
        compile(&self.consumer_groups_regex, "")
            .ok()
            .flatten()
            .is_some_and(|r| r.is_match(group))
    }

    /// Consumer group on the source used only to spread partitions across workers.
    pub fn worker_group(&self) -> String {
        format!("ferry-mirror.{}", self.run_id)
    }
    /// Group on the target whose committed offsets are the run's progress (next source offset).
    pub fn progress_group(&self) -> String {
        format!("ferry-mirror.{}.progress", self.run_id)
    }
    /// Target topic holding the source→target offset mapping.
    pub fn offsets_topic(&self) -> String {
        format!("__ferry.{}.offsets", self.run_id)
    }
    /// Target topic holding progress and reports, readable by anyone.
    pub fn status_topic(&self) -> String {
        format!("__ferry.{}.status", self.run_id)
    }
}

/// Compiles an optional whole-name regex.
fn compile(pattern: &Option<String>, field: &str) -> Result<Option<Regex>, SpecError> {
    match pattern {
        None => Ok(None),
        Some(p) => Regex::new(&format!("^(?:{p})$"))
            .map(Some)
            .map_err(|e| err(field, format!("invalid regular expression: {e}"))),
    }
}

impl ClusterSpec {
    fn validate(&self, field: &str) -> Result<(), SpecError> {
        if self.bootstrap_servers.is_empty() {
            return Err(err(
                format!("{field}.bootstrap_servers"),
                "list at least one host:port",
            ));
        }
        for (i, s) in self.bootstrap_servers.iter().enumerate() {
            let ok = s
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                return Err(err(
                    format!("{field}.bootstrap_servers[{i}]"),
                    format!("{s:?} is not host:port"),
                ));
            }
        }
        if let Some(sasl) = &self.sasl {
            if SaslMechanism::parse(&sasl.mechanism).is_none() {
                return Err(err(
                    format!("{field}.sasl.mechanism"),
                    format!(
                        "{:?} is not supported; use one of {}",
                        sasl.mechanism,
                        SaslMechanism::NAMES.join(", ")
                    ),
                ));
            }
            if sasl.password_file.is_none() == sasl.password_env.is_none() {
                return Err(err(
                    format!("{field}.sasl"),
                    "set exactly one of password_file and password_env",
                ));
            }
        }
        if self.timeout_seconds == Some(0) {
            return Err(err(format!("{field}.timeout_seconds"), "must be positive"));
        }
        Ok(())
    }

    /// The connection, with secrets read from their files or environment variables now.
    pub fn connection(&self, field: &str) -> Result<ConnectionConfig, SpecError> {
        let read = |f: &str, path: &PathBuf| {
            std::fs::read_to_string(path).map_err(|e| {
                err(
                    format!("{field}.{f}"),
                    format!("cannot read {}: {e}", path.display()),
                )
            })
        };
        let tls = match &self.tls {
            None => None,
            Some(t) => Some(TlsConfig {
                ca_pem: t
                    .ca_file
                    .as_ref()
                    .map(|p| read("tls.ca_file", p))
                    .transpose()?,
                client_cert_pem: t
                    .client_cert_file
                    .as_ref()
                    .map(|p| read("tls.client_cert_file", p))
                    .transpose()?,
                client_key_pem: t
                    .client_key_file
                    .as_ref()
                    .map(|p| read("tls.client_key_file", p))
                    .transpose()?
                    .map(Secret::new),
                insecure_skip_verify: t.insecure_skip_verify,
            }),
        };
        let sasl = match &self.sasl {
            None => None,
            Some(s) => {
                let password = match (&s.password_file, &s.password_env) {
                    (Some(path), _) => read("sasl.password_file", path)?
                        .trim_end_matches(['\n', '\r'])
                        .to_string(),
                    (None, Some(var)) => std::env::var(var).map_err(|_| {
                        err(
                            format!("{field}.sasl.password_env"),
                            format!("environment variable {var} is not set"),
                        )
                    })?,
                    (None, None) => return Err(err(format!("{field}.sasl"), "no password source")),
                };
                Some(SaslConfig {
                    mechanism: SaslMechanism::parse(&s.mechanism)
                        .ok_or_else(|| err(format!("{field}.sasl.mechanism"), "unsupported"))?,
                    username: s.username.clone(),
                    password: Secret::new(password),
                })
            }
        };
        Ok(ConnectionConfig {
            bootstrap_servers: self.bootstrap_servers.clone(),
            tls,
            sasl,
            timeout: self
                .timeout_seconds
                .map_or(ConnectionConfig::DEFAULT_TIMEOUT, Duration::from_secs),
        })
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

    #[test]
    fn minimal_spec_gets_good_defaults() {
        let spec = Spec::parse(&minimal().to_string()).unwrap();
        assert_eq!(spec.mode, Mode::UntilCaughtUp);
        assert!(spec.exactly_once);
        assert_eq!(spec.compression, Compression::Lz4);
        assert_eq!(spec.target_topic("orders"), "orders");
        assert_eq!(spec.progress_group(), "ferry-mirror.r1.progress");
    }

    #[test]
    fn selection_applies_names_regexes_and_exclusions() {
        let spec = Spec::parse(&minimal().to_string()).unwrap();
        assert!(spec.selects_topic("orders"));
        assert!(spec.selects_topic("app.events"));
        assert!(!spec.selects_topic("app.tmp1"));
        assert!(
            !spec.selects_topic("xapp.events"),
            "regexes match whole names"
        );
        assert!(!spec.selects_topic("__consumer_offsets"));
        assert!(spec.selects_group("billing-eu") && !spec.selects_group("other"));
    }

    #[test]
    fn errors_name_the_field() {
        let mut v = minimal();
        v["source"]["bootstrap_servers"] = serde_json::json!(["nohost"]);
        assert_eq!(
            Spec::parse(&v.to_string()).unwrap_err().field,
            "source.bootstrap_servers[0]"
        );

        let mut v = minimal();
        v["mode"] = serde_json::json!("sometimes");
        assert_eq!(Spec::parse(&v.to_string()).unwrap_err().field, "mode");

        let mut v = minimal();
        v["target"]["sasl"] =
            serde_json::json!({"mechanism": "PLAIN", "username": "u", "password": "p"});
        let e = Spec::parse(&v.to_string()).unwrap_err();
        assert!(e.field.starts_with("target.sasl"), "{e}");

        let mut v = minimal();
        v["topics"]["include_regex"] = serde_json::json!("(");
        assert_eq!(
            Spec::parse(&v.to_string()).unwrap_err().field,
            "topics.include_regex"
        );

        let mut v = minimal();
        v["version"] = serde_json::json!(7);
        assert_eq!(Spec::parse(&v.to_string()).unwrap_err().field, "version");

        assert!(Spec::parse("{").is_err());
    }

    #[test]
    fn password_comes_from_a_file_or_the_environment_never_the_spec() {
        let dir = std::env::temp_dir().join(format!("ferry-spec-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let mut v = minimal();
        v["source"]["sasl"] = serde_json::json!({"mechanism": "SCRAM-SHA-512", "username": "u", "password_file": file});
        let spec = Spec::parse(&v.to_string()).unwrap();
        let conn = spec.source.connection("source").unwrap();
        assert_eq!(conn.sasl.unwrap().password.expose(), "s3cret");
        std::fs::remove_dir_all(dir).ok();
    }
}
