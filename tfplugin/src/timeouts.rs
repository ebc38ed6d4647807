//! The `timeouts { create = "10m" ... }` block and Go-style duration strings.

use std::time::Duration;

use super::model::{Model, Tf};
use super::schema::{Attribute, Block, NestedBlock, Validator};
use super::value::Type;

/// The `timeouts { create, update, delete }` block of a resource.
pub fn block() -> NestedBlock {
    let mut b = Block::new(
        "How long each operation may take, as a duration such as \"30s\", \"10m\" or \"1h30m\".",
    );
    for op in ["create", "update", "delete"] {
        b = b.attribute(
            Attribute::optional(op, Type::String)
                .describe(&format!("Time limit for {op}."))
                .validate(Validator::duration("Invalid duration")),
        );
    }
    NestedBlock::single("timeouts", b)
}

/// The `timeouts` block's model.
#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct Timeouts {
    pub create: Tf<String>,
    pub update: Tf<String>,
    pub delete: Tf<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl Timeouts {
    /// The configured limit for `operation` in a resource's `timeouts` block, or `default`.
    pub fn get(block: &Tf<Timeouts>, operation: Operation, default: Duration) -> Duration {
        let Some(t) = block.known() else {
            return default;
        };
        let text = match operation {
            Operation::Create => &t.create,
            Operation::Update => &t.update,
            Operation::Delete => &t.delete,
        };
        text.known()
            .and_then(|s| parse_duration(s).ok())
            .unwrap_or(default)
    }
}

/// Parses a Go-style duration: one or more `<number><unit>` with units ms, s, m, h.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty".into());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit after {rest:?}"))?;
        if digits == 0 {
            return Err(format!("expected a number at {rest:?}"));
        }
        let number: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("bad number {:?}", &rest[..digits]))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => return Err(format!("unknown unit {other:?} (use ms, s, m or h)")),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_limits_win_over_defaults() {
        let t = Tf::Known(Timeouts {
            create: "10m".into(),
            ..Timeouts::default()
        });
        let d = Duration::from_secs(1);
        assert_eq!(
            Timeouts::get(&t, Operation::Create, d),
            Duration::from_secs(600)
        );
        assert_eq!(Timeouts::get(&t, Operation::Delete, d), d);
        assert_eq!(Timeouts::get(&Tf::Null, Operation::Create, d), d);
        crate::model::check_model_matches::<Timeouts>(&block().block).unwrap();
    }

    #[test]
    fn parses_go_style_durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
    }

    #[test]
    fn rejects_malformed_durations_with_a_reason() {
        assert!(parse_duration("").is_err());
        assert!(parse_duration("10").unwrap_err().contains("unit"));
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("m").is_err());
    }
}
