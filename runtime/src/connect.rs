//! Connections from the spec. The contract describes clusters without Kafka code; here a
//! cluster becomes a librdkafka connection, with secrets read from their files or environment
//! variables at the moment of connecting (they are never in the spec itself).

use std::path::Path;
use std::time::Duration;

use ferry_kafka::{ConnectionConfig, SaslConfig, Secret, TlsConfig};
use ferry_mirror_api::spec::{ClusterSpec, SaslMechanism, SpecError};

fn mechanism(m: SaslMechanism) -> ferry_kafka::SaslMechanism {
    match m {
        SaslMechanism::Plain => ferry_kafka::SaslMechanism::Plain,
        SaslMechanism::ScramSha256 => ferry_kafka::SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512 => ferry_kafka::SaslMechanism::ScramSha512,
    }
}

/// The connection to `cluster`; `field` (`source` or `target`) names it in errors.
pub(crate) fn connection(
    cluster: &ClusterSpec,
    field: &str,
) -> Result<ConnectionConfig, SpecError> {
    let read = |f: &str, path: &Path| {
        std::fs::read_to_string(path).map_err(|e| {
            SpecError::new(
                format!("{field}.{f}"),
                format!("cannot read {}: {e}", path.display()),
            )
        })
    };
    let tls = match &cluster.tls {
        None => None,
        Some(t) => Some(TlsConfig {
            ca_pem: t
                .ca_file
                .as_deref()
                .map(|p| read("tls.ca_file", p))
                .transpose()?,
            client_cert_pem: t
                .client_cert_file
                .as_deref()
                .map(|p| read("tls.client_cert_file", p))
                .transpose()?,
            client_key_pem: t
                .client_key_file
                .as_deref()
                .map(|p| read("tls.client_key_file", p))
                .transpose()?
                .map(Secret::new),
            insecure_skip_verify: t.insecure_skip_verify,
        }),
    };
    let sasl = match &cluster.sasl {
        None => None,
        Some(s) => {
            let password = match (&s.password_file, &s.password_env) {
                (Some(path), _) => read("sasl.password_file", path)?
                    .trim_end_matches(['\n', '\r'])
                    .to_string(),
                (None, Some(var)) => std::env::var(var).map_err(|_| {
                    SpecError::new(
                        format!("{field}.sasl.password_env"),
                        format!("environment variable {var} is not set"),
                    )
                })?,
                (None, None) => {
                    return Err(SpecError::new(
                        format!("{field}.sasl"),
                        "no password source",
                    ));
                }
            };
            Some(SaslConfig {
                mechanism: mechanism(s.mechanism),
                username: s.username.clone(),
                password: Secret::new(password),
            })
        }
    };
    Ok(ConnectionConfig {
        bootstrap_servers: cluster.bootstrap_servers.clone(),
        tls,
        sasl,
        timeout: cluster
            .timeout_seconds
            .map_or(ConnectionConfig::DEFAULT_TIMEOUT, Duration::from_secs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_mirror_api::spec::SaslSpec;

    #[test]
    fn password_comes_from_a_file_or_the_environment_never_the_spec() {
        let dir = std::env::temp_dir().join(format!("ferry-connect-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let mut cluster = ClusterSpec {
            bootstrap_servers: vec!["127.0.0.1:9092".into()],
            tls: None,
            sasl: Some(SaslSpec {
                mechanism: SaslMechanism::ScramSha512,
                username: "u".into(),
                password_file: Some(file),
                password_env: None,
            }),
            timeout_seconds: Some(7),
        };
        let conn = connection(&cluster, "source").unwrap();
        let sasl = conn.sasl.unwrap();
        assert_eq!(sasl.password.expose(), "s3cret");
        assert_eq!(sasl.mechanism.name(), "SCRAM-SHA-512");
        assert_eq!(conn.timeout, Duration::from_secs(7));

        cluster.sasl.as_mut().unwrap().password_file = Some(dir.join("missing"));
        let e = connection(&cluster, "source").unwrap_err();
        assert_eq!(e.field, "source.sasl.password_file");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn every_contract_mechanism_maps_to_the_same_kafka_name() {
        for m in SaslMechanism::ALL {
            assert_eq!(mechanism(m).name(), m.name());
        }
    }
}
