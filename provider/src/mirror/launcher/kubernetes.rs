//! Workers as pods of an existing Kubernetes cluster. The run's spec is a ConfigMap, its secrets
//! (SASL passwords, TLS keys and certificates) a Secret mounted as files at [`SECRET_DIR`] (the
//! spec names them there, as `password_file` / `ca_file` / ...; nothing secret is in a pod spec or
//! an environment variable), the workers a Deployment (continuous) or a Job (until_caught_up) of
//! `workers` replicas, and each one-off command a Job of one pod. Every object carries the run's
//! labels, so destroy finds and deletes all of them.
//!
//! Objects are written with server-side apply (field manager `terraform-provider-ferry`, forced):
//! applying again restores whatever was changed or deleted out of band. Every API call is bounded
//! by [`CALL_TIMEOUT`] and ends early when Terraform stops the provider or the operation's
//! deadline passes (the request's [`Ctx`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, EnvVar, EnvVarSource,
    ObjectFieldSelector, Pod, PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements,
    Secret, SecretVolumeSource, SecurityContext, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

use super::{CommandOutput, LaunchError, Launcher};
use crate::mirror::spec::RunDocuments;
use crate::provider::Ctx;

/// Where the pods see the run's secret files.
pub const SECRET_DIR: &str = "/etc/ferry/secrets";
/// Where the pods see the spec (the ConfigMap's `spec.json`).
pub const SPEC_DIR: &str = "/etc/ferry/spec";
pub const SPEC_KEY: &str = "spec.json";
/// Bound of every single API call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const FIELD_MANAGER: &str = "terraform-provider-ferry";
/// The label naming the run (its id, made a valid label value).
pub const RUN_LABEL: &str = "ferry.dev/run";
/// `workers` or `command`.
pub const ROLE_LABEL: &str = "ferry.dev/role";
const HASH_ANNOTATION: &str = "ferry.dev/inputs-hash";
const RUN_ID_ANNOTATION: &str = "ferry.dev/run-id";
/// The runtime image runs as this user (runtime/Dockerfile, tests/peers/k8s/image.sh).
const RUNTIME_UID: i64 = 65532;
/// SIGTERM to exit: the runtime commits open transactions and exits within 8 s.
const POD_GRACE_SECONDS: i64 = 30;
const POLL: Duration = Duration::from_secs(1);

/// What the configuration says about the pods and the cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KubernetesSettings {
    pub namespace: String,
    pub image: String,
    pub image_pull_policy: String,
    pub service_account: Option<String>,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<TolerationSetting>,
    pub host_network: bool,
    pub cpu_request: Option<String>,
    pub cpu_limit: Option<String>,
    pub memory_request: Option<String>,
    pub memory_limit: Option<String>,
    pub kubeconfig_path: Option<PathBuf>,
    pub context: Option<String>,
    pub in_cluster: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TolerationSetting {
    pub key: Option<String>,
    pub operator: Option<String>,
    pub value: Option<String>,
    pub effect: Option<String>,
}

/// Whether the run's workers finish (Job) or keep copying (Deployment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Job,
    Deployment,
}

/// A run's objects on one cluster.
pub struct KubernetesLauncher {
    settings: KubernetesSettings,
    run_id: String,
    workload: Workload,
    /// The spec and secrets as the run wants them (the provider builds them before any call).
    docs: RunDocuments,
    ctx: Ctx,
    client: OnceCell<Client>,
}

fn api_error(what: impl Into<String>) -> impl FnOnce(kube::Error) -> LaunchError {
    let what = what.into();
    move |e| LaunchError::Kubernetes {
        what,
        detail: e.to_string(),
    }
}

/// A label value from a run id: at most 63 characters of `[A-Za-z0-9-_.]`, alphanumeric at both
/// ends; long or unusual ids keep a hash suffix so two runs never share a value.
pub fn label_value(run_id: &str) -> String {
    let clean: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let fits = clean == run_id && clean.len() <= 63;
    let mut value = if fits {
        clean
    } else {
        let hash = format!("{:08x}", fnv32(run_id.as_bytes()));
        let mut head: String = clean.chars().take(63 - 9).collect();
        head.push('-');
        head.push_str(&hash);
        head
    };
    while value.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        value.pop();
    }
    while value.starts_with(|c: char| !c.is_ascii_alphanumeric()) {
        value.remove(0);
    }
    value
}

/// A DNS-1123 object name prefix for the run (`ferry-<id>`), short enough for suffixes and for
/// the pod names a Deployment or Job derives from it.
pub fn object_base(run_id: &str) -> String {
    let lower: String = run_id
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let trimmed = lower.trim_matches('-');
    let body = if trimmed.starts_with("ferry-") {
        trimmed.to_string()
    } else {
        format!("ferry-{trimmed}")
    };
    // 40 characters leave room for "-spec", a command's "-verify-<nonce>" and the pod suffixes.
    if body.len() <= 40 && body == format!("ferry-{}", run_id.trim_start_matches("ferry-")) {
        return body;
    }
    let hash = format!("{:08x}", fnv32(run_id.as_bytes()));
    let head: String = body.chars().take(31).collect();
    format!("{}-{hash}", head.trim_end_matches('-'))
}

