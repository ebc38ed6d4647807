//! `ferry_mirror`: a migration of topics and consumer groups from one cluster to another, as a
//! resource. Create provisions `ferry-mirror` workers and waits for the copy; read refreshes from
//! the run's status topic on the target; destroy drains and stops the workers.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ferry_kafka::{Admin, ConnectionConfig};
use ferry_mirror::spec::{ClusterSpec, Mode, SaslSpec, Spec, TlsSpec, TopicSelection};
use ferry_mirror::status::RunStatus;

use crate::connection::{Origin, Resolved, connection_block, parse};
use crate::framework::{
    Attribute, AttributePath, Block, Diagnostics, NestedBlock, Plan, Resource, Schema, Type, Value,
    timeouts,
};
use crate::launcher::Launcher;
use crate::launcher::local::{LocalLauncher, default_binary, write_private};
use crate::provider::ProviderState;

pub struct MirrorResource;

const OPERATIONS: [&str; 3] = ["create", "update", "delete"];
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);
const POLL_EVERY: Duration = Duration::from_secs(3);
/// In-place attributes that change the workers' spec (a change restarts them on the new one).
const SPEC_FIELDS: [&str; 5] = [
    "topics",
    "topics_regex",
    "exclude_regex",
    "consumer_groups_regex",
    "in_sync_lag",
];

fn verification_type() -> Type {
    Type::list(Type::object([
        ("group", Type::String),
        ("topic", Type::String),
        ("partition", Type::Number),
        ("source_offset", Type::Number),
        ("target_offset", Type::Number),
        ("result", Type::String),
    ]))
}

