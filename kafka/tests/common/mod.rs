//! Helpers shared by the broker-facing test binaries (each file under tests/ is its own crate,
//! so they come in as `mod common;`).

use std::time::{SystemTime, UNIX_EPOCH};

/// A peer address from `.peers/env`; panics with what to do when the peers are not set up, so
/// an ignored test run without them fails loudly instead of passing.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the peers (make peers) and `source .peers/env` first")
    })
}

/// A topic name no other test run uses (the peers may be shared and long-lived).
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("ferry-kafka-test.{prefix}.{nanos}")
}
