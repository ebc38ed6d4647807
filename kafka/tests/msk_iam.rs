//! MSK IAM on the wire, as far as it can be shown without Amazon MSK.
//!
//! What these tests prove: a client built from an AWS_MSK_IAM `ConnectionConfig` speaks
//! SASL/OAUTHBEARER, its token (signed from credentials the standard AWS chain found) reaches
//! the broker inside the OAUTHBEARER client message, and the broker's refusal is what the
//! client reports; missing credentials fail at once with "MSK IAM: could not get AWS
//! credentials: ...".
//!
//! The gap: no test here talks to MSK, so none shows that MSK *accepts* the token. Kafka itself
//! has no SigV4 validator (its OAUTHBEARER listener validates JWTs, which a presigned URL is
//! not), so the first test uses a loopback stand-in that answers ApiVersions, SaslHandshake and
//! SaslAuthenticate and records what it receives, and the ignored test checks that a real Kafka
//! broker refuses the mechanism itself rather than the client failing on its own. The token's
//! exact shape and signature are unit-tested in `msk_iam.rs` against AWS's published SigV4
//! vectors; docs/guides/msk-iam.md says how to try it on a real cluster.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferry_kafka::msk_iam::{self, CredentialSource, MskIamSettings};
use ferry_kafka::{ConnectionConfig, SaslConfig, SaslMechanism, Secret};
use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;

const REFUSAL: &str = "ferry test broker: this token is not checked here";

fn iam(servers: &str) -> ConnectionConfig {
    let mut c = ConnectionConfig::plaintext(servers);
    c.sasl = Some(SaslConfig {
        mechanism: SaslMechanism::AwsMskIam,
        username: String::new(),
        password: Secret::new(""),
    });
    // Generous, so "fast" below means "well before the timeout", which only waiting out the
    // timeout (or a hang) breaks, however busy the machine is.
    c.timeout = Duration::from_secs(60);
    c
}

/// Refusals and credential errors must come well before the connection's timeout.
fn assert_well_before_timeout(started: Instant, conn: &ConnectionConfig) {
    assert!(
        started.elapsed() < conn.timeout / 2,
        "took {:?}, the timeout is {:?}",
        started.elapsed(),
        conn.timeout
    );
}

/// Tokens through `msk_iam::oauth_token` (the one line a context needs), or from fixed
/// credentials; remembers what librdkafka reported.
#[derive(Default)]
struct Recorder {
    fixed: Option<CredentialSource>,
    seen: Mutex<Vec<String>>,
}

impl Recorder {
    fn seen(&self) -> String {
        self.seen.lock().unwrap().join("\n")
    }
}