fn fnv32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// A stable digest of the spec and secrets: a pod template carries it, so a change of either
/// restarts the workers (they read both when they start). Not reversible into the secrets'
/// contents for any practical purpose, and never logged.
fn inputs_hash(docs: &RunDocuments) -> String {
    let mut bytes = docs.spec_json().into_bytes();
    for s in &docs.secrets {
        bytes.extend_from_slice(s.name.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(s.contents.as_bytes());
        bytes.push(0);
    }
    // Two different FNV-1a widths over the same bytes: a change shows, collisions are not a
    // security boundary here (the Secret itself is compared byte for byte on read).
    format!(
        "{:08x}{:08x}",
        fnv32(&bytes),
        fnv32(&[bytes.as_slice(), b"\x01"].concat())
    )
}

impl KubernetesLauncher {
    pub fn new(
        settings: KubernetesSettings,
        run_id: &str,
        workload: Workload,
        docs: RunDocuments,
        ctx: &Ctx,
    ) -> KubernetesLauncher {
        KubernetesLauncher {
            settings,
            run_id: run_id.to_string(),
            workload,
            docs,
            ctx: ctx.clone(),
            client: OnceCell::new(),
        }
    }

    fn base(&self) -> String {
        object_base(&self.run_id)
    }
    pub fn spec_name(&self) -> String {
        format!("{}-spec", self.base())
    }
    pub fn secret_name(&self) -> String {
        format!("{}-secrets", self.base())
    }
    pub fn workers_name(&self) -> String {
        format!("{}-workers", self.base())
    }
    fn run_selector(&self) -> String {
        format!("{RUN_LABEL}={}", label_value(&self.run_id))
    }
    fn worker_selector(&self) -> String {
        format!("{},{ROLE_LABEL}=workers", self.run_selector())
    }

    fn labels(&self, role: Option<&str>) -> BTreeMap<String, String> {
        let mut l = BTreeMap::from([
            (
                "app.kubernetes.io/name".to_string(),
                "ferry-mirror".to_string(),
            ),
            (
                "app.kubernetes.io/managed-by".to_string(),
                FIELD_MANAGER.to_string(),
            ),
            (RUN_LABEL.to_string(), label_value(&self.run_id)),
        ]);
        if let Some(role) = role {
            l.insert(ROLE_LABEL.to_string(), role.to_string());
        }
        l
    }

    fn meta(&self, name: String, role: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.settings.namespace.clone()),
            labels: Some(self.labels(role)),
            annotations: Some(BTreeMap::from([(
                RUN_ID_ANNOTATION.to_string(),
                self.run_id.clone(),
            )])),
            ..ObjectMeta::default()
        }
    }

    /// The ConfigMap holding the spec.
    pub fn render_config_map(&self) -> ConfigMap {
        ConfigMap {
            metadata: self.meta(self.spec_name(), None),
            data: Some(BTreeMap::from([(
                SPEC_KEY.to_string(),
                self.docs.spec_json(),
            )])),
            ..ConfigMap::default()
        }
    }

    /// The Secret holding every secret file the spec names.
    pub fn render_secret(&self) -> Secret {
        Secret {
            metadata: self.meta(self.secret_name(), None),
            type_: Some("Opaque".to_string()),
            data: Some(
                self.docs
                    .secrets
                    .iter()
                    .map(|s| (s.name.clone(), ByteString(s.contents.clone().into_bytes())))
                    .collect(),
            ),
            ..Secret::default()
        }
    }

    fn resources(&self) -> Option<ResourceRequirements> {
        let s = &self.settings;
        let pick = |pairs: [(&str, &Option<String>); 2]| {
            let m: BTreeMap<String, Quantity> = pairs
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_string(), Quantity(v.clone()?))))
                .collect();
            (!m.is_empty()).then_some(m)
        };
        let requests = pick([("cpu", &s.cpu_request), ("memory", &s.memory_request)]);
        let limits = pick([("cpu", &s.cpu_limit), ("memory", &s.memory_limit)]);
        (requests.is_some() || limits.is_some()).then(|| ResourceRequirements {
            requests,
            limits,
            ..ResourceRequirements::default()
        })
    }

    /// A pod running `ferry-mirror <args> --spec <spec>` with the spec and secrets mounted.
    pub fn pod_template(&self, role: &str, args: Vec<String>, restart: &str) -> PodTemplateSpec {
        let s = &self.settings;
        let mut labels = self.labels(Some(role));
        labels.insert("app.kubernetes.io/component".to_string(), role.to_string());
        let container = Container {
            name: "ferry-mirror".to_string(),
            image: Some(s.image.clone()),
            image_pull_policy: Some(s.image_pull_policy.clone()),
            args: Some(args),
            // The worker id: the pod's name, from the downward API (not a literal).
            env: Some(vec![EnvVar {
                name: "POD_NAME".to_string(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "metadata.name".to_string(),
                        ..ObjectFieldSelector::default()
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            }]),
            volume_mounts: Some(vec![
                VolumeMount {
                    name: "spec".to_string(),
                    mount_path: SPEC_DIR.to_string(),
                    read_only: Some(true),
                    ..VolumeMount::default()
                },
                VolumeMount {
                    name: "secrets".to_string(),
                    mount_path: SECRET_DIR.to_string(),
                    read_only: Some(true),
                    ..VolumeMount::default()
                },
            ]),
            resources: self.resources(),
            // The tail of the output as the termination message when the command fails: it
            // reaches the provider through the pod's status even where pod logs cannot be read.
            termination_message_policy: Some("FallbackToLogsOnError".to_string()),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                run_as_non_root: Some(true),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".to_string()]),
                    ..Capabilities::default()
                }),
                ..SecurityContext::default()
            }),
            ..Container::default()
        };
        let tolerations: Vec<Toleration> = s
            .tolerations
            .iter()
            .map(|t| Toleration {
                key: t.key.clone(),
                operator: Some(t.operator.clone().unwrap_or_else(|| "Equal".to_string())),
                value: t.value.clone(),
                effect: t.effect.clone(),
                ..Toleration::default()
            })
            .collect();
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels),
                annotations: Some(BTreeMap::from([(
                    HASH_ANNOTATION.to_string(),
                    inputs_hash(&self.docs),
                )])),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                containers: vec![container],
                restart_policy: Some(restart.to_string()),
                service_account_name: s.service_account.clone(),
                automount_service_account_token: Some(false),
                node_selector: (!s.node_selector.is_empty()).then(|| s.node_selector.clone()),
                tolerations: (!tolerations.is_empty()).then_some(tolerations),
                host_network: s.host_network.then_some(true),
                dns_policy: s
                    .host_network
                    .then(|| "ClusterFirstWithHostNet".to_string()),
                termination_grace_period_seconds: Some(POD_GRACE_SECONDS),
                security_context: Some(PodSecurityContext {
                    run_as_non_root: Some(true),
                    run_as_user: Some(RUNTIME_UID),
                    run_as_group: Some(RUNTIME_UID),
                    // Secret files are group-readable by the runtime's group only (0440).
                    fs_group: Some(RUNTIME_UID),
                    ..PodSecurityContext::default()
                }),
                volumes: Some(vec![
                    Volume {
                        name: "spec".to_string(),
                        config_map: Some(ConfigMapVolumeSource {
                            name: self.spec_name(),
                            ..ConfigMapVolumeSource::default()
                        }),
                        ..Volume::default()
                    },
                    Volume {
                        name: "secrets".to_string(),
                        secret: Some(SecretVolumeSource {
                            secret_name: Some(self.secret_name()),
                            default_mode: Some(0o440),
                            ..SecretVolumeSource::default()
                        }),
                        ..Volume::default()
                    },
                ]),
                ..PodSpec::default()
            }),
        }
    }

    fn spec_path() -> String {
        format!("{SPEC_DIR}/{SPEC_KEY}")
    }

    fn worker_args() -> Vec<String> {
        [
            "run",
            "--spec",
            &Self::spec_path(),
            "--worker-id",
            "$(POD_NAME)",
        ]
        .map(String::from)
        .to_vec()
    }

    /// The continuous run's workers.
    pub fn render_deployment(&self, replicas: usize) -> Deployment {
        let selector = BTreeMap::from([
            (RUN_LABEL.to_string(), label_value(&self.run_id)),
            (ROLE_LABEL.to_string(), "workers".to_string()),
        ]);
        Deployment {
            metadata: self.meta(self.workers_name(), Some("workers")),
            spec: DeploymentSpec {
                replicas: Some(replicas as i32),
                selector: LabelSelector {
                    match_labels: Some(selector),
                    ..LabelSelector::default()
                },
                // Old and new workers never copy side by side with different specs.
                strategy: Some(DeploymentStrategy {
                    type_: Some("Recreate".to_string()),
                    ..DeploymentStrategy::default()
                }),
                template: self.pod_template("workers", Self::worker_args(), "Always"),
                ..DeploymentSpec::default()
            },
            ..Deployment::default()
        }
    }

    /// The until_caught_up run's workers: `parallelism` pods, done when they have all exited
    /// after the run completed (no fixed completion count, so parallelism can change).
    pub fn render_job(&self, parallelism: usize) -> Job {
        Job {
            metadata: self.meta(self.workers_name(), Some("workers")),
            spec: Some(JobSpec {
                parallelism: Some(parallelism as i32),
                backoff_limit: Some(6),
                template: self.pod_template("workers", Self::worker_args(), "OnFailure"),
                ..JobSpec::default()
            }),
            ..Job::default()
        }
    }

    /// A one-off `ferry-mirror <args>` as a Job of one pod that is not retried, with the
    /// environment variables `env` added to the container's.
    pub fn render_command_job(&self, name: &str, args: &[&str], env: &[(&str, &str)]) -> Job {
        let mut full: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        full.push("--spec".to_string());
        full.push(Self::spec_path());
        let mut job = Job {
            metadata: self.meta(name.to_string(), Some("command")),
            spec: Some(JobSpec {
                parallelism: Some(1),
                completions: Some(1),
                backoff_limit: Some(0),
                template: self.pod_template("command", full, "Never"),
                ..JobSpec::default()
            }),
            ..Job::default()
        };
        if let Some(c) = job
            .spec
            .as_mut()
            .and_then(|s| s.template.spec.as_mut())
            .and_then(|p| p.containers.first_mut())
        {
            c.env
                .get_or_insert_with(Vec::new)
                .extend(env.iter().map(|(k, v)| EnvVar {
                    name: (*k).to_string(),
                    value: Some((*v).to_string()),
                    ..EnvVar::default()
                }));
        }
        // Not part of the pod hash: commands run once with whatever the spec is now.
        if let Some(t) = job.spec.as_mut().and_then(|s| s.template.metadata.as_mut()) {
            t.annotations = None;
        }
        job
    }
}

