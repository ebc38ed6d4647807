//! Wire encodings of [`Value`]: msgpack (DynamicValue) and JSON (stored state).
//!
//! The encodings are not self-describing for Terraform's purposes (an object and a map look the
//! same), so every decode is driven by the expected [`Type`].

use std::collections::BTreeMap;

use rmpv::Value as Mp;
use thiserror::Error;

use super::value::{Number, Type, Value};

/// msgpack extension code Terraform uses for a wholly unknown value.
const EXT_UNKNOWN: i8 = 0;
/// msgpack extension code newer cores use for an unknown value carrying refinements
/// (e.g. "not null"). We accept it and drop the refinements.
#[cfg(test)]
const EXT_REFINED_UNKNOWN: i8 = 12;

#[derive(Debug, Error, PartialEq)]
pub enum CodecError {
    #[error("malformed msgpack: {0}")]
    Msgpack(String),
    #[error("malformed JSON: {0}")]
    Json(String),
    #[error("at {path}: expected {expected}, found {found}")]
    Mismatch {
        path: String,
        expected: String,
        found: String,
    },
}

fn mismatch(path: &str, ty: &Type, found: impl std::fmt::Debug) -> CodecError {
    let mut found = format!("{found:?}");
    found.truncate(80);
    CodecError::Mismatch {
        path: if path.is_empty() {
            "(root)".into()
        } else {
            path.into()
        },
        expected: ty.to_json().to_string(),
        found,
    }
}

fn child(path: &str, step: &str) -> String {
    if path.is_empty() {
        step.to_string()
    } else {
        format!("{path}.{step}")
    }
}

// ---------------------------------------------------------------------------------------------
// msgpack

pub fn encode_msgpack(value: &Value, ty: &Type) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &to_msgpack(value, ty))
        .expect("writing msgpack into a Vec cannot fail");
    out
}

fn to_msgpack(value: &Value, ty: &Type) -> Mp {
    match (value, ty) {
        (Value::Null, _) => Mp::Nil,
        (Value::Unknown, _) => Mp::Ext(EXT_UNKNOWN, vec![0]),
        (Value::Bool(b), _) => Mp::Boolean(*b),
        (Value::Number(n), _) => match n.as_i64() {
            Some(i) => Mp::from(i),
            None => Mp::F64(n.as_f64()),
        },
        (Value::String(s), _) => Mp::from(s.as_str()),
        (Value::List(items) | Value::Set(items), Type::List(e) | Type::Set(e)) => {
            Mp::Array(items.iter().map(|v| to_msgpack(v, e)).collect())
        }
        (Value::Map(m), Type::Map(e)) => Mp::Map(
            m.iter()
                .map(|(k, v)| (Mp::from(k.as_str()), to_msgpack(v, e)))
                .collect(),
        ),
        (Value::Object(m), Type::Object(attrs)) => Mp::Map(
            attrs
                .iter()
                .map(|(name, aty)| {
                    let v = m.get(name).unwrap_or(&Value::Null);
                    (Mp::from(name.as_str()), to_msgpack(v, aty))
                })
                .collect(),
        ),
        // A value whose shape disagrees with its type is a provider bug; encode it as null
        // rather than crash the plugin mid-request.
        _ => {
            tracing::error!(
                ?ty,
                ?value,
                "value does not match its schema type; sending null"
            );
            Mp::Nil
        }
    }
}

pub fn decode_msgpack(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let mut cursor = bytes;
    let mp =
        rmpv::decode::read_value(&mut cursor).map_err(|e| CodecError::Msgpack(e.to_string()))?;
    from_msgpack(&mp, ty, "")
}