#[async_trait]
impl Resource for MirrorResource {
    fn type_name(&self) -> &'static str {
        "ferry_mirror"
    }

    fn schema(&self) -> Schema {
        let cluster = |name: &str, what: &str| {
            NestedBlock::single(name, connection_block(what, true)).force_new()
        };
        Schema {
            version: 0,
            block: Block::new(
                "Copies topics and translates consumer groups from a source to a target cluster with \
                 ferry-mirror workers. Apply returns when the copy is complete (or in sync, for a continuous mirror).",
            )
            .attribute(Attribute::optional_computed("run_id", Type::String).force_new().describe(
                "Names the run. Defaults to a name derived from the clusters and topics, so a timed-out apply \
                 resumes the same run.",
            ))
            .attribute(Attribute::optional("topics", Type::list(Type::String)).describe("Source topics to copy."))
            .attribute(Attribute::optional("topics_regex", Type::String).describe("Also copy source topics whose whole name matches."))
            .attribute(Attribute::optional("exclude_regex", Type::String).describe("Never copy topics whose whole name matches."))
            .attribute(Attribute::optional("topic_name_prefix", Type::String).force_new().describe(
                "Prefix for target topic names; empty keeps names identical.",
            ))
            .attribute(Attribute::optional("consumer_groups_regex", Type::String).describe(
                "Source consumer groups whose offsets are translated to the target.",
            ))
            .attribute(Attribute::optional("mode", Type::String).force_new().describe(
                "until_caught_up (default): copy what the source holds now, then finish. continuous: keep copying.",
            ))
            .attribute(Attribute::optional("workers", Type::Number).describe("Number of worker processes (default 1)."))
            .attribute(Attribute::optional("exactly_once", Type::Bool).force_new().describe(
                "Records and progress in one target transaction (default true).",
            ))
            .attribute(Attribute::optional("in_sync_lag", Type::Number).describe(
                "continuous: in sync when the total lag is at most this many records (default 1000).",
            ))
            .attribute(Attribute::optional("verify", Type::Bool).describe(
                "Verify translated groups at the end and fail on a mismatch (default true).",
            ))
            .attribute(Attribute::computed("id", Type::String).describe("The run id."))
            .attribute(Attribute::computed("state", Type::String).describe(
                "provisioning, copying, caught_up, in_sync, complete or failed.",
            ))
            .attribute(Attribute::computed("workers_running", Type::Number).describe("Workers alive at the last refresh."))
            .attribute(Attribute::computed("topics_copied", Type::Number).describe("Number of topics in the run."))
            .attribute(Attribute::computed("records_copied", Type::Number).describe("Records written to the target."))
            .attribute(Attribute::computed("bytes_copied", Type::Number).describe("Key and value bytes written."))
            .attribute(Attribute::computed("lag", Type::Number).describe("Records still to copy."))
            .attribute(Attribute::computed("groups_translated", Type::Number).describe("Consumer groups committed on the target."))
            .attribute(Attribute::computed("verification", verification_type()).describe("Per group and partition verification results."))
            .attribute(Attribute::computed("started_at", Type::String).describe("RFC 3339 time the run was started."))
            .attribute(Attribute::computed("completed_at", Type::String).describe("RFC 3339 time the run completed."))
            .block(cluster("source", "The cluster to copy from."))
            .block(cluster("target", "The cluster to copy to (e.g. the new MSK cluster)."))
            .block(NestedBlock::single(
                "launcher",
                Block::new("Where the workers run. Default: local processes.").block(NestedBlock::single(
                    "local",
                    Block::new("Workers as processes on the machine running Terraform (e.g. the Jenkins agent).")
                        .attribute(Attribute::optional("state_dir", Type::String).describe(
                            "Directory for the spec, secrets (mode 0600) and logs (default .ferry in the working directory).",
                        ))
                        .attribute(Attribute::optional("binary", Type::String).describe(
                            "Path of ferry-mirror (default: beside the provider, FERRY_MIRROR_BIN, or PATH).",
                        )),
                )),
            ))
            .block(timeouts::block(&OPERATIONS)),
        }
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        timeouts::validate(config, &OPERATIONS, diags);
        if let Some(mode) = config.get("mode").as_str()
            && !matches!(mode, "until_caught_up" | "continuous")
        {
            diags.attribute_error(
                AttributePath::root("mode"),
                "Invalid mode",
                "Use \"until_caught_up\" or \"continuous\".",
            );
        }
        if let Some(w) = config.get("workers").as_i64()
            && !(1..=64).contains(&w)
        {
            diags.attribute_error(
                AttributePath::root("workers"),
                "Invalid worker count",
                "Use 1 to 64 workers.",
            );
        }
        let no_topics = config
            .get("topics")
            .as_list()
            .is_none_or(<[Value]>::is_empty)
            && config.get("topics").is_wholly_known();
        if no_topics && config.get("topics_regex").is_null() {
            diags.attribute_error(
                AttributePath::root("topics"),
                "No topics selected",
                "Set topics, topics_regex, or both.",
            );
        }
        for field in ["topics_regex", "exclude_regex", "consumer_groups_regex"] {
            if let Some(p) = config.get(field).as_str()
                && let Err(e) = regex::Regex::new(p)
            {
                diags.attribute_error(
                    AttributePath::root(field),
                    "Invalid regular expression",
                    e.to_string(),
                );
            }
        }
        for side in ["source", "target"] {
            parse(
                config.get(side),
                Origin::ClusterBlock,
                &AttributePath::root(side),
                diags,
            );
        }
    }

    async fn plan(&self, _provider: &ProviderState, plan: &mut Plan, _diags: &mut Diagnostics) {
        if plan.planned.get("run_id").is_unknown()
            && let Some(id) = derived_run_id(&plan.config)
        {
            plan.planned.set("run_id", Value::string(id));
        }
        plan.planned.set("id", plan.planned.get("run_id").clone());
        if plan.is_create() {
            return;
        }
        // Workers that died before finishing are drift: plan an update that restarts them.
        let wanted = plan.planned.get("workers").as_i64().unwrap_or(1);
        let running = plan.prior.get("workers_running").as_i64().unwrap_or(0);
        let finished = matches!(plan.prior.get("state").as_str(), Some("complete"));
        let config_changed = SPEC_FIELDS
            .iter()
            .chain(&["workers", "verify"])
            .any(|k| plan.prior.get(k) != plan.planned.get(k));
        if (!finished && running < wanted) || config_changed {
            for computed in [
                "state",
                "workers_running",
                "topics_copied",
                "records_copied",
                "bytes_copied",
                "lag",
                "groups_translated",
                "verification",
                "completed_at",
            ] {
                plan.planned.set(computed, Value::Unknown);
            }
        }
    }

    async fn create(
        &self,
        provider: &ProviderState,
        planned: &Value,
        diags: &mut Diagnostics,
    ) -> Value {
        let Some(run) = Run::prepare(planned, diags).await else {
            return Value::Null;
        };
        let _ = provider;
        let mut state = planned.clone();
        state.set("run_id", Value::string(&run.spec.run_id));
        state.set("id", Value::string(&run.spec.run_id));
        state.set("started_at", Value::string(now_rfc3339()));
        run.start_and_wait(planned, &mut state, "create", diags)
            .await;
        if diags.has_errors() {
            // Not saved: the next apply runs create again, which adopts the same run (same run id,
            // workers already running are kept) instead of starting over.
            return Value::Null;
        }
        state
    }

    async fn read(
        &self,
        _provider: &ProviderState,
        state: &Value,
        diags: &mut Diagnostics,
    ) -> Value {
        let Some(run) = Run::prepare(state, diags).await else {
            return state.clone();
        };
        let mut next = state.clone();
        match run.status().await {
            Ok(status) => run.fill(&mut next, &status),
            Err(e) => diags.error("Cannot read the run's status", e),
        }
        next.set("workers_running", Value::int(run.launcher.running() as i64));
        next
    }

    async fn update(
        &self,
        _provider: &ProviderState,
        prior: &Value,
        planned: &Value,
        diags: &mut Diagnostics,
    ) -> Value {
        let Some(run) = Run::prepare(planned, diags).await else {
            return prior.clone();
        };
        let mut state = planned.clone();
        state.set("started_at", prior.get("started_at").clone());
        let spec_changed = SPEC_FIELDS.iter().any(|k| prior.get(k) != planned.get(k));
        if spec_changed {
            // Workers read the spec at start: restart them on the new one (they resume).
            let _ = run.launcher.stop_all(Duration::from_secs(60));
            // A finished run that gains work must not read as complete from its old report.
            if let Err(e) = run.withdraw_report().await {
                diags.error("Cannot reopen the run", e);
                return prior.clone();
            }
        }
        run.start_and_wait(planned, &mut state, "update", diags)
            .await;
        if diags.has_errors() {
            return prior.clone();
        }
        state
    }

    async fn delete(&self, _provider: &ProviderState, prior: &Value, diags: &mut Diagnostics) {
        let Some(run) = Run::prepare(prior, diags).await else {
            return;
        };
        let within = timeouts::get(prior, "delete", DEFAULT_TIMEOUT);
        if run.spec.mode == Mode::Continuous && run.launcher.running() > 0 {
            // Cutover: producers on the source are stopped. Everything up to the source's end
            // offsets now must be copied before the workers stop.
            let ends = match run.source_end_offsets().await {
                Ok(e) => e,
                Err(e) => return diags.error("Cannot read the source end offsets", e),
            };
            let deadline = Instant::now() + within;
            loop {
                match run.status().await {
                    Ok(s) => {
                        let mut copied: std::collections::HashMap<(String, i32), i64> =
                            Default::default();
                        for p in s.workers.iter().flat_map(|w| &w.partitions) {
                            let e = copied
                                .entry((p.source_topic.clone(), p.partition))
                                .or_insert(0);
                            *e = (*e).max(p.copied_up_to);
                        }
                        let behind: i64 = ends
                            .iter()
                            .map(|(k, end)| (end - copied.get(k).copied().unwrap_or(0)).max(0))
                            .sum();
                        if behind == 0 {
                            break;
                        }
                        tracing::info!(behind, "draining the mirror before stopping it");
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read status while draining"),
                }
                if Instant::now() > deadline {
                    diags.error(
                        "Mirror did not drain",
                        format!("Lag did not reach 0 within {within:?}; the workers keep running."),
                    );
                    return;
                }
                tokio::time::sleep(POLL_EVERY).await;
            }
        }
        if let Err(e) = run.launcher.stop_all(Duration::from_secs(60)) {
            diags.error("Cannot stop the workers", e.to_string());
            return;
        }
        if run.spec.mode == Mode::Continuous {
            run.final_translation(prior, diags).await;
        }
    }

    async fn import(&self, _provider: &ProviderState, id: &str, diags: &mut Diagnostics) -> Value {
        // The spec written at create time holds everything but the secrets.
        let path = PathBuf::from(".ferry").join(id).join("spec.json");
        let spec = match Spec::load(&path) {
            Ok(s) => s,
            Err(e) => {
                diags.error(
                    "Cannot import the mirror",
                    format!("Import reads the run's spec from {}: {e}. Run import in the directory that ran the original apply.", path.display()),
                );
                return Value::Null;
            }
        };
        let mut state = Value::empty_object(&self.schema().block.implied_type());
        state.set("run_id", Value::string(id));
        state.set("id", Value::string(id));
        state.set("source", cluster_value(&spec.source));
        state.set("target", cluster_value(&spec.target));
        if !spec.topics.names.is_empty() {
            state.set(
                "topics",
                Value::List(spec.topics.names.iter().map(Value::string).collect()),
            );
        }
        if let Some(r) = &spec.topics.include_regex {
            state.set("topics_regex", Value::string(r));
        }
        if let Some(r) = &spec.consumer_groups_regex {
            state.set("consumer_groups_regex", Value::string(r));
        }
        state
    }
}

