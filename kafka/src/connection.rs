//! How to reach a Kafka cluster: bootstrap servers, TLS and SASL, and the time we allow it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::client::{Client, ClientContext};

use crate::msk_iam::{self, MskIamError, MskIamSettings};

/// A secret string: kept in memory only, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
    /// Amazon MSK IAM: SASL/OAUTHBEARER with a SigV4-signed token from the AWS credential chain
    /// (`msk_iam`). The SASL username and password are not used.
    AwsMskIam,
}

impl SaslMechanism {
    /// The names users write, which are also librdkafka's and Kafka's.
    pub const NAMES: [&'static str; 4] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "AWS_MSK_IAM"];

    pub fn parse(name: &str) -> Option<SaslMechanism> {
        match name {
            "PLAIN" => Some(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Some(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Some(SaslMechanism::ScramSha512),
            "AWS_MSK_IAM" => Some(SaslMechanism::AwsMskIam),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::AwsMskIam => "AWS_MSK_IAM",
        }
    }

    /// Whether the mechanism authenticates with a username and password.
    pub fn uses_password(self) -> bool {
        !matches!(self, SaslMechanism::AwsMskIam)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SaslConfig {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: Secret,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsConfig {
    /// PEM bundle of CAs to trust; the system store when absent.
    pub ca_pem: Option<String>,
    /// PEM client certificate and key, for mutual TLS.
    pub client_cert_pem: Option<String>,
    pub client_key_pem: Option<Secret>,
    /// Skips certificate verification. For throwaway test clusters only.
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectionConfig {
    pub bootstrap_servers: Vec<String>,
    pub tls: Option<TlsConfig>,
    pub sasl: Option<SaslConfig>,
    /// Upper bound for reaching the cluster and for each admin request.
    pub timeout: Duration,
}

impl ConnectionConfig {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    pub fn plaintext(bootstrap_servers: &str) -> ConnectionConfig {
        ConnectionConfig {
            bootstrap_servers: bootstrap_servers.split(',').map(str::to_string).collect(),
            tls: None,
            sasl: None,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    pub fn bootstrap(&self) -> String {
        self.bootstrap_servers.join(",")
    }

    /// The MSK IAM settings when the connection authenticates with AWS_MSK_IAM.
    pub fn msk_iam(&self) -> Option<MskIamSettings> {
        self.sasl
            .as_ref()
            .filter(|s| s.mechanism == SaslMechanism::AwsMskIam)
            .map(|_| MskIamSettings::for_servers(&self.bootstrap_servers, self.timeout))
    }

    /// For AWS_MSK_IAM, sets the client's first token now (see [`msk_iam::authenticate`]), so
    /// missing credentials fail at once with an "MSK IAM: ..." error; a no-op otherwise. Call it
    /// right after creating a client from [`Self::client_config`], on a blocking thread.
    pub fn authenticate<C: ClientContext>(&self, client: &Client<C>) -> Result<(), MskIamError> {
        match self.msk_iam() {
            Some(settings) => msk_iam::authenticate(client, &settings),
            None => Ok(()),
        }
    }

    /// For AWS_MSK_IAM, keeps the token of a shared client that nobody polls (an admin client)
    /// fresh from a thread of its own (see [`msk_iam::keep_fresh`]); a no-op otherwise. Polled
    /// clients get later tokens through their context instead.
    pub fn keep_fresh<T, C>(
        &self,
        client: &Arc<T>,
        inner: fn(&T) -> &Client<C>,
    ) -> Result<(), MskIamError>
    where
        T: Send + Sync + 'static,
        C: ClientContext + 'static,
    {
        match self.msk_iam() {
            Some(settings) => msk_iam::keep_fresh(client, settings, inner),
            None => Ok(()),
        }
    }

    /// The librdkafka settings for this connection. The result holds secrets: never log it.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.bootstrap());
        let protocol = match (&self.tls, &self.sasl) {
            (None, None) => "plaintext",
            (Some(_), None) => "ssl",
            (None, Some(_)) => "sasl_plaintext",
            (Some(_), Some(_)) => "sasl_ssl",
        };
        c.set("security.protocol", protocol);
        if let Some(tls) = &self.tls {
            if let Some(ca) = &tls.ca_pem {
                c.set("ssl.ca.pem", ca);
            }
            if let Some(cert) = &tls.client_cert_pem {
                c.set("ssl.certificate.pem", cert);
            }
            if let Some(key) = &tls.client_key_pem {
                c.set("ssl.key.pem", key.expose());
            }
            if tls.insecure_skip_verify {
                c.set("enable.ssl.certificate.verification", "false");
                c.set("ssl.endpoint.identification.algorithm", "none");
            }
        }
        match &self.sasl {
            Some(sasl) if sasl.mechanism == SaslMechanism::AwsMskIam => {
                // Tokens come from the client context's refresh callback (msk_iam); this
                // string, which librdkafka hands to it, holds the region and a bound, no secret.
                c.set("sasl.mechanism", "OAUTHBEARER");
                c.set(
                    "sasl.oauthbearer.config",
                    self.msk_iam()
                        .map(|s| s.to_config_string())
                        .unwrap_or_default(),
                );
            }
            Some(sasl) => {
                c.set("sasl.mechanism", sasl.mechanism.name());
                c.set("sasl.username", &sasl.username);
                c.set("sasl.password", sasl.password.expose());
            }
            None => {}
        }
        let ms = self
            .timeout
            .as_millis()
            .clamp(1, i32::MAX as u128)
            .to_string();
        c.set("socket.connection.setup.timeout.ms", &ms);
        c.set("socket.timeout.ms", &ms);
        // librdkafka logs connection failures itself; keep them out of stderr unless asked.
        c.set("log_level", "3");
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_protocol_follows_tls_and_sasl() {
        let mut cfg = ConnectionConfig::plaintext("a:1,b:2");
        assert_eq!(
            cfg.client_config().get("security.protocol"),
            Some("plaintext")
        );
        assert_eq!(
            cfg.client_config().get("bootstrap.servers"),
            Some("a:1,b:2")
        );
        cfg.sasl = Some(SaslConfig {
            mechanism: SaslMechanism::ScramSha512,
            username: "u".into(),
            password: Secret::new("p"),
        });
        assert_eq!(
            cfg.client_config().get("security.protocol"),
            Some("sasl_plaintext")
        );
        assert_eq!(
            cfg.client_config().get("sasl.mechanism"),
            Some("SCRAM-SHA-512")
        );
        cfg.tls = Some(TlsConfig::default());
        assert_eq!(
            cfg.client_config().get("security.protocol"),
            Some("sasl_ssl")
        );
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let cfg = ConnectionConfig {
            sasl: Some(SaslConfig {
                mechanism: SaslMechanism::Plain,
                username: "u".into(),
                password: Secret::new("hunter2"),
            }),
            tls: Some(TlsConfig {
                client_key_pem: Some(Secret::new("-----BEGIN KEY")),
                ..TlsConfig::default()
            }),
            ..ConnectionConfig::plaintext("a:1")
        };
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("BEGIN KEY"),
            "{shown}"
        );
    }

    #[test]
    fn msk_iam_is_oauthbearer_with_settings_and_no_password() {
        let mut cfg = ConnectionConfig::plaintext(
            "b-1.orders.abc.c2.kafka.eu-west-1.amazonaws.com:9098,b-2.orders.abc.c2.kafka.eu-west-1.amazonaws.com:9098",
        );
        cfg.tls = Some(TlsConfig::default());
        cfg.sasl = Some(SaslConfig {
            mechanism: SaslMechanism::AwsMskIam,
            username: String::new(),
            password: Secret::new(""),
        });
        let c = cfg.client_config();
        assert_eq!(c.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(c.get("sasl.mechanism"), Some("OAUTHBEARER"));
        assert_eq!(c.get("sasl.username"), None);
        assert_eq!(c.get("sasl.password"), None);
        let settings =
            MskIamSettings::from_config_string(c.get("sasl.oauthbearer.config").unwrap()).unwrap();
        assert_eq!(settings, cfg.msk_iam().unwrap());
        assert_eq!(settings.region.as_deref(), Some("eu-west-1"));
        assert!(!SaslMechanism::AwsMskIam.uses_password());

        cfg.sasl.as_mut().unwrap().mechanism = SaslMechanism::ScramSha512;
        assert_eq!(cfg.msk_iam(), None);
        assert_eq!(cfg.client_config().get("sasl.oauthbearer.config"), None);
    }

    #[test]
    fn mechanism_names_round_trip() {
        for name in SaslMechanism::NAMES {
            assert_eq!(SaslMechanism::parse(name).unwrap().name(), name);
        }
        assert_eq!(SaslMechanism::parse("GSSAPI"), None);
    }
}
