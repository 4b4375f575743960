//! What the watcher is blocked on right now: files whose load gave up waiting for a lock another
//! session holds. Set by the workers, read by `/healthz`; in memory only (the ledger stays the
//! record of what happened), and cheap to clone (every worker and the server share one).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The watcher's current waits, shared.
#[derive(Debug, Clone, Default)]
pub struct WatchStatus {
    waits: Arc<Mutex<HashMap<PathBuf, LockWait>>>,
}

#[derive(Debug, Clone)]
struct LockWait {
    /// Who holds the lock, as a phrase ("a lock on streaming.events (…)").
    held: String,
    since: Instant,
}

/// The answer of [`WatchStatus::waiting`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// Files whose load is retried until the lock is released.
    pub files: usize,
    /// The lock met last.
    pub held: String,
    /// Since the first of these files met it.
    pub since: Duration,
}

impl WatchStatus {
    /// `file`'s load gave up on `held`. True when the watcher was waiting for no lock before:
    /// the start of a stall, worth saying once.
    pub fn lock_wait(&self, file: &Path, held: &str) -> bool {
        let mut waits = self.lock();
        let first = waits.is_empty();
        let since = waits.get(file).map_or_else(Instant::now, |w| w.since);
        waits.insert(
            file.to_path_buf(),
            LockWait {
                held: held.to_string(),
                since,
            },
        );
        crate::metrics::set_lock_waiting(waits.len());
        first
    }

    /// `file` is not waiting any more (its load ended some other way, or it is gone). True when
    /// it was the last file waiting: the stall is over.
    pub fn lock_released(&self, file: &Path) -> bool {
        let mut waits = self.lock();
        let was_waiting = waits.remove(file).is_some();
        crate::metrics::set_lock_waiting(waits.len());
        was_waiting && waits.is_empty()
    }

    /// What the watcher waits for, if anything.
    pub fn waiting(&self) -> Option<Waiting> {
        let waits = self.lock();
        let first = waits.values().min_by_key(|w| w.since)?;
        let last = waits.values().max_by_key(|w| w.since)?;
        Some(Waiting {
            files: waits.len(),
            held: last.held.clone(),
            since: first.since.elapsed(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<PathBuf, LockWait>> {
        self.waits.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_starts_with_the_first_waiting_file_and_ends_with_the_last() {
        let status = WatchStatus::default();
        assert_eq!(status.waiting(), None);
        assert!(status.lock_wait(Path::new("a.csv"), "a lock on streaming.events"));
        assert!(!status.lock_wait(Path::new("a.csv"), "a lock on streaming.events"));
        assert!(!status.lock_wait(Path::new("b.csv"), "a lock on streaming.sessions"));
        let waiting = status.waiting().unwrap();
        assert_eq!(waiting.files, 2);
        assert_eq!(waiting.held, "a lock on streaming.sessions");
        assert!(!status.lock_released(Path::new("a.csv")));
        assert!(!status.lock_released(Path::new("never-waited.csv")));
        assert!(status.lock_released(Path::new("b.csv")));
        assert_eq!(status.waiting(), None);
        assert!(!status.lock_released(Path::new("b.csv")));
    }
}
