//! Lenient timestamps in MSK responses. The SDK accepts only RFC 3339 date-times with a zone
//! (`2026-11-27T12:07:28.880Z`); a response carrying a naive one (`2026-11-27T12:07:28.880499`,
//! or with a space for the `T`) fails to deserialize as a whole, so one cosmetic field would make
//! a cluster unreadable. Emulators answer that way (moto's `creationTime`). The MSK client's HTTP
//! client is wrapped so such values of the timestamp members MSK has (`creationTime`,
//! `startTime`, `endTime`) are read as UTC before the SDK parses them. Real AWS responses carry a
//! zone and pass through byte for byte.

use std::sync::LazyLock;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use regex::bytes::Regex;

/// `"creationTime": "2026-11-27 12:07:28.880499"` (no zone) in a JSON body.
static NAIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#""(creationTime|startTime|endTime)"(\s*:\s*)"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(?:\.\d+)?)""#,
    )
    .expect("valid regex")
});

/// The body with every naive timestamp of a timestamp member read as UTC; None when it has none.
pub fn fix(body: &[u8]) -> Option<Vec<u8>> {
    if !NAIVE.is_match(body) {
        return None;
    }
    Some(
        NAIVE
            .replace_all(body, &b"\"${1}\"${2}\"${3}T${4}Z\""[..])
            .into_owned(),
    )
}

/// An HTTP client that hands every response body through [`fix`].
#[derive(Debug, Clone)]
pub struct LenientTimestamps {
    inner: SharedHttpClient,
}

impl LenientTimestamps {
    pub fn new(inner: SharedHttpClient) -> LenientTimestamps {
        LenientTimestamps { inner }
    }

    /// Around the SDK's own default HTTPS client (hyper 1, rustls with aws-lc, proxy settings
    /// from the environment).
    pub fn default_https() -> LenientTimestamps {
        use aws_smithy_http_client::{Builder, ConnectorBuilder, proxy::ProxyConfig, tls};
        let inner = Builder::new().build_with_connector_fn(|settings, components| {
            let mut b = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ));
            b.set_connector_settings(settings.cloned());
            if let Some(c) = components {
                b.set_sleep_impl(c.sleep_impl());
            }
            b.set_proxy_config(Some(ProxyConfig::from_env()));
            b.build()
        });
        LenientTimestamps::new(inner)
    }
}

impl HttpClient for LenientTimestamps {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Connector(self.inner.http_connector(settings, components)))
    }
}

#[derive(Debug)]
struct Connector(SharedHttpConnector);

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.0.clone();
        HttpConnectorFuture::new(async move {
            let mut response = inner.call(request).await?;
            let body = ByteStream::new(response.take_body())
                .collect()
                .await
                .map_err(|e| ConnectorError::io(e.into()))?
                .into_bytes();
            let body = match fix(&body) {
                Some(fixed) => {
                    response
                        .headers_mut()
                        .insert("content-length", fixed.len().to_string());
                    SdkBody::from(fixed)
                }
                None => SdkBody::from(body),
            };
            *response.body_mut() = body;
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;

    /// moto 5.2.5's DescribeClusterV2 answer for a serverless cluster, as it sends it.
    const MOTO_DESCRIBE: &str = r#"{"clusterInfo": {"activeOperationArn": "arn:aws:kafka:region:account-id:operation/active-operation", "clusterArn": "arn:aws:kafka:us-east-1:123456789012:serverless-cluster/38aa891d", "clusterName": "probe", "clusterType": "SERVERLESS", "creationTime": "2026-11-27T12:07:28.880499", "currentVersion": "1.0", "state": "CREATING", "stateInfo": {"code": "string", "message": "Cluster state details."}, "tags": {"creationTime": "kept"}, "serverless": {"vpcConfigs": [{"subnetIds": ["subnet-a"], "securityGroupIds": ["sg-1"]}], "clientAuthentication": {"sasl": {"iam": {"enabled": true}}}}}}"#;

    #[test]
    fn naive_timestamps_become_utc_and_nothing_else_changes() {
        let fixed = String::from_utf8(fix(MOTO_DESCRIBE.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            fixed,
            MOTO_DESCRIBE.replace("12:07:28.880499\"", "12:07:28.880499Z\"")
        );
        let spaced =
            br#"{"creationTime" : "2026-11-27 12:07:28", "endTime":"2026-11-27T12:07:29"}"#;
        assert_eq!(
            fix(spaced).unwrap(),
            br#"{"creationTime" : "2026-11-27T12:07:28Z", "endTime":"2026-11-27T12:07:29Z"}"#
        );
        // Zoned values, other members and other strings are left alone.
        for same in [
            r#"{"creationTime":"2026-11-27T12:07:28.880Z"}"#,
            r#"{"creationTime":"2026-11-27T12:07:28+02:00"}"#,
            r#"{"tags":{"built":"2026-11-27T12:07:28"}}"#,
        ] {
            assert_eq!(fix(same.as_bytes()), None, "{same}");
        }
    }

    /// An HTTP client that answers every request with `body`.
    #[derive(Debug, Clone)]
    struct Fixed(&'static str);

    impl HttpConnector for Fixed {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            let body = self.0;
            HttpConnectorFuture::ready(Ok(HttpResponse::new(
                StatusCode::try_from(200).unwrap(),
                SdkBody::from(body),
            )))
        }
    }

    impl HttpClient for Fixed {
        fn http_connector(
            &self,
            _settings: &HttpConnectorSettings,
            _components: &RuntimeComponents,
        ) -> SharedHttpConnector {
            SharedHttpConnector::new(self.clone())
        }
    }

    fn client(http: impl HttpClient + 'static) -> aws_sdk_kafka::Client {
        let config = aws_sdk_kafka::Config::builder()
            .behavior_version(aws_sdk_kafka::config::BehaviorVersion::latest())
            .region(aws_sdk_kafka::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_kafka::config::Credentials::new(
                "a", "b", None, None, "test",
            ))
            .endpoint_url("http://127.0.0.1:1")
            .http_client(http)
            .build();
        aws_sdk_kafka::Client::from_conf(config)
    }

    #[tokio::test]
    async fn the_sdk_reads_a_naive_timestamp_through_the_wrapper_and_fails_without_it() {
        let bare = client(Fixed(MOTO_DESCRIBE))
            .describe_cluster_v2()
            .cluster_arn("arn")
            .send()
            .await;
        assert!(bare.is_err(), "the SDK alone refuses a naive timestamp");
        let out = client(LenientTimestamps::new(SharedHttpClient::new(Fixed(
            MOTO_DESCRIBE,
        ))))
        .describe_cluster_v2()
        .cluster_arn("arn")
        .send()
        .await
        .expect("read through the wrapper");
        let info = out.cluster_info.unwrap();
        assert_eq!(info.cluster_name(), Some("probe"));
        assert_eq!(
            info.creation_time().unwrap().secs(),
            1_795_781_248, // 2026-11-27T12:07:28Z
        );
        assert_eq!(info.tags().unwrap()["creationTime"], "kept");
    }
}
