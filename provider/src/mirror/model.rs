//! `ferry_mirror`'s schema and model: what users write and what state records.

use ferry_mirror_api::RunState;
use std::collections::BTreeMap;

use tfplugin::{
    Attribute, Block, Diagnostics, Model, NestedBlock, Schema, StateUpgrader, Tf, Type, Validator,
    Value, timeouts,
};

use crate::kafka::connection::{ConnectionModel, connection_block};

pub const MODES: &[&str] = &["until_caught_up", "continuous"];

/// Computed status attributes: unknown whenever the plan changes anything.
const STATUS: &str = "Refreshed from the run's status topic.";

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct MirrorModel {
    pub run_id: Tf<String>,
    pub topics: Tf<Vec<String>>,
    pub topics_regex: Tf<String>,
    pub exclude_regex: Tf<String>,
    pub topic_name_prefix: Tf<String>,
    pub consumer_groups_regex: Tf<String>,
    pub mode: Tf<String>,
    pub workers: Tf<i64>,
    pub exactly_once: Tf<bool>,
    pub in_sync_lag: Tf<i64>,
    pub slots: Tf<i64>,
    pub verify: Tf<bool>,
    pub http_listen: Tf<String>,
    pub target_may_hold_records: Tf<bool>,
    pub id: Tf<String>,
    pub state: Tf<String>,
    pub workers_running: Tf<i64>,
    pub topics_copied: Tf<i64>,
    pub records_copied: Tf<i64>,
    pub bytes_copied: Tf<i64>,
    pub lag: Tf<i64>,
    pub groups_translated: Tf<i64>,
    pub verification: Tf<Vec<VerificationRow>>,
    pub started_at: Tf<String>,
    pub completed_at: Tf<String>,
    pub copy_acls: Tf<bool>,
    pub acl_principal_map: Tf<BTreeMap<String, String>>,
    pub acls_copied: Tf<Vec<String>>,
    pub acls_refused: Tf<Vec<String>>,
    pub source: Tf<ConnectionModel>,
    pub target: Tf<ConnectionModel>,
    pub launcher: Tf<LauncherModel>,
    pub timeouts: Tf<timeouts::Timeouts>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct VerificationRow {
    pub group: String,
    pub topic: String,
    pub partition: i64,
    pub source_offset: i64,
    pub target_offset: Option<i64>,
    pub result: String,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct LauncherModel {
    pub local: Tf<LocalLauncherModel>,
    pub kubernetes: Tf<KubernetesLauncherModel>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct LocalLauncherModel {
    pub state_dir: Tf<String>,
    pub binary: Tf<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct KubernetesLauncherModel {
    pub namespace: Tf<String>,
    pub image: Tf<String>,
    pub image_pull_policy: Tf<String>,
    pub service_account: Tf<String>,
    pub node_selector: Tf<BTreeMap<String, String>>,
    pub host_network: Tf<bool>,
    pub kubeconfig_path: Tf<String>,
    pub context: Tf<String>,
    pub in_cluster: Tf<bool>,
    pub drift: Tf<Vec<String>>,
    pub resources: Tf<KubernetesResourcesModel>,
    pub tolerations: Tf<Vec<TolerationModel>>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct KubernetesResourcesModel {
    pub cpu_request: Tf<String>,
    pub cpu_limit: Tf<String>,
    pub memory_request: Tf<String>,
    pub memory_limit: Tf<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct TolerationModel {
    pub key: Tf<String>,
    pub operator: Tf<String>,
    pub value: Tf<String>,
    pub effect: Tf<String>,
}

impl MirrorModel {
    pub fn mode_is_continuous(&self) -> bool {
        self.mode.known().is_some_and(|m| m == "continuous")
    }
    pub fn run_state(&self) -> Option<RunState> {
        self.state.known().and_then(|s| parse_run_state(s))
    }
}

pub fn parse_run_state(text: &str) -> Option<RunState> {
    [
        RunState::Provisioning,
        RunState::Copying,
        RunState::CaughtUp,
        RunState::InSync,
        RunState::Complete,
        RunState::Failed,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
}

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

/// Keys and values of acl_principal_map are principals, `Type:name`.
fn principal_map_validator() -> Validator {
    Validator::custom(
        "Invalid principal",
        "Keys and values are principals written as Kafka does, `Type:name`.",
        |value, path, diags| {
            if let Value::Map(m) = value {
                for (k, v) in m {
                    let bad = [Some(k.as_str()), v.as_str()]
                        .into_iter()
                        .flatten()
                        .find(|p| !ferry_mirror_api::acls::principal_is_valid(p));
                    if let Some(p) = bad {
                        diags.attribute_error(
                            path.clone().key(k),
                            "Invalid principal",
                            format!("{p:?} is not a principal; write it as Kafka does, e.g. \"User:alice\""),
                        );
                    }
                }
            }
        },
    )
}

fn status(name: &str, ty: Type, what: &str) -> Attribute {
    Attribute::computed(name, ty).describe(&format!("{what} {STATUS}"))
}

/// Version 1 moved the defaults of mode, workers, exactly_once, in_sync_lag and verify into
/// the schema (planned and stored) and added http_listen. Version 2 added slots.
/// Version 2 also added target_may_hold_records.
pub fn schema() -> Schema {
    let cluster = |name: &str, what: &str| {
        NestedBlock::single(name, connection_block(what, true)).requires_replace()
    };
    Schema {
        version: 2,
        block: Block::new(
            "Copies topics and translates consumer groups from a source to a target cluster with \
             ferry-mirror workers. Apply returns when the copy is complete (or in sync, for a continuous mirror).",
        )
        .attribute(
            Attribute::optional_computed("run_id", Type::String)
                .describe(
                    "Names the run. Defaults to a name derived from the clusters and topics, so a timed-out apply \
                     resumes the same run.",
                )
                .requires_replace()
                .use_state_for_unknown(),
        )
        .attribute(Attribute::optional("topics", Type::list(Type::String)).describe("Source topics to copy."))
        .attribute(
            Attribute::optional("topics_regex", Type::String)
                .describe("Also copy source topics whose whole name matches.")
                .validate(Validator::regex("Invalid regular expression")),
        )
        .attribute(
            Attribute::optional("exclude_regex", Type::String)
                .describe("Never copy topics whose whole name matches.")
                .validate(Validator::regex("Invalid regular expression")),
        )
        .attribute(
            Attribute::optional("topic_name_prefix", Type::String)
                .describe("Prefix for target topic names; empty keeps names identical.")
                .requires_replace(),
        )
        .attribute(
            Attribute::optional("consumer_groups_regex", Type::String)
                .describe("Source consumer groups whose offsets are translated to the target.")
                .validate(Validator::regex("Invalid regular expression")),
        )
        .attribute(
            Attribute::optional("mode", Type::String)
                .describe(
                    "until_caught_up: copy what the source holds now, then finish. continuous: keep copying.",
                )
                .validate(Validator::one_of(MODES, "Invalid mode"))
                .default(Value::string("until_caught_up"))
                .requires_replace(),
        )
        .attribute(
            Attribute::optional("workers", Type::Number)
                .describe("Number of worker processes.")
                .validate(Validator::int_range(1, 64, "Invalid worker count"))
                .default(Value::int(1)),
        )
        .attribute(
            Attribute::optional("exactly_once", Type::Bool)
                .describe("Records and progress in one target transaction.")
                .default(Value::Bool(true))
                .requires_replace(),
        )
        .attribute(
            Attribute::optional("in_sync_lag", Type::Number)
                .describe("continuous: in sync when the total lag is at most this many records.")
                .validate(Validator::int_range(0, i64::MAX, "Invalid in_sync_lag"))
                .default(Value::int(1000)),
        )
        .attribute(
            Attribute::optional("slots", Type::Number)
                .describe(
                    "Work slots of the run: each a fixed share of the source partitions with one \
                     transactional producer, shared by the workers. A worker's producers, threads \
                     and connections grow with the slots it owns, not with the partitions. \
                     Recorded when the run starts; a change applies to a new run only.",
                )
                .validate(Validator::int_range(
                    1,
                    i64::from(ferry_mirror_api::MAX_SLOTS),
                    "Invalid slot count",
                ))
                .default(Value::int(i64::from(ferry_mirror_api::DEFAULT_SLOTS))),
        )
        .attribute(
            Attribute::optional("verify", Type::Bool)
                .describe("Verify translated groups at the end and fail on a mismatch.")
                .default(Value::Bool(true)),
        )
        .attribute(
            Attribute::optional("http_listen", Type::String).describe(
                "Address each worker serves /metrics, /status and /healthz on. Unset: a free port on \
                 127.0.0.1. Use e.g. \"0.0.0.0:9464\" where Prometheus scrapes workers from elsewhere.",
            ),
        )
        .attribute(
            Attribute::optional("target_may_hold_records", Type::Bool)
                .describe(
                    "Copy into target topics that already hold records, after those records (the \
                     workers' logs and the run's status say so). Off: a target topic holding records \
                     the run did not copy stops the run, naming the topic and its record count.",
                )
                .default(Value::Bool(false)),
        )
        .attribute(
            Attribute::computed("id", Type::String)
                .describe("The run id.")
                .use_state_for_unknown(),
        )
        .attribute(status(
            "state",
            Type::String,
            "provisioning, copying, caught_up, in_sync, complete or failed.",
        ))
        .attribute(status("workers_running", Type::Number, "Workers alive at the last refresh."))
        .attribute(status("topics_copied", Type::Number, "Number of topics in the run."))
        .attribute(status("records_copied", Type::Number, "Records written to the target."))
        .attribute(status("bytes_copied", Type::Number, "Key and value bytes written."))
        .attribute(status("lag", Type::Number, "Records still to copy."))
        .attribute(status("groups_translated", Type::Number, "Consumer groups committed on the target."))
        .attribute(status(
            "verification",
            verification_type(),
            "Per group and partition verification results.",
        ))
        .attribute(
            Attribute::computed("started_at", Type::String)
                .describe("RFC 3339 time the run was started.")
                .use_state_for_unknown(),
        )
        .attribute(status("completed_at", Type::String, "RFC 3339 time the run completed."))
        .attribute(
            Attribute::optional("copy_acls", Type::Bool).describe(
                "Copy the source's TOPIC and GROUP ACL bindings for the copied topics and the \
                 translated groups to the target on every apply, as they are (ALL stays ALL, DENY \
                 stays DENY), through `ferry-mirror copy-acls` where the workers run. Unset: off. \
                 Destroy leaves copied bindings in place.",
            ),
        )
        .attribute(
            Attribute::optional("acl_principal_map", Type::map(Type::String))
                .describe(
                    "With copy_acls: source principal to target principal, e.g. \
                     { \"User:old\" = \"User:new\" }. Principals not in the map are copied unchanged.",
                )
                .validate(principal_map_validator()),
        )
        .attribute(
            Attribute::computed("acls_copied", Type::list(Type::String))
                .describe("With copy_acls: the bindings the target holds, as written there, one line each."),
        )
        .attribute(
            Attribute::computed("acls_refused", Type::list(Type::String)).describe(
                "With copy_acls: the bindings not copied, each with the target broker's reason \
                 (refused) or ferry's (not copied, e.g. a prefix that also covers topics the \
                 mirror does not copy).",
            ),
        )
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
            ))
            .block(kubernetes_launcher_block()),
        ))
        .block(timeouts::block()),
    }
}

pub const PULL_POLICIES: &[&str] = &["IfNotPresent", "Always", "Never"];
pub const TOLERATION_OPERATORS: &[&str] = &["Equal", "Exists"];
pub const TOLERATION_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// A DNS-1123 label (namespaces, service accounts): lower-case letters, digits and `-`, at most
/// 63 characters, starting and ending with a letter or digit.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A Kubernetes resource quantity such as `500m`, `2`, `1.5`, `512Mi` or `1G`.
pub fn is_quantity(s: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
    ];
    let digits = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits);
    !number.is_empty()
        && number != "."
        && number.matches('.').count() <= 1
        && SUFFIXES.contains(&suffix)
}

fn check_dns_label(value: &Value, path: &tfplugin::AttributePath, diags: &mut Diagnostics) {
    if let Some(s) = value.as_str()
        && !is_dns_label(s)
    {
        diags.attribute_error(
            path.clone(),
            "Invalid Kubernetes name",
            format!(
                "{s:?} is not a DNS label: lower-case letters, digits and '-', at most 63 characters, \
                 starting and ending with a letter or digit."
            ),
        );
    }
}

fn check_quantity(value: &Value, path: &tfplugin::AttributePath, diags: &mut Diagnostics) {
    if let Some(s) = value.as_str()
        && !is_quantity(s)
    {
        diags.attribute_error(
            path.clone(),
            "Invalid resource quantity",
            format!("{s:?} is not a Kubernetes quantity such as \"500m\", \"2\" or \"512Mi\"."),
        );
    }
}

fn check_not_blank(value: &Value, path: &tfplugin::AttributePath, diags: &mut Diagnostics) {
    if let Some(s) = value.as_str()
        && (s.trim().is_empty() || s.chars().any(char::is_whitespace))
    {
        diags.attribute_error(
            path.clone(),
            "Invalid image",
            "The image reference must be non-empty and contain no spaces.",
        );
    }
}

/// `launcher { kubernetes { ... } }`: workers as pods of an existing cluster.
fn kubernetes_launcher_block() -> NestedBlock {
    let quantity = |name: &str, what: &str| {
        Attribute::optional(name, Type::String)
            .describe(what)
            .validate(Validator::custom(
                "Invalid resource quantity",
                "A Kubernetes quantity such as `500m`, `2` or `512Mi`.",
                check_quantity,
            ))
    };
    let dns_label = || {
        Validator::custom(
            "Invalid Kubernetes name",
            "A DNS label: lower-case letters, digits and `-`, at most 63 characters.",
            check_dns_label,
        )
    };
    NestedBlock::single(
        "kubernetes",
        Block::new(
            "Workers as pods of an existing Kubernetes cluster: the spec in a ConfigMap, credentials in \
             a Secret mounted as files, the workers as a Deployment (continuous) or a Job \
             (until_caught_up) of `workers` replicas, one-off commands (verify, translate) as Jobs. \
             Every object carries the run's labels; destroy deletes them all.",
        )
        .attribute(
            Attribute::optional("namespace", Type::String)
                .describe("Namespace of the run's objects (it must exist).")
                .validate(dns_label())
                .default(Value::string("default"))
                .requires_replace(),
        )
        .attribute(
            Attribute::required("image", Type::String)
                .describe("The ferry-mirror runtime image (entrypoint ferry-mirror, e.g. built from runtime/Dockerfile).")
                .validate(Validator::custom(
                    "Invalid image",
                    "A non-empty image reference without spaces.",
                    check_not_blank,
                )),
        )
        .attribute(
            Attribute::optional("image_pull_policy", Type::String)
                .describe("The containers' imagePullPolicy.")
                .validate(Validator::one_of(PULL_POLICIES, "Invalid image_pull_policy"))
                .default(Value::string("IfNotPresent")),
        )
        .attribute(
            Attribute::optional("service_account", Type::String)
                .describe("Service account of the pods (default: the namespace's default; no API token is mounted).")
                .validate(dns_label()),
        )
        .attribute(
            Attribute::optional("node_selector", Type::map(Type::String))
                .describe("Node labels the pods must run on."),
        )
        .attribute(
            Attribute::optional("host_network", Type::Bool)
                .describe("Run the pods in the node's network namespace (clusters without a pod network, or Kafka reachable only from nodes).")
                .default(Value::Bool(false)),
        )
        .attribute(
            Attribute::optional("kubeconfig_path", Type::String)
                .describe("Kubeconfig file to reach the cluster (default: KUBECONFIG, then ~/.kube/config, then in-cluster).")
                .requires_replace(),
        )
        .attribute(
            Attribute::optional("context", Type::String)
                .describe("Kubeconfig context (default: the current context).")
                .requires_replace(),
        )
        .attribute(
            Attribute::optional("in_cluster", Type::Bool)
                .describe("Use the service account of the pod running Terraform instead of a kubeconfig.")
                .default(Value::Bool(false))
                .requires_replace(),
        )
        .attribute(Attribute::computed("drift", Type::list(Type::String)).describe(
            "Objects of the run found changed or missing at the last refresh; the next apply restores them.",
        ))
        .block(NestedBlock::single(
            "resources",
            Block::new("Requests and limits of each worker container.")
                .attribute(quantity("cpu_request", "CPU request, e.g. `500m`."))
                .attribute(quantity("cpu_limit", "CPU limit."))
                .attribute(quantity("memory_request", "Memory request, e.g. `256Mi`."))
                .attribute(quantity("memory_limit", "Memory limit, e.g. `1Gi`.")),
        ))
        .block(NestedBlock::list(
            "tolerations",
            Block::new("Taints the pods tolerate.")
                .attribute(Attribute::optional("key", Type::String).describe("Taint key (empty with Exists: every taint)."))
                .attribute(
                    Attribute::optional("operator", Type::String)
                        .describe("`Equal` (the default) or `Exists`.")
                        .validate(Validator::one_of(TOLERATION_OPERATORS, "Invalid toleration operator")),
                )
                .attribute(Attribute::optional("value", Type::String).describe("Taint value (with Equal)."))
                .attribute(
                    Attribute::optional("effect", Type::String)
                        .describe("Taint effect (empty: every effect).")
                        .validate(Validator::one_of(TOLERATION_EFFECTS, "Invalid toleration effect")),
                ),
        )),
    )
}

/// The version 1 schema: version 2 without slots and target_may_hold_records.
fn schema_v1() -> Schema {
    let mut s = schema();
    s.version = 1;
    s.block.attributes.retain(|a| a.name != "slots");
    s.block
        .attributes
        .retain(|a| a.name != "target_may_hold_records");
    s
}

/// The version 0 schema: version 1 without the schema defaults and without http_listen.
fn schema_v0() -> Schema {
    let mut s = schema_v1();
    s.version = 0;
    s.block.attributes.retain(|a| a.name != "http_listen");
    for a in &mut s.block.attributes {
        if a.default.take().is_some() {
            a.computed = false;
        }
    }
    s
}

/// State from version 0 stored null where the user left a default; version 1 stores it.
fn upgrade_v0(state: Value, diags: &mut Diagnostics) -> Option<MirrorModel> {
    let mut m = MirrorModel::decode_or_report(&state, "version 0 state", diags)?;
    if m.mode.is_null() {
        m.mode = "until_caught_up".into();
    }
    if m.workers.is_null() {
        m.workers = Tf::Known(1);
    }
    if m.exactly_once.is_null() {
        m.exactly_once = Tf::Known(true);
    }
    if m.in_sync_lag.is_null() {
        m.in_sync_lag = Tf::Known(1000);
    }
    if m.verify.is_null() {
        m.verify = Tf::Known(true);
    }
    fill_slots(&mut m);
    fill_target_may_hold_records(&mut m);
    Some(m)
}

/// State from before version 2 has no target_may_hold_records: it stores the default (off),
/// so upgrading plans no change.
fn fill_target_may_hold_records(m: &mut MirrorModel) {
    if m.target_may_hold_records.is_null() {
        m.target_may_hold_records = Tf::Known(false);
    }
}

/// Runs before version 2 had the default number of slots.
fn fill_slots(m: &mut MirrorModel) {
    if m.slots.is_null() {
        m.slots = Tf::Known(i64::from(ferry_mirror_api::DEFAULT_SLOTS));
    }
}

/// State from version 1 has no slots: it stores the default, so upgrading plans no change.
fn upgrade_v1(state: Value, diags: &mut Diagnostics) -> Option<MirrorModel> {
    let mut m = MirrorModel::decode_or_report(&state, "version 1 state", diags)?;
    fill_slots(&mut m);
    fill_target_may_hold_records(&mut m);
    Some(m)
}

pub fn state_upgraders() -> Vec<StateUpgrader<MirrorModel>> {
    vec![
        StateUpgrader {
            from_version: 0,
            prior_schema: schema_v0(),
            upgrade: upgrade_v0,
        },
        StateUpgrader {
            from_version: 1,
            prior_schema: schema_v1(),
            upgrade: upgrade_v1,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfplugin::model::check_model_matches;

    fn kubernetes_block() -> Block {
        let s = schema();
        let launcher = &s
            .block
            .blocks
            .iter()
            .find(|b| b.name == "launcher")
            .unwrap()
            .block;
        launcher
            .blocks
            .iter()
            .find(|b| b.name == "kubernetes")
            .unwrap()
            .block
            .clone()
    }

    #[test]
    fn kubernetes_launcher_schema_matches_its_models_and_checks_input() {
        let k = kubernetes_block();
        check_model_matches::<KubernetesLauncherModel>(&k).unwrap();
        let nested = |n: &str| k.blocks.iter().find(|b| b.name == n).unwrap().block.clone();
        check_model_matches::<KubernetesResourcesModel>(&nested("resources")).unwrap();
        check_model_matches::<TolerationModel>(&nested("tolerations")).unwrap();
        assert!(k.find_attribute("image").unwrap().required);
        assert_eq!(
            k.find_attribute("namespace").unwrap().default,
            Some(Value::string("default"))
        );
        assert!(k.find_attribute("drift").unwrap().computed);

        // Bad input is reported at the attribute's own path.
        let mut config = Value::empty_object(&k.implied_type());
        config.set("namespace", Value::string("Bad_Namespace"));
        config.set("image", Value::string("ferry mirror"));
        config.set("image_pull_policy", Value::string("Sometimes"));
        let mut resources = Value::empty_object(&nested("resources").implied_type());
        resources.set("cpu_limit", Value::string("two cores"));
        config.set("resources", resources);
        let at = tfplugin::AttributePath::root("launcher").attr("kubernetes");
        let mut d = Diagnostics::default();
        tfplugin::plan::validate(&k, &config, &at, &mut d);
        let text = format!("{d:?}");
        for summary in [
            "Invalid Kubernetes name",
            "Invalid image",
            "Invalid image_pull_policy",
            "Invalid resource quantity",
        ] {
            assert!(text.contains(summary), "{summary} missing from {text}");
        }
        assert!(text.contains("cpu_limit"), "{text}");
    }

    #[test]
    fn kubernetes_names_and_quantities() {
        for ok in ["default", "ferry-migrations", "a1"] {
            assert!(is_dns_label(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
        for ok in ["500m", "2", "1.5", "512Mi", "1G", "0.25"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "m", "1.2.3", "two", "5 Mi", "1Gb"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }

    #[test]
    fn model_matches_schema_and_nested_blocks() {
        let s = schema();
        check_model_matches::<MirrorModel>(&s.block).unwrap();
        let launcher = &s
            .block
            .blocks
            .iter()
            .find(|b| b.name == "launcher")
            .unwrap()
            .block;
        check_model_matches::<LauncherModel>(launcher).unwrap();
        check_model_matches::<LocalLauncherModel>(&launcher.blocks[0].block).unwrap();
    }

    #[test]
    fn version_0_state_upgrades_with_defaults_filled() {
        let v0 = schema_v0();
        assert!(v0.block.find_attribute("http_listen").is_none());
        assert!(!v0.block.find_attribute("workers").unwrap().computed);
        let mut state = Value::empty_object(&v0.block.implied_type());
        state.set("run_id", Value::string("r"));
        state.set("workers", Value::int(3));
        // Decoded with the version 1 type, as the adapter does after reading with v0's.
        let mut wide = Value::empty_object(&schema().block.implied_type());
        if let (Value::Object(w), Value::Object(s)) = (&mut wide, state) {
            w.extend(s);
        }
        let mut d = Diagnostics::default();
        let m = upgrade_v0(wide, &mut d).unwrap();
        assert_eq!(m.workers, Tf::Known(3), "a configured value is kept");
        assert_eq!(m.mode, Tf::Known("until_caught_up".to_string()));
        assert_eq!(m.verify, Tf::Known(true));
        assert!(m.http_listen.is_null());
        assert_eq!(m.slots, Tf::Known(64));
        assert_eq!(m.target_may_hold_records, Tf::Known(false));
    }

    #[test]
    fn target_may_hold_records_defaults_off_and_older_state_stores_off() {
        let schema = schema();
        let a = schema
            .block
            .find_attribute("target_may_hold_records")
            .unwrap();
        assert_eq!(a.default, Some(Value::Bool(false)));
        assert!(
            schema_v1()
                .block
                .find_attribute("target_may_hold_records")
                .is_none()
        );
        let wide = Value::empty_object(&schema.block.implied_type());
        let mut d = Diagnostics::default();
        let m = upgrade_v1(wide, &mut d).unwrap();
        assert_eq!(m.target_may_hold_records, Tf::Known(false));
    }

    #[test]
    fn version_1_state_upgrades_with_the_default_slots() {
        let v1 = schema_v1();
        assert!(v1.block.find_attribute("slots").is_none());
        assert!(v1.block.find_attribute("http_listen").is_some());
        let mut state = Value::empty_object(&v1.block.implied_type());
        state.set("run_id", Value::string("r"));
        state.set("in_sync_lag", Value::int(5));
        let mut wide = Value::empty_object(&schema().block.implied_type());
        if let (Value::Object(w), Value::Object(s)) = (&mut wide, state) {
            w.extend(s);
        }
        let mut d = Diagnostics::default();
        let m = upgrade_v1(wide, &mut d).unwrap();
        assert_eq!(
            m.slots,
            Tf::Known(64),
            "no plan diff for runs from before slots"
        );
        assert_eq!(m.in_sync_lag, Tf::Known(5));
        let slots = schema();
        let slots = slots.block.find_attribute("slots").unwrap();
        assert_eq!(slots.default, Some(Value::int(64)));
    }
    #[test]
    fn the_principal_map_takes_principals_only() {
        let s = schema();
        let a = s.block.find_attribute("acl_principal_map").unwrap();
        let check = |m: &[(&str, &str)]| {
            let v = Value::Map(
                m.iter()
                    .map(|(k, v)| (k.to_string(), Value::string(*v)))
                    .collect(),
            );
            let mut d = Diagnostics::default();
            for val in &a.validators {
                val.run(
                    &v,
                    &tfplugin::AttributePath::root("acl_principal_map"),
                    &mut d,
                );
            }
            d.has_errors()
        };
        assert!(!check(&[
            ("User:old", "User:new"),
            ("User:CN=a,O=b", "User:c")
        ]));
        assert!(check(&[("old", "User:new")]));
        assert!(check(&[("User:old", "User:")]));
        assert!(
            s.block
                .find_attribute("copy_acls")
                .unwrap()
                .default
                .is_none()
        );
    }
}
