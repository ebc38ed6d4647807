//! `ferry-mirror copy-acls`: copies the source ACL bindings that concern the run's topics and
//! translated groups to the target, as they are (ALL stays ALL, DENY stays DENY, hosts kept),
//! with principals mapped, and reports every binding it considered.
//!
//! Which bindings (the rule, also in docs/resources/mirror.md):
//! - TOPIC and GROUP bindings only; CLUSTER and TRANSACTIONAL_ID bindings are not the run's.
//! - LITERAL on a selected topic (a group the spec selects): copied, the topic renamed with
//!   `topic_name_prefix`. LITERAL on anything else: not the run's, not reported.
//! - PREFIXED, and the LITERAL wildcard `*`: the source topics (groups) it applies to are
//!   counted. None selected: not the run's. All selected: copied (a prefix gains
//!   `topic_name_prefix`; `*` stays `*`). Some selected and some not: skipped, naming topics
//!   it would also cover, because on the source it grants access to data the run does not
//!   copy, and the user should decide.
//! - Groups: only with `consumer_groups_regex`; the source groups are those the source lists,
//!   less the runtime's own (`ferry-mirror.` prefix). Group names are the same on the target.
//!
//! Creating a binding that exists is not an error in Kafka, so a second run reports the same
//! rows and creates nothing new. Each binding is created by itself so that a refusal is the
//! broker's answer about that binding.

use std::time::Duration;

use anyhow::{Context, Result};
use ferry_kafka::{
    AclBinding, AclFilter, AclPatternType, AclResourceType, Admin, AdminError, ConnectionConfig,
};
use ferry_mirror_api::acls::{AclCopyRow, AclOutcome, AclText, PrincipalMap};
use ferry_mirror_api::spec::{INTERNAL_GROUP_PREFIX, Spec};
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::clients::reader_config;

/// What exists on the source, against which prefixes and wildcards are counted.
#[derive(Debug, Default)]
pub(crate) struct SourceNames {
    /// Every non-internal source topic.
    pub topics: Vec<String>,
    /// Every source consumer group but the runtime's own.
    pub groups: Vec<String>,
}

/// What to do with one source binding.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Not about the run's topics or groups: left alone and not reported.
    NotTheRuns,
    /// Reported as skipped, with ferry's reason.
    Skip(String),
    /// Create this binding on the target.
    Copy(AclBinding),
}

/// The kind of resource (for messages), the source's names of that kind, and the selection.
type Resources<'a> = (&'static str, &'a [String], &'a dyn Fn(&str) -> bool);

/// How many names a skip reason lists.
const NAMED: usize = 5;

/// The rule of the module docs for one binding.
pub(crate) fn decide(
    spec: &Spec,
    names: &SourceNames,
    map: &PrincipalMap,
    b: &AclBinding,
) -> Decision {
    let (kind, existing, selects): Resources<'_> = match b.resource_type {
        AclResourceType::Topic => ("topic", &names.topics, &|n| spec.selects_topic(n)),
        AclResourceType::Group => {
            if spec.consumer_groups_regex.is_none() {
                return Decision::NotTheRuns;
            }
            ("group", &names.groups, &|n| spec.selects_group(n))
        }
        AclResourceType::Cluster | AclResourceType::TransactionalId => {
            return Decision::NotTheRuns;
        }
    };
    let wildcard = b.pattern_type == AclPatternType::Literal && b.resource_name == "*";
    if b.pattern_type == AclPatternType::Literal && !wildcard {
        if !selects(&b.resource_name) {
            return Decision::NotTheRuns;
        }
    } else {
        let covered: Vec<&String> = existing
            .iter()
            .filter(|n| wildcard || n.starts_with(&b.resource_name))
            .collect();
        let (taken, left): (Vec<&String>, Vec<&String>) =
            covered.into_iter().partition(|n| selects(n));
        if taken.is_empty() {
            return Decision::NotTheRuns;
        }
        if !left.is_empty() {
            let shown: Vec<&str> = left.iter().take(NAMED).map(|s| s.as_str()).collect();
            let more = if left.len() > NAMED {
                format!(" and {} more", left.len() - NAMED)
            } else {
                String::new()
            };
            let what = if wildcard {
                "the wildcard".to_string()
            } else {
                format!("the prefix {:?}", b.resource_name)
            };
            return Decision::Skip(format!(
                "{what} also covers source {kind}s the mirror does not copy ({}{more}); \
                 create the binding on the target yourself if it should apply there",
                shown.join(", ")
            ));
        }
    }
    let mut copy = b.clone();
    if b.resource_type == AclResourceType::Topic && !wildcard {
        copy.resource_name = spec.target_topic(&b.resource_name);
    }
    if let Some(to) = map.get(&b.principal) {
        copy.principal = to.clone();
    }
    Decision::Copy(copy)
}

