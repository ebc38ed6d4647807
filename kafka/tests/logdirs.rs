//! DescribeLogDirs sent to one broker at a time over librdkafka's connection (the raw-request
//! shim's node-id path), against the three-broker peer cluster C: each broker reports the
//! replicas it holds and only those, with their sizes; a broker that does not exist fails
//! within the timeout. Rerun after a librdkafka upgrade, with the reassignment test in
//! broker.rs, since the shim depends on librdkafka internals.
//!
//! Ignored by default (`cargo test --workspace` runs before the peers start). Run with the peers
//! up: `source .peers/env && cargo test -p ferry-kafka --test logdirs -- --ignored`.

use std::time::Duration;

use ferry_kafka::{Admin, ConnectionConfig, NewTopic, OngoingReassignment, write_keyed};

mod common;
use common::{env, unique};

const TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::test]
#[ignore = "needs the three-broker Kafka peer C: make peers"]
async fn each_broker_reports_the_replicas_it_holds() {
    let conn = ConnectionConfig::plaintext(&env("FERRY_KAFKA_C"));
    let admin = Admin::connect(&conn).await.unwrap();
    let brokers: Vec<i32> = admin
        .brokers()
        .await
        .unwrap()
        .iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(brokers.len(), 3, "{brokers:?}");
    let name = unique("logdirs");
    let topic = NewTopic {
        name: name.clone(),
        partitions: 3,
        replication_factor: Some(1),
        config: Default::default(),
    };
    admin.create_topic(&topic, false).await.unwrap();
    admin
        .wait_until_topic_ready(&name, 3, TIMEOUT)
        .await
        .unwrap();
    // Partition 0 gets 200 records of 1 KiB, the others stay empty.
    let records: Vec<(String, Option<Vec<u8>>)> = (0..200)
        .map(|i| (format!("k{i}"), Some(vec![b'x'; 1024])))
        .collect();
    write_keyed(&conn, &name, 0, &records, TIMEOUT)
        .await
        .unwrap();

    let layout = admin.topic_layout(&name).await.unwrap().unwrap();
    let sizes = admin
        .replica_log_sizes(&name, &[0, 1, 2], &brokers)
        .await
        .unwrap();
    for p in &layout.partitions {
        let holder = p.replicas[0];
        for b in &brokers {
            let size = sizes.get(&(*b, p.id));
            if *b == holder {
                let size = *size.unwrap_or_else(|| panic!("broker {b} holds {}-{}", name, p.id));
                if p.id == 0 {
                    assert!(size > 200 * 1024, "partition 0 holds 200 KiB: {size}");
                } else {
                    assert_eq!(size, 0, "partition {} is empty", p.id);
                }
            } else {
                assert_eq!(size, None, "broker {b} does not hold {}-{}", name, p.id);
            }
        }
    }

    // As if partition 0 were moving to a second broker that has nothing yet: all of it is left.
    let holder = layout.partitions[0].replicas[0];
    let other = *brokers.iter().find(|b| **b != holder).unwrap();
    let moving = OngoingReassignment {
        topic: name.clone(),
        partition: 0,
        replicas: vec![holder, other],
        adding: vec![other],
        removing: vec![],
    };
    assert_eq!(
        ferry_kafka::reassign_progress::bytes_left(&[moving], &sizes),
        sizes.get(&(holder, 0)).copied()
    );

    // A broker id the cluster does not have: an error, within the connection's timeout.
    let started = std::time::Instant::now();
    let err = admin
        .replica_log_sizes(&name, &[0], &[4242])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("4242"), "{err}");
    assert!(
        started.elapsed() < ConnectionConfig::DEFAULT_TIMEOUT * 3,
        "bounded by the timeout"
    );
    admin.delete_topic(&name).await.unwrap();
}
