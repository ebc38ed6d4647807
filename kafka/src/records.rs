//! Record-level operations on one cluster, generic over what the records mean: read a
//! (compacted) partition into its latest value per key, the end offsets of many partitions in
//! one request, and keyed writes. Each is bounded by the caller's timeout and runs its blocking
//! librdkafka work on Tokio's blocking pool.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rdkafka::client::{Client, ClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext, PurgeConfig};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use thiserror::Error;

use crate::admin::ErrorCapture;
use crate::connection::ConnectionConfig;
use crate::native::{self, Handle, NativeError};

/// A failed record-level operation, naming the cluster and topic it was about.
#[derive(Debug, Error)]
pub enum KafkaClientError {
    /// The topic does not exist (callers reading a status topic treat this as "nothing yet").
    #[error("topic {topic} does not exist on {cluster}")]
    TopicNotFound { cluster: String, topic: String },
    #[error("topic {topic} has no partition {partition} on {cluster}")]
    PartitionNotFound {
        cluster: String,
        topic: String,
        partition: i32,
    },
    #[error("{operation} {topic} on {cluster}: {message} (Kafka error {code:?})")]
    Kafka {
        operation: &'static str,
        cluster: String,
        topic: String,
        code: RDKafkaErrorCode,
        message: String,
    },
    #[error("{operation} {topic} on {cluster}: not done within {timeout:?} ({progress})")]
    TimedOut {
        operation: &'static str,
        cluster: String,
        topic: String,
        timeout: Duration,
        progress: String,
    },
    #[error("{operation} {topic} on {cluster}: {message}")]
    Client {
        operation: &'static str,
        cluster: String,
        topic: String,
        message: String,
    },
}

impl KafkaClientError {
    /// The Kafka error code, when the broker or librdkafka gave one.
    pub fn code(&self) -> Option<RDKafkaErrorCode> {
        match self {
            KafkaClientError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The topic or partition does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            KafkaClientError::TopicNotFound { .. } | KafkaClientError::PartitionNotFound { .. }
        )
    }
}

/// Who is doing what where; turns lower-level failures into [`KafkaClientError`]s.
#[derive(Clone)]
struct Context {
    operation: &'static str,
    cluster: String,
    topic: String,
    timeout: Duration,
}

impl Context {
    fn new(
        operation: &'static str,
        conn: &ConnectionConfig,
        topic: &str,
        timeout: Duration,
    ) -> Context {
        Context {
            operation,
            cluster: conn.bootstrap(),
            topic: topic.to_string(),
            timeout,
        }
    }

    fn topic_not_found(&self) -> KafkaClientError {
        KafkaClientError::TopicNotFound {
            cluster: self.cluster.clone(),
            topic: self.topic.clone(),
        }
    }

    fn partition_not_found(&self, topic: &str, partition: i32) -> KafkaClientError {
        KafkaClientError::PartitionNotFound {
            cluster: self.cluster.clone(),
            topic: topic.to_string(),
            partition,
        }
    }

    fn timed_out(&self, progress: String) -> KafkaClientError {
        KafkaClientError::TimedOut {
            operation: self.operation,
            cluster: self.cluster.clone(),
            topic: self.topic.clone(),
            timeout: self.timeout,
            progress,
        }
    }

    fn client(&self, message: impl Into<String>) -> KafkaClientError {
        KafkaClientError::Client {
            operation: self.operation,
            cluster: self.cluster.clone(),
            topic: self.topic.clone(),
            message: message.into(),
        }
    }

    /// A coded failure; `connection` is the last connection-level error librdkafka logged,
    /// which explains a timeout or transport failure (refused connection, bad credentials).
    fn kafka(
        &self,
        code: RDKafkaErrorCode,
        message: String,
        connection: Option<String>,
    ) -> KafkaClientError {
        let message = match connection {
            Some(c) if is_connection_symptom(code) => {
                format!("{message} (last connection error: {c})")
            }
            _ => message,
        };
        if code == RDKafkaErrorCode::OperationTimedOut {
            return self.timed_out(message);
        }
        KafkaClientError::Kafka {
            operation: self.operation,
            cluster: self.cluster.clone(),
            topic: self.topic.clone(),
            code,
            message,
        }
    }