/// API calls: bounded, and ended by the request's context.
impl KubernetesLauncher {
    async fn bounded<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, LaunchError> {
        match self.ctx.run(tokio::time::timeout(CALL_TIMEOUT, call)).await {
            Ok(Ok(result)) => result.map_err(api_error(what)),
            Ok(Err(_)) => Err(LaunchError::Kubernetes {
                what: what.to_string(),
                detail: format!("no answer within {CALL_TIMEOUT:?}"),
            }),
            Err(why) => Err(LaunchError::Kubernetes {
                what: what.to_string(),
                detail: why.to_string(),
            }),
        }
    }

    async fn client(&self) -> Result<Client, LaunchError> {
        self.client
            .get_or_try_init(|| async {
                // kube's rustls and the rest of the provider share aws-lc-rs; pick it explicitly
                // so rustls never has to guess between linked providers.
                let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
                let s = &self.settings;
                let fail = |detail: String| LaunchError::Kubernetes {
                    what: "configuring the Kubernetes client".to_string(),
                    detail,
                };
                let load = async {
                    if s.in_cluster {
                        return Config::incluster().map_err(|e| fail(e.to_string()));
                    }
                    let options = KubeConfigOptions {
                        context: s.context.clone(),
                        ..KubeConfigOptions::default()
                    };
                    match &s.kubeconfig_path {
                        Some(path) => {
                            let kubeconfig = Kubeconfig::read_from(path)
                                .map_err(|e| fail(format!("reading {}: {e}", path.display())))?;
                            Config::from_custom_kubeconfig(kubeconfig, &options)
                                .await
                                .map_err(|e| fail(e.to_string()))
                        }
                        None if s.context.is_some() => Config::from_kubeconfig(&options)
                            .await
                            .map_err(|e| fail(e.to_string())),
                        None => Config::infer().await.map_err(|e| fail(e.to_string())),
                    }
                };
                let mut config = match self.ctx.run(tokio::time::timeout(CALL_TIMEOUT, load)).await
                {
                    Ok(Ok(r)) => r?,
                    Ok(Err(_)) => return Err(fail("timed out".to_string())),
                    Err(why) => return Err(fail(why.to_string())),
                };
                config.connect_timeout = Some(Duration::from_secs(10));
                config.read_timeout = Some(CALL_TIMEOUT);
                config.write_timeout = Some(CALL_TIMEOUT);
                Client::try_from(config).map_err(|e| fail(e.to_string()))
            })
            .await
            .cloned()
    }