/// A stable run id for a configuration: the same clusters and topics give the same run.
fn derived_run_id(config: &Value) -> Option<String> {
    let parts = [
        config.get("source").get("bootstrap_servers"),
        config.get("target").get("bootstrap_servers"),
        config.get("topics"),
        config.get("topics_regex"),
        config.get("topic_name_prefix"),
    ];
    if parts.iter().any(|v| !v.is_wholly_known()) {
        return None;
    }
    let text = format!("{parts:?}");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Some(format!("ferry-{:012x}", h & 0xffff_ffff_ffff))
}

fn cluster_value(c: &ClusterSpec) -> Value {
    let mut v = Value::empty_object(&connection_block("", true).implied_type());
    v.set(
        "bootstrap_servers",
        Value::List(c.bootstrap_servers.iter().map(Value::string).collect()),
    );
    v
}

/// RFC 3339 in UTC, to the second.
fn rfc3339(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

/// Everything one operation needs: the spec, both connections, and the launcher.
struct Run {
    spec: Spec,
    source: ConnectionConfig,
    target: ConnectionConfig,
    launcher: Box<dyn Launcher>,
}

impl Run {
    async fn prepare(value: &Value, diags: &mut Diagnostics) -> Option<Run> {
        let resolve = |side: &str, diags: &mut Diagnostics| match parse(
            value.get(side),
            Origin::ClusterBlock,
            &AttributePath::root(side),
            diags,
        ) {
            Resolved::Known(c) => Some(c),
            _ => {
                diags.attribute_error(
                    AttributePath::root(side),
                    "Cluster not known",
                    format!("The {side} block must be known at apply time."),
                );
                None
            }
        };
        let source = resolve("source", diags)?;
        let target = resolve("target", diags)?;
        if diags.has_errors() {
            return None;
        }
        let run_id = value
            .get("run_id")
            .as_str()
            .map(str::to_string)
            .or_else(|| derived_run_id(value))?;
        let local = value.get("launcher").get("local");
        let state_dir = PathBuf::from(local.get("state_dir").as_str().unwrap_or(".ferry"));
        let run_dir = std::path::absolute(state_dir.join(&run_id))
            .unwrap_or_else(|_| state_dir.join(&run_id));
        if let Err(e) = std::fs::create_dir_all(&run_dir) {
            diags.attribute_error(
                AttributePath::root("launcher"),
                "Cannot create the state directory",
                format!("{}: {e}", run_dir.display()),
            );
            return None;
        }
        let spec = match write_spec(value, &run_id, &run_dir, &source, &target) {
            Ok(s) => s,
            Err(e) => {
                diags.error("Invalid mirror configuration", e);
                return None;
            }
        };
        let binary = local
            .get("binary")
            .as_str()
            .map_or_else(default_binary, PathBuf::from);
        let launcher = LocalLauncher {
            spec: run_dir.join("spec.json"),
            run_dir,
            binary,
        };
        Some(Run {
            spec,
            source,
            target,
            launcher: Box::new(launcher),
        })
    }

    async fn withdraw_report(&self) -> Result<(), String> {
        let (spec, target) = (self.spec.clone(), self.target.clone());
        tokio::task::spawn_blocking(move || {
            let producer: rdkafka::producer::BaseProducer =
                ferry_mirror::clients::target_producer_config(&spec, &target, None)
                    .create()
                    .map_err(|e| e.to_string())?;
            ferry_mirror::status::withdraw_report(
                &producer,
                &spec.status_topic(),
                Duration::from_secs(30),
            )
            .map_err(|e| format!("{e:#}"))
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// The selected source topics and their target names.
    async fn pairs(&self) -> Result<Vec<ferry_mirror::topics::TopicPair>, String> {
        let admin = Admin::connect(&self.source)
            .await
            .map_err(|e| e.to_string())?;
        ferry_mirror::topics::selected(&self.spec, &admin)
            .await
            .map_err(|e| format!("{e:#}"))
    }

    /// The source's current end offset of every selected partition.
    async fn source_end_offsets(
        &self,
    ) -> Result<std::collections::HashMap<(String, i32), i64>, String> {
        let pairs = self.pairs().await?;
        let (spec, source) = (self.spec.clone(), self.source.clone());
        tokio::task::spawn_blocking(move || {
            let reader: rdkafka::consumer::BaseConsumer = ferry_mirror::clients::reader_config(
                &source,
                &format!("{}.provider", spec.worker_group()),
            )
            .create()
            .map_err(|e| e.to_string())?;
            let mut out = std::collections::HashMap::new();
            for pair in &pairs {
                for p in 0..pair.partitions {
                    let (_, high) = rdkafka::consumer::Consumer::fetch_watermarks(
                        &reader,
                        &pair.source,
                        p,
                        Duration::from_secs(15),
                    )
                    .map_err(|e| e.to_string())?;
                    out.insert((pair.source.clone(), p), high);
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| e.to_string())?
    }

    async fn status(&self) -> Result<RunStatus, String> {
        let (spec, target) = (self.spec.clone(), self.target.clone());
        tokio::task::spawn_blocking(move || {
            let reader: rdkafka::consumer::BaseConsumer = ferry_mirror::clients::reader_config(
                &target,
                &format!("{}.provider", spec.worker_group()),
            )
            .create()
            .map_err(|e| e.to_string())?;
            ferry_mirror::status::read(
                &reader,
                &spec.status_topic(),
                &spec.run_id,
                Duration::from_secs(15),
            )
            .map_err(|e| format!("{e:#}"))
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Copies the run's status into the resource's computed attributes.
    fn fill(&self, state: &mut Value, s: &RunStatus) {
        state.set("state", Value::string(&s.state));
        state.set("records_copied", Value::int(s.records_copied as i64));
        state.set("bytes_copied", Value::int(s.bytes_copied as i64));
        state.set("lag", Value::int(s.lag));
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
        state.set("topics_copied", Value::int(topics as i64));
        let translated = s.groups.iter().filter(|g| g.state == "translated").count();
        state.set("groups_translated", Value::int(translated as i64));
        if let Some(r) = &s.report {
            let t = time::OffsetDateTime::from_unix_timestamp(r.completed_at_ms / 1000)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            state.set("completed_at", Value::string(rfc3339(t)));
        } else if state.get("completed_at").is_unknown() {
            state.set("completed_at", Value::Null);
        }
        if state.get("verification").is_unknown() {
            state.set("verification", Value::List(Vec::new()));
        }
    }

    /// Checks the clusters and topics, starts the workers and polls until done.
    async fn start_and_wait(
        &self,
        config: &Value,
        state: &mut Value,
        operation: &str,
        diags: &mut Diagnostics,
    ) {
        let source_admin = match Admin::connect(&self.source).await {
            Ok(a) => a,
            Err(e) => {
                return diags.attribute_error(
                    AttributePath::root("source"),
                    "Cannot reach the source cluster",
                    e.to_string(),
                );
            }
        };
        if let Err(e) = Admin::connect(&self.target).await {
            return diags.attribute_error(
                AttributePath::root("target"),
                "Cannot reach the target cluster",
                e.to_string(),
            );
        }
        if let Err(e) = ferry_mirror::topics::selected(&self.spec, &source_admin).await {
            return diags.attribute_error(
                AttributePath::root("topics"),
                "Topic selection",
                format!("{e:#}"),
            );
        }
        let workers = config.get("workers").as_i64().unwrap_or(1).max(1) as usize;
        if let Err(e) = self.launcher.ensure_running(workers) {
            return diags.attribute_error(
                AttributePath::root("launcher"),
                "Cannot start the workers",
                e.to_string(),
            );
        }
        let within = timeouts::get(config, operation, DEFAULT_TIMEOUT);
        let deadline = Instant::now() + within;
        let continuous = self.spec.mode == Mode::Continuous;
        let started_ms = ferry_mirror::status::now_ms();
        let mut last = RunStatus::default();
        loop {
            tokio::time::sleep(POLL_EVERY).await;
            match self.status().await {
                Ok(s) => last = s,
                Err(e) => tracing::debug!(error = %e, "status not readable yet"),
            }
            let total = last.records_copied as i64 + last.lag;
            tracing::info!(
                run_id = %self.spec.run_id,
                state = %last.state,
                "ferry_mirror: {}/{} records copied, {:.1} MB/s, ETA {}",
                last.records_copied,
                total,
                last.bytes_per_second / 1e6,
                last.eta_seconds.map_or("unknown".to_string(), |e| format!("{e:.0}s"))
            );
            // Status records older than this apply (a previous run with the same id, killed
            // workers) prove nothing about the workers just started.
            let fresh = last.workers.iter().any(|w| w.updated_at_ms >= started_ms);
            let done = if continuous {
                fresh && last.state == "in_sync"
            } else {
                last.state == "complete"
            };
            if crate::provider::stop_requested() {
                return diags.error(
                    "Interrupted",
                    format!("Terraform asked the provider to stop. Run {} keeps running; the next apply picks it up.", self.spec.run_id),
                );
            }
            if done {
                break;
            }
            let running = self.launcher.running();
            if running == 0 && !continuous {
                // The last worker may have just exited after writing the report.
                if let Ok(s) = self.status().await
                    && s.state == "complete"
                {
                    last = s;
                    break;
                }
                return diags.error(
                    "ferry-mirror workers stopped before the copy completed",
                    format!(
                        "Last output of the workers:\n{}",
                        self.launcher.log_tail(15)
                    ),
                );
            }
            if Instant::now() > deadline {
                return diags.error(
                    format!("Mirror not finished within {within:?}"),
                    format!(
                        "Run {} is {}: {} records copied, lag {}. The workers keep running; the next apply \
                         picks up the same run.",
                        self.spec.run_id, last.state, last.records_copied, last.lag
                    ),
                );
            }
        }
        self.fill(state, &last);
        state.set(
            "workers_running",
            Value::int(self.launcher.running() as i64),
        );
        if !continuous && config.get("verify").as_bool().unwrap_or(true) {
            self.verify_into(state, diags).await;
        } else if state.get("verification").is_unknown() || state.get("verification").is_null() {
            state.set("verification", Value::List(Vec::new()));
        }
    }

    async fn verify_into(&self, state: &mut Value, diags: &mut Diagnostics) {
        let pairs = match self.pairs().await {
            Ok(p) => p,
            Err(e) => return diags.error("Verification could not run", e),
        };
        let (spec, source, target) = (self.spec.clone(), self.source.clone(), self.target.clone());
        let result = tokio::task::spawn_blocking(move || {
            ferry_mirror::verify::verify(&spec, &source, &target, &pairs, Duration::from_secs(30))
        })
        .await;
        let rows = match result {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) => return diags.error("Verification could not run", format!("{e:#}")),
            Err(e) => return diags.error("Verification could not run", e.to_string()),
        };
        let bad: Vec<String> = rows
            .iter()
            .filter(|r| !r.ok())
            .map(|r| {
                format!(
                    "{} {}[{}]: {}",
                    r.group, r.source_topic, r.partition, r.result
                )
            })
            .collect();
        state.set(
            "verification",
            Value::List(
                rows.iter()
                    .map(|r| {
                        let mut o = Value::empty_object(&match verification_type() {
                            Type::List(e) => *e,
                            other => other,
                        });
                        o.set("group", Value::string(&r.group));
                        o.set("topic", Value::string(&r.source_topic));
                        o.set("partition", Value::int(r.partition as i64));
                        o.set("source_offset", Value::int(r.source_offset));
                        o.set(
                            "target_offset",
                            r.target_offset.map_or(Value::Null, Value::int),
                        );
                        o.set("result", Value::string(&r.result));
                        o
                    })
                    .collect(),
            ),
        );
        if !bad.is_empty() {
            diags.attribute_error(
                AttributePath::root("verify"),
                "Verification found mismatches",
                bad.join("\n"),
            );
        }
    }

    /// After a continuous mirror stops: translate the groups one last time and verify.
    async fn final_translation(&self, prior: &Value, diags: &mut Diagnostics) {
        let pairs = match self.pairs().await {
            Ok(p) => p,
            Err(e) => return diags.error("Final group translation failed", e),
        };
        let (spec, source, target) = (self.spec.clone(), self.source.clone(), self.target.clone());
        let result = tokio::task::spawn_blocking(move || {
            ferry_mirror::groups::translate_all(
                &spec,
                &source,
                &target,
                &pairs,
                Duration::from_secs(30),
            )
        })
        .await;
        match result {
            Ok(Ok(groups)) => {
                for g in &groups {
                    tracing::info!(group = %g.group, state = %g.state, "final consumer group translation");
                }
            }
            Ok(Err(e)) => diags.error("Final group translation failed", format!("{e:#}")),
            Err(e) => diags.error("Final group translation failed", e.to_string()),
        }
        if prior.get("verify").as_bool().unwrap_or(true) {
            let mut scratch = prior.clone();
            self.verify_into(&mut scratch, diags).await;
        }
    }
}

/// Builds the spec from the configuration and writes it (and the secrets, 0600) to the run dir.
fn write_spec(
    value: &Value,
    run_id: &str,
    run_dir: &std::path::Path,
    source: &ConnectionConfig,
    target: &ConnectionConfig,
) -> Result<Spec, String> {
    let cluster = |side: &str, c: &ConnectionConfig| -> Result<ClusterSpec, String> {
        let secret_file = |name: &str, contents: &str| -> Result<PathBuf, String> {
            let path = run_dir.join(format!("{side}.{name}"));
            write_private(&path, contents)
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            Ok(path)
        };
        let tls = match &c.tls {
            None => None,
            Some(t) => Some(TlsSpec {
                ca_file: t
                    .ca_pem
                    .as_deref()
                    .map(|p| secret_file("ca.pem", p))
                    .transpose()?,
                client_cert_file: t
                    .client_cert_pem
                    .as_deref()
                    .map(|p| secret_file("cert.pem", p))
                    .transpose()?,
                client_key_file: t
                    .client_key_pem
                    .as_ref()
                    .map(|k| secret_file("key.pem", k.expose()))
                    .transpose()?,
                insecure_skip_verify: t.insecure_skip_verify,
            }),
        };
        let sasl = match &c.sasl {
            None => None,
            Some(s) => Some(SaslSpec {
                mechanism: s.mechanism.name().to_string(),
                username: s.username.clone(),
                password_file: Some(secret_file("password", s.password.expose())?),
                password_env: None,
            }),
        };
        Ok(ClusterSpec {
            bootstrap_servers: c.bootstrap_servers.clone(),
            tls,
            sasl,
            timeout_seconds: Some(c.timeout.as_secs().max(1)),
        })
    };
    let strings = |v: &Value| -> Vec<String> {
        v.as_list()
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let spec = Spec {
        version: ferry_mirror::spec::SPEC_VERSION,
        run_id: run_id.to_string(),
        source: cluster("source", source)?,
        target: cluster("target", target)?,
        topics: TopicSelection {
            names: strings(value.get("topics")),
            include_regex: value.get("topics_regex").as_str().map(str::to_string),
            exclude_regex: value.get("exclude_regex").as_str().map(str::to_string),
        },
        topic_name_prefix: value
            .get("topic_name_prefix")
            .as_str()
            .unwrap_or_default()
            .to_string(),
        consumer_groups_regex: value
            .get("consumer_groups_regex")
            .as_str()
            .map(str::to_string),
        mode: match value.get("mode").as_str() {
            Some("continuous") => Mode::Continuous,
            _ => Mode::UntilCaughtUp,
        },
        exactly_once: value.get("exactly_once").as_bool().unwrap_or(true),
        compression: Default::default(),
        replication_factor: None,
        in_sync_lag: value.get("in_sync_lag").as_i64().unwrap_or(1000),
        tuning: Default::default(),
        http_listen: "127.0.0.1:0".to_string(),
    };
    spec.validate().map_err(|e| e.to_string())?;
    let text = serde_json::to_string_pretty(&spec).map_err(|e| e.to_string())?;
    std::fs::write(run_dir.join("spec.json"), text)
        .map_err(|e| format!("writing the spec: {e}"))?;
    Ok(spec)
}
