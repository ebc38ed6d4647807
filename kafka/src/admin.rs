//! Topic administration against a real cluster, with errors that keep the broker's words.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, ConfigSource, ResourceSpecifier};
use rdkafka::client::{Client, ClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use thiserror::Error;

use crate::connection::ConnectionConfig;
use crate::native::connect::ConnectionEvent;
use crate::native::{self, Handle, NativeError};

#[derive(Debug, Error)]
pub enum AdminError {
    #[error(
        "could not reach Kafka at {servers} within {timeout:?}: {detail}. Check that the bootstrap \
         servers are right and reachable from this machine, and that TLS/SASL settings match the listener"
    )]
    Unreachable {
        servers: String,
        timeout: Duration,
        detail: String,
    },
    /// The cluster answered and refused us: bad credentials or a TLS handshake that failed.
    /// Retrying cannot fix either, so this is reported as soon as it is seen, not after the
    /// timeout.
    #[error("{cause} with {servers}: {hint} (librdkafka: {detail})")]
    Refused {
        servers: String,
        cause: Refusal,
        /// What to check, in ferry's words (for a refused certificate, OpenSSL's reason).
        hint: String,
        /// librdkafka's own report.
        detail: String,
    },
    #[error("{operation}: {message} (Kafka error {code:?})")]
    Kafka {
        operation: &'static str,
        code: RDKafkaErrorCode,
        message: String,
    },
    #[error("{operation}: {message}")]
    Other {
        operation: &'static str,
        message: String,
    },
    /// A wide topic was created but growing it to its full width failed: it exists with
    /// `created` partitions.
    #[error(
        "topic {name} was created with {created} of its {wanted} partitions; adding the rest failed \
         (at most {PARTITIONS_PER_REQUEST} partitions are created per request): {cause}"
    )]
    PartlyCreated {
        name: String,
        created: i32,
        wanted: i32,
        cause: Box<AdminError>,
    },
}

impl AdminError {
    /// The Kafka error code, when the broker or librdkafka gave one.
    pub fn code(&self) -> Option<RDKafkaErrorCode> {
        match self {
            AdminError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn native(operation: &'static str, e: NativeError) -> AdminError {
        let message = if e.message.is_empty() {
            e.code.to_string()
        } else {
            e.message
        };
        AdminError::Kafka {
            operation,
            code: e.code,
            message,
        }
    }
}

/// Why a cluster refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// SASL: the broker refused the mechanism, user name or password.
    Authentication,
    /// TLS: the handshake failed (a certificate refused on either side, or no client
    /// certificate where the listener requires one).
    Tls,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Authentication => "authentication failed",
            Refusal::Tls => "TLS handshake failed",
        })
    }
}

/// What a topic looks like on the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    pub name: String,
    /// Kafka's topic id, base64 as Kafka's own tools print it.
    pub topic_id: String,
    pub partitions: i32,
    pub replication_factor: i32,
    /// Partitions that have no leader yet (a topic just created or a broker down).
    pub leaderless_partitions: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    /// `None` lets the broker choose (`default.replication.factor`).
    pub replication_factor: Option<i32>,
    pub config: BTreeMap<String, String>,
}

/// Remembers the last connection-level error librdkafka reported (authentication, TLS,
/// resolution), which a failed request only summarises as "transport failure".
#[derive(Default)]
pub struct ErrorCapture {
    last: std::sync::Mutex<Option<String>>,
}

impl ErrorCapture {
    pub(crate) fn last(&self) -> Option<String> {
        self.last.lock().ok().and_then(|l| l.clone())
    }
}

// Readers and offset queries in `records` use it too.
impl ConsumerContext for ErrorCapture {}

impl ClientContext for ErrorCapture {
    // MSK IAM tokens for every client built on this context (a no-op without AWS_MSK_IAM).
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;
    fn generate_oauth_token(
        &self,
        oauthbearer_config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        crate::msk_iam::oauth_token(oauthbearer_config)
    }

