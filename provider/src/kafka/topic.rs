//! `ferry_topic`: one Kafka topic, its partitions, replication factor and topic-level configs.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use ferry_kafka::{Admin, KafkaErrorCode, NewTopic};

use crate::connection::{Resolved, cluster_block};
use crate::framework::{
    Attribute, AttributePath, Block, Diagnostics, Plan, Resource, Schema, Type, Value, timeouts,
};
use crate::provider::{ProviderState, missing_connection};
use crate::topics_common::{report_topic_error, validate_topic_fields};

pub struct TopicResource;

const OPERATIONS: [&str; 3] = ["create", "update", "delete"];
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

fn partitions_of(v: &Value) -> Option<i32> {
    v.get("partitions").as_i64().map(|p| p as i32)
}

#[async_trait]
impl Resource for TopicResource {
    fn type_name(&self) -> &'static str {
        "ferry_topic"
    }

    fn schema(&self) -> Schema {
        Schema {
            version: 0,
            block: Block::new(
                "A Kafka topic. Partitions grow in place; topic configs change incrementally; \
                 configs not listed here are left alone.",
            )
            .attribute(Attribute::computed("id", Type::String).describe("The topic name."))
            .attribute(
                Attribute::required("name", Type::String)
                    .force_new()
                    .describe("Topic name: up to 249 of ASCII letters, digits, '.', '_', '-'. Changing it creates a new topic."),
            )
            .attribute(Attribute::required("partitions", Type::Number).describe(
                "Number of partitions. Can grow in place; Kafka cannot shrink a topic.",
            ))
            .attribute(Attribute::optional_computed("replication_factor", Type::Number).describe(
                "Replicas per partition. Defaults to the broker's default.replication.factor.",
            ))
            .attribute(Attribute::optional("config", Type::map(Type::String)).describe(
                "Topic-level config overrides, e.g. { \"retention.ms\" = \"86400000\" }. Removing a key resets \
                 it to the broker default. Keys not listed are never touched.",
            ))
            .attribute(Attribute::computed("topic_id", Type::String).describe("Kafka's topic id (base64)."))
            .block(cluster_block())
            .block(timeouts::block(&OPERATIONS)),
        }
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        validate_topic_fields(config, diags);
        timeouts::validate(config, &OPERATIONS, diags);
    }

    async fn plan(&self, provider: &ProviderState, plan: &mut Plan, diags: &mut Diagnostics) {
        let name = plan.planned.get("name").clone();
        plan.planned.set("id", name.clone());
        if !plan.requires_replace.is_empty() {
            // A rename replaces the topic: Terraform plans the new one as a create next, and
            // that plan gets the create checks. Update rules (no shrinking) do not apply.
            return;
        }

        if !plan.is_create() {
            if let (Some(before), Some(after)) =
                (partitions_of(&plan.prior), partitions_of(&plan.planned))
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
            let configured_rf = plan.config.get("replication_factor");
            if let (Some(before), Some(after)) = (
                plan.prior.get("replication_factor").as_i64(),
                configured_rf.as_i64(),
            ) && before != after
            {
                diags.attribute_error(
                        AttributePath::root("replication_factor"),
                        "Changing the replication factor in place is not supported yet",
                        format!(
                            "The topic has replication factor {before}. Changing it needs a partition reassignment, \
                             which ferry does not perform yet. Keep {before} here, or reassign with Kafka's \
                             kafka-reassign-partitions tool and then set the new value."
                        ),
                    );
            }
        }
        if diags.has_errors() {
            return;
        }
        self.check_with_broker(provider, plan, diags).await;
    }

    async fn create(
        &self,
        provider: &ProviderState,
        planned: &Value,
        diags: &mut Diagnostics,
    ) -> Value {
        let Some(admin) = provider.admin(planned, diags).await else {
            return Value::Null;
        };
        let Some(topic) = new_topic(planned) else {
            diags.error(
                "Topic values not known",
                "name and partitions must be known at apply time.",
            );
            return Value::Null;
        };
        if let Err(e) = admin.create_topic(&topic, false).await {
            report_topic_error(diags, "Could not create topic", &topic.name, &e);
            return Value::Null;
        }
        let within = timeouts::get(planned, "create", DEFAULT_TIMEOUT);
        let mut state = planned.clone();
        state.set("id", Value::string(&topic.name));
        match admin
            .wait_until_topic_ready(&topic.name, topic.partitions, within)
            .await
        {
            Ok(described) => {
                state.set("topic_id", Value::string(described.topic_id));
                state.set(
                    "replication_factor",
                    Value::int(described.replication_factor as i64),
                );
            }
            Err(e) => {
                // The topic exists; keep it in state (Terraform marks it tainted) and say why.
                diags.attribute_error(
                    AttributePath::root("name"),
                    "Topic created but not ready",
                    e.to_string(),
                );
                state.set("topic_id", Value::string(""));
                if state.get("replication_factor").is_unknown() {
                    state.set("replication_factor", Value::Null);
                }
            }
        }
        state
    }

    async fn read(
        &self,
        provider: &ProviderState,
        state: &Value,
        diags: &mut Diagnostics,
    ) -> Value {
        let Some(admin) = provider.admin(state, diags).await else {
            return state.clone();
        };
        let Some(name) = state.get("name").as_str().map(str::to_string) else {
            diags.error(
                "Topic state has no name",
                "The stored state is missing the topic name.",
            );
            return state.clone();
        };
        let described = match admin.describe_topic(&name).await {
            Ok(Some(t)) => t,
            Ok(None) => return Value::Null,
            Err(e) => {
                report_topic_error(diags, "Could not read topic", &name, &e);
                return state.clone();
            }
        };
        let overrides = match admin.topic_config_overrides(&name).await {
            Ok(o) => o,
            Err(e) => {
                report_topic_error(diags, "Could not read topic configs", &name, &e);
                return state.clone();
            }
        };
        // Right after import nothing is managed yet: adopt every override the topic has.
        // Afterwards only keys under management are reported, so out-of-band overrides of
        // other keys neither show as drift nor get wiped.
        let just_imported = state.get("partitions").is_null();
        let config = match state.get("config").as_string_map() {
            _ if just_imported => (!overrides.is_empty()).then_some(overrides),
            Some(managed) => Some(
                overrides
                    .into_iter()
                    .filter(|(k, _)| managed.contains_key(k))
                    .collect::<BTreeMap<_, _>>(),
            ),
            None => None,
        };
        let mut next = state.clone();
        next.set("id", Value::string(&name));
        next.set("partitions", Value::int(described.partitions as i64));
        next.set(
            "replication_factor",
            Value::int(described.replication_factor as i64),
        );
        next.set("topic_id", Value::string(described.topic_id));
        next.set(
            "config",
            config.as_ref().map_or(Value::Null, Value::from_string_map),
        );
        next
    }

    async fn update(
        &self,
        provider: &ProviderState,
        prior: &Value,
        planned: &Value,
        diags: &mut Diagnostics,
    ) -> Value {
        let Some(admin) = provider.admin(planned, diags).await else {
            return prior.clone();
        };
        let name = planned.get("name").as_str().unwrap_or_default().to_string();
        let within = timeouts::get(planned, "update", DEFAULT_TIMEOUT);
        let mut state = prior.clone();

        if let (Some(before), Some(after)) = (partitions_of(prior), partitions_of(planned))
            && after > before
        {
            if let Err(e) = admin.create_partitions(&name, after, false).await {
                report_topic_error(diags, "Could not add partitions", &name, &e);
                return state;
            }
            if let Err(e) = admin.wait_until_topic_ready(&name, after, within).await {
                diags.attribute_error(
                    AttributePath::root("partitions"),
                    "Partitions added but not ready",
                    e.to_string(),
                );
            }
            state.set("partitions", Value::int(after as i64));
        }

        let (set, reset) = config_changes(prior, planned);
        if let Err(e) = admin.alter_topic_config(&name, &set, &reset, false).await {
            report_topic_error(diags, "Could not change topic config", &name, &e);
            return state;
        }
        // Everything else in the plan (cluster, timeouts) is local to Terraform.
        let mut state = planned.clone();
        state.set("topic_id", prior.get("topic_id").clone());
        state.set("id", Value::string(&name));
        state
    }

    async fn delete(&self, provider: &ProviderState, prior: &Value, diags: &mut Diagnostics) {
        let Some(admin) = provider.admin(prior, diags).await else {
            return;
        };
        let name = prior.get("name").as_str().unwrap_or_default().to_string();
        match admin.delete_topic(&name).await {
            Ok(()) => {}
            Err(e) if e.code() == Some(KafkaErrorCode::UnknownTopicOrPartition) => return,
            Err(e) => {
                report_topic_error(diags, "Could not delete topic", &name, &e);
                return;
            }
        }
        // Deletion finishes in the background; a re-create right after would fail without this.
        let within = timeouts::get(prior, "delete", DEFAULT_TIMEOUT);
        if let Err(e) = admin.wait_until_topic_gone(&name, within).await {
            diags.error("Topic deletion did not finish", e.to_string());
        }
    }

    async fn import(&self, _provider: &ProviderState, id: &str, diags: &mut Diagnostics) -> Value {
        if let Err(why) = crate::topics_common::check_name(id) {
            diags.error(
                "Invalid import id",
                format!("Import a topic by its name; {id:?}: {why}."),
            );
            return Value::Null;
        }
        let mut state = Value::empty_object(&self.schema().block.implied_type());
        state.set("id", Value::string(id));
        state.set("name", Value::string(id));
        state
    }
}

