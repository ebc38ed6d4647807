//! Results of `ferry-mirror verify`: for each translated group and partition, whether the group
//! resumes on the target at the same record it would read next on the source.
//!
//! A row serialises with both `outcome` (typed: `{"kind": "record_differs", ...}`) and
//! `result` (the same as text, "ok" when fine), so people and older readers get a sentence
//! and programs match on the kind. A row whose `outcome` this version does not know is read
//! from its `result` text.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What verification found for one group partition. Offsets named `*_record` are offsets of
/// records actually read; `target_offset` is the group's committed offset on the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VerifyOutcome {
    Ok,
    /// The group has no committed offset on the target.
    NoTargetOffset,
    /// The source has a record to resume at but the target has none from the group's offset.
    TargetMissing {
        source_record: i64,
        target_offset: i64,
    },
    /// The source is at its end but the target still has a record from the group's offset.
    TargetExtra {
        target_record: i64,
        target_offset: i64,
    },
    /// The records the group resumes at differ in key, value, headers or timestamp.
    RecordDiffers {
        source_record: i64,
        target_record: i64,
    },
    /// Same contents, but the offset map put the source record elsewhere: data is skipped or
    /// repeated between them.
    WrongPosition {
        source_record: i64,
        mapped_target: i64,
        target_record: i64,
    },
    /// A mismatch this version does not know, as its text.
    Other {
        text: String,
    },
}

impl fmt::Display for VerifyOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyOutcome::Ok => f.write_str("ok"),
            VerifyOutcome::NoTargetOffset => f.write_str("group has no offset on the target"),
            VerifyOutcome::TargetMissing {
                source_record,
                target_offset,
            } => write!(
                f,
                "source has record {source_record} but the target has nothing from {target_offset}"
            ),
            VerifyOutcome::TargetExtra {
                target_record,
                target_offset,
            } => write!(
                f,
                "source is at its end but the target has record {target_record} from {target_offset}"
            ),
            VerifyOutcome::RecordDiffers {
                source_record,
                target_record,
            } => write!(
                f,
                "record differs: source {source_record} vs target {target_record}"
            ),
            VerifyOutcome::WrongPosition {
                source_record,
                mapped_target,
                target_record,
            } => write!(
                f,
                "source {source_record} maps to target {mapped_target}, but the group resumes at {target_record}"
            ),
            VerifyOutcome::Other { text } => f.write_str(text),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "RowWire", from = "RowWire")]
pub struct VerifyRow {
    pub group: String,
    pub source_topic: String,
    pub partition: i32,
    pub source_offset: i64,
    pub target_offset: Option<i64>,
    pub outcome: VerifyOutcome,
}

impl VerifyRow {
    pub fn ok(&self) -> bool {
        self.outcome == VerifyOutcome::Ok
    }

    /// "ok", or a sentence saying what is wrong.
    pub fn result_text(&self) -> String {
        self.outcome.to_string()
    }
}

/// The JSON shape of a row.
#[derive(Serialize, Deserialize)]
struct RowWire {
    group: String,
    source_topic: String,
    partition: i32,
    source_offset: i64,
    target_offset: Option<i64>,
    result: String,
    #[serde(default)]
    outcome: Option<serde_json::Value>,
}

impl From<VerifyRow> for RowWire {
    fn from(r: VerifyRow) -> RowWire {
        RowWire {
            result: r.result_text(),
            outcome: serde_json::to_value(&r.outcome).ok(),
            group: r.group,
            source_topic: r.source_topic,
            partition: r.partition,
            source_offset: r.source_offset,
            target_offset: r.target_offset,
        }
    }
}

impl From<RowWire> for VerifyRow {
    fn from(w: RowWire) -> VerifyRow {
        let outcome = w
            .outcome
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_else(|| {
                if w.result == "ok" {
                    VerifyOutcome::Ok
                } else {
                    VerifyOutcome::Other { text: w.result }
                }
            });
        VerifyRow {
            group: w.group,
            source_topic: w.source_topic,
            partition: w.partition,
            source_offset: w.source_offset,
            target_offset: w.target_offset,
            outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(outcome: VerifyOutcome) -> VerifyRow {
        VerifyRow {
            group: "g".into(),
            source_topic: "t".into(),
            partition: 1,
            source_offset: 50,
            target_offset: Some(60),
            outcome,
        }
    }

    #[test]
    fn rows_carry_a_kind_and_a_sentence() {
        let r = row(VerifyOutcome::WrongPosition {
            source_record: 50,
            mapped_target: 52,
            target_record: 60,
        });
        assert!(!r.ok());
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["outcome"]["kind"], "wrong_position");
        assert_eq!(
            json["result"],
            "source 50 maps to target 52, but the group resumes at 60"
        );
        assert_eq!(serde_json::from_value::<VerifyRow>(json).unwrap(), r);

        let ok = row(VerifyOutcome::Ok);
        assert!(ok.ok());
        assert_eq!(serde_json::to_value(&ok).unwrap()["result"], "ok");
    }

    #[test]
    fn rows_without_a_known_outcome_are_read_from_their_text() {
        let old = r#"{"group":"g","source_topic":"t","partition":0,"source_offset":1,
            "target_offset":null,"result":"ok"}"#;
        assert!(serde_json::from_str::<VerifyRow>(old).unwrap().ok());
        let newer = r#"{"group":"g","source_topic":"t","partition":0,"source_offset":1,
            "target_offset":2,"result":"headers reordered","outcome":{"kind":"headers_reordered"}}"#;
        let r: VerifyRow = serde_json::from_str(newer).unwrap();
        assert!(!r.ok());
        assert_eq!(r.result_text(), "headers reordered");
    }
}
