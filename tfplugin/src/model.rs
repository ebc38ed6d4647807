//! Typed models: resources read and write Rust structs (`#[derive(Model)]`), never attribute
//! names as strings. A field's type says what Terraform may send:
//!
//! * `Tf<T>` — null, unknown (during plan) or a known `T`; the usual choice.
//! * `Option<T>` — null or known; unknown is an error (use it for state-only data).
//! * `T` — always known and never null.
//!
//! `T` is `String`, `i64`, `bool`, `f64`, `Vec<T>` (list), [`Set<T>`] (set),
//! `BTreeMap<String, T>` (map) or another model (object / nested block).

use std::collections::BTreeMap;
use std::fmt;

use crate::diagnostics::{AttributePath, Diagnostics};
use crate::schema::Block;
use crate::value::{Number, Value};

pub use tfplugin_derive::Model;

/// Why a value does not fit a model. `Unknown` is separate so `Tf<T>` can absorb it.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelError {
    Unknown(AttributePath),
    Mismatch {
        path: AttributePath,
        message: String,
    },
}

impl ModelError {
    pub fn mismatch(message: impl Into<String>) -> ModelError {
        ModelError::Mismatch {
            path: AttributePath::default(),
            message: message.into(),
        }
    }
    pub fn not_an_object(found: &Value) -> ModelError {
        ModelError::mismatch(format!("expected an object, found {}", kind(found)))
    }
    /// Prefixes the path with the attribute the error happened in.
    pub fn inside(self, attribute: &str) -> ModelError {
        let prefix = |p: AttributePath| {
            let mut steps = AttributePath::root(attribute).0;
            steps.extend(p.0);
            AttributePath(steps)
        };
        match self {
            ModelError::Unknown(p) => ModelError::Unknown(prefix(p)),
            ModelError::Mismatch { path, message } => ModelError::Mismatch {
                path: prefix(path),
                message,
            },
        }
    }
    pub fn path(&self) -> &AttributePath {
        match self {
            ModelError::Unknown(p) | ModelError::Mismatch { path: p, .. } => p,
        }
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::Unknown(p) => write!(f, "{p}: value not known yet"),
            ModelError::Mismatch { path, message } => write!(f, "{path}: {message}"),
        }
    }
}

impl std::error::Error for ModelError {}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Unknown => "an unknown value",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::List(_) => "a list",
        Value::Set(_) => "a set",
        Value::Map(_) => "a map",
        Value::Object(_) => "an object",
    }
}

/// A Rust type that is one Terraform value.
pub trait TfValue: Sized {
    fn decode(value: &Value) -> Result<Self, ModelError>;
    fn encode(&self) -> Value;
}

/// A struct that is one Terraform object (a resource, a nested block). Derive it.
pub trait Model: TfValue + Clone + Default + Send + Sync + 'static {
    /// The attribute (and nested block) names, in field order.
    const ATTRIBUTES: &'static [&'static str];
    fn from_value(value: &Value) -> Result<Self, ModelError>;
    fn to_value(&self) -> Value;

    /// Decodes, turning a failure into a diagnostic on the attribute.
    fn decode_or_report(value: &Value, what: &str, diags: &mut Diagnostics) -> Option<Self> {
        match Self::from_value(value) {
            Ok(m) => Some(m),
            Err(e) => {
                diags.attribute_error(
                    e.path().clone(),
                    format!("Unexpected {what}"),
                    format!("The value does not fit the provider's model: {e}."),
                );
                None
            }
        }
    }
}

/// Checks that a model's fields are exactly the block's attributes and nested blocks: the
/// one place a name could be misspelled. Every resource's tests call this.
pub fn check_model_matches<M: Model>(block: &Block) -> Result<(), String> {
    let mut schema: Vec<&str> = block
        .attributes
        .iter()
        .map(|a| a.name.as_str())
        .chain(block.blocks.iter().map(|b| b.name.as_str()))
        .collect();
    let mut model: Vec<&str> = M::ATTRIBUTES.to_vec();
    schema.sort_unstable();
    model.sort_unstable();
    if schema == model {
        Ok(())
    } else {
        Err(format!("schema has {schema:?}, model has {model:?}"))
    }
}

/// A value that may be null or not yet known, as every configurable attribute may be.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Tf<T> {
    #[default]
    Null,
    Unknown,
    Known(T),
}

