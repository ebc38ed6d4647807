//! MSK IAM authentication: SASL/OAUTHBEARER with a SigV4-presigned token.
//!
//! Amazon MSK's IAM listeners (port 9098, 9198 for public access; serverless clusters) accept
//! an OAUTHBEARER token that is a presigned URL for the `kafka-cluster:Connect` action,
//! base64url-encoded without padding:
//!
//! ```text
//! https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect
//!     &X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=<key>%2F<date>%2F<region>%2Fkafka-cluster%2Faws4_request
//!     &X-Amz-Date=<yyyymmddThhmmssZ>&X-Amz-Expires=900[&X-Amz-Security-Token=<token>]
//!     &X-Amz-SignedHeaders=host&X-Amz-Signature=<hex>&User-Agent=ferry%2F<version>
//! ```
//!
//! signed for the service `kafka-cluster` in the cluster's region over `GET`, path `/`, the
//! `host` header only and an empty payload; `User-Agent` is appended after signing (it is not
//! part of the signature), as AWS's own signer libraries do. The token is valid for 15 minutes;
//! librdkafka asks for a new one at 80 % of that.
//!
//! Credentials come from the standard AWS chain (aws-config): environment, shared profile
//! (`AWS_PROFILE`, including `role_arn`/`source_profile` and `credential_process`), web identity
//! (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, as EKS sets them), ECS container and EC2
//! instance roles. They are resolved on a small runtime of their own, within a bound, and
//! cached until shortly before they expire; neither credentials nor tokens are ever logged.
//!
//! The settings travel in librdkafka's `sasl.oauthbearer.config` string (the region and a
//! timeout; no secret), which librdkafka hands back to the token callback, so any client
//! context can produce tokens with [`oauth_token`]: [`MskIamContext`] for clients that need no
//! context of their own, or a one-line delegation in a context that does.

use std::collections::HashMap;
use std::error::Error;
use std::ffi::CString;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_types::error::display::DisplayErrorContext;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rdkafka::client::{Client, ClientContext, OAuthToken};
use rdkafka::consumer::ConsumerContext;
use rdkafka::producer::{DeliveryResult, ProducerContext};

/// How long a token is valid (`X-Amz-Expires`), as AWS's signers set it.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);
/// The SigV4 service name MSK checks.
pub const SIGNING_SERVICE: &str = "kafka-cluster";
/// The IAM action the presigned URL stands for.
pub const ACTION: &str = "kafka-cluster:Connect";
/// Upper bound for resolving credentials when the connection's timeout is longer.
pub const MAX_CREDENTIALS_WAIT: Duration = Duration::from_secs(15);
/// Marks a `sasl.oauthbearer.config` string as ferry's MSK IAM settings.
const CONFIG_TAG: &str = "ferry-msk-iam";

/// Why no token could be made. Its text never holds a secret and, but for [`Self::NotMskIam`],
/// starts with "MSK IAM:".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MskIamError {
    /// The credential chain failed, found nothing, or did not answer in time.
    Credentials(String),
    /// No usable region: not in the bootstrap host names and not in the AWS configuration.
    Region(String),
    /// Signing failed (a malformed region or credential).
    Signing(String),
    /// Librdkafka handed over settings that are not ferry's MSK IAM settings.
    NotMskIam,
}

impl fmt::Display for MskIamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MskIamError::Credentials(why) => {
                write!(f, "MSK IAM: could not get AWS credentials: {why}")
            }
            MskIamError::Region(why) => write!(f, "MSK IAM: no AWS region: {why}"),
            MskIamError::Signing(why) => write!(f, "MSK IAM: could not sign the token: {why}"),
            MskIamError::NotMskIam => f.write_str(
                "SASL OAUTHBEARER is only used for AWS_MSK_IAM, and this client has no MSK IAM \
                 settings",
            ),
        }
    }
}

impl Error for MskIamError {}

// ------------------------------------------------------------------ settings

/// What a client needs to make tokens: the signing region (when known from the bootstrap
/// servers; otherwise the AWS configuration's) and how long credentials may take.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MskIamSettings {
    pub region: Option<String>,
    pub credentials_timeout: Duration,
}

impl MskIamSettings {
    /// Settings for a connection: the region from MSK host names among `servers`, credentials
    /// within the connection's timeout (at most [`MAX_CREDENTIALS_WAIT`]).
    pub fn for_servers(servers: &[String], timeout: Duration) -> MskIamSettings {
        MskIamSettings {
            region: servers.iter().find_map(|s| region_from_host(s)),
            credentials_timeout: timeout.clamp(Duration::from_secs(1), MAX_CREDENTIALS_WAIT),
        }
    }

    /// The `sasl.oauthbearer.config` string librdkafka passes back to the token callback.
    pub fn to_config_string(&self) -> String {
        let mut s = format!(
            "{CONFIG_TAG} timeout_ms={}",
            self.credentials_timeout.as_millis()
        );
        if let Some(r) = &self.region {
            s.push_str(&format!(" region={r}"));
        }
        s
    }

