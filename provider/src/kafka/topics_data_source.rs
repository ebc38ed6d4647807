//! `data "ferry_topics"`: lists topic names, optionally filtered by a regular expression.

use async_trait::async_trait;
use regex::Regex;

use crate::connection::cluster_block;
use crate::framework::{
    Attribute, AttributePath, Block, DataSource, Diagnostics, Schema, Type, Value,
};
use crate::provider::ProviderState;

pub struct TopicsDataSource;

fn compile(pattern: &str, diags: &mut Diagnostics) -> Option<Regex> {
    // Anchored: `orders\..*` should not match `old-orders.x`.
    match Regex::new(&format!("^(?:{pattern})$")) {
        Ok(r) => Some(r),
        Err(e) => {
            diags.attribute_error(
                AttributePath::root("name_regex"),
                "Invalid regular expression",
                e.to_string(),
            );
            None
        }
    }
}

#[async_trait]
impl DataSource for TopicsDataSource {
    fn type_name(&self) -> &'static str {
        "ferry_topics"
    }

    fn schema(&self) -> Schema {
        Schema {
            version: 0,
            block: Block::new("Lists the topics of a Kafka cluster.")
                .attribute(Attribute::optional("name_regex", Type::String).describe(
                    "Only names matching this regular expression (whole name, RE2-like syntax).",
                ))
                .attribute(
                    Attribute::optional("include_internal", Type::Bool).describe(
                        "Include internal topics such as __consumer_offsets. Default false.",
                    ),
                )
                .attribute(
                    Attribute::computed("id", Type::String)
                        .describe("The bootstrap servers queried."),
                )
                .attribute(
                    Attribute::computed("names", Type::list(Type::String))
                        .describe("Matching topic names, sorted."),
                )
                .block(cluster_block()),
        }
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        if let Some(pattern) = config.get("name_regex").as_str() {
            compile(pattern, diags);
        }
    }

    async fn read(
        &self,
        provider: &ProviderState,
        config: &Value,
        diags: &mut Diagnostics,
    ) -> Value {
        let filter = match config.get("name_regex").as_str() {
            Some(p) => match compile(p, diags) {
                Some(r) => Some(r),
                None => return Value::Null,
            },
            None => None,
        };
        let Some(admin) = provider.admin(config, diags).await else {
            return Value::Null;
        };
        let include_internal = config.get("include_internal").as_bool().unwrap_or(false);
        let names = match admin.topic_names(include_internal).await {
            Ok(n) => n,
            Err(e) => {
                diags.error("Could not list topics", e.to_string());
                return Value::Null;
            }
        };
        let names: Vec<Value> = names
            .into_iter()
            .filter(|n| filter.as_ref().is_none_or(|r| r.is_match(n)))
            .map(Value::string)
            .collect();
        let mut out = config.clone();
        out.set("id", Value::string(admin_id(config)));
        out.set("names", Value::List(names));
        out
    }
}

fn admin_id(config: &Value) -> String {
    config
        .get("cluster")
        .get("bootstrap_servers")
        .as_list()
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".to_string())
}
