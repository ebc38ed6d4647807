//! Prometheus metrics of one worker, served on /metrics.
//!
//! Counters (records, bytes, transactions, errors) are counted by the copier as work is
//! committed. Everything that describes where the copy stands (lag per partition, the worker's
//! state, when it last reported) is taken from the worker's latest status at scrape time
//! ([`Metrics::observe`]), so a scrape shows exactly the partitions the worker owns now: a
//! partition handed to another worker disappears instead of keeping its last lag.
//! Every series carries the `run_id` and `worker_id` labels once the worker has reported.

use std::borrow::Cow;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use ferry_mirror_api::status::{WorkerState, WorkerStatus};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    pub topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabel {
    pub topic: String,
    pub partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabel {
    pub version: String,
}

/// The states `ferry_mirror_worker_state` always lists (1 for the current one, 0 otherwise).
const STATES: [WorkerState; 3] = [
    WorkerState::Copying,
    WorkerState::CaughtUp,
    WorkerState::InSync,
];

pub struct Metrics {
    records: Family<TopicLabel, Counter>,
    bytes: Family<TopicLabel, Counter>,
    lag: Family<PartitionLabel, Gauge>,
    pub transactions_committed: Counter,
    pub transactions_aborted: Counter,
    pub errors: Counter,
    pub assigned_partitions: Gauge,
    state: Family<StateLabel, Gauge>,
    last_status: Gauge<f64, AtomicU64>,
    build_info: Family<VersionLabel, Gauge>,
    /// `(run_id, worker_id)` from the first status that names them.
    identity: Mutex<Option<(String, String)>>,
    /// One scrape at a time: [`Metrics::observe`] rebuilds the lag family.
    scraping: Mutex<()>,
    records_total: AtomicU64,
    bytes_total: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        let build_info = Family::<VersionLabel, Gauge>::default();
        build_info
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        Metrics {
            records: Family::default(),
            bytes: Family::default(),
            lag: Family::default(),
            transactions_committed: Counter::default(),
            transactions_aborted: Counter::default(),
            errors: Counter::default(),
            assigned_partitions: Gauge::default(),
            state: Family::default(),
            last_status: Gauge::default(),
            build_info,
            identity: Mutex::new(None),
            scraping: Mutex::new(()),
            records_total: AtomicU64::new(0),
            bytes_total: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Records of a committed transaction (aborted work is never counted).
    pub fn record_committed(&self, topic: &str, records: u64, bytes: u64) {
        let label = TopicLabel {
            topic: topic.to_string(),
        };
        self.records.get_or_create(&label).inc_by(records);
        self.bytes.get_or_create(&label).inc_by(bytes);
        self.records_total.fetch_add(records, Ordering::Relaxed);
        self.bytes_total.fetch_add(bytes, Ordering::Relaxed);
    }
    /// One partition's lag as the copier sees it now; the next [`Metrics::observe`] replaces
    /// all lags with those of the worker's status.
    pub fn set_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.lag
            .get_or_create(&PartitionLabel {
                topic: topic.to_string(),
                partition: partition.to_string(),
            })
            .set(lag);
    }
    pub fn records_total(&self) -> u64 {
        self.records_total.load(Ordering::Relaxed)
    }
    pub fn bytes_total(&self) -> u64 {
        self.bytes_total.load(Ordering::Relaxed)
    }

    /// Takes the worker's latest status: its identity (labels of every series), the lag of
    /// each partition it owns (and only those), its state and when it last reported. A status
    /// that was never published (no worker id yet) changes nothing.
    pub fn observe(&self, status: &WorkerStatus) {
        if status.worker_id.is_empty() {
            return;
        }
        {
            let mut identity = self.identity.lock().unwrap_or_else(|e| e.into_inner());
            if identity.is_none() {
                *identity = Some((status.run_id.clone(), status.worker_id.clone()));
            }
        }
        self.lag.clear();
        for p in &status.partitions {
            self.set_lag(&p.source_topic, p.partition, p.lag);
            // The topic's counters exist from 0 before its first commit, so that `rate()` and
            // `increase()` see the first records too.
            let topic = TopicLabel {
                topic: p.source_topic.clone(),
            };
            self.records.get_or_create(&topic).inc_by(0);
            self.bytes.get_or_create(&topic).inc_by(0);
        }
        for s in STATES {
            self.state
                .get_or_create(&StateLabel {
                    state: state_name(s),
                })
                .set(i64::from(s == status.state));
        }
        self.last_status.set(status.updated_at_ms as f64 / 1000.0);
    }

    /// What /metrics serves: [`Metrics::observe`] the status, then [`Metrics::encode`], with no
    /// other scrape in between.
    pub fn scrape(&self, status: &WorkerStatus) -> String {
        let _one = self.scraping.lock().unwrap_or_else(|e| e.into_inner());
        self.observe(status);
        self.encode()
    }

    /// The exposition (OpenMetrics text, [`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let identity = self
            .identity
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let labels: Vec<(Cow<'static, str>, Cow<'static, str>)> = match identity {
            Some((run_id, worker_id)) => vec![
                ("run_id".into(), run_id.into()),
                ("worker_id".into(), worker_id.into()),
            ],
            None => Vec::new(),
        };
        // A registry per scrape: the families are shared handles, so this only attaches the
        // labels, which are not known when the metrics are created.
        let mut registry = Registry::with_prefix_and_labels("ferry_mirror", labels.into_iter());
        registry.register(
            "records_copied",
            "Records committed to the target by this worker process (committed transactions only)",
            self.records.clone(),
        );
        registry.register(
            "bytes_copied",
            "Key and value bytes of those records",
            self.bytes.clone(),
        );
        registry.register(
            "partition_lag_records",
            "Per owned source partition: end offset minus copied position, as of the last status",
            self.lag.clone(),
        );
        registry.register(
            "transactions_committed",
            "Target transactions committed",
            self.transactions_committed.clone(),
        );
        registry.register(
            "transactions_aborted",
            "Target transactions aborted or fenced (work redone)",
            self.transactions_aborted.clone(),
        );
        registry.register("errors", "Source consumer errors seen", self.errors.clone());
        registry.register(
            "assigned_partitions",
            "Source partitions this worker copies",
            self.assigned_partitions.clone(),
        );
        registry.register(
            "worker_state",
            "1 for the worker's state (copying, caught_up, in_sync), 0 for the others",
            self.state.clone(),
        );
        registry.register(
            "last_status_timestamp_seconds",
            "Unix time of the worker's last status (stops moving when its copy loop is stuck)",
            self.last_status.clone(),
        );
        registry.register(
            "build_info",
            "Always 1; the ferry-mirror version as a label",
            self.build_info.clone(),
        );
        let mut out = String::new();
        // Writing into a String cannot fail; an error would only mean a truncated page.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::warn!(error = %e, "encoding metrics");
        }
        out
    }
}

