//! The records of a run's status topic (`Spec::status_topic`, compacted, one partition), and
//! the fold that turns them into one view of the run.
//!
//! Keys: `worker/<id>` holds a [`WorkerStatus`], [`GROUPS_KEY`] the last `Vec<GroupResult>`,
//! [`REPORT_KEY`] the [`FinalReport`], `command/<command>` the [`CommandResult`] of the last
//! one-off command of that name that was given a result id; a tombstone withdraws a key. Readers are tolerant:
//! missing fields take defaults and unknown fields are ignored, so workers of neighbouring
//! releases can share a topic.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::acls::AclCopyRow;
use crate::groups::GroupResult;
use crate::verify::VerifyRow;

/// Prefix of the key of each worker's latest status.
pub const WORKER_KEY_PREFIX: &str = "worker/";
/// Key of the last consumer-group translation (`Vec<GroupResult>`).
pub const GROUPS_KEY: &str = "groups";
/// Key of the final report of an `until_caught_up` run.
pub const REPORT_KEY: &str = "report";
/// A worker counts as live if it published within this many milliseconds.
pub const LIVE_WITHIN_MS: i64 = 20_000;

/// The status-topic key of one worker.
pub fn worker_key(worker_id: &str) -> String {
    format!("{WORKER_KEY_PREFIX}{worker_id}")
}

/// Prefix of the key recording that the run took a target topic on (see [`TargetTopic`]).
pub const TARGET_KEY_PREFIX: &str = "target/";

/// The status-topic key of one target topic's check.
pub fn target_key(target_topic: &str) -> String {
    format!("{TARGET_KEY_PREFIX}{target_topic}")
}

/// Written once per target topic before the run copies anything into it: what the topic held
/// then. A topic with such a record is the run's own, so later workers and restarts do not
/// mistake the run's copies for records someone else wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TargetTopic {
    pub target_topic: String,
    /// Records the topic held that the run did not copy (counted by offsets, per partition
    /// from the log start to the last stable offset). Above zero only when the spec allows
    /// `target_may_hold_records`: the copy is appended after them.
    pub records_before: u64,
    pub checked_at_ms: i64,
}

/// Prefix of the key of the last recorded result of a one-off command (see [`CommandResult`]).
pub const COMMAND_KEY_PREFIX: &str = "command/";

/// The one-off commands that record their result in the status topic when given a result id.
pub const RECORDED_COMMANDS: &[&str] = &["verify", "copy-acls"];

/// Environment variable through which the caller of a one-off command passes its result id
/// (also `--result-id`). An environment variable, not only an argument, so that a runtime too
/// old to know it ignores it instead of rejecting the command line.
pub const RESULT_ID_ENV: &str = "FERRY_MIRROR_RESULT_ID";

/// The status-topic key of a one-off command's last recorded result, e.g. `command/verify`.
/// One key per command (not per call) keeps the compacted topic small; the caller tells its
/// own result from an older one by [`CommandResult::result_id`].
pub fn command_key(command: &str) -> String {
    format!("{COMMAND_KEY_PREFIX}{command}")
}

/// What a one-off command (`verify`, `copy-acls`) found, recorded under [`command_key`] in
/// addition to what it prints, for callers that cannot read its output (pods whose logs the
/// cluster does not serve). Written after the work is done, before the command exits: a
/// caller that saw it exit 0 or 1 finds it. Missing fields read as defaults; a list that is
/// `None` was not part of this command's result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommandResult {
    /// `verify`, `copy-acls`.
    pub command: String,
    /// The caller's id for this call ([`RESULT_ID_ENV`]): a result with another id is older.
    pub result_id: String,
    pub run_id: String,
    pub finished_at_ms: i64,
    /// The exit code the command ends with (0 success, 1 a mismatch or a refused binding).
    pub exit_code: i32,
    /// `verify`: its rows, as `verify --json` prints them.
    pub verification: Option<Vec<VerifyRow>>,
    /// `copy-acls`: its rows, as `copy-acls --json` prints them.
    pub acls: Option<Vec<AclCopyRow>>,
}

