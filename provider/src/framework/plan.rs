//! Planning rules every resource shares, applied by the framework before `Resource::plan`.

use super::diagnostics::{AttributePath, Diagnostics};
use super::schema::{Block, Nesting};
use super::value::Value;

/// On create, computed attributes the configuration leaves null become unknown ("known after
/// apply"). On update Terraform's proposed state already carries the prior values forward,
/// which is the "keep state for unknown" behaviour resources usually want.
pub fn mark_computed_unknown(block: &Block, config: &Value, planned: &mut Value) {
    for attr in block.attributes.iter().filter(|a| a.computed) {
        if config.get(&attr.name).is_null() {
            planned.set(&attr.name, Value::Unknown);
        }
    }
    for nested in block.blocks.iter().filter(|b| b.nesting == Nesting::Single) {
        let cfg = config.get(&nested.name).clone();
        let mut inner = planned.get(&nested.name).clone();
        if matches!(inner, Value::Object(_)) {
            mark_computed_unknown(&nested.block, &cfg, &mut inner);
            planned.set(&nested.name, inner);
        }
    }
}

/// The `force_new` attributes and blocks whose planned value differs from the prior one.
pub fn replacement_paths(block: &Block, prior: &Value, planned: &Value) -> Vec<AttributePath> {
    let mut paths = Vec::new();
    if prior.is_null() || planned.is_null() {
        return paths;
    }
    for attr in block.attributes.iter().filter(|a| a.force_new) {
        if prior.get(&attr.name) != planned.get(&attr.name) {
            paths.push(AttributePath::root(&attr.name));
        }
    }
    for nested in block.blocks.iter().filter(|b| b.force_new) {
        if prior.get(&nested.name) != planned.get(&nested.name) {
            paths.push(AttributePath::root(&nested.name));
        }
    }
    paths
}

/// Warns on every deprecated attribute the configuration sets.
pub fn deprecation_warnings(block: &Block, config: &Value, diags: &mut Diagnostics) {
    for attr in &block.attributes {
        if let Some(message) = &attr.deprecation
            && !config.get(&attr.name).is_null()
        {
            diags.attribute_warning(
                AttributePath::root(&attr.name),
                format!("{} is deprecated", attr.name),
                message.clone(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::schema::{Attribute, NestedBlock};
    use crate::framework::value::Type;

    fn block() -> Block {
        Block::new("")
            .attribute(Attribute::required("name", Type::String).force_new())
            .attribute(Attribute::optional_computed("rf", Type::Number))
            .attribute(Attribute::computed("id", Type::String))
            .attribute(Attribute::optional("old", Type::String).deprecated("use new"))
            .block(NestedBlock::single(
                "inner",
                Block::new("").attribute(Attribute::computed("x", Type::String)),
            ))
    }

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn create_marks_unset_computed_unknown_but_keeps_configured_values() {
        let config = obj(&[
            ("name", Value::string("t")),
            ("rf", Value::int(3)),
            ("id", Value::Null),
        ]);
        let mut planned = config.clone();
        planned.set("inner", obj(&[("x", Value::Null)]));
        mark_computed_unknown(&block(), &config, &mut planned);
        assert_eq!(planned.get("rf"), &Value::int(3));
        assert!(planned.get("id").is_unknown());
        assert!(planned.get("inner").get("x").is_unknown());
    }

    #[test]
    fn force_new_attribute_change_requires_replace() {
        let prior = obj(&[("name", Value::string("a")), ("rf", Value::int(1))]);
        let same = prior.clone();
        assert!(replacement_paths(&block(), &prior, &same).is_empty());
        let renamed = obj(&[("name", Value::string("b")), ("rf", Value::int(1))]);
        assert_eq!(
            replacement_paths(&block(), &prior, &renamed),
            vec![AttributePath::root("name")]
        );
    }

    #[test]
    fn deprecated_attribute_in_use_warns() {
        let mut d = Diagnostics::default();
        deprecation_warnings(&block(), &obj(&[("old", Value::string("x"))]), &mut d);
        assert_eq!(d.0.len(), 1);
        assert!(!d.has_errors());
    }
}
