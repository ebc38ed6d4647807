//! `data "ferry_topic"`: reads one existing topic.

use async_trait::async_trait;

use crate::connection::cluster_block;
use crate::framework::{
    Attribute, AttributePath, Block, DataSource, Diagnostics, Schema, Type, Value,
};
use crate::provider::ProviderState;
use crate::topics_common::{check_name, report_topic_error};

pub struct TopicDataSource;

#[async_trait]
impl DataSource for TopicDataSource {
    fn type_name(&self) -> &'static str {
        "ferry_topic"
    }

    fn schema(&self) -> Schema {
        Schema {
            version: 0,
            block: Block::new("Reads an existing Kafka topic.")
                .attribute(Attribute::required("name", Type::String).describe("Topic name."))
                .attribute(Attribute::computed("id", Type::String).describe("The topic name."))
                .attribute(
                    Attribute::computed("partitions", Type::Number)
                        .describe("Number of partitions."),
                )
                .attribute(
                    Attribute::computed("replication_factor", Type::Number)
                        .describe("Replicas per partition."),
                )
                .attribute(
                    Attribute::computed("config", Type::map(Type::String)).describe(
                        "Configs set on the topic itself (broker defaults are not included).",
                    ),
                )
                .attribute(
                    Attribute::computed("topic_id", Type::String)
                        .describe("Kafka's topic id (base64)."),
                )
                .block(cluster_block()),
        }
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        if let Some(name) = config.get("name").as_str()
            && let Err(why) = check_name(name)
        {
            diags.attribute_error(
                AttributePath::root("name"),
                "Invalid topic name",
                format!("{name:?}: {why}."),
            );
        }
    }

    async fn read(
        &self,
        provider: &ProviderState,
        config: &Value,
        diags: &mut Diagnostics,
    ) -> Value {
        let Some(admin) = provider.admin(config, diags).await else {
            return Value::Null;
        };
        let name = config.get("name").as_str().unwrap_or_default().to_string();
        let described = match admin.describe_topic(&name).await {
            Ok(Some(t)) => t,
            Ok(None) => {
                diags.attribute_error(
                    AttributePath::root("name"),
                    "Topic not found",
                    format!("No topic named {name:?} exists on the cluster."),
                );
                return Value::Null;
            }
            Err(e) => {
                report_topic_error(diags, "Could not read topic", &name, &e);
                return Value::Null;
            }
        };
        let overrides = match admin.topic_config_overrides(&name).await {
            Ok(o) => o,
            Err(e) => {
                report_topic_error(diags, "Could not read topic configs", &name, &e);
                return Value::Null;
            }
        };
        let mut out = config.clone();
        out.set("id", Value::string(&name));
        out.set("partitions", Value::int(described.partitions as i64));
        out.set(
            "replication_factor",
            Value::int(described.replication_factor as i64),
        );
        out.set("config", Value::from_string_map(&overrides));
        out.set("topic_id", Value::string(described.topic_id));
        out
    }
}