impl TopicResource {
    /// Asks the broker to validate the planned change without making it, so a bad config key,
    /// an impossible replication factor or an existing topic fails the plan, not the apply.
    async fn check_with_broker(
        &self,
        provider: &ProviderState,
        plan: &Plan,
        diags: &mut Diagnostics,
    ) {
        let config = match provider.resolve(&plan.planned, diags) {
            Resolved::Known(c) => c,
            Resolved::Unknown => return, // e.g. the cluster is created in this same apply
            Resolved::Missing => return missing_connection(diags),
        };
        if diags.has_errors() {
            return;
        }
        let Some(admin) = provider.admin_for(&config, diags).await else {
            return;
        };
        let name = plan
            .planned
            .get("name")
            .as_str()
            .unwrap_or_default()
            .to_string();
        if plan.is_create() {
            if let Some(topic) = new_topic(&plan.planned)
                && let Err(e) = admin.create_topic(&topic, true).await
            {
                report_topic_error(diags, "Kafka rejects this topic", &name, &e);
            }
            return;
        }
        check_update(&admin, &name, plan, diags).await;
    }
}

async fn check_update(admin: &Admin, name: &str, plan: &Plan, diags: &mut Diagnostics) {
    if let (Some(before), Some(after)) = (partitions_of(&plan.prior), partitions_of(&plan.planned))
        && after > before
        && let Err(e) = admin.create_partitions(name, after, true).await
    {
        report_topic_error(diags, "Kafka rejects the new partition count", name, &e);
    }
    if plan.planned.get("config").is_wholly_known() {
        let (set, reset) = config_changes(&plan.prior, &plan.planned);
        if let Err(e) = admin.alter_topic_config(name, &set, &reset, true).await {
            report_topic_error(diags, "Kafka rejects this topic config", name, &e);
        }
    }
}

