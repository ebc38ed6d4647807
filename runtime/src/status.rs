//! The run's status topic on the target: reading it, writing the final report, withdrawing it.
//! The records and their fold are the contract's (`ferry_mirror_api::status`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use ferry_mirror_api::GroupResult;
use ferry_mirror_api::now_ms;
use ferry_mirror_api::status::{
    CommandResult, FinalReport, GROUPS_KEY, PartitionStatus, REPORT_KEY, RunStatus,
    TARGET_KEY_PREFIX, TargetTopic, target_key,
};

/// Reads the whole status topic (it is compacted and small) and folds it into a [`RunStatus`].
pub(crate) fn read(
    reader: &BaseConsumer,
    topic: &str,
    run_id: &str,
    timeout: Duration,
) -> Result<RunStatus> {
    let records = read_records(reader, topic, timeout)?;
    Ok(RunStatus::from_records(run_id, records, now_ms()))
}

/// The latest value of every key of the status topic (tombstoned keys left out).
pub(crate) fn read_records(
    reader: &BaseConsumer,
    topic: &str,
    timeout: Duration,
) -> Result<BTreeMap<String, String>> {
    let (_, high) = reader
        .fetch_watermarks(topic, 0, timeout)
        .with_context(|| format!("reading {topic} on the target (does the run exist?)"))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
    reader.assign(&tpl)?;
    let mut records = BTreeMap::new();
    let deadline = Instant::now() + timeout;
    let mut position = -1;
    while position + 1 < high && Instant::now() < deadline {
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
            // Transport errors are retried by the client (a broker restarting); the deadline
            // bounds the read.
            Some(Err(e)) => tracing::debug!(error = %e, "reading the status topic"),
            None => {}
        }
    }
    Ok(records)
}

/// The target topics the run has taken on, as recorded by [`write_target_checks`].
pub(crate) fn target_checks(records: &BTreeMap<String, String>) -> BTreeMap<String, TargetTopic> {
    records
        .iter()
        .filter(|(k, _)| k.starts_with(TARGET_KEY_PREFIX))
        .filter_map(|(_, v)| serde_json::from_str::<TargetTopic>(v).ok())
        .map(|t| (t.target_topic.clone(), t))
        .collect()
}

/// Records that the run took these target topics on (and what they held then), before
/// anything is copied into them.
pub(crate) fn write_target_checks(
    producer: &BaseProducer,
    topic: &str,
    checks: &[TargetTopic],
    timeout: Duration,
) -> Result<()> {
    let keys: Vec<String> = checks.iter().map(|c| target_key(&c.target_topic)).collect();
    let mut records = Vec::with_capacity(checks.len());
    for (key, check) in keys.iter().zip(checks) {
        records.push((key.as_str(), Some(serde_json::to_vec(check)?)));
    }
    write(producer, topic, &records, timeout).context("recording the target topics")
}

/// Writes records to partition 0 of the status topic (`None` = tombstone) and waits for them.
fn write(
    producer: &BaseProducer,
    topic: &str,
    records: &[(&str, Option<Vec<u8>>)],
    timeout: Duration,
) -> Result<()> {
    for (key, value) in records {
        let mut record = BaseRecord::<str, [u8]>::to(topic).partition(0).key(*key);
        if let Some(v) = value {
            record = record.payload(v.as_slice());
        }
        producer.send(record).map_err(|(e, _)| e)?;
    }
    ferry_kafka::flush_promptly(producer, timeout)?;
    Ok(())
}

/// Publishes the final report and its groups in one transaction of the run's finisher
/// (`init_transactions` already called): fails if another finisher fenced this one.
pub(crate) fn write_report_once(
    producer: &BaseProducer,
    topic: &str,
    report: &FinalReport,
    timeout: Duration,
) -> Result<()> {
    producer.begin_transaction()?;
    let written = write(
        producer,
        topic,
        &[
            (GROUPS_KEY, Some(serde_json::to_vec(&report.groups)?)),
            (REPORT_KEY, Some(serde_json::to_vec(report)?)),
        ],
        timeout,
    );
    match written {
        Ok(()) => producer
            .commit_transaction(timeout)
            .context("committing the final report"),
        Err(e) => {
            let _ = producer.abort_transaction(timeout);
            Err(e).context("writing the final report")
        }
    }
}

/// Publishes the result of a translation run outside a final report (`ferry-mirror translate`).
pub(crate) fn write_groups(
    producer: &BaseProducer,
    topic: &str,
    groups: &[GroupResult],
    timeout: Duration,
) -> Result<()> {
    write(
        producer,
        topic,
        &[(GROUPS_KEY, Some(serde_json::to_vec(groups)?))],
        timeout,
    )
    .context("writing the group translation")
}

/// Records a one-off command's result under its `command/<command>` key and waits for it.
pub(crate) fn write_command_result(
    producer: &BaseProducer,
    topic: &str,
    result: &CommandResult,
    timeout: Duration,
) -> Result<()> {
    write(
        producer,
        topic,
        &[(result.key().as_str(), Some(serde_json::to_vec(result)?))],
        timeout,
    )
    .with_context(|| format!("recording the result of {} in {topic}", result.command))
}

/// Withdraws a run's final report and group results, so a run that was extended (more topics)
/// reads as running again until its workers finish the new work.
pub(crate) fn withdraw_report(
    producer: &BaseProducer,
    topic: &str,
    timeout: Duration,
) -> Result<()> {
    write(
        producer,
        topic,
        &[(REPORT_KEY, None), (GROUPS_KEY, None)],
        timeout,
    )
    .context("withdrawing the final report")
}

/// Human-readable summary for `ferry-mirror status`.
pub(crate) fn render(s: &RunStatus) -> String {
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
    for t in &s.appended_to {
        out.push_str(&format!(
            "WARNING: target topic {} held {} records before this run; the copy is appended after \
             them (target_may_hold_records)\n",
            t.target_topic, t.records_before
        ));
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
    use ferry_mirror_api::status::{WorkerState, WorkerStatus};

    #[test]
    fn render_shows_state_partitions_and_groups() {
        let worker = WorkerStatus {
            worker_id: "w".into(),
            updated_at_ms: 1000,
            state: WorkerState::Copying,
            partitions: vec![PartitionStatus {
                source_topic: "orders".into(),
                partition: 2,
                copied_up_to: 5,
                end_offset: 9,
                lag: 4,
                ..Default::default()
            }],
            ..Default::default()
        };
        let s = RunStatus::from_records(
            "r",
            BTreeMap::from([(worker.key(), serde_json::to_string(&worker).unwrap())]),
            1000,
        );
        let text = render(&s);
        assert!(text.starts_with("run r: copying"), "{text}");
        assert!(text.contains("orders"), "{text}");
    }
}
