//! `ferry_topic`: one Kafka topic, its partitions, replication factor and topic-level configs.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use ferry_kafka::{Admin, AdminError, ConnectionConfig, KafkaErrorCode, NewTopic};
use tfplugin::timeouts::{self, Operation, Timeouts};
use tfplugin::{
    Attribute, AttributePath, Block, Diagnostics, Model, NestedBlock, Plan, Resource, Schema, Tf,
    Type, Validator,
};

use super::connection::{ConnectionModel, Resolved, cluster_block};
use super::reassign::{self, DEFAULT_THROTTLE, is_throttle_key};
use super::topic_rules::{self, report_topic_error};
use crate::provider::{Ctx, FerryData, missing_connection};

pub struct TopicResource;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct TopicModel {
    pub id: Tf<String>,
    pub name: Tf<String>,
    pub partitions: Tf<i64>,
    pub replication_factor: Tf<i64>,
    pub config: Tf<BTreeMap<String, String>>,
    pub topic_id: Tf<String>,
    pub reassignment: Tf<ReassignmentModel>,
    pub cluster: Tf<ConnectionModel>,
    pub timeouts: Tf<Timeouts>,
}

/// How a replication-factor change moves data.
#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct ReassignmentModel {
    pub throttle_bytes_per_sec: Tf<i64>,
}

fn reassignment_block() -> NestedBlock {
    NestedBlock::single(
        "reassignment",
        Block::new(
            "How a replication-factor change copies data between brokers. Without this block the \
             copy is throttled at 50 MiB/s per broker.",
        )
        .attribute(
            Attribute::optional("throttle_bytes_per_sec", Type::Number)
                .describe(
                    "Replication throttle for the copy, bytes per second per broker (Kafka's \
                     leader/follower.replication.throttled.rate), set for the duration of the \
                     change and removed afterwards. 0 copies unthrottled. Default 52428800.",
                )
                .validate(Validator::int_range(
                    0,
                    i64::MAX,
                    "Invalid replication throttle",
                )),
        ),
    )
}

impl TopicModel {
    fn name(&self) -> String {
        self.name.or(String::new())
    }
    fn partitions(&self) -> Option<i32> {
        self.partitions.known().map(|p| *p as i32)
    }
    fn config_map(&self) -> BTreeMap<String, String> {
        self.config.or(BTreeMap::new())
    }
    fn throttle(&self) -> u64 {
        self.reassignment
            .known()
            .and_then(|r| r.throttle_bytes_per_sec.known().copied())
            .map_or(DEFAULT_THROTTLE, |t| t.max(0) as u64)
    }
    fn new_topic(&self) -> Option<NewTopic> {
        Some(NewTopic {
            name: self.name.known()?.clone(),
            partitions: self.partitions()?,
            replication_factor: self.replication_factor.known().map(|r| *r as i32),
            config: self.config_map(),
        })
    }
}

pub fn schema() -> Schema {
    Schema {
        version: 0,
        block: Block::new(
            "A Kafka topic. Partitions grow in place; topic configs change incrementally; \
             configs not listed here are left alone.",
        )
        .attribute(
            Attribute::computed("id", Type::String)
                .describe("The topic name.")
                .use_state_for_unknown(),
        )
        .attribute(
            Attribute::required("name", Type::String)
                .describe("Topic name.")
                .validate(topic_rules::name_validator())
                .requires_replace(),
        )
        .attribute(
            Attribute::required("partitions", Type::Number)
                .describe("Number of partitions. Can grow in place; Kafka cannot shrink a topic.")
                .validate(Validator::int_range(1, i32::MAX as i64, "Invalid partition count")),
        )
        .attribute(
            Attribute::optional_computed("replication_factor", Type::Number)
                .describe(
                    "Replicas per partition. Defaults to the broker's default.replication.factor. \
                     Changes in place: a partition reassignment that keeps current replicas, adds \
                     new ones on the least-loaded brokers (rack-aware), is throttled (see \
                     `reassignment`), waits within timeouts.update, then elects preferred leaders.",
                )
                .validate(Validator::int_range(1, i16::MAX as i64, "Invalid replication factor"))
                .use_state_for_unknown(),
        )
        .attribute(
            Attribute::optional("config", Type::map(Type::String))
                .describe(
                    "Topic-level config overrides, e.g. { \"retention.ms\" = \"86400000\" }. Removing a key resets \
                     it to the broker default. Keys not listed are never touched.",
                )
                .validate(topic_rules::config_validator()),
        )
        .attribute(
            Attribute::computed("topic_id", Type::String)
                .describe("Kafka's topic id (base64).")
                .use_state_for_unknown(),
        )
        .block(reassignment_block())
        .block(cluster_block())
        .block(timeouts::block()),
    }
}