    // librdkafka calls this from its own threads, so connection failures (bad credentials, TLS
    // errors) are captured even though nobody polls the client's event queue.
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        tracing::debug!(?level, facility = fac, "librdkafka: {message}");
        if (level as i32) <= (RDKafkaLogLevel::Error as i32) {
            let text = if message.contains("SASL authentication error") {
                format!("authentication failed: {message}")
            } else {
                message.to_string()
            };
            if let Ok(mut last) = self.last.lock() {
                *last = Some(text);
            }
        }
    }
    fn error(&self, error: KafkaError, reason: &str) {
        let text = match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::Authentication) => format!("authentication failed: {reason}"),
            _ => reason.to_string(),
        };
        if let Ok(mut last) = self.last.lock() {
            *last = Some(text);
        }
    }
}

/// An admin connection to one cluster. Cheap to clone; clones share the connection and its
/// request counter.
#[derive(Clone)]
pub struct Admin {
    pub(crate) client: Arc<AdminClient<ErrorCapture>>,
    servers: String,
    pub(crate) timeout: Duration,
    /// Admin calls made through this connection (each one request or, for calls librdkafka
    /// splits by broker, one per broker asked).
    requests: Arc<AtomicU64>,
}

impl Admin {
    /// Connects and proves the cluster answers, within the connection's timeout.
    pub async fn connect(config: &ConnectionConfig) -> Result<Admin, AdminError> {
        let client: AdminClient<ErrorCapture> = config
            .client_config()
            .create_with_context(ErrorCapture::default())
            .map_err(|e| AdminError::Other {
                operation: "creating the Kafka client",
                message: e.to_string(),
            })?;
        let client = Arc::new(client);
        if config.msk_iam().is_some() {
            // The first token now (missing credentials fail here, at once); later ones from a
            // thread of its own, since nothing polls an admin client's main queue.
            let (first, conn) = (Arc::clone(&client), config.clone());
            tokio::task::spawn_blocking(move || conn.authenticate(first.inner()))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
                .and_then(|()| {
                    config
                        .keep_fresh(&client, AdminClient::inner)
                        .map_err(|e| e.to_string())
                })
                .map_err(|message| AdminError::Other {
                    operation: "authenticating",
                    message,
                })?;
        }
        let admin = Admin {
            client,
            servers: config.bootstrap(),
            timeout: config.timeout,
            requests: Arc::new(AtomicU64::new(0)),
        };
        let started = Instant::now();
        match admin.broker_count().await {
            Ok(_) => Ok(admin),
            Err(AdminError::Refused {
                servers,
                cause: Refusal::Tls,
                hint,
                detail,
            }) if detail.contains("certificate verify failed") => {
                // librdkafka says the same for every refused certificate; ask OpenSSL why, with
                // one more handshake within what is left of the timeout.
                let client_config = config.client_config();
                let within = config
                    .timeout
                    .saturating_sub(started.elapsed())
                    .min(Duration::from_secs(5));
                let verdict = tokio::task::spawn_blocking(move || {
                    native::connect::certificate_verdict(&client_config, within)
                })
                .await
                .ok()
                .flatten();
                Err(AdminError::Refused {
                    servers,
                    cause: Refusal::Tls,
                    hint: verdict.map_or(hint, |v| certificate_hint(&v)),
                    detail,
                })
            }
            Err(AdminError::Refused {
                servers,
                cause: Refusal::Tls,
                detail,
                ..
            }) if is_tls_alert(&detail) => {
                // Which of the two the alert means, the configuration says.
                let has_cert = config
                    .tls
                    .as_ref()
                    .is_some_and(|t| t.client_cert_pem.is_some());
                let hint = if has_cert {
                    "the broker refused this client's certificate; check that tls.client_cert \
                     was issued by a CA the brokers trust, has not expired and matches \
                     tls.client_key"
                } else {
                    "the listener requires a client certificate (mutual TLS); set \
                     tls.client_cert and tls.client_key"
                };
                Err(AdminError::Refused {
                    servers,
                    cause: Refusal::Tls,
                    hint: hint.into(),
                    detail,
                })
            }
            Err(e) => Err(e),
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How many admin calls this connection (and its clones) has made so far.
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub(crate) fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs a blocking librdkafka call on a blocking thread. The handle is borrowed from the
    /// client, which the closure's thread holds alive until the call returns.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Handle<'_>, Duration) -> T + Send + 'static,
    ) -> Result<T, AdminError> {
        self.count_request();
        let client = Arc::clone(&self.client);
        let timeout = self.timeout;
        tokio::task::spawn_blocking(move || f(Handle::of(client.inner()), timeout))
            .await
            .map_err(|e| AdminError::Other {
                operation: "admin call",
                message: e.to_string(),
            })
    }

    pub(crate) async fn metadata(&self) -> Result<rdkafka::metadata::Metadata, AdminError> {
        self.count_request();
        let client = Arc::clone(&self.client);
        let timeout = self.timeout;
        let servers = self.servers.clone();
        let fetched = tokio::task::spawn_blocking(move || {
            let fetched = fetch_metadata(client.inner(), timeout);
            match fetched {
                Fetched::Failed(e, None) => Fetched::Failed(e, client.inner().context().last()),
                other => other,
            }
        })
        .await
        .map_err(|e| AdminError::Other {
            operation: "metadata",
            message: e.to_string(),
        })?;
        match fetched {
            Fetched::Answered(md) => Ok(md),
            Fetched::Refused(cause, detail) => Err(AdminError::Refused {
                servers,
                cause,
                hint: refusal_hint(cause, &detail),
                detail,
            }),
            Fetched::Failed(e, reason) => Err(AdminError::Unreachable {
                servers,
                timeout,
                detail: match reason {
                    Some(reason) => format!("{} ({reason})", describe_kafka_error(&e)),
                    None => describe_kafka_error(&e),
                },
            }),
        }
    }

    pub async fn broker_count(&self) -> Result<usize, AdminError> {
        Ok(self.metadata().await?.brokers().len())
    }

    /// Names of all topics, sorted; internal topics (`__…`) included only when asked.
    pub async fn topic_names(&self, include_internal: bool) -> Result<Vec<String>, AdminError> {
        let md = self.metadata().await?;
        let mut names: Vec<String> = md
            .topics()
            .iter()
            .map(|t| t.name().to_string())
            .filter(|n| include_internal || !n.starts_with("__"))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Describes a topic; `Ok(None)` when it does not exist.
    pub async fn describe_topic(&self, name: &str) -> Result<Option<TopicDescription>, AdminError> {
        let owned = name.to_string();
        let described = self
            .blocking(move |rk, timeout| native::describe_topic(rk, &owned, timeout))
            .await?
            .map_err(|e| AdminError::native("describing topic", e))?;
        Ok(described.map(|t| TopicDescription {
            name: name.to_string(),
            topic_id: t.topic_id,
            partitions: t.partitions.len() as i32,
            replication_factor: t.partitions.first().map_or(0, |p| p.replicas.len() as i32),
            leaderless_partitions: t.partitions.iter().filter(|p| p.leader.is_none()).count(),
        }))
    }

    /// The configs set on the topic itself (not broker or built-in defaults).
    pub async fn topic_config_overrides(
        &self,
        name: &str,
    ) -> Result<BTreeMap<String, String>, AdminError> {
        self.count_request();
        let opts = AdminOptions::new().request_timeout(Some(self.timeout));
        let results = self
            .client
            .describe_configs(&[ResourceSpecifier::Topic(name)], &opts)
            .await
            .map_err(|e| AdminError::Other {
                operation: "describing topic configs",
                message: describe_kafka_error(&e),
            })?;
        let mut out = BTreeMap::new();
        for result in results {
            let resource = result.map_err(|code| AdminError::Kafka {
                operation: "describing topic configs",
                code,
                message: code.to_string(),
            })?;
            for entry in resource.entries {
                if entry.source == ConfigSource::DynamicTopic
                    && let Some(value) = entry.value
                {
                    out.insert(entry.name, value);
                }
            }
        }
        Ok(out)
    }

    /// Creates a topic. With `validate_only` the broker checks everything (name, configs,
    /// replication factor against live brokers) and creates nothing.
    ///
    /// A topic wider than [`PARTITIONS_PER_REQUEST`] is created at that width and grown in
    /// steps (see [`creation_steps`]); validation covers the first step only. If a step fails
    /// the topic exists with fewer partitions, and the error says how many.
    pub async fn create_topic(
        &self,
        topic: &NewTopic,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let steps = creation_steps(topic.partitions);
        let first = NewTopic {
            partitions: steps[0],
            ..topic.clone()
        };
        self.create_topic_in_one_request(&first, validate_only)
            .await?;
        if validate_only {
            return Ok(());
        }
        for pair in steps.windows(2) {
            self.create_partitions(&topic.name, pair[1], false)
                .await
                .map_err(|cause| AdminError::PartlyCreated {
                    name: topic.name.clone(),
                    created: pair[0],
                    wanted: topic.partitions,
                    cause: Box::new(cause),
                })?;
        }
        Ok(())
    }

    /// One CreateTopics request for the whole topic, whatever its width ([`Admin::create_topic`]
    /// splits wide topics; this shows why).
    pub async fn create_topic_in_one_request(
        &self,
        topic: &NewTopic,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let topic = topic.clone();
        self.blocking(move |rk, timeout| {
            let config: Vec<(String, String)> = topic.config.into_iter().collect();
            native::create_topic(
                rk,
                &native::CreateTopic {
                    name: &topic.name,
                    partitions: topic.partitions,
                    replication_factor: topic.replication_factor.unwrap_or(-1),
                    config: &config,
                },
                validate_only,
                timeout,
            )
        })
        .await?
        .map_err(|e| AdminError::native("creating topic", e))
    }

    /// Raises the partition count to `new_total`.
    pub async fn create_partitions(
        &self,
        name: &str,
        new_total: i32,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let name = name.to_string();
        self.blocking(move |rk, timeout| {
            native::create_partitions(rk, &name, new_total, validate_only, timeout)
        })
        .await?
        .map_err(|e| AdminError::native("adding partitions", e))
    }

    /// Sets `set` and resets `reset` to their defaults, leaving every other key alone.
    pub async fn alter_topic_config(
        &self,
        name: &str,
        set: &BTreeMap<String, String>,
        reset: &[String],
        validate_only: bool,
    ) -> Result<(), AdminError> {
        if set.is_empty() && reset.is_empty() {
            return Ok(());
        }
        let name = name.to_string();
        let set: Vec<(String, String)> = set.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let reset = reset.to_vec();
        let (set_now, reset_now) = (set.clone(), reset.clone());
        let topic = name.clone();
        self.blocking(move |rk, timeout| {
            native::incremental_alter_topic(
                rk,
                &topic,
                &set_now,
                &reset_now,
                validate_only,
                timeout,
            )
        })
        .await?
        .map_err(|e| AdminError::native("altering topic config", e))?;
        if !validate_only {
            self.wait_until_configs_visible(&name, &set, &reset).await;
        }
        Ok(())
    }

    /// Config changes are read back until visible (see [`Admin::until_visible`]).
    async fn wait_until_configs_visible(
        &self,
        name: &str,
        set: &[(String, String)],
        reset: &[String],
    ) {
        self.until_visible("topic config change", || async {
            self.topic_config_overrides(name)
                .await
                .is_ok_and(|overrides| {
                    set.iter()
                        .all(|(k, v)| overrides.get(k).is_some_and(|now| now == v))
                        && reset.iter().all(|k| !overrides.contains_key(k))
                })
        })
        .await
    }

    /// The controller answers a write once it is committed, but the broker that answers the
    /// next describe applies it from its metadata log a moment later. A read right after a
    /// write could see the old value (a refresh that undoes an apply), so writers wait, within
    /// the connection's timeout, until `visible` says the write shows. The write itself has
    /// succeeded: if the broker is still behind when the time is up, say so and go on.
    pub(crate) async fn until_visible<F, Fut>(&self, what: &str, mut visible: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        // Propagation takes milliseconds; a broker that normalises a value (so it never reads
        // back equal) must not hold an apply for the whole timeout.
        let within = self.timeout.min(Duration::from_secs(10));
        let deadline = Instant::now() + within;
        let mut pause = Duration::from_millis(20);
        loop {
            if visible().await {
                return;
            }
            if Instant::now() + pause >= deadline {
                tracing::warn!(
                    "the {what} was accepted but the broker did not show it within {within:?}; \
                     a read now may still see the old state"
                );
                return;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    pub async fn delete_topic(&self, name: &str) -> Result<(), AdminError> {
        let name = name.to_string();
        self.blocking(move |rk, timeout| native::delete_topic(rk, &name, timeout))
            .await?
            .map_err(|e| AdminError::native("deleting topic", e))
    }

    /// Waits until the topic exists with `partitions` partitions, each with a leader. Topic
    /// creation returns before leaders are elected; using the topic earlier fails intermittently.
    pub async fn wait_until_topic_ready(
        &self,
        name: &str,
        partitions: i32,
        within: Duration,
    ) -> Result<TopicDescription, AdminError> {
        let deadline = Instant::now() + within;
        loop {
            let last = self.describe_topic(name).await;
            if let Ok(Some(t)) = &last
                && t.partitions >= partitions
                && t.leaderless_partitions == 0
            {
                return Ok(t.clone());
            }
            if Instant::now() >= deadline {
                return Err(AdminError::Other {
                    operation: "waiting for topic",
                    message: format!(
                        "topic {name} did not get {partitions} partitions with leaders within {within:?} (last seen: {last:?})"
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the topic no longer exists (deletion completes in the background).
    pub async fn wait_until_topic_gone(
        &self,
        name: &str,
        within: Duration,
    ) -> Result<(), AdminError> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(None) = self.describe_topic(name).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(AdminError::Other {
                    operation: "waiting for topic deletion",
                    message: format!("topic {name} still exists after {within:?}"),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// How a metadata request ended.
enum Fetched {
    Answered(rdkafka::metadata::Metadata),
    /// Refused by the cluster (credentials, TLS): final, reported at once.
    Refused(Refusal, String),
    /// No answer within the timeout, with the last connection error seen.
    Failed(KafkaError, Option<String>),
}

/// Asks for metadata in growing slices of `timeout`, looking after each unanswered slice at
/// the connection errors librdkafka queued: an authentication or TLS failure ends the wait at
/// once (a broker refuses a wrong password in well under a second), anything else (a broker
/// not up yet, a dropped connection) is waited out until the timeout.
fn fetch_metadata(client: &Client<ErrorCapture>, timeout: Duration) -> Fetched {
    let deadline = Instant::now() + timeout;
    let mut slice = Duration::from_millis(200);
    let mut seen = Vec::new();
    loop {
        let attempt = Instant::now();
        let left = deadline.saturating_duration_since(attempt);
        let result = client.fetch_metadata(None, slice.min(left).max(Duration::from_millis(1)));
        seen.extend(native::connect::drain_events(Handle::of(client)));
        let error = match result {
            Ok(md) => return Fetched::Answered(md),
            Err(e) => e,
        };
        if let Some((cause, detail)) = refusal_in(&seen) {
            return Fetched::Refused(cause, detail);
        }
        if Instant::now() >= deadline {
            return Fetched::Failed(error, last_reason(&seen));
        }
        if attempt.elapsed() < slice / 2 {
            // An immediate failure: do not spin.
            std::thread::sleep(Duration::from_millis(50));
        }
        slice = (slice * 2).min(Duration::from_secs(5));
    }
}

/// The first refusal among connection events: a SASL authentication failure or a failed TLS
/// handshake, with librdkafka's text.
fn refusal_in(events: &[ConnectionEvent]) -> Option<(Refusal, String)> {
    events.iter().find_map(|e| {
        if e.code == Some(RDKafkaErrorCode::Authentication)
            || e.text.contains("SASL authentication error")
        {
            Some((Refusal::Authentication, e.text.clone()))
        } else if e.code == Some(RDKafkaErrorCode::SSL)
            || e.text.contains("SSL handshake failed")
            || is_tls_alert(&e.text)
        {
            Some((Refusal::Tls, e.text.clone()))
        } else {
            None
        }
    })
}

/// A TLS alert the broker sent after the handshake (OpenSSL: "ssl/tls alert bad certificate:
/// SSL alert number 42"): it refused the client's certificate, or wanted one.
fn is_tls_alert(text: &str) -> bool {
    text.contains("SSL alert number") || text.contains("ssl/tls alert")
}

/// The most specific connection error seen: "all brokers are down" only summarises earlier
/// ones, so it is used only when there is nothing else.
fn last_reason(events: &[ConnectionEvent]) -> Option<String> {
    let specific = events
        .iter()
        .rev()
        .find(|e| e.code != Some(RDKafkaErrorCode::AllBrokersDown));
    specific.or(events.last()).map(|e| e.text.clone())
}

/// What to check after a refusal, from librdkafka's report.
fn refusal_hint(cause: Refusal, detail: &str) -> String {
    match cause {
        // AWS_MSK_IAM is librdkafka's OAUTHBEARER with ferry's signed token.
        Refusal::Authentication
            if detail.contains("OAUTHBEARER") && detail.contains("Unsupported SASL mechanism") =>
        {
            "the broker refused the AWS_MSK_IAM (SASL/OAUTHBEARER) sign-in: this listener does \
             not offer OAUTHBEARER. MSK's IAM listeners are on port 9098 (9198 for public \
             access); other listeners take SCRAM or TLS"
                .into()
        }
        Refusal::Authentication if detail.contains("OAUTHBEARER") => {
            "the broker refused the AWS_MSK_IAM (SASL/OAUTHBEARER) token; check that the AWS \
             identity found by the credential chain may kafka-cluster:Connect to this cluster, \
             that the region is the cluster's and that the clock is right"
                .into()
        }
        Refusal::Authentication => "the broker refused the SASL credentials; check the \
             mechanism, user name and password (the user must exist for that mechanism)"
            .into(),
        Refusal::Tls if detail.contains("certificate verify failed") => {
            "the broker's certificate could not be verified; check that tls.ca_cert holds the \
             CA that issued it, that it has not expired and that it names the address in \
             bootstrap_servers"
                .into()
        }
        Refusal::Tls if detail.contains("client SSL authentication might be required") => {
            "the listener requires a client certificate; set tls.client_cert and tls.client_key"
                .into()
        }
        Refusal::Tls if detail.contains("PLAINTEXT broker listener") => {
            "the listener does not speak TLS (a PLAINTEXT or SASL_PLAINTEXT listener): remove \
             the tls block, or connect to the brokers' TLS port"
                .into()
        }
        Refusal::Tls if is_tls_alert(detail) => {
            "the broker refused this client's certificate, or its absence: a listener with \
             mutual TLS needs tls.client_cert and tls.client_key, with a certificate issued by a \
             CA the brokers trust and not expired"
                .into()
        }
        Refusal::Tls => {
            "check the TLS settings against the listener (is it a TLS listener?)".into()
        }
    }
}

/// What to check after OpenSSL refused the broker's certificate for `verdict` (its own words,
/// e.g. "certificate has expired").
fn certificate_hint(verdict: &str) -> String {
    let v = verdict.to_ascii_lowercase();
    let what = if v.contains("expired") {
        "the broker's certificate has expired; renew it on the brokers"
    } else if v.contains("not yet valid") {
        "the broker's certificate is not valid yet; check the brokers' and this machine's clocks"
    } else if v.contains("hostname mismatch")
        || v.contains("ip address mismatch")
        || v.contains("email address mismatch")
    {
        "the broker's certificate does not name the address in bootstrap_servers; connect by a \
         name (or IP address) its subject alternative names list, or reissue it"
    } else if v.contains("issuer") || v.contains("self-signed") || v.contains("self signed") {
        "the broker's certificate was not issued by a CA this client trusts; set tls.ca_cert to \
         the CA that issued it"
    } else {
        "the broker's certificate was refused"
    };
    format!("{what} (OpenSSL: {verdict})")
}

pub(crate) fn describe_kafka_error(e: &KafkaError) -> String {
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::Authentication) => {
            "authentication failed (check the SASL mechanism, username and password)".into()
        }
        Some(code) => format!("{e} ({code:?})"),
        None => e.to_string(),
    }
}

/// Partitions one CreateTopics or CreatePartitions request asks for at most. A KRaft controller
/// refuses a request that writes more than 10,000 metadata records ("Unable to perform
/// excessively large batch operation"), and a new partition is one record; half that leaves
/// room for the topic's own records and its configs.
pub const PARTITIONS_PER_REQUEST: i32 = 5_000;

/// The partition totals a topic of `partitions` goes through: created at the first, grown to
/// each next one by CreatePartitions; the last is `partitions`.
pub fn creation_steps(partitions: i32) -> Vec<i32> {
    let mut steps = vec![partitions.min(PARTITIONS_PER_REQUEST)];
    while let Some(&last) = steps.last()
        && last < partitions
    {
        steps.push((last + PARTITIONS_PER_REQUEST).min(partitions));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_topics_are_created_in_steps_the_controller_accepts() {
        assert_eq!(creation_steps(1), vec![1]);
        assert_eq!(creation_steps(5_000), vec![5_000]);
        assert_eq!(creation_steps(5_001), vec![5_000, 5_001]);
        assert_eq!(creation_steps(12_000), vec![5_000, 10_000, 12_000]);
        // A nonsensical width goes to the broker as asked, which names the problem.
        assert_eq!(creation_steps(0), vec![0]);
        assert_eq!(creation_steps(-1), vec![-1]);
    }

    fn event(code: Option<RDKafkaErrorCode>, text: &str) -> ConnectionEvent {
        ConnectionEvent {
            code,
            text: text.into(),
        }
    }

    #[test]
    fn a_tls_alert_from_the_broker_is_a_refused_client_certificate() {
        // What librdkafka 2.12 logs (level 3) when a mutual-TLS listener refuses the client's
        // certificate, or its absence, during the first request.
        let alert = "ssl://127.0.0.1:49094/bootstrap: Receive failed: error:0A000412:SSL \
                     routines::sslv3 alert bad certificate: SSL alert number 42 (after 0ms in \
                     state APIVERSION_QUERY)";
        let (cause, detail) = refusal_in(&[event(None, alert)]).unwrap();
        assert_eq!(cause, Refusal::Tls);
        assert!(refusal_hint(cause, &detail).contains("tls.client_cert"));
        let plaintext = "ssl://127.0.0.1:49095/bootstrap: SSL handshake failed: Disconnected: \
                         SSL connection closed by peer: connecting to a PLAINTEXT broker \
                         listener? (after 1ms in state SSL_HANDSHAKE)";
        let (cause, detail) = refusal_in(&[event(None, plaintext)]).unwrap();
        assert!(refusal_hint(cause, &detail).contains("does not speak TLS"));
        // A dropped connection is still not a refusal.
        let dropped = "127.0.0.1:49094/bootstrap: Disconnected: connection closed by peer";
        assert_eq!(refusal_in(&[event(None, dropped)]), None);
    }

    #[test]
    fn a_refused_password_or_handshake_is_final_and_a_transport_error_is_not() {
        let transport = event(
            Some(RDKafkaErrorCode::BrokerTransportFailure),
            "Connect to ipv4#127.0.0.1:1 failed: Connection refused",
        );
        assert_eq!(refusal_in(std::slice::from_ref(&transport)), None);
        let auth = "sasl_ssl://127.0.0.1:49092/bootstrap: SASL authentication error: \
                    Authentication failed during authentication due to invalid credentials";
        assert_eq!(
            refusal_in(&[transport.clone(), event(None, auth)]),
            Some((Refusal::Authentication, auth.into()))
        );
        assert_eq!(
            refusal_in(&[event(Some(RDKafkaErrorCode::Authentication), "x")]).map(|r| r.0),
            Some(Refusal::Authentication)
        );
        let tls = "ssl://127.0.0.1:49094/bootstrap: SSL handshake failed: error:0A000086:SSL \
                   routines::certificate verify failed";
        let (cause, detail) = refusal_in(&[event(Some(RDKafkaErrorCode::SSL), tls)]).unwrap();
        assert_eq!(cause, Refusal::Tls);
        assert!(refusal_hint(cause, &detail).contains("tls.ca_cert"));
        assert!(refusal_hint(Refusal::Authentication, auth).contains("password"));
        let iam = "sasl_ssl://b-1:9096/bootstrap: SASL OAUTHBEARER mechanism handshake failed: \
                   Broker: Unsupported SASL mechanism: broker's supported mechanisms: SCRAM-SHA-512";
        let hint = refusal_hint(Refusal::Authentication, iam);
        assert!(
            hint.contains("AWS_MSK_IAM") && hint.contains("9098"),
            "{hint}"
        );
        let hint = refusal_hint(
            Refusal::Authentication,
            "SASL authentication error: [OAUTHBEARER] Access denied",
        );
        assert!(hint.contains("kafka-cluster:Connect"), "{hint}");
    }

    #[test]
    fn the_last_specific_reason_wins_over_all_brokers_down() {
        let events = [
            event(Some(RDKafkaErrorCode::BrokerTransportFailure), "refused"),
            event(
                Some(RDKafkaErrorCode::AllBrokersDown),
                "1/1 brokers are down",
            ),
        ];
        assert_eq!(last_reason(&events).as_deref(), Some("refused"));
        assert_eq!(
            last_reason(&events[1..]).as_deref(),
            Some("1/1 brokers are down")
        );
        assert_eq!(last_reason(&[]), None);
    }

    #[test]
    fn openssls_verdicts_are_named() {
        let cases = [
            ("certificate has expired", "has expired"),
            ("certificate is not yet valid", "not valid yet"),
            ("hostname mismatch", "does not name the address"),
            ("IP address mismatch", "does not name the address"),
            (
                "unable to get local issuer certificate",
                "not issued by a CA",
            ),
            (
                "self-signed certificate in certificate chain",
                "not issued by a CA",
            ),
            ("certificate revoked", "was refused"),
        ];
        for (verdict, named) in cases {
            let hint = certificate_hint(verdict);
            assert!(hint.contains(named), "{verdict}: {hint}");
            assert!(hint.contains(verdict), "{hint}");
        }
    }

    #[test]
    fn a_refusal_reads_as_its_cause() {
        let e = AdminError::Refused {
            servers: "h:1".into(),
            cause: Refusal::Authentication,
            hint: "check the password".into(),
            detail: "SASL authentication error".into(),
        };
        assert_eq!(
            e.to_string(),
            "authentication failed with h:1: check the password (librdkafka: SASL authentication error)"
        );
    }
}
