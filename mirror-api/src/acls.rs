//! `ferry-mirror copy-acls`: its principal map (an argument, not a spec field: only this
//! one-off command uses it, so workers of every spec version are unaffected) and its result,
//! one row per source ACL binding that concerns the run's topics or groups.
//!
//! Bindings are plain strings as Kafka names them (`TOPIC`, `PREFIXED`, `User:alice`, `ALL`,
//! `ALLOW`): this crate knows no Kafka client.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Source principal → target principal, e.g. `{"User:old": "User:new"}`. Principals not in
/// the map are copied unchanged. Given to `copy-acls` as `--principal-map JSON` (principals
/// may hold `=` and `,`, as mutual-TLS names do, so a JSON object is the one safe syntax).
pub type PrincipalMap = BTreeMap<String, String>;

/// Whether `p` is written as Kafka principals are: `Type:name`, both parts non-empty.
pub fn principal_is_valid(p: &str) -> bool {
    p.split_once(':')
        .is_some_and(|(kind, name)| !kind.is_empty() && !name.is_empty())
}

/// Parses `--principal-map`: a JSON object of principals to principals.
pub fn parse_principal_map(text: &str) -> Result<PrincipalMap, String> {
    let map: PrincipalMap = serde_json::from_str(text).map_err(|e| {
        format!("--principal-map takes a JSON object such as {{\"User:old\": \"User:new\"}}: {e}")
    })?;
    for (from, to) in &map {
        for p in [from, to] {
            if !principal_is_valid(p) {
                return Err(format!(
                    "--principal-map: {p:?} is not a principal; write it as Kafka does, e.g. \
                     \"User:alice\""
                ));
            }
        }
    }
    Ok(map)
}

/// One ACL binding, each field as Kafka names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclText {
    pub resource_type: String,
    pub resource_name: String,
    pub pattern_type: String,
    pub principal: String,
    pub host: String,
    pub operation: String,
    pub permission: String,
}

impl fmt::Display for AclText {
    /// `ALLOW User:alice ALL on TOPIC LITERAL orders from *`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} on {} {} {} from {}",
            self.permission,
            self.principal,
            self.operation,
            self.resource_type,
            self.pattern_type,
            self.resource_name,
            self.host
        )
    }
}

/// What became of one source binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AclOutcome {
    /// The target holds the binding (created now, or already there: creating is idempotent).
    Copied,
    /// The target cluster refused to create it; `reason` is the broker's error.
    Refused,
    /// ferry did not copy it; `reason` says why (e.g. it covers topics the run does not copy).
    Skipped,
}

impl fmt::Display for AclOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AclOutcome::Copied => "copied",
            AclOutcome::Refused => "refused",
            AclOutcome::Skipped => "skipped",
        })
    }
}

/// One row of `copy-acls --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclCopyRow {
    /// The binding as the source holds it.
    pub source: AclText,
    /// The binding on the target (names prefixed and principal mapped); `None` when skipped.
    pub target: Option<AclText>,
    pub outcome: AclOutcome,
    /// Empty for copied rows.
    #[serde(default)]
    pub reason: String,
}

impl AclCopyRow {
    /// One line for state and messages: the target binding, `(from <principal>)` when mapped,
    /// and the reason when not copied.
    pub fn line(&self) -> String {
        let shown = self.target.as_ref().unwrap_or(&self.source);
        let mut s = shown.to_string();
        if shown.principal != self.source.principal {
            s.push_str(&format!(" (from {})", self.source.principal));
        }
        match self.outcome {
            AclOutcome::Copied => {}
            AclOutcome::Refused => s.push_str(&format!(": refused by the target: {}", self.reason)),
            AclOutcome::Skipped => s.push_str(&format!(": not copied: {}", self.reason)),
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(principal: &str) -> AclText {
        AclText {
            resource_type: "TOPIC".into(),
            resource_name: "orders".into(),
            pattern_type: "LITERAL".into(),
            principal: principal.into(),
            host: "*".into(),
            operation: "ALL".into(),
            permission: "ALLOW".into(),
        }
    }

    #[test]
    fn the_principal_map_is_a_json_object_of_principals() {
        let m = parse_principal_map(r#"{"User:CN=a,O=x": "User:b"}"#).unwrap();
        assert_eq!(m["User:CN=a,O=x"], "User:b");
        assert!(parse_principal_map(r#"{"alice": "User:b"}"#).is_err());
        assert!(parse_principal_map(r#"{"User:a": "User:"}"#).is_err());
        assert!(parse_principal_map("User:a=User:b").is_err());
        assert!(parse_principal_map("{}").unwrap().is_empty());
    }

    #[test]
    fn rows_read_as_one_line_and_round_trip() {
        let row = AclCopyRow {
            source: text("User:old"),
            target: Some(text("User:new")),
            outcome: AclOutcome::Refused,
            reason: "SECURITY_DISABLED".into(),
        };
        assert_eq!(
            row.line(),
            "ALLOW User:new ALL on TOPIC LITERAL orders from * (from User:old): refused by the \
             target: SECURITY_DISABLED"
        );
        let json = serde_json::to_string(&row).unwrap();
        assert!(json.contains(r#""outcome":"refused""#));
        assert_eq!(serde_json::from_str::<AclCopyRow>(&json).unwrap(), row);
        let skipped = AclCopyRow {
            source: text("User:a"),
            target: None,
            outcome: AclOutcome::Skipped,
            reason: "why".into(),
        };
        assert_eq!(
            skipped.line(),
            "ALLOW User:a ALL on TOPIC LITERAL orders from *: not copied: why"
        );
    }
}