impl<T> Tf<T> {
    pub fn known(&self) -> Option<&T> {
        match self {
            Tf::Known(v) => Some(v),
            _ => None,
        }
    }
    pub fn into_known(self) -> Option<T> {
        match self {
            Tf::Known(v) => Some(v),
            _ => None,
        }
    }
    pub fn is_null(&self) -> bool {
        matches!(self, Tf::Null)
    }
    pub fn is_unknown(&self) -> bool {
        matches!(self, Tf::Unknown)
    }
    pub fn as_ref(&self) -> Tf<&T> {
        match self {
            Tf::Null => Tf::Null,
            Tf::Unknown => Tf::Unknown,
            Tf::Known(v) => Tf::Known(v),
        }
    }
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Tf<U> {
        match self {
            Tf::Null => Tf::Null,
            Tf::Unknown => Tf::Unknown,
            Tf::Known(v) => Tf::Known(f(v)),
        }
    }
}

impl<T: Clone> Tf<T> {
    /// The known value, or `default` when null or unknown.
    pub fn or(&self, default: T) -> T {
        self.known().cloned().unwrap_or(default)
    }
}

impl<T> From<T> for Tf<T> {
    fn from(v: T) -> Tf<T> {
        Tf::Known(v)
    }
}

impl<T> From<Option<T>> for Tf<T> {
    fn from(v: Option<T>) -> Tf<T> {
        v.map_or(Tf::Null, Tf::Known)
    }
}

impl From<&str> for Tf<String> {
    fn from(v: &str) -> Tf<String> {
        Tf::Known(v.to_string())
    }
}

impl<T: TfValue> TfValue for Tf<T> {
    fn decode(value: &Value) -> Result<Self, ModelError> {
        match value {
            Value::Null => Ok(Tf::Null),
            Value::Unknown => Ok(Tf::Unknown),
            // A collection with an unknown element is not known as a whole.
            v => match T::decode(v) {
                Ok(x) => Ok(Tf::Known(x)),
                Err(ModelError::Unknown(_)) => Ok(Tf::Unknown),
                Err(e) => Err(e),
            },
        }
    }
    fn encode(&self) -> Value {
        match self {
            Tf::Null => Value::Null,
            Tf::Unknown => Value::Unknown,
            Tf::Known(v) => v.encode(),
        }
    }
}

impl<T: TfValue> TfValue for Option<T> {
    fn decode(value: &Value) -> Result<Self, ModelError> {
        match value {
            Value::Null => Ok(None),
            v => T::decode(v).map(Some),
        }
    }
    fn encode(&self) -> Value {
        self.as_ref().map_or(Value::Null, TfValue::encode)
    }
}

fn scalar_error(expected: &str, found: &Value) -> ModelError {
    match found {
        Value::Unknown => ModelError::Unknown(AttributePath::default()),
        v => ModelError::mismatch(format!("expected {expected}, found {}", kind(v))),
    }
}

impl TfValue for String {
    fn decode(value: &Value) -> Result<Self, ModelError> {
        value
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| scalar_error("a string", value))
    }
    fn encode(&self) -> Value {
        Value::String(self.clone())
    }
}

impl TfValue for bool {
    fn decode(value: &Value) -> Result<Self, ModelError> {
        value.as_bool().ok_or_else(|| scalar_error("a bool", value))
    }
    fn encode(&self) -> Value {
        Value::Bool(*self)
    }
}

impl TfValue for i64 {
    fn decode(value: &Value) -> Result<Self, ModelError> {
        match value {
            Value::Number(n) => n
                .as_i64()
                .ok_or_else(|| ModelError::mismatch(format!("expected a whole number, found {n}"))),
            v => Err(scalar_error("a number", v)),
        }
    }
    fn encode(&self) -> Value {
        Value::Number(Number::Int(*self))
    }
}

impl TfValue for f64 {
    fn decode(value: &Value) -> Result<Self, ModelError> {
        match value {
            Value::Number(n) => Ok(n.as_f64()),
            v => Err(scalar_error("a number", v)),
        }
    }
    fn encode(&self) -> Value {
        Value::Number(Number::Float(*self))
    }
}

fn decode_items<T: TfValue>(items: &[Value]) -> Result<Vec<T>, ModelError> {
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            T::decode(v).map_err(|e| match e {
                ModelError::Unknown(p) => ModelError::Unknown(index_path(i, p)),
                ModelError::Mismatch { path, message } => ModelError::Mismatch {
                    path: index_path(i, path),
                    message,
                },
            })
        })
        .collect()
}

