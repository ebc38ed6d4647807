//! Pure generation: resource names for topic names, HCL for topics, import blocks and the
//! `terraform import` script. No Kafka here, so all of it is unit-tested.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// One topic as read from the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub name: String,
    pub partitions: usize,
    pub replication_factor: usize,
    /// Only the topic's own overrides (DescribeConfigs source DYNAMIC_TOPIC_CONFIG).
    pub config: BTreeMap<String, String>,
}

/// What to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `Some(name)`: one `ferry_topic.<name>` with `for_each` over a map of every topic.
    pub for_each: Option<String>,
}

/// A Terraform identifier for a topic name: letters, digits, `_` and `-`, starting with a
/// letter or `_`. Other characters (Kafka allows `.`) become `_`; a name starting with a digit
/// or `-` gets a `t_` prefix.
pub fn sanitise(topic: &str) -> String {
    let mut out: String = topic
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert_str(0, "t_");
    }
    out
}

/// 32-bit FNV-1a: a fixed, dependency-free hash, so suffixes never change between releases.
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Resource names for topic names, unique and stable: a topic keeps the sanitised name unless
/// another topic sanitises to the same one; then the topic whose name *is* that name (or, if
/// none is, the first in byte order) keeps it and the others get `_` + 8 hex digits of a hash
/// of their own name. A name depends only on the topics it collides with.
pub fn resource_names(topics: &[&str]) -> HashMap<String, String> {
    let mut groups: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for t in topics {
        groups.entry(sanitise(t)).or_default().push(t);
    }
    let mut out = HashMap::with_capacity(topics.len());
    let mut taken: std::collections::HashSet<String> = groups.keys().cloned().collect();
    for (base, mut members) in groups {
        members.sort();
        members.dedup();
        let keeper = members.iter().position(|t| *t == base).unwrap_or(0);
        for (i, t) in members.iter().enumerate() {
            if i == keeper {
                out.insert(t.to_string(), base.clone());
                continue;
            }
            let mut name = format!("{base}_{:08x}", fnv1a(t));
            let mut n = 2;
            while taken.contains(&name) {
                name = format!("{base}_{:08x}_{n}", fnv1a(t));
                n += 1;
            }
            taken.insert(name.clone());
            out.insert(t.to_string(), name);
        }
    }
    out
}

/// An HCL quoted string: escapes, and `${` / `%{` so nothing is read as a template.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A string in single quotes for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

fn config_lines(out: &mut String, config: &BTreeMap<String, String>, indent: &str) {
    let width = config.keys().map(|k| quote(k).len()).max().unwrap_or(0);
    for (k, v) in config {
        let _ = writeln!(out, "{indent}{:width$} = {}", quote(k), quote(v));
    }
}

const HEADER: &str = "# Written by ferry-import from the topics of a Kafka cluster. `config` holds only each\n\
                      # topic's own overrides; broker defaults are left out.\n";

/// The address of a topic's resource.
fn address(layout: &Layout, names: &HashMap<String, String>, topic: &str) -> String {
    match &layout.for_each {
        Some(r) => format!("ferry_topic.{r}[{}]", quote(topic)),
        None => format!("ferry_topic.{}", names[topic]),
    }
}

/// Everything written, for the topics given (already filtered).
pub struct Output {
    pub topics_tf: String,
    pub imports_tf: String,
    pub import_sh: String,
}

