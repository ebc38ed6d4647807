//! Ending a slot's transaction on the target: the records, the offset-mapping records and the
//! progress of all the slot's partitions commit together (exactly-once), or records, then
//! mappings, then progress (at-least-once); and aborting it.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::TopicPartitionList;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

use super::decision::AbortReason;
use super::partition::PartitionState;
use super::slot::{Rewind, SlotCopy};
use super::{CALL_TIMEOUT, Setup};
use crate::mapping::{MappingRecord, runs_from_pairs};
use crate::metrics::Metrics;
use crate::progress::{self, ProgressMeta};
use ferry_kafka::transactions::{TxnOffsetError, send_offsets_to_transaction};

/// What a record sent by a slot's producer is: a copied record (its partition's position in
/// the slot and its source offset), or the run's own bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    Copied { partition: u32, source: i64 },
    Bookkeeping,
}

/// Delivery reports of one slot's producer: (partition in the slot, source offset, target
/// offset) of each copied record.
#[derive(Default)]
pub(crate) struct DeliveryLog {
    delivered: Mutex<Vec<(u32, i64, i64)>>,
    failure: Mutex<Option<String>>,
}

impl ClientContext for DeliveryLog {
    // MSK IAM tokens when the target side says AWS_MSK_IAM (a no-op otherwise), handed out
    // whenever the copy loop polls or flushes the slot's producer.
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;
    fn generate_oauth_token(
        &self,
        oauthbearer_config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        ferry_kafka::msk_iam::oauth_token(oauthbearer_config)
    }
}

impl ProducerContext for DeliveryLog {
    type DeliveryOpaque = Box<Sent>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<Sent>) {
        match (result, *sent) {
            (Ok(m), Sent::Copied { partition, source }) => {
                if let Ok(mut d) = self.delivered.lock() {
                    d.push((partition, source, m.offset()));
                }
            }
            (Ok(_), Sent::Bookkeeping) => {}
            (Err((e, _)), _) => {
                if let Ok(mut f) = self.failure.lock() {
                    f.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
}

impl DeliveryLog {
    fn take(&self) -> (Vec<(u32, i64, i64)>, Option<String>) {
        let pairs = std::mem::take(&mut *self.delivered.lock().expect("delivery log lock"));
        let failure = self.failure.lock().expect("delivery log lock").take();
        (pairs, failure)
    }

    /// Whether a record was reported as not delivered since the last commit or abort.
    pub fn failed(&self) -> bool {
        self.failure.lock().is_ok_and(|f| f.is_some())
    }
}

#[derive(Debug)]
pub(crate) enum CommitOutcome {
    /// The transaction's records and bytes (per source topic) now count as copied.
    Committed(Vec<(String, u64, u64)>),
    /// The partitions that had records in it are rewound to their last commit; the records
    /// will be copied again.
    Aborted(String, Vec<Rewind>),
    Fenced(String),
}

/// Commits (`abort` is `None`) or aborts the slot's transaction.
pub(crate) fn end(slot: &mut SlotCopy, abort: Option<AbortReason>, setup: &Setup) -> CommitOutcome {
    match abort {
        None => commit(slot, setup),
        Some(reason) => fail(slot, setup, reason.to_string(), false),
    }
}

/// Ends several slots' transactions at once: each is a broker round trip of its own.
pub(crate) fn end_in_parallel(
    work: Vec<(&mut SlotCopy, Option<AbortReason>)>,
    setup: &Setup,
) -> Vec<CommitOutcome> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .into_iter()
            .map(|(slot, abort)| scope.spawn(move || end(slot, abort, setup)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    CommitOutcome::Aborted("the commit thread panicked".into(), Vec::new())
                })
            })
            .collect()
    })
}

