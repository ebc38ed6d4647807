//! Building the run's spec from the model, purely: no files, no network. Secrets never go into
//! the spec; it names files the launcher writes next to it (mode 0600).

use std::path::{Path, PathBuf};

use ferry_kafka::ConnectionConfig;
use ferry_mirror_api::spec::default_http_listen;
use ferry_mirror_api::{
    ClusterSpec, Mode, RunIdentity, SaslMechanism, SaslSpec, Spec, TlsSpec, TopicSelection,
    derive_run_id,
};
use tfplugin::Tf;

use super::model::MirrorModel;
use crate::kafka::connection::{ConnectionModel, SaslModel, TlsModel};

/// A secret the workers read from a file: its file name in the run's secret directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFile {
    pub name: String,
    pub contents: String,
}

/// The spec, and the secret files it refers to.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDocuments {
    pub spec: Spec,
    pub secrets: Vec<SecretFile>,
}

impl RunDocuments {
    /// The spec file's bytes, exactly as written (stable for the same model).
    pub fn spec_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.spec).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// A stable run id for a configuration: the same clusters and topics give the same run.
pub fn derived_run_id(model: &MirrorModel) -> Option<String> {
    let servers = |c: &Tf<ConnectionModel>| match c {
        Tf::Known(c) => c.bootstrap_servers.known().cloned(),
        _ => None,
    };
    if model.topics.is_unknown()
        || model.topics_regex.is_unknown()
        || model.topic_name_prefix.is_unknown()
    {
        return None;
    }
    Some(derive_run_id(&RunIdentity {
        source_bootstrap_servers: servers(&model.source)?,
        target_bootstrap_servers: servers(&model.target)?,
        topic_names: model.topics.or(Vec::new()),
        topics_regex: model.topics_regex.known().cloned(),
        topic_name_prefix: model.topic_name_prefix.or(String::new()),
    }))
}

/// The spec for `model`, whose clusters resolved to `source` and `target`; secret files are
/// named relative to `secret_dir` (where the launcher puts them).
pub fn build(
    model: &MirrorModel,
    run_id: &str,
    source: &ConnectionConfig,
    target: &ConnectionConfig,
    secret_dir: &Path,
) -> Result<RunDocuments, String> {
    let mut secrets = Vec::new();
    let mut cluster = |side: &str, c: &ConnectionConfig| -> ClusterSpec {
        let mut secret = |name: &str, contents: &str| -> PathBuf {
            let file = format!("{side}.{name}");
            secrets.push(SecretFile {
                name: file.clone(),
                contents: contents.to_string(),
            });
            secret_dir.join(file)
        };
        ClusterSpec {
            bootstrap_servers: c.bootstrap_servers.clone(),
            tls: c.tls.as_ref().map(|t| TlsSpec {
                ca_file: t.ca_pem.as_deref().map(|p| secret("ca.pem", p)),
                client_cert_file: t.client_cert_pem.as_deref().map(|p| secret("cert.pem", p)),
                client_key_file: t
                    .client_key_pem
                    .as_ref()
                    .map(|k| secret("key.pem", k.expose())),
                insecure_skip_verify: t.insecure_skip_verify,
            }),
            sasl: c.sasl.as_ref().map(|s| match s.mechanism {
                // The workers sign in with the AWS credentials of their own environment:
                // nothing about them is in the spec or a secret file.
                ferry_kafka::SaslMechanism::AwsMskIam => SaslSpec {
                    mechanism: SaslMechanism::AwsMskIam,
                    username: String::new(),
                    password_file: None,
                    password_env: None,
                },
                m => SaslSpec {
                    mechanism: match m {
                        ferry_kafka::SaslMechanism::Plain => SaslMechanism::Plain,
                        ferry_kafka::SaslMechanism::ScramSha256 => SaslMechanism::ScramSha256,
                        _ => SaslMechanism::ScramSha512,
                    },
                    username: s.username.clone(),
                    password_file: Some(secret("password", s.password.expose())),
                    password_env: None,
                },
            }),
            timeout_seconds: Some(c.timeout.as_secs().max(1)),
        }
    };
    let source_spec = cluster("source", source);
    let target_spec = cluster("target", target);
    let mut spec = Spec {
        version: ferry_mirror_api::SPEC_VERSION,
        run_id: run_id.to_string(),
        source: source_spec,
        target: target_spec,
        topics: TopicSelection {
            names: model.topics.or(Vec::new()),
            include_regex: model.topics_regex.known().cloned(),
            exclude_regex: model.exclude_regex.known().cloned(),
        },
        topic_name_prefix: model.topic_name_prefix.or(String::new()),
        consumer_groups_regex: model.consumer_groups_regex.known().cloned(),
        mode: if model.mode_is_continuous() {
            Mode::Continuous
        } else {
            Mode::UntilCaughtUp
        },
        exactly_once: model.exactly_once.or(true),
        compression: Default::default(),
        replication_factor: None,
        in_sync_lag: model.in_sync_lag.or(1000),
        tuning: ferry_mirror_api::Tuning {
            slots: model
                .slots
                .known()
                .and_then(|n| u32::try_from(*n).ok())
                .unwrap_or(ferry_mirror_api::DEFAULT_SLOTS),
            ..Default::default()
        },
        http_listen: model
            .http_listen
            .known()
            .cloned()
            .unwrap_or_else(default_http_listen),
        target_may_hold_records: model.target_may_hold_records.or(false),
    };
    // The lowest version that says it all, so workers of the previous release read it.
    spec.version = spec.lowest_version();
    spec.validate().map_err(|e| e.to_string())?;
    Ok(RunDocuments { spec, secrets })
}

