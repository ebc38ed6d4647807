//! How schemas and values look on the wire, where they differ from what resources see.
//!
//! One rule: every [`Nesting::Single`] block is presented to Terraform as a list block of at
//! most one item (`NestingList`, `max_items = 1`), the shape SDKv2 providers use. Resources and
//! models keep seeing one optional object. The reason is Terraform before 1.4: its plan renderer
//! (`format/diff.go`, `writeNestedBlockDiffs`) compares single and group blocks with
//! `Value.Equals`, which panics ("value is marked, so must be unmarked first") when a value in
//! the block carries a sensitivity mark from the configuration; list blocks are compared item by
//! item with `RawEquals`, which does not.
//!
//! At the boundary: a value arriving as `[obj]` becomes `obj`, and `[]` or null becomes null;
//! an object leaving becomes `[obj]`, and null becomes `[]` (Terraform rejects a null list of
//! blocks in a plan). Unknown stays unknown. Diagnostic and replacement paths that step into
//! such a block get the index step `[0]`.

use std::collections::BTreeMap;

use crate::diagnostics::{AttributePath, PathStep};
use crate::schema::{Block, Nesting};
use crate::value::{Type, Value};

/// The object type of a block's values as Terraform sends and receives them.
pub fn wire_type(block: &Block) -> Type {
    let mut attrs = BTreeMap::new();
    for a in &block.attributes {
        attrs.insert(a.name.clone(), a.ty.clone());
    }
    for b in &block.blocks {
        let inner = wire_type(&b.block);
        let ty = match b.nesting {
            Nesting::Single | Nesting::List => Type::list(inner),
            Nesting::Set => Type::set(inner),
        };
        attrs.insert(b.name.clone(), ty);
    }
    Type::Object(attrs)
}

/// A value of `block` as Terraform sent it, in the shape resources see.
pub fn from_wire(block: &Block, value: Value) -> Value {
    let Value::Object(mut attrs) = value else {
        return value;
    };
    for nested in &block.blocks {
        let Some(v) = attrs.remove(&nested.name) else {
            continue;
        };
        let v = match (nested.nesting, v) {
            // Terraform enforces max_items = 1 before calling the provider.
            (Nesting::Single, Value::List(items)) => items
                .into_iter()
                .next()
                .map_or(Value::Null, |item| from_wire(&nested.block, item)),
            (Nesting::Single, other) => from_wire(&nested.block, other),
            (_, Value::List(items)) => Value::List(
                items
                    .into_iter()
                    .map(|i| from_wire(&nested.block, i))
                    .collect(),
            ),
            (_, Value::Set(items)) => Value::Set(
                items
                    .into_iter()
                    .map(|i| from_wire(&nested.block, i))
                    .collect(),
            ),
            (_, other) => other,
        };
        attrs.insert(nested.name.clone(), v);
    }
    Value::Object(attrs)
}

/// A value of `block` as resources see it, in the shape Terraform expects.
pub fn to_wire(block: &Block, value: Value) -> Value {
    let Value::Object(mut attrs) = value else {
        return value;
    };
    for nested in &block.blocks {
        let v = attrs.remove(&nested.name).unwrap_or(Value::Null);
        let v = match (nested.nesting, v) {
            (Nesting::Single, Value::Null) => Value::List(Vec::new()),
            (Nesting::Single, Value::Unknown) => Value::Unknown,
            (Nesting::Single, object) => Value::List(vec![to_wire(&nested.block, object)]),
            (_, Value::List(items)) => Value::List(
                items
                    .into_iter()
                    .map(|i| to_wire(&nested.block, i))
                    .collect(),
            ),
            (_, Value::Set(items)) => Value::Set(
                items
                    .into_iter()
                    .map(|i| to_wire(&nested.block, i))
                    .collect(),
            ),
            (_, other) => other,
        };
        attrs.insert(nested.name.clone(), v);
    }
    Value::Object(attrs)
}

