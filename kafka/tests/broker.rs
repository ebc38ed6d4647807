//! ferry-kafka against a real Kafka broker (peer A from tests/peers/start.sh): the record-level
//! operations, including what the mock cluster cannot show (transaction markers, open
//! transactions, compaction, SASL), and the native admin calls.
//!
//! Ignored by default because `cargo test --workspace` runs before the peers start. Run them
//! with the peers up: `source .peers/env && cargo test -p ferry-kafka -- --ignored`. Without
//! FERRY_KAFKA_A they fail and say so; they never pass silently.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_kafka::{
    Admin, ConnectionConfig, KafkaClientError, KafkaErrorCode, NewTopic, SaslConfig, SaslMechanism,
    Secret, end_offsets, read_latest_by_key, write_keyed,
};
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

mod common;
use common::{env, unique};

const TIMEOUT: Duration = Duration::from_secs(20);
const PEERS: &str = "needs a running Kafka peer: make peers, then source .peers/env";

fn conn() -> ConnectionConfig {
    ConnectionConfig::plaintext(&env("FERRY_KAFKA_A"))
}

async fn create(admin: &Admin, name: &str, partitions: i32, config: &[(&str, &str)]) {
    let topic = NewTopic {
        name: name.to_string(),
        partitions,
        replication_factor: Some(1),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    admin.create_topic(&topic, false).await.unwrap();
    admin
        .wait_until_topic_ready(name, partitions, TIMEOUT)
        .await
        .unwrap();
}

fn rec(key: &str, value: Option<&str>) -> (String, Option<Vec<u8>>) {
    (key.to_string(), value.map(|v| v.as_bytes().to_vec()))
}

fn transactional_producer(conn: &ConnectionConfig, id: &str) -> BaseProducer {
    let mut c: ClientConfig = conn.client_config();
    c.set("transactional.id", id)
        .set("enable.idempotence", "true");
    let p: BaseProducer = c.create().unwrap();
    p.init_transactions(TIMEOUT).unwrap();
    p
}

fn send(p: &BaseProducer, topic: &str, key: &str, value: &str) {
    p.send(BaseRecord::to(topic).partition(0).key(key).payload(value))
        .map_err(|(e, _)| e)
        .unwrap();
}

#[tokio::test]
#[ignore = "needs a running Kafka peer: make peers"]
async fn latest_by_key_reads_committed_records_only_and_honours_tombstones() {
    let conn = conn();
    let admin = Admin::connect(&conn).await.expect(PEERS);
    let topic = unique("latest");
    create(&admin, &topic, 1, &[("cleanup.policy", "compact")]).await;

    write_keyed(
        &conn,
        &topic,
        0,
        &[
            rec("a", Some("1")),
            rec("b", Some("2")),
            rec("c", Some("3")),
        ],
        TIMEOUT,
    )
    .await
    .unwrap();
    // An aborted transaction's records are never seen; a committed one's are, and the log then
    // ends in a transaction marker, which is no record: the read must still finish.
    let p = transactional_producer(&conn, &format!("{topic}.txn"));
    p.begin_transaction().unwrap();
    send(&p, &topic, "a", "aborted");
    p.flush(TIMEOUT).unwrap();
    p.abort_transaction(TIMEOUT).unwrap();
    write_keyed(&conn, &topic, 0, &[rec("b", None)], TIMEOUT)
        .await
        .unwrap();
    p.begin_transaction().unwrap();
    send(&p, &topic, "c", "committed");
    p.commit_transaction(TIMEOUT).unwrap();

    let latest = read_latest_by_key(&conn, &topic, 0, TIMEOUT).await.unwrap();
    assert_eq!(
        latest,
        BTreeMap::from([("a".into(), "1".into()), ("c".into(), "committed".into())])
    );
    admin.delete_topic(&topic).await.unwrap();
}

#[tokio::test]
#[ignore = "needs a running Kafka peer: make peers"]
async fn an_open_transaction_bounds_reads_and_end_offsets_at_the_stable_offset() {
    let conn = conn();
    let admin = Admin::connect(&conn).await.expect(PEERS);
    let topic = unique("open-txn");
    create(&admin, &topic, 1, &[]).await;
    write_keyed(&conn, &topic, 0, &[rec("k", Some("before"))], TIMEOUT)
        .await
        .unwrap();

    let p = transactional_producer(&conn, &format!("{topic}.txn"));
    p.begin_transaction().unwrap();
    send(&p, &topic, "k", "pending");
    p.flush(TIMEOUT).unwrap();

    // Neither call waits for the open transaction: both stop at the last stable offset.
    let ends = end_offsets(&conn, &[(topic.clone(), 0)], TIMEOUT)
        .await
        .unwrap();
    assert_eq!(ends[&(topic.clone(), 0)], 1);
    // Success (not TimedOut) shows the read did not wait for the open transaction.
    let latest = read_latest_by_key(&conn, &topic, 0, TIMEOUT).await.unwrap();
    assert_eq!(latest.get("k").map(String::as_str), Some("before"));

    p.commit_transaction(TIMEOUT).unwrap();
    // The commit marker reaches the partition after the coordinator answers: poll, bounded.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut end = 0;
    while std::time::Instant::now() < deadline {
        let ends = end_offsets(&conn, &[(topic.clone(), 0)], TIMEOUT)
            .await
            .unwrap();
        end = ends[&(topic.clone(), 0)];
        if end == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(end, 3, "record and commit marker");
    admin.delete_topic(&topic).await.unwrap();
}

#[tokio::test]
#[ignore = "needs a running Kafka peer: make peers"]
async fn end_offsets_of_many_partitions_in_one_call() {
    let conn = conn();
    let admin = Admin::connect(&conn).await.expect(PEERS);
    let topics = [unique("ends-a"), unique("ends-b")];
    for t in &topics {
        create(&admin, t, 4, &[]).await;
    }
    for p in 0..4 {
        let records: Vec<_> = (0..p).map(|i| rec(&format!("k{i}"), Some("v"))).collect();
        write_keyed(&conn, &topics[1], p, &records, TIMEOUT)
            .await
            .unwrap();
    }
    let wanted: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| (0..4).map(move |p| (t.clone(), p)))
        .collect();
    let ends = end_offsets(&conn, &wanted, TIMEOUT).await.unwrap();
    assert_eq!(ends.len(), 8);
    for p in 0..4 {
        assert_eq!(ends[&(topics[0].clone(), p)], 0);
        assert_eq!(ends[&(topics[1].clone(), p)], i64::from(p));
    }
    let e = end_offsets(&conn, &[(topics[0].clone(), 9)], TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(e, KafkaClientError::PartitionNotFound { partition: 9, .. }),
        "{e:?}"
    );
    for t in &topics {
        admin.delete_topic(t).await.unwrap();
    }
}

#[tokio::test]
#[ignore = "needs a running Kafka peer: make peers"]
async fn a_missing_topic_is_reported_as_such_and_never_created() {
    let conn = conn();
    let admin = Admin::connect(&conn).await.expect(PEERS);
    let topic = unique("missing");
    let e = read_latest_by_key(&conn, &topic, 0, TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, KafkaClientError::TopicNotFound { topic: t, .. } if *t == topic),
        "{e:?}"
    );
    assert!(e.to_string().contains(&env("FERRY_KAFKA_A")), "{e}");
    let e = write_keyed(&conn, &topic, 0, &[rec("k", Some("v"))], TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(e, KafkaClientError::TopicNotFound { .. }), "{e:?}");
    let e = end_offsets(&conn, &[(topic.clone(), 0)], TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(e, KafkaClientError::TopicNotFound { .. }), "{e:?}");
    assert_eq!(
        admin.describe_topic(&topic).await.unwrap(),
        None,
        "nothing created it"
    );
}