    /// The inverse of [`Self::to_config_string`]; `None` for any other string.
    pub fn from_config_string(config: &str) -> Option<MskIamSettings> {
        let mut words = config.split_whitespace();
        if words.next() != Some(CONFIG_TAG) {
            return None;
        }
        let mut settings = MskIamSettings {
            region: None,
            credentials_timeout: MAX_CREDENTIALS_WAIT,
        };
        for word in words {
            match word.split_once('=') {
                Some(("region", r)) if valid_region(r) => settings.region = Some(r.to_string()),
                Some(("timeout_ms", ms)) => {
                    settings.credentials_timeout = Duration::from_millis(ms.parse().ok()?)
                }
                _ => return None,
            }
        }
        Some(settings)
    }
}

/// The region of an MSK broker host name (`host:port` accepted), e.g.
/// `b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com` or
/// `boot-abc.c1.kafka-serverless.us-east-1.amazonaws.com`.
pub fn region_from_host(server: &str) -> Option<String> {
    let host = server.rsplit_once(':').map_or(server, |(h, _)| h);
    let labels: Vec<&str> = host.split('.').collect();
    let at = labels
        .iter()
        .position(|l| *l == "kafka" || *l == "kafka-serverless")?;
    let region = labels.get(at + 1)?;
    let rest = &labels[at + 2..];
    (matches!(rest, ["amazonaws", "com"] | ["amazonaws", "com", "cn"]) && valid_region(region))
        .then(|| region.to_string())
}

/// Region names are lower-case letters, digits and dashes (`us-east-1`, `cn-north-1`); anything
/// else would change the token's host name.
fn valid_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 32
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

// ------------------------------------------------------------------ the token

/// A signed token and when it stops being valid.
#[derive(Clone, PartialEq, Eq)]
pub struct MskToken {
    /// base64url (no padding) of the presigned URL. A bearer secret: never log it.
    pub token: String,
    /// Milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
}

impl fmt::Debug for MskToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MskToken")
            .field("token", &"***")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

/// SigV4's URI encoding: everything but the unreserved characters `A-Z a-z 0-9 - _ . ~`.
const SIGV4: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, SIGV4).to_string()
}

/// What ferry puts in the token's `User-Agent` parameter (MSK logs it).
pub fn user_agent() -> String {
    format!("ferry/{}", env!("CARGO_PKG_VERSION"))
}

/// Signs a token for `region` with `credentials` at `now`. Pure: the same inputs give the same
/// token, which is what the unit tests check against an independent SigV4 computation.
pub fn sign_token(
    credentials: &Credentials,
    region: &str,
    now: SystemTime,
    user_agent: &str,
) -> Result<MskToken, MskIamError> {
    if !valid_region(region) {
        return Err(MskIamError::Signing(format!(
            "{region:?} is not a region name"
        )));
    }
    // SigV4 signs whole seconds (X-Amz-Date); the expiry follows from the same second.
    let seconds = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| MskIamError::Signing("the clock is before 1970".into()))?
        .as_secs();
    let base = format!(
        "https://kafka.{region}.amazonaws.com/?Action={}",
        enc(ACTION)
    );
    let mut url = presign(
        credentials,
        &base,
        region,
        SIGNING_SERVICE,
        UNIX_EPOCH + Duration::from_secs(seconds),
        TOKEN_LIFETIME,
        Payload::Empty,
    )?;
    url.push_str("&User-Agent=");
    url.push_str(&enc(user_agent));

    let expires = seconds
        .saturating_add(TOKEN_LIFETIME.as_secs())
        .saturating_mul(1000);
    Ok(MskToken {
        token: URL_SAFE_NO_PAD.encode(url.as_bytes()),
        expires_at_ms: i64::try_from(expires).unwrap_or(i64::MAX),
    })
}

/// The payload hash a presigned request is signed with.
#[derive(Debug, Clone, Copy)]
enum Payload {
    /// SHA-256 of nothing, as MSK's token is signed.
    Empty,
    /// `UNSIGNED-PAYLOAD`, as S3's presigned URLs are (only for the published test vector).
    #[cfg_attr(not(test), allow(dead_code))]
    Unsigned,
}

/// SigV4 query-string presigning of `GET url` (host header only): `url` with the signing
/// parameters appended, each encoded as SigV4 canonicalises it.
fn presign(
    credentials: &Credentials,
    url: &str,
    region: &str,
    service: &str,
    at: SystemTime,
    expires_in: Duration,
    payload: Payload,
) -> Result<String, MskIamError> {
    use aws_sigv4::http_request::{
        SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
    };
    use aws_sigv4::sign::v4;

    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires_in);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(at)
        .settings(settings)
        .build()
        .map_err(|e| MskIamError::Signing(e.to_string()))?;
    let body = match payload {
        Payload::Empty => SignableBody::Bytes(&[]),
        Payload::Unsigned => SignableBody::UnsignedPayload,
    };
    let request = SignableRequest::new("GET", url, std::iter::empty(), body)
        .map_err(|e| MskIamError::Signing(e.to_string()))?;
    let (instructions, _) = sign(request, &params.into())
        .map_err(|e| MskIamError::Signing(e.to_string()))?
        .into_parts();
    let mut signed = url.to_string();
    let mut separator = if url.contains('?') { '&' } else { '?' };
    for (name, value) in instructions.params() {
        signed.push(separator);
        signed.push_str(&enc(name));
        signed.push('=');
        signed.push_str(&enc(value));
        separator = '&';
    }
    Ok(signed)
}