fn from_msgpack(mp: &Mp, ty: &Type, path: &str) -> Result<Value, CodecError> {
    match mp {
        Mp::Nil => return Ok(Value::Null),
        // Any extension is an unknown; newer cores may add refinement codes we do not read.
        Mp::Ext(_, _) => return Ok(Value::Unknown),
        _ => {}
    }
    match ty {
        Type::String => match mp {
            Mp::String(s) => Ok(Value::String(
                s.as_str()
                    .ok_or_else(|| mismatch(path, ty, "non-UTF-8 string"))?
                    .to_string(),
            )),
            other => Err(mismatch(path, ty, other)),
        },
        Type::Bool => match mp {
            Mp::Boolean(b) => Ok(Value::Bool(*b)),
            other => Err(mismatch(path, ty, other)),
        },
        Type::Number => match mp {
            Mp::Integer(i) => Ok(Value::Number(match (i.as_i64(), i.as_f64()) {
                (Some(v), _) => Number::Int(v),
                (None, Some(f)) => Number::Float(f),
                _ => return Err(mismatch(path, ty, i)),
            })),
            Mp::F32(f) => Ok(Value::Number(Number::Float(*f as f64))),
            Mp::F64(f) => Ok(Value::Number(Number::Float(*f))),
            // Numbers too precise for float64 travel as strings.
            Mp::String(s) => parse_number_string(s.as_str().unwrap_or_default(), ty, path),
            other => Err(mismatch(path, ty, other)),
        },
        Type::List(e) | Type::Set(e) => match mp {
            Mp::Array(items) => {
                let values = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| from_msgpack(v, e, &child(path, &i.to_string())))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if matches!(ty, Type::List(_)) {
                    Value::List(values)
                } else {
                    Value::Set(values)
                })
            }
            other => Err(mismatch(path, ty, other)),
        },
        Type::Map(e) => match mp {
            Mp::Map(entries) => {
                let mut out = BTreeMap::new();
                for (k, v) in entries {
                    let key = k.as_str().ok_or_else(|| mismatch(path, ty, k))?;
                    out.insert(key.to_string(), from_msgpack(v, e, &child(path, key))?);
                }
                Ok(Value::Map(out))
            }
            other => Err(mismatch(path, ty, other)),
        },
        Type::Object(attrs) => match mp {
            Mp::Map(entries) => {
                let mut out: BTreeMap<String, Value> =
                    attrs.keys().map(|k| (k.clone(), Value::Null)).collect();
                for (k, v) in entries {
                    let key = k.as_str().ok_or_else(|| mismatch(path, ty, k))?;
                    // Attributes we no longer know are dropped (older state shapes).
                    if let Some(aty) = attrs.get(key) {
                        out.insert(key.to_string(), from_msgpack(v, aty, &child(path, key))?);
                    }
                }
                Ok(Value::Object(out))
            }
            other => Err(mismatch(path, ty, other)),
        },
    }
}

fn parse_number_string(s: &str, ty: &Type, path: &str) -> Result<Value, CodecError> {
    if let Ok(i) = s.parse::<i64>() {
        return Ok(Value::int(i));
    }
    s.parse::<f64>()
        .map(|f| Value::Number(Number::Float(f)))
        .map_err(|_| mismatch(path, ty, s))
}

// ---------------------------------------------------------------------------------------------
// JSON (state stored by earlier provider versions, handed to UpgradeResourceState)
//
// Decoded with the type resources see (single blocks are objects), so stored state in either
// block shape, object or list of one, is accepted.

pub fn decode_json(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    let json: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| CodecError::Json(e.to_string()))?;
    from_json(&json, ty, "")
}