#[tokio::test]
#[ignore = "needs a running Kafka peer: make peers"]
async fn records_over_sasl_scram() {
    let admin = Admin::connect(&conn()).await.expect(PEERS);
    let topic = unique("scram");
    create(&admin, &topic, 1, &[]).await;
    let mut sasl = ConnectionConfig::plaintext(&env("FERRY_KAFKA_A_SASL"));
    sasl.sasl = Some(SaslConfig {
        mechanism: SaslMechanism::ScramSha512,
        username: env("FERRY_KAFKA_A_SCRAM_USER"),
        password: Secret::new(env("FERRY_KAFKA_A_SCRAM_PASSWORD")),
    });
    write_keyed(&sasl, &topic, 0, &[rec("k", Some("v"))], TIMEOUT)
        .await
        .unwrap();
    let latest = read_latest_by_key(&sasl, &topic, 0, TIMEOUT).await.unwrap();
    assert_eq!(latest.get("k").map(String::as_str), Some("v"));
    let ends = end_offsets(&sasl, &[(topic.clone(), 0)], TIMEOUT)
        .await
        .unwrap();
    assert_eq!(ends[&(topic.clone(), 0)], 1);

    sasl.sasl.as_mut().unwrap().password = Secret::new("wrong");
    let e = read_latest_by_key(&sasl, &topic, 0, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        e.to_string().to_lowercase().contains("authentication"),
        "{e}"
    );
    sasl.timeout = Duration::from_secs(5);
    let e = Admin::connect(&sasl)
        .await
        .err()
        .expect("wrong password refused");
    assert!(e.to_string().contains("authentication failed"), "{e}");
    admin.delete_topic(&topic).await.unwrap();
}