/// The connection blocks as a spec and its secret files describe them: the inverse of
/// [`build`], used by import. `read_secret` returns a secret file's contents.
pub fn cluster_model(
    c: &ClusterSpec,
    read_secret: &dyn Fn(&Path) -> Option<String>,
) -> ConnectionModel {
    let file = |p: &Option<PathBuf>| -> Tf<String> { p.as_deref().and_then(read_secret).into() };
    ConnectionModel {
        bootstrap_servers: Tf::Known(c.bootstrap_servers.clone()),
        // 30 s is the default the spec always spells out; other values were configured.
        timeout: match c.timeout_seconds {
            Some(s) if s != ConnectionConfig::DEFAULT_TIMEOUT.as_secs() => {
                Tf::Known(format!("{s}s"))
            }
            _ => Tf::Null,
        },
        tls: c
            .tls
            .as_ref()
            .map(|t| TlsModel {
                ca_cert: file(&t.ca_file),
                client_cert: file(&t.client_cert_file),
                client_key: file(&t.client_key_file),
                insecure_skip_verify: if t.insecure_skip_verify {
                    Tf::Known(true)
                } else {
                    Tf::Null
                },
            })
            .into(),
        sasl: c
            .sasl
            .as_ref()
            .map(|s| SaslModel {
                mechanism: Tf::Known(s.mechanism.name().to_string()),
                username: if s.mechanism.uses_password() {
                    Tf::Known(s.username.clone())
                } else {
                    Tf::Null
                },
                password: file(&s.password_file),
            })
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_kafka::{SaslConfig, Secret};

    fn model() -> MirrorModel {
        let cluster = |servers: &str| {
            Tf::Known(ConnectionModel {
                bootstrap_servers: Tf::Known(vec![servers.to_string()]),
                ..ConnectionModel::default()
            })
        };
        MirrorModel {
            topics: Tf::Known(vec!["orders".into()]),
            mode: "continuous".into(),
            topic_name_prefix: "copy.".into(),
            source: cluster("a:9092"),
            target: cluster("b:9092"),
            ..MirrorModel::default()
        }
    }

    #[test]
    fn run_id_is_stable_and_follows_the_identity() {
        let m = model();
        let id = derived_run_id(&m).unwrap();
        assert!(id.starts_with("ferry-") && id.len() == 18, "{id}");
        assert_eq!(derived_run_id(&m), Some(id.clone()));
        let other = MirrorModel {
            topic_name_prefix: "other.".into(),
            ..m.clone()
        };
        assert_ne!(derived_run_id(&other), Some(id));
        let unknown = MirrorModel {
            topics: Tf::Unknown,
            ..m
        };
        assert_eq!(derived_run_id(&unknown), None);
    }

    #[test]
    fn secrets_go_to_files_and_import_reads_them_back() {
        let mut source = ConnectionConfig::plaintext("a:9092");
        source.sasl = Some(SaslConfig {
            mechanism: ferry_kafka::SaslMechanism::ScramSha512,
            username: "u".into(),
            password: Secret::new("s3cret"),
        });
        let target = ConnectionConfig::plaintext("b:9092");
        let docs = build(&model(), "r1", &source, &target, Path::new("/run")).unwrap();
        let json = docs.spec_json();
        assert!(
            !json.contains("s3cret"),
            "the password never enters the spec"
        );
        assert_eq!(docs.secrets.len(), 1);
        assert_eq!(docs.secrets[0].name, "source.password");
        assert_eq!(docs.spec.mode, Mode::Continuous);
        assert_eq!(docs.spec.topic_name_prefix, "copy.");

        let read =
            |p: &Path| (p == Path::new("/run/source.password")).then(|| "s3cret".to_string());
        let back = cluster_model(&docs.spec.source, &read);
        let sasl = back.sasl.known().unwrap();
        assert_eq!(sasl.password, Tf::Known("s3cret".to_string()));
        assert_eq!(sasl.mechanism, Tf::Known("SCRAM-SHA-512".to_string()));
        assert!(
            back.timeout.is_null(),
            "the default timeout reads back as unset"
        );
    }

    #[test]
    fn target_may_hold_records_reaches_the_spec_and_needs_version_3() {
        let (source, target) = (
            ConnectionConfig::plaintext("a:9092"),
            ConnectionConfig::plaintext("b:9092"),
        );
        let mut m = model();
        m.target_may_hold_records = Tf::Known(false);
        let docs = build(&m, "r1", &source, &target, Path::new("/run")).unwrap();
        assert!(!docs.spec.target_may_hold_records);
        assert!(!docs.spec_json().contains("target_may_hold_records"));
        m.target_may_hold_records = Tf::Known(true);
        let docs = build(&m, "r1", &source, &target, Path::new("/run")).unwrap();
        assert!(docs.spec.target_may_hold_records);
        assert_eq!(docs.spec.version, 3);
        assert!(
            docs.spec_json()
                .contains("\"target_may_hold_records\": true")
        );
    }

    #[test]
    fn slots_reach_the_spec_and_raise_its_version_only_when_set() {
        let (source, target) = (
            ConnectionConfig::plaintext("a:9092"),
            ConnectionConfig::plaintext("b:9092"),
        );
        let mut m = model();
        m.slots = Tf::Known(64);
        let docs = build(&m, "r1", &source, &target, Path::new("/run")).unwrap();
        assert_eq!(docs.spec.tuning.slots, 64);
        assert_eq!(docs.spec.version, 1, "the default needs nothing new");
        assert!(!docs.spec_json().contains("slots"));
        m.slots = Tf::Known(8);
        let docs = build(&m, "r1", &source, &target, Path::new("/run")).unwrap();
        assert_eq!((docs.spec.tuning.slots, docs.spec.version), (8, 3));
        assert!(docs.spec_json().contains("\"slots\": 8"));
    }

    #[test]
    fn msk_iam_reaches_the_spec_as_version_4_with_no_secret() {
        let source = ConnectionConfig::plaintext("a:9092");
        let mut target =
            ConnectionConfig::plaintext("b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9098");
        target.tls = Some(Default::default());
        target.sasl = Some(SaslConfig {
            mechanism: ferry_kafka::SaslMechanism::AwsMskIam,
            username: String::new(),
            password: Secret::new(""),
        });
        let docs = build(&model(), "r1", &source, &target, Path::new("/run")).unwrap();
        assert_eq!(
            docs.spec.version, 4,
            "a worker that cannot sign in refuses it"
        );
        let sasl = docs.spec.target.sasl.as_ref().unwrap();
        assert_eq!(sasl.mechanism, SaslMechanism::AwsMskIam);
        assert_eq!(
            (
                sasl.username.as_str(),
                &sasl.password_file,
                &sasl.password_env
            ),
            ("", &None, &None)
        );
        assert!(docs.secrets.is_empty(), "{:?}", docs.secrets.len());
        let json = docs.spec_json();
        assert!(json.contains("\"AWS_MSK_IAM\""), "{json}");
        assert!(
            !json.contains("AWS_ACCESS") && !json.contains("username"),
            "{json}"
        );
        // The workers read it back as written.
        assert_eq!(Spec::parse(&json).unwrap(), docs.spec);

        // Import gives back the block as configured: the mechanism alone.
        let back = cluster_model(&docs.spec.target, &|_| None);
        let sasl = back.sasl.known().unwrap();
        assert_eq!(sasl.mechanism, Tf::Known("AWS_MSK_IAM".to_string()));
        assert!(sasl.username.is_null() && sasl.password.is_null());
    }
}