impl ClientContext for Recorder {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        match &self.fixed {
            None => msk_iam::oauth_token(config),
            Some(source) => {
                let settings = MskIamSettings::from_config_string(config.unwrap_or_default())
                    .ok_or("not MSK IAM settings")?;
                let t = msk_iam::token_with(&settings, Some(source.clone()))?;
                Ok(OAuthToken {
                    token: t.token,
                    principal_name: String::new(),
                    lifetime_ms: t.expires_at_ms,
                })
            }
        }
    }
    fn log(&self, _: RDKafkaLogLevel, fac: &str, message: &str) {
        self.seen.lock().unwrap().push(format!("{fac}: {message}"));
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self.seen.lock().unwrap().push(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for Recorder {}

fn consumer(conn: &ConnectionConfig, context: Recorder) -> BaseConsumer<Recorder> {
    let mut c = conn.client_config();
    c.set("group.id", "ferry-msk-iam-test");
    c.set_log_level(RDKafkaLogLevel::Debug);
    c.create_with_context(context).unwrap()
}

/// Polls until `done` holds for what the context saw, or `within` passes.
fn poll_until(c: &BaseConsumer<Recorder>, within: Duration, done: impl Fn(&str) -> bool) {
    let start = Instant::now();
    while start.elapsed() < within && !done(&c.context().seen()) {
        let _ = c.poll(Duration::from_millis(100));
    }
}

// ------------------------------------------------------------------ a loopback stand-in

/// What the stand-in received.
#[derive(Default, Debug)]
struct Wire {
    mechanisms: Vec<String>,
    auth_messages: Vec<String>,
}

fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

fn write_frame(s: &mut TcpStream, correlation: i32, body: &[u8]) {
    let mut out = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&correlation.to_be_bytes());
    out.extend_from_slice(body);
    let _ = s.write_all(&out);
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

/// Offset of the request body: after api key, version, correlation id, client id and, for
/// flexible headers, the (empty) tagged fields.
fn body_start(req: &[u8], flexible: bool) -> usize {
    let client_id = i16_at(req, 8).max(0) as usize;
    10 + client_id + usize::from(flexible)
}

fn serve(mut s: TcpStream, wire: Arc<Mutex<Wire>>) {
    while let Some(req) = read_frame(&mut s) {
        let (key, version) = (i16_at(&req, 0), i16_at(&req, 2));
        let correlation = i32::from_be_bytes([req[4], req[5], req[6], req[7]]);
        match key {
            // ApiVersions v3+: error, compact array of (key, min, max, tags), throttle, tags.
            18 if version >= 3 => {
                let mut b = 0i16.to_be_bytes().to_vec();
                let keys: [(i16, i16, i16); 3] = [(18, 0, 3), (17, 0, 1), (36, 0, 1)];
                b.push(keys.len() as u8 + 1);
                for (k, min, max) in keys {
                    b.extend_from_slice(&k.to_be_bytes());
                    b.extend_from_slice(&min.to_be_bytes());
                    b.extend_from_slice(&max.to_be_bytes());
                    b.push(0);
                }
                b.extend_from_slice(&0i32.to_be_bytes());
                b.push(0);
                write_frame(&mut s, correlation, &b);
            }
            // Older ApiVersions: "unsupported version", which makes the client ask with v3.
            18 => {
                let mut b = 35i16.to_be_bytes().to_vec();
                b.extend_from_slice(&1i32.to_be_bytes());
                b.extend_from_slice(&[0, 18, 0, 0, 0, 3]);
                write_frame(&mut s, correlation, &b);
            }
            // SaslHandshake v0/v1: accept OAUTHBEARER only.
            17 => {
                let at = body_start(&req, false);
                let n = i16_at(&req, at) as usize;
                let mechanism = String::from_utf8_lossy(&req[at + 2..at + 2 + n]).to_string();
                let ok = mechanism == "OAUTHBEARER";
                wire.lock().unwrap().mechanisms.push(mechanism);
                let mut b = if ok { 0i16 } else { 33i16 }.to_be_bytes().to_vec();
                b.extend_from_slice(&1i32.to_be_bytes());
                b.extend_from_slice(&11i16.to_be_bytes());
                b.extend_from_slice(b"OAUTHBEARER");
                write_frame(&mut s, correlation, &b);
            }
            // SaslAuthenticate v0/v1: record the client message, refuse it (58).
            36 => {
                let at = body_start(&req, false);
                let n = i32::from_be_bytes([req[at], req[at + 1], req[at + 2], req[at + 3]]);
                let message = String::from_utf8_lossy(&req[at + 4..at + 4 + n as usize]);
                wire.lock().unwrap().auth_messages.push(message.to_string());
                let mut b = 58i16.to_be_bytes().to_vec();
                b.extend_from_slice(&(REFUSAL.len() as i16).to_be_bytes());
                b.extend_from_slice(REFUSAL.as_bytes());
                b.extend_from_slice(&0i32.to_be_bytes());
                if version >= 1 {
                    b.extend_from_slice(&0i64.to_be_bytes());
                }
                write_frame(&mut s, correlation, &b);
                return;
            }
            _ => return,
        }
    }
}

fn stand_in() -> (String, Arc<Mutex<Wire>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let wire = Arc::new(Mutex::new(Wire::default()));
    let shared = Arc::clone(&wire);
    thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let w = Arc::clone(&shared);
            thread::spawn(move || serve(s, w));
        }
    });
    (addr, wire)
}

/// The token inside an OAUTHBEARER client message (`n,,\x01auth=Bearer <token>\x01\x01`),
/// decoded to the presigned URL.
fn presigned_url(message: &str) -> String {
    let token = message
        .split('\u{1}')
        .find_map(|kv| kv.strip_prefix("auth=Bearer "))
        .unwrap_or_else(|| panic!("no bearer token in {message:?}"));
    String::from_utf8(URL_SAFE_NO_PAD.decode(token).unwrap()).unwrap()
}