    async fn api<K>(&self) -> Result<Api<K>, LaunchError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Ok(Api::namespaced(
            self.client().await?,
            &self.settings.namespace,
        ))
    }

    /// Server-side apply, forced: creates the object, or puts back every field we own.
    async fn apply<K>(&self, object: &K) -> Result<K, LaunchError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Serialize
            + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        let api: Api<K> = self.api().await?;
        let name = object.meta().name.clone().unwrap_or_default();
        let kind = K::kind(&Default::default()).to_string();
        let params = PatchParams::apply(FIELD_MANAGER).force();
        self.bounded(
            &format!("applying {kind} {}/{name}", self.settings.namespace),
            api.patch(&name, &params, &Patch::Apply(object)),
        )
        .await
    }

    /// The object, or None when it does not exist.
    async fn get_opt<K>(&self, name: &str) -> Result<Option<K>, LaunchError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        let api: Api<K> = self.api().await?;
        let kind = K::kind(&Default::default()).to_string();
        self.bounded(
            &format!("reading {kind} {}/{name}", self.settings.namespace),
            api.get_opt(name),
        )
        .await
    }

    /// Deletes the object (children in the background); a missing one is fine.
    async fn delete<K>(&self, name: &str) -> Result<(), LaunchError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        let api: Api<K> = self.api().await?;
        let kind = K::kind(&Default::default()).to_string();
        let result = self
            .bounded(
                &format!("deleting {kind} {}/{name}", self.settings.namespace),
                api.delete(name, &DeleteParams::background()),
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(LaunchError::Kubernetes { detail, .. }) if detail.contains("NotFound") => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn list<K>(&self, selector: &str) -> Result<Vec<K>, LaunchError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        let api: Api<K> = self.api().await?;
        let kind = K::kind(&Default::default()).to_string();
        let list = self
            .bounded(
                &format!("listing {kind} in {}", self.settings.namespace),
                api.list(&ListParams::default().labels(selector)),
            )
            .await?;
        Ok(list.items)
    }

    async fn worker_pods(&self) -> Result<Vec<Pod>, LaunchError> {
        self.list::<Pod>(&self.worker_selector()).await
    }

    async fn apply_workload(&self, count: usize) -> Result<(), LaunchError> {
        match self.workload {
            Workload::Deployment => self.apply(&self.render_deployment(count)).await.map(drop),
            Workload::Job => {
                let job = self.render_job(count);
                // A Job's pod template is immutable: one built from other inputs is replaced.
                if let Some(existing) = self.get_opt::<Job>(&self.workers_name()).await?
                    && template_hash(existing.spec.as_ref().map(|s| &s.template))
                        != template_hash(job.spec.as_ref().map(|s| &s.template))
                {
                    self.delete_workload_and_wait(Duration::from_secs(
                        POD_GRACE_SECONDS as u64 + 30,
                    ))
                    .await?;
                }
                self.apply(&job).await.map(drop)
            }
        }
    }

    /// Deletes the workers' Deployment and Job and waits (up to `grace`) for their pods to go,
    /// then removes stragglers at once.
    async fn delete_workload_and_wait(&self, grace: Duration) -> Result<(), LaunchError> {
        self.delete::<Deployment>(&self.workers_name()).await?;
        self.delete::<Job>(&self.workers_name()).await?;
        self.wait_pods_gone(&self.worker_selector(), grace).await
    }

    async fn wait_pods_gone(&self, selector: &str, grace: Duration) -> Result<(), LaunchError> {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let pods = self.list::<Pod>(selector).await?;
            if pods.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let api: Api<Pod> = self.api().await?;
                for p in &pods {
                    let name = p.metadata.name.clone().unwrap_or_default();
                    tracing::warn!(pod = %name, "worker pod did not stop in time; deleting it now");
                    let now = DeleteParams {
                        grace_period_seconds: Some(0),
                        ..DeleteParams::background()
                    };
                    match self
                        .bounded(&format!("deleting pod {name}"), api.delete(&name, &now))
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if is_not_found(&e) => {}
                        Err(e) => return Err(e),
                    }
                }
                return Ok(());
            }
            self.sleep(POLL).await?;
        }
    }

    async fn sleep(&self, period: Duration) -> Result<(), LaunchError> {
        self.ctx
            .sleep(period)
            .await
            .map_err(|why| LaunchError::Kubernetes {
                what: "waiting for the cluster".to_string(),
                detail: why.to_string(),
            })
    }

    /// Differences between the cluster and what the run wants, one line per object. Secret
    /// contents are compared, never shown.
    pub async fn find_drift(
        &self,
        workers: usize,
        finished: bool,
    ) -> Result<Vec<String>, LaunchError> {
        let mut drift = Vec::new();
        let ns = &self.settings.namespace;
        match self.get_opt::<ConfigMap>(&self.spec_name()).await? {
            None => drift.push(format!("ConfigMap {ns}/{} is missing", self.spec_name())),
            Some(cm) if cm.data != self.render_config_map().data => drift.push(format!(
                "ConfigMap {ns}/{}: the spec was changed",
                self.spec_name()
            )),
            Some(_) => {}
        }
        match self.get_opt::<Secret>(&self.secret_name()).await? {
            None => drift.push(format!("Secret {ns}/{} is missing", self.secret_name())),
            Some(s)
                if s.data.as_ref().cloned().unwrap_or_default()
                    != self.render_secret().data.unwrap_or_default() =>
            {
                drift.push(format!(
                    "Secret {ns}/{}: the credentials were changed",
                    self.secret_name()
                ))
            }
            Some(_) => {}
        }
        if finished {
            // A finished run's workers have exited; their workload no longer matters.
            return Ok(drift);
        }
        let name = self.workers_name();
        let (present, replicas, template) = match self.workload {
            Workload::Deployment => match self.get_opt::<Deployment>(&name).await? {
                Some(d) => {
                    let spec = d.spec;
                    (true, spec.replicas, Some(spec.template))
                }
                None => (false, None, None),
            },
            Workload::Job => match self.get_opt::<Job>(&name).await? {
                Some(j) => {
                    let spec = j.spec.unwrap_or_default();
                    (true, spec.parallelism, Some(spec.template))
                }
                None => (false, None, None),
            },
        };
        let kind = match self.workload {
            Workload::Deployment => "Deployment",
            Workload::Job => "Job",
        };
        if !present {
            drift.push(format!("{kind} {ns}/{name} is missing"));
            return Ok(drift);
        }
        if replicas != Some(workers as i32) {
            drift.push(format!(
                "{kind} {ns}/{name}: {} replicas instead of {workers}",
                replicas.map_or("unset".to_string(), |r| r.to_string())
            ));
        }
        let want = self.pod_template("workers", Self::worker_args(), "Always");
        if template_hash(template.as_ref()) != template_hash(Some(&want)) {
            drift.push(format!(
                "{kind} {ns}/{name}: the pod template was built from other inputs"
            ));
        }
        let image = template
            .as_ref()
            .and_then(|t| t.spec.as_ref())
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone());
        if image.as_deref() != Some(self.settings.image.as_str()) {
            drift.push(format!(
                "{kind} {ns}/{name}: image {} instead of {}",
                image.unwrap_or_default(),
                self.settings.image
            ));
        }
        Ok(drift)
    }

    /// Every object of the run (by label), deleted, and gone.
    pub async fn delete_everything(&self, grace: Duration) -> Result<(), LaunchError> {
        self.delete_workload_and_wait(grace).await?;
        let selector = self.run_selector();
        for job in self.list::<Job>(&selector).await? {
            self.delete::<Job>(&job.metadata.name.unwrap_or_default())
                .await?;
        }
        self.wait_pods_gone(&selector, grace).await?;
        self.delete::<ConfigMap>(&self.spec_name()).await?;
        self.delete::<Secret>(&self.secret_name()).await?;
        for cm in self.list::<ConfigMap>(&selector).await? {
            self.delete::<ConfigMap>(&cm.metadata.name.unwrap_or_default())
                .await?;
        }
        for s in self.list::<Secret>(&selector).await? {
            self.delete::<Secret>(&s.metadata.name.unwrap_or_default())
                .await?;
        }
        // Deletions are asynchronous (finalizers, garbage collection): wait until the run's
        // objects are gone, so a new run with the same id starts clean.
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let left = self.list::<Job>(&selector).await?.len()
                + self.list::<Deployment>(&selector).await?.len()
                + self.list::<ConfigMap>(&selector).await?.len()
                + self.list::<Secret>(&selector).await?.len()
                + self.list::<Pod>(&selector).await?.len();
            if left == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(LaunchError::Kubernetes {
                    what: format!("deleting the run's objects in {}", self.settings.namespace),
                    detail: format!("{left} objects labelled {selector} are still there"),
                });
            }
            self.sleep(POLL).await?;
        }
    }
}