/// Ends the slot's current transaction: every partition's records, mapping and progress
/// together.
fn commit(slot: &mut SlotCopy, setup: &Setup) -> CommitOutcome {
    let spec = &setup.spec;
    if setup.exactly_once && !slot.open {
        // Progress alone (gaps skipped up to the goal) still goes through a transaction.
        if let Err(e) = slot.producer.begin_transaction() {
            return fail(slot, setup, e.to_string(), is_fenced(&e));
        }
        slot.open = true;
    }
    let started = Instant::now();
    if let Err(e) = ferry_kafka::flush_promptly(&*slot.producer, CALL_TIMEOUT) {
        return fail(slot, setup, format!("flushing records: {e}"), is_fenced(&e));
    }
    let flushed = started.elapsed();
    let (mut delivered, failure) = slot.producer.context().take();
    if let Some(f) = failure {
        return fail(
            slot,
            setup,
            format!("a record was not delivered: {f}"),
            false,
        );
    }
    delivered.sort_unstable();
    let mut mappings = Vec::new();
    for group in delivered.chunk_by(|a, b| a.0 == b.0) {
        let Some(pc) = slot.partitions.get(group[0].0 as usize) else {
            continue;
        };
        let pairs: Vec<(i64, i64)> = group.iter().map(|&(_, s, t)| (s, t)).collect();
        mappings.push(MappingRecord {
            source_topic: pc.source_topic.clone(),
            target_topic: pc.target_topic.clone(),
            partition: pc.partition,
            runs: runs_from_pairs(&pairs),
        });
    }
    let topic = spec.offsets_topic();
    for record in &mappings {
        let key = record.key();
        let value = match serde_json::to_vec(record) {
            Ok(v) => v,
            Err(e) => {
                return fail(
                    slot,
                    setup,
                    format!("encoding the offset mapping: {e}"),
                    false,
                );
            }
        };
        let rec = BaseRecord::with_opaque_to(&topic, Box::new(Sent::Bookkeeping))
            .partition(0)
            .key(&key)
            .payload(&value);
        if let Err((e, _)) = slot.producer.send(rec) {
            return fail(
                slot,
                setup,
                format!("writing the offset mapping: {e}"),
                is_fenced(&e),
            );
        }
    }
    let mut entries = Vec::new();
    let mut counted: Vec<(String, u64, u64)> = Vec::new();
    for pc in slot.partitions.iter().filter(|pc| pc.progress.in_commit()) {
        let (records, bytes) = pc.progress.open_counts();
        entries.push((
            (pc.target_topic.clone(), pc.partition),
            pc.progress.next_source.max(0),
            ProgressMeta {
                source_topic: pc.source_topic.clone(),
                goal: pc.progress.goal,
                records: pc.progress.committed_records + records,
                bytes: pc.progress.committed_bytes + bytes,
            },
        ));
        if records > 0 {
            match counted.iter_mut().find(|(t, _, _)| *t == pc.source_topic) {
                Some((_, r, b)) => {
                    *r += records;
                    *b += bytes;
                }
                None => counted.push((pc.source_topic.clone(), records, bytes)),
            }
        }
    }
    let offsets = match progress::offsets_list(&entries) {
        Ok(o) => o,
        Err(e) => return fail(slot, setup, format!("{e:#}"), false),
    };
    let before_offsets = started.elapsed();
    if setup.exactly_once {
        if !entries.is_empty() {
            match send_offsets_within(&slot.producer, offsets, &spec.progress_group()) {
                Ok(()) => {}
                Err(OffsetsError::Failed(e)) => return fail(slot, setup, e.to_string(), e.fatal),
                Err(OffsetsError::NoAnswer) => {
                    slot.given_up = true;
                    let reason = format!(
                        "sending offsets to the transaction: no answer within {}s; the \
                         producer is given up and the slot taken again",
                        SEND_OFFSETS_WAIT.as_secs()
                    );
                    return fail(slot, setup, reason, true);
                }
            }
        }
        let before_commit = started.elapsed();
        // The mapping records first: `commit_transaction` flushes the rust-rdkafka way.
        if let Err(e) = ferry_kafka::flush_promptly(&*slot.producer, CALL_TIMEOUT) {
            return fail(
                slot,
                setup,
                format!("flushing the offset mapping: {e}"),
                is_fenced(&e),
            );
        }
        if let Err(e) = slot.producer.commit_transaction(CALL_TIMEOUT) {
            return fail(slot, setup, format!("committing: {e}"), is_fenced(&e));
        }
        tracing::debug!(
            slot = slot.index,
            flush_ms = flushed.as_millis() as u64,
            offsets_ms = (before_commit - before_offsets).as_millis() as u64,
            commit_ms = (started.elapsed() - before_commit).as_millis() as u64,
            "transaction committed"
        );
    } else {
        // At-least-once: records first, then progress. A crash in between copies them again.
        if let Err(e) = ferry_kafka::flush_promptly(&*slot.producer, CALL_TIMEOUT) {
            return fail(
                slot,
                setup,
                format!("flushing the offset mapping: {e}"),
                false,
            );
        }
        if !entries.is_empty()
            && let Err(e) = setup.progress_client.commit(&offsets, CommitMode::Sync)
        {
            return fail(slot, setup, format!("committing progress: {e}"), false);
        }
    }
    slot.open = false;
    for pc in slot.partitions.iter_mut() {
        if pc.progress.in_commit() {
            pc.progress.committed();
        }
    }
    CommitOutcome::Committed(counted)
}

