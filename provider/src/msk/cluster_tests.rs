//! ferry_msk_cluster against aws-smithy-mocks: what neither emulator implements (updates and
//! their operations, FAILED states, retries, access denied, not found), asserting the requests.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kafka::Client;
use aws_sdk_kafka::operation::create_cluster::CreateClusterOutput;
use aws_sdk_kafka::operation::delete_cluster::DeleteClusterOutput;
use aws_sdk_kafka::operation::describe_cluster::DescribeClusterOutput;
use aws_sdk_kafka::operation::describe_cluster_operation::DescribeClusterOperationOutput;
use aws_sdk_kafka::operation::get_bootstrap_brokers::GetBootstrapBrokersOutput;
use aws_sdk_kafka::operation::update_broker_count::UpdateBrokerCountOutput;
use aws_sdk_kafka::operation::update_broker_storage::UpdateBrokerStorageOutput;
use aws_sdk_kafka::operation::update_cluster_kafka_version::UpdateClusterKafkaVersionOutput;
use aws_sdk_kafka::operation::update_monitoring::UpdateMonitoringOutput;
use aws_sdk_kafka::types::{
    BrokerNodeGroupInfo, BrokerSoftwareInfo, ClusterInfo, ClusterOperationInfo, ClusterState,
    EnhancedMonitoring, ErrorInfo, StateInfo,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use tfplugin::context::StopSignal;
use tfplugin::{Diagnostics, Intent, Tf};

use super::*;
use crate::msk::client::{Poll, retry_config};
use crate::msk::cluster_model::*;

const ARN: &str = "arn:aws:kafka:eu-west-1:123456789012:cluster/target/abc-1";

fn ctx() -> Ctx<()> {
    Ctx::new(Arc::new(()), StopSignal::default(), Intent::Normal)
}

/// A client over `rules` (in order), with millisecond backoff and polling.
fn msk(rules: &[&Rule]) -> Msk {
    let client = mock_client!(aws_sdk_kafka, RuleMode::Sequential, rules, |c| c
        .retry_config(retry_config(4).with_initial_backoff(Duration::from_millis(1))));
    Msk {
        client,
        poll: Poll {
            first: Duration::from_millis(1),
            max: Duration::from_millis(4),
        },
    }
}

/// An AWS error response as the service sends it.
fn aws_error(status: u16, code: &'static str, message: &'static str) -> HttpResponse {
    let mut r = HttpResponse::new(
        StatusCode::try_from(status).unwrap(),
        SdkBody::from(format!(r#"{{"message":"{message}"}}"#)),
    );
    r.headers_mut().insert("x-amzn-errortype", code);
    r.headers_mut().insert("content-type", "application/json");
    r
}

fn info(state: ClusterState, version: &str) -> ClusterInfo {
    ClusterInfo::builder()
        .cluster_arn(ARN)
        .cluster_name("target")
        .state(state)
        .current_version(version)
        .number_of_broker_nodes(3)
        .enhanced_monitoring(EnhancedMonitoring::Default)
        .current_broker_software_info(BrokerSoftwareInfo::builder().kafka_version("3.6.0").build())
        .broker_node_group_info(
            BrokerNodeGroupInfo::builder()
                .instance_type("kafka.m5.large")
                .client_subnets("subnet-a")
                .client_subnets("subnet-b")
                .client_subnets("subnet-c")
                .storage_info(
                    aws_sdk_kafka::types::StorageInfo::builder()
                        .ebs_storage_info(
                            aws_sdk_kafka::types::EbsStorageInfo::builder()
                                .volume_size(100)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .build()
}

fn describe(state: ClusterState, version: &'static str) -> Rule {
    mock!(Client::describe_cluster)
        .match_requests(|r| r.cluster_arn() == Some(ARN))
        .then_output(move || {
            DescribeClusterOutput::builder()
                .cluster_info(info(state.clone(), version))
                .build()
        })
}

fn bootstrap() -> Rule {
    mock!(Client::get_bootstrap_brokers).then_output(|| {
        GetBootstrapBrokersOutput::builder()
            .bootstrap_broker_string("b-1:9092,b-2:9092")
            .bootstrap_broker_string_tls("b-1:9094,b-2:9094")
            .bootstrap_broker_string_public_tls("")
            .build()
    })
}

fn operation(state: &'static str) -> Rule {
    mock!(Client::describe_cluster_operation)
        .match_requests(|r| r.cluster_operation_arn() == Some("op-1"))
        .then_output(move || {
            DescribeClusterOperationOutput::builder()
                .cluster_operation_info(
                    ClusterOperationInfo::builder()
                        .operation_state(state)
                        .operation_type("UPDATE")
                        .error_info(
                            ErrorInfo::builder()
                                .error_code("InsufficientCapacity")
                                .error_string("no kafka.m5.large left in eu-west-1a")
                                .build(),
                        )
                        .build(),
                )
                .build()
        })
}

fn planned() -> ClusterModel {
    ClusterModel {
        cluster_name: "target".into(),
        kafka_version: "3.6.0".into(),
        number_of_broker_nodes: Tf::Known(3),
        enhanced_monitoring: "DEFAULT".into(),
        storage_mode: "LOCAL".into(),
        broker_node_group_info: Tf::Known(BrokerNodeGroupModel {
            instance_type: "kafka.m5.large".into(),
            client_subnets: Tf::Known(vec![
                "subnet-a".into(),
                "subnet-b".into(),
                "subnet-c".into(),
            ]),
            storage_info: Tf::Known(StorageInfoModel {
                ebs_storage_info: Tf::Known(EbsModel {
                    volume_size: Tf::Known(100),
                    ..EbsModel::default()
                }),
            }),
            ..BrokerNodeGroupModel::default()
        }),
        id: Tf::Unknown,
        arn: Tf::Unknown,
        current_version: Tf::Unknown,
        state: Tf::Unknown,
        bootstrap_brokers: Tf::Unknown,
        bootstrap_brokers_tls: Tf::Unknown,
        bootstrap_brokers_public_tls: Tf::Unknown,
        ..ClusterModel::default()
    }
}

fn summaries(d: &Diagnostics) -> Vec<String> {
    d.0.iter()
        .map(|x| format!("{}: {}", x.summary, x.detail))
        .collect()
}

#[tokio::test]
async fn create_sends_the_model_waits_until_active_and_reads_the_brokers() {
    let create_call = mock!(Client::create_cluster)
        .match_requests(|r| {
            let bng = r.broker_node_group_info().unwrap();
            r.cluster_name() == Some("target")
                && r.kafka_version() == Some("3.6.0")
                && r.number_of_broker_nodes() == Some(3)
                && bng.instance_type() == Some("kafka.m5.large")
                && bng.client_subnets().len() == 3
                && bng
                    .storage_info()
                    .and_then(|s| s.ebs_storage_info())
                    .and_then(|e| e.volume_size())
                    == Some(100)
                && r.enhanced_monitoring() == Some(&EnhancedMonitoring::Default)
        })
        .then_output(|| CreateClusterOutput::builder().cluster_arn(ARN).build());
    let creating = describe(ClusterState::Creating, "v0");
    let creating2 = describe(ClusterState::Creating, "v0");
    let active = describe(ClusterState::Active, "v1");
    let brokers = bootstrap();
    let msk = msk(&[&create_call, &creating, &creating2, &active, &brokers]);
    let mut d = Diagnostics::default();
    let state = create(&msk, &ctx(), planned(), &mut d).await;
    assert!(!d.has_errors(), "{:?}", summaries(&d));
    let state = state.unwrap();
    assert_eq!(state.arn, Tf::Known(ARN.into()));
    assert_eq!(state.id, state.arn);
    assert_eq!(state.current_version, Tf::Known("v1".into()));
    assert_eq!(state.state, Tf::Known("ACTIVE".into()));
    assert_eq!(
        state.bootstrap_brokers,
        Tf::Known("b-1:9092,b-2:9092".into())
    );
    assert_eq!(
        state.bootstrap_brokers_tls,
        Tf::Known("b-1:9094,b-2:9094".into())
    );
    assert_eq!(
        state.bootstrap_brokers_public_tls,
        Tf::Null,
        "empty string means none"
    );
    assert_eq!(state.bootstrap_brokers_sasl_iam, Tf::Null);
    assert_eq!(
        creating.num_calls() + creating2.num_calls() + active.num_calls(),
        3
    );
    // Read back from AWS.
    assert_eq!(state.ebs().unwrap().volume_size, Tf::Known(100));
}

#[tokio::test]
async fn a_failed_cluster_reports_aws_state_info_and_stays_in_state() {
    let create_call = mock!(Client::create_cluster)
        .then_output(|| CreateClusterOutput::builder().cluster_arn(ARN).build());
    let failed = mock!(Client::describe_cluster).then_output(|| {
        let mut i = info(ClusterState::Failed, "v0");
        i.state_info = Some(
            StateInfo::builder()
                .code("InsufficientFreeAddressesInSubnet")
                .message("subnet-a has no free addresses")
                .build(),
        );
        DescribeClusterOutput::builder().cluster_info(i).build()
    });
    let msk = msk(&[&create_call, &failed]);
    let mut d = Diagnostics::default();
    let state = create(&msk, &ctx(), planned(), &mut d).await;
    let text = summaries(&d).join("\n");
    assert!(text.contains("InsufficientFreeAddressesInSubnet"), "{text}");
    assert!(text.contains("subnet-a has no free addresses"), "{text}");
    let state = state.expect("a created cluster stays in state (tainted)");
    assert_eq!(state.arn, Tf::Known(ARN.into()));
    assert_eq!(
        state.bootstrap_brokers,
        Tf::Null,
        "no unknowns in a saved state"
    );
}

#[tokio::test]
async fn the_create_wait_ends_at_the_timeout_on_a_cluster_left_creating() {
    let create_call = mock!(Client::create_cluster)
        .then_output(|| CreateClusterOutput::builder().cluster_arn(ARN).build());
    let creating = mock!(Client::describe_cluster)
        .sequence()
        .output(|| {
            DescribeClusterOutput::builder()
                .cluster_info(info(ClusterState::Creating, "v0"))
                .build()
        })
        .repeatedly()
        .build();
    let msk = msk(&[&create_call, &creating]);
    let mut p = planned();
    p.timeouts = Tf::Known(tfplugin::timeouts::Timeouts {
        create: "50ms".into(),
        ..Default::default()
    });
    let mut d = Diagnostics::default();
    let state = create(&msk, &ctx(), p, &mut d).await.unwrap();
    let text = summaries(&d).join("\n");
    assert!(text.contains("time limit"), "{text}");
    assert!(
        text.contains("CREATING"),
        "the last state seen is named: {text}"
    );
    assert_eq!(state.arn, Tf::Known(ARN.into()));
}

fn prior() -> ClusterModel {
    let mut p = planned();
    p.id = ARN.into();
    p.arn = ARN.into();
    p.current_version = "v1".into();
    p.state = "ACTIVE".into();
    p.bootstrap_brokers = "b-1:9092,b-2:9092".into();
    p.bootstrap_brokers_tls = "b-1:9094,b-2:9094".into();
    p.bootstrap_brokers_public_tls = Tf::Null;
    p
}

#[tokio::test]
async fn updates_are_chained_through_current_version_and_each_operation_is_awaited() {
    let mut want = prior();
    want.number_of_broker_nodes = Tf::Known(6);
    want.kafka_version = "3.7.x".into();
    want.configuration_info = Tf::Known(ConfigurationInfoModel {
        arn: "arn:aws:kafka:eu-west-1:123456789012:configuration/c/1".into(),
        revision: Tf::Known(2),
    });
    want.open_monitoring = Tf::Known(OpenMonitoringModel {
        prometheus: Tf::Known(PrometheusModel {
            jmx_exporter: Tf::Known(ExporterModel {
                enabled_in_broker: Tf::Known(true),
            }),
            node_exporter: Tf::Known(ExporterModel {
                enabled_in_broker: Tf::Known(true),
            }),
        }),
    });
    if let Tf::Known(b) = &mut want.broker_node_group_info {
        b.storage_info = Tf::Known(StorageInfoModel {
            ebs_storage_info: Tf::Known(EbsModel {
                volume_size: Tf::Known(500),
                ..EbsModel::default()
            }),
        });
    }
    want.current_version = Tf::Unknown;

    let storage = mock!(Client::update_broker_storage)
        .match_requests(|r| {
            let v = &r.target_broker_ebs_volume_info()[0];
            r.cluster_arn() == Some(ARN)
                && r.current_version() == Some("v1")
                && v.kafka_broker_node_id() == Some("All")
                && v.volume_size_gb() == Some(500)
        })
        .then_output(|| {
            UpdateBrokerStorageOutput::builder()
                .cluster_operation_arn("op-1")
                .build()
        });
    let pending = operation("PENDING");
    let in_progress = operation("UPDATE_IN_PROGRESS");
    let done1 = operation("UPDATE_COMPLETE");
    let v2 = describe(ClusterState::Updating, "v2");
    let count = mock!(Client::update_broker_count)
        .match_requests(|r| {
            r.current_version() == Some("v2") && r.target_number_of_broker_nodes() == Some(6)
        })
        .then_output(|| {
            UpdateBrokerCountOutput::builder()
                .cluster_operation_arn("op-1")
                .build()
        });
    let done2 = operation("UPDATE_COMPLETE");
    let v3 = describe(ClusterState::Active, "v3");
    // Version and configuration change together: one call carries both.
    let version = mock!(Client::update_cluster_kafka_version)
        .match_requests(|r| {
            r.current_version() == Some("v3")
                && r.target_kafka_version() == Some("3.7.x")
                && r.configuration_info().and_then(|c| c.revision()) == Some(2)
        })
        .then_output(|| {
            UpdateClusterKafkaVersionOutput::builder()
                .cluster_operation_arn("op-1")
                .build()
        });
    let done3 = operation("UPDATE_COMPLETE");
    let v4 = describe(ClusterState::Active, "v4");
    let monitoring = mock!(Client::update_monitoring)
        .match_requests(|r| {
            let p = r.open_monitoring().and_then(|o| o.prometheus());
            r.current_version() == Some("v4")
                && p.and_then(|p| p.jmx_exporter())
                    .and_then(|j| j.enabled_in_broker())
                    == Some(true)
                && p.and_then(|p| p.node_exporter())
                    .and_then(|j| j.enabled_in_broker())
                    == Some(true)
                && r.enhanced_monitoring() == Some(&EnhancedMonitoring::Default)
        })
        .then_output(|| {
            UpdateMonitoringOutput::builder()
                .cluster_operation_arn("op-1")
                .build()
        });
    let done4 = operation("UPDATE_COMPLETE");
    let v5 = describe(ClusterState::Active, "v5");
    let last = describe(ClusterState::Active, "v5");
    let brokers = bootstrap();
    let rules = [
        &storage,
        &pending,
        &in_progress,
        &done1,
        &v2,
        &count,
        &done2,
        &v3,
        &version,
        &done3,
        &v4,
        &monitoring,
        &done4,
        &v5,
        &last,
        &brokers,
    ];
    let msk = msk(&rules);
    let mut d = Diagnostics::default();
    let state = update(&msk, &ctx(), prior(), want, &mut d).await;
    assert!(!d.has_errors(), "{:?}", summaries(&d));
    for (i, r) in rules.iter().enumerate() {
        assert_eq!(r.num_calls(), 1, "rule {i} used once, in order");
    }
    assert_eq!(state.current_version, Tf::Known("v5".into()));
    assert_eq!(
        state.number_of_broker_nodes,
        Tf::Known(3),
        "state is what AWS says"
    );
}

#[tokio::test]
async fn a_failed_operation_stops_the_chain_with_aws_error_info() {
    let mut want = prior();
    want.number_of_broker_nodes = Tf::Known(6);
    want.kafka_version = "3.7.x".into();
    let count = mock!(Client::update_broker_count)
        .match_requests(|r| r.current_version() == Some("v1"))
        .then_output(|| {
            UpdateBrokerCountOutput::builder()
                .cluster_operation_arn("op-1")
                .build()
        });
    let failed = operation("UPDATE_FAILED");
    let after = describe(ClusterState::Active, "v1");
    let brokers = bootstrap();
    let msk = msk(&[&count, &failed, &after, &brokers]);
    let mut d = Diagnostics::default();
    let state = update(&msk, &ctx(), prior(), want, &mut d).await;
    let text = summaries(&d).join("\n");
    assert!(
        text.contains("UpdateBrokerCount did not complete"),
        "{text}"
    );
    assert!(text.contains("InsufficientCapacity"), "{text}");
    assert_eq!(
        state.kafka_version,
        Tf::Known("3.6.0".into()),
        "the version update never ran"
    );
    assert_eq!(state.current_version, Tf::Known("v1".into()));
}

#[tokio::test]
async fn throttling_and_5xx_are_retried_with_backoff() {
    let flaky = mock!(Client::describe_cluster)
        .sequence()
        .http_response(|| aws_error(429, "TooManyRequestsException", "Rate exceeded"))
        .http_response(|| aws_error(503, "ServiceUnavailableException", "try again"))
        .http_response(|| aws_error(500, "InternalServerErrorException", "oops"))
        .output(|| {
            DescribeClusterOutput::builder()
                .cluster_info(info(ClusterState::Active, "v7"))
                .build()
        })
        .build();
    let brokers = bootstrap();
    let msk = msk(&[&flaky, &brokers]);
    let mut d = Diagnostics::default();
    let state = read(&msk, prior(), &mut d).await.unwrap();
    assert!(!d.has_errors(), "{:?}", summaries(&d));
    assert_eq!(flaky.num_calls(), 4);
    assert_eq!(state.current_version, Tf::Known("v7".into()));
}

#[tokio::test]
async fn throttling_past_max_retries_says_so() {
    let throttled = mock!(Client::describe_cluster)
        .sequence()
        .http_response(|| aws_error(429, "TooManyRequestsException", "Rate exceeded"))
        .repeatedly()
        .build();
    let msk = msk(&[&throttled]);
    let mut d = Diagnostics::default();
    let state = read(&msk, prior(), &mut d).await;
    assert_eq!(throttled.num_calls(), 5, "max_retries 4: five attempts");
    assert_eq!(state, Some(prior()), "state kept when AWS cannot be read");
    let text = summaries(&d).join("\n");
    assert!(
        text.contains("kafka:DescribeCluster still throttled"),
        "{text}"
    );
}

#[tokio::test]
async fn access_denied_names_the_action() {
    let denied = mock!(Client::create_cluster).then_http_response(|| {
        aws_error(
            403,
            "ForbiddenException",
            "User: arn:aws:iam::1:user/ci is not authorized to perform: kafka:CreateCluster",
        )
    });
    let msk = msk(&[&denied]);
    let mut d = Diagnostics::default();
    assert!(create(&msk, &ctx(), planned(), &mut d).await.is_none());
    assert_eq!(d.0.len(), 1);
    assert_eq!(d.0[0].summary, "Access denied: kafka:CreateCluster");
    assert!(
        d.0[0]
            .detail
            .contains("Allow the action kafka:CreateCluster")
    );
    assert_eq!(denied.num_calls(), 1, "access denied is not retried");
}

#[tokio::test]
async fn a_missing_cluster_on_read_is_removed_from_state() {
    let gone = mock!(Client::describe_cluster)
        .then_http_response(|| aws_error(404, "NotFoundException", "Cluster not found"));
    let msk = msk(&[&gone]);
    let mut d = Diagnostics::default();
    assert_eq!(read(&msk, prior(), &mut d).await, None);
    assert!(d.0.is_empty());
}

#[tokio::test]
async fn delete_waits_until_the_cluster_is_gone() {
    let delete_call = mock!(Client::delete_cluster)
        .match_requests(|r| r.cluster_arn() == Some(ARN))
        .then_output(|| DeleteClusterOutput::builder().cluster_arn(ARN).build());
    let deleting = describe(ClusterState::Deleting, "v1");
    let gone = mock!(Client::describe_cluster)
        .then_http_response(|| aws_error(404, "NotFoundException", "Cluster not found"));
    let msk = msk(&[&delete_call, &deleting, &gone]);
    let mut d = Diagnostics::default();
    delete(&msk, &ctx(), prior(), &mut d).await;
    assert!(d.0.is_empty(), "{:?}", summaries(&d));
    assert_eq!((deleting.num_calls(), gone.num_calls()), (1, 1));
}

#[tokio::test]
async fn import_then_read_adopts_every_block_aws_reports() {
    let found = describe(ClusterState::Active, "v1");
    let brokers = bootstrap();
    let msk = msk(&[&found, &brokers]);
    let mut d = Diagnostics::default();
    let imported = ClusterResource
        .import(&ferry_ctx(), ARN, &mut d)
        .await
        .unwrap();
    let state = read(&msk, imported, &mut d).await.unwrap();
    assert!(!d.has_errors(), "{:?}", summaries(&d));
    assert_eq!(state.cluster_name, Tf::Known("target".into()));
    assert_eq!(state.kafka_version, Tf::Known("3.6.0".into()));
    let bng = state.broker_node_group_info.known().unwrap();
    assert_eq!(bng.instance_type, Tf::Known("kafka.m5.large".into()));

    let mut d = Diagnostics::default();
    ClusterResource.import(&ferry_ctx(), "target", &mut d).await;
    assert!(d.has_errors(), "a name is not an ARN");
}

#[test]
fn shrinking_storage_and_detaching_the_configuration_replace_the_cluster() {
    let grow = |size: i64| {
        let mut m = prior();
        if let Tf::Known(b) = &mut m.broker_node_group_info {
            b.storage_info = Tf::Known(StorageInfoModel {
                ebs_storage_info: Tf::Known(EbsModel {
                    volume_size: Tf::Known(size),
                    ..EbsModel::default()
                }),
            });
        }
        m
    };
    // The schema's rules (as the adapter applies them), then the resource's own.
    let plan = |prior: ClusterModel, planned: ClusterModel| {
        let schema_rules = tfplugin::plan::replacement_paths(
            &crate::msk::cluster_model::schema().block,
            &tfplugin::Model::to_value(&prior),
            &tfplugin::Model::to_value(&planned),
        );
        let mut p = Plan {
            prior: Some(prior),
            config: planned.clone(),
            planned,
            requires_replace: schema_rules,
        };
        plan_replacements(&mut p);
        p.requires_replace
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    assert!(plan(grow(100), grow(200)).is_empty(), "growing is in place");
    assert_eq!(
        plan(grow(200), grow(100)),
        ["broker_node_group_info.storage_info.ebs_storage_info.volume_size"]
    );
    let mut with_config = prior();
    with_config.configuration_info = Tf::Known(ConfigurationInfoModel {
        arn: "arn:c".into(),
        revision: Tf::Known(1),
    });
    assert_eq!(plan(with_config, prior()), ["configuration_info"]);
}

#[test]
fn broker_count_must_fit_the_subnets() {
    let mut m = planned();
    m.number_of_broker_nodes = Tf::Known(4);
    let mut d = Diagnostics::default();
    validate(&m, &mut d);
    assert_eq!(
        d.0[0].path.as_ref().unwrap().to_string(),
        "number_of_broker_nodes"
    );
}

/// A context over FerryData is only needed for calls that do not touch it (import).
pub fn ferry_ctx() -> Ctx<FerryData> {
    Ctx::new(
        Arc::new(FerryData::for_tests()),
        StopSignal::default(),
        Intent::Normal,
    )
}

#[tokio::test]
async fn import_leaves_out_blocks_aws_reports_empty() {
    let found = mock!(Client::describe_cluster).then_output(|| {
        let mut i = info(ClusterState::Active, "v1");
        i.client_authentication =
            Some(aws_sdk_kafka::types::ClientAuthentication::builder().build());
        i.logging_info = Some(
            aws_sdk_kafka::types::LoggingInfo::builder()
                .broker_logs(aws_sdk_kafka::types::BrokerLogs::builder().build())
                .build(),
        );
        DescribeClusterOutput::builder().cluster_info(i).build()
    });
    let brokers = bootstrap();
    let first = msk(&[&found, &brokers]);
    let mut d = Diagnostics::default();
    let imported = ClusterResource
        .import(&ferry_ctx(), ARN, &mut d)
        .await
        .unwrap();
    let state = read(&first, imported, &mut d).await.unwrap();
    assert!(!d.has_errors(), "{:?}", summaries(&d));
    assert_eq!(state.client_authentication, Tf::Null);
    assert_eq!(state.logging_info, Tf::Null);

    // A configured block is kept even when AWS reports it empty.
    let found = mock!(Client::describe_cluster).then_output(|| {
        let mut i = info(ClusterState::Active, "v1");
        i.client_authentication =
            Some(aws_sdk_kafka::types::ClientAuthentication::builder().build());
        DescribeClusterOutput::builder().cluster_info(i).build()
    });
    let brokers = bootstrap();
    let second = msk(&[&found, &brokers]);
    let mut p = prior();
    p.client_authentication = Tf::Known(ClientAuthModel::default());
    let state = read(&second, p, &mut d).await.unwrap();
    assert_eq!(
        state.client_authentication,
        Tf::Known(ClientAuthModel::default())
    );
}