// ------------------------------------------------------------------ credentials

/// Where credentials come from. The default is aws-config's chain; tests pass their own.
#[derive(Clone)]
pub struct CredentialSource {
    provider: SharedCredentialsProvider,
    /// The chain's region, used when the bootstrap servers did not name one.
    region: Option<String>,
    /// The last credentials and until when they are used without asking again.
    cached: Arc<Mutex<Option<(Credentials, SystemTime)>>>,
}

impl fmt::Debug for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialSource")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// Credentials this close to their expiry are fetched again.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// Credentials without an expiry (static keys) are re-read this often, so a rotated key in the
/// environment or profile is picked up.
const STATIC_REUSE: Duration = Duration::from_secs(300);

impl CredentialSource {
    pub fn new(provider: impl ProvideCredentials + 'static, region: Option<String>) -> Self {
        CredentialSource {
            provider: SharedCredentialsProvider::new(provider),
            region,
            cached: Arc::new(Mutex::new(None)),
        }
    }

    /// aws-config's default chain, for `region` (also the region STS is called in).
    async fn default_chain(region: Option<String>) -> Result<CredentialSource, MskIamError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(r) = &region {
            loader = loader.region(Region::new(r.clone()));
        }
        let sdk = loader.load().await;
        let provider = sdk.credentials_provider().ok_or_else(|| {
            MskIamError::Credentials("the AWS configuration has no credential provider".into())
        })?;
        Ok(CredentialSource {
            provider,
            region: region.or_else(|| sdk.region().map(|r| r.to_string())),
            cached: Arc::new(Mutex::new(None)),
        })
    }

    async fn credentials(&self) -> Result<Credentials, MskIamError> {
        let now = SystemTime::now();
        let cached = self.cached.lock().ok().and_then(|c| c.clone());
        if let Some((c, until)) = cached
            && now < until
        {
            return Ok(c);
        }
        let fetched = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| MskIamError::Credentials(DisplayErrorContext(&e).to_string()))?;
        let until = match fetched.expiry() {
            Some(expiry) => expiry.checked_sub(REFRESH_MARGIN).unwrap_or(now),
            None => now + STATIC_REUSE,
        };
        if let Ok(mut slot) = self.cached.lock() {
            *slot = Some((fetched.clone(), until));
        }
        Ok(fetched)
    }
}

/// One small runtime for credential resolution, apart from the caller's: librdkafka calls the
/// token callback from whichever thread polls the client, which may be inside a Tokio runtime
/// (where blocking on another future would panic).
fn runtime() -> Result<&'static tokio::runtime::Runtime, MskIamError> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("ferry-msk-iam")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| MskIamError::Credentials(format!("could not start its runtime: {e}")))
}

/// The default chain per region asked for, built once and shared by every client.
type Sources = Mutex<HashMap<Option<String>, Arc<tokio::sync::OnceCell<CredentialSource>>>>;

fn default_source_cell(region: &Option<String>) -> Arc<tokio::sync::OnceCell<CredentialSource>> {
    static SOURCES: OnceLock<Sources> = OnceLock::new();
    let sources = SOURCES.get_or_init(Default::default);
    let mut map = sources.lock().unwrap_or_else(|p| p.into_inner());
    Arc::clone(map.entry(region.clone()).or_default())
}

/// Runs `work` on the credential runtime and waits at most `within` for it, from any thread.
fn bounded<T: Send + 'static>(
    within: Duration,
    work: impl Future<Output = Result<T, MskIamError>> + Send + 'static,
) -> Result<T, MskIamError> {
    let rt = runtime()?;
    let (tx, rx) = mpsc::sync_channel(1);
    rt.spawn(async move {
        let answer = tokio::time::timeout(within, work).await;
        let _ = tx.send(answer);
    });
    let late = || {
        MskIamError::Credentials(format!(
            "the AWS credential chain did not answer within {}s",
            within.as_secs_f32()
        ))
    };
    match rx.recv_timeout(within + Duration::from_millis(500)) {
        Ok(Ok(result)) => result,
        Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Timeout) => Err(late()),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(MskIamError::Credentials(
            "the credential task ended without an answer".into(),
        )),
    }
}

