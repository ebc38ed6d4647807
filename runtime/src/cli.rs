//! The `ferry-mirror` command line: every command the provider (through its launcher) or a
//! person runs. Errors end here as exit codes: 0 success, 1 failure, 2 invalid spec or usage.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use ferry_kafka::{Admin, ConnectionConfig};
use ferry_mirror_api::spec::{Spec, SpecError};
use ferry_mirror_api::status::{CommandResult, EndOffset, FinalReport, WorkerStatus};
use ferry_mirror_api::{GroupState, now_ms};
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::BaseProducer;

use crate::copier::{Finish, Worker};
use crate::end_offsets::end_offsets;
use crate::metrics::Metrics;
use crate::progress::PartitionKey;
use crate::topics::{self, TopicPair};
use crate::{acls, clients, connect, groups, progress, status, verify};

const HELP: &str = "\
ferry-mirror — copies Kafka topics to another cluster exactly once and translates consumer groups

USAGE:
  ferry-mirror run    --spec FILE [--worker-id ID]
      Copy the spec's topics. Several workers with the same run_id share the partitions.
      until_caught_up: copies up to the source end offsets recorded when each partition was
      first taken, translates the groups, writes a final report, exits 0.
      continuous: keeps copying until SIGTERM/SIGINT; reports in_sync when lag <= in_sync_lag.
      Serves /metrics, /status and /healthz on the spec's http_listen address.
  ferry-mirror status --spec FILE [--json]
      Print the run's progress as published in its status topic on the target cluster.
  ferry-mirror verify --spec FILE [--json]
      For every translated group and partition, compare the record at the group's source offset
      with the record at its target offset, and check no data is skipped. Exits 1 on a mismatch
      (the rows are printed either way). --json: a list of rows {group, source_topic, partition,
      source_offset, target_offset, result, outcome}. --result-id ID (or the environment
      variable FERRY_MIRROR_RESULT_ID): also record the rows and the exit code in the status
      topic under the key command/verify, for callers that cannot read the output.
  ferry-mirror translate --spec FILE [--json]
      Translate every selected consumer group now and commit it on the target where the group
      is idle; record the result in the status topic. Exits 1 if a group failed. --json: a list
      of {group, state, detail, partitions: [{source_topic, target_topic, partition,
      source_offset, target_offset}]}.
  ferry-mirror withdraw-report --spec FILE
      Withdraw the run's final report and group results (tombstones in the status topic), so a
      run extended with more topics reads as running until its workers finish the new work.
  ferry-mirror end-offsets --spec FILE [--json]
      Print the current end offset of every selected source partition (one batched request per
      broker). --json: a list of {source_topic, partition, end_offset}.
  ferry-mirror copy-acls --spec FILE [--principal-map JSON] [--json]
      Create on the target the source's TOPIC and GROUP ACL bindings that concern the run's
      topics and selected groups, as they are (ALL stays ALL), principals mapped through the
      JSON object (e.g. '{\"User:old\": \"User:new\"}'). Prefixed and wildcard bindings that also
      cover topics or groups the run does not copy are skipped and reported. Exits 1 if the
      target refused a binding. --json: a list of {source, target, outcome, reason}.
      --result-id ID (or FERRY_MIRROR_RESULT_ID): also record the rows and the exit code in the
      status topic under the key command/copy-acls (creating the run's internal topics first).

Secrets are never passed on the command line: the spec names a password file or environment
variable. Every broker request is bounded by the cluster's timeout_seconds (default 30) or a
fixed bound. Exit codes: 0 success, 1 failure, 2 invalid spec or usage.
";

/// Bound for each read of verification and group translation (records, committed offsets,
/// group lists).
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a worker may take to stop after SIGTERM/SIGINT before it simply exits.
const STOP_GRACE: Duration = Duration::from_secs(8);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Run,
    Status,
    Verify,
    Translate,
    WithdrawReport,
    EndOffsets,
    CopyAcls,
}

impl Command {
    fn parse(name: &str) -> Option<Command> {
        Some(match name {
            "run" => Command::Run,
            "status" => Command::Status,
            "verify" => Command::Verify,
            "translate" => Command::Translate,
            "withdraw-report" => Command::WithdrawReport,
            "end-offsets" => Command::EndOffsets,
            "copy-acls" => Command::CopyAcls,
            _ => return None,
        })
    }

    fn takes_json(self) -> bool {
        !matches!(self, Command::Run | Command::WithdrawReport)
    }
}

