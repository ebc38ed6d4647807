//! The `timeouts { create = "10m" ... }` block and Go-style duration strings.

use std::time::Duration;

use super::diagnostics::{AttributePath, Diagnostics};
use super::schema::{Attribute, Block, NestedBlock};
use super::value::{Type, Value};

/// The `timeouts` block for the given operations (e.g. `["create", "update", "delete"]`).
pub fn block(operations: &[&str]) -> NestedBlock {
    let mut b = Block::new(
        "How long each operation may take, as a duration such as \"30s\", \"10m\" or \"1h30m\".",
    );
    for op in operations {
        b = b.attribute(
            Attribute::optional(op, Type::String).describe(&format!("Time limit for {op}.")),
        );
    }
    NestedBlock::single("timeouts", b)
}

/// The timeout configured for `operation` in the resource value, or `default`.
pub fn get(resource: &Value, operation: &str, default: Duration) -> Duration {
    resource
        .get("timeouts")
        .get(operation)
        .as_str()
        .and_then(|s| parse_duration(s).ok())
        .unwrap_or(default)
}

/// Reports malformed durations in the `timeouts` block, pointing at the attribute.
pub fn validate(config: &Value, operations: &[&str], diags: &mut Diagnostics) {
    for op in operations {
        if let Some(s) = config.get("timeouts").get(op).as_str()
            && let Err(e) = parse_duration(s)
        {
            diags.attribute_error(
                AttributePath::root("timeouts").attr(op),
                "Invalid duration",
                format!(
                    "{s:?} is not a duration: {e}. Write it like \"45s\", \"10m\" or \"1h30m\"."
                ),
            );
        }
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