/// A token from `source` (or the default chain when `None`), within the settings' bound.
pub fn token_with(
    settings: &MskIamSettings,
    source: Option<CredentialSource>,
) -> Result<MskToken, MskIamError> {
    let wanted = settings.region.clone();
    let (credentials, region) = bounded(settings.credentials_timeout, async move {
        let source = match source {
            Some(s) => s,
            None => default_source_cell(&wanted)
                .get_or_try_init(|| CredentialSource::default_chain(wanted.clone()))
                .await?
                .clone(),
        };
        let region = wanted.or_else(|| source.region.clone()).ok_or_else(|| {
            MskIamError::Region(
                "the bootstrap servers are not MSK host names and the AWS configuration names \
                 no region; set AWS_REGION (or the profile's region)"
                    .into(),
            )
        })?;
        Ok((source.credentials().await?, region))
    })?;
    sign_token(&credentials, &region, SystemTime::now(), &user_agent())
}

/// The token callback's work for any client context: `config` is the client's
/// `sasl.oauthbearer.config`, as librdkafka passes it. Never panics; errors go back to
/// librdkafka, which reports them on the client's connections.
pub fn oauth_token(config: Option<&str>) -> Result<OAuthToken, Box<dyn Error>> {
    let made = catch_unwind(AssertUnwindSafe(|| {
        let settings = config
            .and_then(MskIamSettings::from_config_string)
            .ok_or(MskIamError::NotMskIam)?;
        token_with(&settings, None)
    }))
    .unwrap_or_else(|_| {
        Err(MskIamError::Credentials(
            "the token callback failed unexpectedly".into(),
        ))
    });
    match made {
        Ok(t) => Ok(OAuthToken {
            token: t.token,
            principal_name: String::new(),
            lifetime_ms: t.expires_at_ms,
        }),
        Err(e) => {
            tracing::debug!("{e}");
            Err(Box::new(e))
        }
    }
}

/// Sets a client's first token now, on the calling thread, so a missing credential fails the
/// caller at once with [`MskIamError`] instead of after the connection timeout, and clients that
/// are not polled before their first request (admin clients, metadata-only readers) can connect.
/// Later tokens come through the client's context ([`MskIamContext`] or [`oauth_token`]) when
/// librdkafka asks ([`keep_fresh`] for clients nobody polls). `ConnectionConfig::authenticate`
/// calls it only for AWS_MSK_IAM connections. Blocks up to the credential bound: call it from a
/// blocking thread.
pub fn authenticate<C: ClientContext>(
    client: &Client<C>,
    settings: &MskIamSettings,
) -> Result<(), MskIamError> {
    set_token(client, settings, None)
}

fn set_token<C: ClientContext>(
    client: &Client<C>,
    settings: &MskIamSettings,
    source: Option<CredentialSource>,
) -> Result<(), MskIamError> {
    let token = token_with(settings, source)?;
    let value = CString::new(token.token)
        .map_err(|_| MskIamError::Signing("the token has a NUL byte".into()))?;
    let principal = CString::default();
    let mut errstr = [0 as std::ffi::c_char; 512];
    // SAFETY: the client (and so its rd_kafka_t) is alive for the borrow; librdkafka copies the
    // token and principal strings before returning; no extensions are passed (null, 0); errstr
    // is a writable buffer of the length given.
    let code = unsafe {
        rdkafka::bindings::rd_kafka_oauthbearer_set_token(
            client.native_ptr(),
            value.as_ptr(),
            token.expires_at_ms,
            principal.as_ptr(),
            std::ptr::null_mut(),
            0,
            errstr.as_mut_ptr(),
            errstr.len(),
        )
    };
    if code == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        Ok(())
    } else {
        // SAFETY: librdkafka wrote a NUL-terminated message into errstr (zeroed beforehand).
        let why = unsafe { std::ffi::CStr::from_ptr(errstr.as_ptr()) };
        Err(MskIamError::Signing(format!(
            "librdkafka refused the token: {}",
            why.to_string_lossy()
        )))
    }
}

/// [`authenticate`] for a client made from `config` (a `ConnectionConfig::client_config()`
/// plus the caller's own settings): a no-op unless `config` asks for MSK IAM. For code that
/// holds the librdkafka settings rather than the `ConnectionConfig`.
pub fn authenticate_from<C: ClientContext>(
    client: &Client<C>,
    config: &rdkafka::ClientConfig,
) -> Result<(), MskIamError> {
    match settings_from(config) {
        Some(settings) => authenticate(client, &settings),
        None => Ok(()),
    }
}

/// The MSK IAM settings of librdkafka settings made by `ConnectionConfig::client_config()`
/// for an AWS_MSK_IAM connection; `None` for any other connection.
pub fn settings_from(config: &rdkafka::ClientConfig) -> Option<MskIamSettings> {
    (config.get("sasl.mechanism") == Some("OAUTHBEARER"))
        .then(|| config.get("sasl.oauthbearer.config"))
        .flatten()
        .and_then(MskIamSettings::from_config_string)
}