/// What [`Metrics::encode`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A state as the status JSON spells it (`copying`, `caught_up`, `in_sync`).
fn state_name(state: WorkerState) -> String {
    match serde_json::to_value(state) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{state:?}").to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_mirror_api::status::PartitionStatus;

    fn partition(topic: &str, partition: i32, lag: i64) -> PartitionStatus {
        PartitionStatus {
            source_topic: topic.into(),
            target_topic: topic.into(),
            partition,
            lag,
            ..PartitionStatus::default()
        }
    }

    #[test]
    fn exposition_names_and_counts() {
        let m = Metrics::default();
        m.record_committed("orders", 1, 10);
        m.record_committed("orders", 1, 5);
        m.set_lag("orders", 3, 42);
        let text = m.encode();
        assert!(
            text.contains("ferry_mirror_records_copied_total{topic=\"orders\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("ferry_mirror_bytes_copied_total{topic=\"orders\"} 15"),
            "{text}"
        );
        assert!(
            text.contains(
                "ferry_mirror_partition_lag_records{topic=\"orders\",partition=\"3\"} 42"
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(m.records_total(), 2);
    }

    #[test]
    fn status_brings_labels_state_and_only_owned_partitions() {
        let m = Metrics::default();
        m.record_committed("orders", 7, 70);
        m.set_lag("orders", 0, 5);
        m.set_lag("orders", 1, 9);
        // Nothing reported yet: no identity labels, nothing replaced.
        m.observe(&WorkerStatus::default());
        assert!(
            m.encode()
                .contains("ferry_mirror_partition_lag_records{topic=\"orders\",partition=\"1\"} 9")
        );

        // The worker now owns orders[0] only, and payments[2].
        m.observe(&WorkerStatus {
            worker_id: "w1".into(),
            run_id: "r1".into(),
            updated_at_ms: 1_700_000_000_500,
            state: WorkerState::InSync,
            partitions: vec![partition("orders", 0, 0), partition("payments", 2, 3)],
            ..WorkerStatus::default()
        });
        let text = m.encode();
        let id = "run_id=\"r1\",worker_id=\"w1\"";
        for line in [
            format!("ferry_mirror_records_copied_total{{{id},topic=\"orders\"}} 7"),
            format!("ferry_mirror_bytes_copied_total{{{id},topic=\"orders\"}} 70"),
            format!(
                "ferry_mirror_partition_lag_records{{{id},topic=\"orders\",partition=\"0\"}} 0"
            ),
            format!(
                "ferry_mirror_partition_lag_records{{{id},topic=\"payments\",partition=\"2\"}} 3"
            ),
            format!("ferry_mirror_worker_state{{{id},state=\"in_sync\"}} 1"),
            format!("ferry_mirror_worker_state{{{id},state=\"copying\"}} 0"),
            format!("ferry_mirror_worker_state{{{id},state=\"caught_up\"}} 0"),
            format!("ferry_mirror_last_status_timestamp_seconds{{{id}}} 1700000000.5"),
            format!("ferry_mirror_transactions_committed_total{{{id}}} 0"),
            format!(
                "ferry_mirror_build_info{{{id},version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            ),
        ] {
            assert!(text.contains(&line), "{line} missing in\n{text}");
        }
        assert!(
            !text.contains("partition=\"1\""),
            "revoked partition kept:\n{text}"
        );

        // The identity is that of the first status; it never changes for a process.
        m.observe(&WorkerStatus {
            worker_id: "w2".into(),
            run_id: "r2".into(),
            ..WorkerStatus::default()
        });
        let text = m.encode();
        assert!(text.contains(id) && !text.contains("w2"), "{text}");
        assert!(
            !text.contains("lag_records{run_id=\"r1\",worker_id=\"w1\",topic=\"payments\""),
            "{text}"
        );
        // A topic the worker took over has its counters from 0 on.
        assert!(
            text.contains("ferry_mirror_records_copied_total{run_id=\"r1\",worker_id=\"w1\",topic=\"payments\"} 0"),
            "{text}"
        );
    }
}
