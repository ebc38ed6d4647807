//! Kafka connection settings as users write them: in the provider block (the default) or in a
//! resource's own `cluster { ... }` block (which wins). A resource whose cluster is not known
//! until apply — bootstrap servers of an MSK cluster created in the same run — plans cleanly.

use std::time::Duration;

use ferry_kafka::{ConnectionConfig, SaslConfig, SaslMechanism, Secret, TlsConfig};
use tfplugin::timeouts::parse_duration;
use tfplugin::{Attribute, AttributePath, Block, Diagnostics, Model, NestedBlock, Tf, Type};

/// The connection attributes as a model: the provider block and every `cluster` block.
#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct ConnectionModel {
    pub bootstrap_servers: Tf<Vec<String>>,
    pub timeout: Tf<String>,
    pub tls: Tf<TlsModel>,
    pub sasl: Tf<SaslModel>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct TlsModel {
    pub ca_cert: Tf<String>,
    pub client_cert: Tf<String>,
    pub client_key: Tf<String>,
    pub insecure_skip_verify: Tf<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct SaslModel {
    pub mechanism: Tf<String>,
    pub username: Tf<String>,
    pub password: Tf<String>,
}

impl TlsModel {
    fn is_wholly_known(&self) -> bool {
        !(self.ca_cert.is_unknown()
            || self.client_cert.is_unknown()
            || self.client_key.is_unknown()
            || self.insecure_skip_verify.is_unknown())
    }
}

impl SaslModel {
    fn is_wholly_known(&self) -> bool {
        !(self.mechanism.is_unknown() || self.username.is_unknown() || self.password.is_unknown())
    }
}

/// Environment fallbacks for the provider block, so CI can pass secrets without HCL.
pub const ENV_BOOTSTRAP: &str = "FERRY_KAFKA_BOOTSTRAP_SERVERS";
pub const ENV_SASL_USERNAME: &str = "FERRY_KAFKA_SASL_USERNAME";
pub const ENV_SASL_PASSWORD: &str = "FERRY_KAFKA_SASL_PASSWORD";

/// The connection attributes, shared by the provider block and every `cluster` block.
pub fn connection_block(description: &str, bootstrap_required: bool) -> Block {
    let servers = "Kafka bootstrap servers as host:port, e.g. [\"b-1.example:9092\"].";
    let bootstrap = if bootstrap_required {
        Attribute::required("bootstrap_servers", Type::list(Type::String)).describe(servers)
    } else {
        Attribute::optional("bootstrap_servers", Type::list(Type::String)).describe(&format!(
            "{servers} Defaults to the comma-separated {ENV_BOOTSTRAP} environment variable."
        ))
    };
    Block::new(description)
        .attribute(bootstrap)
        .attribute(Attribute::optional("timeout", Type::String).describe(
            "Upper bound for reaching the cluster and for each admin request, e.g. \"30s\" (default). \
             Unreachable brokers fail with an error after this long instead of hanging.",
        ))
        .block(NestedBlock::single(
            "tls",
            Block::new("Connect with TLS. Present means enabled.")
                .attribute(Attribute::optional("ca_cert", Type::String).describe(
                    "PEM CA bundle to trust. The system trust store when unset (right for MSK).",
                ))
                .attribute(Attribute::optional("client_cert", Type::String).describe("PEM client certificate for mutual TLS."))
                .attribute(Attribute::optional("client_key", Type::String).sensitive().describe("PEM private key of client_cert."))
                .attribute(Attribute::optional("insecure_skip_verify", Type::Bool).describe(
                    "Skip server certificate verification. Only for disposable test clusters.",
                )),
        ))
        .block(NestedBlock::single(
            "sasl",
            Block::new("SASL authentication.")
                .attribute(Attribute::required("mechanism", Type::String).describe(
                    "One of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512.",
                ))
                .attribute(Attribute::optional("username", Type::String).describe(&format!(
                    "SASL username. Provider block only: defaults to {ENV_SASL_USERNAME}."
                )))
                .attribute(Attribute::optional("password", Type::String).sensitive().describe(&format!(
                    "SASL password. Provider block only: defaults to {ENV_SASL_PASSWORD}."
                ))),
        ))
}

/// The `cluster` block every Kafka resource and data source accepts.
pub fn cluster_block() -> NestedBlock {
    NestedBlock::single(
        "cluster",
        connection_block(
            "Which Kafka cluster this object lives in. Overrides the provider's default connection; \
             may use values known only after apply (e.g. a new MSK cluster's bootstrap brokers).",
            true,
        ),
    )
}

/// Static checks of a `cluster` block (values may be unknown).
pub fn validate_cluster(cluster: &Tf<ConnectionModel>, diags: &mut Diagnostics) {
    parse(
        cluster,
        Origin::ClusterBlock,
        &AttributePath::root("cluster"),
        diags,
    );
}

/// What a resource's connection settings amount to at this moment.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    Known(ConnectionConfig),
    /// Some setting is unknown until apply.
    Unknown,
    /// Neither the resource nor the provider says where Kafka is.
    Missing,
}