    fn native(&self, e: NativeError, connection: Option<String>) -> KafkaClientError {
        self.kafka(e.code, e.message, connection)
    }

    fn rdkafka(&self, e: KafkaError, connection: Option<String>) -> KafkaClientError {
        match e.rdkafka_error_code() {
            Some(code) => self.kafka(code, e.to_string(), connection),
            None => self.client(e.to_string()),
        }
    }
}

fn is_connection_symptom(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::Authentication
            | RDKafkaErrorCode::SSL
            | RDKafkaErrorCode::Resolve
    )
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Runs `work` on the blocking pool; a panic there becomes an error, not a crash.
async fn blocking<T: Send + 'static>(
    ctx: &Context,
    work: impl FnOnce() -> Result<T, KafkaClientError> + Send + 'static,
) -> Result<T, KafkaClientError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ctx.client(format!("worker thread failed: {e}")))?
}

/// Fails unless `topic` exists with `partition`, in one metadata request. Consumers and the
/// writer below never ask the broker to create topics, so this does not create one either.
fn check_partition<C: Captures>(
    client: &Client<C>,
    ctx: &Context,
    partition: i32,
    deadline: Instant,
) -> Result<(), KafkaClientError> {
    let metadata = client
        .fetch_metadata(Some(&ctx.topic), remaining(deadline))
        .map_err(|e| ctx.rdkafka(e, last_error(client)))?;
    let Some(topic) = metadata.topics().iter().find(|t| t.name() == ctx.topic) else {
        return Err(ctx.topic_not_found());
    };
    match topic.error().map(RDKafkaErrorCode::from) {
        None | Some(RDKafkaErrorCode::NoError) => {}
        Some(RDKafkaErrorCode::UnknownTopicOrPartition) => return Err(ctx.topic_not_found()),
        Some(code) => return Err(ctx.kafka(code, code.to_string(), None)),
    }
    if topic.partitions().iter().any(|p| p.id() == partition) {
        Ok(())
    } else {
        Err(ctx.partition_not_found(&ctx.topic, partition))
    }
}

/// A client context that remembers connection-level errors.
trait Captures: ClientContext {
    fn capture(&self) -> &ErrorCapture;
}

impl Captures for ErrorCapture {
    fn capture(&self) -> &ErrorCapture {
        self
    }
}

impl Captures for WriteContext {
    fn capture(&self) -> &ErrorCapture {
        &self.capture
    }
}

/// The last connection-level error the client saw: an error event still queued on its main
/// queue, or one already handed to its context.
fn last_error<C: Captures>(client: &Client<C>) -> Option<String> {
    native::drain_connection_errors(Handle::of(client))
        .or_else(|| client.context().capture().last())
}

fn create<T, C>(ctx: &Context, config: &ClientConfig, context: C) -> Result<T, KafkaClientError>
where
    T: rdkafka::config::FromClientConfigAndContext<C>,
    C: ClientContext,
{
    config
        .create_with_context(context)
        .map_err(|e| ctx.client(format!("creating the Kafka client: {e}")))
}

// ------------------------------------------------------------------ read_latest_by_key

/// Group id of the reader. It is never joined and nothing is committed under it (the reader
/// assigns its partition itself), so it never appears on the broker; librdkafka only needs one
/// to allow `assign`.
const READER_GROUP: &str = "ferry-kafka.read-latest-by-key";

/// Reads one partition from its beginning up to the end seen when the read starts and returns
/// the latest value of each key; a tombstone (a record without a value) removes its key.
/// Only committed records are read (read_committed), so the end is the last stable offset.
/// Keys and values are read as UTF-8 (invalid bytes replaced). A missing topic is
/// [`KafkaClientError::TopicNotFound`]; not reaching the end within `timeout` is
/// [`KafkaClientError::TimedOut`].
pub async fn read_latest_by_key(
    conn: &ConnectionConfig,
    topic: &str,
    partition: i32,
    timeout: Duration,
) -> Result<BTreeMap<String, String>, KafkaClientError> {
    let ctx = Context::new("reading", conn, topic, timeout);
    let config = reader_config(conn);
    let job = ctx.clone();
    blocking(&ctx, move || read_blocking(&job, &config, partition)).await
}

