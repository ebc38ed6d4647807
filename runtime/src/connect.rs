//! Connections from the spec. The contract describes clusters without Kafka code; here a
//! cluster becomes a librdkafka connection, with secrets read from their files or environment
//! variables at the moment of connecting (they are never in the spec itself).
//!
//! Every librdkafka client of the runtime is made with [`create`], [`create_with`] or
//! [`create_shared`], which for an AWS_MSK_IAM side (SASL/OAUTHBEARER) set the client's first
//! MSK IAM token at once (missing AWS credentials fail there, with an "MSK IAM: ..." error,
//! rather than as a connection timeout) and, for shared long-lived clients, keep it fresh
//! from a thread of their own. Later tokens of a client whose context hands them out
//! (`SlotContext`, `DeliveryLog`) come from its context when it is polled. All of it is
//! `ferry_kafka::msk_iam`'s; for other mechanisms these are plain `create` calls.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::client::{Client, ClientContext};
use rdkafka::config::{FromClientConfig, FromClientConfigAndContext};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::producer::{BaseProducer, Producer, ProducerContext};

use ferry_kafka::msk_iam;
use ferry_kafka::{ConnectionConfig, SaslConfig, Secret, TlsConfig};
use ferry_mirror_api::spec::{ClusterSpec, SaslMechanism, SpecError};

/// A client the runtime makes: a consumer or a producer, and its underlying `Client`.
pub(crate) trait KafkaClient {
    type Context: ClientContext + 'static;
    fn native(&self) -> &Client<Self::Context>;
}

impl<C: ConsumerContext + 'static> KafkaClient for BaseConsumer<C> {
    type Context = C;
    fn native(&self) -> &Client<C> {
        Consumer::client(self)
    }
}

impl<C: ProducerContext + 'static> KafkaClient for BaseProducer<C> {
    type Context = C;
    fn native(&self) -> &Client<C> {
        Producer::client(self)
    }
}

/// Sets the first MSK IAM token of a client made from `config` (a no-op for other sides).
fn authenticate<T: KafkaClient>(client: &T, config: &ClientConfig) -> anyhow::Result<()> {
    msk_iam::authenticate_from(client.native(), config).with_context(|| {
        format!(
            "signing in to {} with AWS_MSK_IAM",
            config.get("bootstrap.servers").unwrap_or("the cluster")
        )
    })
}

/// A client from `config`, authenticated (MSK IAM) before it is used. For clients used a short
/// while (a token lasts 15 minutes) or polled with a context that hands out tokens.
pub(crate) fn create<T>(config: &ClientConfig) -> anyhow::Result<T>
where
    T: FromClientConfig + KafkaClient,
{
    let client = T::from_config(config)?;
    authenticate(&client, config)?;
    Ok(client)
}

/// [`create`] with a context of the caller's.
pub(crate) fn create_with<T, C>(config: &ClientConfig, context: C) -> anyhow::Result<T>
where
    T: FromClientConfigAndContext<C> + KafkaClient,
    C: ClientContext,
{
    let client = T::from_config_and_context(config, context)?;
    authenticate(&client, config)?;
    Ok(client)
}

/// [`create`] for a client kept for a whole run: with MSK IAM its token is also refreshed
/// from a thread of its own until the client is dropped, polled or not.
pub(crate) fn create_shared<T>(config: &ClientConfig) -> anyhow::Result<Arc<T>>
where
    T: FromClientConfig + KafkaClient + Send + Sync + 'static,
{
    let client = Arc::new(create::<T>(config)?);
    msk_iam::keep_fresh_from(&client, config, T::native)
        .context("keeping the AWS_MSK_IAM token fresh")?;
    Ok(client)
}

/// `init_transactions` on a producer just made, without librdkafka's half-second wait:
/// librdkafka looks for the transaction coordinator through a connection to a broker it
/// learned from metadata (not the bootstrap one), and when none is up yet (a new producer) it
/// asks again only after 500 ms, which every slot taken and every run's final report paid.
/// Asking the leader of one small partition (`via_topic`'s first, which exists) for its
/// offsets brings such a connection up first; should that fail, the wait is only what it was.
pub(crate) fn init_transactions<C: ProducerContext + 'static>(
    producer: &BaseProducer<C>,
    via_topic: &str,
    timeout: Duration,
) -> rdkafka::error::KafkaResult<()> {
    // librdkafka looks for the partition's leader again at growing intervals (100, 200, 300 ms,
    // ...) while its first broker connection is not up yet, which a just-made producer hit about
    // one time in six (0.5-0.7 s to take a slot). Short attempts, doubling, look again sooner.
    let deadline = Instant::now() + timeout.min(Duration::from_secs(5));
    let mut attempt = Duration::from_millis(20);
    loop {
        match producer.client().fetch_watermarks(via_topic, 0, attempt) {
            Ok(_) => break,
            Err(e) if Instant::now() + attempt >= deadline => {
                tracing::debug!(error = %e, "reaching a broker before init_transactions failed");
                break;
            }
            Err(_) => attempt = (attempt * 2).min(Duration::from_secs(1)),
        }
    }
    producer.init_transactions(timeout)
}

