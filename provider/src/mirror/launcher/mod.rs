//! Where a run's workers live. A launcher owns the run's files (spec and secrets, written only
//! when the provider creates or updates the run), its workers, and one-off runtime commands
//! (`translate`, `verify`, ...) that must run where the workers run, next to the brokers.
//!
//! `local` (processes on the machine running Terraform, the default) and `kubernetes` (pods of an
//! existing cluster) implement [`Launcher`].

pub mod kubernetes;
pub mod local;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;

use super::spec::RunDocuments;

#[derive(Debug, Error)]
pub enum LaunchError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("cannot start {binary}: {source}")]
    Start {
        binary: String,
        source: std::io::Error,
    },
    #[error("`ferry-mirror {command}` did not finish within {within:?}")]
    TimedOut { command: String, within: Duration },
    #[error("Kubernetes: {what}: {detail}")]
    Kubernetes { what: String, detail: String },
}

/// What a one-off runtime command printed, and how it ended.
#[derive(Debug, Clone)]
pub struct CommandOutput {
    pub success: bool,
    pub exit_code: Option<i32>,
    /// Whether `stdout` holds the command's output. A launcher may be unable to read it back
    /// (pods of a cluster whose API server cannot reach the kubelet's logs): then callers use
    /// the exit code and what the command recorded in the run's status topic.
    pub stdout_read: bool,
    pub stdout: String,
    pub stderr: String,
}

#[async_trait]
pub trait Launcher: Send + Sync {
    /// Where secret files will be, as the workers see them: the spec names them.
    fn secret_dir(&self) -> PathBuf;
    /// Writes the run's spec and secrets (secrets readable by the owner only). Only create
    /// and update call this; reads and plans never write.
    async fn provision(&self, documents: &RunDocuments) -> Result<(), LaunchError>;
    /// Starts workers until `count` run (running ones are kept; extra ones are stopped).
    async fn ensure_workers(&self, count: usize) -> Result<(), LaunchError>;
    /// How many workers are alive.
    async fn running(&self) -> usize;
    /// Stops every worker (they finish open transactions), killing stragglers after `grace`.
    async fn stop(&self, grace: Duration) -> Result<(), LaunchError>;
    /// Runs `ferry-mirror <args> --spec <the run's spec>` to completion, bounded by `within`,
    /// with the environment variables `env` set (e.g. the result id under which `verify`
    /// records its result in the status topic).
    async fn run_once(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        within: Duration,
    ) -> Result<CommandOutput, LaunchError>;
    /// The last lines the workers wrote, for error messages.
    async fn log_tail(&self, lines: usize) -> String;
    /// What differs from what the run wants (objects changed or removed out of band), one line
    /// each; empty when nothing does. Reads only. `finished`: the run completed, so its
    /// workers are expected to have exited.
    async fn drift(&self, _workers: usize, _finished: bool) -> Result<Vec<String>, LaunchError> {
        Ok(Vec::new())
    }
    /// Deletes everything `provision` and `ensure_workers` created, once the workers are
    /// stopped (destroy). Local runs delete their credential files and keep the rest of
    /// their directory (spec and logs) for inspection.
    async fn remove(&self, _grace: Duration) -> Result<(), LaunchError> {
        Ok(())
    }
}
