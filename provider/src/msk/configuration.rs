//! `ferry_msk_configuration`: an MSK configuration (server.properties for brokers). A change of
//! the properties or the description makes a new revision in place (UpdateConfiguration).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_kafka::primitives::Blob;
use tfplugin::timeouts::{self, Operation, Timeouts};
use tfplugin::{
    Attribute, AttributePath, Block, Ctx, Diagnostics, Model, Resource, Schema, Tf, Type, Validator,
};

use super::client::{Call, Msk, WaitError, poll_until};
use super::non_empty;
use crate::provider::FerryData;

pub struct ConfigurationResource;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct ConfigurationModel {
    pub id: Tf<String>,
    pub arn: Tf<String>,
    pub name: Tf<String>,
    pub kafka_versions: Tf<Vec<String>>,
    pub server_properties: Tf<String>,
    pub description: Tf<String>,
    pub latest_revision: Tf<i64>,
    pub timeouts: Tf<Timeouts>,
}

pub fn schema() -> Schema {
    Schema {
        version: 0,
        block: Block::new(
            "An Amazon MSK configuration: the server.properties brokers run with. Changing the \
             properties or the description makes a new revision in place.",
        )
        .attribute(Attribute::computed("id", Type::String).describe("The configuration ARN.").use_state_for_unknown())
        .attribute(Attribute::computed("arn", Type::String).describe("The configuration ARN.").use_state_for_unknown())
        .attribute(
            Attribute::required("name", Type::String)
                .describe("Configuration name, unique in the account and region.")
                .validate(Validator::custom(
                    "Invalid configuration name",
                    "Letters, digits, `-` and `_`, 1 to 64 characters.",
                    check_name,
                ))
                .requires_replace(),
        )
        .attribute(
            Attribute::optional("kafka_versions", Type::list(Type::String))
                .describe("Kafka versions the configuration is for, e.g. [\"3.6.0\"]. Any version when unset.")
                .requires_replace(),
        )
        .attribute(
            Attribute::required("server_properties", Type::String)
                .describe("Broker properties in server.properties format, one `key = value` per line."),
        )
        .attribute(Attribute::optional("description", Type::String).describe("What the configuration is for."))
        .attribute(
            Attribute::computed("latest_revision", Type::Number)
                .describe("The newest revision; a cluster's configuration_info.revision names it.")
                .use_state_for_unknown()
                .computed_if_changed(&["server_properties", "description"]),
        )
        .block(timeouts::block()),
    }
}

fn check_name(v: &tfplugin::Value, at: &AttributePath, d: &mut Diagnostics) {
    let Some(s) = v.as_str() else { return };
    let ok = (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        d.attribute_error(
            at.clone(),
            "Invalid configuration name",
            format!("{s:?}: use letters, digits, '-' and '_', at most 64 characters."),
        );
    }
}

#[async_trait]
impl Resource<FerryData> for ConfigurationResource {
    type Model = ConfigurationModel;

    fn type_name(&self) -> &'static str {
        "ferry_msk_configuration"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    async fn create(
        &self,
        ctx: &Ctx<FerryData>,
        planned: ConfigurationModel,
        diags: &mut Diagnostics,
    ) -> Option<ConfigurationModel> {
        create(&ctx.data().msk().await, planned, diags).await
    }

    async fn read(
        &self,
        ctx: &Ctx<FerryData>,
        state: ConfigurationModel,
        diags: &mut Diagnostics,
    ) -> Option<ConfigurationModel> {
        read(&ctx.data().msk().await, state, diags).await
    }

    async fn update(
        &self,
        ctx: &Ctx<FerryData>,
        prior: ConfigurationModel,
        planned: ConfigurationModel,
        diags: &mut Diagnostics,
    ) -> ConfigurationModel {
        update(&ctx.data().msk().await, prior, planned, diags).await
    }

    async fn delete(
        &self,
        ctx: &Ctx<FerryData>,
        prior: ConfigurationModel,
        diags: &mut Diagnostics,
    ) {
        delete(&ctx.data().msk().await, ctx, prior, diags).await
    }

