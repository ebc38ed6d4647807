//! Amazon MSK: `ferry_msk_cluster`, `ferry_msk_configuration` and their data sources, on
//! aws-sdk-kafka. `client.rs` holds the provider's `aws` block, error reporting and the waits.

pub mod client;
pub mod cluster;
pub mod cluster_model;
pub mod configuration;
pub mod data_sources;

use tfplugin::schema::Nesting;
use tfplugin::{AttributePath, Block, Value};

/// Replacement paths of attributes inside nested single blocks, from their plan modifiers
/// (`tfplugin::plan` applies them to top-level attributes only).
pub fn nested_replacements(block: &Block, prior: &Value, planned: &Value) -> Vec<AttributePath> {
    let mut out = Vec::new();
    for nested in block.blocks.iter().filter(|b| b.nesting == Nesting::Single) {
        walk(
            &nested.block,
            prior.get(&nested.name),
            planned.get(&nested.name),
            AttributePath::root(&nested.name),
            &mut out,
        );
    }
    out
}

fn walk(
    block: &Block,
    prior: &Value,
    planned: &Value,
    at: AttributePath,
    out: &mut Vec<AttributePath>,
) {
    if !matches!(prior, Value::Object(_)) || !matches!(planned, Value::Object(_)) {
        return;
    }
    for path in tfplugin::plan::replacement_paths(block, prior, planned) {
        let mut p = at.clone();
        p.0.extend(path.0);
        out.push(p);
    }
    for nested in block.blocks.iter().filter(|b| b.nesting == Nesting::Single) {
        walk(
            &nested.block,
            prior.get(&nested.name),
            planned.get(&nested.name),
            at.clone().attr(&nested.name),
            out,
        );
    }
}

/// A value of an optional attribute or block as read back from AWS: kept null when the
/// configuration (prior state) does not manage it, so AWS defaults never show as drift;
/// right after import everything AWS says is taken.
pub fn pick<T>(prior: &tfplugin::Tf<T>, importing: bool, aws: Option<T>) -> tfplugin::Tf<T> {
    if prior.is_null() && !importing {
        tfplugin::Tf::Null
    } else {
        aws.into()
    }
}

/// An empty string from AWS means "none".
pub fn non_empty(s: Option<&str>) -> tfplugin::Tf<String> {
    s.filter(|s| !s.is_empty()).map(str::to_string).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfplugin::{Attribute, NestedBlock, Type};

    #[test]
    fn nested_requires_replace_is_found_at_its_path() {
        let block = Block::new("").block(NestedBlock::single(
            "outer",
            Block::new("")
                .attribute(Attribute::optional("x", Type::String).requires_replace())
                .attribute(Attribute::optional("y", Type::String))
                .block(NestedBlock::single(
                    "inner",
                    Block::new("").attribute(
                        Attribute::optional("n", Type::Number)
                            .requires_replace_if("Shrinking replaces.", |a, b| {
                                b.as_i64() < a.as_i64()
                            }),
                    ),
                )),
        ));
        let v = |x: &str, y: &str, n: i64| {
            let mut inner = Value::Object(Default::default());
            inner.set("n", Value::int(n));
            let mut outer = Value::Object(Default::default());
            outer.set("x", Value::string(x));
            outer.set("y", Value::string(y));
            outer.set("inner", inner);
            let mut root = Value::Object(Default::default());
            root.set("outer", outer);
            root
        };
        assert!(nested_replacements(&block, &v("a", "b", 5), &v("a", "c", 6)).is_empty());
        let paths: Vec<String> = nested_replacements(&block, &v("a", "b", 5), &v("z", "b", 4))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(paths, ["outer.x", "outer.inner.n"]);
    }
}
