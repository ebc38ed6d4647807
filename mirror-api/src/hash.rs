//! The one hash of the project (64-bit FNV-1a: tiny, stable across platforms and releases,
//! not for adversarial input) and the run id derived with it.

use serde::Serialize;

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0100_0000_01b3;

/// Incremental 64-bit FNV-1a.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a::new()
    }
}

impl Fnv1a {
    pub const fn new() -> Fnv1a {
        Fnv1a(OFFSET_BASIS)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(PRIME);
        }
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// FNV-1a of one byte string.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a::new();
    h.write(bytes);
    h.finish()
}

/// What identifies a run when the user names none: the same clusters, topics and naming give
/// the same run (and so resume it), anything else a new one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunIdentity {
    pub source_bootstrap_servers: Vec<String>,
    pub target_bootstrap_servers: Vec<String>,
    pub topic_names: Vec<String>,
    pub topics_regex: Option<String>,
    pub topic_name_prefix: String,
}

/// The canonical encoding: fields in this fixed order, lists sorted and deduplicated (their
/// order says nothing about the run). Changing it changes every derived run id, so the
/// encoding carries its own version.
#[derive(Serialize)]
struct CanonicalIdentity<'a> {
    encoding: u32,
    source_bootstrap_servers: Vec<&'a str>,
    target_bootstrap_servers: Vec<&'a str>,
    topic_names: Vec<&'a str>,
    topics_regex: Option<&'a str>,
    topic_name_prefix: &'a str,
}

fn sorted(items: &[String]) -> Vec<&str> {
    let mut v: Vec<&str> = items.iter().map(String::as_str).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// `ferry-` and 12 hex digits of the FNV-1a of the identity's canonical JSON encoding.
pub fn derive_run_id(identity: &RunIdentity) -> String {
    let canonical = CanonicalIdentity {
        encoding: 1,
        source_bootstrap_servers: sorted(&identity.source_bootstrap_servers),
        target_bootstrap_servers: sorted(&identity.target_bootstrap_servers),
        topic_names: sorted(&identity.topic_names),
        topics_regex: identity.topics_regex.as_deref(),
        topic_name_prefix: &identity.topic_name_prefix,
    };
    // Serialising strings, lists and options into a Vec cannot fail.
    let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
    format!("ferry-{:012x}", fnv1a64(&bytes) & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        let mut h = Fnv1a::new();
        h.write(b"foo");
        h.write(b"bar");
        assert_eq!(h.finish(), fnv1a64(b"foobar"), "incremental = one shot");
    }

    fn identity() -> RunIdentity {
        RunIdentity {
            source_bootstrap_servers: vec!["a:9092".into(), "b:9092".into()],
            target_bootstrap_servers: vec!["msk:9098".into()],
            topic_names: vec!["orders".into(), "payments".into()],
            topics_regex: Some("app\\..*".into()),
            topic_name_prefix: "eu.".into(),
        }
    }

    #[test]
    fn run_id_is_stable() {
        let id = derive_run_id(&identity());
        // Checked independently: FNV-1a of the compact canonical JSON.
        assert_eq!(id, "ferry-fe65c087e5f4");
        assert_eq!(id.len(), "ferry-".len() + 12);
        assert!(id["ferry-".len()..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn run_id_ignores_list_order_and_duplicates() {
        let mut other = identity();
        other.source_bootstrap_servers.reverse();
        other.topic_names = vec!["payments".into(), "orders".into(), "orders".into()];
        assert_eq!(derive_run_id(&other), derive_run_id(&identity()));
    }

    #[test]
    fn run_id_differs_when_any_part_differs() {
        let base = derive_run_id(&identity());
        let changes: [fn(&mut RunIdentity); 7] = [
            |i| i.source_bootstrap_servers.push("c:9092".into()),
            |i| i.target_bootstrap_servers[0] = "msk2:9098".into(),
            |i| {
                i.topic_names.pop();
            },
            |i| i.topics_regex = None,
            |i| i.topics_regex = Some(String::new()),
            |i| i.topic_name_prefix.clear(),
            // Moving a string between fields must not collide.
            |i| {
                i.topic_names = vec!["orders".into()];
                i.topic_name_prefix = "payments".into();
            },
        ];
        let mut seen = std::collections::BTreeSet::from([base.clone()]);
        for change in changes {
            let mut i = identity();
            change(&mut i);
            let id = derive_run_id(&i);
            assert_ne!(id, base, "{i:?}");
            assert!(seen.insert(id), "two changes collide: {i:?}");
        }
    }
}