    async fn import(
        &self,
        _ctx: &Ctx<FerryData>,
        id: &str,
        diags: &mut Diagnostics,
    ) -> Option<ConfigurationModel> {
        if !(id.starts_with("arn:") && id.contains(":configuration/")) {
            diags.error(
                "Invalid import id",
                format!(
                    "Import an MSK configuration by its ARN (arn:aws:kafka:REGION:ACCOUNT:configuration/NAME/UUID); got {id:?}."
                ),
            );
            return None;
        }
        Some(ConfigurationModel {
            id: id.into(),
            arn: id.into(),
            ..ConfigurationModel::default()
        })
    }
}

fn arn_of(m: &ConfigurationModel) -> String {
    m.arn.known().or(m.id.known()).cloned().unwrap_or_default()
}

pub async fn create(
    msk: &Msk,
    planned: ConfigurationModel,
    diags: &mut Diagnostics,
) -> Option<ConfigurationModel> {
    let out = match msk
        .client
        .create_configuration()
        .name(planned.name.or(String::new()))
        .set_kafka_versions(planned.kafka_versions.known().cloned())
        .server_properties(Blob::new(planned.server_properties.or(String::new())))
        .set_description(planned.description.known().cloned())
        .send()
        .await
        .action("CreateConfiguration")
    {
        Ok(o) => o,
        Err(e) => {
            e.report(diags, None, "Could not create the MSK configuration");
            return None;
        }
    };
    let arn = out.arn.unwrap_or_default();
    Some(ConfigurationModel {
        id: arn.as_str().into(),
        arn: arn.as_str().into(),
        latest_revision: out.latest_revision.and_then(|r| r.revision).into(),
        ..planned
    })
}

pub async fn read(
    msk: &Msk,
    state: ConfigurationModel,
    diags: &mut Diagnostics,
) -> Option<ConfigurationModel> {
    let arn = arn_of(&state);
    let importing = state.name.is_null();
    let d = match msk
        .client
        .describe_configuration()
        .arn(&arn)
        .send()
        .await
        .action("DescribeConfiguration")
    {
        Ok(d) => d,
        Err(e) if e.is_not_found() => return None,
        Err(e) => {
            e.report(diags, None, "Could not read the MSK configuration");
            return Some(state);
        }
    };
    if d.state().is_some_and(|s| s.as_str() == "DELETING") {
        return None;
    }
    let revision = d.latest_revision().and_then(|r| r.revision());
    let mut next = ConfigurationModel {
        id: arn.as_str().into(),
        arn: arn.as_str().into(),
        name: d.name().map(str::to_string).into(),
        kafka_versions: Some(d.kafka_versions().to_vec())
            .filter(|v| !v.is_empty() || state.kafka_versions.known().is_some())
            .into(),
        description: if importing || state.description.known().is_some() {
            non_empty(d.description())
        } else {
            Tf::Null
        },
        latest_revision: revision.into(),
        ..state
    };
    if let Some(revision) = revision {
        match msk
            .client
            .describe_configuration_revision()
            .arn(&arn)
            .revision(revision)
            .send()
            .await
            .action("DescribeConfigurationRevision")
        {
            Ok(r) => {
                if let Some(props) = r.server_properties {
                    next.server_properties =
                        Tf::Known(String::from_utf8_lossy(props.as_ref()).into_owned());
                }
            }
            Err(e) => e.report(diags, None, "Could not read the configuration's properties"),
        }
    }
    Some(next)
}

pub async fn update(
    msk: &Msk,
    prior: ConfigurationModel,
    planned: ConfigurationModel,
    diags: &mut Diagnostics,
) -> ConfigurationModel {
    if prior.server_properties == planned.server_properties
        && prior.description == planned.description
    {
        return ConfigurationModel {
            latest_revision: prior.latest_revision,
            ..planned
        };
    }
    match msk
        .client
        .update_configuration()
        .arn(arn_of(&prior))
        .server_properties(Blob::new(planned.server_properties.or(String::new())))
        .set_description(planned.description.known().cloned())
        .send()
        .await
        .action("UpdateConfiguration")
    {
        Ok(out) => ConfigurationModel {
            latest_revision: out.latest_revision.and_then(|r| r.revision).into(),
            ..planned
        },
        Err(e) => {
            e.report(
                diags,
                Some(AttributePath::root("server_properties")),
                "Could not make a new configuration revision",
            );
            prior
        }
    }
}

