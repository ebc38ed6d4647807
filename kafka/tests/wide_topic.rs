//! Creating a topic wider than one KRaft request allows, on the three-broker peer cluster C.
//!
//! A binary of its own: creating 10,001 partitions keeps C's brokers busy for tens of seconds,
//! and the other broker tests (which cargo runs in parallel within a binary) saw their own new
//! topics late on C meanwhile. Binaries run one after another.
//!
//! Ignored by default (`cargo test --workspace` runs before the peers start). Run with the peers
//! up: `source .peers/env && cargo test -p ferry-kafka --test wide_topic -- --ignored`.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_kafka::{Admin, ConnectionConfig, NewTopic};

mod common;
use common::{env, unique};

/// Cluster C: a topic wider than one KRaft request allows (10,000 metadata records) is created
/// in steps and ends with every partition led. Asking for it in one request is refused, which
/// is why the steps exist; the refusal is checked too, so a broker that lifts the limit shows
/// up here.
#[tokio::test]
#[ignore = "needs a running Kafka peer: make peers"]
async fn a_topic_wider_than_one_request_is_created_in_steps() {
    const WIDE: i32 = 10_001;
    let admin = Admin::connect(&ConnectionConfig::plaintext(&env("FERRY_KAFKA_C")))
        .await
        .unwrap();
    let name = unique("wide");
    let topic = NewTopic {
        name: name.clone(),
        partitions: WIDE,
        replication_factor: Some(1),
        config: BTreeMap::new(),
    };
    let refused = admin
        .create_topic_in_one_request(&topic, true)
        .await
        .expect_err("KRaft refuses 10,001 partitions in one request");
    assert!(
        refused
            .to_string()
            .to_lowercase()
            .contains("excessively large"),
        "{refused}"
    );

    admin.create_topic(&topic, false).await.unwrap();
    let described = admin
        .wait_until_topic_ready(&name, WIDE, Duration::from_secs(300))
        .await;
    admin.delete_topic(&name).await.unwrap();
    // Leave cluster C settled for the tests that run after this one.
    admin
        .wait_until_topic_gone(&name, Duration::from_secs(120))
        .await
        .unwrap();
    let described = described.unwrap();
    assert_eq!(described.partitions, WIDE);
    assert_eq!(described.leaderless_partitions, 0);
}
