//! Workers as local processes, detached so they outlive `terraform apply`. Each worker's pid is
//! kept in the run directory; stopping signals exactly those processes.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rustix::process::{Pid, Signal};

use super::{CommandOutput, LaunchError, Launcher};
use crate::mirror::spec::RunDocuments;

/// A run's workers as local processes, with everything in `run_dir` (`<state_dir>/<run_id>`).
#[derive(Debug, Clone)]
pub struct LocalLauncher {
    pub run_dir: PathBuf,
    pub binary: PathBuf,
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LaunchError {
    let path = path.display().to_string();
    move |source| LaunchError::Io { what, path, source }
}

/// The ferry-mirror binary to use when the configuration names none: beside the provider
/// (how release archives ship them), else FERRY_MIRROR_BIN, else `ferry-mirror` on PATH.
pub fn default_binary() -> PathBuf {
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        let beside = dir.join("ferry-mirror");
        if beside.exists() {
            return beside;
        }
    }
    std::env::var_os("FERRY_MIRROR_BIN")
        .map_or_else(|| PathBuf::from("ferry-mirror"), PathBuf::from)
}

fn alive(pid: i32) -> bool {
    // /proc/<pid>/stat's third field is the state; Z (zombie) counts as gone.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
        // Only our worker: its command line names the spec.
        && fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("ferry-mirror"))
}

/// Signals the worker's whole process group (each worker leads its own).
fn signal(pid: i32, sig: Signal) {
    if let Some(group) = Pid::from_raw(pid)
        && let Err(e) = rustix::process::kill_process_group(group, sig)
    {
        // ESRCH: the group is already gone, which is what we wanted.
        tracing::debug!(pid, error = %e, "signalling a worker group");
    }
}

impl LocalLauncher {
    pub fn new(state_dir: &Path, run_id: &str, binary: PathBuf) -> LocalLauncher {
        let run_dir = state_dir.join(run_id);
        LocalLauncher {
            run_dir: std::path::absolute(&run_dir).unwrap_or(run_dir),
            binary,
        }
    }
    pub fn spec_path(&self) -> PathBuf {
        self.run_dir.join("spec.json")
    }
    fn pid_file(&self, worker: usize) -> PathBuf {
        self.run_dir.join(format!("worker-{worker}.pid"))
    }
    fn log_file(&self, worker: usize) -> PathBuf {
        self.run_dir.join(format!("worker-{worker}.log"))
    }
    fn pid_of(&self, worker: usize) -> Option<i32> {
        fs::read_to_string(self.pid_file(worker))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
    fn worker_slots(&self) -> Vec<usize> {
        let mut slots: Vec<usize> = fs::read_dir(&self.run_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix("worker-")?
                    .strip_suffix(".pid")?
                    .parse()
                    .ok()
            })
            .collect();
        slots.sort_unstable();
        slots
    }
}

/// Variables of Terraform's environment the workers do not get: Terraform variables and the
/// provider's SASL password variables (the workers read passwords from the run's files).
fn withheld_from_workers(key: &str) -> bool {
    key.starts_with("TF_VAR_") || key.starts_with("FERRY_KAFKA_SASL_")
}

impl LocalLauncher {
    /// A command for `ferry-mirror`, detached from Terraform: no inherited pipes, no secrets
    /// from Terraform's environment (workers read theirs from the 0600 files). The rest of the
    /// environment is inherited as it is, never logged: AWS_MSK_IAM workers sign in with the
    /// AWS credential chain of this environment (`AWS_PROFILE`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// web identity, the shared config files under `HOME`...), as the provider itself does.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command.stdin(Stdio::null());
        for (key, _) in std::env::vars_os() {
            if withheld_from_workers(&key.to_string_lossy()) {
                command.env_remove(&key);
            }
        }
        // SAFETY: the closure only makes fcntl calls, which are async-signal-safe, between
        // fork and exec.
        unsafe {
            command.pre_exec(|| {
                close_inherited_descriptors();
                Ok(())
            });
        }
        command
    }

    fn start_worker(&self, worker: usize) -> Result<(), LaunchError> {
        let log_path = self.log_file(worker);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io("opening the worker log", &log_path))?;
        let log_err = log
            .try_clone()
            .map_err(io("opening the worker log", &log_path))?;
        let mut command = self.command();
        command
            .arg("run")
            .arg("--spec")
            .arg(self.spec_path())
            .arg("--worker-id")
            .arg(format!("w{worker}"))
            .stdout(log)
            .stderr(log_err)
            // Its own process group: Ctrl-C in the terminal running Terraform does not
            // reach it, and it lives on after the provider exits.
            .process_group(0);
        let child = command.spawn().map_err(|source| LaunchError::Start {
            binary: self.binary.display().to_string(),
            source,
        })?;
        let pid_path = self.pid_file(worker);
        fs::write(&pid_path, child.id().to_string()).map_err(io("writing", &pid_path))?;
        tracing::info!(worker, pid = child.id(), "started ferry-mirror worker");
        // Reap it if it exits while we are still around, so it does not linger as a zombie.
        std::thread::spawn(move || {
            let mut child = child;
            if let Err(e) = child.wait() {
                tracing::debug!(error = %e, "waiting for a worker");
            }
        });
        Ok(())
    }
}

