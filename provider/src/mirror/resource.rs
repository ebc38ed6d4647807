//! `ferry_mirror`: a migration of topics and consumer groups from one cluster to another, as a
//! resource. Create provisions `ferry-mirror` workers through a launcher and waits for the
//! copy; read refreshes from the run's status topic on the target; destroy drains and stops
//! the workers. Group translation and verification run as runtime commands where the workers
//! run, never in the provider.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use ferry_kafka::{Admin, ConnectionConfig};
use ferry_mirror_api::status;
use ferry_mirror_api::{
    CommandResult, EndOffset, GroupResult, Mode, RunState, RunStatus, Spec, VerifyRow, now_ms,
};
use tfplugin::timeouts::{Operation, Timeouts};
use tfplugin::{AttributePath, Diagnostics, Plan, Resource, Schema, StateUpgrader, Tf};

use super::launcher::Launcher;
use super::launcher::kubernetes::{self as k8s, KubernetesLauncher, KubernetesSettings, Workload};
use super::launcher::local::{LocalLauncher, default_binary};
use super::model::{self, KubernetesLauncherModel, MirrorModel};
use super::poll;
use super::spec::{self as run_spec, RunDocuments};
use crate::kafka::connection::{self, Origin, Resolved};
use crate::provider::{Ctx, FerryData};

pub struct MirrorResource;

/// What a one-off runtime command returned, when it did its work.
enum Reply {
    /// Its output (stdout).
    Printed(String),
    /// Its output could not be read back; this is what it recorded in the status topic.
    Recorded(CommandResult),
    /// It succeeded, but neither its output nor a record of it could be read.
    Unread,
}

/// A result id no earlier command of the run used: the time, this process and a counter.
fn new_result_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{}-{n}", now_ms(), std::process::id())
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);
const POLL_EVERY: Duration = Duration::from_secs(3);
const STOP_GRACE: Duration = Duration::from_secs(60);
/// Bound of one `ferry-mirror translate` / `verify` / ... command.
const COMMAND_WITHIN: Duration = Duration::from_secs(600);
/// The default directory of local runs, relative to Terraform's working directory.
const DEFAULT_STATE_DIR: &str = ".ferry";

#[async_trait]
impl Resource<FerryData> for MirrorResource {
    type Model = MirrorModel;