fn reader_config(conn: &ConnectionConfig) -> ClientConfig {
    let mut c = conn.client_config();
    c.set("group.id", READER_GROUP)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        // The end of the partition is reported as an event, which also covers an end made of
        // transaction markers (no record to see there).
        .set("enable.partition.eof", "true");
    c
}

fn read_blocking(
    ctx: &Context,
    config: &ClientConfig,
    partition: i32,
) -> Result<BTreeMap<String, String>, KafkaClientError> {
    let deadline = Instant::now() + ctx.timeout;
    let consumer: BaseConsumer<ErrorCapture> = create(ctx, config, ErrorCapture::default())?;
    crate::msk_iam::authenticate_from(consumer.client(), config)
        .map_err(|e| ctx.client(e.to_string()))?;
    let client = consumer.client();
    check_partition(client, ctx, partition, deadline)?;
    let (low, end) = consumer
        .fetch_watermarks(&ctx.topic, partition, remaining(deadline))
        .map_err(|e| ctx.rdkafka(e, last_error(client)))?;
    let mut latest = BTreeMap::new();
    if end <= low {
        return Ok(latest);
    }
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&ctx.topic, partition, Offset::Beginning)
        .and_then(|()| consumer.assign(&assignment))
        .map_err(|e| ctx.rdkafka(e, None))?;
    let mut next = low;
    loop {
        let left = remaining(deadline);
        if left.is_zero() {
            let progress = format!("read up to offset {next} of {end}");
            return Err(match last_error(client) {
                Some(c) => ctx.timed_out(format!("{progress}; last connection error: {c}")),
                None => ctx.timed_out(progress),
            });
        }
        match consumer.poll(left.min(Duration::from_millis(200))) {
            Some(Ok(m)) => {
                apply_record(&mut latest, m.key(), m.payload());
                next = m.offset() + 1;
                if next >= end {
                    break;
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) if p == partition => break,
            Some(Err(e)) => return Err(ctx.rdkafka(e, last_error(client))),
            None => {}
        }
    }
    Ok(latest)
}

/// Folds one record into the latest-value-per-key view. Records without a key carry nothing
/// to fold and are skipped.
fn apply_record(latest: &mut BTreeMap<String, String>, key: Option<&[u8]>, value: Option<&[u8]>) {
    let Some(key) = key else {
        return;
    };
    let key = String::from_utf8_lossy(key);
    match value {
        Some(v) => {
            latest.insert(key.into_owned(), String::from_utf8_lossy(v).into_owned());
        }
        None => {
            latest.remove(key.as_ref());
        }
    }
}

// ------------------------------------------------------------------ end_offsets

/// The end offset of every partition given, from one batched ListOffsets request (librdkafka
/// sends one request per partition leader, never one per partition). Offsets are read_committed
/// ends (last stable offsets): where a read_committed consumer, such as a copier, stops.
/// Duplicates in `partitions` are answered once. A topic the cluster does not know is
/// [`KafkaClientError::TopicNotFound`], a partition beyond a topic's count
/// [`KafkaClientError::PartitionNotFound`].
pub async fn end_offsets(
    conn: &ConnectionConfig,
    partitions: &[(String, i32)],
    timeout: Duration,
) -> Result<HashMap<(String, i32), i64>, KafkaClientError> {
    let wanted: Vec<(String, i32)> = partitions
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let ctx = Context::new(
        "listing end offsets of",
        conn,
        &topics_label(&wanted),
        timeout,
    );
    // No group and no reads: the client only sends the admin request.
    let config = conn.client_config();
    let job = ctx.clone();
    blocking(&ctx, move || {
        let deadline = Instant::now() + job.timeout;
        let consumer: BaseConsumer<ErrorCapture> = create(&job, &config, ErrorCapture::default())?;
        crate::msk_iam::authenticate_from(consumer.client(), &config)
            .map_err(|e| job.client(e.to_string()))?;
        let client = consumer.client();
        let answers = match native::list_end_offsets(Handle::of(client), &wanted, true, job.timeout)
        {
            Ok(answers) => answers,
            // When no partition asked for exists, librdkafka fails the whole request without
            // saying which; one metadata request finds the first missing one.
            Err(e)
                if matches!(
                    e.code,
                    RDKafkaErrorCode::NoEnt | RDKafkaErrorCode::UnknownTopicOrPartition
                ) =>
            {
                return Err(find_missing(client, &job, &wanted, deadline)
                    .unwrap_or_else(|| job.native(e, None)));
            }
            Err(e) => return Err(job.native(e, last_error(client))),
        };
        collect_offsets(&job, &wanted, answers)
    })
    .await
}

