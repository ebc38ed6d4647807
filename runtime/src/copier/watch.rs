//! A watch on the copy loop. Each broker call the loop makes has a bound, but a wait inside
//! librdkafka that no bound covers would leave a worker silent: still alive, copying nothing,
//! logging nothing. The loop names the step it is in; a thread of the watch warns when one
//! step has lasted longer than `STALL_AFTER` (again every `STALL_AFTER`), so a stalled
//! worker says in its log where it stands (`ferry_mirror_last_status_timestamp_seconds`
//! stops moving at the same time).

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Longer than any one step should take when a cluster answers (a transaction's calls are
/// bounded by a minute each; a slot takeover by about as much).
pub(crate) const STALL_AFTER: Duration = Duration::from_secs(90);

/// How often the watch's thread looks.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// The step the copy loop is in, and since when.
pub(crate) struct LoopWatch {
    step: Mutex<(&'static str, Instant)>,
}

impl LoopWatch {
    /// A watch whose thread lives as long as the returned handle.
    pub fn start() -> Arc<LoopWatch> {
        let watch = Arc::new(LoopWatch {
            step: Mutex::new(("starting", Instant::now())),
        });
        let weak = Arc::downgrade(&watch);
        let spawned = std::thread::Builder::new()
            .name("ferry-loop-watch".into())
            .spawn(move || look(&weak));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "the copy loop is not watched for stalls");
        }
        watch
    }

    /// The loop has entered `step`.
    pub fn step(&self, step: &'static str) {
        if let Ok(mut s) = self.step.lock() {
            if s.0 != step {
                *s = (step, Instant::now());
            } else {
                s.1 = Instant::now();
            }
        }
    }

    /// The step the loop is in and how long it has been in it.
    fn current(&self) -> Option<(&'static str, Duration)> {
        self.step.lock().ok().map(|s| (s.0, s.1.elapsed()))
    }
}

fn look(watch: &Weak<LoopWatch>) {
    let mut warned_at: Option<Duration> = None;
    loop {
        std::thread::sleep(LOOK_EVERY);
        let Some(watch) = watch.upgrade() else {
            return;
        };
        let Some((step, lasted)) = watch.current() else {
            return;
        };
        match stall_warning(lasted, warned_at) {
            Some(due) => {
                warned_at = Some(due);
                tracing::warn!(
                    step,
                    seconds = lasted.as_secs(),
                    "the copy loop has not moved on for {}s ({step})",
                    lasted.as_secs()
                );
            }
            None if lasted < STALL_AFTER => warned_at = None,
            None => {}
        }
    }
}

/// Whether a step that has lasted `lasted` is due a warning, given when (in the step's
/// time) the last one was given: at `STALL_AFTER`, then every `STALL_AFTER`.
fn stall_warning(lasted: Duration, warned_at: Option<Duration>) -> Option<Duration> {
    if lasted < STALL_AFTER {
        return None;
    }
    let due = STALL_AFTER * (lasted.as_secs() / STALL_AFTER.as_secs()) as u32;
    match warned_at {
        Some(w) if w >= due => None,
        _ => Some(due),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_is_reported_once_per_period() {
        let s = STALL_AFTER;
        assert_eq!(stall_warning(s / 2, None), None);
        assert_eq!(stall_warning(s, None), Some(s));
        assert_eq!(stall_warning(s + Duration::from_secs(5), Some(s)), None);
        assert_eq!(stall_warning(s * 2, Some(s)), Some(s * 2));
        assert_eq!(stall_warning(s * 2 + s / 2, Some(s * 2)), None);
    }

    #[test]
    fn the_watch_thread_ends_with_the_watch() {
        let watch = LoopWatch::start();
        watch.step("copying");
        assert_eq!(watch.current().map(|c| c.0), Some("copying"));
        let weak = Arc::downgrade(&watch);
        drop(watch);
        // The thread holds the watch only for a moment each second.
        let deadline = Instant::now() + Duration::from_secs(10);
        while weak.strong_count() > 0 {
            assert!(
                Instant::now() < deadline,
                "the watch's thread keeps it alive"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
