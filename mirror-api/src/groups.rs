//! Results of consumer-group translation: for each selected source group, where it resumes on
//! the target and whether its offsets were committed there.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupState {
    /// Offsets committed on the target and read back.
    Translated,
    /// The copy has not reached the group's offset on some partition yet.
    Pending,
    /// The group has members on the target; its offsets were not changed.
    ActiveOnTarget,
    /// The group has no committed offsets on the selected topics.
    NoOffsets,
    /// Committing on the target failed; `detail` says why.
    Failed,
    /// Written by a newer runtime.
    #[serde(other)]
    Unknown,
}

impl GroupState {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Translated => "translated",
            GroupState::Pending => "pending",
            GroupState::ActiveOnTarget => "active_on_target",
            GroupState::NoOffsets => "no_offsets",
            GroupState::Failed => "failed",
            GroupState::Unknown => "unknown",
        }
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPartition {
    pub source_topic: String,
    pub target_topic: String,
    pub partition: i32,
    pub source_offset: i64,
    /// Where the group resumes on the target; `None` while pending.
    pub target_offset: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupResult {
    pub group: String,
    pub state: GroupState,
    #[serde(default)]
    pub detail: String,
    #[serde(default)]
    pub partitions: Vec<GroupPartition>,
}

impl GroupResult {
    pub fn new(group: impl Into<String>, state: GroupState) -> GroupResult {
        GroupResult {
            group: group.into(),
            state,
            detail: String::new(),
            partitions: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_as_todays_strings() {
        for (state, text) in [
            (GroupState::Translated, "translated"),
            (GroupState::Pending, "pending"),
            (GroupState::ActiveOnTarget, "active_on_target"),
            (GroupState::NoOffsets, "no_offsets"),
            (GroupState::Failed, "failed"),
        ] {
            assert_eq!(serde_json::to_value(state).unwrap(), text);
            assert_eq!(
                serde_json::from_value::<GroupState>(text.into()).unwrap(),
                state
            );
            assert_eq!(state.to_string(), text);
        }
        assert_eq!(
            serde_json::from_value::<GroupState>("merged".into()).unwrap(),
            GroupState::Unknown
        );
    }
}
