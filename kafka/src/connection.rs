//! How to reach a Kafka cluster: bootstrap servers, TLS and SASL, and the time we allow it.

use std::fmt;
use std::time::Duration;

use rdkafka::ClientConfig;

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
}

impl SaslMechanism {
    /// The names users write, which are also librdkafka's and Kafka's.
    pub const NAMES: [&'static str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

    pub fn parse(name: &str) -> Option<SaslMechanism> {
        match name {
            "PLAIN" => Some(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Some(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Some(SaslMechanism::ScramSha512),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
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
        if let Some(sasl) = &self.sasl {
            c.set("sasl.mechanism", sasl.mechanism.name());
            c.set("sasl.username", &sasl.username);
            c.set("sasl.password", sasl.password.expose());
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
    fn mechanism_names_round_trip() {
        for name in SaslMechanism::NAMES {
            assert_eq!(SaslMechanism::parse(name).unwrap().name(), name);
        }
        assert_eq!(SaslMechanism::parse("GSSAPI"), None);
    }
}