/// Per partition, its offset or the error code it alone got.
pub type EachEndOffset = HashMap<(String, i32), Result<i64, RDKafkaErrorCode>>;

/// The latest offset (read_uncommitted) of each partition, or the error it alone got, asked
/// through a client the caller holds; blocking, within `timeout`. Each partition is answered
/// on its own (admin ListOffsets), so one whose leader has not made its log yet is an error of
/// its own, where a consumer's `offsets_for_times` retries the whole request to its timeout
/// and fails it. `conn` names the cluster in errors; the call fails as a whole only if the
/// request does.
pub fn each_end_offset<C: ClientContext>(
    client: &Client<C>,
    conn: &ConnectionConfig,
    partitions: &[(String, i32)],
    timeout: Duration,
) -> Result<EachEndOffset, KafkaClientError> {
    if partitions.is_empty() {
        return Ok(HashMap::new());
    }
    let ctx = Context::new(
        "listing end offsets of",
        conn,
        &topics_label(partitions),
        timeout,
    );
    let answers = native::list_end_offsets(Handle::of(client), partitions, false, timeout)
        .map_err(|e| ctx.native(e, None))?;
    Ok(answers
        .into_iter()
        .map(|(key, answer)| (key, answer.map_err(|e| e.code)))
        .collect())
}

/// The first of `wanted` whose topic or partition the cluster does not have, if any (and if
/// the metadata request answers in the time left).
fn find_missing<C: Captures>(
    client: &Client<C>,
    ctx: &Context,
    wanted: &[(String, i32)],
    deadline: Instant,
) -> Option<KafkaClientError> {
    let metadata = client.fetch_metadata(None, remaining(deadline)).ok()?;
    let partitions: HashMap<&str, Vec<i32>> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name(), t.partitions().iter().map(|p| p.id()).collect()))
        .collect();
    wanted
        .iter()
        .find_map(|(topic, partition)| match partitions.get(topic.as_str()) {
            None => Some(KafkaClientError::TopicNotFound {
                cluster: ctx.cluster.clone(),
                topic: topic.clone(),
            }),
            Some(ids) if !ids.contains(partition) => {
                Some(ctx.partition_not_found(topic, *partition))
            }
            Some(_) => None,
        })
}

/// Names the topics of a batch for error messages: all of them when few, else a count.
fn topics_label(partitions: &[(String, i32)]) -> String {
    let topics: BTreeSet<&str> = partitions.iter().map(|(t, _)| t.as_str()).collect();
    const SHOWN: usize = 3;
    let mut label = topics
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if topics.len() > SHOWN {
        label.push_str(&format!(" and {} more topics", topics.len() - SHOWN));
    }
    label
}

