//! go-plugin's side services: controller (shutdown), stdio and broker.

use std::pin::Pin;

use ferry_proto::plugin::{self, grpc_broker_server, grpc_controller_server, grpc_stdio_server};
use tokio::sync::watch;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Flips to true once when the plugin should stop.
#[derive(Clone)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            tx: watch::channel(false).0,
        }
    }
}

impl Shutdown {
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|stopped| *stopped).await;
    }
}

/// A stream that stays open, sending nothing, until shutdown.
fn idle_until_shutdown<T: Send + 'static>(shutdown: Shutdown) -> BoxStream<T> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<T, Status>>(1);
    tokio::spawn(async move {
        shutdown.wait().await;
        drop(tx);
    });
    Box::pin(ReceiverStream::new(rx))
}

/// Answers GRPCController.Shutdown: the client is done with us.
pub struct Controller {
    pub shutdown: Shutdown,
}

#[tonic::async_trait]
impl grpc_controller_server::GrpcController for Controller {
    async fn shutdown(
        &self,
        _request: Request<plugin::Empty>,
    ) -> Result<Response<plugin::Empty>, Status> {
        tracing::debug!("shutdown requested by the plugin client");
        self.shutdown.trigger();
        Ok(Response::new(plugin::Empty {}))
    }
}

/// Our logs go to the real stderr, which go-plugin reads, so this stream carries nothing.
pub struct Stdio {
    pub shutdown: Shutdown,
}

#[tonic::async_trait]
impl grpc_stdio_server::GrpcStdio for Stdio {
    async fn stream_stdio(
        &self,
        _request: Request<()>,
    ) -> Result<Response<BoxStream<plugin::StdioData>>, Status> {
        Ok(Response::new(idle_until_shutdown(self.shutdown.clone())))
    }
}

/// ferry brokers no extra connections; the stream is accepted and drained.
pub struct Broker {
    pub shutdown: Shutdown,
}

#[tonic::async_trait]
impl grpc_broker_server::GrpcBroker for Broker {
    async fn start_stream(
        &self,
        request: Request<Streaming<plugin::ConnInfo>>,
    ) -> Result<Response<BoxStream<plugin::ConnInfo>>, Status> {
        let mut incoming = request.into_inner();
        tokio::spawn(async move { while let Ok(Some(_)) = incoming.message().await {} });
        Ok(Response::new(idle_until_shutdown(self.shutdown.clone())))
    }
}
