//! HTTP for one worker on the spec's `http_listen` address: /metrics (Prometheus, OpenMetrics
//! text; lag and state as of the worker's latest status), /status (JSON), /healthz.
//! A few lines of HTTP/1.1 are enough for scrapers and curl; no framework needed.

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::metrics::{CONTENT_TYPE, Metrics};
use ferry_mirror_api::status::WorkerStatus;

/// Binds `address` and serves in the background; returns the bound address.
pub(crate) async fn serve(
    address: &str,
    metrics: Arc<Metrics>,
    status: Arc<Mutex<WorkerStatus>>,
) -> Result<String> {
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("binding {address}"))?;
    let bound = listener.local_addr()?.to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = Arc::clone(&metrics);
            let status = Arc::clone(&status);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let Ok(n) = stream.read(&mut buf).await else {
                    return;
                };
                let request = String::from_utf8_lossy(&buf[..n]);
                let target = request.split_whitespace().nth(1).unwrap_or("/");
                let path = target.split('?').next().unwrap_or(target);
                let (code, kind, body) = match path {
                    "/metrics" => {
                        let s = status.lock().map(|s| s.clone()).unwrap_or_default();
                        ("200 OK", CONTENT_TYPE, metrics.scrape(&s))
                    }
                    "/status" => {
                        let s = status.lock().map(|s| s.clone()).unwrap_or_default();
                        (
                            "200 OK",
                            "application/json",
                            serde_json::to_string_pretty(&s).unwrap_or_default(),
                        )
                    }
                    "/healthz" => ("200 OK", "text/plain", "ok\n".to_string()),
                    _ => (
                        "404 Not Found",
                        "text/plain",
                        "try /metrics, /status or /healthz\n".to_string(),
                    ),
                };
                let response = format!(
                    "HTTP/1.1 {code}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                if let Err(e) = stream.write_all(response.as_bytes()).await {
                    tracing::debug!(error = %e, "HTTP client went away");
                }
            });
        }
    });
    Ok(bound)
}
