//! Prometheus metrics of one worker, served on /metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    pub topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabel {
    pub topic: String,
    pub partition: String,
}

pub struct Metrics {
    registry: Registry,
    records: Family<TopicLabel, Counter>,
    bytes: Family<TopicLabel, Counter>,
    lag: Family<PartitionLabel, Gauge>,
    pub transactions_committed: Counter,
    pub transactions_aborted: Counter,
    pub errors: Counter,
    pub assigned_partitions: Gauge,
    records_total: AtomicU64,
    bytes_total: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ferry_mirror");
        let m = Metrics {
            records: Family::default(),
            bytes: Family::default(),
            lag: Family::default(),
            transactions_committed: Counter::default(),
            transactions_aborted: Counter::default(),
            errors: Counter::default(),
            assigned_partitions: Gauge::default(),
            records_total: AtomicU64::new(0),
            bytes_total: AtomicU64::new(0),
            registry: Registry::default(),
        };
        registry.register(
            "records_copied",
            "Records committed to the target",
            m.records.clone(),
        );
        registry.register(
            "bytes_copied",
            "Key and value bytes written to the target",
            m.bytes.clone(),
        );
        registry.register(
            "partition_lag_records",
            "Source end offset minus copied position",
            m.lag.clone(),
        );
        registry.register(
            "transactions_committed",
            "Target transactions committed",
            m.transactions_committed.clone(),
        );
        registry.register(
            "transactions_aborted",
            "Target transactions aborted or fenced (work redone)",
            m.transactions_aborted.clone(),
        );
        registry.register(
            "errors",
            "Consumer and producer errors seen",
            m.errors.clone(),
        );
        registry.register(
            "assigned_partitions",
            "Source partitions this worker copies",
            m.assigned_partitions.clone(),
        );
        Metrics { registry, ..m }
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
    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an error would only mean a truncated page.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(m.records_total(), 2);
    }
}