/// Matches each wanted partition with its answer; the first failure wins, named by its own
/// topic and partition.
fn collect_offsets(
    ctx: &Context,
    wanted: &[(String, i32)],
    mut answers: native::PartitionOffsets,
) -> Result<HashMap<(String, i32), i64>, KafkaClientError> {
    let mut out = HashMap::with_capacity(wanted.len());
    for key in wanted {
        let partition_ctx = || Context {
            topic: format!("{} partition {}", key.0, key.1),
            ..ctx.clone()
        };
        match answers.remove(key) {
            Some(Ok(offset)) => {
                out.insert(key.clone(), offset);
            }
            // librdkafka looks partitions up in metadata before asking their leaders: a topic
            // the cluster does not know comes back as UnknownTopicOrPartition (the broker's
            // code), a partition beyond the topic's count as UnknownPartition (librdkafka's).
            Some(Err(e))
                if matches!(
                    e.code,
                    RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic
                ) =>
            {
                return Err(KafkaClientError::TopicNotFound {
                    cluster: ctx.cluster.clone(),
                    topic: key.0.clone(),
                });
            }
            Some(Err(e)) if e.code == RDKafkaErrorCode::UnknownPartition => {
                return Err(ctx.partition_not_found(&key.0, key.1));
            }
            Some(Err(e)) => return Err(partition_ctx().native(e, None)),
            None => {
                return Err(partition_ctx().kafka(
                    RDKafkaErrorCode::Fail,
                    "the broker's answer left this partition out".into(),
                    None,
                ));
            }
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------ write_keyed

/// Producer context that records delivery outcomes and connection errors.
#[derive(Default)]
struct WriteContext {
    capture: ErrorCapture,
    delivered: AtomicUsize,
    first_failure: Mutex<Option<(RDKafkaErrorCode, String)>>,
}

impl ClientContext for WriteContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = ErrorCapture::ENABLE_REFRESH_OAUTH_TOKEN;
    fn generate_oauth_token(
        &self,
        oauthbearer_config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        self.capture.generate_oauth_token(oauthbearer_config)
    }
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.capture.log(level, fac, message);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self.capture.error(error, reason);
    }
}

impl ProducerContext for WriteContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, m)) => {
                let code = e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail);
                let key = m.key().map(String::from_utf8_lossy).unwrap_or_default();
                if let Ok(mut first) = self.first_failure.lock() {
                    first.get_or_insert((code, format!("record with key {key:?}: {e}")));
                }
            }
        }
    }
}

/// Writes keyed records to one partition, in order; `None` as the value writes a tombstone.
/// The producer is idempotent (no duplicates from its own retries) and waits for all in-sync
/// replicas; everything is delivered, or an error says what was not, within `timeout`. The
/// topic is never created by this call: a missing one is [`KafkaClientError::TopicNotFound`].
pub async fn write_keyed(
    conn: &ConnectionConfig,
    topic: &str,
    partition: i32,
    records: &[(String, Option<Vec<u8>>)],
    timeout: Duration,
) -> Result<(), KafkaClientError> {
    if records.is_empty() {
        return Ok(());
    }
    let ctx = Context::new("writing to", conn, topic, timeout);
    let config = writer_config(conn, timeout);
    let records = records.to_vec();
    let job = ctx.clone();
    blocking(&ctx, move || {
        write_blocking(&job, &config, partition, &records)
    })
    .await
}

fn writer_config(conn: &ConnectionConfig, timeout: Duration) -> ClientConfig {
    let mut c = conn.client_config();
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("allow.auto.create.topics", "false")
        // librdkafka gives up on a record after this long, so delivery is bounded too.
        .set(
            "message.timeout.ms",
            native::timeout_ms(timeout).to_string(),
        );
    c
}

fn write_blocking(
    ctx: &Context,
    config: &ClientConfig,
    partition: i32,
    records: &[(String, Option<Vec<u8>>)],
) -> Result<(), KafkaClientError> {
    let deadline = Instant::now() + ctx.timeout;
    let producer: BaseProducer<WriteContext> = create(ctx, config, WriteContext::default())?;
    crate::msk_iam::authenticate_from(producer.client(), config)
        .map_err(|e| ctx.client(e.to_string()))?;
    let client = producer.client();
    check_partition(client, ctx, partition, deadline)?;
    let result = produce_all(ctx, &producer, partition, records, deadline);
    if result.is_err() {
        // Nothing may be left queued when the producer is destroyed.
        producer.purge(PurgeConfig::default().queue().inflight());
    }
    result
}

