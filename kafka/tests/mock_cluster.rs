//! The record-level operations against librdkafka's in-process mock cluster: real client code,
//! real requests, no broker needed (so these run with the unit tests). The mock has no
//! transactions markers to skip or compaction; tests/broker.rs covers those on a real broker.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferry_kafka::{
    ConnectionConfig, KafkaClientError, end_offsets, read_latest_by_key, write_keyed,
};
use rdkafka::mocking::MockCluster;

const TIMEOUT: Duration = Duration::from_secs(10);

fn mock() -> (
    MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    ConnectionConfig,
) {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let conn = ConnectionConfig::plaintext(&cluster.bootstrap_servers());
    (cluster, conn)
}

fn rec(key: &str, value: Option<&str>) -> (String, Option<Vec<u8>>) {
    (key.to_string(), value.map(|v| v.as_bytes().to_vec()))
}

#[tokio::test]
async fn written_records_read_back_as_latest_per_key() {
    let (cluster, conn) = mock();
    cluster.create_topic("status", 2, 1).unwrap();
    let records = [
        rec("a", Some("1")),
        rec("b", Some("2")),
        rec("a", Some("3")),
        rec("c", Some("4")),
        rec("b", None),
    ];
    write_keyed(&conn, "status", 1, &records, TIMEOUT)
        .await
        .unwrap();
    let latest = read_latest_by_key(&conn, "status", 1, TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        latest,
        BTreeMap::from([("a".into(), "3".into()), ("c".into(), "4".into())])
    );
    // The other partition is empty, and reading it returns at once.
    assert!(
        read_latest_by_key(&conn, "status", 0, TIMEOUT)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn end_offsets_of_many_partitions_in_one_call() {
    let (cluster, conn) = mock();
    cluster.create_topic("a", 3, 1).unwrap();
    cluster.create_topic("b", 1, 1).unwrap();
    let three: Vec<_> = (0..3).map(|i| rec(&format!("k{i}"), Some("v"))).collect();
    write_keyed(&conn, "a", 2, &three, TIMEOUT).await.unwrap();
    write_keyed(&conn, "b", 0, &three[..1], TIMEOUT)
        .await
        .unwrap();
    let wanted = [
        ("a".to_string(), 0),
        ("a".to_string(), 2),
        ("b".to_string(), 0),
        ("a".to_string(), 2),
    ];
    let ends = end_offsets(&conn, &wanted, TIMEOUT).await.unwrap();
    assert_eq!(ends.len(), 3);
    assert_eq!(ends[&("a".to_string(), 0)], 0);
    assert_eq!(ends[&("a".to_string(), 2)], 3);
    assert_eq!(ends[&("b".to_string(), 0)], 1);
    assert!(end_offsets(&conn, &[], TIMEOUT).await.unwrap().is_empty());
}

#[tokio::test]
async fn missing_topics_and_partitions_are_their_own_errors() {
    let (cluster, conn) = mock();
    cluster.create_topic("present", 1, 1).unwrap();
    let e = read_latest_by_key(&conn, "absent", 0, TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, KafkaClientError::TopicNotFound { topic, .. } if topic == "absent"),
        "{e:?}"
    );
    let e = write_keyed(&conn, "absent", 0, &[rec("k", Some("v"))], TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(e, KafkaClientError::TopicNotFound { .. }), "{e:?}");
    let e = read_latest_by_key(&conn, "present", 5, TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(e, KafkaClientError::PartitionNotFound { partition: 5, .. }),
        "{e:?}"
    );
    let e = end_offsets(
        &conn,
        &[("present".into(), 0), ("present".into(), 7)],
        TIMEOUT,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, KafkaClientError::PartitionNotFound { topic, partition: 7, .. } if topic == "present"),
        "{e:?}"
    );
    let e = end_offsets(
        &conn,
        &[("present".into(), 0), ("absent".into(), 0)],
        TIMEOUT,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, KafkaClientError::TopicNotFound { topic, .. } if topic == "absent"),
        "{e:?}"
    );
}

/// Nothing listens on port 1: each call must give up within its bound, say so, and name the
/// cluster.
#[tokio::test]
async fn every_call_is_bounded_when_the_cluster_is_unreachable() {
    let conn = ConnectionConfig::plaintext("127.0.0.1:1");
    let bound = Duration::from_secs(2);
    // Not a speed check: a generous ceiling that a hang (no bound at all) would still break,
    // and that a busy CI machine cannot.
    let allowed = bound + Duration::from_secs(60);
    let start = Instant::now();
    let e = read_latest_by_key(&conn, "t", 0, bound).await.unwrap_err();
    assert!(start.elapsed() < allowed, "read took {:?}", start.elapsed());
    assert!(e.to_string().contains("127.0.0.1:1"), "{e}");

    let start = Instant::now();
    let e = end_offsets(&conn, &[("t".into(), 0)], bound)
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < allowed,
        "end_offsets took {:?}",
        start.elapsed()
    );
    assert!(matches!(e, KafkaClientError::TimedOut { .. }), "{e:?}");

    let start = Instant::now();
    let e = write_keyed(&conn, "t", 0, &[rec("k", Some("v"))], bound)
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < allowed,
        "write took {:?}",
        start.elapsed()
    );
    assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
}
