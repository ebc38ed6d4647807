//! The AWS side of the provider: the provider block's `aws { ... }` settings, the MSK client
//! built from them (lazily: a Kafka-only configuration never resolves AWS credentials or a
//! region), how AWS errors become diagnostics, and the waits every MSK resource shares.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_kafka::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kafka::types::ClusterState;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use tfplugin::{Attribute, AttributePath, Block, Diagnostics, Model, NestedBlock, Tf, Type};

/// `aws { ... }` in the provider block.
#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct AwsModel {
    pub region: Tf<String>,
    pub profile: Tf<String>,
    pub max_retries: Tf<i64>,
    pub assume_role: Tf<AssumeRoleModel>,
    pub endpoints: Tf<EndpointsModel>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct AssumeRoleModel {
    pub role_arn: Tf<String>,
    pub session_name: Tf<String>,
    pub external_id: Tf<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Model)]
pub struct EndpointsModel {
    pub kafka: Tf<String>,
}

pub const DEFAULT_MAX_RETRIES: i64 = 10;

pub fn aws_block() -> NestedBlock {
    NestedBlock::single(
        "aws",
        Block::new(
            "AWS settings for the Amazon MSK resources and data sources. Credentials come from the \
             standard AWS chain (environment, shared config and credentials files, web identity, \
             container and instance roles). Nothing here is read until an MSK object is used.",
        )
        .attribute(Attribute::optional("region", Type::String).describe(
            "AWS region, e.g. \"eu-west-1\". Defaults to AWS_REGION / the profile's region.",
        ))
        .attribute(Attribute::optional("profile", Type::String).describe(
            "Named profile of the shared AWS config files. Defaults to AWS_PROFILE / `default`.",
        ))
        .attribute(
            Attribute::optional("max_retries", Type::Number)
                .describe(&format!(
                    "How often a throttled (TooManyRequestsException) or failed (HTTP 5xx) AWS \
                     call is retried, with exponential backoff and jitter. Defaults to {DEFAULT_MAX_RETRIES}."
                ))
                .validate(tfplugin::Validator::int_range(0, 100, "Invalid max_retries")),
        )
        .block(NestedBlock::single(
            "assume_role",
            Block::new("Assume this IAM role (with STS) on top of the base credentials.")
                .attribute(
                    Attribute::required("role_arn", Type::String)
                        .describe("ARN of the role to assume."),
                )
                .attribute(
                    Attribute::optional("session_name", Type::String)
                        .describe("Session name recorded in CloudTrail. Defaults to `ferry`."),
                )
                .attribute(
                    Attribute::optional("external_id", Type::String)
                        .describe("External id the role's trust policy requires."),
                ),
        ))
        .block(NestedBlock::single(
            "endpoints",
            Block::new(
                "Endpoint overrides, for private endpoints and emulators. AWS_ENDPOINT_URL_KAFKA \
                 works too.",
            )
            .attribute(
                Attribute::optional("kafka", Type::String)
                    .describe("URL of the MSK (kafka) API, e.g. \"http://127.0.0.1:4566\"."),
            ),
        )),
    )
}

/// An MSK API client and how long waits poll.
#[derive(Clone, Debug)]
pub struct Msk {
    pub client: aws_sdk_kafka::Client,
    pub poll: Poll,
}

/// Poll interval: `first`, doubling up to `max`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Poll {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Poll {
    fn default() -> Self {
        Poll {
            first: Duration::from_secs(2),
            max: Duration::from_secs(30),
        }
    }
}

impl Poll {
    pub fn next(&self, current: Duration) -> Duration {
        (current * 2).min(self.max)
    }
}

/// The retry policy every MSK call runs with: the SDK's standard mode (throttling errors and
/// HTTP 500/502/503/504 are retried with exponential backoff and jitter).
pub fn retry_config(max_retries: i64) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(max_retries.clamp(0, 100) as u32 + 1)
        .with_initial_backoff(Duration::from_secs(1))
        .with_max_backoff(Duration::from_secs(20))
}