    fn type_name(&self) -> &'static str {
        "ferry_mirror"
    }

    fn schema(&self) -> Schema {
        model::schema()
    }

    fn state_upgraders(&self) -> Vec<StateUpgrader<MirrorModel>> {
        model::state_upgraders()
    }

    fn validate(&self, config: &MirrorModel, diags: &mut Diagnostics) {
        let no_topics = config.topics.known().is_some_and(Vec::is_empty) || config.topics.is_null();
        if no_topics && config.topics_regex.is_null() {
            diags.attribute_error(
                AttributePath::root("topics"),
                "No topics selected",
                "Set topics, topics_regex, or both.",
            );
        }
        validate_launcher(config, diags);
        if config
            .acl_principal_map
            .known()
            .is_some_and(|m| !m.is_empty())
            && !config.copy_acls.is_unknown()
            && !config.copy_acls.or(false)
        {
            diags.attribute_error(
                AttributePath::root("acl_principal_map"),
                "acl_principal_map without copy_acls",
                "The map only applies to copied ACLs: set copy_acls = true, or remove the map.",
            );
        }
        for (side, block) in [("source", &config.source), ("target", &config.target)] {
            // Every mechanism the provider speaks, AWS_MSK_IAM included, is the workers' too.
            connection::parse(
                block,
                Origin::ClusterBlock,
                &AttributePath::root(side),
                diags,
            );
        }
    }

    async fn plan(&self, _ctx: &Ctx, plan: &mut Plan<MirrorModel>, _diags: &mut Diagnostics) {
        if plan.planned.run_id.is_unknown()
            && let Some(id) = run_spec::derived_run_id(&plan.config)
        {
            plan.planned.run_id = Tf::Known(id);
        }
        plan.planned.id = plan.planned.run_id.clone();
        // Objects found changed or missing on read are restored by this apply: none are left.
        let prior_drift = plan
            .prior
            .as_ref()
            .is_some_and(|p| !kubernetes_drift(p).is_empty());
        if let Some(k) = kubernetes_mut(&mut plan.planned) {
            k.drift = Tf::Known(Vec::new());
        }
        if let Some(prior) = &plan.prior
            && (workers_missing(prior, &plan.planned) || prior_drift)
        {
            mark_status_unknown(&mut plan.planned);
        }
    }

    async fn create(
        &self,
        ctx: &Ctx,
        planned: MirrorModel,
        diags: &mut Diagnostics,
    ) -> Option<MirrorModel> {
        let run = Run::open(ctx, &planned, diags)?;
        if let Err(e) = run.launcher.provision(&run.docs).await {
            diags.error_from(
                Some(AttributePath::root("launcher")),
                "Cannot provision the run",
                &e,
            );
            return None;
        }
        let mut state = planned;
        state.run_id = Tf::Known(run.spec().run_id.clone());
        state.id = state.run_id.clone();
        state.started_at = Tf::Known(poll::rfc3339(time::OffsetDateTime::now_utc()));
        run.copy_acls_into(&mut state, diags).await;
        if diags.has_errors() {
            return None;
        }
        let within = Timeouts::get(&state.timeouts, Operation::Create, DEFAULT_TIMEOUT);
        run.start_and_wait(&ctx.with_timeout(within), &mut state, diags)
            .await;
        if diags.has_errors() {
            // Not saved: the next apply runs create again, which adopts the same run (same run id,
            // workers already running are kept) instead of starting over.
            return None;
        }
        Some(state)
    }

    async fn read(
        &self,
        ctx: &Ctx,
        state: MirrorModel,
        diags: &mut Diagnostics,
    ) -> Option<MirrorModel> {
        // Reading never writes the run's files: it only looks at the status and the workers.
        let Some(run) = Run::open(ctx, &state, diags) else {
            return Some(state);
        };
        let mut next = state;
        match poll::read_status(&run.target, run.spec()).await {
            Ok(status) => poll::fill(&mut next, &status),
            Err(e) => diags.error("Cannot read the run's status", e),
        }
        next.workers_running = Tf::Known(run.launcher.running().await as i64);
        let finished = next.run_state() == Some(RunState::Complete);
        let workers = next.workers.or(1).max(1) as usize;
        if let Some(k) = kubernetes_mut(&mut next) {
            match run.launcher.drift(workers, finished).await {
                Ok(found) => {
                    for line in &found {
                        tracing::info!(drift = %line, "ferry_mirror: Kubernetes object out of band");
                    }
                    k.drift = Tf::Known(found);
                }
                Err(e) => diags.attribute_warning(
                    AttributePath::root("launcher").attr("kubernetes"),
                    "Cannot compare the run's Kubernetes objects",
                    e.to_string(),
                ),
            }
        }
        Some(next)
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: MirrorModel,
        planned: MirrorModel,
        diags: &mut Diagnostics,
    ) -> MirrorModel {
        let Some(run) = Run::open(ctx, &planned, diags) else {
            return prior;
        };
        // Workers read the spec when they start: a different spec means restarting them.
        let before =
            Run::open(ctx, &prior, &mut Diagnostics::default()).map(|r| r.docs.spec_json());
        let spec_changed = before.as_deref() != Some(run.docs.spec_json().as_str());
        if spec_changed {
            // Restart them on the new one (they resume where the run is).
            if let Err(e) = run.launcher.stop(STOP_GRACE).await {
                diags.error_from(None, "Cannot stop the workers", &e);
                return prior;
            }
        }
        if let Err(e) = run.launcher.provision(&run.docs).await {
            diags.error_from(
                Some(AttributePath::root("launcher")),
                "Cannot provision the run",
                &e,
            );
            return prior;
        }
        if spec_changed {
            // A finished run that gains work must not read as complete from its old report.
            if let Err(e) = run.command(&["withdraw-report"]).await {
                diags.error("Cannot reopen the run", e);
                return prior;
            }
        }
        let mut state = planned;
        state.started_at = prior.started_at.clone();
        run.copy_acls_into(&mut state, diags).await;
        if diags.has_errors() {
            return prior;
        }
        let within = Timeouts::get(&state.timeouts, Operation::Update, DEFAULT_TIMEOUT);
        run.start_and_wait(&ctx.with_timeout(within), &mut state, diags)
            .await;
        if diags.has_errors() {
            return prior;
        }
        state
    }

    async fn delete(&self, ctx: &Ctx, prior: MirrorModel, diags: &mut Diagnostics) {
        let Some(run) = Run::open(ctx, &prior, diags) else {
            return;
        };
        let within = Timeouts::get(&prior.timeouts, Operation::Delete, DEFAULT_TIMEOUT);
        let ctx = ctx.with_timeout(within);
        let continuous = run.spec().mode == Mode::Continuous;
        if continuous && run.launcher.running().await > 0 && !run.drain(&ctx, diags).await {
            return;
        }
        if let Err(e) = run.launcher.stop(STOP_GRACE).await {
            diags.error_from(None, "Cannot stop the workers", &e);
            return;
        }
        if continuous {
            run.final_translation(prior.verify.or(true), diags).await;
        }
        if diags.has_errors() {
            return;
        }
        // Whatever the launcher created for the run (Kubernetes objects) goes last: the final
        // translation above still needed the spec and secrets.
        if let Err(e) = run.launcher.remove(STOP_GRACE).await {
            diags.error_from(
                Some(AttributePath::root("launcher")),
                "Cannot delete the run's objects",
                &e,
            );
        }
    }

    async fn import(&self, _ctx: &Ctx, id: &str, diags: &mut Diagnostics) -> Option<MirrorModel> {
        import_from_run_dir(Path::new(DEFAULT_STATE_DIR), id, diags)
    }
}

/// `launcher.kubernetes`, when the configuration uses it.
fn kubernetes_mut(m: &mut MirrorModel) -> Option<&mut KubernetesLauncherModel> {
    match &mut m.launcher {
        Tf::Known(l) => match &mut l.kubernetes {
            Tf::Known(k) => Some(k),
            _ => None,
        },
        _ => None,
    }
}

/// What the last read found changed or missing among the run's Kubernetes objects.
fn kubernetes_drift(m: &MirrorModel) -> Vec<String> {
    m.launcher
        .known()
        .and_then(|l| l.kubernetes.known())
        .and_then(|k| k.drift.known().cloned())
        .unwrap_or_default()
}