/// Bound of `send_offsets_to_transaction` (it takes milliseconds when the coordinator answers;
/// one that fails is redone with the rest of the transaction).
const SEND_OFFSETS_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a slot waits for that call before it gives its producer up.
const SEND_OFFSETS_WAIT: Duration = Duration::from_secs(30);

enum OffsetsError {
    Failed(TxnOffsetError),
    /// The call did not return within `SEND_OFFSETS_WAIT`.
    NoAnswer,
}

/// `send_offsets_to_transaction` with a bound that holds. librdkafka waits for that call's
/// requests with no bound of its own (the timeout is left to the request chain), and after a
/// target broker restart a worker was caught waiting in it for good. The call runs on a thread
/// of its own holding the producer; a call still running after `SEND_OFFSETS_WAIT` gives the
/// producer up, and the stuck one is destroyed only if its call ever returns.
fn send_offsets_within(
    producer: &Arc<BaseProducer<DeliveryLog>>,
    offsets: TopicPartitionList,
    group: &str,
) -> Result<(), OffsetsError> {
    let (answer, answered) = mpsc::channel();
    let (producer, group) = (Arc::clone(producer), group.to_string());
    let spawned = std::thread::Builder::new()
        .name("ferry-txn-offsets".into())
        .spawn(move || {
            let result =
                send_offsets_to_transaction(&producer, &offsets, &group, SEND_OFFSETS_TIMEOUT);
            // The slot may have stopped waiting.
            let _ = answer.send(result);
        });
    if let Err(e) = spawned {
        return Err(OffsetsError::Failed(TxnOffsetError {
            message: format!("no thread for the call: {e}"),
            requires_abort: true,
            fatal: false,
        }));
    }
    match answered.recv_timeout(SEND_OFFSETS_WAIT) {
        Ok(result) => result.map_err(OffsetsError::Failed),
        Err(_) => Err(OffsetsError::NoAnswer),
    }
}

pub(crate) fn is_fenced(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::Fenced
        )
    ) || matches!(e, KafkaError::Transaction(t) if t.is_fatal())
}

/// Gives up the slot's open work: fenced, it is left to its new owner; otherwise the
/// transaction is aborted and its partitions rewind to their last commit.
pub(crate) fn fail(
    slot: &mut SlotCopy,
    setup: &Setup,
    reason: String,
    fenced: bool,
) -> CommitOutcome {
    if fenced {
        slot.fenced = true;
        slot.open = false;
        for pc in &mut slot.partitions {
            pc.progress.fenced();
        }
        return CommitOutcome::Fenced(reason);
    }
    if setup.exactly_once
        && slot.open
        && let Err(e) = slot.producer.abort_transaction(CALL_TIMEOUT)
    {
        // Whatever the abort left open is aborted by the next owner's fencing at the latest.
        tracing::debug!(error = %e, slot = slot.index, "abort failed");
    }
    slot.open = false;
    slot.producer.context().take();
    let mut rewinds = Vec::new();
    for pc in &mut slot.partitions {
        if matches!(pc.progress.state, PartitionState::Open { .. }) {
            pc.progress.aborted();
            rewinds.push(Rewind::of(pc));
        }
    }
    CommitOutcome::Aborted(reason, rewinds)
}

