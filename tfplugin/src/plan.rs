//! The schema-level rules every resource gets from the adapter: validators and deprecations at
//! validate time; defaults, unknown computed values and replacements at plan time.

use super::diagnostics::{AttributePath, Diagnostics};
use super::schema::{Block, Nesting, PlanModifier};
use super::value::Value;

/// Runs every attribute's validators (and deprecation warnings) on a configuration value,
/// descending into nested blocks. Unknown and null values are not checked.
pub fn validate(block: &Block, config: &Value, at: &AttributePath, diags: &mut Diagnostics) {
    if !matches!(config, Value::Object(_)) {
        return;
    }
    for attr in &block.attributes {
        let value = config.get(&attr.name);
        let path = at.clone().attr(&attr.name);
        if let Some(message) = &attr.deprecation
            && !value.is_null()
        {
            diags.attribute_warning(
                path.clone(),
                format!("{} is deprecated", attr.name),
                message.clone(),
            );
        }
        if value.is_null() || !value.is_wholly_known() {
            continue;
        }
        for v in &attr.validators {
            v.run(value, &path, diags);
        }
    }
    for nested in &block.blocks {
        let value = config.get(&nested.name);
        let path = at.clone().attr(&nested.name);
        match nested.nesting {
            Nesting::Single => validate(&nested.block, value, &path, diags),
            Nesting::List | Nesting::Set => {
                for (i, item) in value.as_list().unwrap_or_default().iter().enumerate() {
                    validate(&nested.block, item, &path.clone().index(i as i64), diags);
                }
            }
        }
    }
}

/// Plans a create or an update in place (not a destroy): defaults, unknown computed values,
/// replacement paths. Returns the paths whose change requires replacement.
pub fn plan_attributes(
    block: &Block,
    prior: &Value,
    config: &Value,
    planned: &mut Value,
) -> Vec<AttributePath> {
    apply_defaults(block, config, planned);
    // A block cannot be computed, so a block the configuration leaves out is planned absent.
    // (Terraform 1.0 proposes the prior block when one is removed, then rejects that plan.)
    for nested in block.blocks.iter().filter(|b| b.nesting == Nesting::Single) {
        if config.get(&nested.name).is_null() && !planned.get(&nested.name).is_null() {
            planned.set(&nested.name, Value::Null);
        }
    }
    if prior.is_null() {
        mark_computed_unknown(block, config, planned);
        return Vec::new();
    }
    let changed = planned != prior;
    if changed {
        for attr in block.attributes.iter().filter(|a| a.computed) {
            if !config.get(&attr.name).is_null() || attr.default.is_some() {
                continue;
            }
            let keep = attr.has_modifier(|m| matches!(m, PlanModifier::UseStateForUnknown));
            let follows = attr.plan_modifiers.iter().any(|m| match m {
                PlanModifier::ComputedIfChanged(names) => {
                    names.iter().any(|n| prior.get(n) != planned.get(n))
                }
                _ => false,
            });
            if !keep || follows {
                planned.set(&attr.name, Value::Unknown);
            }
        }
    }
    replacement_paths(block, prior, planned)
}

/// Attributes the configuration leaves out get their schema default, inside present single
/// blocks too.
fn apply_defaults(block: &Block, config: &Value, planned: &mut Value) {
    for attr in &block.attributes {
        if let Some(default) = &attr.default
            && config.get(&attr.name).is_null()
        {
            planned.set(&attr.name, default.clone());
        }
    }
    for nested in block.blocks.iter().filter(|b| b.nesting == Nesting::Single) {
        let mut inner = planned.get(&nested.name).clone();
        if matches!(inner, Value::Object(_)) {
            apply_defaults(&nested.block, config.get(&nested.name), &mut inner);
            planned.set(&nested.name, inner);
        }
    }
}

