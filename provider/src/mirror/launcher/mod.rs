//! Where `ferry_mirror` runs its workers. `local` (processes on the machine running Terraform)
//! is the only launcher today; a Kubernetes launcher implements the same trait.

pub mod local;

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
#[error("{0}")]
pub struct LaunchError(pub String);

/// A run's workers, wherever they live.
pub trait Launcher: Send + Sync {
    /// Starts workers until `count` run; already running ones are kept.
    fn ensure_running(&self, count: usize) -> Result<(), LaunchError>;
    /// How many workers are alive.
    fn running(&self) -> usize;
    /// Stops every worker (finishing open transactions), killing stragglers after `grace`.
    fn stop_all(&self, grace: std::time::Duration) -> Result<(), LaunchError>;
    /// The last lines the workers wrote, for error messages.
    fn log_tail(&self, lines: usize) -> String;
    /// Where the spec and secrets are written.
    fn run_dir(&self) -> PathBuf;
}