pub async fn delete<D>(
    msk: &Msk,
    ctx: &Ctx<D>,
    prior: ConfigurationModel,
    diags: &mut Diagnostics,
) {
    let arn = arn_of(&prior);
    match msk
        .client
        .delete_configuration()
        .arn(&arn)
        .send()
        .await
        .action("DeleteConfiguration")
    {
        Ok(_) => {}
        Err(e) if e.is_not_found() => return,
        Err(e) => return e.report(diags, None, "Could not delete the MSK configuration"),
    }
    let within = Timeouts::get(&prior.timeouts, Operation::Delete, DEFAULT_TIMEOUT);
    let wait = poll_until(&ctx.with_timeout(within), msk.poll, || async {
        match msk
            .client
            .describe_configuration()
            .arn(&arn)
            .send()
            .await
            .action("DescribeConfiguration")
        {
            Ok(d) => Ok(Err(d
                .state()
                .map_or("unknown".into(), |s| s.as_str().to_string()))),
            Err(e) if e.is_not_found() => Ok(Ok(())),
            Err(e) => Err(WaitError::Aws(e)),
        }
    })
    .await;
    if let Err(e) = wait {
        e.report(diags, "MSK configuration deletion did not finish");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use aws_sdk_kafka::Client;
    use aws_sdk_kafka::operation::create_configuration::CreateConfigurationOutput;
    use aws_sdk_kafka::operation::delete_configuration::DeleteConfigurationOutput;
    use aws_sdk_kafka::operation::describe_configuration::DescribeConfigurationOutput;
    use aws_sdk_kafka::operation::describe_configuration_revision::DescribeConfigurationRevisionOutput;
    use aws_sdk_kafka::operation::update_configuration::UpdateConfigurationOutput;
    use aws_sdk_kafka::types::{ConfigurationRevision, ConfigurationState};
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use tfplugin::Intent;
    use tfplugin::context::StopSignal;
    use tfplugin::model::check_model_matches;

    use super::*;
    use crate::msk::client::{Poll, retry_config};

    const ARN: &str = "arn:aws:kafka:eu-west-1:1:configuration/target/abc";
    const PROPS: &str = "auto.create.topics.enable = false\n";

    fn msk(rules: &[&Rule]) -> Msk {
        let client = mock_client!(aws_sdk_kafka, RuleMode::Sequential, rules, |c| c
            .retry_config(retry_config(2).with_initial_backoff(Duration::from_millis(1))));
        Msk {
            client,
            poll: Poll {
                first: Duration::from_millis(1),
                max: Duration::from_millis(2),
            },
        }
    }

    fn revision(n: i64) -> ConfigurationRevision {
        ConfigurationRevision::builder().revision(n).build()
    }

    fn model() -> ConfigurationModel {
        ConfigurationModel {
            name: "target".into(),
            kafka_versions: Tf::Known(vec!["3.6.0".into()]),
            server_properties: PROPS.into(),
            id: Tf::Unknown,
            arn: Tf::Unknown,
            latest_revision: Tf::Unknown,
            ..ConfigurationModel::default()
        }
    }

    #[test]
    fn schema_and_model_agree() {
        check_model_matches::<ConfigurationModel>(&schema().block).unwrap();
    }

    #[tokio::test]
    async fn create_then_read_back_the_properties_of_the_latest_revision() {
        let create_call = mock!(Client::create_configuration)
            .match_requests(|r| {
                r.name() == Some("target")
                    && r.kafka_versions() == ["3.6.0"]
                    && r.server_properties().map(|b| b.as_ref()) == Some(PROPS.as_bytes())
            })
            .then_output(|| {
                CreateConfigurationOutput::builder()
                    .arn(ARN)
                    .latest_revision(revision(1))
                    .build()
            });
        let describe = mock!(Client::describe_configuration).then_output(|| {
            DescribeConfigurationOutput::builder()
                .arn(ARN)
                .name("target")
                .kafka_versions("3.6.0")
                .latest_revision(revision(1))
                .state(ConfigurationState::Active)
                .build()
        });
        let props = mock!(Client::describe_configuration_revision)
            .match_requests(|r| r.revision() == Some(1))
            .then_output(|| {
                DescribeConfigurationRevisionOutput::builder()
                    .revision(1)
                    .server_properties(Blob::new(PROPS))
                    .build()
            });
        let msk = msk(&[&create_call, &describe, &props]);
        let mut d = Diagnostics::default();
        let state = create(&msk, model(), &mut d).await.unwrap();
        assert_eq!(state.latest_revision, Tf::Known(1));
        assert_eq!(state.arn, Tf::Known(ARN.into()));
        let read_back = read(&msk, state.clone(), &mut d).await.unwrap();
        assert!(!d.has_errors());
        assert_eq!(read_back, state, "a fresh read shows no drift");
    }

    #[tokio::test]
    async fn a_properties_change_makes_a_new_revision_in_place() {
        let update_call = mock!(Client::update_configuration)
            .match_requests(|r| {
                r.arn() == Some(ARN)
                    && r.server_properties().map(|b| b.as_ref()) == Some(b"x = 1\n".as_slice())
            })
            .then_output(|| {
                UpdateConfigurationOutput::builder()
                    .arn(ARN)
                    .latest_revision(revision(2))
                    .build()
            });
        let msk = msk(&[&update_call]);
        let prior = ConfigurationModel {
            id: ARN.into(),
            arn: ARN.into(),
            latest_revision: Tf::Known(1),
            ..model()
        };
        let planned = ConfigurationModel {
            server_properties: "x = 1\n".into(),
            latest_revision: Tf::Unknown,
            ..prior.clone()
        };
        let mut d = Diagnostics::default();
        let state = update(&msk, prior, planned, &mut d).await;
        assert!(!d.has_errors());
        assert_eq!(state.latest_revision, Tf::Known(2));
        assert_eq!(update_call.num_calls(), 1);
    }

    fn http(status: u16, code: &'static str) -> HttpResponse {
        let mut r = HttpResponse::new(
            StatusCode::try_from(status).unwrap(),
            SdkBody::from(r#"{"message":"m"}"#),
        );
        r.headers_mut().insert("x-amzn-errortype", code);
        r
    }

    #[tokio::test]
    async fn delete_waits_until_gone_and_a_missing_one_reads_as_gone() {
        let del = mock!(Client::delete_configuration)
            .then_output(|| DeleteConfigurationOutput::builder().arn(ARN).build());
        let deleting = mock!(Client::describe_configuration).then_output(|| {
            DescribeConfigurationOutput::builder()
                .state(ConfigurationState::Deleting)
                .build()
        });
        let gone = mock!(Client::describe_configuration)
            .then_http_response(|| http(404, "NotFoundException"));
        let gone_again = mock!(Client::describe_configuration)
            .then_http_response(|| http(404, "NotFoundException"));
        let msk = msk(&[&del, &deleting, &gone, &gone_again]);
        let ctx = Ctx::new(Arc::new(()), StopSignal::default(), Intent::Normal);
        let prior = ConfigurationModel {
            id: ARN.into(),
            arn: ARN.into(),
            ..model()
        };
        let mut d = Diagnostics::default();
        delete(&msk, &ctx, prior.clone(), &mut d).await;
        assert!(!d.has_errors());
        assert_eq!((deleting.num_calls(), gone.num_calls()), (1, 1));
        assert_eq!(read(&msk, prior, &mut d).await, None);
    }

    #[tokio::test]
    async fn a_refused_delete_names_the_action() {
        let del = mock!(Client::delete_configuration)
            .then_http_response(|| http(403, "ForbiddenException"));
        let msk = msk(&[&del]);
        let ctx = Ctx::new(Arc::new(()), StopSignal::default(), Intent::Normal);
        let mut d = Diagnostics::default();
        let prior = ConfigurationModel {
            arn: ARN.into(),
            ..model()
        };
        delete(&msk, &ctx, prior, &mut d).await;
        assert_eq!(
            d.0[0].summary, "Access denied: kafka:DeleteConfiguration",
            "{}",
            d.0[0].detail
        );
    }
}