/// Drops clients on a thread of their own. Closing a consumer that has a group id waits for
/// librdkafka in 100 ms polls (rdkafka's close loop): a worker's readers took half a second,
/// one after another, between its last copy and the run's final report. Only for clients
/// that commit and write nothing: the process may exit before they are gone.
pub(crate) fn close_in_background<T: Send + 'static>(clients: T) {
    // Without a thread (none left), the failed spawn drops the clients here, in line.
    if let Err(e) = std::thread::Builder::new()
        .name("ferry-close".into())
        .spawn(move || drop(clients))
    {
        tracing::debug!(error = %e, "clients closed in line");
    }
}

/// Drops clients on a thread of their own and waits for that at most `wait`. Destroying a
/// librdkafka client can hang for good after a broker went down and came back (open
/// librdkafka issues 4131 and 4674: a broker handle whose reference count never reaches
/// zero), and a worker destroys its slot producers, and sometimes its slots consumer, right
/// after a target broker restart. A client still closing after `wait` is left to its thread
/// (a warning says so) and the caller goes on.
pub(crate) fn close_within<T: Send + 'static>(clients: T, what: &str, wait: Duration) {
    let (closed, done) = std::sync::mpsc::channel();
    let started = std::time::Instant::now();
    let owned_what = what.to_string();
    let spawned = std::thread::Builder::new()
        .name("ferry-close".into())
        .spawn(move || {
            drop(clients);
            let took = started.elapsed();
            if took > wait {
                tracing::warn!(seconds = took.as_secs(), "{owned_what} closed after all");
            }
            // The caller may have stopped waiting.
            let _ = closed.send(());
        });
    if let Err(e) = spawned {
        // The failed spawn dropped the clients, in line.
        tracing::debug!(error = %e, "{what} closed in line");
        return;
    }
    match done.recv_timeout(wait) {
        Ok(()) => tracing::debug!(ms = started.elapsed().as_millis() as u64, "{what} closed"),
        Err(_) => tracing::warn!(
            "{what} did not close within {}s; left closing on a thread of its own",
            wait.as_secs()
        ),
    }
}

fn mechanism(m: SaslMechanism) -> ferry_kafka::SaslMechanism {
    match m {
        SaslMechanism::Plain => ferry_kafka::SaslMechanism::Plain,
        SaslMechanism::ScramSha256 => ferry_kafka::SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512 => ferry_kafka::SaslMechanism::ScramSha512,
        SaslMechanism::AwsMskIam => ferry_kafka::SaslMechanism::AwsMskIam,
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
        // Tokens signed with the AWS credentials of the worker's own environment.
        Some(s) if !s.mechanism.uses_password() => Some(SaslConfig {
            mechanism: mechanism(s.mechanism),
            username: String::new(),
            password: Secret::new(String::new()),
        }),
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
    fn a_close_that_never_ends_does_not_hold_the_caller() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::mpsc;

        // Stands for a librdkafka client whose destroy hangs: dropping it blocks until told.
        struct Stuck(mpsc::Receiver<()>);
        impl Drop for Stuck {
            fn drop(&mut self) {
                let _ = self.0.recv();
            }
        }
        let (release, stuck) = mpsc::channel();
        close_within(Stuck(stuck), "a stuck client", Duration::from_millis(50));
        // Reached: the caller went on while the drop is still blocked.
        release.send(()).unwrap();

        struct Quick(Arc<AtomicBool>);
        impl Drop for Quick {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        close_within(
            Quick(Arc::clone(&dropped)),
            "a client",
            Duration::from_secs(60),
        );
        assert!(
            dropped.load(Ordering::SeqCst),
            "a quick close is waited for"
        );
    }

    #[test]
    fn every_contract_mechanism_maps_to_the_same_kafka_name() {
        for m in SaslMechanism::ALL {
            assert_eq!(mechanism(m).name(), m.name());
        }
    }
}