/// One test, because it sets the process's AWS environment (the standard chain reads it):
/// first without credentials, then with them.
#[test]
fn token_from_the_aws_chain_reaches_the_broker_and_its_refusal_is_reported() {
    // SAFETY: this is the only test in this binary that runs by default, and it sets the
    // environment before it creates any client or credential chain; the ignored test below
    // reads no AWS environment.
    unsafe {
        for var in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_ARN",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ] {
            std::env::remove_var(var);
        }
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/ferry-test/config");
        std::env::set_var(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/ferry-test/credentials",
        );
        std::env::set_var("AWS_REGION", "eu-west-1");
    }
    let (addr, wire) = stand_in();
    let conn = iam(&addr);

    // No credentials anywhere: the first token fails at once, with the chain's reason.
    let started = Instant::now();
    let c = consumer(&conn, Recorder::default());
    let e = conn.authenticate(c.client()).unwrap_err().to_string();
    assert_well_before_timeout(started, &conn);
    assert!(
        e.starts_with("MSK IAM: could not get AWS credentials: "),
        "{e}"
    );
    // The callback's failure reaches librdkafka, which says it instead of connecting.
    poll_until(&c, Duration::from_secs(30), |seen| {
        seen.contains("could not get AWS credentials")
    });
    assert!(
        c.context()
            .seen()
            .contains("MSK IAM: could not get AWS credentials"),
        "{}",
        c.context().seen()
    );
    assert!(wire.lock().unwrap().auth_messages.is_empty());
    drop(c);
    // Admin and the record operations say the same, at once.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let started = Instant::now();
    let e = rt
        .block_on(ferry_kafka::Admin::connect(&conn))
        .err()
        .expect("no admin without credentials")
        .to_string();
    assert!(e.contains("MSK IAM: could not get AWS credentials"), "{e}");
    let e = rt
        .block_on(ferry_kafka::read_latest_by_key(&conn, "t", 0, conn.timeout))
        .unwrap_err()
        .to_string();
    assert!(e.contains("MSK IAM: could not get AWS credentials"), "{e}");
    assert_well_before_timeout(started, &conn);

    // Credentials in the environment: the token reaches the broker through the context's
    // callback alone (no authenticate call), and the broker's refusal is what is reported.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDFERRYTEST");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "ferry-test-secret-never-sent");
        std::env::set_var("AWS_SESSION_TOKEN", "ferry/test+session=");
    }
    let c = consumer(&conn, Recorder::default());
    poll_until(&c, Duration::from_secs(30), |seen| seen.contains(REFUSAL));
    let seen = c.context().seen();
    assert!(
        seen.contains(REFUSAL),
        "the broker's refusal is reported: {seen}"
    );
    assert!(!seen.contains("ferry-test-secret-never-sent"), "{seen}");
    let w = wire.lock().unwrap();
    assert!(
        w.mechanisms.iter().all(|m| m == "OAUTHBEARER") && !w.mechanisms.is_empty(),
        "{w:?}"
    );
    let url = presigned_url(&w.auth_messages[0]);
    assert!(
        url.starts_with("https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&"),
        "{url}"
    );
    assert!(url.contains("X-Amz-Credential=AKIDFERRYTEST%2F"), "{url}");
    assert!(
        url.contains("X-Amz-Security-Token=ferry%2Ftest%2Bsession%3D"),
        "{url}"
    );
    assert!(url.contains("X-Amz-Expires=900"), "{url}");
    assert!(url.contains("&X-Amz-Signature="), "{url}");
    assert!(!url.contains("ferry-test-secret-never-sent"));
    drop(w);
    drop(c);

    // Admin and the record operations send tokens too, and report the broker's refusal fast.
    let before = wire.lock().unwrap().auth_messages.len();
    let started = Instant::now();
    let e = rt
        .block_on(ferry_kafka::Admin::connect(&conn))
        .err()
        .expect("the stand-in refuses every token")
        .to_string();
    assert!(e.contains(REFUSAL), "{e}");
    assert_well_before_timeout(started, &conn);
    let e = rt
        .block_on(ferry_kafka::end_offsets(
            &conn,
            &[("t".into(), 0)],
            Duration::from_secs(5),
        ))
        .unwrap_err()
        .to_string();
    // (Record operations report a refused login when their timeout ends, as for SCRAM.)
    assert!(e.to_lowercase().contains("authentication"), "{e}");
    assert!(wire.lock().unwrap().auth_messages.len() >= before + 2);

    // And through authenticate(): the first token is set before anything polls the client.
    let before = wire.lock().unwrap().auth_messages.len();
    let c = consumer(&conn, Recorder::default());
    conn.authenticate(c.client()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while wire.lock().unwrap().auth_messages.len() == before && Instant::now() < deadline {
        let _ = c.fetch_metadata(None, Duration::from_secs(1));
    }
    assert!(
        wire.lock().unwrap().auth_messages.len() > before,
        "no token reached the broker without a poll"
    );
}