/// Each native admin call, through the one skeleton, keeps the broker's own error text.
#[tokio::test]
#[ignore = "needs a running Kafka peer: make peers"]
async fn admin_calls_work_and_keep_the_brokers_words() {
    let admin = Admin::connect(&conn()).await.expect(PEERS);
    let topic = unique("admin");
    let new = NewTopic {
        name: topic.clone(),
        partitions: 2,
        replication_factor: Some(1),
        config: BTreeMap::from([("retention.ms".into(), "86400000".into())]),
    };
    admin.create_topic(&new, true).await.unwrap();
    assert_eq!(
        admin.describe_topic(&topic).await.unwrap(),
        None,
        "validate_only creates nothing"
    );

    let bad = NewTopic {
        config: BTreeMap::from([("cleanup.policy".into(), "sometimes".into())]),
        ..new.clone()
    };
    let e = admin.create_topic(&bad, true).await.unwrap_err();
    assert!(
        e.to_string().contains("sometimes"),
        "the refused value is named: {e}"
    );

    admin.create_topic(&new, false).await.unwrap();
    let described = admin
        .wait_until_topic_ready(&topic, 2, TIMEOUT)
        .await
        .unwrap();
    assert_eq!((described.partitions, described.replication_factor), (2, 1));
    assert!(!described.topic_id.is_empty());
    let e = admin.create_topic(&new, false).await.unwrap_err();
    assert_eq!(e.code(), Some(KafkaErrorCode::TopicAlreadyExists), "{e}");

    admin.create_partitions(&topic, 3, false).await.unwrap();
    let e = admin.create_partitions(&topic, 1, true).await.unwrap_err();
    assert_eq!(e.code(), Some(KafkaErrorCode::InvalidPartitions), "{e}");

    let set = BTreeMap::from([("segment.ms".to_string(), "3600000".to_string())]);
    admin
        .alter_topic_config(&topic, &set, &["retention.ms".to_string()], false)
        .await
        .unwrap();
    let overrides = admin.topic_config_overrides(&topic).await.unwrap();
    assert_eq!(
        overrides.get("segment.ms").map(String::as_str),
        Some("3600000")
    );
    assert!(!overrides.contains_key("retention.ms"), "{overrides:?}");
    let bad = BTreeMap::from([("segment.ms".to_string(), "soon".to_string())]);
    let e = admin
        .alter_topic_config(&topic, &bad, &[], true)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("soon"), "{e}");

    admin.delete_topic(&topic).await.unwrap();
    admin.wait_until_topic_gone(&topic, TIMEOUT).await.unwrap();
    let e = admin.delete_topic(&topic).await.unwrap_err();
    assert_eq!(
        e.code(),
        Some(KafkaErrorCode::UnknownTopicOrPartition),
        "{e}"
    );
}