fn new_topic(planned: &Value) -> Option<NewTopic> {
    Some(NewTopic {
        name: planned.get("name").as_str()?.to_string(),
        partitions: partitions_of(planned)?,
        replication_factor: planned.get("replication_factor").as_i64().map(|r| r as i32),
        config: planned.get("config").as_string_map().unwrap_or_default(),
    })
}

/// Keys to set (new or changed) and keys to reset (no longer configured).
fn config_changes(prior: &Value, planned: &Value) -> (BTreeMap<String, String>, Vec<String>) {
    let before = prior.get("config").as_string_map().unwrap_or_default();
    let after = planned.get("config").as_string_map().unwrap_or_default();
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

    fn with_config(pairs: &[(&str, &str)]) -> Value {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Value::Object(BTreeMap::from([(
            "config".to_string(),
            Value::from_string_map(&map),
        )]))
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
    fn schema_marks_name_force_new_and_ids_computed() {
        let schema = TopicResource.schema();
        let b = &schema.block;
        assert!(b.find_attribute("name").unwrap().force_new);
        assert!(b.find_attribute("topic_id").unwrap().computed);
        assert!(!b.find_attribute("partitions").unwrap().force_new);
        assert!(b.blocks.iter().any(|n| n.name == "cluster"));
    }
}