impl CommandResult {
    pub fn key(&self) -> String {
        command_key(&self.command)
    }

    /// The result of `command` with this `result_id` among a status topic's latest records;
    /// None when the command recorded nothing for this id (an older runtime, another call).
    pub fn find(
        records: &BTreeMap<String, String>,
        command: &str,
        result_id: &str,
    ) -> Option<CommandResult> {
        let value = records.get(&command_key(command))?;
        let result: CommandResult = serde_json::from_str(value).ok()?;
        (result.command == command && result.result_id == result_id).then_some(result)
    }
}

/// What one worker reports about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    #[default]
    Copying,
    /// `until_caught_up`: every partition this worker owns reached its goal.
    CaughtUp,
    /// `continuous`: this worker's lag is at most `in_sync_lag`.
    InSync,
    /// Written by a newer worker; read as still working.
    #[serde(other)]
    Unknown,
}

/// The state of the whole run, folded from every worker's record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// No worker has reported yet.
    #[default]
    Provisioning,
    Copying,
    /// Every partition reached its goal; the final report is not written yet.
    CaughtUp,
    /// `continuous`: every live worker is in sync.
    InSync,
    /// The final report is written.
    Complete,
    /// Workers reported once, but none within [`LIVE_WITHIN_MS`].
    Failed,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Provisioning => "provisioning",
            RunState::Copying => "copying",
            RunState::CaughtUp => "caught_up",
            RunState::InSync => "in_sync",
            RunState::Complete => "complete",
            RunState::Failed => "failed",
        }
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl WorkerState {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Copying => "copying",
            WorkerState::CaughtUp => "caught_up",
            WorkerState::InSync => "in_sync",
            WorkerState::Unknown => "unknown",
        }
    }
}

impl fmt::Display for WorkerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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
    /// Records committed to the target for this partition over the whole run (all workers,
    /// all restarts; committed transactions only). 0 from workers before this field existed.
    pub records_copied: u64,
    /// Key and value bytes of those records.
    pub bytes_copied: u64,
}

/// One worker's latest progress, under [`worker_key`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkerStatus {
    pub worker_id: String,
    pub run_id: String,
    pub updated_at_ms: i64,
    pub state: WorkerState,
    /// Address serving /metrics, /status and /healthz.
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

impl WorkerStatus {
    pub fn key(&self) -> String {
        worker_key(&self.worker_id)
    }
}

/// Written under [`REPORT_KEY`] when an `until_caught_up` run is complete.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FinalReport {
    pub run_id: String,
    pub completed_at_ms: i64,
    pub topics: Vec<String>,
    pub partitions: usize,
    pub records_in_goal: i64,
    pub groups: Vec<GroupResult>,
    /// Records committed to the target by the run (committed transactions only): for an exact
    /// copy, the number of committed records in the source up to the goals.
    pub records_copied: u64,
    /// Key and value bytes of those records.
    pub bytes_copied: u64,
}

/// Everything the status topic says about a run, latest record per key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunStatus {
    pub run_id: String,
    pub state: RunState,
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
    /// Target topics that held records before the run copied into them
    /// (`target_may_hold_records`): their copies come after those records.
    pub appended_to: Vec<TargetTopic>,
}

/// One selected source partition's end offset, as `ferry-mirror end-offsets --json` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndOffset {
    pub source_topic: String,
    pub partition: i32,
    /// The offset the next record written to the partition gets (last stable offset: the
    /// end of what `read_committed` readers, and so the copy, see).
    pub end_offset: i64,
}