/// Cluster C (three brokers): what librdkafka has no API for (Alter/ListPartitionReassignments,
/// sent over its own connection) and ElectLeaders, DescribeCluster and the ISR.
#[tokio::test]
#[ignore = "needs a running Kafka peer: make peers"]
async fn reassignment_over_librdkafkas_connection_on_three_brokers() {
    let admin = Admin::connect(&ConnectionConfig::plaintext(&env("FERRY_KAFKA_C")))
        .await
        .unwrap();
    let brokers = admin.brokers().await.unwrap();
    assert_eq!(brokers.len(), 3, "{brokers:?}");
    let name = unique("reassign");
    create(&admin, &name, 2, &[]).await;
    let before = admin.topic_layout(&name).await.unwrap().unwrap();
    assert!(before.partitions.iter().all(|p| p.replicas.len() == 1));

    // Nothing of ours is moving yet; the listing itself must work.
    let listed = admin.list_reassignments().await.unwrap();
    assert!(listed.iter().all(|r| r.topic != name), "{listed:?}");

    let current: Vec<ferry_kafka::CurrentPartition> = before
        .partitions
        .iter()
        .map(|p| ferry_kafka::CurrentPartition {
            partition: p.id,
            replicas: p.replicas.clone(),
            leader: p.leader,
        })
        .collect();
    let loads = admin.replica_loads().await.unwrap();
    let targets = ferry_kafka::change_replication_factor(&current, &brokers, &loads, 3).unwrap();
    admin.alter_reassignments(&name, &targets).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let moving = admin.list_reassignments().await.unwrap();
        let layout = admin.topic_layout(&name).await.unwrap().unwrap();
        if moving.iter().all(|r| r.topic != name)
            && layout.partitions.iter().all(|p| p.isr.len() == 3)
        {
            for p in &layout.partitions {
                assert_eq!(p.replicas, targets[&p.id], "partition {}", p.id);
            }
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not done: {moving:?} {layout:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    admin.elect_preferred_leaders(&name, &[0, 1]).await.unwrap();

    // A replica on a broker that does not exist is refused with the broker's words.
    let err = admin
        .alter_reassignments(&name, &BTreeMap::from([(0, vec![1, 99])]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&format!("{name}-0")), "{err}");
    admin.delete_topic(&name).await.unwrap();
}

/// Client quotas (DescribeClientQuotas, AlterClientQuotas: raw requests over librdkafka's
/// connection): set, read back exactly, change one key and remove another, default entities,
/// and the broker's words when it refuses.
#[tokio::test]
#[ignore = "needs a running Kafka peer: make peers"]
async fn client_quotas_over_librdkafkas_connection() {
    use ferry_kafka::quota::{EntityName, QuotaEntity};

    let admin = Admin::connect(&conn()).await.expect(PEERS);
    let user = unique("quota-user");
    let entity = QuotaEntity {
        user: Some(EntityName::Named(user.clone())),
        client_id: Some(EntityName::Default),
        ip: None,
    };
    assert!(admin.describe_quotas(&entity).await.unwrap().is_empty());

    let set = BTreeMap::from([
        ("producer_byte_rate".to_string(), 1_048_576.0),
        ("request_percentage".to_string(), 12.5),
    ]);
    admin.alter_quotas(&entity, &set, &[]).await.unwrap();
    assert_eq!(admin.describe_quotas(&entity).await.unwrap(), set);

    // Strict matching: the user on its own is another entity, with no quotas.
    let user_alone = QuotaEntity {
        user: Some(EntityName::Named(user.clone())),
        ..QuotaEntity::default()
    };
    assert!(admin.describe_quotas(&user_alone).await.unwrap().is_empty());

    admin
        .alter_quotas(
            &entity,
            &BTreeMap::from([("producer_byte_rate".to_string(), 2_000_000.0)]),
            &["request_percentage".to_string()],
        )
        .await
        .unwrap();
    assert_eq!(
        admin.describe_quotas(&entity).await.unwrap(),
        BTreeMap::from([("producer_byte_rate".to_string(), 2_000_000.0)])
    );

    // A fractional byte rate is refused, in the broker's words, naming the entity.
    let err = admin
        .alter_quotas(
            &entity,
            &BTreeMap::from([("consumer_byte_rate".to_string(), 1.5)]),
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(KafkaErrorCode::InvalidRequest), "{err}");
    assert!(err.to_string().contains(&user), "{err}");

    // An IP entity: its own key, and the broker refuses a user key on it.
    let ip = QuotaEntity {
        ip: Some(EntityName::Named("192.0.2.17".into())),
        ..QuotaEntity::default()
    };
    let err = admin
        .alter_quotas(
            &ip,
            &BTreeMap::from([("producer_byte_rate".to_string(), 100.0)]),
            &[],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("producer_byte_rate"), "{err}");
    let rate = BTreeMap::from([("connection_creation_rate".to_string(), 50.0)]);
    admin.alter_quotas(&ip, &rate, &[]).await.unwrap();
    assert_eq!(admin.describe_quotas(&ip).await.unwrap(), rate);

    // The default IP entity (a null name on the wire), at Kafka's own default rate, so
    // nothing else on the peer is limited by it.
    let default_ip = QuotaEntity {
        ip: Some(EntityName::Default),
        ..QuotaEntity::default()
    };
    let unlimited = BTreeMap::from([("connection_creation_rate".to_string(), f64::from(i32::MAX))]);
    admin
        .alter_quotas(&default_ip, &unlimited, &[])
        .await
        .unwrap();
    assert_eq!(admin.describe_quotas(&default_ip).await.unwrap(), unlimited);
    assert!(
        admin.describe_quotas(&ip).await.unwrap() == rate,
        "a named address is not its default"
    );
    admin
        .alter_quotas(
            &default_ip,
            &BTreeMap::new(),
            &["connection_creation_rate".into()],
        )
        .await
        .unwrap();
    assert!(admin.describe_quotas(&default_ip).await.unwrap().is_empty());

    admin
        .alter_quotas(&entity, &BTreeMap::new(), &["producer_byte_rate".into()])
        .await
        .unwrap();
    assert!(admin.describe_quotas(&entity).await.unwrap().is_empty());
    admin
        .alter_quotas(&ip, &BTreeMap::new(), &["connection_creation_rate".into()])
        .await
        .unwrap();
    assert!(admin.describe_quotas(&ip).await.unwrap().is_empty());
}