pub fn render(topics: &[Topic], layout: &Layout) -> Output {
    let mut topics: Vec<&Topic> = topics.iter().collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let names = resource_names(&topics.iter().map(|t| t.name.as_str()).collect::<Vec<_>>());

    let mut tf = String::from(HEADER);
    match &layout.for_each {
        None => {
            for t in &topics {
                let _ = writeln!(tf, "\nresource \"ferry_topic\" \"{}\" {{", names[&t.name]);
                let _ = writeln!(tf, "  name               = {}", quote(&t.name));
                let _ = writeln!(tf, "  partitions         = {}", t.partitions);
                let _ = writeln!(tf, "  replication_factor = {}", t.replication_factor);
                if !t.config.is_empty() {
                    tf.push_str("\n  config = {\n");
                    config_lines(&mut tf, &t.config, "    ");
                    tf.push_str("  }\n");
                }
                tf.push_str("}\n");
            }
        }
        Some(r) => {
            // Topics without overrides get no `config`: state has none after import, and an
            // empty map would be a change.
            let _ = writeln!(tf, "\nlocals {{\n  ferry_{r} = {{");
            for t in &topics {
                let _ = writeln!(
                    tf,
                    "    {} = {{ partitions = {}, replication_factor = {} }}",
                    quote(&t.name),
                    t.partitions,
                    t.replication_factor
                );
            }
            tf.push_str("  }\n\n");
            let _ = writeln!(tf, "  ferry_{r}_config = {{");
            for t in topics.iter().filter(|t| !t.config.is_empty()) {
                let _ = writeln!(tf, "    {} = {{", quote(&t.name));
                config_lines(&mut tf, &t.config, "      ");
                tf.push_str("    }\n");
            }
            tf.push_str("  }\n}\n");
            let _ = write!(
                tf,
                "\nresource \"ferry_topic\" \"{r}\" {{\n  for_each = local.ferry_{r}\n\n  \
                 name               = each.key\n  partitions         = each.value.partitions\n  \
                 replication_factor = each.value.replication_factor\n  \
                 config             = lookup(local.ferry_{r}_config, each.key, null)\n}}\n"
            );
        }
    }

    let mut imports = String::from(
        "# Import blocks for OpenTofu and Terraform 1.5 or later: `plan` shows the imports, `apply`\n\
         # records them. Delete this file afterwards (or keep it: imported blocks are no-ops).\n",
    );
    let mut sh = String::from(
        "#!/bin/sh\n# Written by ferry-import: `terraform import` for every topic, for Terraform before 1.5\n\
         # (whose configuration must not contain import blocks). TERRAFORM picks the binary.\n\
         set -eu\nTF=\"${TERRAFORM:-terraform}\"\n",
    );
    for t in &topics {
        let addr = address(layout, &names, &t.name);
        let _ = writeln!(
            imports,
            "\nimport {{\n  to = {addr}\n  id = {}\n}}",
            quote(&t.name)
        );
        let _ = writeln!(
            sh,
            "\"$TF\" import -input=false {} {}",
            shell_quote(&addr),
            shell_quote(&t.name)
        );
    }
    Output {
        topics_tf: tf,
        imports_tf: imports,
        import_sh: sh,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_identifier(s: &str) -> bool {
        s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }

    #[test]
    fn sanitised_names_are_identifiers() {
        for (topic, want) in [
            ("orders", "orders"),
            ("orders.v1", "orders_v1"),
            ("my-topic", "my-topic"),
            ("1st", "t_1st"),
            ("-x", "t_-x"),
            ("_private", "_private"),
            (".", "_"),
            ("Orders", "Orders"),
        ] {
            assert_eq!(sanitise(topic), want);
            assert!(is_identifier(&sanitise(topic)), "{topic}");
        }
    }

    #[test]
    fn collisions_get_hash_suffixes_and_names_are_stable() {
        let names = resource_names(&["a.b", "a_b", "a-b", "1x", "t_1x"]);
        assert_eq!(
            names["a_b"], "a_b",
            "the topic named like the identifier keeps it"
        );
        assert_eq!(names["t_1x"], "t_1x");
        assert_eq!(names["a-b"], "a-b");
        assert_ne!(names["a.b"], names["a_b"]);
        assert!(names["a.b"].starts_with("a_b_") && names["a.b"].len() == "a_b_".len() + 8);
        assert!(names["1x"].starts_with("t_1x_"));
        let unique: std::collections::HashSet<_> = names.values().collect();
        assert_eq!(unique.len(), names.len());
        // The same collision gives the same names whatever else is on the cluster.
        let again = resource_names(&["zzz", "a_b", "a.b", "other"]);
        assert_eq!(again["a.b"], names["a.b"]);
        assert_eq!(resource_names(&["a.b"])["a.b"], "a_b");
        for n in names.values() {
            assert!(is_identifier(n), "{n}");
        }
    }

    #[test]
    fn a_sanitised_name_taken_by_a_hash_suffix_still_gets_a_unique_name() {
        let h = format!("a_b_{:08x}", fnv1a("a.b"));
        let names = resource_names(&["a.b", "a_b", &h]);
        let unique: std::collections::HashSet<_> = names.values().collect();
        assert_eq!(unique.len(), 3, "{names:?}");
    }

    #[test]
    fn quoting_escapes_templates_and_specials() {
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("${x} %{y} $5"), r#""$${x} %%{y} $5""#);
        assert_eq!(quote("a\nb\u{1}"), r#""a\nb\u0001""#);
        assert_eq!(shell_quote("it's"), r#"'it'\''s'"#);
    }

    fn topic(name: &str, config: &[(&str, &str)]) -> Topic {
        Topic {
            name: name.into(),
            partitions: 3,
            replication_factor: 1,
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn per_topic_resources_with_imports_and_script() {
        let out = render(
            &[
                topic("orders.v1", &[("retention.ms", "1000")]),
                topic("1st", &[]),
            ],
            &Layout { for_each: None },
        );
        assert!(
            out.topics_tf
                .contains("resource \"ferry_topic\" \"orders_v1\" {")
        );
        assert!(out.topics_tf.contains("\"retention.ms\" = \"1000\""));
        assert!(
            out.topics_tf
                .contains("resource \"ferry_topic\" \"t_1st\" {")
        );
        assert_eq!(
            out.topics_tf.matches("config").count(),
            2,
            "{}",
            out.topics_tf
        ); // header + one
        assert!(
            out.imports_tf
                .contains("to = ferry_topic.orders_v1\n  id = \"orders.v1\"")
        );
        assert!(
            out.import_sh
                .contains("\"$TF\" import -input=false 'ferry_topic.t_1st' '1st'\n")
        );
    }

    #[test]
    fn for_each_keys_by_topic_name() {
        let out = render(
            &[
                topic("a.b", &[("cleanup.policy", "compact")]),
                topic("c", &[]),
            ],
            &Layout {
                for_each: Some("topics".into()),
            },
        );
        assert!(out.topics_tf.contains("for_each = local.ferry_topics"));
        assert!(
            out.topics_tf
                .contains("\"a.b\" = { partitions = 3, replication_factor = 1 }")
        );
        assert!(out.imports_tf.contains("to = ferry_topic.topics[\"a.b\"]"));
        assert!(out.import_sh.contains("'ferry_topic.topics[\"c\"]' 'c'"));
    }
}
