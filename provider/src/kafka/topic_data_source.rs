//! `data "ferry_topic"`: reads one existing topic.

use std::collections::BTreeMap;

use async_trait::async_trait;
use tfplugin::{Attribute, AttributePath, Block, DataSource, Diagnostics, Model, Schema, Tf, Type};

use super::connection::{ConnectionModel, cluster_block};
use super::topic_rules::{self, report_topic_error};
use crate::provider::{Ctx, FerryData};

pub struct TopicDataSource;

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct TopicDataModel {
    pub name: Tf<String>,
    pub id: Tf<String>,
    pub partitions: Tf<i64>,
    pub replication_factor: Tf<i64>,
    pub config: Tf<BTreeMap<String, String>>,
    pub topic_id: Tf<String>,
    pub cluster: Tf<ConnectionModel>,
}

fn schema() -> Schema {
    Schema {
        version: 0,
        block: Block::new("Reads an existing Kafka topic.")
            .attribute(
                Attribute::required("name", Type::String)
                    .describe("Topic name.")
                    .validate(topic_rules::name_validator()),
            )
            .attribute(Attribute::computed("id", Type::String).describe("The topic name."))
            .attribute(
                Attribute::computed("partitions", Type::Number).describe("Number of partitions."),
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

#[async_trait]
impl DataSource<FerryData> for TopicDataSource {
    type Model = TopicDataModel;

    fn type_name(&self) -> &'static str {
        "ferry_topic"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate(&self, config: &TopicDataModel, diags: &mut Diagnostics) {
        super::connection::validate_cluster(&config.cluster, diags);
    }

    async fn read(
        &self,
        ctx: &Ctx,
        config: TopicDataModel,
        diags: &mut Diagnostics,
    ) -> Option<TopicDataModel> {
        let admin = ctx.data().admin(&config.cluster, diags).await?;
        let name = config.name.or(String::new());
        let described = match admin.describe_topic(&name).await {
            Ok(Some(t)) => t,
            Ok(None) => {
                diags.attribute_error(
                    AttributePath::root("name"),
                    "Topic not found",
                    format!("No topic named {name:?} exists on the cluster."),
                );
                return None;
            }
            Err(e) => {
                report_topic_error(diags, "Could not read topic", &name, &e);
                return None;
            }
        };
        let overrides = match admin.topic_config_overrides(&name).await {
            Ok(o) => o,
            Err(e) => {
                report_topic_error(diags, "Could not read topic configs", &name, &e);
                return None;
            }
        };
        Some(TopicDataModel {
            id: name.as_str().into(),
            partitions: Tf::Known(described.partitions as i64),
            replication_factor: Tf::Known(described.replication_factor as i64),
            config: Tf::Known(overrides),
            topic_id: described.topic_id.into(),
            ..config
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_matches_schema() {
        tfplugin::model::check_model_matches::<TopicDataModel>(&schema().block).unwrap();
    }
}
