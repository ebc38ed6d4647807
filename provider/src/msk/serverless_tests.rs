//! ferry_msk_serverless_cluster against aws-smithy-mocks, asserting the requests sent. These
//! cover what moto (the serverless emulator of the e2e tests) cannot show: a cluster that
//! becomes ACTIVE or FAILED, GetBootstrapBrokers (moto answers HTTP 500), NotFound after delete
//! and on read (moto answers HTTP 500), throttling and access denied.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kafka::Client;
use aws_sdk_kafka::operation::create_cluster_v2::CreateClusterV2Output;
use aws_sdk_kafka::operation::delete_cluster::DeleteClusterOutput;
use aws_sdk_kafka::operation::describe_cluster_v2::DescribeClusterV2Output;
use aws_sdk_kafka::operation::get_bootstrap_brokers::GetBootstrapBrokersOutput;
use aws_sdk_kafka::operation::tag_resource::TagResourceOutput;
use aws_sdk_kafka::operation::untag_resource::UntagResourceOutput;
use aws_sdk_kafka::types::{
    Iam, Serverless, ServerlessClientAuthentication, ServerlessSasl, StateInfo, VpcConfig,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use tfplugin::context::StopSignal;
use tfplugin::model::check_model_matches;
use tfplugin::{Diagnostics, Intent};

use super::*;
use crate::msk::client::{Poll, retry_config};

const ARN: &str = "arn:aws:kafka:eu-west-1:123456789012:cluster/events/abc-1-s2";
const IAM_BROKERS: &str = "boot-abc.c2.kafka-serverless.eu-west-1.amazonaws.com:9098";

fn ctx() -> Ctx<()> {
    Ctx::new(Arc::new(()), StopSignal::default(), Intent::Normal)
}

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

fn aws_error(status: u16, code: &'static str, message: &'static str) -> HttpResponse {
    let mut r = HttpResponse::new(
        StatusCode::try_from(status).unwrap(),
        SdkBody::from(format!(r#"{{"message":"{message}"}}"#)),
    );
    r.headers_mut().insert("x-amzn-errortype", code);
    r.headers_mut().insert("content-type", "application/json");
    r
}

fn cluster(state: ClusterState) -> Cluster {
    Cluster::builder()
        .cluster_arn(ARN)
        .cluster_name("events")
        .cluster_type(ClusterType::Serverless)
        .state(state)
        .current_version("K1")
        .tags("team", "streaming")
        .serverless(
            Serverless::builder()
                .vpc_configs(
                    VpcConfig::builder()
                        .subnet_ids("subnet-b")
                        .subnet_ids("subnet-a")
                        // AWS picked the VPC's default group.
                        .security_group_ids("sg-default")
                        .build(),
                )
                .client_authentication(
                    ServerlessClientAuthentication::builder()
                        .sasl(
                            ServerlessSasl::builder()
                                .iam(Iam::builder().enabled(true).build())
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .build()
}

fn describe(state: ClusterState) -> Rule {
    mock!(Client::describe_cluster_v2)
        .match_requests(|r| r.cluster_arn() == Some(ARN))
        .then_output(move || {
            DescribeClusterV2Output::builder()
                .cluster_info(cluster(state.clone()))
                .build()
        })
}

fn not_found_v2() -> Rule {
    mock!(Client::describe_cluster_v2)
        .then_http_response(|| aws_error(404, "NotFoundException", "Cluster not found"))
}

fn bootstrap() -> Rule {
    mock!(Client::get_bootstrap_brokers)
        .match_requests(|r| r.cluster_arn() == Some(ARN))
        .then_output(|| {
            GetBootstrapBrokersOutput::builder()
                .bootstrap_broker_string_sasl_iam(IAM_BROKERS)
                .build()
        })
}

fn set(items: &[&str]) -> Tf<Set<String>> {
    Tf::Known(Set(items.iter().map(|s| s.to_string()).collect()))
}

/// What Terraform plans for a new cluster whose configuration leaves security groups out.
fn planned() -> ServerlessModel {
    ServerlessModel {
        cluster_name: "events".into(),
        tags: Tf::Known([("team".to_string(), "streaming".to_string())].into()),
        vpc_config: Tf::Known(vec![VpcConfigModel {
            subnet_ids: set(&["subnet-a", "subnet-b"]),
            security_group_ids: Tf::Unknown,
        }]),
        client_authentication: Tf::Known(ServerlessAuthModel {
            sasl: Tf::Known(ServerlessSaslModel {
                iam: Tf::Known(true),
            }),
        }),
        id: Tf::Unknown,
        arn: Tf::Unknown,
        state: Tf::Unknown,
        bootstrap_brokers_sasl_iam: Tf::Unknown,
        ..ServerlessModel::default()
    }
}

fn prior() -> ServerlessModel {
    let mut p = planned();
    p.id = ARN.into();
    p.arn = ARN.into();
    p.state = "ACTIVE".into();
    p.bootstrap_brokers_sasl_iam = IAM_BROKERS.into();
    p.vpc_config = Tf::Known(vec![VpcConfigModel {
        subnet_ids: set(&["subnet-a", "subnet-b"]),
        security_group_ids: set(&["sg-default"]),
    }]);
    p
}

fn summaries(d: &Diagnostics) -> String {
    d.0.iter()
        .map(|x| format!("{}: {}", x.summary, x.detail))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn schema_and_models_agree() {
    let s = schema().block;
    check_model_matches::<ServerlessModel>(&s).unwrap();
    let nested = |b: &Block, n: &str| b.blocks.iter().find(|x| x.name == n).unwrap().block.clone();
    check_model_matches::<VpcConfigModel>(&nested(&s, "vpc_config")).unwrap();
    let auth = nested(&s, "client_authentication");
    check_model_matches::<ServerlessAuthModel>(&auth).unwrap();
    check_model_matches::<ServerlessSaslModel>(&nested(&auth, "sasl")).unwrap();
}

#[tokio::test]
async fn create_sends_the_v2_request_waits_until_active_and_reads_the_iam_brokers() {
    let create_call = mock!(Client::create_cluster_v2)
        .match_requests(|r| {
            let s = r.serverless().unwrap();
            let vpc = &s.vpc_configs()[0];
            r.cluster_name() == Some("events")
                && r.provisioned().is_none()
                && s.vpc_configs().len() == 1
                && vpc.subnet_ids() == ["subnet-a", "subnet-b"]
                && vpc.security_group_ids().is_empty()
                && s.client_authentication()
                    .and_then(|a| a.sasl())
                    .and_then(|s| s.iam())
                    .and_then(|i| i.enabled())
                    == Some(true)
                && r.tags().unwrap()["team"] == "streaming"
        })
        .then_output(|| {
            CreateClusterV2Output::builder()
                .cluster_arn(ARN)
                .state(ClusterState::Creating)
                .build()
        });
    let creating = describe(ClusterState::Creating);
    let creating2 = describe(ClusterState::Creating);
    let active = describe(ClusterState::Active);
    let brokers = bootstrap();
    let msk = msk(&[&create_call, &creating, &creating2, &active, &brokers]);
    let mut d = Diagnostics::default();
    let state = create(&msk, &ctx(), planned(), &mut d).await;
    assert!(!d.has_errors(), "{}", summaries(&d));
    let state = state.unwrap();
    assert_eq!(create_call.num_calls(), 1);
    assert_eq!(
        creating.num_calls() + creating2.num_calls() + active.num_calls(),
        3
    );
    assert_eq!(state.arn, Tf::Known(ARN.into()));
    assert_eq!(state.id, state.arn);
    assert_eq!(state.state, Tf::Known("ACTIVE".into()));
    assert_eq!(
        state.bootstrap_brokers_sasl_iam,
        Tf::Known(IAM_BROKERS.into())
    );
    // AWS's choice of security group is recorded; subnets are a set (AWS's order is not kept).
    assert_eq!(state.vpc_config, prior().vpc_config);
    assert_eq!(state.tags, planned().tags);
}

#[tokio::test]
async fn a_failed_cluster_reports_aws_state_info_and_stays_in_state() {
    let create_call = mock!(Client::create_cluster_v2)
        .then_output(|| CreateClusterV2Output::builder().cluster_arn(ARN).build());
    let failed = mock!(Client::describe_cluster_v2).then_output(|| {
        let mut c = cluster(ClusterState::Failed);
        c.state_info = Some(
            StateInfo::builder()
                .code("InsufficientFreeAddressesInSubnet")
                .message("subnet-a has no free addresses")
                .build(),
        );
        DescribeClusterV2Output::builder().cluster_info(c).build()
    });
    let msk = msk(&[&create_call, &failed]);
    let mut d = Diagnostics::default();
    let state = create(&msk, &ctx(), planned(), &mut d).await;
    let text = summaries(&d);
    assert!(text.contains("InsufficientFreeAddressesInSubnet"), "{text}");
    assert!(text.contains("subnet-a has no free addresses"), "{text}");
    let state = state.expect("a created cluster stays in state (tainted)");
    assert_eq!(state.arn, Tf::Known(ARN.into()));
    assert_eq!(state.bootstrap_brokers_sasl_iam, Tf::Null);
    assert_eq!(state.state, Tf::Null, "no unknowns in a saved state");
    let vpc = &state.vpc_config.known().unwrap()[0];
    assert_eq!(vpc.security_group_ids, Tf::Null);
}

#[tokio::test]
async fn the_create_wait_ends_at_the_timeout_on_a_cluster_left_creating() {
    let create_call = mock!(Client::create_cluster_v2)
        .then_output(|| CreateClusterV2Output::builder().cluster_arn(ARN).build());
    let creating = mock!(Client::describe_cluster_v2)
        .sequence()
        .output(|| {
            DescribeClusterV2Output::builder()
                .cluster_info(cluster(ClusterState::Creating))
                .build()
        })
        .repeatedly()
        .build();
    let msk = msk(&[&create_call, &creating]);
    let mut p = planned();
    p.timeouts = Tf::Known(Timeouts {
        create: "50ms".into(),
        ..Default::default()
    });
    let mut d = Diagnostics::default();
    let state = create(&msk, &ctx(), p, &mut d).await.unwrap();
    let text = summaries(&d);
    assert!(text.contains("not ACTIVE"), "{text}");
    assert!(text.contains("time limit"), "{text}");
    assert!(text.contains("CREATING"), "the last state is named: {text}");
    assert!(creating.num_calls() >= 1);
    assert_eq!(state.arn, Tf::Known(ARN.into()));
    assert_eq!(state.state, Tf::Known("CREATING".into()));
}

#[tokio::test]
async fn access_denied_on_create_names_the_action() {
    let denied = mock!(Client::create_cluster_v2).then_http_response(|| {
        aws_error(
            403,
            "ForbiddenException",
            "User: arn:aws:iam::1:user/ci is not authorized to perform: kafka:CreateClusterV2",
        )
    });
    let msk = msk(&[&denied]);
    let mut d = Diagnostics::default();
    assert!(create(&msk, &ctx(), planned(), &mut d).await.is_none());
    assert_eq!(d.0.len(), 1);
    assert_eq!(d.0[0].summary, "Access denied: kafka:CreateClusterV2");
    assert_eq!(denied.num_calls(), 1, "access denied is not retried");
}

#[tokio::test]
async fn throttling_on_read_is_retried() {
    let flaky = mock!(Client::describe_cluster_v2)
        .sequence()
        .http_response(|| aws_error(429, "TooManyRequestsException", "Rate exceeded"))
        .http_response(|| aws_error(503, "ServiceUnavailableException", "try again"))
        .output(|| {
            DescribeClusterV2Output::builder()
                .cluster_info(cluster(ClusterState::Active))
                .build()
        })
        .build();
    let brokers = bootstrap();
    let msk = msk(&[&flaky, &brokers]);
    let mut d = Diagnostics::default();
    let state = read(&msk, prior(), &mut d).await.unwrap();
    assert!(!d.has_errors(), "{}", summaries(&d));
    assert_eq!(flaky.num_calls(), 3);
    assert_eq!(state, prior());
}

#[tokio::test]
async fn a_missing_cluster_on_read_is_drift() {
    let gone = not_found_v2();
    let msk = msk(&[&gone]);
    let mut d = Diagnostics::default();
    assert_eq!(read(&msk, prior(), &mut d).await, None);
    assert!(d.0.is_empty(), "{}", summaries(&d));
}

#[tokio::test]
async fn a_read_error_keeps_the_state_and_says_which_call() {
    let broken = mock!(Client::describe_cluster_v2)
        .sequence()
        .http_response(|| aws_error(500, "InternalServerErrorException", "boom"))
        .repeatedly()
        .build();
    let msk = msk(&[&broken]);
    let mut d = Diagnostics::default();
    assert_eq!(read(&msk, prior(), &mut d).await, Some(prior()));
    assert!(
        summaries(&d).contains("kafka:DescribeClusterV2 failed"),
        "{}",
        summaries(&d)
    );
}

#[tokio::test]
async fn tags_change_in_place_with_tag_and_untag() {
    let mut want = prior();
    want.tags = Tf::Known(
        [
            ("team".to_string(), "data".to_string()),
            ("env".to_string(), "prod".to_string()),
        ]
        .into(),
    );
    let mut before = prior();
    before.tags = Tf::Known(
        [
            ("team".to_string(), "streaming".to_string()),
            ("old".to_string(), "x".to_string()),
        ]
        .into(),
    );
    let untag = mock!(Client::untag_resource)
        .match_requests(|r| r.resource_arn() == Some(ARN) && r.tag_keys() == ["old"])
        .then_output(|| UntagResourceOutput::builder().build());
    let tag = mock!(Client::tag_resource)
        .match_requests(|r| {
            let t = r.tags().unwrap();
            r.resource_arn() == Some(ARN)
                && t.len() == 2
                && t["team"] == "data"
                && t["env"] == "prod"
        })
        .then_output(|| TagResourceOutput::builder().build());
    let after = mock!(Client::describe_cluster_v2).then_output(|| {
        let mut c = cluster(ClusterState::Active);
        c.tags = Some(
            [
                ("team".to_string(), "data".to_string()),
                ("env".to_string(), "prod".to_string()),
            ]
            .into(),
        );
        DescribeClusterV2Output::builder().cluster_info(c).build()
    });
    let brokers = bootstrap();
    let msk = msk(&[&untag, &tag, &after, &brokers]);
    let mut d = Diagnostics::default();
    let state = update(&msk, before, want.clone(), &mut d).await;
    assert!(!d.has_errors(), "{}", summaries(&d));
    assert_eq!((untag.num_calls(), tag.num_calls()), (1, 1));
    assert_eq!(state.tags, want.tags);
}

#[tokio::test]
async fn delete_waits_until_the_cluster_is_gone() {
    let delete_call = mock!(Client::delete_cluster)
        .match_requests(|r| r.cluster_arn() == Some(ARN))
        .then_output(|| DeleteClusterOutput::builder().cluster_arn(ARN).build());
    let deleting = describe(ClusterState::Deleting);
    let deleting2 = describe(ClusterState::Deleting);
    let gone = not_found_v2();
    let msk = msk(&[&delete_call, &deleting, &deleting2, &gone]);
    let mut d = Diagnostics::default();
    delete(&msk, &ctx(), prior(), &mut d).await;
    assert!(d.0.is_empty(), "{}", summaries(&d));
    assert_eq!(
        (
            delete_call.num_calls(),
            deleting.num_calls() + deleting2.num_calls(),
            gone.num_calls()
        ),
        (1, 2, 1)
    );
}

#[tokio::test]
async fn deleting_a_cluster_already_gone_is_done() {
    let delete_call = mock!(Client::delete_cluster)
        .then_http_response(|| aws_error(404, "NotFoundException", "Cluster not found"));
    let msk = msk(&[&delete_call]);
    let mut d = Diagnostics::default();
    delete(&msk, &ctx(), prior(), &mut d).await;
    assert!(d.0.is_empty(), "{}", summaries(&d));
}

#[tokio::test]
async fn import_then_read_adopts_what_aws_reports() {
    let found = describe(ClusterState::Active);
    let brokers = bootstrap();
    let msk = msk(&[&found, &brokers]);
    let mut d = Diagnostics::default();
    let imported = import(ARN, &mut d).unwrap();
    let state = read(&msk, imported, &mut d).await.unwrap();
    assert!(!d.has_errors(), "{}", summaries(&d));
    let mut want = prior();
    want.timeouts = Tf::Null;
    assert_eq!(state, want);

    for bad in [
        "events",
        "arn:aws:s3:::bucket",
        "arn:aws:kafka:eu-west-1:1:nothing",
    ] {
        let mut d = Diagnostics::default();
        assert!(import(bad, &mut d).is_none(), "{bad}");
        assert!(summaries(&d).contains("by its ARN"), "{bad}");
    }
}

#[tokio::test]
async fn importing_a_provisioned_cluster_says_which_resource_to_use() {
    let provisioned = mock!(Client::describe_cluster_v2).then_output(|| {
        let mut c = cluster(ClusterState::Active);
        c.cluster_type = Some(ClusterType::Provisioned);
        c.serverless = None;
        DescribeClusterV2Output::builder().cluster_info(c).build()
    });
    let msk = msk(&[&provisioned]);
    let mut d = Diagnostics::default();
    let imported = import(ARN, &mut d).unwrap();
    assert_eq!(read(&msk, imported, &mut d).await, None);
    let text = summaries(&d);
    assert!(text.contains("PROVISIONED cluster"), "{text}");
    assert!(text.contains("ferry_msk_cluster"), "{text}");
}

#[test]
fn iam_off_is_an_error_on_the_attribute() {
    let mut m = planned();
    m.client_authentication = Tf::Known(ServerlessAuthModel {
        sasl: Tf::Known(ServerlessSaslModel {
            iam: Tf::Known(false),
        }),
    });
    let mut d = Diagnostics::default();
    validate(&m, &mut d);
    assert_eq!(
        d.0[0].path.as_ref().unwrap().to_string(),
        "client_authentication.sasl.iam"
    );
    let mut d = Diagnostics::default();
    validate(&planned(), &mut d);
    assert!(d.0.is_empty());
}

#[test]
fn ids_are_checked_on_the_attribute() {
    let at = AttributePath::root("vpc_config")
        .index(0)
        .attr("subnet_ids");
    let list = |items: &[&str]| Value::Set(items.iter().map(|s| Value::string(*s)).collect());
    let mut d = Diagnostics::default();
    check_subnets(&list(&["subnet-a"]), &at, &mut d);
    check_security_groups(&list(&[]), &at, &mut d);
    assert!(d.0.is_empty());
    for (bad, check) in [
        (
            list(&[]),
            check_subnets as fn(&Value, &AttributePath, &mut Diagnostics),
        ),
        (list(&["sg-1"]), check_subnets),
        (list(&["subnet-a"]), check_security_groups),
    ] {
        let mut d = Diagnostics::default();
        check(&bad, &at, &mut d);
        assert_eq!(d.0.len(), 1, "{bad:?}");
        assert_eq!(
            d.0[0].path.as_ref().unwrap().to_string(),
            "vpc_config[0].subnet_ids"
        );
    }
}

#[test]
fn security_groups_left_out_are_known_after_apply_on_create_only() {
    let config = {
        let mut m = planned();
        m.vpc_config = Tf::Known(vec![VpcConfigModel {
            subnet_ids: set(&["subnet-a"]),
            security_group_ids: Tf::Null,
        }]);
        m
    };
    let mut p = Plan {
        prior: None,
        config: config.clone(),
        planned: config.clone(),
        requires_replace: vec![],
    };
    plan_security_groups(&mut p);
    assert_eq!(
        p.planned.vpc_config.known().unwrap()[0].security_group_ids,
        Tf::Unknown
    );
    let mut p = Plan {
        prior: Some(prior()),
        config: config.clone(),
        planned: prior(),
        requires_replace: vec![],
    };
    plan_security_groups(&mut p);
    assert_eq!(p.planned, prior(), "an update keeps what AWS chose");
}