fn produce_all(
    ctx: &Context,
    producer: &BaseProducer<WriteContext>,
    partition: i32,
    records: &[(String, Option<Vec<u8>>)],
    deadline: Instant,
) -> Result<(), KafkaClientError> {
    let client = producer.client();
    for (i, (key, value)) in records.iter().enumerate() {
        let mut record = BaseRecord::to(&ctx.topic)
            .partition(partition)
            .key(key.as_str());
        if let Some(v) = value {
            record = record.payload(v.as_slice());
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if remaining(deadline).is_zero() {
                        return Err(
                            ctx.timed_out(format!("queued {i} of {} records", records.len()))
                        );
                    }
                    // Serve delivery reports so the queue drains, then try again.
                    producer.poll(Duration::from_millis(50));
                    record = back;
                }
                Err((e, _)) => return Err(ctx.rdkafka(e, last_error(client))),
            }
        }
    }
    let flushed = flush_promptly(producer, remaining(deadline));
    let delivered = client.context().delivered.load(Ordering::Relaxed);
    if let Some((code, message)) = client
        .context()
        .first_failure
        .lock()
        .ok()
        .and_then(|f| f.clone())
    {
        return Err(ctx.kafka(code, message, last_error(client)));
    }
    if let Err(e) = flushed {
        let connection = last_error(client);
        return Err(match e.rdkafka_error_code() {
            Some(RDKafkaErrorCode::OperationTimedOut) | None => {
                let progress = format!("{delivered} of {} records delivered", records.len());
                ctx.timed_out(match connection {
                    Some(c) => format!("{progress}; last connection error: {c}"),
                    None => progress,
                })
            }
            Some(_) => ctx.rdkafka(e, connection),
        });
    }
    if delivered != records.len() {
        return Err(ctx.client(format!(
            "{delivered} of {} records delivered and no error reported",
            records.len()
        )));
    }
    if let Some((code, reason)) = client.fatal_error() {
        return Err(ctx.kafka(code, format!("producer failed: {reason}"), None));
    }
    Ok(())
}