/// How long one attempt of an AWS call may take (connect, send, read the whole answer) before it
/// fails and is retried like a 5xx; with `max_retries` this bounds every call.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub fn timeout_config() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .build()
}

/// Builds the client from the provider's `aws` block (null: all defaults).
pub async fn connect(settings: &Tf<AwsModel>) -> Msk {
    // Two crypto providers may be linked (aws-lc-rs for the plugin host, and whatever a
    // dependency enables); rustls then refuses to pick one. Choose explicitly, once.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let s = settings.known().cloned().unwrap_or_default();
    let retries = s
        .max_retries
        .known()
        .copied()
        .unwrap_or(DEFAULT_MAX_RETRIES);
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config(retries))
        .timeout_config(timeout_config());
    if let Some(region) = s.region.known() {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(profile) = s.profile.known() {
        loader = loader.profile_name(profile);
    }
    let base = loader.load().await;
    let mut config = aws_sdk_kafka::config::Builder::from(&base)
        .http_client(super::timestamps::LenientTimestamps::default_https());
    if let Some(role) = s.assume_role.known()
        && let Some(arn) = role.role_arn.known()
    {
        let mut provider = aws_config::sts::AssumeRoleProvider::builder(arn.clone())
            .session_name(role.session_name.or("ferry".to_string()))
            .configure(&base);
        if let Some(id) = role.external_id.known() {
            provider = provider.external_id(id.clone());
        }
        config = config.credentials_provider(provider.build().await);
    }
    if let Some(url) = s.endpoints.known().and_then(|e| e.kafka.known()) {
        config = config.endpoint_url(url.clone());
    }
    Msk {
        client: aws_sdk_kafka::Client::from_conf(config.build()),
        poll: Poll::default(),
    }
}

/// What kind of failure an AWS error is, as far as resources care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    AccessDenied,
    /// Still throttled or failing after every retry.
    Throttled,
    Other,
}

/// One failed AWS call: which action, and what AWS said.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsError {
    pub action: &'static str,
    pub kind: ErrorKind,
    pub code: Option<String>,
    pub status: Option<u16>,
    pub message: String,
}