/// Whether the values come from the provider block (env fallbacks apply) or a cluster block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Provider,
    ClusterBlock,
}

/// Reads connection settings from a block. Unknowns give `Resolved::Unknown`; mistakes give
/// diagnostics on `at` + the attribute.
pub fn parse(
    block: &Tf<ConnectionModel>,
    origin: Origin,
    at: &AttributePath,
    diags: &mut Diagnostics,
) -> Resolved {
    let block = match block {
        Tf::Unknown => return Resolved::Unknown,
        Tf::Null => return Resolved::Missing,
        Tf::Known(b) => b,
    };
    let path = |name: &str| at.clone().attr(name);
    let env = |name: &str| {
        (origin == Origin::Provider)
            .then(|| std::env::var(name).ok())
            .flatten()
            .filter(|v| !v.is_empty())
    };

    let servers: Vec<String> = match &block.bootstrap_servers {
        Tf::Unknown => return Resolved::Unknown,
        Tf::Null => match env(ENV_BOOTSTRAP) {
            Some(list) => list.split(',').map(|s| s.trim().to_string()).collect(),
            None => return Resolved::Missing,
        },
        Tf::Known(list) => list.clone(),
    };
    if servers.is_empty() {
        diags.attribute_error(
            path("bootstrap_servers"),
            "No bootstrap servers",
            "List at least one broker as host:port.",
        );
    }
    for s in &servers {
        if let Err(why) = check_host_port(s) {
            diags.attribute_error(
                path("bootstrap_servers"),
                "Invalid bootstrap server",
                format!("{s:?} {why}; write each server as host:port, e.g. \"broker-1.example.com:9092\"."),
            );
        }
    }

    let timeout = match &block.timeout {
        Tf::Unknown => return Resolved::Unknown,
        Tf::Known(s) => match parse_duration(s) {
            Ok(d) if d > Duration::ZERO => d,
            Ok(_) | Err(_) => {
                diags.attribute_error(
                    path("timeout"),
                    "Invalid timeout",
                    format!("{s:?} is not a positive duration; write e.g. \"30s\" or \"2m\"."),
                );
                ConnectionConfig::DEFAULT_TIMEOUT
            }
        },
        Tf::Null => ConnectionConfig::DEFAULT_TIMEOUT,
    };

    let tls = match &block.tls {
        Tf::Null => None,
        Tf::Unknown => return Resolved::Unknown,
        Tf::Known(t) if !t.is_wholly_known() => return Resolved::Unknown,
        Tf::Known(t) => Some(TlsConfig {
            ca_pem: t.ca_cert.known().cloned(),
            client_cert_pem: t.client_cert.known().cloned(),
            client_key_pem: t.client_key.known().map(Secret::new),
            insecure_skip_verify: t.insecure_skip_verify.or(false),
        }),
    };
    if let Some(t) = &tls
        && t.client_cert_pem.is_some() != t.client_key_pem.is_some()
    {
        diags.attribute_error(
            path("tls").attr("client_key"),
            "Incomplete client certificate",
            "Mutual TLS needs both client_cert and client_key.",
        );
    }

    let sasl = match &block.sasl {
        Tf::Null => None,
        Tf::Unknown => return Resolved::Unknown,
        Tf::Known(s) if !s.is_wholly_known() => return Resolved::Unknown,
        Tf::Known(s) => {
            let mechanism_name = s.mechanism.known().cloned().unwrap_or_default();
            match SaslMechanism::parse(&mechanism_name) {
                Some(SaslMechanism::AwsMskIam) => {
                    msk_iam(s, tls.is_some(), &path("sasl"), &path("tls"), diags)
                }
                Some(mechanism) => password_sasl(mechanism, s, origin, &path("sasl"), &env, diags),
                None => {
                    let detail = if mechanism_name.eq_ignore_ascii_case("AWS_MSK_IAM") {
                        format!("{mechanism_name:?}: write it as AWS_MSK_IAM.")
                    } else {
                        format!(
                            "{mechanism_name:?} is not supported; use one of {}.",
                            SaslMechanism::NAMES.join(", ")
                        )
                    };
                    diags.attribute_error(
                        path("sasl").attr("mechanism"),
                        "Unsupported SASL mechanism",
                        detail,
                    );
                    None
                }
            }
        }
    };

    Resolved::Known(ConnectionConfig {
        bootstrap_servers: servers,
        tls,
        sasl,
        timeout,
    })
}