/// [`keep_fresh`] for a client made from `config`: a no-op unless `config` asks for MSK IAM.
/// For shared clients that nothing polls, or whose context does not hand out tokens.
pub fn keep_fresh_from<T, C>(
    client: &Arc<T>,
    config: &rdkafka::ClientConfig,
    inner: fn(&T) -> &Client<C>,
) -> Result<(), MskIamError>
where
    T: Send + Sync + 'static,
    C: ClientContext + 'static,
{
    match settings_from(config) {
        Some(settings) => keep_fresh(client, settings, inner),
        None => Ok(()),
    }
}

/// When [`keep_fresh`] asks for the next token: at 80 % of a token's life, as librdkafka does.
const REFRESH_AFTER: Duration = Duration::from_secs(TOKEN_LIFETIME.as_secs() * 4 / 5);
/// After a failed refresh (the old token is still valid for a while), the next try.
const RETRY_AFTER: Duration = Duration::from_secs(10);
/// How often the refresh thread checks whether its client is gone.
const LIVENESS_CHECK: Duration = Duration::from_secs(2);

/// Keeps the token of a shared client that nobody polls fresh from a thread of its own. An
/// `AdminClient` is one: librdkafka posts its refresh requests on the client's main queue,
/// which only polling serves, so its context's callback is never called. Every
/// [`REFRESH_AFTER`] (sooner again after a failure) a new token is set with [`authenticate`]; the
/// thread ends once the client has been dropped (checked every [`LIVENESS_CHECK`]), and holds
/// the client only while it sets a token. The first token is the caller's [`authenticate`].
pub fn keep_fresh<T, C>(
    client: &Arc<T>,
    settings: MskIamSettings,
    inner: fn(&T) -> &Client<C>,
) -> Result<(), MskIamError>
where
    T: Send + Sync + 'static,
    C: ClientContext + 'static,
{
    refresh_thread(
        client,
        settings,
        inner,
        None,
        Schedule {
            refresh_after: REFRESH_AFTER,
            retry_after: RETRY_AFTER,
            liveness_check: LIVENESS_CHECK,
        },
    )
}

/// When [`refresh_thread`] sets tokens and checks on its client.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    refresh_after: Duration,
    retry_after: Duration,
    liveness_check: Duration,
}

fn refresh_thread<T, C>(
    client: &Arc<T>,
    settings: MskIamSettings,
    inner: fn(&T) -> &Client<C>,
    source: Option<CredentialSource>,
    every: Schedule,
) -> Result<(), MskIamError>
where
    T: Send + Sync + 'static,
    C: ClientContext + 'static,
{
    let weak = Arc::downgrade(client);
    std::thread::Builder::new()
        .name("ferry-msk-iam-refresh".into())
        .spawn(move || {
            let mut next = std::time::Instant::now() + every.refresh_after;
            loop {
                let now = std::time::Instant::now();
                std::thread::sleep(
                    every
                        .liveness_check
                        .min(next.saturating_duration_since(now)),
                );
                if weak.strong_count() == 0 {
                    return;
                }
                if std::time::Instant::now() < next {
                    continue;
                }
                let Some(client) = weak.upgrade() else { return };
                let set = catch_unwind(AssertUnwindSafe(|| {
                    set_token(inner(&client), &settings, source.clone())
                }))
                .unwrap_or_else(|_| {
                    Err(MskIamError::Signing("refresh failed unexpectedly".into()))
                });
                drop(client);
                next = std::time::Instant::now()
                    + match set {
                        Ok(()) => every.refresh_after,
                        Err(e) => {
                            tracing::debug!("token refresh: {e}");
                            every.retry_after
                        }
                    };
            }
        })
        .map(|_| ())
        .map_err(|e| MskIamError::Signing(format!("could not start the token refresh thread: {e}")))
}

/// A client context whose only job is MSK IAM tokens: for consumers, producers and plain
/// clients that need no context of their own. Works for any connection (it does nothing when
/// the connection does not use OAUTHBEARER).
#[derive(Debug, Default, Clone, Copy)]
pub struct MskIamContext;

impl ClientContext for MskIamContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn Error>> {
        oauth_token(oauthbearer_config)
    }
}

impl ConsumerContext for MskIamContext {}

