//! Topic administration against a real cluster, with errors that keep the broker's words.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, ConfigSource, ResourceSpecifier};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use thiserror::Error;

use crate::connection::ConnectionConfig;
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
        let admin = Admin {
            client: Arc::new(client),
            servers: config.bootstrap(),
            timeout: config.timeout,
            requests: Arc::new(AtomicU64::new(0)),
        };
        admin.broker_count().await?;
        Ok(admin)
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
        let (result, context_error) = tokio::task::spawn_blocking(move || {
            let result = client.inner().fetch_metadata(None, timeout);
            let drained = native::drain_connection_errors(Handle::of(client.inner()));
            let reason = drained
                .or_else(|| client.inner().context().last())
                .map(|r| {
                    if r.contains("SASL authentication error") {
                        format!("authentication failed: {r}")
                    } else {
                        r
                    }
                });
            (result, reason)
        })
        .await
        .map_err(|e| AdminError::Other {
            operation: "metadata",
            message: e.to_string(),
        })?;
        result.map_err(|e| AdminError::Unreachable {
            servers,
            timeout,
            detail: match context_error {
                Some(reason) => format!("{} ({reason})", describe_kafka_error(&e)),
                None => describe_kafka_error(&e),
            },
        })
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
    pub async fn create_topic(
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
        self.blocking(move |rk, timeout| {
            native::incremental_alter_topic(rk, &name, &set, &reset, validate_only, timeout)
        })
        .await?
        .map_err(|e| AdminError::native("altering topic config", e))
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

pub(crate) fn describe_kafka_error(e: &KafkaError) -> String {
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::Authentication) => {
            "authentication failed (check the SASL mechanism, username and password)".into()
        }
        Some(code) => format!("{e} ({code:?})"),
        None => e.to_string(),
    }
}