/// A username/password mechanism (PLAIN, SCRAM): both are required, from the block or, in the
/// provider block, from the FERRY_KAFKA_SASL_* environment variables.
fn password_sasl(
    mechanism: SaslMechanism,
    s: &SaslModel,
    origin: Origin,
    at: &AttributePath,
    env: &dyn Fn(&str) -> Option<String>,
    diags: &mut Diagnostics,
) -> Option<SaslConfig> {
    let username = s
        .username
        .known()
        .cloned()
        .or_else(|| env(ENV_SASL_USERNAME));
    let password = s
        .password
        .known()
        .cloned()
        .or_else(|| env(ENV_SASL_PASSWORD));
    let hint = match origin {
        Origin::Provider => " (or the matching FERRY_KAFKA_SASL_* environment variable)",
        Origin::ClusterBlock => "",
    };
    if username.is_none() {
        diags.attribute_error(
            at.clone().attr("username"),
            "Missing SASL username",
            format!("Set username{hint}."),
        );
    }
    if password.is_none() {
        diags.attribute_error(
            at.clone().attr("password"),
            "Missing SASL password",
            format!("Set password{hint}."),
        );
    }
    Some(SaslConfig {
        mechanism,
        username: username?,
        password: Secret::new(password?),
    })
}

/// AWS_MSK_IAM: no username or password (credentials come from the AWS credential chain of
/// the process: environment, profile, web identity, container or instance role); MSK's IAM
/// listeners use TLS.
fn msk_iam(
    s: &SaslModel,
    tls: bool,
    at: &AttributePath,
    tls_at: &AttributePath,
    diags: &mut Diagnostics,
) -> Option<SaslConfig> {
    for (name, set) in [
        ("username", s.username.known().is_some()),
        ("password", s.password.known().is_some()),
    ] {
        if set {
            diags.attribute_error(
                at.clone().attr(name),
                "Not used with AWS_MSK_IAM",
                format!(
                    "AWS_MSK_IAM signs in with AWS credentials from the standard chain \
                     (environment, AWS_PROFILE, web identity, container or instance role); \
                     remove {name}."
                ),
            );
        }
    }
    if !tls {
        diags.attribute_warning(
            tls_at.clone(),
            "MSK IAM without TLS",
            "MSK's IAM listeners (ports 9098 and 9198, and serverless clusters) use TLS; add \
             `tls {}` unless this cluster really offers SASL/OAUTHBEARER in plain text.",
        );
    }
    Some(SaslConfig {
        mechanism: SaslMechanism::AwsMskIam,
        username: String::new(),
        password: Secret::new(""),
    })
}