#[async_trait]
impl Launcher for LocalLauncher {
    fn secret_dir(&self) -> PathBuf {
        self.run_dir.clone()
    }

    async fn provision(&self, documents: &RunDocuments) -> Result<(), LaunchError> {
        fs::create_dir_all(&self.run_dir).map_err(io("creating", &self.run_dir))?;
        for secret in &documents.secrets {
            let path = self.run_dir.join(&secret.name);
            write_private(&path, &secret.contents).map_err(io("writing", &path))?;
        }
        let spec = self.spec_path();
        write_private(&spec, &documents.spec_json()).map_err(io("writing", &spec))
    }

    async fn ensure_workers(&self, count: usize) -> Result<(), LaunchError> {
        fs::create_dir_all(&self.run_dir).map_err(io("creating", &self.run_dir))?;
        for worker in 0..count {
            if !self.pid_of(worker).is_some_and(alive) {
                self.start_worker(worker)?;
            }
        }
        // Workers beyond `count` (scaled down) are stopped.
        let extra: Vec<usize> = self
            .worker_slots()
            .into_iter()
            .filter(|w| *w >= count)
            .collect();
        let pids: Vec<i32> = extra.iter().filter_map(|w| self.pid_of(*w)).collect();
        tokio::task::spawn_blocking(move || stop_pids(&pids, Duration::from_secs(30)))
            .await
            .unwrap_or_default();
        for worker in extra {
            remove_if_present(&self.pid_file(worker));
        }
        Ok(())
    }

    async fn running(&self) -> usize {
        self.worker_slots()
            .into_iter()
            .filter(|w| self.pid_of(*w).is_some_and(alive))
            .count()
    }

    async fn stop(&self, grace: Duration) -> Result<(), LaunchError> {
        let pids: Vec<i32> = self
            .worker_slots()
            .into_iter()
            .filter_map(|w| self.pid_of(w))
            .collect();
        tokio::task::spawn_blocking(move || stop_pids(&pids, grace))
            .await
            .unwrap_or_default();
        for w in self.worker_slots() {
            remove_if_present(&self.pid_file(w));
        }
        Ok(())
    }