#[derive(Debug)]
struct Args {
    command: Command,
    spec: PathBuf,
    json: bool,
    worker_id: Option<String>,
    principal_map: ferry_mirror_api::acls::PrincipalMap,
    /// verify, copy-acls: record the result in the status topic under this id.
    result_id: Option<String>,
}

/// `Err("")` asks for the help text.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut it = args.into_iter();
    let name = it.next().ok_or("missing command")?;
    if matches!(name.as_str(), "-h" | "--help" | "help") {
        return Err(String::new());
    }
    let command = Command::parse(&name).ok_or_else(|| format!("unknown command {name:?}"))?;
    let (mut spec, mut json, mut worker_id) = (None, false, None);
    let mut principal_map = Default::default();
    let mut result_id = None;
    let recorded = ferry_mirror_api::status::RECORDED_COMMANDS.contains(&name.as_str());
    while let Some(a) = it.next() {
        match a.as_str() {
            "--spec" => spec = Some(PathBuf::from(it.next().ok_or("--spec needs a file")?)),
            "--json" if command.takes_json() => json = true,
            "--worker-id" if command == Command::Run => {
                worker_id = Some(it.next().ok_or("--worker-id needs a value")?);
            }
            "--principal-map" if command == Command::CopyAcls => {
                let text = it.next().ok_or("--principal-map needs a JSON object")?;
                principal_map = ferry_mirror_api::acls::parse_principal_map(&text)?;
            }
            "--result-id" if recorded => {
                result_id = Some(it.next().ok_or("--result-id needs a value")?);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?} for {name}")),
        }
    }
    Ok(Args {
        command,
        spec: spec.ok_or("--spec FILE is required")?,
        json,
        worker_id,
        principal_map,
        result_id,
    })
}

