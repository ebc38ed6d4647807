//! Serves the provider over gRPC on loopback, behind AutoMTLS when the client asks for it.

use std::io;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{Context, Result};
use ferry_proto::plugin::{grpc_broker_server, grpc_controller_server, grpc_stdio_server};
use ferry_proto::tfplugin6::provider_server::ProviderServer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use super::handshake;
use super::intent::Intent;
use super::services::{Broker, Controller, Shutdown, Stdio};
use super::tls;
use crate::adapter::ProviderService;
use crate::context::StopSignal;
use crate::resource::Provider;

/// A connection after the TLS handshake (or a plain one when AutoMTLS is off).
enum PluginIo {
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    Plain(TcpStream),
}

impl Connected for PluginIo {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for PluginIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PluginIo::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            PluginIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for PluginIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PluginIo::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            PluginIo::Plain(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PluginIo::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            PluginIo::Plain(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PluginIo::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            PluginIo::Plain(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Accepts connections, completes TLS where configured, and hands them to tonic.
fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
) -> ReceiverStream<io::Result<PluginIo>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let tx = tx.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let io = match acceptor {
                    None => PluginIo::Plain(stream),
                    Some(acceptor) => {
                        match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(tls)) => PluginIo::Tls(Box::new(tls)),
                            Ok(Err(e)) => {
                                tracing::warn!(error = %e, "TLS handshake with the plugin client failed");
                                return;
                            }
                            Err(_) => {
                                tracing::warn!("TLS handshake with the plugin client timed out");
                                return;
                            }
                        }
                    }
                };
                let _ = tx.send(Ok(io)).await;
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Runs the plugin until the client asks it to stop.
pub async fn serve<P: Provider>(provider: P, client_cert_pem: Option<String>) -> Result<()> {
    // The CLI's process group gets Ctrl-C (or a CI abort) too. Dying on it would lose the
    // results of in-flight applies; the CLI stops us itself (StopProvider, then Shutdown or
    // Kill), so SIGINT is only noted.
    let mut interrupts = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("installing the SIGINT handler")?;
    tokio::spawn(async move {
        while interrupts.recv().await.is_some() {
            tracing::info!("SIGINT received; waiting for the CLI to stop in-flight operations");
        }
    });
    let intent = Intent::of_parent();
    tracing::debug!(?intent, "CLI intent");

    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("listening on loopback")?;
    let address = listener.local_addr()?.to_string();

    let (acceptor, cert_der) = match client_cert_pem.as_deref().filter(|p| !p.trim().is_empty()) {
        Some(pem) => {
            let mtls = tls::auto_mtls(pem)?;
            (
                Some(TlsAcceptor::from(mtls.server_config)),
                Some(mtls.server_cert_der),
            )
        }
        None => (None, None),
    };

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;

    let shutdown = Shutdown::default();
    let provider = ProviderServer::new(ProviderService::new(
        provider,
        StopSignal::default(),
        intent,
    ))
    .max_decoding_message_size(usize::MAX)
    .max_encoding_message_size(usize::MAX);

    let router = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(grpc_controller_server::GrpcControllerServer::new(
            Controller {
                shutdown: shutdown.clone(),
            },
        ))
        .add_service(grpc_stdio_server::GrpcStdioServer::new(Stdio {
            shutdown: shutdown.clone(),
        }))
        .add_service(grpc_broker_server::GrpcBrokerServer::new(Broker {
            shutdown: shutdown.clone(),
        }))
        .add_service(provider);

    let incoming = accept_loop(listener, acceptor);

    // The handshake line goes out only once we can accept connections.
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", handshake::line(&address, cert_der.as_deref()))?;
        out.flush()?;
    }
    tracing::debug!(%address, tls = cert_der.is_some(), "plugin server listening");

    let stop = shutdown.clone();
    let interrupted = async move {
        tokio::select! {
            _ = stop.wait() => {}
            // SIGTERM is a request to end; SIGINT is not (see above).
            _ = terminate_signal() => {}
        }
    };
    router
        .serve_with_incoming_shutdown(incoming, interrupted)
        .await
        .context("serving gRPC")?;
    tracing::debug!("plugin server stopped");
    Ok(())
}

async fn terminate_signal() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}