/// Counts the outcome; records count as copied only once their transaction committed.
pub(crate) fn record_outcome(metrics: &Metrics, slot: u32, outcome: &CommitOutcome) {
    match outcome {
        CommitOutcome::Committed(counted) => {
            metrics.transactions_committed.inc();
            for (topic, records, bytes) in counted {
                metrics.record_committed(topic, *records, *bytes);
            }
        }
        CommitOutcome::Aborted(reason, _) => {
            tracing::warn!(%reason, slot, "transaction aborted; the slot's partitions rewind to their last commit");
            metrics.transactions_aborted.inc();
        }
        CommitOutcome::Fenced(reason) => {
            tracing::warn!(%reason, slot, "the slot's producer was fenced: another worker took the slot over, or the broker ended its transaction");
            metrics.transactions_aborted.inc();
        }
    };
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::{Duration, Instant};

    use rdkafka::client::ClientContext;
    use rdkafka::producer::{BaseProducer, Producer};

    use super::DeliveryLog;
    use crate::clients::target_producer_config;
    use crate::copier::rebalance::SlotContext;
    use ferry_mirror_api::spec::Spec;

    const AKID: &str = "AKIDFERRYRUNTIME";
    const SECRET: &str = "ferry-runtime-secret-never-sent";

    #[test]
    fn the_runtime_contexts_hand_out_msk_iam_tokens() {
        const { assert!(<DeliveryLog as ClientContext>::ENABLE_REFRESH_OAUTH_TOKEN) };
        const { assert!(<SlotContext as ClientContext>::ENABLE_REFRESH_OAUTH_TOKEN) };
        // ferry_kafka's generator answers (not rdkafka's "must be overridden" default): for a
        // client with no MSK IAM settings, its own refusal.
        let e = DeliveryLog::default()
            .generate_oauth_token(Some("principal=admin"))
            .err()
            .expect("no token without MSK IAM settings");
        assert!(e.to_string().contains("only used for AWS_MSK_IAM"), "{e}");
    }

    /// base64url without padding, decoded (the runtime has no base64 dependency).
    fn decode(token: &str) -> String {
        let value = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => panic!("not base64url: {c}"),
        };
        let (mut bits, mut n, mut out) = (0u32, 0, Vec::new());
        for c in token.bytes() {
            bits = (bits << 6) | u32::from(value(c));
            n += 6;
            if n >= 8 {
                n -= 8;
                out.push((bits >> n) as u8);
            }
        }
        String::from_utf8(out).unwrap()
    }

    /// Runs in a process of its own (see `slot_producers_sign_in_with_the_aws_chain_...`),
    /// whose environment is the AWS chain under test.
    #[test]
    #[ignore = "run by slot_producers_sign_in_with_the_aws_chain_of_the_environment"]
    fn iam_child() {
        let servers = std::env::var("FERRY_IAM_CHILD_SERVERS").unwrap();
        let with_credentials = std::env::var("FERRY_IAM_CHILD_CREDENTIALS").is_ok();
        let spec = Spec::parse(
            &serde_json::json!({
                "version": 4,
                "run_id": "iam",
                "source": {"bootstrap_servers": ["127.0.0.1:1"]},
                "target": {"bootstrap_servers": [servers], "sasl": {"mechanism": "AWS_MSK_IAM"},
                           "timeout_seconds": 30},
                "topics": {"names": ["t"]}
            })
            .to_string(),
        )
        .unwrap();
        let conn = crate::connect::connection(&spec.target, "target").unwrap();
        let config = target_producer_config(&spec, &conn, Some("ferry-mirror.iam.slot.0"));
        let started = Instant::now();
        let made = crate::connect::create_with::<BaseProducer<DeliveryLog>, _>(
            &config,
            DeliveryLog::default(),
        );
        if !with_credentials {
            let e = format!("{:#}", made.err().expect("no token without credentials"));
            assert!(
                e.contains(&format!("signing in to {servers} with AWS_MSK_IAM"))
                    && e.contains("MSK IAM: could not get AWS credentials"),
                "{e}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{:?}",
                started.elapsed()
            );
            println!("IAM-CHILD-OK no credentials: {e}");
            return;
        }
        let producer = made.unwrap();
        // The readers have rdkafka's default context (which hands out no token): librdkafka
        // takes the token set at creation, and a shared one gets its refresh thread.
        let reader = crate::clients::reader_config(&conn, "ferry-mirror.iam.reader");
        crate::connect::create::<rdkafka::consumer::BaseConsumer>(&reader).unwrap();
        crate::connect::create_shared::<rdkafka::consumer::BaseConsumer>(&reader).unwrap();
        crate::connect::create_shared::<BaseProducer>(&target_producer_config(&spec, &conn, None))
            .unwrap();
        // The token the slot producer's context hands librdkafka: signed with the credentials
        // of the environment, for the region, never holding the secret.
        let token = producer
            .context()
            .generate_oauth_token(config.get("sasl.oauthbearer.config"))
            .unwrap_or_else(|e| panic!("{e}"));
        let url = decode(&token.token);
        assert!(
            url.starts_with(
                "https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&"
            ),
            "{url}"
        );
        assert!(
            url.contains(&format!("X-Amz-Credential={AKID}%2F")),
            "{url}"
        );
        assert!(!url.contains(SECRET), "{url}");
        // No broker here accepts the token (peer A offers no OAUTHBEARER), so fencing fails.
        // The producer reports it only as the call's timeout: the worker names the refusal
        // earlier, when its admin connection signs in first (tests/e2e/test_mirror_msk_iam.py).
        let started = Instant::now();
        let e = producer
            .init_transactions(Duration::from_secs(5))
            .expect_err("a broker without OAUTHBEARER");
        println!("IAM-CHILD-OK refused after {:?}: {e}", started.elapsed());
    }

    #[test]
    fn slot_producers_sign_in_with_the_aws_chain_of_the_environment() {
        // Peer A's SASL listener (PLAIN and SCRAM only) when the peers run, else nothing
        // listens: either way no broker accepts the token, which is all this test can see.
        let servers = std::env::var("FERRY_KAFKA_A_SASL").unwrap_or_else(|_| "127.0.0.1:1".into());
        let child = |credentials: bool| {
            let mut c = Command::new(std::env::current_exe().unwrap());
            c.args([
                "copier::transaction::tests::iam_child",
                "--exact",
                "--ignored",
                "--nocapture",
            ]);
            for var in [
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
                "AWS_PROFILE",
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_ROLE_ARN",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            ] {
                c.env_remove(var);
            }
            c.env("AWS_EC2_METADATA_DISABLED", "true")
                .env("AWS_CONFIG_FILE", "/nonexistent/ferry-test/config")
                .env(
                    "AWS_SHARED_CREDENTIALS_FILE",
                    "/nonexistent/ferry-test/credentials",
                )
                .env("AWS_REGION", "eu-west-1")
                .env("FERRY_IAM_CHILD_SERVERS", &servers);
            if credentials {
                c.env("AWS_ACCESS_KEY_ID", AKID)
                    .env("AWS_SECRET_ACCESS_KEY", SECRET)
                    .env("FERRY_IAM_CHILD_CREDENTIALS", "1");
            }
            let out = c.output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success() && text.contains("IAM-CHILD-OK"),
                "{text}"
            );
            assert!(!text.contains(SECRET), "{text}");
            text
        };
        child(false);
        let text = child(true);
        println!("{text}");
    }
}