/// One launcher at a time; in-cluster configuration excludes a kubeconfig.
fn validate_launcher(config: &MirrorModel, diags: &mut Diagnostics) {
    let Some(launcher) = config.launcher.known() else {
        return;
    };
    if !launcher.local.is_null() && !launcher.kubernetes.is_null() {
        diags.attribute_error(
            AttributePath::root("launcher").attr("kubernetes"),
            "Conflicting launchers",
            "Set either launcher.local or launcher.kubernetes, not both.",
        );
    }
    if let Some(k) = launcher.kubernetes.known()
        && k.in_cluster.known() == Some(&true)
    {
        for (name, value) in [
            ("kubeconfig_path", &k.kubeconfig_path),
            ("context", &k.context),
        ] {
            if !value.is_null() {
                diags.attribute_error(
                    AttributePath::root("launcher")
                        .attr("kubernetes")
                        .attr(name),
                    "Conflicting Kubernetes configuration",
                    format!("{name} cannot be combined with in_cluster = true."),
                );
            }
        }
    }
}

/// The launcher's settings from the block (schema defaults already applied by the plan).
fn kubernetes_settings(k: &KubernetesLauncherModel) -> KubernetesSettings {
    let resources = k.resources.known().cloned().unwrap_or_default();
    KubernetesSettings {
        namespace: k.namespace.or("default".to_string()),
        image: k.image.or(String::new()),
        image_pull_policy: k.image_pull_policy.or("IfNotPresent".to_string()),
        service_account: k.service_account.known().cloned(),
        node_selector: k.node_selector.or(Default::default()),
        tolerations: k
            .tolerations
            .or(Vec::new())
            .into_iter()
            .map(|t| k8s::TolerationSetting {
                key: t.key.known().cloned(),
                operator: t.operator.known().cloned(),
                value: t.value.known().cloned(),
                effect: t.effect.known().cloned(),
            })
            .collect(),
        host_network: k.host_network.or(false),
        cpu_request: resources.cpu_request.known().cloned(),
        cpu_limit: resources.cpu_limit.known().cloned(),
        memory_request: resources.memory_request.known().cloned(),
        memory_limit: resources.memory_limit.known().cloned(),
        kubeconfig_path: k.kubeconfig_path.known().map(PathBuf::from),
        context: k.context.known().cloned(),
        in_cluster: k.in_cluster.or(false),
    }
}

/// The drift rule: workers that died before the run finished are planned back (an update that
/// restarts them), which shows as "known after apply" status.
fn workers_missing(prior: &MirrorModel, planned: &MirrorModel) -> bool {
    let wanted = planned.workers.or(1);
    let running = prior.workers_running.or(0);
    let finished = prior.run_state() == Some(RunState::Complete);
    !finished && running < wanted
}

/// Status attributes become "known after apply".
fn mark_status_unknown(m: &mut MirrorModel) {
    m.state = Tf::Unknown;
    m.workers_running = Tf::Unknown;
    m.topics_copied = Tf::Unknown;
    m.records_copied = Tf::Unknown;
    m.bytes_copied = Tf::Unknown;
    m.lag = Tf::Unknown;
    m.groups_translated = Tf::Unknown;
    m.verification = Tf::Unknown;
    m.completed_at = Tf::Unknown;
}

/// Rebuilds a mirror's state from the run directory a local launcher wrote: the spec holds
/// everything but the secrets, which sit beside it in 0600 files.
fn import_from_run_dir(
    state_dir: &Path,
    run_id: &str,
    diags: &mut Diagnostics,
) -> Option<MirrorModel> {
    let path = state_dir.join(run_id).join("spec.json");
    let spec = match Spec::load(&path) {
        Ok(s) => s,
        Err(e) => {
            diags.error(
                "Cannot import the mirror",
                format!(
                    "Import reads the run's spec from {}: {e}. Run import in the directory that ran the original apply.",
                    path.display()
                ),
            );
            return None;
        }
    };
    let read_secret = |p: &Path| std::fs::read_to_string(p).ok();
    let optional = |s: &Option<String>| -> Tf<String> { s.clone().into() };
    Some(MirrorModel {
        run_id: Tf::Known(run_id.to_string()),
        id: Tf::Known(run_id.to_string()),
        source: Tf::Known(run_spec::cluster_model(&spec.source, &read_secret)),
        target: Tf::Known(run_spec::cluster_model(&spec.target, &read_secret)),
        topics: if spec.topics.names.is_empty() {
            Tf::Null
        } else {
            Tf::Known(spec.topics.names.clone())
        },
        topics_regex: optional(&spec.topics.include_regex),
        exclude_regex: optional(&spec.topics.exclude_regex),
        topic_name_prefix: if spec.topic_name_prefix.is_empty() {
            Tf::Null
        } else {
            Tf::Known(spec.topic_name_prefix.clone())
        },
        consumer_groups_regex: optional(&spec.consumer_groups_regex),
        mode: Tf::Known(
            match spec.mode {
                Mode::Continuous => "continuous",
                Mode::UntilCaughtUp => "until_caught_up",
            }
            .to_string(),
        ),
        exactly_once: Tf::Known(spec.exactly_once),
        in_sync_lag: Tf::Known(spec.in_sync_lag),
        verify: Tf::Known(true),
        workers: Tf::Known(1),
        slots: Tf::Known(i64::from(spec.tuning.slots)),
        target_may_hold_records: Tf::Known(spec.target_may_hold_records),
        http_listen: if spec.http_listen == ferry_mirror_api::spec::default_http_listen() {
            Tf::Null
        } else {
            Tf::Known(spec.http_listen.clone())
        },
        ..MirrorModel::default()
    })
}