fn is_not_found(e: &LaunchError) -> bool {
    matches!(e, LaunchError::Kubernetes { detail, .. } if detail.contains("NotFound") || detail.contains("not found"))
}

fn template_hash(t: Option<&PodTemplateSpec>) -> Option<String> {
    t?.metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(HASH_ANNOTATION)
        .cloned()
}

/// How a command pod ended: exit code and termination message (the tail of its output when it
/// failed), from the pod's status.
fn terminated(pod: &Pod) -> Option<(i32, String)> {
    let state = pod
        .status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .as_ref()?
        .terminated
        .as_ref()?;
    Some((state.exit_code, state.message.clone().unwrap_or_default()))
}

fn pod_running(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

#[async_trait]
impl Launcher for KubernetesLauncher {
    fn secret_dir(&self) -> PathBuf {
        PathBuf::from(SECRET_DIR)
    }

    async fn provision(&self, documents: &RunDocuments) -> Result<(), LaunchError> {
        if documents != &self.docs {
            return Err(LaunchError::Kubernetes {
                what: "provisioning".to_string(),
                detail: "the launcher was built for other documents".to_string(),
            });
        }
        self.apply(&self.render_secret()).await?;
        self.apply(&self.render_config_map()).await?;
        Ok(())
    }

    async fn ensure_workers(&self, count: usize) -> Result<(), LaunchError> {
        self.apply_workload(count).await
    }

    async fn running(&self) -> usize {
        match self.worker_pods().await {
            Ok(pods) => pods.iter().filter(|p| pod_running(p)).count(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the worker pods");
                0
            }
        }
    }

    async fn stop(&self, grace: Duration) -> Result<(), LaunchError> {
        self.delete_workload_and_wait(grace).await
    }

    async fn run_once(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        within: Duration,
    ) -> Result<CommandOutput, LaunchError> {
        let command = args.first().copied().unwrap_or("command");
        let nonce = format!(
            "{:06x}",
            fnv32(format!("{:?}", std::time::SystemTime::now()).as_bytes()) & 0xff_ffff
        );
        let name = format!("{}-{command}-{nonce}", self.base());
        let job = self.render_command_job(&name, args, env);
        let jobs: Api<Job> = self.api().await?;
        self.bounded(
            &format!("creating Job {}/{name}", self.settings.namespace),
            jobs.create(&PostParams::default(), &job),
        )
        .await?;
        let outcome = self.await_command(&name, args, within).await;
        // The Job and its pod are removed whatever happened (in the background).
        if let Err(e) = self.delete::<Job>(&name).await {
            tracing::warn!(job = %name, error = %e, "cannot delete a command Job");
        }
        outcome
    }

    async fn log_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        let Ok(pods) = self.worker_pods().await else {
            return out;
        };
        for p in pods {
            let name = p.metadata.name.clone().unwrap_or_default();
            let phase = p
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            let _ = writeln!(out, "--- pod {name} ({phase}):");
            if let Some(text) = self.pod_log(&name, lines).await {
                out.push_str(&text);
            } else if let Some((code, message)) = terminated(&p) {
                let _ = writeln!(out, "exited {code}: {message}");
            }
        }
        out
    }

    async fn drift(&self, workers: usize, finished: bool) -> Result<Vec<String>, LaunchError> {
        self.find_drift(workers, finished).await
    }

    async fn remove(&self, grace: Duration) -> Result<(), LaunchError> {
        self.delete_everything(grace).await
    }
}

