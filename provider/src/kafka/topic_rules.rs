//! Rules about Kafka topics shared by the topic resource and data sources.

use ferry_kafka::AdminError;
use ferry_kafka::KafkaErrorCode as RDKafkaErrorCode;

use tfplugin::{AttributePath, Diagnostics, Validator, Value};

/// Kafka's limit on topic name length.
pub const MAX_NAME_LEN: usize = 249;

/// Checks a topic name the way the broker would, so mistakes show at validate time.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a topic name cannot be empty".into());
    }
    if name == "." || name == ".." {
        return Err("\".\" and \"..\" are not allowed as topic names".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "it is {} characters long; Kafka allows at most {MAX_NAME_LEN}",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "it contains {bad:?}; only ASCII letters, digits, '.', '_' and '-' are allowed"
        ));
    }
    Ok(())
}

/// Topic config keys are lowercase words joined by dots or dashes (e.g. `retention.ms`).
pub fn check_config_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.split(['.', '-']).all(|w| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{key:?} is not a Kafka config name; they look like \"retention.ms\" or \"cleanup.policy\""
        ))
    }
}

/// The schema validator for a topic name: Kafka's rules, plus a warning on names whose
/// metrics would collide.
pub fn name_validator() -> Validator {
    Validator::custom(
        "Invalid topic name",
        "Kafka's rules: 1 to 249 ASCII letters, digits, '.', '_' and '-'.",
        |value, path, diags| {
            let Some(name) = value.as_str() else { return };
            if let Err(why) = check_name(name) {
                diags.attribute_error(
                    path.clone(),
                    "Invalid topic name",
                    format!("{name:?}: {why}."),
                );
            } else if name.contains('.') && name.contains('_') {
                diags.attribute_warning(
                    path.clone(),
                    "Topic name mixes '.' and '_'",
                    "Kafka's metric names treat '.' and '_' alike, so this name can collide with another topic's metrics.",
                );
            }
        },
    )
}

/// The schema validator for a topic's `config` map: Kafka-shaped keys, no null values.
pub fn config_validator() -> Validator {
    Validator::custom(
        "Invalid topic config name",
        "Keys are Kafka topic config names such as `retention.ms`.",
        |value, path, diags| {
            let Value::Map(entries) = value else { return };
            for (key, v) in entries {
                if let Err(why) = check_config_key(key) {
                    diags.attribute_error(path.clone().key(key), "Invalid topic config name", why);
                }
                if v.is_null() {
                    diags.attribute_error(
                        path.clone().key(key),
                        "Null topic config value",
                        "Remove the key to use the broker default instead of setting it to null.",
                    );
                }
            }
        },
    )
}

/// Turns a broker error about a topic into a diagnostic on the attribute it concerns.
pub fn report_topic_error(diags: &mut Diagnostics, summary: &str, name: &str, error: &AdminError) {
    let detail = error.to_string();
    let (path, hint) = match error.code() {
        Some(
            RDKafkaErrorCode::InvalidReplicationFactor | RDKafkaErrorCode::InvalidReplicaAssignment,
        ) => (
            Some("replication_factor"),
            "The replication factor cannot exceed the number of live brokers.".to_string(),
        ),
        Some(RDKafkaErrorCode::InvalidPartitions) => (Some("partitions"), String::new()),
        Some(RDKafkaErrorCode::InvalidConfig | RDKafkaErrorCode::PolicyViolation) => (
            Some("config"),
            "Check the key names and values against Kafka's topic configuration reference."
                .to_string(),
        ),
        Some(RDKafkaErrorCode::InvalidTopic) => (Some("name"), String::new()),
        Some(RDKafkaErrorCode::TopicAlreadyExists) => (
            Some("name"),
            format!(
                "Topic {name:?} already exists on the cluster. To manage it with Terraform, import it: \
                 terraform import <resource address> {name}"
            ),
        ),
        _ => (None, String::new()),
    };
    let detail = if hint.is_empty() {
        detail
    } else {
        format!("{detail}\n\n{hint}")
    };
    match path {
        Some(p) => diags.attribute_error(AttributePath::root(p), summary, detail),
        None => diags.error(summary, detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kafka_rules() {
        assert!(check_name("orders.v1_in-x").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("..").is_err());
        assert!(check_name("has space").unwrap_err().contains("' '"));
        assert!(check_name(&"a".repeat(250)).unwrap_err().contains("249"));
    }

    #[test]
    fn config_keys_must_look_like_kafka_configs() {
        assert!(check_config_key("retention.ms").is_ok());
        assert!(check_config_key("message.timestamp.after.max.ms").is_ok());
        assert!(check_config_key("Retention.ms").is_err());
        assert!(check_config_key("retention..ms").is_err());
        assert!(check_config_key("retention ms").is_err());
    }
}