impl RunStatus {
    /// Folds the latest value of each status-topic key (tombstoned keys already removed) into
    /// one view, as of `now_ms`. Records that do not parse are skipped.
    pub fn from_records(run_id: &str, records: BTreeMap<String, String>, now_ms: i64) -> RunStatus {
        let mut status = RunStatus {
            run_id: run_id.to_string(),
            ..RunStatus::default()
        };
        for (key, value) in &records {
            if key.starts_with(WORKER_KEY_PREFIX) {
                if let Ok(w) = serde_json::from_str::<WorkerStatus>(value) {
                    status.workers.push(w);
                }
            } else if key == GROUPS_KEY {
                status.groups = serde_json::from_str(value).unwrap_or_default();
            } else if key == REPORT_KEY {
                status.report = serde_json::from_str(value).ok();
            } else if key.starts_with(TARGET_KEY_PREFIX)
                && let Ok(t) = serde_json::from_str::<TargetTopic>(value)
                && t.records_before > 0
            {
                status.appended_to.push(t);
            }
        }
        let live: Vec<&WorkerStatus> = status
            .workers
            .iter()
            .filter(|w| now_ms - w.updated_at_ms <= LIVE_WITHIN_MS)
            .collect();
        status.live_workers = live.len();
        // Totals come from every worker record (dead workers' copies still count); rates only
        // from live ones. Each partition's lag comes from its freshest report.
        status.records_copied = status.workers.iter().map(|w| w.records_copied).sum();
        status.bytes_copied = status.workers.iter().map(|w| w.bytes_copied).sum();
        // Workers that report per-partition run totals (committed, across restarts) give the
        // exact count: the freshest report of each partition.
        let mut run_totals: BTreeMap<(&str, i32), (i64, u64, u64)> = BTreeMap::new();
        for w in &status.workers {
            for p in &w.partitions {
                let key = (p.source_topic.as_str(), p.partition);
                if run_totals
                    .get(&key)
                    .is_none_or(|(at, _, _)| *at < w.updated_at_ms)
                {
                    run_totals.insert(key, (w.updated_at_ms, p.records_copied, p.bytes_copied));
                }
            }
        }
        let (records, bytes) = run_totals
            .values()
            .fold((0u64, 0u64), |(r, b), (_, pr, pb)| (r + pr, b + pb));
        status.records_copied = status.records_copied.max(records);
        status.bytes_copied = status.bytes_copied.max(bytes);
        // Folded from +0.0: an empty f64 sum is -0.0, which prints as "-0".
        status.records_per_second = live.iter().fold(0.0, |s, w| s + w.records_per_second);
        status.bytes_per_second = live.iter().fold(0.0, |s, w| s + w.bytes_per_second);
        let mut freshest: BTreeMap<(&str, i32), (i64, i64)> = BTreeMap::new();
        for w in &status.workers {
            for p in &w.partitions {
                let key = (p.source_topic.as_str(), p.partition);
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
            RunState::Complete
        } else if status.workers.is_empty() {
            RunState::Provisioning
        } else if !live.is_empty() && live.iter().all(|w| w.state == WorkerState::InSync) {
            RunState::InSync
        } else if live.iter().any(|w| w.state == WorkerState::CaughtUp) && status.lag == 0 {
            RunState::CaughtUp
        } else if live.is_empty() {
            RunState::Failed
        } else {
            RunState::Copying
        };
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::GroupState;

    const NOW: i64 = 1_700_000_000_000;

    fn worker(id: &str, at: i64, copied: u64, lag: i64, state: WorkerState) -> String {
        serde_json::to_string(&WorkerStatus {
            worker_id: id.into(),
            run_id: "r".into(),
            updated_at_ms: at,
            state,
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
        let records = BTreeMap::from([
            (
                worker_key("a"),
                worker("a", NOW - 60_000, 100, 50, WorkerState::Copying),
            ),
            (
                worker_key("b"),
                worker("b", NOW, 30, 5, WorkerState::Copying),
            ),
        ]);
        let s = RunStatus::from_records("r", records, NOW);
        assert_eq!(s.records_copied, 130);
        assert_eq!(s.lag, 5);
        assert_eq!(s.live_workers, 1);
        assert_eq!(
            s.records_per_second, 10.0,
            "only live workers count toward the rate"
        );
        assert_eq!(s.state, RunState::Copying);
        assert_eq!(s.eta_seconds, Some(0.5));
    }

    #[test]
    fn run_totals_per_partition_survive_worker_restarts() {
        // w1 committed 100 records of t[0] and was killed; w2 took t[0] over and reports the
        // partition's run total (100 + 20) although it committed only 20 itself.
        let status = |id: &str, at: i64, own: u64, total: u64| {
            serde_json::to_string(&WorkerStatus {
                worker_id: id.into(),
                updated_at_ms: at,
                records_copied: own,
                partitions: vec![PartitionStatus {
                    source_topic: "t".into(),
                    partition: 0,
                    records_copied: total,
                    bytes_copied: total * 10,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .unwrap()
        };
        let records = BTreeMap::from([
            (worker_key("w1"), status("w1", NOW - 5_000, 100, 100)),
            (worker_key("w2"), status("w2", NOW, 20, 120)),
        ]);
        let s = RunStatus::from_records("r", records, NOW);
        assert_eq!((s.records_copied, s.bytes_copied), (120, 1200));
    }

    #[test]
    fn target_topics_that_held_records_are_listed() {
        let check = |topic: &str, before: u64| {
            (
                target_key(topic),
                serde_json::to_string(&TargetTopic {
                    target_topic: topic.into(),
                    records_before: before,
                    checked_at_ms: NOW,
                })
                .unwrap(),
            )
        };
        let s = RunStatus::from_records(
            "r",
            BTreeMap::from([check("fresh", 0), check("shared", 1200)]),
            NOW,
        );
        assert_eq!(s.appended_to.len(), 1);
        assert_eq!(s.appended_to[0].target_topic, "shared");
        assert_eq!(s.appended_to[0].records_before, 1200);
        assert_eq!(s.state, RunState::Provisioning, "a check is not a worker");
    }

    #[test]
    fn states_fold_from_the_workers() {
        let fold = |workers: &[(&str, i64, i64, WorkerState)]| {
            let records = workers
                .iter()
                .map(|(id, at, lag, st)| (worker_key(id), worker(id, *at, 1, *lag, *st)))
                .collect();
            RunStatus::from_records("r", records, NOW).state
        };
        assert_eq!(fold(&[]), RunState::Provisioning);
        assert_eq!(
            fold(&[
                ("a", NOW, 0, WorkerState::InSync),
                ("b", NOW, 3, WorkerState::InSync)
            ]),
            RunState::InSync
        );
        assert_eq!(
            fold(&[("a", NOW, 0, WorkerState::CaughtUp)]),
            RunState::CaughtUp
        );
        assert_eq!(
            fold(&[("a", NOW, 4, WorkerState::CaughtUp)]),
            RunState::Copying,
            "caught up needs zero lag"
        );
        assert_eq!(
            fold(&[("a", NOW - LIVE_WITHIN_MS - 1, 0, WorkerState::Copying)]),
            RunState::Failed
        );
        let report = serde_json::to_string(&FinalReport::default()).unwrap();
        let s =
            RunStatus::from_records("r", BTreeMap::from([(REPORT_KEY.to_string(), report)]), NOW);
        assert_eq!(s.state, RunState::Complete);
        assert!(
            s.records_per_second.is_sign_positive(),
            "no \"-0 records/s\""
        );
    }

    /// Records as today's workers write them (states as snake_case strings) still parse.
    #[test]
    fn records_written_by_todays_workers_parse() {
        let w = r#"{"worker_id":"w1","run_id":"r","updated_at_ms":1700000000000,"state":"caught_up",
            "http":"127.0.0.1:4000","records_copied":7,"bytes_copied":70,"records_per_second":1.5,
            "bytes_per_second":15.0,"transactions_committed":2,"transactions_aborted":0,
            "partitions":[{"source_topic":"t","target_topic":"x.t","partition":0,"copied_up_to":7,
            "end_offset":7,"lag":0,"goal":7}],"errors":[]}"#;
        let groups = r#"[{"group":"g","state":"active_on_target","detail":"busy","partitions":[]},
            {"group":"h","state":"no_offsets","detail":"","partitions":[]}]"#;
        let s = RunStatus::from_records(
            "r",
            BTreeMap::from([
                ("worker/w1".to_string(), w.to_string()),
                (GROUPS_KEY.to_string(), groups.to_string()),
            ]),
            1_700_000_000_500,
        );
        assert_eq!(s.workers[0].state, WorkerState::CaughtUp);
        assert_eq!(s.state, RunState::CaughtUp);
        assert_eq!(s.groups[0].state, GroupState::ActiveOnTarget);
        assert_eq!(s.groups[1].state, GroupState::NoOffsets);
    }

    #[test]
    fn command_results_round_trip_and_are_found_by_command_and_result_id() {
        use crate::verify::VerifyOutcome;
        let row = VerifyRow {
            group: "g".into(),
            source_topic: "t".into(),
            partition: 0,
            source_offset: 5,
            target_offset: Some(7),
            outcome: VerifyOutcome::RecordDiffers {
                source_record: 5,
                target_record: 7,
            },
        };
        let result = CommandResult {
            command: "verify".into(),
            result_id: "apply-1".into(),
            run_id: "r".into(),
            finished_at_ms: NOW,
            exit_code: 1,
            verification: Some(vec![row.clone()]),
            acls: None,
        };
        assert_eq!(result.key(), "command/verify");
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["verification"][0]["outcome"]["kind"], "record_differs");
        assert_eq!(json["verification"][0]["result"], row.result_text());
        let records = BTreeMap::from([
            (result.key(), json.to_string()),
            (
                worker_key("w"),
                worker("w", NOW, 1, 0, WorkerState::Copying),
            ),
        ]);
        assert_eq!(
            CommandResult::find(&records, "verify", "apply-1"),
            Some(result.clone())
        );
        assert_eq!(
            CommandResult::find(&records, "verify", "apply-0"),
            None,
            "an older call's result is not this call's"
        );
        assert_eq!(CommandResult::find(&records, "copy-acls", "apply-1"), None);
        // The fold ignores command results: they are not workers.
        let s = RunStatus::from_records("r", records, NOW);
        assert_eq!(s.workers.len(), 1);
    }

    #[test]
    fn command_results_tolerate_missing_and_unknown_fields() {
        let text = r#"{"command":"copy-acls","result_id":"x","exit_code":0,
            "acls":[{"source":{"resource_type":"TOPIC","resource_name":"t",
            "pattern_type":"LITERAL","principal":"User:a","host":"*","operation":"READ",
            "permission":"ALLOW"},"target":null,"outcome":"skipped","reason":"r"}],
            "written_by":"a newer runtime"}"#;
        let records = BTreeMap::from([(command_key("copy-acls"), text.to_string())]);
        let r = CommandResult::find(&records, "copy-acls", "x").unwrap();
        assert_eq!(r.verification, None, "absent: not part of this result");
        assert_eq!(r.finished_at_ms, 0);
        assert_eq!(r.acls.unwrap()[0].outcome, crate::acls::AclOutcome::Skipped);
    }

    #[test]
    fn states_serialise_as_snake_case_and_unknown_worker_states_are_tolerated() {
        assert_eq!(
            serde_json::to_string(&RunState::InSync).unwrap(),
            "\"in_sync\""
        );
        assert_eq!(RunState::CaughtUp.to_string(), "caught_up");
        let s: WorkerState = serde_json::from_str("\"draining\"").unwrap();
        assert_eq!(s, WorkerState::Unknown);
        let json = serde_json::to_value(RunStatus::default()).unwrap();
        assert_eq!(json["state"], "provisioning");
    }
}