impl KubernetesLauncher {
    /// A pod's last lines through the API (the kubelet serves them); None where the cluster
    /// cannot (e.g. a kubelet the API server cannot reach).
    async fn pod_log(&self, pod: &str, lines: usize) -> Option<String> {
        let api: Api<Pod> = self.api().await.ok()?;
        let params = LogParams {
            tail_lines: Some(lines as i64),
            ..LogParams::default()
        };
        self.bounded("reading pod logs", api.logs(pod, &params))
            .await
            .ok()
    }

    async fn await_command(
        &self,
        name: &str,
        args: &[&str],
        within: Duration,
    ) -> Result<CommandOutput, LaunchError> {
        let deadline = tokio::time::Instant::now() + within;
        let selector = format!("job-name={name}");
        loop {
            let pods = self.list::<Pod>(&selector).await?;
            if let Some((pod, (code, message))) =
                pods.iter().find_map(|p| terminated(p).map(|t| (p, t)))
            {
                let pod_name = pod.metadata.name.clone().unwrap_or_default();
                // Full output through the API where the cluster serves pod logs.
                let stdout = self.pod_log(&pod_name, 1_000_000).await;
                return Ok(CommandOutput {
                    success: code == 0,
                    exit_code: Some(code),
                    stdout_read: stdout.is_some(),
                    stdout: stdout.unwrap_or_default(),
                    stderr: message,
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(LaunchError::TimedOut {
                    command: args.join(" "),
                    within,
                });
            }
            // A pod that cannot start (bad image, unschedulable) never terminates: say why.
            if let Some(why) = pods.iter().find_map(waiting_reason) {
                return Err(LaunchError::Kubernetes {
                    what: format!("running `ferry-mirror {}` as Job {name}", args.join(" ")),
                    detail: why,
                });
            }
            self.sleep(POLL).await?;
        }
    }
}

/// A reason a pod will not start by itself.
fn waiting_reason(p: &Pod) -> Option<String> {
    let statuses = p.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().find_map(|s| {
        let w = s.state.as_ref()?.waiting.as_ref()?;
        let reason = w.reason.as_deref()?;
        matches!(
            reason,
            "ErrImagePull"
                | "ImagePullBackOff"
                | "ErrImageNeverPull"
                | "InvalidImageName"
                | "CreateContainerConfigError"
        )
        .then(|| format!("{reason}: {}", w.message.clone().unwrap_or_default()))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ferry_kafka::ConnectionConfig;

    use super::*;
    use crate::mirror::model::MirrorModel;
    use crate::provider::FerryData;

    fn ctx() -> Ctx {
        Ctx::new(
            Arc::new(FerryData::for_tests()),
            tfplugin::context::StopSignal::default(),
            tfplugin::Intent::Normal,
        )
    }

    fn docs(run_id: &str) -> RunDocuments {
        let mut source = ConnectionConfig::plaintext("a:9092");
        source.sasl = Some(ferry_kafka::SaslConfig {
            mechanism: ferry_kafka::SaslMechanism::ScramSha512,
            username: "u".into(),
            password: ferry_kafka::Secret::new("hunter2-secret"),
        });
        let model = MirrorModel {
            topics: Tf::Known(vec!["orders".to_string()]),
            ..MirrorModel::default()
        };
        crate::mirror::spec::build(
            &model,
            run_id,
            &source,
            &ConnectionConfig::plaintext("b:9092"),
            std::path::Path::new(SECRET_DIR),
        )
        .unwrap()
    }
    use tfplugin::Tf;

    fn launcher(workload: Workload) -> KubernetesLauncher {
        let settings = KubernetesSettings {
            namespace: "migrations".into(),
            image: "registry.example/ferry-mirror:1".into(),
            image_pull_policy: "IfNotPresent".into(),
            service_account: Some("ferry".into()),
            node_selector: BTreeMap::from([("pool".to_string(), "kafka".to_string())]),
            tolerations: vec![TolerationSetting {
                key: Some("dedicated".into()),
                value: Some("kafka".into()),
                effect: Some("NoSchedule".into()),
                operator: None,
            }],
            host_network: true,
            cpu_request: Some("500m".into()),
            memory_limit: Some("1Gi".into()),
            ..KubernetesSettings::default()
        };
        KubernetesLauncher::new(
            settings,
            "ferry-0123456789ab",
            workload,
            docs("ferry-0123456789ab"),
            &ctx(),
        )
    }

    #[test]
    fn names_and_label_values_are_valid_and_distinct() {
        assert_eq!(object_base("ferry-0123456789ab"), "ferry-0123456789ab");
        assert_eq!(label_value("ferry-0123456789ab"), "ferry-0123456789ab");
        let long = "Orders_Migration/".repeat(6);
        let base = object_base(&long);
        assert!(base.len() <= 40, "{base}");
        assert!(crate::mirror::model::is_dns_label(&base), "{base}");
        assert_ne!(base, object_base(&"Orders_Migration/".repeat(7)));
        let label = label_value(&long);
        assert!(label.len() <= 63, "{label}");
        assert!(label.starts_with(|c: char| c.is_ascii_alphanumeric()));
        assert!(label.ends_with(|c: char| c.is_ascii_alphanumeric()));
        assert_ne!(
            label_value("a/b"),
            label_value("a-b"),
            "a cleaned id keeps a hash"
        );
    }

    #[test]
    fn secrets_go_into_the_secret_only() {
        let l = launcher(Workload::Deployment);
        let secret = l.render_secret();
        let data = secret.data.unwrap();
        assert_eq!(
            data.get("source.password").map(|b| b.0.as_slice()),
            Some(&b"hunter2-secret"[..])
        );
        let cm = serde_json::to_string(&l.render_config_map()).unwrap();
        assert!(cm.contains("/etc/ferry/secrets/source.password"));
        let deployment = serde_json::to_string(&l.render_deployment(2)).unwrap();
        let job =
            serde_json::to_string(&l.render_command_job("x", &["verify", "--json"], &[])).unwrap();
        for text in [&cm, &deployment, &job] {
            assert!(!text.contains("hunter2"), "a secret leaked into {text}");
        }
        // The only environment variable is the pod's name from the downward API.
        let pod = l.pod_template("workers", vec![], "Always").spec.unwrap();
        let env = pod.containers[0].env.clone().unwrap();
        assert_eq!(env.len(), 1);
        assert!(env[0].value.is_none() && env[0].value_from.is_some());
        let secret_volume = pod
            .volumes
            .unwrap()
            .into_iter()
            .find_map(|v| v.secret)
            .unwrap();
        assert_eq!(
            secret_volume.secret_name.as_deref(),
            Some("ferry-0123456789ab-secrets")
        );
        assert_eq!(secret_volume.default_mode, Some(0o440));
    }

    #[test]
    fn every_object_carries_the_run_labels() {
        let l = launcher(Workload::Job);
        let metas = [
            l.render_config_map().metadata,
            l.render_secret().metadata,
            l.render_deployment(1).metadata,
            l.render_job(1).metadata,
            l.render_command_job("c", &["translate"], &[]).metadata,
        ];
        for m in metas {
            let labels = m.labels.unwrap();
            assert_eq!(
                labels.get(RUN_LABEL).map(String::as_str),
                Some("ferry-0123456789ab")
            );
            assert_eq!(m.namespace.as_deref(), Some("migrations"));
        }
        let template = l.render_job(3).spec.unwrap().template;
        let labels = template.metadata.unwrap().labels.unwrap();
        assert_eq!(
            labels.get(RUN_LABEL).map(String::as_str),
            Some("ferry-0123456789ab")
        );
        assert_eq!(labels.get(ROLE_LABEL).map(String::as_str), Some("workers"));
    }

    #[test]
    fn workloads_follow_the_settings() {
        let l = launcher(Workload::Deployment);
        let d = l.render_deployment(3);
        assert_eq!(d.spec.replicas, Some(3));
        let pod = d.spec.template.spec.unwrap();
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some("registry.example/ferry-mirror:1"));
        assert_eq!(
            c.args.clone().unwrap(),
            [
                "run",
                "--spec",
                "/etc/ferry/spec/spec.json",
                "--worker-id",
                "$(POD_NAME)"
            ]
        );
        let r = c.resources.clone().unwrap();
        assert_eq!(
            r.requests.unwrap().get("cpu"),
            Some(&Quantity("500m".into()))
        );
        assert_eq!(
            r.limits.unwrap().get("memory"),
            Some(&Quantity("1Gi".into()))
        );
        assert_eq!(pod.host_network, Some(true));
        assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
        assert_eq!(pod.service_account_name.as_deref(), Some("ferry"));
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(
            pod.node_selector.unwrap().get("pool").map(String::as_str),
            Some("kafka")
        );
        let t = &pod.tolerations.unwrap()[0];
        assert_eq!(t.operator.as_deref(), Some("Equal"));
        let job = l.render_job(2).spec.unwrap();
        assert_eq!(job.parallelism, Some(2));
        assert_eq!(job.completions, None, "parallelism stays patchable");
        let once = l
            .render_command_job(
                "c",
                &["verify", "--json"],
                &[("FERRY_MIRROR_RESULT_ID", "apply-1")],
            )
            .spec
            .unwrap();
        assert_eq!(once.backoff_limit, Some(0));
        let container = once.template.spec.unwrap().containers[0].clone();
        assert_eq!(
            container.args.clone().unwrap(),
            ["verify", "--json", "--spec", "/etc/ferry/spec/spec.json"]
        );
        let env = container.env.unwrap();
        assert!(env.iter().any(|e| e.name == "POD_NAME"));
        assert!(
            env.iter().any(
                |e| e.name == "FERRY_MIRROR_RESULT_ID" && e.value.as_deref() == Some("apply-1")
            )
        );
    }

    #[test]
    fn a_change_of_spec_or_secret_changes_the_pod_template() {
        let a = launcher(Workload::Deployment);
        let mut other = docs("ferry-0123456789ab");
        other.secrets[0].contents = "rotated".into();
        let b = KubernetesLauncher::new(
            a.settings.clone(),
            "ferry-0123456789ab",
            Workload::Deployment,
            other,
            &ctx(),
        );
        let hash =
            |l: &KubernetesLauncher| template_hash(Some(&l.render_deployment(1).spec.template));
        assert!(hash(&a).is_some());
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(hash(&a), hash(&launcher(Workload::Deployment)));
    }

    #[tokio::test]
    async fn an_api_server_that_never_answers_ends_with_the_context() {
        // Accepts connections and never speaks: every call would hang without the bounds.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("ferry-kube-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n"
            ),
        )
        .unwrap();
        let settings = KubernetesSettings {
            namespace: "ns".into(),
            image: "i".into(),
            kubeconfig_path: Some(kubeconfig),
            ..KubernetesSettings::default()
        };
        let ctx = ctx().with_timeout(Duration::from_millis(300));
        let l = KubernetesLauncher::new(settings, "r", Workload::Deployment, docs("r"), &ctx);
        let started = std::time::Instant::now();
        let err = l.ensure_workers(1).await.unwrap_err().to_string();
        assert!(err.contains("time limit"), "{err}");
        assert!(
            started.elapsed() < CALL_TIMEOUT,
            "ended by the context, not the call bound"
        );
        drop(listener);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