impl ProducerContext for MskIamContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::{error::CredentialsError, future};
    use aws_lc_rs::{digest, hmac as lc_hmac};
    use percent_encoding::percent_decode_str;
    use std::time::Instant;

    // --- an independent SigV4 (RFC 2104 HMAC-SHA256 chain), checked on AWS's published vector

    fn hmac(key: &[u8], data: &str) -> Vec<u8> {
        let key = lc_hmac::Key::new(lc_hmac::HMAC_SHA256, key);
        lc_hmac::sign(&key, data.as_bytes()).as_ref().to_vec()
    }

    fn sha256(data: &[u8]) -> Vec<u8> {
        digest::digest(&digest::SHA256, data).as_ref().to_vec()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
        let k = hmac(format!("AWS4{secret}").as_bytes(), date);
        let k = hmac(&k, region);
        let k = hmac(&k, service);
        hmac(&k, "aws4_request")
    }

    #[test]
    fn independent_signing_key_matches_aws_published_example() {
        // AWS General Reference, "Examples of how to derive a signing key for Signature Version
        // 4": secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215, us-east-1, iam.
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex(&key),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn presigning_matches_aws_published_query_string_example() {
        // Amazon S3 API reference, "Authenticating Requests: Using Query Parameters (AWS
        // Signature Version 4)": GET examplebucket/test.txt, 20130524T000000Z, 86400 s.
        let creds = Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        );
        let url = presign(
            &creds,
            "https://examplebucket.s3.amazonaws.com/test.txt",
            "us-east-1",
            "s3",
            UNIX_EPOCH + Duration::from_secs(1_369_353_600),
            Duration::from_secs(86_400),
            Payload::Unsigned,
        )
        .unwrap();
        assert!(
            url.ends_with(
                "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
            ),
            "{url}"
        );
        assert!(url.contains(
            "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        ));
    }

    // --- the token

    const AKID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    // Session tokens hold '/', '+' and '=', which must reach the broker encoded.
    const SESSION: &str = "IQoJb3JpZ2luX2VjEXAMPLE/+token==";
    /// 2015-08-30T12:36:00Z, the date of AWS's SigV4 test suite.
    const AT: u64 = 1_440_938_160;

    fn decode(token: &str) -> String {
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "not base64url without padding: {token}"
        );
        String::from_utf8(URL_SAFE_NO_PAD.decode(token).unwrap()).unwrap()
    }

    /// (name, raw value, decoded value) in the URL's order.
    fn params(url: &str) -> Vec<(String, String, String)> {
        let (_, query) = url.split_once('?').unwrap();
        query
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                let d = percent_decode_str(v).decode_utf8().unwrap().to_string();
                (k.to_string(), v.to_string(), d)
            })
            .collect()
    }

    fn param(ps: &[(String, String, String)], name: &str) -> Option<String> {
        ps.iter().find(|p| p.0 == name).map(|p| p.2.clone())
    }

    #[test]
    fn token_is_a_presigned_kafka_cluster_connect_url() {
        let creds = Credentials::new(AKID, SECRET, Some(SESSION.into()), None, "test");
        // Sub-second parts are dropped, as X-Amz-Date has whole seconds.
        let now = UNIX_EPOCH + Duration::from_millis(AT * 1000 + 999);
        let t = sign_token(&creds, "eu-west-1", now, "ferry/test").unwrap();
        assert_eq!(t.expires_at_ms, ((AT + 900) * 1000) as i64);
        let url = decode(&t.token);
        assert!(
            url.starts_with(
                "https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&"
            ),
            "{url}"
        );
        let ps = params(&url);
        assert_eq!(ps.last().unwrap().0, "User-Agent", "added after signing");
        assert_eq!(param(&ps, "User-Agent").unwrap(), "ferry/test");
        assert_eq!(param(&ps, "Action").unwrap(), "kafka-cluster:Connect");
        assert_eq!(param(&ps, "X-Amz-Algorithm").unwrap(), "AWS4-HMAC-SHA256");
        assert_eq!(
            param(&ps, "X-Amz-Credential").unwrap(),
            "AKIDEXAMPLE/20150830/eu-west-1/kafka-cluster/aws4_request"
        );
        assert_eq!(param(&ps, "X-Amz-Date").unwrap(), "20150830T123600Z");
        assert_eq!(param(&ps, "X-Amz-Expires").unwrap(), "900");
        assert_eq!(param(&ps, "X-Amz-SignedHeaders").unwrap(), "host");
        assert_eq!(param(&ps, "X-Amz-Security-Token").unwrap(), SESSION);
        assert!(
            url.contains("X-Amz-Security-Token=IQoJb3JpZ2luX2VjEXAMPLE%2F%2Btoken%3D%3D"),
            "{url}"
        );
        // Everything but the URL's own start is in the query; the secret never is.
        assert!(!url.contains(SECRET) && !url.contains("wJalrXUtnFEMI"));

        // The signature, computed independently from the canonical request written out here.
        let canonical_query: Vec<String> = {
            let mut signed: Vec<_> = ps
                .iter()
                .filter(|p| p.0 != "X-Amz-Signature" && p.0 != "User-Agent")
                .map(|p| format!("{}={}", p.0, p.1))
                .collect();
            signed.sort();
            signed
        };
        let canonical_request = format!(
            "GET\n/\n{}\nhost:kafka.eu-west-1.amazonaws.com\n\nhost\n{}",
            canonical_query.join("&"),
            hex(&sha256(b""))
        );
        assert_eq!(
            canonical_query.join("&"),
            "Action=kafka-cluster%3AConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Feu-west-1%2Fkafka-cluster%2Faws4_request\
             &X-Amz-Date=20150830T123600Z&X-Amz-Expires=900\
             &X-Amz-Security-Token=IQoJb3JpZ2luX2VjEXAMPLE%2F%2Btoken%3D%3D\
             &X-Amz-SignedHeaders=host"
        );
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/eu-west-1/kafka-cluster/aws4_request\n{}",
            hex(&sha256(canonical_request.as_bytes()))
        );
        let key = signing_key(SECRET, "20150830", "eu-west-1", "kafka-cluster");
        assert_eq!(
            param(&ps, "X-Amz-Signature").unwrap(),
            hex(&hmac(&key, &string_to_sign))
        );

        // Deterministic for fixed inputs; another second or secret signs differently.
        let again = sign_token(&creds, "eu-west-1", now, "ferry/test").unwrap();
        assert_eq!(again, t);
        let later = sign_token(
            &creds,
            "eu-west-1",
            now + Duration::from_secs(1),
            "ferry/test",
        );
        assert_ne!(later.unwrap().token, t.token);
        let other = Credentials::new(AKID, "other", Some(SESSION.into()), None, "test");
        assert_ne!(
            sign_token(&other, "eu-west-1", now, "ferry/test")
                .unwrap()
                .token,
            t.token
        );
    }

    #[test]
    fn long_term_keys_sign_without_a_security_token() {
        let creds = Credentials::new(AKID, SECRET, None, None, "test");
        let t = sign_token(
            &creds,
            "us-east-1",
            UNIX_EPOCH + Duration::from_secs(AT),
            "ua",
        )
        .unwrap();
        let ps = params(&decode(&t.token));
        assert_eq!(param(&ps, "X-Amz-Security-Token"), None);
        assert!(url_host_is(
            &decode(&t.token),
            "kafka.us-east-1.amazonaws.com"
        ));
        assert_eq!(
            format!("{t:?}"),
            format!(
                "MskToken {{ token: \"***\", expires_at_ms: {} }}",
                (AT + 900) * 1000
            )
        );
    }

    fn url_host_is(url: &str, host: &str) -> bool {
        url.strip_prefix("https://")
            .and_then(|r| r.split_once('/'))
            .is_some_and(|(h, _)| h == host)
    }

    #[test]
    fn a_region_that_is_not_a_region_name_is_refused() {
        let creds = Credentials::new(AKID, SECRET, None, None, "test");
        for bad in ["", "evil.example.com/x", "US-EAST-1", "us east"] {
            let e = sign_token(&creds, bad, SystemTime::now(), "ua").unwrap_err();
            assert!(e.to_string().starts_with("MSK IAM: could not sign"), "{e}");
        }
    }

    #[test]
    fn region_comes_from_msk_host_names() {
        let cases = [
            (
                "b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9098",
                Some("eu-west-1"),
            ),
            (
                "b-2-public.orders.x.c3.kafka.us-east-2.amazonaws.com:9198",
                Some("us-east-2"),
            ),
            (
                "boot-abc.c1.kafka-serverless.ap-south-1.amazonaws.com:9098",
                Some("ap-south-1"),
            ),
            (
                "b-1.x.y.c1.kafka.cn-north-1.amazonaws.com.cn:9098",
                Some("cn-north-1"),
            ),
            ("127.0.0.1:9092", None),
            ("kafka.example.com:9092", None),
            ("b-1.kafka.eu-west-1.amazonaws.com.evil.example:9098", None),
        ];
        for (host, want) in cases {
            assert_eq!(region_from_host(host).as_deref(), want, "{host}");
        }
        let s = MskIamSettings::for_servers(
            &[
                "127.0.0.1:1".into(),
                "b-1.c.k.c2.kafka.eu-central-1.amazonaws.com:9098".into(),
            ],
            Duration::from_secs(60),
        );
        assert_eq!(s.region.as_deref(), Some("eu-central-1"));
        assert_eq!(s.credentials_timeout, MAX_CREDENTIALS_WAIT);
    }

    #[test]
    fn settings_round_trip_through_librdkafkas_config_string() {
        for s in [
            MskIamSettings {
                region: Some("eu-west-1".into()),
                credentials_timeout: Duration::from_secs(7),
            },
            MskIamSettings {
                region: None,
                credentials_timeout: Duration::from_millis(1500),
            },
        ] {
            let text = s.to_config_string();
            assert_eq!(MskIamSettings::from_config_string(&text), Some(s), "{text}");
        }
        for other in [
            "",
            "principal=admin",
            "ferry-msk-iam region=a.b/c",
            "ferry-msk-iam x=1",
        ] {
            assert_eq!(MskIamSettings::from_config_string(other), None, "{other}");
        }
    }

    // --- credentials: errors and bounds

    #[derive(Debug)]
    struct Failing;
    impl ProvideCredentials for Failing {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            future::ProvideCredentials::new(async {
                Err(CredentialsError::not_loaded(
                    "no credentials in the test chain",
                ))
            })
        }
    }

    #[derive(Debug)]
    struct Hanging;
    impl ProvideCredentials for Hanging {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            future::ProvideCredentials::new(std::future::pending())
        }
    }

    #[derive(Debug, Default)]
    struct Counting(std::sync::atomic::AtomicUsize);
    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            future::ProvideCredentials::ready(Ok(Credentials::new(
                AKID,
                SECRET,
                None,
                Some(SystemTime::now() + Duration::from_secs(3600)),
                "test",
            )))
        }
    }

    fn settings(timeout: Duration) -> MskIamSettings {
        MskIamSettings {
            region: Some("eu-west-1".into()),
            credentials_timeout: timeout,
        }
    }

    #[test]
    fn a_failing_chain_is_a_clear_credentials_error() {
        let e = token_with(
            &settings(Duration::from_secs(5)),
            Some(CredentialSource::new(Failing, None)),
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("MSK IAM: could not get AWS credentials: "),
            "{text}"
        );
        assert!(text.contains("no credentials in the test chain"), "{text}");
    }

    #[test]
    fn a_chain_that_never_answers_fails_within_the_bound() {
        let started = Instant::now();
        let e = token_with(
            &settings(Duration::from_secs(1)),
            Some(CredentialSource::new(Hanging, None)),
        )
        .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(e.to_string().contains("did not answer within 1s"), "{e}");
    }

    #[test]
    fn credentials_are_reused_until_close_to_expiry_and_no_region_is_an_error() {
        let counting = Arc::new(Counting::default());
        let source = CredentialSource {
            provider: SharedCredentialsProvider::new(CountingRef(Arc::clone(&counting))),
            region: None,
            cached: Arc::new(Mutex::new(None)),
        };
        for _ in 0..3 {
            let t = token_with(&settings(Duration::from_secs(5)), Some(source.clone())).unwrap();
            assert!(decode(&t.token).starts_with("https://kafka.eu-west-1.amazonaws.com/"));
        }
        assert_eq!(counting.0.load(std::sync::atomic::Ordering::SeqCst), 1);

        let no_region = MskIamSettings {
            region: None,
            credentials_timeout: Duration::from_secs(5),
        };
        let e = token_with(&no_region, Some(source)).unwrap_err();
        assert!(e.to_string().starts_with("MSK IAM: no AWS region"), "{e}");
    }

    #[derive(Debug)]
    struct CountingRef(Arc<Counting>);
    impl ProvideCredentials for CountingRef {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.0.provide_credentials()
        }
    }

    #[test]
    fn callback_refuses_settings_that_are_not_msk_iam() {
        for config in [None, Some(""), Some("principal=admin")] {
            let e = oauth_token(config)
                .err()
                .expect("no token without MSK IAM settings");
            assert!(e.to_string().contains("only used for AWS_MSK_IAM"), "{e}");
        }
    }

    #[test]
    fn tokens_can_be_made_from_inside_a_tokio_runtime() {
        // librdkafka may call the callback from a thread that is inside a runtime (a blocking
        // task polling a consumer); resolution happens on the module's own runtime instead.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let made = rt.block_on(async {
            token_with(
                &settings(Duration::from_secs(5)),
                Some(CredentialSource::new(
                    Credentials::new(AKID, SECRET, None, None, "test"),
                    None,
                )),
            )
        });
        assert!(made.is_ok(), "{made:?}");
    }

    #[test]
    fn refresh_thread_sets_tokens_until_its_client_is_dropped() {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let mut config = rdkafka::ClientConfig::new();
        config
            .set("bootstrap.servers", "127.0.0.1:1")
            .set("security.protocol", "sasl_plaintext")
            .set("sasl.mechanism", "OAUTHBEARER");
        let client: Arc<BaseConsumer<MskIamContext>> =
            Arc::new(config.create_with_context(MskIamContext).unwrap());
        // Credentials that expire within the reuse margin are fetched for every token.
        let fetched = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        #[derive(Debug)]
        struct ShortLived(Arc<std::sync::atomic::AtomicUsize>);
        impl ProvideCredentials for ShortLived {
            fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
            where
                Self: 'a,
            {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                future::ProvideCredentials::ready(Ok(Credentials::new(
                    AKID,
                    SECRET,
                    None,
                    Some(SystemTime::now() + Duration::from_secs(60)),
                    "test",
                )))
            }
        }
        let source = CredentialSource::new(ShortLived(Arc::clone(&fetched)), None);
        let every = Schedule {
            refresh_after: Duration::from_millis(100),
            // A failed set would wait this long: only successful sets keep the count rising.
            retry_after: Duration::from_secs(60),
            liveness_check: Duration::from_millis(20),
        };
        refresh_thread(
            &client,
            settings(Duration::from_secs(5)),
            |c: &BaseConsumer<MskIamContext>| c.client(),
            Some(source),
            every,
        )
        .unwrap();
        let count = || fetched.load(std::sync::atomic::Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(5);
        while count() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(count() >= 3, "{} tokens set", count());
        drop(client);
        std::thread::sleep(Duration::from_millis(200));
        let after_drop = count();
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(count(), after_drop, "the thread ended with its client");
    }
}