fn check_host_port(s: &str) -> Result<(), &'static str> {
    if s.contains("://") {
        return Err("has a URL scheme; Kafka bootstrap servers are not URLs");
    }
    if s.chars().any(char::is_whitespace) {
        return Err("contains whitespace");
    }
    let (host, port) = s.rsplit_once(':').ok_or("has no port")?;
    if host.is_empty() {
        return Err("has no host");
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err("has an invalid port"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use tfplugin::Value;

    /// Parses a block given as a wire value, the way Terraform sends it.
    fn parse(block: &Value, origin: Origin, at: &AttributePath, d: &mut Diagnostics) -> Resolved {
        let model: Tf<ConnectionModel> = tfplugin::model::TfValue::decode(block).unwrap();
        super::parse(&model, origin, at, d)
    }

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        )
    }
    fn servers(list: &[&str]) -> Value {
        Value::List(list.iter().map(|s| Value::string(*s)).collect())
    }

    #[test]
    fn unknown_servers_resolve_to_unknown_not_an_error() {
        let mut d = Diagnostics::default();
        let block = obj(&[("bootstrap_servers", Value::Unknown)]);
        assert_eq!(
            parse(
                &block,
                Origin::ClusterBlock,
                &AttributePath::root("cluster"),
                &mut d
            ),
            Resolved::Unknown
        );
        let block = obj(&[("bootstrap_servers", Value::List(vec![Value::Unknown]))]);
        assert_eq!(
            parse(
                &block,
                Origin::ClusterBlock,
                &AttributePath::root("cluster"),
                &mut d
            ),
            Resolved::Unknown
        );
        assert!(!d.has_errors());
    }

    #[test]
    fn bad_server_and_mechanism_point_at_their_attributes() {
        let mut d = Diagnostics::default();
        let block = obj(&[
            ("bootstrap_servers", servers(&["nohost"])),
            (
                "sasl",
                obj(&[
                    ("mechanism", Value::string("GSSAPI")),
                    ("username", Value::string("u")),
                    ("password", Value::string("p")),
                ]),
            ),
        ]);
        parse(
            &block,
            Origin::ClusterBlock,
            &AttributePath::root("cluster"),
            &mut d,
        );
        let paths: Vec<String> =
            d.0.iter()
                .map(|x| x.path.clone().unwrap().to_string())
                .collect();
        assert!(
            paths.contains(&"cluster.bootstrap_servers".to_string()),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"cluster.sasl.mechanism".to_string()),
            "{paths:?}"
        );
    }

    #[test]
    fn known_block_becomes_a_connection() {
        let mut d = Diagnostics::default();
        let block = obj(&[
            ("bootstrap_servers", servers(&["127.0.0.1:9092"])),
            ("timeout", Value::string("5s")),
            (
                "sasl",
                obj(&[
                    ("mechanism", Value::string("SCRAM-SHA-512")),
                    ("username", Value::string("u")),
                    ("password", Value::string("p")),
                ]),
            ),
        ]);
        let Resolved::Known(c) = parse(
            &block,
            Origin::ClusterBlock,
            &AttributePath::root("cluster"),
            &mut d,
        ) else {
            panic!("expected a known connection: {d:?}")
        };
        assert!(!d.has_errors());
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.sasl.unwrap().mechanism, SaslMechanism::ScramSha512);
    }

    #[test]
    fn urls_are_not_bootstrap_servers() {
        for bad in ["http://b-1.example:9092", "SASL_SSL://b:9096", " b:9092"] {
            let mut d = Diagnostics::default();
            let block = obj(&[("bootstrap_servers", servers(&[bad]))]);
            parse(
                &block,
                Origin::ClusterBlock,
                &AttributePath::root("cluster"),
                &mut d,
            );
            assert_eq!(d.0.len(), 1, "{bad}: {d:?}");
            assert!(d.0[0].detail.contains("host:port"), "{bad}: {d:?}");
        }
        assert!(check_host_port("b-1.example:9092").is_ok());
        assert!(
            check_host_port("http://b:9092")
                .unwrap_err()
                .contains("URL scheme")
        );
    }

    #[test]
    fn msk_iam_needs_no_credentials_and_warns_without_tls() {
        let mut d = Diagnostics::default();
        let block = obj(&[
            ("bootstrap_servers", servers(&["b-1.example:9098"])),
            ("sasl", obj(&[("mechanism", Value::string("AWS_MSK_IAM"))])),
        ]);
        let resolved = parse(&block, Origin::Provider, &AttributePath::default(), &mut d);
        assert!(!d.has_errors(), "{d:?}");
        assert_eq!(d.0.len(), 1, "{d:?}");
        assert!(d.0[0].detail.contains("use TLS"), "{d:?}");
        assert_eq!(d.0[0].path.clone().unwrap().to_string(), "tls");
        let Resolved::Known(c) = resolved else {
            panic!("{resolved:?}")
        };
        let sasl = c.sasl.unwrap();
        assert_eq!(sasl.mechanism, SaslMechanism::AwsMskIam);
        assert_eq!(sasl.username, "");
    }

    #[test]
    fn msk_iam_refuses_a_username_and_password() {
        let mut d = Diagnostics::default();
        let block = obj(&[
            ("bootstrap_servers", servers(&["b-1.example:9098"])),
            (
                "sasl",
                obj(&[
                    ("mechanism", Value::string("AWS_MSK_IAM")),
                    ("username", Value::string("u")),
                    ("password", Value::string("p")),
                ]),
            ),
        ]);
        parse(
            &block,
            Origin::ClusterBlock,
            &AttributePath::root("cluster"),
            &mut d,
        );
        let paths: Vec<String> =
            d.0.iter()
                .map(|x| x.path.clone().unwrap().to_string())
                .collect();
        assert!(
            paths.contains(&"cluster.sasl.username".to_string()),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"cluster.sasl.password".to_string()),
            "{paths:?}"
        );
        assert!(
            d.0.iter().any(|x| x.detail.contains("standard chain")),
            "{d:?}"
        );
    }

    #[test]
    fn lower_case_msk_iam_says_how_to_write_it() {
        let mut d = Diagnostics::default();
        let block = obj(&[
            ("bootstrap_servers", servers(&["b-1.example:9098"])),
            ("sasl", obj(&[("mechanism", Value::string("aws_msk_iam"))])),
        ]);
        parse(&block, Origin::Provider, &AttributePath::default(), &mut d);
        assert_eq!(d.0.len(), 1, "{d:?}");
        assert!(d.0[0].detail.contains("write it as AWS_MSK_IAM"), "{d:?}");
    }

    #[test]
    fn null_block_is_missing() {
        let mut d = Diagnostics::default();
        assert_eq!(
            parse(
                &Value::Null,
                Origin::ClusterBlock,
                &AttributePath::root("cluster"),
                &mut d
            ),
            Resolved::Missing
        );
    }
}

#[cfg(test)]
mod model_tests {
    use super::*;
    use tfplugin::model::check_model_matches;

    #[test]
    fn models_match_the_connection_blocks() {
        let block = connection_block("", true);
        check_model_matches::<ConnectionModel>(&block).unwrap();
        let nested = |name: &str| {
            block
                .blocks
                .iter()
                .find(|b| b.name == name)
                .unwrap()
                .block
                .clone()
        };
        check_model_matches::<TlsModel>(&nested("tls")).unwrap();
        check_model_matches::<SaslModel>(&nested("sasl")).unwrap();
    }
}