/// Everything one operation needs: the run's documents, both connections, and the launcher.
struct Run {
    docs: RunDocuments,
    source: ConnectionConfig,
    target: ConnectionConfig,
    launcher: Box<dyn Launcher>,
}

impl Run {
    /// Resolves the clusters and builds the spec in memory. Writes nothing.
    fn open(ctx: &Ctx, m: &MirrorModel, diags: &mut Diagnostics) -> Option<Run> {
        let resolve = |side: &str, block, diags: &mut Diagnostics| match connection::parse(
            block,
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
        let source = resolve("source", &m.source, diags)?;
        let target = resolve("target", &m.target, diags)?;
        if diags.has_errors() {
            return None;
        }
        let run_id = m
            .run_id
            .known()
            .cloned()
            .or_else(|| run_spec::derived_run_id(m))?;
        if let Some(k) = m.launcher.known().and_then(|l| l.kubernetes.known()) {
            let docs =
                match run_spec::build(m, &run_id, &source, &target, Path::new(k8s::SECRET_DIR)) {
                    Ok(d) => d,
                    Err(e) => {
                        diags.error("Invalid mirror configuration", e);
                        return None;
                    }
                };
            let workload = if m.mode_is_continuous() {
                Workload::Deployment
            } else {
                Workload::Job
            };
            let launcher = KubernetesLauncher::new(
                kubernetes_settings(k),
                &run_id,
                workload,
                docs.clone(),
                ctx,
            );
            return Some(Run {
                docs,
                source,
                target,
                launcher: Box::new(launcher),
            });
        }
        let local = m.launcher.known().and_then(|l| l.local.known().cloned());
        let state_dir = local
            .as_ref()
            .and_then(|l| l.state_dir.known().cloned())
            .unwrap_or_else(|| DEFAULT_STATE_DIR.to_string());
        let binary = local
            .as_ref()
            .and_then(|l| l.binary.known().map(PathBuf::from))
            .unwrap_or_else(default_binary);
        let launcher = LocalLauncher::new(Path::new(&state_dir), &run_id, binary);
        let docs = match run_spec::build(m, &run_id, &source, &target, &launcher.secret_dir()) {
            Ok(d) => d,
            Err(e) => {
                diags.error("Invalid mirror configuration", e);
                return None;
            }
        };
        Some(Run {
            docs,
            source,
            target,
            launcher: Box::new(launcher),
        })
    }

    fn spec(&self) -> &Spec {
        &self.docs.spec
    }

    /// Runs a one-off runtime command through the launcher. Commands that record their result
    /// in the status topic (`verify`, `copy-acls`) get a fresh result id; when the launcher
    /// cannot read the output back, their result is read from the status topic instead.
    async fn command(&self, args: &[&str]) -> Result<Reply, String> {
        let name = args.first().copied().unwrap_or_default();
        let recorded = status::RECORDED_COMMANDS.contains(&name);
        let result_id = new_result_id();
        let env: Vec<(&str, &str)> = if recorded {
            vec![(status::RESULT_ID_ENV, result_id.as_str())]
        } else {
            Vec::new()
        };
        let out = self
            .launcher
            .run_once(args, &env, COMMAND_WITHIN)
            .await
            .map_err(|e| e.to_string())?;
        let failed = || {
            format!(
                "`ferry-mirror {}` failed (exit {:?}): {}",
                args.join(" "),
                out.exit_code,
                out.stderr.trim()
            )
        };
        if out.stdout_read {
            return if out.success || (!out.stdout.trim().is_empty() && out.exit_code == Some(1)) {
                Ok(Reply::Printed(out.stdout))
            } else {
                Err(failed())
            };
        }
        // Exit 0 or 1: the command did its work and recorded it (a runtime that knows how).
        if recorded && matches!(out.exit_code, Some(0 | 1)) {
            match poll::read_command_result(&self.target, self.spec(), name, &result_id).await {
                Ok(Some(r)) => return Ok(Reply::Recorded(r)),
                Ok(None) => {
                    tracing::info!(command = name, "no result recorded in the status topic")
                }
                Err(e) => {
                    tracing::warn!(command = name, error = %e, "cannot read the recorded result")
                }
            }
        }
        if out.success {
            Ok(Reply::Unread)
        } else {
            Err(failed())
        }
    }

    /// Checks the clusters and topics, starts the workers and polls until done.
    async fn start_and_wait(&self, ctx: &Ctx, state: &mut MirrorModel, diags: &mut Diagnostics) {
        if !self.check_clusters(diags).await {
            return;
        }
        let workers = state.workers.or(1).max(1) as usize;
        if let Err(e) = self.launcher.ensure_workers(workers).await {
            return diags.error_from(
                Some(AttributePath::root("launcher")),
                "Cannot start the workers",
                &e,
            );
        }
        let continuous = self.spec().mode == Mode::Continuous;
        let started_ms = now_ms();
        let run_id = &self.spec().run_id;
        let mut last = RunStatus::default();
        loop {
            if let Err(why) = ctx.sleep(POLL_EVERY).await {
                return diags.error(
                    format!("Mirror not finished: {why}"),
                    format!(
                        "Run {run_id} is {}: {} records copied, lag {}. The workers keep running; the next apply \
                         picks up the same run.",
                        last.state, last.records_copied, last.lag
                    ),
                );
            }
            match poll::read_status(&self.target, self.spec()).await {
                Ok(s) => last = s,
                Err(e) => tracing::debug!(error = %e, "status not readable yet"),
            }
            tracing::info!(
                run_id = %run_id,
                state = %last.state,
                "ferry_mirror: {}/{} records copied, {:.1} MB/s, ETA {}",
                last.records_copied,
                last.records_copied as i64 + last.lag,
                last.bytes_per_second / 1e6,
                last.eta_seconds.map_or("unknown".to_string(), |e| format!("{e:.0}s"))
            );
            if poll::finished(&last, continuous, started_ms) {
                break;
            }
            if self.launcher.running().await == 0 && !continuous {
                // The last worker may have just exited after writing the report.
                if let Ok(s) = poll::read_status(&self.target, self.spec()).await
                    && s.state == RunState::Complete
                {
                    last = s;
                    break;
                }
                return diags.error(
                    "ferry-mirror workers stopped before the copy completed",
                    format!(
                        "Last output of the workers:\n{}",
                        self.launcher.log_tail(15).await
                    ),
                );
            }
        }
        poll::fill(state, &last);
        state.workers_running = Tf::Known(self.launcher.running().await as i64);
        if !continuous && state.verify.or(true) {
            self.verify_into(state, diags).await;
        } else if !matches!(state.verification, Tf::Known(_)) {
            state.verification = Tf::Known(Vec::new());
        }
    }

    /// Both clusters answer and the topic selection matches source topics.
    async fn check_clusters(&self, diags: &mut Diagnostics) -> bool {
        let source = match Admin::connect(&self.source).await {
            Ok(a) => a,
            Err(e) => {
                diags.error_from(
                    Some(AttributePath::root("source")),
                    "Cannot reach the source cluster",
                    &e,
                );
                return false;
            }
        };
        if let Err(e) = Admin::connect(&self.target).await {
            diags.error_from(
                Some(AttributePath::root("target")),
                "Cannot reach the target cluster",
                &e,
            );
            return false;
        }
        let names = match source.topic_names(false).await {
            Ok(n) => n,
            Err(e) => {
                diags.error_from(
                    Some(AttributePath::root("source")),
                    "Cannot list the source topics",
                    &e,
                );
                return false;
            }
        };
        let spec = self.spec();
        let problem = if let Some(missing) = spec.topics.names.iter().find(|n| !names.contains(n)) {
            Some(format!(
                "source topic {missing:?} (topics) does not exist on the source cluster"
            ))
        } else if !names.iter().any(|n| spec.selects_topic(n)) {
            Some("the topic selection matches no source topic".to_string())
        } else {
            None
        };
        if let Some(detail) = problem {
            diags.attribute_error(AttributePath::root("topics"), "Topic selection", detail);
            return false;
        }
        true
    }

    async fn verify_into(&self, state: &mut MirrorModel, diags: &mut Diagnostics) {
        let rows: Vec<VerifyRow> = match self.command(&["verify", "--json"]).await {
            Ok(Reply::Recorded(CommandResult {
                verification: Some(rows),
                ..
            })) => rows,
            Ok(Reply::Unread | Reply::Recorded(_)) => {
                // Exit 0: every row was ok, but the rows themselves stayed in the pod.
                state.verification = Tf::Known(Vec::new());
                return diags.attribute_warning(
                    AttributePath::root("verification"),
                    "Verification passed; its rows could not be read back",
                    "ferry-mirror verify exited 0 (no mismatch), but the cluster does not serve \
                     the pod's output and the runtime recorded no result in the run's status \
                     topic (a runtime image older than the provider?), so the per-partition rows \
                     are not in the state.",
                );
            }
            Ok(Reply::Printed(text)) => match serde_json::from_str(&text) {
                Ok(rows) => rows,
                Err(e) => {
                    return diags.error(
                        "Verification could not run",
                        format!("unexpected output of ferry-mirror verify: {e}"),
                    );
                }
            },
            Err(e) => return diags.error("Verification could not run", e),
        };
        state.verification = Tf::Known(poll::verification_rows(&rows));
        let bad: Vec<String> = rows
            .iter()
            .filter(|r| !r.ok())
            .map(|r| {
                format!(
                    "{} {}[{}]: {}",
                    r.group,
                    r.source_topic,
                    r.partition,
                    r.result_text()
                )
            })
            .collect();
        if !bad.is_empty() {
            diags.attribute_error(
                AttributePath::root("verify"),
                "Verification found mismatches",
                bad.join("\n"),
            );
        }
    }

    /// With copy_acls, runs `ferry-mirror copy-acls` where the workers run (before they start,
    /// so the target's ACLs are in place by cutover) and records what it did; the target's
    /// refusals are warnings, the rows stay in state. Without it, both lists are empty.
    async fn copy_acls_into(&self, state: &mut MirrorModel, diags: &mut Diagnostics) {
        state.acls_copied = Tf::Known(Vec::new());
        state.acls_refused = Tf::Known(Vec::new());
        if !state.copy_acls.or(false) {
            return;
        }
        let map = state.acl_principal_map.known().cloned().unwrap_or_default();
        let map = serde_json::to_string(&map).expect("a map of strings serialises");
        let args = ["copy-acls", "--json", "--principal-map", map.as_str()];
        let rows: Vec<ferry_mirror_api::acls::AclCopyRow> = match self.command(&args).await {
            Ok(Reply::Recorded(CommandResult {
                acls: Some(rows), ..
            })) => rows,
            Ok(Reply::Unread | Reply::Recorded(_)) => {
                return diags.attribute_warning(
                    AttributePath::root("acls_copied"),
                    "ACLs copied; the list could not be read back",
                    "ferry-mirror copy-acls exited 0 (nothing refused), but the cluster does \
                     not serve the pod's output and the runtime recorded no result in the run's \
                     status topic (a runtime image older than the provider?), so the bindings \
                     are not listed in the state.",
                );
            }
            Ok(Reply::Printed(text)) => match serde_json::from_str(&text) {
                Ok(rows) => rows,
                Err(e) => {
                    return diags.attribute_error(
                        AttributePath::root("copy_acls"),
                        "ACLs could not be copied",
                        format!("unexpected output of ferry-mirror copy-acls: {e}"),
                    );
                }
            },
            Err(e) => {
                return diags.attribute_error(
                    AttributePath::root("copy_acls"),
                    "ACLs could not be copied",
                    e,
                );
            }
        };
        use ferry_mirror_api::acls::AclOutcome;
        let lines = |keep: &dyn Fn(AclOutcome) -> bool| -> Vec<String> {
            rows.iter()
                .filter(|r| keep(r.outcome))
                .map(|r| r.line())
                .collect()
        };
        state.acls_copied = Tf::Known(lines(&|o| o == AclOutcome::Copied));
        state.acls_refused = Tf::Known(lines(&|o| o != AclOutcome::Copied));
        let refused = lines(&|o| o == AclOutcome::Refused);
        if !refused.is_empty() {
            diags.attribute_warning(
                AttributePath::root("acls_refused"),
                "The target refused some ACL bindings",
                refused.join("\n"),
            );
        }
    }

    /// Cutover of a continuous mirror: producers on the source are stopped, so everything up
    /// to the source's end offsets now must be copied before the workers stop.
    async fn drain(&self, ctx: &Ctx, diags: &mut Diagnostics) -> bool {
        let ends: Vec<EndOffset> = match self.command(&["end-offsets", "--json"]).await {
            Ok(Reply::Unread | Reply::Recorded(_)) => return self.drain_by_lag(ctx, diags).await,
            Ok(Reply::Printed(text)) => match serde_json::from_str(&text) {
                Ok(e) => e,
                Err(e) => {
                    diags.error(
                        "Cannot read the source end offsets",
                        format!("unexpected output of ferry-mirror end-offsets: {e}"),
                    );
                    return false;
                }
            },
            Err(e) => {
                diags.error("Cannot read the source end offsets", e);
                return false;
            }
        };
        loop {
            match poll::read_status(&self.target, self.spec()).await {
                Ok(s) => {
                    let mut copied: HashMap<(&str, i32), i64> = HashMap::new();
                    for p in s.workers.iter().flat_map(|w| &w.partitions) {
                        let e = copied
                            .entry((p.source_topic.as_str(), p.partition))
                            .or_insert(0);
                        *e = (*e).max(p.copied_up_to);
                    }
                    let behind: i64 = ends
                        .iter()
                        .map(|e| {
                            let done = copied
                                .get(&(e.source_topic.as_str(), e.partition))
                                .copied()
                                .unwrap_or(0);
                            (e.end_offset - done).max(0)
                        })
                        .sum();
                    if behind == 0 {
                        return true;
                    }
                    tracing::info!(behind, "draining the mirror before stopping it");
                }
                Err(e) => tracing::warn!(error = %e, "cannot read status while draining"),
            }
            if let Err(why) = ctx.sleep(POLL_EVERY).await {
                diags.error(
                    "Mirror did not drain",
                    format!("Lag did not reach 0 ({why}); the workers keep running."),
                );
                return false;
            }
        }
    }

    /// Drain without the end offsets' output: the workers report the lag against the source's
    /// end offsets they see; with the source's producers stopped, a lag of 0 is drained.
    async fn drain_by_lag(&self, ctx: &Ctx, diags: &mut Diagnostics) -> bool {
        loop {
            match poll::read_status(&self.target, self.spec()).await {
                Ok(s) if s.lag == 0 && s.live_workers > 0 => return true,
                Ok(s) => tracing::info!(lag = s.lag, "draining the mirror before stopping it"),
                Err(e) => tracing::warn!(error = %e, "cannot read status while draining"),
            }
            if let Err(why) = ctx.sleep(POLL_EVERY).await {
                diags.error(
                    "Mirror did not drain",
                    format!("Lag did not reach 0 ({why}); the workers keep running."),
                );
                return false;
            }
        }
    }

    /// After a continuous mirror stops: translate the groups one last time and verify.
    async fn final_translation(&self, verify: bool, diags: &mut Diagnostics) {
        let output = match self.command(&["translate", "--json"]).await {
            // translate also records its result under the status topic's `groups` key.
            Ok(Reply::Unread | Reply::Recorded(_)) => poll::read_status(&self.target, self.spec())
                .await
                .map(|s| serde_json::to_string(&s.groups).unwrap_or_default())
                .map_err(|e| format!("reading the translated groups from the status topic: {e}")),
            Ok(Reply::Printed(text)) => Ok(text),
            Err(e) => Err(e),
        };
        match output {
            Ok(text) => match serde_json::from_str::<Vec<GroupResult>>(&text) {
                Ok(groups) => {
                    for g in &groups {
                        tracing::info!(group = %g.group, state = %g.state, "final consumer group translation");
                    }
                }
                Err(e) => diags.error(
                    "Final group translation failed",
                    format!("unexpected output of ferry-mirror translate: {e}"),
                ),
            },
            Err(e) => diags.error("Final group translation failed", e),
        }
        if verify {
            let mut scratch = MirrorModel::default();
            self.verify_into(&mut scratch, diags).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_workers_of_an_unfinished_run_are_drift() {
        let prior = MirrorModel {
            workers: Tf::Known(2),
            workers_running: Tf::Known(1),
            state: "copying".into(),
            ..MirrorModel::default()
        };
        assert!(workers_missing(&prior, &prior));
        let all_up = MirrorModel {
            workers_running: Tf::Known(2),
            ..prior.clone()
        };
        assert!(!workers_missing(&all_up, &all_up));
        let finished = MirrorModel {
            state: "complete".into(),
            workers_running: Tf::Known(0),
            ..prior.clone()
        };
        assert!(
            !workers_missing(&finished, &finished),
            "a finished run's workers exit"
        );
        let scaled_up = MirrorModel {
            workers: Tf::Known(3),
            ..all_up.clone()
        };
        assert!(workers_missing(&all_up, &scaled_up));
    }

    #[test]
    fn import_rebuilds_the_blocks_from_the_run_directory() {
        let dir = std::env::temp_dir().join(format!("ferry-import-{}", std::process::id()));
        let mut source = ConnectionConfig::plaintext("a:9092");
        source.sasl = Some(ferry_kafka::SaslConfig {
            mechanism: ferry_kafka::SaslMechanism::ScramSha256,
            username: "u".into(),
            password: ferry_kafka::Secret::new("pw"),
        });
        let target = ConnectionConfig::plaintext("b:9092");
        let m = MirrorModel {
            topics_regex: "orders\\..*".into(),
            topic_name_prefix: "copy.".into(),
            mode: "continuous".into(),
            exactly_once: Tf::Known(false),
            in_sync_lag: Tf::Known(0),
            slots: Tf::Known(8),
            target_may_hold_records: Tf::Known(true),
            ..MirrorModel::default()
        };
        let run_dir = dir.join("r1");
        let docs = run_spec::build(&m, "r1", &source, &target, &run_dir).unwrap();
        std::fs::create_dir_all(&run_dir).unwrap();
        std::fs::write(run_dir.join("spec.json"), docs.spec_json()).unwrap();
        for s in &docs.secrets {
            std::fs::write(run_dir.join(&s.name), &s.contents).unwrap();
        }
        let mut d = Diagnostics::default();
        let imported = import_from_run_dir(&dir, "r1", &mut d).unwrap();
        // The imported model builds the very same spec again.
        let again = run_spec::build(&imported, "r1", &source, &target, &run_dir).unwrap();
        assert_eq!(again.spec_json(), docs.spec_json());
        let sasl = imported
            .source
            .known()
            .unwrap()
            .sasl
            .known()
            .unwrap()
            .clone();
        assert_eq!(sasl.password, Tf::Known("pw".into()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn msk_iam_is_accepted_on_both_sides_and_still_checked() {
        use crate::kafka::connection::{ConnectionModel, SaslModel, TlsModel};
        let iam = |username: Tf<String>| {
            Tf::Known(ConnectionModel {
                bootstrap_servers: Tf::Known(vec![
                    "b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9098".into(),
                ]),
                tls: Tf::Known(TlsModel::default()),
                sasl: Tf::Known(SaslModel {
                    mechanism: Tf::Known("AWS_MSK_IAM".into()),
                    username,
                    password: Tf::Null,
                }),
                ..ConnectionModel::default()
            })
        };
        let model = MirrorModel {
            topics: Tf::Known(vec!["orders".into()]),
            source: iam(Tf::Null),
            target: iam(Tf::Null),
            ..MirrorModel::default()
        };
        let mut diags = Diagnostics::default();
        MirrorResource.validate(&model, &mut diags);
        assert!(diags.0.is_empty(), "{:?}", diags.0);

        // What AWS_MSK_IAM does not take is still refused, on the attribute.
        let model = MirrorModel {
            target: iam(Tf::Known("admin".into())),
            ..model
        };
        let mut diags = Diagnostics::default();
        MirrorResource.validate(&model, &mut diags);
        assert!(diags.has_errors());
        let e = &diags.0[0];
        assert_eq!(
            e.path.clone().unwrap().to_string(),
            "target.sasl.username",
            "{e:?}"
        );
        assert!(
            e.detail
                .contains("AWS_MSK_IAM signs in with AWS credentials"),
            "{e:?}"
        );
    }
}

/// A one-off command whose output the launcher cannot read back (the Kubernetes launcher on a
/// cluster that does not serve pod logs), against the target peer's real status topic. Ignored
/// by default: needs the Kafka peers (`source .peers/env`, FERRY_KAFKA_B), run with `--ignored`.
#[cfg(test)]
mod recorded_results {
    use std::collections::BTreeMap;

    use ferry_kafka::NewTopic;
    use ferry_mirror_api::VerifyOutcome;
    use ferry_mirror_api::status::{RESULT_ID_ENV, command_key};
    use tfplugin::diagnostics::Severity;

    use super::*;
    use crate::mirror::launcher::{CommandOutput, LaunchError};

    /// Records `verify`'s result in the status topic, under the result id it is given or
    /// (`stale`) another one, and exits 1 without readable output.
    struct NoLogs {
        target: ConnectionConfig,
        topic: String,
        stale: bool,
    }

    fn mismatch() -> VerifyRow {
        VerifyRow {
            group: "app".into(),
            source_topic: "orders".into(),
            partition: 2,
            source_offset: 50,
            target_offset: Some(60),
            outcome: VerifyOutcome::RecordDiffers {
                source_record: 50,
                target_record: 60,
            },
        }
    }

    #[async_trait]
    impl Launcher for NoLogs {
        fn secret_dir(&self) -> PathBuf {
            PathBuf::from("/nonexistent")
        }
        async fn provision(&self, _: &RunDocuments) -> Result<(), LaunchError> {
            Ok(())
        }
        async fn ensure_workers(&self, _: usize) -> Result<(), LaunchError> {
            Ok(())
        }
        async fn running(&self) -> usize {
            0
        }
        async fn stop(&self, _: Duration) -> Result<(), LaunchError> {
            Ok(())
        }
        async fn run_once(
            &self,
            args: &[&str],
            env: &[(&str, &str)],
            _: Duration,
        ) -> Result<CommandOutput, LaunchError> {
            assert_eq!(args.first(), Some(&"verify"));
            let id = env
                .iter()
                .find(|(k, _)| *k == RESULT_ID_ENV)
                .map(|(_, v)| v.to_string())
                .expect("verify is given a result id");
            let result = CommandResult {
                command: "verify".into(),
                result_id: if self.stale {
                    format!("{id}-older")
                } else {
                    id
                },
                exit_code: 1,
                verification: Some(vec![mismatch()]),
                ..CommandResult::default()
            };
            let value = serde_json::to_vec(&result).unwrap();
            ferry_kafka::write_keyed(
                &self.target,
                &self.topic,
                0,
                &[(command_key("verify"), Some(value))],
                Duration::from_secs(30),
            )
            .await
            .expect("writing the result");
            Ok(CommandOutput {
                success: false,
                exit_code: Some(1),
                stdout_read: false,
                stdout: String::new(),
                stderr: String::new(),
            })
        }
        async fn log_tail(&self, _: usize) -> String {
            String::new()
        }
    }

    /// `verify_into` of a run whose verify records a mismatch (under another id: `stale`).
    async fn verify(stale: bool) -> (MirrorModel, Diagnostics) {
        let b = std::env::var("FERRY_KAFKA_B")
            .expect("FERRY_KAFKA_B is not set: start the peers and `source .peers/env`");
        let target = ConnectionConfig::plaintext(&b);
        let run_id = format!("recorded-{}-{}-{stale}", std::process::id(), now_ms());
        let model = MirrorModel {
            topics: Tf::Known(vec!["orders".to_string()]),
            ..MirrorModel::default()
        };
        let docs =
            run_spec::build(&model, &run_id, &target, &target, Path::new("/nonexistent")).unwrap();
        let topic = docs.spec.status_topic();
        let admin = Admin::connect(&target).await.unwrap();
        let new = NewTopic {
            name: topic.clone(),
            partitions: 1,
            replication_factor: None,
            config: BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]),
        };
        admin.create_topic(&new, false).await.unwrap();
        // The broker answers CreateTopics before its metadata shows the topic, and the result
        // writer refuses a topic it cannot see (a CI run failed on that race).
        admin
            .wait_until_topic_ready(&topic, 1, Duration::from_secs(60))
            .await
            .unwrap();
        let launcher = NoLogs {
            target: target.clone(),
            topic,
            stale,
        };
        let run = Run {
            docs,
            source: target.clone(),
            target,
            launcher: Box::new(launcher),
        };
        let mut state = MirrorModel::default();
        let mut diags = Diagnostics::default();
        run.verify_into(&mut state, &mut diags).await;
        (state, diags)
    }

    #[tokio::test]
    #[ignore = "needs the Kafka peers (FERRY_KAFKA_B)"]
    async fn a_mismatch_recorded_in_the_status_topic_fails_verification_with_its_rows() {
        let (state, diags) = verify(false).await;
        let rows = state.verification.known().cloned().unwrap_or_default();
        assert_eq!(rows.len(), 1, "{diags:?}");
        assert_eq!(rows[0].result, mismatch().result_text());
        let errors: Vec<_> = diags
            .0
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        assert_eq!(errors.len(), 1, "{diags:?}");
        assert_eq!(errors[0].summary, "Verification found mismatches");
        assert!(
            errors[0].detail.contains("app orders[2]: record differs"),
            "{diags:?}"
        );
    }

    #[tokio::test]
    #[ignore = "needs the Kafka peers (FERRY_KAFKA_B)"]
    async fn a_result_recorded_under_another_id_is_not_taken() {
        let (state, diags) = verify(true).await;
        let rows = state.verification.known().cloned().unwrap_or_default();
        assert!(
            rows.is_empty(),
            "an older call's rows are not this call's: {rows:?}"
        );
        assert_eq!(diags.0.len(), 1, "{diags:?}");
        assert_eq!(diags.0[0].summary, "Verification could not run");
    }
}