pub(crate) fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ferry-mirror: {e}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    init_logging();
    // The provider passes its result id through the environment: a runtime too old to know
    // it ignores it (an unknown argument would be a usage error).
    let result_id = args.result_id.clone().or_else(|| {
        std::env::var(ferry_mirror_api::status::RESULT_ID_ENV)
            .ok()
            .filter(|id| !id.is_empty())
    });
    let spec = match Spec::load(&args.spec) {
        Ok(s) => s,
        Err(e) => return spec_error(&e),
    };
    let (source, target) = match (
        connect::connection(&spec.source, "source"),
        connect::connection(&spec.target, "target"),
    ) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(e), _) | (_, Err(e)) => return spec_error(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ferry-mirror: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match args.command {
            Command::Run => run(spec, source, target, args.worker_id).await,
            Command::Status => show_status(spec, target, args.json).await,
            Command::Verify => run_verify(spec, source, target, args.json, result_id).await,
            Command::Translate => translate(spec, source, target, args.json).await,
            Command::WithdrawReport => withdraw_report(spec, target).await,
            Command::EndOffsets => show_end_offsets(spec, source, args.json).await,
            Command::CopyAcls => {
                let (map, json) = (args.principal_map, args.json);
                copy_acls(spec, source, target, map, json, result_id).await
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ferry-mirror: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn spec_error(e: &SpecError) -> ExitCode {
    eprintln!("ferry-mirror: invalid spec: {e}");
    ExitCode::from(2)
}

fn init_logging() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Runs blocking librdkafka work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .context("a blocking task failed")?
}

async fn connect_admin(conn: &ConnectionConfig, side: &str) -> Result<Admin> {
    Admin::connect(conn)
        .await
        .with_context(|| format!("{side} cluster"))
}

/// The selected topic pairs, listed on the source.
async fn selected_pairs(spec: &Spec, source: &ConnectionConfig) -> Result<Vec<TopicPair>> {
    let admin = connect_admin(source, "source").await?;
    topics::selected(spec, &admin).await
}

fn target_partitions(pairs: &[TopicPair]) -> Vec<PartitionKey> {
    pairs
        .iter()
        .flat_map(|p| (0..p.partitions).map(move |i| (p.target.clone(), i)))
        .collect()
}

async fn run(
    spec: Spec,
    source: ConnectionConfig,
    target: ConnectionConfig,
    worker_id: Option<String>,
) -> Result<ExitCode> {
    let source_admin = connect_admin(&source, "source").await?;
    let target_admin = connect_admin(&target, "target").await?;
    let pairs = topics::selected(&spec, &source_admin).await?;
    // Internal topics first (the status topic records which target topics the run took on),
    // then the slots topic, then the target topics, which may be thousands of partitions.
    topics::create_internal(&spec, &target_admin).await?;
    let (slots_spec, slots_target) = (spec.clone(), target.clone());
    let source_keys: Vec<PartitionKey> = pairs
        .iter()
        .flat_map(|p| (0..p.partitions).map(move |i| (p.source.clone(), i)))
        .collect();
    blocking(move || crate::copier::record_slot_count(&slots_spec, &slots_target, &source_keys))
        .await?;
    let narrow_targets =
        topics::prepare_target(&spec, &source_admin, &target_admin, &pairs).await?;

    let metrics = Arc::new(Metrics::default());
    let status = Arc::new(Mutex::new(WorkerStatus::default()));
    let http =
        crate::http::serve(&spec.http_listen, Arc::clone(&metrics), Arc::clone(&status)).await?;
    let worker_id = worker_id.unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id()));
    tracing::info!(run_id = %spec.run_id, %worker_id, %http, topics = pairs.len(), "ferry-mirror worker starting");

    let stop = Arc::new(AtomicBool::new(false));
    for kind in [
        tokio::signal::unix::SignalKind::terminate(),
        tokio::signal::unix::SignalKind::interrupt(),
    ] {
        let stop = Arc::clone(&stop);
        let mut signal = tokio::signal::unix::signal(kind)?;
        tokio::spawn(async move {
            signal.recv().await;
            stop.store(true, Ordering::Relaxed);
            // Open transactions are committed on the way out; should that (or taking partitions
            // over) take longer, the worker leaves anyway: that is as safe as SIGKILL, the next
            // owner fences and aborts whatever is left open.
            std::thread::spawn(|| {
                std::thread::sleep(STOP_GRACE);
                tracing::warn!(
                    "still stopping after {}s; exiting now (open transactions are aborted by the next owner)",
                    STOP_GRACE.as_secs()
                );
                std::process::exit(0);
            });
        });
    }
    let terminal = std::io::stderr().is_terminal();
    let worker = Worker {
        spec: spec.clone(),
        worker_id,
        source: source.clone(),
        target: target.clone(),
        metrics,
        stop,
        status,
        http_address: Some(http),
        topics: pairs.iter().map(|p| p.source.clone()).collect(),
        narrow_targets,
        on_status: Some(Box::new(move |s: &WorkerStatus| show_progress(s, terminal))),
    };
    let keys = target_partitions(&pairs);
    let (check_spec, check_target) = (spec.clone(), target.clone());
    let finish = blocking(move || {
        // Asked now and then for the whole run: its MSK IAM token is kept fresh.
        let reader: Arc<BaseConsumer> = crate::connect::create_shared(&clients::reader_config(
            &check_target,
            &check_spec.progress_group(),
        ))?;
        let finish = worker.run(&|| run_complete(&reader, &keys));
        crate::connect::close_in_background(reader);
        finish
    })
    .await?;
    if terminal {
        eprintln!();
    }
    if finish == Finish::CaughtUp {
        let report = final_report(&spec, &source, &target, &pairs).await?;
        print_json(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// True when every selected partition's committed progress reached its goal.
fn run_complete(reader: &BaseConsumer, keys: &[PartitionKey]) -> Result<bool> {
    // A stable read waits out transactions still pending on the progress group, such as one a
    // killed worker left open until the coordinator times it out. Not knowing yet is "not
    // complete": the worker keeps going and asks again, it does not give up the run.
    let stored = match progress::read(reader, keys, READ_TIMEOUT) {
        Ok(stored) => stored,
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                "cannot tell yet whether the run is complete; checking again"
            );
            return Ok(false);
        }
    };
    Ok(keys.iter().all(|k| {
        stored
            .get(k)
            .is_some_and(|p| matches!((p.next_source, p.meta.goal), (Some(n), Some(g)) if n >= g))
    }))
}

/// Translates the groups and writes the final report, once per run: the worker that finishes
/// first fences every other finisher through one transactional id, writes the groups and the
/// report in one transaction, and the others print the report it wrote. A report already in
/// the status topic (a run that completed before) is returned as it is.
async fn final_report(
    spec: &Spec,
    source: &ConnectionConfig,
    target: &ConnectionConfig,
    pairs: &[TopicPair],
) -> Result<FinalReport> {
    let (spec, source, target, pairs) =
        (spec.clone(), source.clone(), target.clone(), pairs.to_vec());
    blocking(move || {
        // A broker restarting makes an attempt fail; translation and the report are idempotent.
        let deadline = std::time::Instant::now() + FINISH_TIMEOUT;
        loop {
            match finish_once(&spec, &source, &target, &pairs) {
                Ok(report) => return Ok(report),
                Err(e) if std::time::Instant::now() < deadline => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "finishing the run failed; retrying"
                    );
                    std::thread::sleep(Duration::from_secs(2));
                }
                Err(e) => return Err(e),
            }
        }
    })
    .await
}

