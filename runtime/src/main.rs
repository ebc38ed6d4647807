//! `ferry-mirror`: run, status and verify.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use ferry_kafka::{Admin, ConnectionConfig};
use ferry_mirror::copier::{Finish, Worker};
use ferry_mirror::metrics::Metrics;
use ferry_mirror::spec::{Spec, SpecError};
use ferry_mirror::status::{self, FinalReport, WorkerStatus};
use ferry_mirror::topics::{self, TopicPair};
use ferry_mirror::{clients, groups, progress, verify};
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const HELP: &str = "\
ferry-mirror — copies Kafka topics to another cluster exactly once and translates consumer groups

USAGE:
  ferry-mirror run    --spec FILE [--worker-id ID]
      Copy the spec's topics. Several workers with the same run_id share the partitions.
      until_caught_up: copies up to the source end offsets recorded when each partition was
      first taken, translates the groups, writes a final report, exits 0.
      continuous: keeps copying until SIGTERM/SIGINT; reports in_sync when lag <= in_sync_lag.
      Serves /metrics, /status and /healthz on the spec's loopback http_listen address.
  ferry-mirror status --spec FILE [--json]
      Print the run's progress as published in its status topic on the target cluster.
  ferry-mirror verify --spec FILE [--json]
      For every translated group and partition, compare the record at the group's source offset
      with the record at its target offset, and check no data is skipped. Exits 1 on a mismatch.

Secrets are never passed on the command line: the spec names a password file or environment
variable. Exit codes: 0 success, 1 failure, 2 invalid spec or usage.
";