/// A path into `block`'s value as resources see it, as Terraform must see it: `[0]` after
/// every single block the path steps into.
pub fn path_to_wire(block: &Block, path: &AttributePath) -> AttributePath {
    let mut out = Vec::with_capacity(path.0.len() + 1);
    let mut current = Some(block);
    let mut steps = path.0.iter().peekable();
    while let Some(step) = steps.next() {
        out.push(step.clone());
        let Some(b) = current.take() else {
            continue;
        };
        let PathStep::Attribute(name) = step else {
            continue;
        };
        let Some(nested) = b.blocks.iter().find(|n| &n.name == name) else {
            continue;
        };
        match nested.nesting {
            Nesting::Single => {
                if steps.peek().is_some() {
                    out.push(PathStep::Index(0));
                    current = Some(&nested.block);
                }
            }
            // The element step is already there; the block's own rules apply after it.
            Nesting::List | Nesting::Set => {
                if let Some(element) = steps.next() {
                    out.push(element.clone());
                    current = Some(&nested.block);
                }
            }
        }
    }
    AttributePath(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;
    use crate::schema::{Attribute, NestedBlock};

    /// `cluster { sasl { password } }`, a `rule` list holding a single `match` block, and
    /// `timeouts`.
    fn block() -> Block {
        let sasl = Block::new("")
            .attribute(Attribute::optional("username", Type::String))
            .attribute(Attribute::optional("password", Type::String).sensitive());
        let cluster = Block::new("")
            .attribute(Attribute::required("servers", Type::list(Type::String)))
            .block(NestedBlock::single("sasl", sasl));
        let rule = Block::new("")
            .attribute(Attribute::optional("host", Type::String))
            .block(NestedBlock::single(
                "match",
                Block::new("").attribute(Attribute::optional("prefix", Type::String)),
            ));
        Block::new("")
            .attribute(Attribute::required("name", Type::String))
            .block(NestedBlock::single("cluster", cluster))
            .block(NestedBlock::list("rule", rule))
            .block(crate::timeouts::block())
    }

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    fn internal() -> Value {
        obj(&[
            ("name", Value::string("t")),
            (
                "cluster",
                obj(&[
                    ("servers", Value::List(vec![Value::string("a:9092")])),
                    (
                        "sasl",
                        obj(&[
                            ("username", Value::string("u")),
                            ("password", Value::string("p")),
                        ]),
                    ),
                ]),
            ),
            (
                "rule",
                Value::List(vec![
                    obj(&[
                        ("host", Value::string("h")),
                        ("match", obj(&[("prefix", Value::string("x"))])),
                    ]),
                    obj(&[("host", Value::string("i")), ("match", Value::Null)]),
                ]),
            ),
            ("timeouts", Value::Null),
        ])
    }

    fn wire() -> Value {
        obj(&[
            ("name", Value::string("t")),
            (
                "cluster",
                Value::List(vec![obj(&[
                    ("servers", Value::List(vec![Value::string("a:9092")])),
                    (
                        "sasl",
                        Value::List(vec![obj(&[
                            ("username", Value::string("u")),
                            ("password", Value::string("p")),
                        ])]),
                    ),
                ])]),
            ),
            (
                "rule",
                Value::List(vec![
                    obj(&[
                        ("host", Value::string("h")),
                        (
                            "match",
                            Value::List(vec![obj(&[("prefix", Value::string("x"))])]),
                        ),
                    ]),
                    obj(&[("host", Value::string("i")), ("match", Value::List(vec![]))]),
                ]),
            ),
            ("timeouts", Value::List(vec![])),
        ])
    }

    #[test]
    fn single_blocks_are_lists_in_the_wire_type() {
        let ty = wire_type(&block());
        let json = ty.to_json();
        assert_eq!(json[1]["cluster"][0], "list");
        assert_eq!(json[1]["cluster"][1][1]["sasl"][0], "list");
        assert_eq!(json[1]["rule"][1][1]["match"][0], "list");
        assert_eq!(json[1]["timeouts"][0], "list");
        assert_eq!(json[1]["name"], "string");
    }

    #[test]
    fn values_are_wrapped_going_out_and_unwrapped_coming_in() {
        assert_eq!(to_wire(&block(), internal()), wire());
        assert_eq!(from_wire(&block(), wire()), internal());
        // Through the codec with the wire type, as the adapter does.
        let ty = wire_type(&block());
        let bytes = codec::encode_msgpack(&to_wire(&block(), internal()), &ty);
        let back = codec::decode_msgpack(&bytes, &ty).unwrap();
        assert_eq!(from_wire(&block(), back), internal());
    }

    #[test]
    fn absent_null_and_unknown_blocks_stay_sane() {
        // A block left out of the configuration arrives as an empty list (or null).
        let mut w = wire();
        w.set("cluster", Value::List(vec![]));
        assert!(from_wire(&block(), w).get("cluster").is_null());
        let mut w = wire();
        w.set("cluster", Value::Null);
        assert!(from_wire(&block(), w).get("cluster").is_null());
        // A dynamic block with an unknown for_each: unknown both ways.
        let mut w = wire();
        w.set("cluster", Value::Unknown);
        let inside = from_wire(&block(), w);
        assert!(inside.get("cluster").is_unknown());
        assert!(to_wire(&block(), inside).get("cluster").is_unknown());
        // An absent block leaves as an empty list, never null; a missing key too.
        let mut v = internal();
        v.set("cluster", Value::Null);
        assert_eq!(to_wire(&block(), v).get("cluster"), &Value::List(vec![]));
        let sparse = obj(&[("name", Value::string("t"))]);
        assert_eq!(
            to_wire(&block(), sparse).get("timeouts"),
            &Value::List(vec![])
        );
        // Null and unknown whole objects (destroy, create) pass through.
        assert_eq!(to_wire(&block(), Value::Null), Value::Null);
        assert_eq!(from_wire(&block(), Value::Unknown), Value::Unknown);
    }

    #[test]
    fn paths_into_single_blocks_get_index_zero() {
        let b = block();
        let show = |p: AttributePath| path_to_wire(&b, &p).to_string();
        assert_eq!(
            show(AttributePath::root("cluster").attr("sasl").attr("password")),
            "cluster[0].sasl[0].password"
        );
        assert_eq!(
            show(AttributePath::root("cluster").attr("servers").index(2)),
            "cluster[0].servers[2]"
        );
        // The block itself, a list block's element, and plain attributes are unchanged.
        assert_eq!(show(AttributePath::root("cluster")), "cluster");
        assert_eq!(
            show(
                AttributePath::root("rule")
                    .index(1)
                    .attr("match")
                    .attr("prefix")
            ),
            "rule[1].match[0].prefix"
        );
        assert_eq!(show(AttributePath::root("name")), "name");
        assert_eq!(
            show(AttributePath::root("timeouts").attr("create")),
            "timeouts[0].create"
        );
        assert_eq!(show(AttributePath::default()), "");
    }
}
