//! What one request runs with: the configured provider's data, cancellation (Terraform's
//! StopProvider) and an optional deadline. Long waits use [`Ctx::sleep`] or [`Ctx::run`] so a
//! stop or a deadline ends them promptly, with a result Terraform can still record.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::host::intent::Intent;

/// Flips once, when Terraform calls StopProvider. Cloned into every request's context.
#[derive(Clone)]
pub struct StopSignal {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for StopSignal {
    fn default() -> Self {
        StopSignal {
            tx: Arc::new(watch::channel(false).0),
        }
    }
}

impl StopSignal {
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }
    pub async fn triggered(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives as long as `self`, so this only returns once triggered.
        if rx.wait_for(|stopped| *stopped).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Why a wait ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Interrupted {
    #[error("Terraform asked the provider to stop")]
    Stopped,
    #[error("the operation's time limit was reached")]
    DeadlineExceeded,
}

/// A request's context, generic over the provider's configured data.
pub struct Ctx<D> {
    data: Arc<D>,
    stop: StopSignal,
    deadline: Option<Instant>,
    intent: Intent,
}

impl<D> Clone for Ctx<D> {
    fn clone(&self) -> Self {
        Ctx {
            data: Arc::clone(&self.data),
            stop: self.stop.clone(),
            deadline: self.deadline,
            intent: self.intent,
        }
    }
}

impl<D> Ctx<D> {
    pub fn new(data: Arc<D>, stop: StopSignal, intent: Intent) -> Ctx<D> {
        Ctx {
            data,
            stop,
            deadline: None,
            intent,
        }
    }

    /// The provider's configured data (connections, clients).
    pub fn data(&self) -> &D {
        &self.data
    }

    /// What the CLI is doing in this process: a normal plan/apply, a destroy, a refresh only.
    pub fn intent(&self) -> Intent {
        self.intent
    }

    /// The same context, ending at most `within` from now.
    pub fn with_timeout(&self, within: Duration) -> Ctx<D> {
        let end = Instant::now() + within;
        Ctx {
            deadline: Some(self.deadline.map_or(end, |d| d.min(end))),
            ..self.clone()
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left before the deadline (`None` without one).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.is_triggered()
    }

    /// `Err` once stopped or past the deadline.
    pub fn check(&self) -> Result<(), Interrupted> {
        if self.is_stopped() {
            Err(Interrupted::Stopped)
        } else if self.remaining() == Some(Duration::ZERO) {
            Err(Interrupted::DeadlineExceeded)
        } else {
            Ok(())
        }
    }

    /// Resolves when stopped or at the deadline.
    pub async fn done(&self) -> Interrupted {
        let deadline = async {
            match self.deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.stop.triggered() => Interrupted::Stopped,
            _ = deadline => Interrupted::DeadlineExceeded,
        }
    }

    /// Runs `work` unless the context ends first.
    pub async fn run<T>(&self, work: impl Future<Output = T>) -> Result<T, Interrupted> {
        tokio::select! {
            out = work => Ok(out),
            why = self.done() => Err(why),
        }
    }

    /// Sleeps, waking early if the context ends.
    pub async fn sleep(&self, period: Duration) -> Result<(), Interrupted> {
        self.run(tokio::time::sleep(period)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_ends_a_sleep_and_the_deadline_ends_work() {
        let stop = StopSignal::default();
        let ctx = Ctx::new(Arc::new(()), stop.clone(), Intent::Normal);
        let trigger = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            trigger.trigger();
        });
        assert_eq!(
            ctx.sleep(Duration::from_secs(600)).await,
            Err(Interrupted::Stopped)
        );
        assert_eq!(ctx.check(), Err(Interrupted::Stopped));

        let fresh = Ctx::new(Arc::new(()), StopSignal::default(), Intent::Normal)
            .with_timeout(Duration::from_millis(10));
        assert_eq!(
            fresh.run(std::future::pending::<()>()).await,
            Err(Interrupted::DeadlineExceeded)
        );
        let longer = fresh.with_timeout(Duration::from_secs(60));
        assert!(longer.remaining().unwrap() <= Duration::from_millis(10));
    }
}