struct Args {
    command: String,
    spec: PathBuf,
    json: bool,
    worker_id: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let command = it.next().ok_or("missing command")?;
    if matches!(command.as_str(), "-h" | "--help" | "help") {
        return Err(String::new());
    }
    let (mut spec, mut json, mut worker_id) = (None, false, None);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--spec" => spec = Some(PathBuf::from(it.next().ok_or("--spec needs a file")?)),
            "--json" => json = true,
            "--worker-id" => worker_id = Some(it.next().ok_or("--worker-id needs a value")?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !matches!(command.as_str(), "run" | "status" | "verify") {
        return Err(format!("unknown command {command:?}"));
    }
    Ok(Args {
        command,
        spec: spec.ok_or("--spec FILE is required")?,
        json,
        worker_id,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
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
    let spec = match Spec::load(&args.spec) {
        Ok(s) => s,
        Err(e) => return spec_error(&e),
    };
    let (source, target) = match (
        spec.source.connection("source"),
        spec.target.connection("target"),
    ) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(e), _) | (_, Err(e)) => return spec_error(&e),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async {
        match args.command.as_str() {
            "run" => run(spec, source, target, args.worker_id).await,
            "status" => show_status(&spec, &target, args.json).map(|()| ExitCode::SUCCESS),
            _ => run_verify(&spec, &source, &target, args.json).await,
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

async fn connect(source: &ConnectionConfig, target: &ConnectionConfig) -> Result<(Admin, Admin)> {
    let s = Admin::connect(source).await.context("source cluster")?;
    let t = Admin::connect(target).await.context("target cluster")?;
    Ok((s, t))
}

async fn run(
    spec: Spec,
    source: ConnectionConfig,
    target: ConnectionConfig,
    worker_id: Option<String>,
) -> Result<ExitCode> {
    let (source_admin, target_admin) = connect(&source, &target).await?;
    let pairs = topics::selected(&spec, &source_admin).await?;
    topics::prepare_target(&spec, &source_admin, &target_admin, &pairs).await?;

    let metrics = Arc::new(Metrics::default());
    let status = Arc::new(Mutex::new(WorkerStatus::default()));
    let http =
        ferry_mirror::http::serve(&spec.http_listen, Arc::clone(&metrics), Arc::clone(&status))
            .await?;
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
        on_status: Some(Box::new(move |s: &WorkerStatus| show_progress(s, terminal))),
    };
    let pairs_for_check = pairs.clone();
    let (check_spec, check_target) = (spec.clone(), target.clone());
    let finish = tokio::task::spawn_blocking(move || {
        let reader: BaseConsumer =
            clients::reader_config(&check_target, &check_spec.progress_group()).create()?;
        worker.run(&|| run_complete(&check_spec, &reader, &pairs_for_check))
    })
    .await??;
    if terminal {
        eprintln!();
    }
    if finish == Finish::CaughtUp {
        let report = final_report(&spec, &source, &target, &pairs).await?;
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// True when every selected partition's committed progress reached its goal.
fn run_complete(spec: &Spec, reader: &BaseConsumer, pairs: &[TopicPair]) -> Result<bool> {
    let keys: Vec<(String, i32)> = pairs
        .iter()
        .flat_map(|p| (0..p.partitions).map(move |i| (p.target.clone(), i)))
        .collect();
    let stored = progress::read(reader, &keys, Duration::from_secs(30))?;
    let _ = spec;
    Ok(keys.iter().all(|k| {
        stored
            .get(k)
            .is_some_and(|p| matches!((p.next_source, p.meta.goal), (Some(n), Some(g)) if n >= g))
    }))
}

async fn final_report(
    spec: &Spec,
    source: &ConnectionConfig,
    target: &ConnectionConfig,
    pairs: &[TopicPair],
) -> Result<FinalReport> {
    let (spec2, source2, target2, pairs2) =
        (spec.clone(), source.clone(), target.clone(), pairs.to_vec());
    let groups = tokio::task::spawn_blocking(move || {
        groups::translate_all(&spec2, &source2, &target2, &pairs2, Duration::from_secs(30))
    })
    .await??;
    let keys: Vec<(String, i32)> = pairs
        .iter()
        .flat_map(|p| (0..p.partitions).map(move |i| (p.target.clone(), i)))
        .collect();
    let reader: BaseConsumer = clients::reader_config(target, &spec.progress_group()).create()?;
    let stored = progress::read(&reader, &keys, Duration::from_secs(30))?;
    let report = FinalReport {
        run_id: spec.run_id.clone(),
        completed_at_ms: status::now_ms(),
        topics: pairs.iter().map(|p| p.source.clone()).collect(),
        partitions: keys.len(),
        records_in_goal: stored.values().filter_map(|p| p.meta.goal).sum(),
        groups,
    };
    let producer: BaseProducer = clients::target_producer_config(spec, target, None).create()?;
    let topic = spec.status_topic();
    for (key, value) in [
        ("groups", serde_json::to_vec(&report.groups)?),
        ("report", serde_json::to_vec(&report)?),
    ] {
        producer
            .send(BaseRecord::to(&topic).partition(0).key(key).payload(&value))
            .map_err(|(e, _)| e)
            .context("writing the final report")?;
    }
    producer
        .flush(Duration::from_secs(30))
        .context("writing the final report")?;
    Ok(report)
}

fn show_status(spec: &Spec, target: &ConnectionConfig, json: bool) -> Result<()> {
    let reader: BaseConsumer =
        clients::reader_config(target, &format!("{}.status", spec.worker_group())).create()?;
    let s = status::read(&reader, &spec.status_topic(), &spec.run_id, target.timeout)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print!("{}", status::render(&s));
    }
    Ok(())
}

async fn run_verify(
    spec: &Spec,
    source: &ConnectionConfig,
    target: &ConnectionConfig,
    json: bool,
) -> Result<ExitCode> {
    let (source_admin, _) = connect(source, target).await?;
    let pairs = topics::selected(spec, &source_admin).await?;
    let (spec, source, target) = (spec.clone(), source.clone(), target.clone());
    let rows = tokio::task::spawn_blocking(move || {
        verify::verify(&spec, &source, &target, &pairs, Duration::from_secs(30))
    })
    .await??;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", verify::render(&rows));
    }
    Ok(if rows.iter().all(verify::VerifyRow::ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
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