/// On create, computed attributes the configuration leaves null become unknown ("known after
/// apply"), in nested single blocks too.
pub fn mark_computed_unknown(block: &Block, config: &Value, planned: &mut Value) {
    for attr in block.attributes.iter().filter(|a| a.computed) {
        if config.get(&attr.name).is_null() && attr.default.is_none() {
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

/// The attributes and blocks whose change, per their plan modifiers, replaces the resource.
pub fn replacement_paths(block: &Block, prior: &Value, planned: &Value) -> Vec<AttributePath> {
    let mut paths = Vec::new();
    if prior.is_null() || planned.is_null() {
        return paths;
    }
    for attr in &block.attributes {
        let (before, after) = (prior.get(&attr.name), planned.get(&attr.name));
        if before == after {
            continue;
        }
        let replace = attr.plan_modifiers.iter().any(|m| match m {
            PlanModifier::RequiresReplace => true,
            PlanModifier::RequiresReplaceIf { when, .. } => when(before, after),
            _ => false,
        });
        if replace {
            paths.push(AttributePath::root(&attr.name));
        }
    }
    for nested in &block.blocks {
        let (before, after) = (prior.get(&nested.name), planned.get(&nested.name));
        if nested.requires_replace && before != after {
            paths.push(AttributePath::root(&nested.name));
        } else if nested.nesting == Nesting::Single
            && matches!(before, Value::Object(_))
            && matches!(after, Value::Object(_))
        {
            // Plan modifiers of attributes inside a present block apply at their own path.
            for inner in replacement_paths(&nested.block, before, after) {
                let mut p = AttributePath::root(&nested.name);
                p.0.extend(inner.0);
                paths.push(p);
            }
        }
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Attribute, NestedBlock, Validator};
    use crate::value::Type;

    fn block() -> Block {
        Block::new("")
            .attribute(Attribute::required("name", Type::String).requires_replace())
            .attribute(Attribute::optional_computed("rf", Type::Number).use_state_for_unknown())
            .attribute(Attribute::computed("id", Type::String).use_state_for_unknown())
            .attribute(Attribute::computed("status", Type::String))
            .attribute(
                Attribute::computed("lag", Type::Number)
                    .use_state_for_unknown()
                    .computed_if_changed(&["size"]),
            )
            .attribute(
                Attribute::optional("size", Type::Number)
                    .validate(Validator::int_range(1, 10, "Invalid size"))
                    .requires_replace_if("Shrinking replaces it.", |before, after| {
                        after.as_i64() < before.as_i64()
                    }),
            )
            .attribute(Attribute::optional("workers", Type::Number).default(Value::int(1)))
            .attribute(Attribute::optional("old", Type::String).deprecated("use new"))
            .block(NestedBlock::single(
                "inner",
                Block::new("").attribute(
                    Attribute::optional("x", Type::String)
                        .validate(Validator::one_of(&["a"], "Invalid x")),
                ),
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
    fn create_plans_defaults_and_unknown_computed_values() {
        let config = obj(&[("name", Value::string("t")), ("rf", Value::int(3))]);
        let mut planned = config.clone();
        let replace = plan_attributes(&block(), &Value::Null, &config, &mut planned);
        assert!(replace.is_empty());
        assert_eq!(planned.get("rf"), &Value::int(3));
        assert_eq!(planned.get("workers"), &Value::int(1));
        assert!(planned.get("id").is_unknown() && planned.get("status").is_unknown());
    }

    #[test]
    fn update_keeps_state_only_where_asked_and_replaces_per_modifier() {
        let prior = obj(&[
            ("name", Value::string("a")),
            ("id", Value::string("a")),
            ("status", Value::string("ok")),
            ("lag", Value::int(0)),
            ("size", Value::int(5)),
            ("workers", Value::int(1)),
        ]);
        // No change: nothing becomes unknown.
        let config = obj(&[("name", Value::string("a")), ("size", Value::int(5))]);
        let mut same = prior.clone();
        assert!(plan_attributes(&block(), &prior, &config, &mut same).is_empty());
        assert_eq!(same, prior);

        let config = obj(&[("name", Value::string("a")), ("size", Value::int(3))]);
        let mut planned = prior.clone();
        planned.set("size", Value::int(3));
        let replace = plan_attributes(&block(), &prior, &config, &mut planned);
        assert_eq!(replace, vec![AttributePath::root("size")]);
        assert_eq!(
            planned.get("id"),
            &Value::string("a"),
            "use state for unknown"
        );
        assert!(
            planned.get("status").is_unknown(),
            "computed without modifier"
        );
        assert!(planned.get("lag").is_unknown(), "computed if size changed");

        let config = obj(&[("name", Value::string("b")), ("size", Value::int(6))]);
        let mut planned = prior.clone();
        planned.set("name", Value::string("b"));
        planned.set("size", Value::int(6));
        let replace = plan_attributes(&block(), &prior, &config, &mut planned);
        assert_eq!(replace, vec![AttributePath::root("name")]);
    }

    #[test]
    fn rules_inside_nested_blocks_apply_at_their_path() {
        let nested = Block::new("").block(NestedBlock::single(
            "storage",
            Block::new("")
                .attribute(
                    Attribute::optional("size", Type::Number)
                        .requires_replace_if("Shrinking replaces it.", |before, after| {
                            after.as_i64() < before.as_i64()
                        }),
                )
                .attribute(Attribute::optional("mode", Type::String).default(Value::string("gp3"))),
        ));
        let storage = |size: i64| {
            obj(&[(
                "storage",
                obj(&[("size", Value::int(size)), ("mode", Value::Null)]),
            )])
        };
        let config = storage(5);
        let mut planned = storage(5);
        plan_attributes(&nested, &Value::Null, &config, &mut planned);
        assert_eq!(planned.get("storage").get("mode"), &Value::string("gp3"));
        let prior = planned.clone();
        let mut smaller = storage(4);
        let replace = plan_attributes(&nested, &prior, &storage(4), &mut smaller);
        assert_eq!(replace[0].to_string(), "storage.size");
    }

    #[test]
    fn a_removed_single_block_is_planned_absent() {
        let prior = obj(&[
            ("name", Value::string("a")),
            ("inner", obj(&[("x", Value::string("a"))])),
        ]);
        let config = obj(&[("name", Value::string("a"))]);
        let mut planned = prior.clone();
        plan_attributes(&block(), &prior, &config, &mut planned);
        assert!(planned.get("inner").is_null());
    }

    #[test]
    fn validators_and_deprecations_point_at_nested_paths() {
        let mut d = Diagnostics::default();
        let config = obj(&[
            ("size", Value::int(11)),
            ("old", Value::string("x")),
            ("inner", obj(&[("x", Value::string("b"))])),
        ]);
        validate(&block(), &config, &AttributePath::default(), &mut d);
        let paths: Vec<String> =
            d.0.iter()
                .map(|x| x.path.clone().unwrap().to_string())
                .collect();
        assert_eq!(paths, ["size", "old", "inner.x"]);
        assert!(d.has_errors());
    }
}