fn index_path(i: usize, rest: AttributePath) -> AttributePath {
    let mut p = AttributePath::default().index(i as i64);
    p.0.extend(rest.0);
    p
}

impl<T: TfValue> TfValue for Vec<T> {
    fn decode(value: &Value) -> Result<Self, ModelError> {
        match value {
            Value::List(items) | Value::Set(items) => decode_items(items),
            v => Err(scalar_error("a list", v)),
        }
    }
    fn encode(&self) -> Value {
        Value::List(self.iter().map(TfValue::encode).collect())
    }
}

/// A Terraform set: order carries no meaning.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Set<T>(pub Vec<T>);

impl<T: TfValue> TfValue for Set<T> {
    fn decode(value: &Value) -> Result<Self, ModelError> {
        match value {
            Value::List(items) | Value::Set(items) => decode_items(items).map(Set),
            v => Err(scalar_error("a set", v)),
        }
    }
    fn encode(&self) -> Value {
        Value::Set(self.0.iter().map(TfValue::encode).collect())
    }
}

impl<T: TfValue> TfValue for BTreeMap<String, T> {
    fn decode(value: &Value) -> Result<Self, ModelError> {
        match value {
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| {
                    T::decode(v).map(|x| (k.clone(), x)).map_err(|e| match e {
                        ModelError::Unknown(p) => ModelError::Unknown(key_path(k, p)),
                        ModelError::Mismatch { path, message } => ModelError::Mismatch {
                            path: key_path(k, path),
                            message,
                        },
                    })
                })
                .collect(),
            v => Err(scalar_error("a map", v)),
        }
    }
    fn encode(&self) -> Value {
        Value::Map(self.iter().map(|(k, v)| (k.clone(), v.encode())).collect())
    }
}

fn key_path(key: &str, rest: AttributePath) -> AttributePath {
    let mut p = AttributePath::default().key(key);
    p.0.extend(rest.0);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Attribute, NestedBlock};
    use crate::value::Type;

    #[derive(Debug, Clone, Default, PartialEq, Model)]
    struct Inner {
        host: Tf<String>,
    }

    #[derive(Debug, Clone, Default, PartialEq, Model)]
    struct Outer {
        name: Tf<String>,
        count: Tf<i64>,
        tags: Tf<BTreeMap<String, String>>,
        servers: Tf<Vec<String>>,
        inner: Tf<Inner>,
        r#type: Option<String>,
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
    fn round_trip_keeps_nulls_unknowns_and_values() {
        let v = obj(&[
            ("name", Value::string("a")),
            ("count", Value::Unknown),
            ("tags", Value::Null),
            ("servers", Value::List(vec![Value::string("h:1")])),
            ("inner", obj(&[("host", Value::string("x"))])),
            ("type", Value::string("t")),
        ]);
        let m = Outer::from_value(&v).unwrap();
        assert_eq!(m.name, Tf::Known("a".into()));
        assert!(m.count.is_unknown());
        assert_eq!(m.r#type.as_deref(), Some("t"));
        assert_eq!(m.to_value(), v);
    }

    #[test]
    fn partly_unknown_list_is_unknown_and_mismatch_names_the_path() {
        let v = obj(&[("servers", Value::List(vec![Value::Unknown]))]);
        assert!(Outer::from_value(&v).unwrap().servers.is_unknown());
        let bad = obj(&[("inner", obj(&[("host", Value::int(3))]))]);
        let e = Outer::from_value(&bad).unwrap_err();
        assert_eq!(e.path().to_string(), "inner.host");
        let unknown_required = obj(&[("type", Value::Unknown)]);
        assert!(matches!(
            Outer::from_value(&unknown_required),
            Err(ModelError::Unknown(_))
        ));
    }

    #[test]
    fn model_must_match_the_schema() {
        let block = Block::new("")
            .attribute(Attribute::optional("name", Type::String))
            .attribute(Attribute::optional("count", Type::Number))
            .attribute(Attribute::optional("tags", Type::map(Type::String)))
            .attribute(Attribute::optional("servers", Type::list(Type::String)))
            .attribute(Attribute::optional("type", Type::String))
            .block(NestedBlock::single(
                "inner",
                Block::new("").attribute(Attribute::optional("host", Type::String)),
            ));
        check_model_matches::<Outer>(&block).unwrap();
        let misspelled = block.attribute(Attribute::optional("nmae", Type::String));
        assert!(check_model_matches::<Outer>(&misspelled).is_err());
    }
}