/// Waits until every record handed to `producer` is delivered or failed, within `timeout`: the
/// flush every producer of ferry uses. rust-rdkafka's `flush` serves delivery reports in polls
/// of up to 100 ms and looks again only after each: records the broker answered within
/// milliseconds took 100 ms to flush, twice per ferry-mirror commit (the records, then the
/// offset mapping inside `commit_transaction`), and the copy loop waits for its commit rounds
/// (4.1 s of a 10.4 s copy of 2 GB). Here the broker threads are woken once, as a flush does
/// (waking them on every look would make each walk all its partitions again), and delivery
/// reports are served in 1 ms polls until none is outstanding.
pub fn flush_promptly<C: ProducerContext>(
    producer: &BaseProducer<C>,
    timeout: Duration,
) -> KafkaResult<()> {
    let deadline = Instant::now() + timeout;
    match producer.flush(Duration::ZERO) {
        Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)) => {}
        done => return done,
    }
    while producer.in_flight_count() > 0 {
        if Instant::now() >= deadline {
            return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
        }
        producer.poll(Duration::from_millis(1));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context::new(
            "listing end offsets of",
            &ConnectionConfig::plaintext("k1:9092,k2:9092"),
            "a, b",
            Duration::from_secs(5),
        )
    }

    #[test]
    fn latest_value_wins_and_tombstones_remove() {
        let mut latest = BTreeMap::new();
        apply_record(&mut latest, Some(b"a"), Some(b"1"));
        apply_record(&mut latest, Some(b"b"), Some(b"2"));
        apply_record(&mut latest, Some(b"a"), Some(b"3"));
        apply_record(&mut latest, Some(b"b"), None);
        apply_record(&mut latest, None, Some(b"keyless"));
        apply_record(&mut latest, Some(b"gone"), None);
        assert_eq!(latest, BTreeMap::from([("a".to_string(), "3".to_string())]));
    }

    #[test]
    fn labels_name_few_topics_and_count_the_rest() {
        let parts = |names: &[&str]| names.iter().map(|n| (n.to_string(), 0)).collect::<Vec<_>>();
        assert_eq!(topics_label(&parts(&["b", "a", "a"])), "a, b");
        assert_eq!(
            topics_label(&parts(&["a", "b", "c", "d", "e"])),
            "a, b, c and 2 more topics"
        );
    }

    #[test]
    fn offsets_are_matched_to_the_partitions_asked_for() {
        let wanted = vec![("a".to_string(), 0), ("a".to_string(), 1)];
        let answers = HashMap::from([
            (("a".to_string(), 0), Ok(10)),
            (("a".to_string(), 1), Ok(0)),
            (("other".to_string(), 0), Ok(99)),
        ]);
        let got = collect_offsets(&ctx(), &wanted, answers).unwrap();
        assert_eq!(
            got,
            HashMap::from([(("a".to_string(), 0), 10), (("a".to_string(), 1), 0)])
        );
    }

    #[test]
    fn per_partition_errors_name_their_partition() {
        let wanted = vec![("a".to_string(), 0), ("b".to_string(), 3)];
        let unknown = HashMap::from([
            (("a".to_string(), 0), Ok(1)),
            (
                ("b".to_string(), 3),
                Err(NativeError::new(RDKafkaErrorCode::UnknownPartition, "x")),
            ),
        ]);
        let e = collect_offsets(&ctx(), &wanted, unknown).unwrap_err();
        assert!(e.is_not_found());
        assert_eq!(
            e.to_string(),
            "topic b has no partition 3 on k1:9092,k2:9092"
        );
        let absent = HashMap::from([(
            ("a".to_string(), 0),
            Err(NativeError::new(
                RDKafkaErrorCode::UnknownTopicOrPartition,
                "x",
            )),
        )]);
        let e = collect_offsets(&ctx(), &wanted, absent).unwrap_err();
        assert_eq!(e.to_string(), "topic a does not exist on k1:9092,k2:9092");

        let refused = HashMap::from([(
            ("a".to_string(), 0),
            Err(NativeError::new(
                RDKafkaErrorCode::TopicAuthorizationFailed,
                "not allowed",
            )),
        )]);
        let e = collect_offsets(&ctx(), &wanted, refused).unwrap_err();
        assert_eq!(e.code(), Some(RDKafkaErrorCode::TopicAuthorizationFailed));
        assert_eq!(
            e.to_string(),
            "listing end offsets of a partition 0 on k1:9092,k2:9092: not allowed \
             (Kafka error TopicAuthorizationFailed)"
        );

        let missing = HashMap::from([(("a".to_string(), 0), Ok(1))]);
        let e = collect_offsets(&ctx(), &wanted, missing).unwrap_err();
        assert!(e.to_string().contains("b partition 3"), "{e}");
    }

    #[test]
    fn timeouts_and_transport_failures_carry_the_connection_error() {
        let e = ctx().kafka(
            RDKafkaErrorCode::OperationTimedOut,
            "Failed to query partition leaders".into(),
            Some("Connection refused".into()),
        );
        assert!(matches!(e, KafkaClientError::TimedOut { .. }), "{e:?}");
        assert!(
            e.to_string()
                .contains("last connection error: Connection refused"),
            "{e}"
        );
        let e = ctx().kafka(
            RDKafkaErrorCode::PolicyViolation,
            "no".into(),
            Some("stale".into()),
        );
        assert!(!e.to_string().contains("stale"), "{e}");
    }

    #[test]
    fn a_flush_that_cannot_finish_ends_at_its_bound_with_a_timeout() {
        let producer: BaseProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:9")
            .create()
            .expect("a producer");
        producer
            .send(BaseRecord::<str, str>::to("nowhere").payload("x"))
            .map_err(|(e, _)| e)
            .expect("queued");
        let started = Instant::now();
        let flushed = flush_promptly(&producer, Duration::from_millis(300));
        assert!(
            matches!(
                flushed,
                Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut))
            ),
            "{flushed:?}"
        );
        assert!(started.elapsed() >= Duration::from_millis(300));
        let empty: BaseProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:9")
            .create()
            .expect("a producer");
        assert!(
            flush_promptly(&empty, Duration::ZERO).is_ok(),
            "nothing to wait for"
        );
    }
}
