//! Reading a run's progress from its status topic on the target, and copying it into the
//! model's computed attributes. The provider only polls: workers write the status.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_kafka::ConnectionConfig;
use ferry_mirror_api::{CommandResult, GroupState, RunState, RunStatus, Spec, VerifyRow, now_ms};
use tfplugin::Tf;

use super::model::{MirrorModel, VerificationRow};

/// One read of the status topic is bounded by this.
const READ_WITHIN: Duration = Duration::from_secs(15);

/// The run's status; a status topic that does not exist yet means no worker reported.
pub async fn read_status(target: &ConnectionConfig, spec: &Spec) -> Result<RunStatus, String> {
    match ferry_kafka::read_latest_by_key(target, &spec.status_topic(), 0, READ_WITHIN).await {
        Ok(records) => Ok(RunStatus::from_records(&spec.run_id, records, now_ms())),
        Err(e) if e.is_not_found() => Ok(RunStatus::from_records(
            &spec.run_id,
            BTreeMap::new(),
            now_ms(),
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The result a one-off command recorded in the status topic under `result_id`; None when it
/// recorded none (a runtime older than the record, or a command that could not write it).
pub async fn read_command_result(
    target: &ConnectionConfig,
    spec: &Spec,
    command: &str,
    result_id: &str,
) -> Result<Option<CommandResult>, String> {
    match ferry_kafka::read_latest_by_key(target, &spec.status_topic(), 0, READ_WITHIN).await {
        Ok(records) => Ok(CommandResult::find(&records, command, result_id)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Copies the run's status into the computed attributes.
pub fn fill(state: &mut MirrorModel, s: &RunStatus) {
    state.state = Tf::Known(s.state.as_str().to_string());
    state.records_copied = Tf::Known(s.records_copied as i64);
    state.bytes_copied = Tf::Known(s.bytes_copied as i64);
    state.lag = Tf::Known(s.lag);
    let topics = s.report.as_ref().map_or_else(
        || {
            let mut names: Vec<&str> = s
                .workers
                .iter()
                .flat_map(|w| w.partitions.iter().map(|p| p.source_topic.as_str()))
                .collect();
            names.sort_unstable();
            names.dedup();
            names.len()
        },
        |r| r.topics.len(),
    );
    state.topics_copied = Tf::Known(topics as i64);
    let translated = s
        .groups
        .iter()
        .filter(|g| g.state == GroupState::Translated)
        .count();
    state.groups_translated = Tf::Known(translated as i64);
    if let Some(r) = &s.report {
        state.completed_at = Tf::Known(rfc3339_from_ms(r.completed_at_ms));
    } else if state.completed_at.is_unknown() {
        state.completed_at = Tf::Null;
    }
    if state.verification.is_unknown() {
        state.verification = Tf::Known(Vec::new());
    }
}

/// Whether the run reached what the apply waits for.
pub fn finished(s: &RunStatus, continuous: bool, started_ms: i64) -> bool {
    if continuous {
        // Status records older than this apply (a previous run with the same id, killed
        // workers) prove nothing about the workers just started.
        let fresh = s.workers.iter().any(|w| w.updated_at_ms >= started_ms);
        fresh && s.state == RunState::InSync
    } else {
        s.state == RunState::Complete
    }
}

pub fn verification_rows(rows: &[VerifyRow]) -> Vec<VerificationRow> {
    rows.iter()
        .map(|r| VerificationRow {
            group: r.group.clone(),
            topic: r.source_topic.clone(),
            partition: i64::from(r.partition),
            source_offset: r.source_offset,
            target_offset: r.target_offset,
            result: r.result_text(),
        })
        .collect()
}

/// RFC 3339 in UTC, to the second.
pub fn rfc3339_from_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    rfc3339(t)
}

pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_mirror_api::{FinalReport, WorkerState, WorkerStatus};

    #[test]
    fn times_are_rfc3339_to_the_second() {
        assert_eq!(rfc3339_from_ms(1_700_000_000_999), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn a_report_completes_and_fills_the_state() {
        let s = RunStatus {
            state: RunState::Complete,
            records_copied: 10,
            report: Some(FinalReport {
                completed_at_ms: 1_700_000_000_000,
                topics: vec!["a".into(), "b".into()],
                ..FinalReport::default()
            }),
            ..RunStatus::default()
        };
        let mut m = MirrorModel {
            verification: Tf::Unknown,
            completed_at: Tf::Unknown,
            ..MirrorModel::default()
        };
        fill(&mut m, &s);
        assert_eq!(m.state, Tf::Known("complete".into()));
        assert_eq!(m.topics_copied, Tf::Known(2));
        assert_eq!(m.completed_at, Tf::Known("2023-11-14T22:13:20Z".into()));
        assert_eq!(m.verification, Tf::Known(Vec::new()));
        assert!(finished(&s, false, 0));
    }

    #[test]
    fn continuous_needs_a_fresh_in_sync_report() {
        let worker = |at| WorkerStatus {
            updated_at_ms: at,
            state: WorkerState::InSync,
            ..WorkerStatus::default()
        };
        let stale = RunStatus {
            state: RunState::InSync,
            workers: vec![worker(100)],
            ..RunStatus::default()
        };
        assert!(!finished(&stale, true, 200));
        let fresh = RunStatus {
            workers: vec![worker(300)],
            ..stale
        };
        assert!(finished(&fresh, true, 200));
    }
}
