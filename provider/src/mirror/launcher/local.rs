//! Workers as local processes, detached so they outlive `terraform apply`. Each worker's pid is
//! kept in the run directory; stopping signals exactly those processes.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{LaunchError, Launcher};

pub struct LocalLauncher {
    pub run_dir: PathBuf,
    pub binary: PathBuf,
    pub spec: PathBuf,
}

fn err(e: impl std::fmt::Display) -> LaunchError {
    LaunchError(e.to_string())
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

const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

/// Signals the worker's whole process group (each worker leads its own).
fn signal(pid: i32, sig: i32) {
    unsafe extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    // SAFETY: a plain syscall; a stale pid group just fails with ESRCH.
    unsafe {
        kill(-pid, sig);
    }
}

impl LocalLauncher {
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

impl Launcher for LocalLauncher {
    fn ensure_running(&self, count: usize) -> Result<(), LaunchError> {
        fs::create_dir_all(&self.run_dir).map_err(err)?;
        for worker in 0..count {
            if self.pid_of(worker).is_some_and(alive) {
                continue;
            }
            let log = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.log_file(worker))
                .map_err(err)?;
            let mut command = Command::new(&self.binary);
            command
                .arg("run")
                .arg("--spec")
                .arg(&self.spec)
                .arg("--worker-id")
                .arg(format!("w{worker}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(err)?)
                .stderr(log)
                // Its own process group: Ctrl-C in the terminal running Terraform does not
                // reach it, and it lives on after the provider exits.
                .process_group(0);
            // Workers read their secrets from the spec's 0600 files; they do not need
            // Terraform's environment secrets.
            for (key, _) in std::env::vars_os() {
                let k = key.to_string_lossy();
                if k.starts_with("TF_VAR_") || k.starts_with("FERRY_KAFKA_SASL_") {
                    command.env_remove(&key);
                }
            }
            // SAFETY: only async-signal-safe calls (fcntl, close) between fork and exec.
            unsafe {
                command.pre_exec(|| {
                    close_inherited_descriptors();
                    Ok(())
                });
            }
            let child = command
                .spawn()
                .map_err(|e| LaunchError(format!("cannot start {}: {e}", self.binary.display())))?;
            fs::write(self.pid_file(worker), child.id().to_string()).map_err(err)?;
            tracing::info!(worker, pid = child.id(), "started ferry-mirror worker");
            // Reap it if it exits while we are still around, so it does not linger as a zombie.
            std::thread::spawn(move || {
                let mut child = child;
                let _ = child.wait();
            });
        }
        // Workers beyond `count` (scaled down) are stopped.
        for worker in self.worker_slots().into_iter().filter(|w| *w >= count) {
            if let Some(pid) = self.pid_of(worker) {
                stop_pids(&[pid], Duration::from_secs(30));
            }
            let _ = fs::remove_file(self.pid_file(worker));
        }
        Ok(())
    }

    fn running(&self) -> usize {
        self.worker_slots()
            .into_iter()
            .filter(|w| self.pid_of(*w).is_some_and(alive))
            .count()
    }

    fn stop_all(&self, grace: Duration) -> Result<(), LaunchError> {
        let pids: Vec<i32> = self
            .worker_slots()
            .into_iter()
            .filter_map(|w| self.pid_of(w))
            .collect();
        stop_pids(&pids, grace);
        for w in self.worker_slots() {
            let _ = fs::remove_file(self.pid_file(w));
        }
        Ok(())
    }

    fn log_tail(&self, lines: usize) -> String {
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

    fn run_dir(&self) -> PathBuf {
        self.run_dir.clone()
    }
}

/// Closes descriptors the provider inherited without close-on-exec (Terraform's output pipes
/// among them): a worker holding them keeps `terraform apply | tee` from ever finishing.
fn close_inherited_descriptors() {
    const F_GETFD: i32 = 1;
    const FD_CLOEXEC: i32 = 1;
    unsafe extern "C" {
        fn fcntl(fd: i32, cmd: i32, ...) -> i32;
        fn close(fd: i32) -> i32;
    }
    for fd in 3..4096 {
        // SAFETY: plain syscalls on descriptor numbers; invalid ones just fail.
        unsafe {
            let flags = fcntl(fd, F_GETFD);
            if flags >= 0 && flags & FD_CLOEXEC == 0 {
                close(fd);
            }
        }
    }
}

/// SIGTERM (workers commit and leave), then SIGKILL whatever is left after `grace`.
fn stop_pids(pids: &[i32], grace: Duration) {
    let live: Vec<i32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    for pid in &live {
        signal(*pid, SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && live.iter().any(|p| alive(*p)) {
        std::thread::sleep(Duration::from_millis(200));
    }
    for pid in live.iter().filter(|p| alive(**p)) {
        tracing::warn!(pid, "worker did not stop in time; killing it");
        signal(*pid, SIGKILL);
    }
}

/// Writes a file readable only by its owner (secrets for the workers).
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = fs::remove_file(path);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())
}