/// A real Kafka broker (peer A's SASL_PLAINTEXT listener, which enables PLAIN and SCRAM but
/// not OAUTHBEARER): the client asks for OAUTHBEARER and the broker's own refusal comes back
/// within seconds, not a client-side failure or the connection timeout.
#[test]
#[ignore = "needs a running Kafka peer: make peers"]
fn a_real_broker_is_asked_for_oauthbearer_and_refuses_it() {
    let servers = std::env::var("FERRY_KAFKA_A_SASL").expect(
        "FERRY_KAFKA_A_SASL is not set: start the peers (make peers) and `source .peers/env`",
    );
    let conn = iam(&servers);
    let context = Recorder {
        fixed: Some(CredentialSource::new(
            aws_credential_types::Credentials::new(
                "AKIDFERRYTEST",
                "ferry-test-secret",
                None,
                None,
                "test",
            ),
            Some("eu-west-1".into()),
        )),
        ..Recorder::default()
    };
    let started = Instant::now();
    let c = consumer(&conn, context);
    poll_until(&c, Duration::from_secs(30), |seen| {
        seen.contains("OAUTHBEARER") && seen.to_lowercase().contains("unsupported sasl mechanism")
    });
    let seen = c.context().seen();
    assert!(
        seen.contains("OAUTHBEARER") && seen.to_lowercase().contains("unsupported sasl mechanism"),
        "{seen}"
    );
    assert_well_before_timeout(started, &conn);
    assert!(!seen.contains("ferry-test-secret"));
    // librdkafka's words for a broker error code, with the broker's own list of mechanisms.
    assert!(
        seen.contains("Broker: Unsupported SASL mechanism: broker's supported mechanisms"),
        "{seen}"
    );
}

/// Opt-in acceptance test against a real MSK cluster with IAM client authentication (see
/// docs/guides/msk-iam.md): FERRY_MSK_IAM_BOOTSTRAP is its `bootstrap_brokers_sasl_iam` (or
/// `bootstrap_brokers_public_sasl_iam`), credentials come from the standard AWS chain of the
/// shell and need `kafka-cluster:Connect` and `kafka-cluster:DescribeCluster`. `make e2e`
/// leaves it out (`--skip real_msk`: CI has no AWS account); run it by name:
/// `FERRY_MSK_IAM_BOOTSTRAP=... cargo test -p ferry-kafka --test msk_iam -- --ignored real_msk`.
#[test]
#[ignore = "needs an MSK cluster with IAM auth: FERRY_MSK_IAM_BOOTSTRAP"]
fn real_msk_cluster_accepts_the_token() {
    let servers = std::env::var("FERRY_MSK_IAM_BOOTSTRAP").expect(
        "FERRY_MSK_IAM_BOOTSTRAP is not set: this test needs a real MSK cluster with IAM \
         authentication (docs/guides/msk-iam.md)",
    );
    let mut conn = iam(&servers);
    conn.tls = Some(ferry_kafka::TlsConfig::default());
    conn.timeout = Duration::from_secs(30);
    let mut config = conn.client_config();
    config.set("group.id", "ferry-msk-iam-acceptance");
    let c: BaseConsumer<msk_iam::MskIamContext> =
        config.create_with_context(msk_iam::MskIamContext).unwrap();
    conn.authenticate(c.client()).unwrap();
    let metadata = c.fetch_metadata(None, conn.timeout).unwrap();
    assert!(!metadata.brokers().is_empty());
    eprintln!(
        "MSK accepted the token: {} brokers, {} topics visible",
        metadata.brokers().len(),
        metadata.topics().len()
    );
}