    /// Destroy: the credential files go (spec, logs and the run's directory stay for
    /// inspection). They are the files `provision` wrote for the documents' secrets, named
    /// `source.*` / `target.*` by the spec builder.
    async fn remove(&self, _grace: Duration) -> Result<(), LaunchError> {
        let entries = match fs::read_dir(&self.run_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("reading", &self.run_dir)(e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("source.") || name.starts_with("target.") {
                let path = entry.path();
                fs::remove_file(&path).map_err(io("removing", &path))?;
            }
        }
        Ok(())
    }

    async fn run_once(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        within: Duration,
    ) -> Result<CommandOutput, LaunchError> {
        let mut command = tokio::process::Command::from(self.command());
        command
            .args(args)
            .envs(env.iter().copied())
            .arg("--spec")
            .arg(self.spec_path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = command.spawn().map_err(|source| LaunchError::Start {
            binary: self.binary.display().to_string(),
            source,
        })?;
        match tokio::time::timeout(within, child.wait_with_output()).await {
            Ok(Ok(out)) => Ok(CommandOutput {
                success: out.status.success(),
                exit_code: out.status.code(),
                stdout_read: true,
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }),
            Ok(Err(source)) => Err(LaunchError::Start {
                binary: self.binary.display().to_string(),
                source,
            }),
            Err(_) => Err(LaunchError::TimedOut {
                command: args.join(" "),
                within,
            }),
        }
    }

    async fn log_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for w in self.worker_slots() {
            if let Ok(text) = fs::read_to_string(self.log_file(w)) {
                let tail: Vec<&str> = text.lines().rev().take(lines).collect();
                out.push_str(&format!("--- worker {w}:\n"));
                for l in tail.into_iter().rev() {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        out
    }
}

fn remove_if_present(path: &Path) {
    if let Err(e) = fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "cannot remove a worker's pid file");
    }
}

/// Closes descriptors the provider inherited without close-on-exec (Terraform's output pipes
/// among them): a worker holding them keeps `terraform apply | tee` from ever finishing.
/// Runs in the child between fork and exec: marks every descriptor close-on-exec.
fn close_inherited_descriptors() {
    use rustix::io::{FdFlags, fcntl_getfd, fcntl_setfd};
    use std::os::fd::BorrowedFd;
    for fd in 3..4096 {
        // SAFETY: the fd is only used for these two fcntl calls while this single-threaded
        // child runs; a number that is not open makes them fail with EBADF, nothing more.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        if let Ok(flags) = fcntl_getfd(borrowed)
            && !flags.contains(FdFlags::CLOEXEC)
        {
            // Failing here only leaves a descriptor open in the worker, as before.
            if fcntl_setfd(borrowed, flags | FdFlags::CLOEXEC).is_err() {
                continue;
            }
        }
    }
}

/// SIGTERM (workers commit and leave), then SIGKILL whatever is left after `grace`.
fn stop_pids(pids: &[i32], grace: Duration) {
    let live: Vec<i32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    for pid in &live {
        signal(*pid, Signal::TERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && live.iter().any(|p| alive(*p)) {
        std::thread::sleep(Duration::from_millis(200));
    }
    for pid in live.iter().filter(|p| alive(**p)) {
        tracing::warn!(pid, "worker did not stop in time; killing it");
        signal(*pid, Signal::KILL);
    }
}

/// Writes a file readable only by its owner (secrets for the workers).
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    remove_if_present(path);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::model::MirrorModel;
    use ferry_kafka::{ConnectionConfig, SaslConfig, SaslMechanism, Secret};

    #[test]
    fn workers_inherit_the_aws_credential_chain_but_not_terraform_secrets() {
        for withheld in ["TF_VAR_password", "FERRY_KAFKA_SASL_PASSWORD"] {
            assert!(withheld_from_workers(withheld), "{withheld}");
        }
        for kept in [
            "AWS_PROFILE",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_ARN",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN",
            "AWS_EC2_METADATA_DISABLED",
            "HOME",
        ] {
            assert!(
                !withheld_from_workers(kept),
                "{kept} must reach the workers"
            );
        }
        // Only removals are recorded on the command: nothing is set from the spec or model.
        let launcher = LocalLauncher::new(Path::new("/nonexistent"), "r1", PathBuf::from("x"));
        for (key, value) in launcher.command().get_envs() {
            assert!(value.is_none(), "{key:?} set on the worker command");
            assert!(withheld_from_workers(&key.to_string_lossy()), "{key:?}");
        }
    }

    #[tokio::test]
    async fn destroy_removes_the_credential_files_and_keeps_the_spec() {
        let state = std::env::temp_dir().join(format!("ferry-local-{}", std::process::id()));
        let launcher = LocalLauncher::new(&state, "r1", PathBuf::from("/nonexistent/ferry-mirror"));
        let mut source = ConnectionConfig::plaintext("a:9092");
        source.sasl = Some(SaslConfig {
            mechanism: SaslMechanism::ScramSha512,
            username: "u".into(),
            password: Secret::new("canary"),
        });
        let target = ConnectionConfig::plaintext("b:9092");
        let m = MirrorModel {
            topics: vec!["t".to_string()].into(),
            ..MirrorModel::default()
        };
        let docs =
            crate::mirror::spec::build(&m, "r1", &source, &target, &launcher.secret_dir()).unwrap();
        launcher.provision(&docs).await.unwrap();
        let password = launcher.secret_dir().join("source.password");
        assert_eq!(fs::read_to_string(&password).unwrap(), "canary");

        launcher.remove(Duration::from_secs(1)).await.unwrap();
        assert!(!password.exists());
        assert!(
            launcher.spec_path().exists(),
            "the spec stays for inspection"
        );
        // Nothing left to remove is not an error.
        launcher.remove(Duration::from_secs(1)).await.unwrap();
        fs::remove_dir_all(&state).unwrap();
    }
}