pub(crate) fn text(b: &AclBinding) -> AclText {
    AclText {
        resource_type: b.resource_type.name().to_string(),
        resource_name: b.resource_name.clone(),
        pattern_type: b.pattern_type.name().to_string(),
        principal: b.principal.clone(),
        host: b.host.clone(),
        operation: b.operation.name().to_string(),
        permission: b.permission.name().to_string(),
    }
}

/// Source groups, but the runtime's own.
fn source_groups(source: &ConnectionConfig, spec: &Spec, timeout: Duration) -> Result<Vec<String>> {
    let reader: BaseConsumer = crate::connect::create(&reader_config(
        source,
        &format!("{}.reader", spec.worker_group()),
    ))?;
    let list = reader
        .fetch_group_list(None, timeout)
        .context("listing source consumer groups")?;
    let mut names: Vec<String> = list
        .groups()
        .iter()
        .map(|g| g.name().to_string())
        .filter(|n| !n.starts_with(INTERNAL_GROUP_PREFIX))
        .collect();
    names.sort();
    Ok(names)
}

/// Copies the run's bindings; one row per binding considered, in source order.
pub(crate) async fn copy_acls(
    spec: &Spec,
    source: &ConnectionConfig,
    target: &ConnectionConfig,
    map: &PrincipalMap,
    timeout: Duration,
) -> Result<Vec<AclCopyRow>> {
    let src = Admin::connect(source).await.context("source cluster")?;
    let bindings = src
        .describe_acls(&AclFilter::default())
        .await
        .context("listing the source cluster's ACLs")?;
    let mut names = SourceNames {
        topics: src.topic_names(false).await?,
        groups: Vec::new(),
    };
    if spec.consumer_groups_regex.is_some() {
        let (s, sp) = (source.clone(), spec.clone());
        names.groups = tokio::task::spawn_blocking(move || source_groups(&s, &sp, timeout))
            .await
            .context("a blocking task failed")??;
    }
    let decisions: Vec<(AclBinding, Decision)> = bindings
        .into_iter()
        .map(|b| {
            let d = decide(spec, &names, map, &b);
            (b, d)
        })
        .filter(|(_, d)| *d != Decision::NotTheRuns)
        .collect();
    let mut dst = None;
    let mut rows = Vec::with_capacity(decisions.len());
    for (b, d) in decisions {
        let row = match d {
            Decision::NotTheRuns => continue,
            Decision::Skip(reason) => AclCopyRow {
                source: text(&b),
                target: None,
                outcome: AclOutcome::Skipped,
                reason,
            },
            Decision::Copy(copy) => {
                if dst.is_none() {
                    dst = Some(Admin::connect(target).await.context("target cluster")?);
                }
                let admin = dst.as_ref().expect("connected above");
                let (outcome, reason) = match admin.create_acls(std::slice::from_ref(&copy)).await {
                    Ok(()) => (AclOutcome::Copied, String::new()),
                    // The broker answered about this binding.
                    Err(e @ AdminError::Kafka { .. }) => (AclOutcome::Refused, e.to_string()),
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("creating {} on the target", text(&copy)));
                    }
                };
                AclCopyRow {
                    source: text(&b),
                    target: Some(text(&copy)),
                    outcome,
                    reason,
                }
            }
        };
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_kafka::{AclOperation, AclPermission};

    fn spec(groups: Option<&str>, prefix: &str) -> Spec {
        let mut s: Spec = serde_json::from_value(serde_json::json!({
            "version": 1,
            "run_id": "r",
            "source": {"bootstrap_servers": ["s:9092"]},
            "target": {"bootstrap_servers": ["t:9092"]},
            "topics": {"names": ["orders"], "include_regex": "app-.*"},
        }))
        .unwrap();
        s.consumer_groups_regex = groups.map(str::to_string);
        s.topic_name_prefix = prefix.to_string();
        s
    }

    fn names() -> SourceNames {
        SourceNames {
            topics: ["orders", "app-a", "app-b", "audit", "ord"]
                .map(String::from)
                .to_vec(),
            groups: ["billing-1", "billing-2", "other"]
                .map(String::from)
                .to_vec(),
        }
    }

    fn acl(t: AclResourceType, name: &str, p: AclPatternType, principal: &str) -> AclBinding {
        AclBinding {
            resource_type: t,
            resource_name: name.into(),
            pattern_type: p,
            principal: principal.into(),
            host: "*".into(),
            operation: AclOperation::All,
            permission: AclPermission::Allow,
        }
    }

    use AclPatternType::{Literal, Prefixed};
    use AclResourceType::{Cluster, Group, Topic};

    #[test]
    fn literal_topics_in_the_selection_are_copied_renamed_and_all_stays_all() {
        let s = spec(None, "dr.");
        let b = acl(Topic, "orders", Literal, "User:a");
        let mut want = b.clone();
        want.resource_name = "dr.orders".into();
        assert_eq!(
            decide(&s, &names(), &PrincipalMap::new(), &b),
            Decision::Copy(want.clone())
        );
        assert_eq!(want.operation, AclOperation::All);
        // Not selected: not the run's, whatever the prefix of names.
        let other = acl(Topic, "audit", Literal, "User:a");
        assert_eq!(
            decide(&s, &names(), &PrincipalMap::new(), &other),
            Decision::NotTheRuns
        );
    }

    #[test]
    fn deny_and_hosts_are_kept_and_principals_mapped() {
        let s = spec(None, "");
        let mut b = acl(Topic, "app-a", Literal, "User:old");
        b.permission = AclPermission::Deny;
        b.host = "10.0.0.1".into();
        let map = PrincipalMap::from([("User:old".to_string(), "User:new".to_string())]);
        let Decision::Copy(c) = decide(&s, &names(), &map, &b) else {
            panic!("not copied");
        };
        assert_eq!(c.principal, "User:new");
        assert_eq!(c.permission, AclPermission::Deny);
        assert_eq!(c.host, "10.0.0.1");
        // Unmapped principals stay.
        let Decision::Copy(c) =
            decide(&s, &names(), &map, &acl(Topic, "orders", Literal, "User:x"))
        else {
            panic!("not copied");
        };
        assert_eq!(c.principal, "User:x");
    }

    #[test]
    fn prefixes_and_wildcards_are_copied_only_when_everything_they_cover_is() {
        let s = spec(None, "dr.");
        let m = PrincipalMap::new();
        // app- covers app-a and app-b, both selected.
        let Decision::Copy(c) = decide(&s, &names(), &m, &acl(Topic, "app-", Prefixed, "User:a"))
        else {
            panic!("not copied");
        };
        assert_eq!(
            (c.resource_name.as_str(), c.pattern_type),
            ("dr.app-", Prefixed)
        );
        // "ord" covers orders (selected) and ord (not).
        let Decision::Skip(why) = decide(&s, &names(), &m, &acl(Topic, "ord", Prefixed, "User:a"))
        else {
            panic!("not skipped");
        };
        assert!(why.contains("(ord)"), "{why}");
        // "aud" covers only audit: not the run's.
        assert_eq!(
            decide(&s, &names(), &m, &acl(Topic, "aud", Prefixed, "User:a")),
            Decision::NotTheRuns
        );
        // A prefix covering nothing on the source is not the run's.
        assert_eq!(
            decide(&s, &names(), &m, &acl(Topic, "zzz", Prefixed, "User:a")),
            Decision::NotTheRuns
        );
        // The wildcard covers audit and ord too.
        let Decision::Skip(why) = decide(&s, &names(), &m, &acl(Topic, "*", Literal, "User:a"))
        else {
            panic!("not skipped");
        };
        assert!(
            why.contains("the wildcard") && why.contains("audit"),
            "{why}"
        );
        // With every topic selected, the wildcard is copied as the wildcard.
        let mut all = spec(None, "dr.");
        all.topics.include_regex = Some(".*".into());
        assert_eq!(
            decide(&all, &names(), &m, &acl(Topic, "*", Literal, "User:a")),
            Decision::Copy(acl(Topic, "*", Literal, "User:a"))
        );
    }

    #[test]
    fn groups_follow_consumer_groups_regex_and_keep_their_names() {
        let m = PrincipalMap::new();
        let b = acl(Group, "billing-1", Literal, "User:a");
        assert_eq!(
            decide(&spec(None, ""), &names(), &m, &b),
            Decision::NotTheRuns
        );
        let s = spec(Some("billing-.*"), "dr.");
        assert_eq!(decide(&s, &names(), &m, &b), Decision::Copy(b.clone()));
        let p = acl(Group, "billing-", Prefixed, "User:a");
        assert_eq!(decide(&s, &names(), &m, &p), Decision::Copy(p.clone()));
        let Decision::Skip(why) = decide(&s, &names(), &m, &acl(Group, "*", Literal, "User:a"))
        else {
            panic!("not skipped");
        };
        assert!(why.contains("groups") && why.contains("other"), "{why}");
        // The runtime's own groups are not counted, nor copied.
        let own = acl(Group, "ferry-mirror.r", Literal, "User:a");
        let s2 = spec(Some(".*"), "");
        assert_eq!(decide(&s2, &names(), &m, &own), Decision::NotTheRuns);
    }

    #[test]
    fn cluster_bindings_are_not_the_runs() {
        let s = spec(Some(".*"), "");
        let b = acl(Cluster, "kafka-cluster", Literal, "User:a");
        assert_eq!(
            decide(&s, &names(), &PrincipalMap::new(), &b),
            Decision::NotTheRuns
        );
    }

    #[test]
    fn many_uncovered_names_are_counted() {
        let s = spec(None, "");
        let mut n = names();
        n.topics.extend((0..8).map(|i| format!("app{i}")));
        n.topics.push("app-a".into());
        let Decision::Skip(why) = decide(
            &s,
            &n,
            &PrincipalMap::new(),
            &acl(Topic, "app", Prefixed, "User:a"),
        ) else {
            panic!("not skipped");
        };
        assert!(why.contains("and 3 more"), "{why}");
    }
}