#[async_trait]
impl Resource<FerryData> for TopicResource {
    type Model = TopicModel;

    fn type_name(&self) -> &'static str {
        "ferry_topic"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate(&self, config: &TopicModel, diags: &mut Diagnostics) {
        super::connection::validate_cluster(&config.cluster, diags);
    }

    async fn plan(&self, ctx: &Ctx, plan: &mut Plan<TopicModel>, diags: &mut Diagnostics) {
        plan.planned.id = plan.planned.name.clone();
        if plan.replaces() {
            // A rename replaces the topic: Terraform plans the new one as a create next, and
            // that plan gets the create checks. Update rules (no shrinking) do not apply.
            return;
        }
        if let Some(prior) = &plan.prior {
            check_update_rules(prior, &plan.planned, diags);
        }
        if diags.has_errors() {
            return;
        }
        // A destroy or refresh-only run plans the configuration too, but will create and
        // change nothing: asking the broker about those objects could only block it.
        if ctx.intent().creates_nothing() {
            return;
        }
        check_with_broker(ctx.data(), plan, diags).await;
    }

    async fn create(
        &self,
        ctx: &Ctx,
        planned: TopicModel,
        diags: &mut Diagnostics,
    ) -> Option<TopicModel> {
        let (conn, admin) = connect(ctx.data(), &planned.cluster, diags).await?;
        let Some(topic) = planned.new_topic() else {
            diags.error(
                "Topic values not known",
                "name and partitions must be known at apply time.",
            );
            return None;
        };
        ctx.data().topic_reads().changed(&conn, &topic.name);
        match admin.create_topic(&topic, false).await {
            Ok(()) => {}
            // The topic exists, narrower than planned: keep it in state (Terraform marks it
            // tainted, so the next apply replaces it) rather than leave it unmanaged.
            Err(e @ AdminError::PartlyCreated { .. }) => {
                diags.error_from(
                    Some(AttributePath::root("partitions")),
                    "Topic created with fewer partitions than planned",
                    &e,
                );
                let mut state = planned;
                state.id = topic.name.as_str().into();
                state.topic_id = "".into();
                if state.replication_factor.is_unknown() {
                    state.replication_factor = Tf::Null;
                }
                return Some(state);
            }
            Err(e) => {
                report_topic_error(diags, "Could not create topic", &topic.name, &e);
                return None;
            }
        }
        let within = Timeouts::get(&planned.timeouts, Operation::Create, DEFAULT_TIMEOUT);
        let mut state = planned;
        state.id = topic.name.as_str().into();
        match admin
            .wait_until_topic_ready(&topic.name, topic.partitions, within)
            .await
        {
            Ok(described) => {
                state.topic_id = described.topic_id.into();
                state.replication_factor = Tf::Known(described.replication_factor as i64);
            }
            Err(e) => {
                // The topic exists; keep it in state (Terraform marks it tainted) and say why.
                diags.error_from(
                    Some(AttributePath::root("name")),
                    "Topic created but not ready",
                    &e,
                );
                state.topic_id = "".into();
                if state.replication_factor.is_unknown() {
                    state.replication_factor = Tf::Null;
                }
            }
        }
        Some(state)
    }

