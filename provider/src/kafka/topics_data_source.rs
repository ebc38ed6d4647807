//! `data "ferry_topics"`: lists topic names, optionally filtered by a regular expression.

use async_trait::async_trait;
use regex::Regex;
use tfplugin::{Attribute, AttributePath, Block, DataSource, Diagnostics, Model, Schema, Tf, Type};

use super::connection::{ConnectionModel, cluster_block};
use crate::provider::{Ctx, FerryData};

pub struct TopicsDataSource;

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct TopicsDataModel {
    pub name_regex: Tf<String>,
    pub include_internal: Tf<bool>,
    pub id: Tf<String>,
    pub names: Tf<Vec<String>>,
    pub cluster: Tf<ConnectionModel>,
}

fn compile(pattern: &str, diags: &mut Diagnostics) -> Option<Regex> {
    // Anchored: `orders\..*` should not match `old-orders.x`.
    match Regex::new(&format!("^(?:{pattern})$")) {
        Ok(r) => Some(r),
        Err(e) => {
            diags.error_from(
                Some(AttributePath::root("name_regex")),
                "Invalid regular expression",
                &e,
            );
            None
        }
    }
}

fn schema() -> Schema {
    Schema {
        version: 0,
        block: Block::new("Lists the topics of a Kafka cluster.")
            .attribute(Attribute::optional("name_regex", Type::String).describe(
                "Only names matching this regular expression (whole name, RE2-like syntax).",
            ))
            .attribute(
                Attribute::optional("include_internal", Type::Bool)
                    .describe("Include internal topics such as __consumer_offsets. Default false."),
            )
            .attribute(
                Attribute::computed("id", Type::String).describe("The bootstrap servers queried."),
            )
            .attribute(
                Attribute::computed("names", Type::list(Type::String))
                    .describe("Matching topic names, sorted."),
            )
            .block(cluster_block()),
    }
}

#[async_trait]
impl DataSource<FerryData> for TopicsDataSource {
    type Model = TopicsDataModel;

    fn type_name(&self) -> &'static str {
        "ferry_topics"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate(&self, config: &TopicsDataModel, diags: &mut Diagnostics) {
        if let Some(pattern) = config.name_regex.known() {
            compile(pattern, diags);
        }
        super::connection::validate_cluster(&config.cluster, diags);
    }

    async fn read(
        &self,
        ctx: &Ctx,
        config: TopicsDataModel,
        diags: &mut Diagnostics,
    ) -> Option<TopicsDataModel> {
        let filter = match config.name_regex.known() {
            Some(p) => Some(compile(p, diags)?),
            None => None,
        };
        let admin = ctx.data().admin(&config.cluster, diags).await?;
        let names = match admin.topic_names(config.include_internal.or(false)).await {
            Ok(n) => n,
            Err(e) => {
                diags.error_from(None, "Could not list topics", &e);
                return None;
            }
        };
        let names: Vec<String> = names
            .into_iter()
            .filter(|n| filter.as_ref().is_none_or(|r| r.is_match(n)))
            .collect();
        Some(TopicsDataModel {
            id: Tf::Known(admin_id(&config.cluster)),
            names: Tf::Known(names),
            ..config
        })
    }
}

/// The bootstrap servers of the `cluster` block, or "default" for the provider's.
fn admin_id(cluster: &Tf<ConnectionModel>) -> String {
    cluster
        .known()
        .and_then(|c| c.bootstrap_servers.known())
        .map(|l| l.join(","))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_matches_schema() {
        tfplugin::model::check_model_matches::<TopicsDataModel>(&schema().block).unwrap();
    }
}
