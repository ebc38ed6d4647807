//! Progress reports. Each worker publishes its view to the run's status topic on the target,
//! so the provider, `ferry-mirror status` or anyone else reads the run without reaching the
//! workers. Keys: `worker/<id>` (latest progress of one worker), `groups` (last translation),
//! `report` (final report of an `until_caught_up` run).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::groups::GroupResult;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionStatus {
    pub source_topic: String,
    pub target_topic: String,
    pub partition: i32,
    /// Next source offset to copy (everything before it is copied or was never there).
    pub copied_up_to: i64,
    /// Source end offset when last looked at.
    pub end_offset: i64,
    pub lag: i64,
    /// `until_caught_up`: the end offset this partition must reach.
    pub goal: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerStatus {
    pub worker_id: String,
    pub run_id: String,
    pub updated_at_ms: i64,
    pub state: String,
    pub http: Option<String>,
    pub records_copied: u64,
    pub bytes_copied: u64,
    pub records_per_second: f64,
    pub bytes_per_second: f64,
    pub transactions_committed: u64,
    pub transactions_aborted: u64,
    pub partitions: Vec<PartitionStatus>,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FinalReport {
    pub run_id: String,
    pub completed_at_ms: i64,
    pub topics: Vec<String>,
    pub partitions: usize,
    pub records_in_goal: i64,
    pub groups: Vec<GroupResult>,
}

/// Everything the status topic says about a run, latest record per key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunStatus {
    pub run_id: String,
    /// provisioning, copying, caught_up, in_sync, complete, failed
    pub state: String,
    pub workers: Vec<WorkerStatus>,
    pub live_workers: usize,
    pub records_copied: u64,
    pub bytes_copied: u64,
    pub records_per_second: f64,
    pub bytes_per_second: f64,
    pub lag: i64,
    pub eta_seconds: Option<f64>,
    pub groups: Vec<GroupResult>,
    pub report: Option<FinalReport>,
}

/// A worker counts as live if it published within this long.
pub const LIVE_WITHIN: Duration = Duration::from_secs(20);

impl RunStatus {
    pub fn from_records(run_id: &str, records: BTreeMap<String, String>) -> RunStatus {
        let now = now_ms();
        let mut status = RunStatus {
            run_id: run_id.to_string(),
            ..RunStatus::default()
        };
        for (key, value) in &records {
            if key.starts_with("worker/") {
                if let Ok(w) = serde_json::from_str::<WorkerStatus>(value) {
                    status.workers.push(w);
                }
            } else if key == "groups" {
                status.groups = serde_json::from_str(value).unwrap_or_default();
            } else if key == "report" {
                status.report = serde_json::from_str(value).ok();
            }
        }
        let live: Vec<&WorkerStatus> = status
            .workers
            .iter()
            .filter(|w| now - w.updated_at_ms <= LIVE_WITHIN.as_millis() as i64)
            .collect();
        status.live_workers = live.len();
        // Totals come from every worker record (dead workers' copies still count); rates only
        // from live ones. Each partition's lag comes from its freshest report.
        status.records_copied = status.workers.iter().map(|w| w.records_copied).sum();
        status.bytes_copied = status.workers.iter().map(|w| w.bytes_copied).sum();
        status.records_per_second = live.iter().map(|w| w.records_per_second).sum();
        status.bytes_per_second = live.iter().map(|w| w.bytes_per_second).sum();
        let mut freshest: BTreeMap<(String, i32), (i64, i64)> = BTreeMap::new();
        for w in &status.workers {
            for p in &w.partitions {
                let key = (p.source_topic.clone(), p.partition);
                if freshest
                    .get(&key)
                    .is_none_or(|(at, _)| *at < w.updated_at_ms)
                {
                    freshest.insert(key, (w.updated_at_ms, p.lag));
                }
            }
        }
        status.lag = freshest.values().map(|(_, lag)| *lag).sum();
        if status.records_per_second > 0.0 {
            status.eta_seconds = Some(status.lag as f64 / status.records_per_second);
        }
        status.state = if status.report.is_some() {
            "complete".into()
        } else if status.workers.is_empty() {
            "provisioning".into()
        } else if !live.is_empty() && live.iter().all(|w| w.state == "in_sync") {
            "in_sync".into()
        } else if live.iter().any(|w| w.state == "caught_up") && status.lag == 0 {
            "caught_up".into()
        } else if live.is_empty() {
            "failed".into()
        } else {
            "copying".into()
        };
        status
    }
}