impl AwsError {
    pub fn from_sdk<E>(action: &'static str, e: &SdkError<E, HttpResponse>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let status = e.raw_response().map(|r| r.status().as_u16());
        let code = e.code().map(str::to_string);
        let message = match e {
            SdkError::ServiceError(_) => e.message().unwrap_or_default().to_string(),
            _ => DisplayErrorContext(e).to_string(),
        };
        let kind = match (code.as_deref(), status) {
            (Some("NotFoundException"), _) | (_, Some(404)) => ErrorKind::NotFound,
            (
                Some(
                    "ForbiddenException"
                    | "AccessDeniedException"
                    | "UnauthorizedException"
                    | "UnrecognizedClientException"
                    | "InvalidSignatureException",
                ),
                _,
            )
            | (_, Some(401 | 403)) => ErrorKind::AccessDenied,
            (Some("TooManyRequestsException" | "ThrottlingException"), _) | (_, Some(429)) => {
                ErrorKind::Throttled
            }
            _ => ErrorKind::Other,
        };
        AwsError {
            action,
            kind,
            code,
            status,
            message,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    /// An error diagnostic: access denied names the IAM action to allow.
    pub fn report(&self, diags: &mut Diagnostics, path: Option<AttributePath>, summary: &str) {
        let what = match (&self.code, self.status) {
            (Some(c), Some(s)) => format!("{c} (HTTP {s})"),
            (Some(c), None) => c.clone(),
            (None, Some(s)) => format!("HTTP {s}"),
            (None, None) => "no response".to_string(),
        };
        let (summary, detail) = match self.kind {
            ErrorKind::AccessDenied => (
                format!("Access denied: kafka:{}", self.action),
                format!(
                    "AWS refused kafka:{} ({what}: {}). Allow the action kafka:{} in IAM for the \
                     identity the provider runs as (see the provider's aws block and the AWS \
                     credential chain).",
                    self.action, self.message, self.action
                ),
            ),
            ErrorKind::Throttled => (
                format!("{summary}: kafka:{} still throttled", self.action),
                format!(
                    "{what}: {}. The call was retried with backoff; raise aws.max_retries or try later.",
                    self.message
                ),
            ),
            _ => (
                format!("{summary}: kafka:{} failed", self.action),
                format!("{what}: {}", self.message),
            ),
        };
        match path {
            Some(p) => diags.attribute_error(p, summary, detail),
            None => diags.error(summary, detail),
        }
    }
}

/// `result.map_err(|e| AwsError::from_sdk(action, &e))`.
pub trait Call<T> {
    fn action(self, action: &'static str) -> Result<T, AwsError>;
}

impl<T, E> Call<T> for Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    fn action(self, action: &'static str) -> Result<T, AwsError> {
        self.map_err(|e| AwsError::from_sdk(action, &e))
    }
}

/// Why a wait did not reach its goal.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitError {
    Aws(AwsError),
    /// The cluster or operation ended in a failed state; AWS's own words.
    Failed(String),
    /// Timed out or stopped, with the last state seen.
    Interrupted(tfplugin::Interrupted, String),
}

impl WaitError {
    pub fn report(&self, diags: &mut Diagnostics, summary: &str) {
        match self {
            WaitError::Aws(e) => e.report(diags, None, summary),
            WaitError::Failed(detail) => diags.error(summary, detail.clone()),
            WaitError::Interrupted(why, last) => diags.error(
                format!("{summary}: {why}"),
                format!("The last state seen was {last}. The change goes on in AWS; the next apply or refresh picks it up."),
            ),
        }
    }
}

/// Polls until `check` answers `Some`, sleeping `poll.first`, doubling up to `poll.max`.
/// `check` returns Ok(None) with a description of the current state to keep waiting.
pub async fn poll_until<D, T, F, Fut>(
    ctx: &tfplugin::Ctx<D>,
    poll: Poll,
    mut check: F,
) -> Result<T, WaitError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Result<T, String>, WaitError>>,
{
    let mut interval = poll.first;
    let mut last = "not read yet".to_string();
    loop {
        // The call itself ends with the wait's deadline or StopProvider too.
        last = match ctx.run(check()).await {
            Ok(answer) => match answer? {
                Ok(done) => return Ok(done),
                Err(state) => state,
            },
            Err(why) => return Err(WaitError::Interrupted(why, last)),
        };
        if let Err(why) = ctx.sleep(interval).await {
            return Err(WaitError::Interrupted(why, last));
        }
        interval = poll.next(interval);
    }
}

/// Waits until the cluster is ACTIVE; FAILED reports AWS's state info.
pub async fn wait_cluster_active<D>(
    msk: &Msk,
    ctx: &tfplugin::Ctx<D>,
    arn: &str,
) -> Result<aws_sdk_kafka::types::ClusterInfo, WaitError> {
    poll_until(ctx, msk.poll, || async {
        let out = msk
            .client
            .describe_cluster()
            .cluster_arn(arn)
            .send()
            .await
            .action("DescribeCluster")
            .map_err(WaitError::Aws)?;
        let Some(info) = out.cluster_info else {
            return Ok(Err("no cluster info".to_string()));
        };
        match info.state() {
            Some(ClusterState::Active) => Ok(Ok(info)),
            Some(ClusterState::Failed) => {
                let si = info.state_info();
                Err(WaitError::Failed(format!(
                    "Cluster {arn} is FAILED: {} {}",
                    si.and_then(|s| s.code()).unwrap_or("(no code)"),
                    si.and_then(|s| s.message()).unwrap_or("(no message)")
                )))
            }
            other => Ok(Err(
                other.map_or("unknown".into(), |s| s.as_str().to_string())
            )),
        }
    })
    .await
}

/// Waits until DescribeCluster answers NotFound.
pub async fn wait_cluster_gone<D>(
    msk: &Msk,
    ctx: &tfplugin::Ctx<D>,
    arn: &str,
) -> Result<(), WaitError> {
    poll_until(ctx, msk.poll, || async {
        match msk
            .client
            .describe_cluster()
            .cluster_arn(arn)
            .send()
            .await
            .action("DescribeCluster")
        {
            Ok(out) => Ok(Err(out
                .cluster_info
                .and_then(|i| i.state)
                .map_or("unknown".into(), |s| s.as_str().to_string()))),
            Err(e) if e.is_not_found() => Ok(Ok(())),
            Err(e) => Err(WaitError::Aws(e)),
        }
    })
    .await
}

/// Waits for a cluster operation (an update) to finish: UPDATE_COMPLETE, or an error with
/// AWS's error info for UPDATE_FAILED.
pub async fn wait_operation<D>(
    msk: &Msk,
    ctx: &tfplugin::Ctx<D>,
    operation_arn: &str,
) -> Result<(), WaitError> {
    poll_until(ctx, msk.poll, || async {
        let out = msk
            .client
            .describe_cluster_operation()
            .cluster_operation_arn(operation_arn)
            .send()
            .await
            .action("DescribeClusterOperation")
            .map_err(WaitError::Aws)?;
        let info = out.cluster_operation_info;
        let state = info
            .as_ref()
            .and_then(|i| i.operation_state())
            .unwrap_or("unknown")
            .to_string();
        match state.as_str() {
            "UPDATE_COMPLETE" => Ok(Ok(())),
            "UPDATE_FAILED" => {
                let err = info.as_ref().and_then(|i| i.error_info());
                Err(WaitError::Failed(format!(
                    "Cluster operation {operation_arn} ({}) failed: {} {}",
                    info.as_ref()
                        .and_then(|i| i.operation_type())
                        .unwrap_or("update"),
                    err.and_then(|e| e.error_code()).unwrap_or("(no code)"),
                    err.and_then(|e| e.error_string()).unwrap_or("(no message)")
                )))
            }
            _ => Ok(Err(state)),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfplugin::model::check_model_matches;

    #[test]
    fn models_match_the_aws_block() {
        let b = aws_block().block;
        check_model_matches::<AwsModel>(&b).unwrap();
        let nested = |n: &str| b.blocks.iter().find(|x| x.name == n).unwrap().block.clone();
        check_model_matches::<AssumeRoleModel>(&nested("assume_role")).unwrap();
        check_model_matches::<EndpointsModel>(&nested("endpoints")).unwrap();
    }

    #[tokio::test]
    async fn a_call_that_never_answers_ends_with_the_wait() {
        let ctx = tfplugin::Ctx::new(
            std::sync::Arc::new(()),
            tfplugin::context::StopSignal::default(),
            tfplugin::Intent::Normal,
        )
        .with_timeout(Duration::from_millis(20));
        let hung = poll_until(&ctx, Poll::default(), || {
            std::future::pending::<Result<Result<(), String>, WaitError>>()
        })
        .await;
        assert_eq!(
            hung,
            Err(WaitError::Interrupted(
                tfplugin::Interrupted::DeadlineExceeded,
                "not read yet".into()
            ))
        );
        let t = timeout_config();
        assert_eq!(t.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(t.connect_timeout(), Some(CONNECT_TIMEOUT));
    }

    #[test]
    fn poll_interval_doubles_up_to_the_cap() {
        let p = Poll::default();
        assert_eq!(p.next(Duration::from_secs(2)), Duration::from_secs(4));
        assert_eq!(p.next(Duration::from_secs(20)), Duration::from_secs(30));
        assert_eq!(retry_config(3).max_attempts(), 4);
    }
}