fn from_json(json: &serde_json::Value, ty: &Type, path: &str) -> Result<Value, CodecError> {
    use serde_json::Value as J;
    if json.is_null() {
        return Ok(Value::Null);
    }
    match (ty, json) {
        (Type::String, J::String(s)) => Ok(Value::string(s.clone())),
        // Old flat states stored scalars as strings; accept them where the type is clear.
        (Type::String, J::Number(n)) => Ok(Value::string(n.to_string())),
        (Type::String, J::Bool(b)) => Ok(Value::string(b.to_string())),
        (Type::Bool, J::Bool(b)) => Ok(Value::Bool(*b)),
        (Type::Bool, J::String(s)) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
        (Type::Number, J::Number(n)) => Ok(match n.as_i64() {
            Some(i) => Value::int(i),
            None => Value::Number(Number::Float(n.as_f64().unwrap_or(f64::NAN))),
        }),
        (Type::Number, J::String(s)) => parse_number_string(s, ty, path),
        (Type::List(e) | Type::Set(e), J::Array(items)) => {
            let values = items
                .iter()
                .enumerate()
                .map(|(i, v)| from_json(v, e, &child(path, &i.to_string())))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if matches!(ty, Type::List(_)) {
                Value::List(values)
            } else {
                Value::Set(values)
            })
        }
        (Type::Map(e), J::Object(m)) => Ok(Value::Map(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), from_json(v, e, &child(path, k))?)))
                .collect::<Result<_, CodecError>>()?,
        )),
        // A single nested block stored as a list of at most one (the wire shape, see `wire`),
        // where the schema's own type has the object: state written since that shape and state
        // written before it both load, at any depth, without a schema version bump.
        (Type::Object(_), J::Array(items)) if items.len() <= 1 => match items.first() {
            Some(item) => from_json(item, ty, &child(path, "0")),
            None => Ok(Value::Null),
        },
        (Type::Object(attrs), J::Object(m)) => {
            let mut out: BTreeMap<String, Value> =
                attrs.keys().map(|k| (k.clone(), Value::Null)).collect();
            for (k, v) in m {
                if let Some(aty) = attrs.get(k) {
                    out.insert(k.clone(), from_json(v, aty, &child(path, k))?);
                }
            }
            Ok(Value::Object(out))
        }
        (ty, other) => Err(mismatch(path, ty, other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_type() -> Type {
        Type::object([
            ("name", Type::String),
            ("partitions", Type::Number),
            ("enabled", Type::Bool),
            ("config", Type::map(Type::String)),
            ("servers", Type::list(Type::String)),
            (
                "rules",
                Type::set(Type::object([
                    ("host", Type::String),
                    ("port", Type::Number),
                ])),
            ),
        ])
    }

    fn sample() -> Value {
        let mut config = BTreeMap::new();
        config.insert("retention.ms".to_string(), Value::string("1000"));
        config.insert("cleanup.policy".to_string(), Value::Unknown);
        let rule = |h: &str, p: i64| {
            Value::Object(BTreeMap::from([
                ("host".to_string(), Value::string(h)),
                ("port".to_string(), Value::int(p)),
            ]))
        };
        Value::Object(BTreeMap::from([
            ("name".to_string(), Value::string("orders")),
            ("partitions".to_string(), Value::int(12)),
            ("enabled".to_string(), Value::Null),
            ("config".to_string(), Value::Map(config)),
            ("servers".to_string(), Value::Unknown),
            (
                "rules".to_string(),
                Value::Set(vec![rule("a", 1), rule("b", 2)]),
            ),
        ]))
    }

    #[test]
    fn msgpack_round_trip_keeps_nulls_unknowns_and_nesting() {
        let ty = config_type();
        let bytes = encode_msgpack(&sample(), &ty);
        assert_eq!(decode_msgpack(&bytes, &ty).unwrap(), sample());
    }

    #[test]
    fn unknown_is_the_fixext1_terraform_expects() {
        assert_eq!(
            encode_msgpack(&Value::Unknown, &Type::String),
            vec![0xd4, 0x00, 0x00]
        );
    }

    #[test]
    fn refined_unknown_decodes_as_unknown() {
        // fixext with type 12 and a refinement payload, as newer cores send.
        let bytes = [0xd5, EXT_REFINED_UNKNOWN as u8, 0x81, 0x01];
        assert_eq!(
            decode_msgpack(&bytes, &Type::String).unwrap(),
            Value::Unknown
        );
    }

    #[test]
    fn sets_compare_without_order() {
        let a = Value::Set(vec![Value::string("x"), Value::string("y")]);
        let b = Value::Set(vec![Value::string("y"), Value::string("x")]);
        assert_eq!(a, b);
        assert_ne!(a, Value::Set(vec![Value::string("x")]));
    }

    #[test]
    fn numbers_keep_integers_exact_and_accept_floats_and_strings() {
        let big = i64::MAX - 1;
        let bytes = encode_msgpack(&Value::int(big), &Type::Number);
        assert_eq!(
            decode_msgpack(&bytes, &Type::Number).unwrap().as_i64(),
            Some(big)
        );
        let bytes = encode_msgpack(&Value::Number(Number::Float(1.5)), &Type::Number);
        assert_eq!(
            decode_msgpack(&bytes, &Type::Number).unwrap(),
            Value::Number(Number::Float(1.5))
        );
        let mut s = Vec::new();
        rmpv::encode::write_value(&mut s, &Mp::from("12345678901234567")).unwrap();
        assert_eq!(
            decode_msgpack(&s, &Type::Number).unwrap().as_i64(),
            Some(12345678901234567)
        );
    }

    #[test]
    fn type_mismatch_names_the_path() {
        let ty = Type::object([("partitions", Type::Number)]);
        let mut bytes = Vec::new();
        rmpv::encode::write_value(
            &mut bytes,
            &Mp::Map(vec![(Mp::from("partitions"), Mp::Boolean(true))]),
        )
        .unwrap();
        let err = decode_msgpack(&bytes, &ty).unwrap_err();
        assert!(err.to_string().contains("partitions"), "{err}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(
            decode_msgpack(&[0xa5, b'a'], &Type::String).is_err(),
            "truncated string"
        );
        assert!(
            decode_msgpack(&[0x92, 0x01], &Type::list(Type::Number)).is_err(),
            "short array"
        );
        assert!(decode_json(b"{", &Type::String).is_err());
    }

    #[test]
    fn json_state_upgrade_fills_missing_and_drops_removed_attributes() {
        let ty = Type::object([
            ("name", Type::String),
            ("partitions", Type::Number),
            ("config", Type::map(Type::String)),
        ]);
        let json = br#"{"name":"t","partitions":"3","config":{"a":"b"},"removed":1}"#;
        let v = decode_json(json, &ty).unwrap();
        assert_eq!(v.get("name").as_str(), Some("t"));
        assert_eq!(v.get("partitions").as_i64(), Some(3));
        assert_eq!(
            v.get("config")
                .as_string_map()
                .unwrap()
                .get("a")
                .map(String::as_str),
            Some("b")
        );
        let bytes = encode_msgpack(&v, &ty);
        assert_eq!(decode_msgpack(&bytes, &ty).unwrap(), v);
    }

    #[test]
    fn empty_dynamic_value_is_null() {
        assert_eq!(decode_msgpack(&[], &config_type()).unwrap(), Value::Null);
    }
}