/// Reads the whole status topic (it is compacted and small) and folds it into a [`RunStatus`].
pub fn read(
    reader: &BaseConsumer,
    topic: &str,
    run_id: &str,
    timeout: Duration,
) -> Result<RunStatus> {
    let (_, high) = reader
        .fetch_watermarks(topic, 0, timeout)
        .with_context(|| format!("reading {topic} on the target (does the run exist?)"))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
    reader.assign(&tpl)?;
    let mut records = BTreeMap::new();
    let deadline = std::time::Instant::now() + timeout;
    let mut position = -1;
    while position + 1 < high && std::time::Instant::now() < deadline {
        match reader.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                position = m.offset();
                match (m.key(), m.payload()) {
                    (Some(k), Some(v)) => {
                        records.insert(
                            String::from_utf8_lossy(k).into_owned(),
                            String::from_utf8_lossy(v).into_owned(),
                        );
                    }
                    // A tombstone withdraws the key (e.g. the report of a run that was extended).
                    (Some(k), None) => {
                        records.remove(String::from_utf8_lossy(k).as_ref());
                    }
                    _ => {}
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(Err(e)) => return Err(e).context("reading the status topic"),
            None => {}
        }
    }
    Ok(RunStatus::from_records(run_id, records))
}

/// Withdraws a run's final report and group results, so a run that was extended (more topics)
/// reads as running again until its workers finish the new work.
pub fn withdraw_report(
    producer: &rdkafka::producer::BaseProducer,
    topic: &str,
    timeout: Duration,
) -> Result<()> {
    use rdkafka::producer::{BaseRecord, Producer};
    for key in ["report", "groups"] {
        producer
            .send(BaseRecord::<str, [u8]>::to(topic).partition(0).key(key))
            .map_err(|(e, _)| e)
            .context("withdrawing the final report")?;
    }
    producer
        .flush(timeout)
        .context("withdrawing the final report")?;
    Ok(())
}

/// Human-readable summary for `ferry-mirror status`.
pub fn render(s: &RunStatus) -> String {
    let mut out = format!(
        "run {}: {} — {} records ({:.1} MB) copied, lag {} records, {:.0} records/s ({:.1} MB/s), {} live worker(s)",
        s.run_id,
        s.state,
        s.records_copied,
        s.bytes_copied as f64 / 1e6,
        s.lag,
        s.records_per_second,
        s.bytes_per_second / 1e6,
        s.live_workers
    );
    if let Some(eta) = s.eta_seconds {
        out.push_str(&format!(", ETA {eta:.0}s"));
    }
    out.push('\n');
    let mut parts: Vec<&PartitionStatus> = s.workers.iter().flat_map(|w| &w.partitions).collect();
    parts.sort_by(|a, b| (&a.source_topic, a.partition).cmp(&(&b.source_topic, b.partition)));
    parts.dedup_by(|a, b| a.source_topic == b.source_topic && a.partition == b.partition);
    if !parts.is_empty() {
        out.push_str(&format!(
            "{:<30} {:>5} {:>14} {:>14} {:>10}\n",
            "topic", "part", "copied up to", "end offset", "lag"
        ));
        for p in parts {
            out.push_str(&format!(
                "{:<30} {:>5} {:>14} {:>14} {:>10}\n",
                p.source_topic, p.partition, p.copied_up_to, p.end_offset, p.lag
            ));
        }
    }
    for g in &s.groups {
        out.push_str(&format!("group {}: {}\n", g.group, g.state));
    }
    for w in &s.workers {
        for e in &w.errors {
            out.push_str(&format!("worker {} error: {e}\n", w.worker_id));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(id: &str, at: i64, copied: u64, lag: i64, state: &str) -> String {
        serde_json::to_string(&WorkerStatus {
            worker_id: id.into(),
            run_id: "r".into(),
            updated_at_ms: at,
            state: state.into(),
            records_copied: copied,
            records_per_second: 10.0,
            partitions: vec![PartitionStatus {
                source_topic: "t".into(),
                partition: 0,
                lag,
                ..Default::default()
            }],
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn totals_add_up_and_lag_comes_from_the_freshest_report() {
        let now = now_ms();
        let records = BTreeMap::from([
            (
                "worker/a".to_string(),
                worker("a", now - 60_000, 100, 50, "copying"),
            ),
            ("worker/b".to_string(), worker("b", now, 30, 5, "copying")),
        ]);
        let s = RunStatus::from_records("r", records);
        assert_eq!(s.records_copied, 130);
        assert_eq!(s.lag, 5);
        assert_eq!(s.live_workers, 1);
        assert_eq!(
            s.records_per_second, 10.0,
            "only live workers count toward the rate"
        );
        assert_eq!(s.state, "copying");
        assert!(render(&s).contains("copying"));
    }

    #[test]
    fn a_report_means_complete_and_no_worker_means_provisioning() {
        assert_eq!(
            RunStatus::from_records("r", BTreeMap::new()).state,
            "provisioning"
        );
        let report = serde_json::to_string(&FinalReport::default()).unwrap();
        let s = RunStatus::from_records("r", BTreeMap::from([("report".to_string(), report)]));
        assert_eq!(s.state, "complete");
    }
}