    async fn read(
        &self,
        ctx: &Ctx,
        state: TopicModel,
        diags: &mut Diagnostics,
    ) -> Option<TopicModel> {
        let Some((conn, admin)) = connect(ctx.data(), &state.cluster, diags).await else {
            return Some(state);
        };
        let Some(name) = state.name.known().cloned() else {
            diags.error(
                "Topic state has no name",
                "The stored state is missing the topic name.",
            );
            return Some(state);
        };
        let read = ctx.data().topic_reads().read(&admin, &conn, &name).await;
        ctx.data().topic_reads().log_requests(&admin);
        let read = match read {
            Ok(Some(t)) => t,
            Ok(None) => return None,
            Err(e) => {
                report_topic_error(diags, "Could not read topic", &name, &e);
                return Some(state);
            }
        };
        let described = read.layout.description();
        // While partitions move, Kafka lists old and new replicas together. State keeps the
        // factor the topic had, so the plan still shows the change and apply waits for it.
        let mut replication_factor = described.replication_factor as i64;
        if let Some(first) = read.layout.partitions.first() {
            replication_factor = match read.moving.iter().find(|m| m.partition == first.id) {
                Some(m) => m.original().len() as i64,
                None => first.replicas.len() as i64,
            };
        }
        if !read.moving.is_empty() {
            diags.attribute_warning(
                AttributePath::root("replication_factor"),
                "Partition reassignment in progress",
                format!(
                    "{} partitions of topic {name:?} are being moved between brokers. Until that \
                     finishes the replication factor shows its value from before the move.",
                    read.moving.len()
                ),
            );
        }
        // Throttles a reassignment left behind (an apply that died before removing them) are
        // reported as managed config, so the plan shows them being removed.
        let leftover: BTreeMap<String, String> = if read.moving.is_empty() {
            read.overrides
                .iter()
                .filter(|(k, _)| is_throttle_key(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        } else {
            BTreeMap::new()
        };
        let overrides = read.overrides;
        // Right after import nothing is managed yet: adopt every override the topic has.
        // Afterwards only keys under management are reported, so out-of-band overrides of
        // other keys neither show as drift nor get wiped.
        let just_imported = state.partitions.is_null();
        let config = match state.config.known() {
            _ if just_imported => (!overrides.is_empty()).then_some(overrides),
            Some(managed) => Some(
                overrides
                    .into_iter()
                    .filter(|(k, _)| managed.contains_key(k) || leftover.contains_key(k))
                    .collect::<BTreeMap<_, _>>(),
            ),
            None => (!leftover.is_empty()).then_some(leftover),
        };
        Some(TopicModel {
            id: name.as_str().into(),
            partitions: Tf::Known(described.partitions as i64),
            replication_factor: Tf::Known(replication_factor),
            topic_id: described.topic_id.into(),
            config: config.into(),
            ..state
        })
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: TopicModel,
        planned: TopicModel,
        diags: &mut Diagnostics,
    ) -> TopicModel {
        let Some((conn, admin)) = connect(ctx.data(), &planned.cluster, diags).await else {
            return prior;
        };
        let name = planned.name();
        ctx.data().topic_reads().changed(&conn, &name);
        let within = Timeouts::get(&planned.timeouts, Operation::Update, DEFAULT_TIMEOUT);
        let mut state = prior.clone();

        if let (Some(before), Some(after)) = (prior.partitions(), planned.partitions())
            && after > before
        {
            if let Err(e) = admin.create_partitions(&name, after, false).await {
                report_topic_error(diags, "Could not add partitions", &name, &e);
                return state;
            }
            if let Err(e) = admin.wait_until_topic_ready(&name, after, within).await {
                diags.error_from(
                    Some(AttributePath::root("partitions")),
                    "Partitions added but not ready",
                    &e,
                );
            }
            state.partitions = Tf::Known(after as i64);
        }

        let (set, reset) = config_changes(&prior, &planned);
        if let Err(e) = admin.alter_topic_config(&name, &set, &reset, false).await {
            report_topic_error(diags, "Could not change topic config", &name, &e);
            return state;
        }
        state.config = planned.config.clone();
        if reset.iter().any(|k| is_throttle_key(k))
            && let Err(e) = reassign::clear_throttles(&admin, &name).await
        {
            report_topic_error(diags, "Could not remove replication throttles", &name, &e);
        }

        if let (Some(before), Some(after)) = (
            prior.replication_factor.known(),
            planned.replication_factor.known(),
        ) && before != after
        {
            let done = reassign::change_replication_factor_in_place(
                ctx,
                &admin,
                &name,
                *after as usize,
                planned.throttle(),
                within,
                diags,
            )
            .await;
            if !done {
                // The state keeps the old factor: the next plan shows the change again.
                return state;
            }
        }
        // Everything else in the plan (cluster, timeouts) is local to Terraform.
        TopicModel {
            topic_id: prior.topic_id,
            id: name.as_str().into(),
            ..planned
        }
    }

    async fn delete(&self, ctx: &Ctx, prior: TopicModel, diags: &mut Diagnostics) {
        let Some((conn, admin)) = connect(ctx.data(), &prior.cluster, diags).await else {
            return;
        };
        let name = prior.name();
        ctx.data().topic_reads().changed(&conn, &name);
        match admin.delete_topic(&name).await {
            Ok(()) => {}
            Err(e) if e.code() == Some(KafkaErrorCode::UnknownTopicOrPartition) => return,
            Err(e) => {
                report_topic_error(diags, "Could not delete topic", &name, &e);
                return;
            }
        }
        // Deletion finishes in the background; a re-create right after would fail without this.
        let within = Timeouts::get(&prior.timeouts, Operation::Delete, DEFAULT_TIMEOUT);
        if let Err(e) = admin.wait_until_topic_gone(&name, within).await {
            diags.error_from(None, "Topic deletion did not finish", &e);
        }
    }

    async fn import(&self, _ctx: &Ctx, id: &str, diags: &mut Diagnostics) -> Option<TopicModel> {
        match parse_import_id(id) {
            Ok((servers, name)) => Some(TopicModel {
                id: name.as_str().into(),
                name: name.as_str().into(),
                cluster: match servers {
                    Some(list) => Tf::Known(ConnectionModel {
                        bootstrap_servers: Tf::Known(list),
                        ..ConnectionModel::default()
                    }),
                    None => Tf::Null,
                },
                ..TopicModel::default()
            }),
            Err(why) => {
                diags.error("Invalid import id", why);
                None
            }
        }
    }
}

/// An import id: `TOPIC` (the provider's default connection) or `BOOTSTRAP_SERVERS/TOPIC`,
/// e.g. `b-1:9092,b-2:9092/orders`, whose servers become the imported `cluster` block. Topic
/// names cannot contain `/`, so the last one separates the two.
fn parse_import_id(id: &str) -> Result<(Option<Vec<String>>, String), String> {
    let (servers, name) = match id.rsplit_once('/') {
        Some((servers, name)) => (Some(servers), name),
        None => (None, id),
    };
    if let Err(why) = topic_rules::check_name(name) {
        return Err(format!(
            "Import a topic as TOPIC or BOOTSTRAP_SERVERS/TOPIC (e.g. \"b-1:9092,b-2:9092/orders\"); \
             topic {name:?} in {id:?}: {why}."
        ));
    }
    let Some(servers) = servers else {
        return Ok((None, name.to_string()));
    };
    let list: Vec<String> = servers.split(',').map(|s| s.trim().to_string()).collect();
    let block = Tf::Known(ConnectionModel {
        bootstrap_servers: Tf::Known(list.clone()),
        ..ConnectionModel::default()
    });
    let mut checks = Diagnostics::default();
    super::connection::parse(
        &block,
        super::connection::Origin::ClusterBlock,
        &AttributePath::root("cluster"),
        &mut checks,
    );
    if let Some(first) = checks.0.first() {
        return Err(format!(
            "Import a topic as TOPIC or BOOTSTRAP_SERVERS/TOPIC (e.g. \"b-1:9092,b-2:9092/orders\"), \
             with the servers in the order the resource's cluster block lists them; in {id:?}: {}",
            first.detail
        ));
    }
    Ok((Some(list), name.to_string()))
}

/// Changes Kafka cannot make in place, as plan errors with what to do instead.
fn check_update_rules(prior: &TopicModel, planned: &TopicModel, diags: &mut Diagnostics) {
    if let (Some(before), Some(after)) = (prior.partitions(), planned.partitions())
        && after < before
    {
        diags.attribute_error(
            AttributePath::root("partitions"),
            "Kafka cannot remove partitions",
            format!(
                "The topic has {before} partitions and the configuration asks for {after}. Kafka can only add \
                 partitions. To start over with {after} partitions you must delete the topic and every record \
                 in it: run `terraform destroy -target=<this resource>` and then `terraform apply`. \
                 Otherwise set partitions back to {before} or more."
            ),
        );
    }
}

/// The admin connection for an object and the connection it was made for (the key of the
/// shared topic snapshots).
async fn connect(
    data: &FerryData,
    cluster: &Tf<ConnectionModel>,
    diags: &mut Diagnostics,
) -> Option<(ConnectionConfig, Admin)> {
    match data.resolve(cluster, diags) {
        Resolved::Known(config) => {
            let admin = data.admin_for(&config, diags).await?;
            Some((config, admin))
        }
        _ => {
            // Reports what is missing or unknown.
            let _ = data.admin(cluster, diags).await;
            None
        }
    }
}

/// Asks the broker to validate the planned change without making it, so a bad config key,
/// an impossible replication factor or an existing topic fails the plan, not the apply.
async fn check_with_broker(data: &FerryData, plan: &Plan<TopicModel>, diags: &mut Diagnostics) {
    let config = match data.resolve(&plan.planned.cluster, diags) {
        Resolved::Known(c) => c,
        Resolved::Unknown => return, // e.g. the cluster is created in this same apply
        Resolved::Missing => return missing_connection(diags),
    };
    if diags.has_errors() {
        return;
    }
    let Some(admin) = data.admin_for(&config, diags).await else {
        return;
    };
    let name = plan.planned.name();
    match &plan.prior {
        None => {
            if let Some(topic) = plan.planned.new_topic()
                && let Err(e) = admin.create_topic(&topic, true).await
            {
                report_topic_error(diags, "Kafka rejects this topic", &name, &e);
            }
        }
        Some(prior) => check_update(&admin, &name, prior, &plan.planned, diags).await,
    }
}

async fn check_update(
    admin: &Admin,
    name: &str,
    prior: &TopicModel,
    planned: &TopicModel,
    diags: &mut Diagnostics,
) {
    if let (Some(before), Some(after)) = (prior.partitions(), planned.partitions())
        && after > before
        && let Err(e) = admin.create_partitions(name, after, true).await
    {
        report_topic_error(diags, "Kafka rejects the new partition count", name, &e);
    }
    if !planned.config.is_unknown() {
        let (set, reset) = config_changes(prior, planned);
        if let Err(e) = admin.alter_topic_config(name, &set, &reset, true).await {
            report_topic_error(diags, "Kafka rejects this topic config", name, &e);
        }
    }
    if let (Some(before), Some(after)) = (
        prior.replication_factor.known(),
        planned.replication_factor.known(),
    ) && before != after
    {
        check_replication_change(admin, name, *after, diags).await;
    }
}

/// A replication-factor change is possible (enough live brokers) and not in the way of a
/// reassignment someone else started; one in progress towards the same factor is reported.
async fn check_replication_change(admin: &Admin, name: &str, target: i64, diags: &mut Diagnostics) {
    match admin.brokers().await {
        Ok(brokers) if target as usize > brokers.len() => diags.attribute_error(
            AttributePath::root("replication_factor"),
            "Not enough brokers",
            format!(
                "Replication factor {target} needs {target} live brokers; the cluster has {}.",
                brokers.len()
            ),
        ),
        Ok(_) => {}
        Err(e) => report_topic_error(diags, "Could not list the cluster's brokers", name, &e),
    }
    match admin.list_reassignments().await {
        Ok(all) => {
            let moving: Vec<_> = all.into_iter().filter(|m| m.topic == name).collect();
            reassign::check_in_progress(&moving, target as usize, diags);
        }
        Err(e) => report_topic_error(diags, "Could not list partition reassignments", name, &e),
    }
}

/// Keys to set (new or changed) and keys to reset (no longer configured).
fn config_changes(
    prior: &TopicModel,
    planned: &TopicModel,
) -> (BTreeMap<String, String>, Vec<String>) {
    let before = prior.config_map();
    let after = planned.config_map();
    let set = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let reset = before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .cloned()
        .collect();
    (set, reset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfplugin::model::check_model_matches;
    use tfplugin::schema::PlanModifier;

    fn with_config(pairs: &[(&str, &str)]) -> TopicModel {
        TopicModel {
            config: Tf::Known(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..TopicModel::default()
        }
    }

    #[test]
    fn config_changes_set_changed_and_reset_removed_keys_only() {
        let prior = with_config(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let planned = with_config(&[("a", "1"), ("b", "20"), ("d", "4")]);
        let (set, reset) = config_changes(&prior, &planned);
        assert_eq!(
            set,
            BTreeMap::from([("b".into(), "20".into()), ("d".into(), "4".into())])
        );
        assert_eq!(reset, vec!["c".to_string()]);
    }

    #[test]
    fn import_ids_name_a_topic_and_optionally_its_cluster() {
        assert_eq!(parse_import_id("orders").unwrap(), (None, "orders".into()));
        assert_eq!(
            parse_import_id("b-1:9092, b-2:9092/orders.v1").unwrap(),
            (
                Some(vec!["b-1:9092".into(), "b-2:9092".into()]),
                "orders.v1".into()
            )
        );
        for bad in [
            "",
            "b-1:9092/",
            "/orders",
            "b-1/orders",
            "http://b-1:9092/orders",
            "a b",
        ] {
            let why = parse_import_id(bad).unwrap_err();
            assert!(why.contains("BOOTSTRAP_SERVERS/TOPIC"), "{bad:?}: {why}");
        }
        assert!(
            parse_import_id("b-1/orders")
                .unwrap_err()
                .contains("has no port")
        );
    }

    #[test]
    fn schema_and_model_agree_and_name_replaces() {
        let schema = schema();
        let b = &schema.block;
        check_model_matches::<TopicModel>(b).unwrap();
        let reassignment = b.blocks.iter().find(|n| n.name == "reassignment").unwrap();
        check_model_matches::<ReassignmentModel>(&reassignment.block).unwrap();
        let name = b.find_attribute("name").unwrap();
        assert!(name.has_modifier(|m| matches!(m, PlanModifier::RequiresReplace)));
        assert!(b.find_attribute("topic_id").unwrap().computed);
        assert!(b.blocks.iter().any(|n| n.name == "cluster"));
    }

    #[test]
    fn shrinking_is_a_plan_error_on_its_attribute_and_rf_changes_are_not() {
        let prior = TopicModel {
            partitions: Tf::Known(6),
            replication_factor: Tf::Known(1),
            ..TopicModel::default()
        };
        let planned = TopicModel {
            partitions: Tf::Known(3),
            ..prior.clone()
        };
        let mut d = Diagnostics::default();
        check_update_rules(&prior, &planned, &mut d);
        let paths: Vec<String> =
            d.0.iter()
                .map(|x| x.path.clone().unwrap().to_string())
                .collect();
        assert_eq!(
            paths,
            ["partitions"],
            "a replication-factor change is no plan error"
        );
        let raised = TopicModel {
            replication_factor: Tf::Known(3),
            ..prior.clone()
        };
        let mut d = Diagnostics::default();
        check_update_rules(&prior, &raised, &mut d);
        assert!(d.0.is_empty(), "{d:?}");
    }
}