/// How long a worker keeps trying to write the final report.
const FINISH_TIMEOUT: Duration = Duration::from_secs(180);

fn finish_once(
    spec: &Spec,
    source: &ConnectionConfig,
    target: &ConnectionConfig,
    pairs: &[TopicPair],
) -> Result<FinalReport> {
    let status_reader: BaseConsumer = crate::connect::create(&clients::reader_config(
        target,
        &format!("{}.status", spec.worker_group()),
    ))?;
    let written = |timeout| -> Result<Option<FinalReport>> {
        Ok(status::read(&status_reader, &spec.status_topic(), &spec.run_id, timeout)?.report)
    };
    if let Some(report) = written(READ_TIMEOUT)? {
        return Ok(report);
    }
    let finisher: BaseProducer = crate::connect::create(&clients::target_producer_config(
        spec,
        target,
        Some(&spec.finisher_transactional_id()),
    ))?;
    // Fences any other worker finishing the same run; whatever it left open is aborted.
    crate::connect::init_transactions(&finisher, &spec.status_topic(), READ_TIMEOUT)
        .context("becoming the run's finisher")?;
    if let Some(report) = written(READ_TIMEOUT)? {
        return Ok(report);
    }
    let groups = groups::translate_all(spec, source, target, pairs, READ_TIMEOUT)?;
    let keys = target_partitions(pairs);
    let reader: BaseConsumer =
        crate::connect::create(&clients::reader_config(target, &spec.progress_group()))?;
    let stored = progress::read(&reader, &keys, READ_TIMEOUT)?;
    let report = FinalReport {
        run_id: spec.run_id.clone(),
        completed_at_ms: now_ms(),
        topics: pairs.iter().map(|p| p.source.clone()).collect(),
        partitions: keys.len(),
        records_in_goal: stored.values().filter_map(|p| p.meta.goal).sum(),
        records_copied: stored.values().map(|p| p.meta.records).sum(),
        bytes_copied: stored.values().map(|p| p.meta.bytes).sum(),
        groups,
    };
    match status::write_report_once(&finisher, &spec.status_topic(), &report, READ_TIMEOUT) {
        Ok(()) => Ok(report),
        Err(e) => {
            // Fenced by a later finisher: print what it writes.
            tracing::info!(error = format!("{e:#}"), "another worker finishes the run");
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            while std::time::Instant::now() < deadline {
                if let Some(report) = written(READ_TIMEOUT)? {
                    return Ok(report);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e)
        }
    }
}

async fn show_status(spec: Spec, target: ConnectionConfig, json: bool) -> Result<ExitCode> {
    // Says "could not reach Kafka at ..." for an unreachable cluster, rather than a missing run.
    connect_admin(&target, "target").await?;
    let s = blocking(move || {
        let reader: BaseConsumer = crate::connect::create(&clients::reader_config(
            &target,
            &format!("{}.status", spec.worker_group()),
        ))?;
        status::read(&reader, &spec.status_topic(), &spec.run_id, target.timeout)
    })
    .await?;
    if json {
        print_json(&s)?;
    } else {
        print!("{}", status::render(&s));
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_verify(
    spec: Spec,
    source: ConnectionConfig,
    target: ConnectionConfig,
    json: bool,
    result_id: Option<String>,
) -> Result<ExitCode> {
    let pairs = selected_pairs(&spec, &source).await?;
    let (s, t) = (spec.clone(), target.clone());
    let rows = blocking(move || verify::verify(&s, &source, &t, &pairs, READ_TIMEOUT)).await?;
    if json {
        print_json(&rows)?;
    } else {
        print!("{}", verify::render(&rows));
    }
    let exit_code = if rows.iter().all(ferry_mirror_api::VerifyRow::ok) {
        0
    } else {
        1
    };
    if let Some(result_id) = result_id {
        let result = CommandResult {
            command: "verify".into(),
            result_id,
            verification: Some(rows),
            ..CommandResult::default()
        };
        record_result(&spec, &target, result, exit_code).await;
    }
    Ok(ExitCode::from(exit_code as u8))
}

/// Records a one-off command's result in the run's status topic (creating the run's internal
/// topics if no worker has yet). A failure is logged, not fatal: the command did its work and
/// printed its result; a caller that cannot read the output then knows only the exit code.
async fn record_result(
    spec: &Spec,
    target: &ConnectionConfig,
    mut result: CommandResult,
    exit_code: i32,
) {
    result.run_id = spec.run_id.clone();
    result.exit_code = exit_code;
    result.finished_at_ms = now_ms();
    let command = result.command.clone();
    let recorded = async {
        let admin = connect_admin(target, "target").await?;
        topics::create_internal(spec, &admin).await?;
        let (spec, target) = (spec.clone(), target.clone());
        blocking(move || {
            let producer: BaseProducer =
                crate::connect::create(&clients::status_producer_config(&spec, &target))?;
            status::write_command_result(&producer, &spec.status_topic(), &result, target.timeout)
        })
        .await
    };
    if let Err(e) = recorded.await {
        tracing::warn!(
            command,
            error = format!("{e:#}"),
            "cannot record the result in the status topic"
        );
    }
}

async fn translate(
    spec: Spec,
    source: ConnectionConfig,
    target: ConnectionConfig,
    json: bool,
) -> Result<ExitCode> {
    let pairs = selected_pairs(&spec, &source).await?;
    let results = blocking(move || {
        let results = groups::translate_all(&spec, &source, &target, &pairs, READ_TIMEOUT)?;
        // With no group there is nothing to record (and the run's topics may not exist).
        if !results.is_empty() {
            let producer: BaseProducer =
                crate::connect::create(&clients::status_producer_config(&spec, &target))?;
            status::write_groups(&producer, &spec.status_topic(), &results, target.timeout)?;
        }
        Ok(results)
    })
    .await?;
    if json {
        print_json(&results)?;
    } else {
        for g in &results {
            println!("group {}: {} {}", g.group, g.state, g.detail);
        }
        println!("{} group(s) translated or checked", results.len());
    }
    Ok(if results.iter().any(|g| g.state == GroupState::Failed) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn copy_acls(
    spec: Spec,
    source: ConnectionConfig,
    target: ConnectionConfig,
    map: ferry_mirror_api::acls::PrincipalMap,
    json: bool,
    result_id: Option<String>,
) -> Result<ExitCode> {
    let rows = acls::copy_acls(&spec, &source, &target, &map, READ_TIMEOUT).await?;
    if json {
        print_json(&rows)?;
    } else {
        for r in &rows {
            println!("{}: {}", r.outcome, r.line());
        }
        println!("{} ACL binding(s) considered", rows.len());
    }
    let refused = rows
        .iter()
        .any(|r| r.outcome == ferry_mirror_api::acls::AclOutcome::Refused);
    let exit_code = i32::from(refused);
    if let Some(result_id) = result_id {
        let result = CommandResult {
            command: "copy-acls".into(),
            result_id,
            acls: Some(rows),
            ..CommandResult::default()
        };
        record_result(&spec, &target, result, exit_code).await;
    }
    Ok(ExitCode::from(exit_code as u8))
}

async fn withdraw_report(spec: Spec, target: ConnectionConfig) -> Result<ExitCode> {
    let topic = spec.status_topic();
    // Writing to a missing topic could auto-create it without compaction: a run that never
    // started has no report to withdraw.
    let admin = connect_admin(&target, "target").await?;
    if admin.describe_topic(&topic).await?.is_none() {
        eprintln!(
            "ferry-mirror: run {} has no status topic; nothing to withdraw",
            spec.run_id
        );
        return Ok(ExitCode::SUCCESS);
    }
    blocking(move || {
        let producer: BaseProducer =
            crate::connect::create(&clients::status_producer_config(&spec, &target))?;
        status::withdraw_report(&producer, &topic, target.timeout)
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

async fn show_end_offsets(spec: Spec, source: ConnectionConfig, json: bool) -> Result<ExitCode> {
    let pairs = selected_pairs(&spec, &source).await?;
    let keys: Vec<PartitionKey> = pairs
        .iter()
        .flat_map(|p| (0..p.partitions).map(move |i| (p.source.clone(), i)))
        .collect();
    let ends = blocking(move || {
        let reader: BaseConsumer = crate::connect::create(&clients::reader_config(
            &source,
            &format!("{}.offsets", spec.worker_group()),
        ))?;
        end_offsets(&reader, &keys, source.timeout)
    })
    .await?;
    let mut rows: Vec<EndOffset> = ends
        .into_iter()
        .map(|((source_topic, partition), end_offset)| EndOffset {
            source_topic,
            partition,
            end_offset,
        })
        .collect();
    rows.sort_by(|a, b| (&a.source_topic, a.partition).cmp(&(&b.source_topic, b.partition)));
    if json {
        print_json(&rows)?;
    } else {
        println!("{:<30} {:>5} {:>14}", "topic", "part", "end offset");
        for r in &rows {
            println!(
                "{:<30} {:>5} {:>14}",
                r.source_topic, r.partition, r.end_offset
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show_progress(s: &WorkerStatus, terminal: bool) {
    let lag: i64 = s.partitions.iter().map(|p| p.lag).sum();
    let copied_goal: i64 = s.partitions.iter().filter_map(|p| p.goal).sum();
    let line = format!(
        "{} records ({:.1} MB) copied, {:.0} rec/s, {:.1} MB/s, lag {lag}, {} partitions, state {}",
        s.records_copied,
        s.bytes_copied as f64 / 1e6,
        s.records_per_second,
        s.bytes_per_second / 1e6,
        s.partitions.len(),
        s.state
    );
    if terminal {
        let width = 30usize;
        let done = if copied_goal > 0 {
            ((copied_goal - lag).max(0) as f64 / copied_goal as f64).min(1.0)
        } else {
            1.0
        };
        let filled = (done * width as f64) as usize;
        eprint!(
            "\r[{}{}] {:>3.0}% {line}   ",
            "#".repeat(filled),
            " ".repeat(width - filled),
            done * 100.0
        );
    } else {
        tracing::info!("{line}");
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "worker".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn every_command_parses_with_its_options() {
        let a = parse(&["run", "--spec", "s.json", "--worker-id", "w1"]).unwrap();
        assert_eq!(a.command, Command::Run);
        assert_eq!(a.worker_id.as_deref(), Some("w1"));
        for (name, command) in [
            ("status", Command::Status),
            ("verify", Command::Verify),
            ("translate", Command::Translate),
            ("end-offsets", Command::EndOffsets),
        ] {
            let a = parse(&[name, "--spec", "s.json", "--json"]).unwrap();
            assert_eq!((a.command, a.json), (command, true));
        }
        let a = parse(&["withdraw-report", "--spec", "s.json"]).unwrap();
        assert_eq!(a.command, Command::WithdrawReport);
        let a = parse(&[
            "copy-acls",
            "--spec",
            "s.json",
            "--principal-map",
            r#"{"User:CN=a,O=x": "User:b"}"#,
            "--json",
        ])
        .unwrap();
        assert_eq!((a.command, a.json), (Command::CopyAcls, true));
        assert_eq!(a.principal_map["User:CN=a,O=x"], "User:b");
        assert!(parse(&["copy-acls", "--spec", "s", "--principal-map", "a=b"]).is_err());
        let a = parse(&["verify", "--spec", "s", "--json", "--result-id", "apply-7"]).unwrap();
        assert_eq!(a.result_id.as_deref(), Some("apply-7"));
        let a = parse(&["copy-acls", "--spec", "s", "--result-id", "x"]).unwrap();
        assert_eq!(a.result_id.as_deref(), Some("x"));
        assert!(parse(&["translate", "--spec", "s", "--result-id", "x"]).is_err());
        assert!(parse(&["verify", "--spec", "s", "--principal-map", "{}"]).is_err());
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        assert!(
            parse(&["copy", "--spec", "s"])
                .unwrap_err()
                .contains("unknown command")
        );
        assert!(
            parse(&["status"])
                .unwrap_err()
                .contains("--spec FILE is required")
        );
        assert!(parse(&["withdraw-report", "--spec", "s", "--json"]).is_err());
        assert!(parse(&["verify", "--spec", "s", "--worker-id", "w"]).is_err());
        assert_eq!(parse(&["--help"]).unwrap_err(), "");
        assert!(parse(&[]).is_err());
    }

    #[test]
    fn help_documents_every_command() {
        for name in [
            "run",
            "status",
            "verify",
            "translate",
            "withdraw-report",
            "end-offsets",
            "copy-acls",
        ] {
            assert!(HELP.contains(&format!("ferry-mirror {name}")), "{name}");
            assert!(Command::parse(name).is_some());
        }
    }
}
