//! Readiness: whether a file in the landing directory is complete and may be read now.
//! A file renamed into place is whole at once; a marker says so in marker mode; otherwise a
//! file is complete once nothing wrote to it for the settle interval. A file whose mtime lies
//! in the future (a copy from a machine whose clock is ahead, `touch -d tomorrow`) is timed on
//! this watcher's own clock instead, from when it was first seen so.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::{Admission, Identity, LandingDir};

/// A file's size and mtime, and when this watcher first saw it so.
type Sighting = (u64, SystemTime, Instant);

/// Files seen with a future mtime, shared by the workers.
#[derive(Debug, Clone, Default)]
pub(super) struct FutureMtimes(Arc<Mutex<HashMap<PathBuf, Sighting>>>);

impl FutureMtimes {
    /// How long `path` (of `size`, modified at the future `modified`) must still stay as it is,
    /// measured from the first time it was seen like this; says so once per file.
    fn wait(
        &self,
        path: &Path,
        size: u64,
        modified: SystemTime,
        settle: Duration,
    ) -> Option<Duration> {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let first = match seen.get(path) {
            Some(&(s, m, at)) if s == size && m == modified => at,
            _ => {
                let ahead = modified
                    .duration_since(SystemTime::now())
                    .unwrap_or_default();
                tracing::warn!(
                    file = %path.display(),
                    ahead_secs = ahead.as_secs(),
                    "The file's modification time is in the future (its writer's clock is ahead of \
                     this machine's); it is read once it has not changed for the settle time on \
                     this machine's clock."
                );
                seen.insert(path.to_path_buf(), (size, modified, now));
                now
            }
        };
        let wait = settle.checked_sub(now - first).filter(|d| !d.is_zero());
        if wait.is_none() {
            seen.remove(path);
        }
        wait
    }
}

/// Whether a file may be read now, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Complete; the admission says why.
    Ready(Admission),
    /// Marker mode, and its marker is not there yet.
    AwaitingMarker,
    /// Still within its settle interval: look again after this long.
    SettlesIn(Duration),
    /// It is not there any more (another watcher or a user took it).
    Gone,
}

impl LandingDir {
    /// Whether `path` may be read now, with `settle` as the quiet time of a settled file.
    pub fn readiness(&self, path: &Path, settle: Duration) -> Readiness {
        if let Some(marker) = self.marker(path) {
            return if marker.exists() {
                Readiness::Ready(Admission::Marker)
            } else {
                Readiness::AwaitingMarker
            };
        }
        let Ok(meta) = fs::symlink_metadata(path) else {
            return Readiness::Gone;
        };
        let wait = match meta.modified() {
            Ok(modified) if modified > SystemTime::now() => {
                self.future_mtimes.wait(path, meta.len(), modified, settle)
            }
            _ => match settle_wait(path, settle) {
                Ok(wait) => wait,
                Err(_) => return Readiness::Gone,
            },
        };
        match wait {
            None => Readiness::Ready(Admission::Settled),
            Some(wait) => Readiness::SettlesIn(wait),
        }
    }
}

/// When a file not known to be renamed in may be read: `None` if now, or how long to wait.
/// A file counts as complete once nothing has written to it for `settle`.
/// A symlink is judged by the link itself (never followed), so a dangling one is still rejected.
pub fn settle_wait(path: &Path, settle: Duration) -> io::Result<Option<Duration>> {
    let modified = fs::symlink_metadata(path)?.modified()?;
    let quiet_for = SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default();
    Ok(settle.checked_sub(quiet_for).filter(|d| !d.is_zero()))
}

/// True when the file still has the size and mtime it had when identified: nobody wrote to it.
pub fn unchanged_since(path: &Path, identity: &Identity) -> bool {
    fs::metadata(path)
        .and_then(|m| Ok(m.len() == identity.size && m.modified()? == identity.modified))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_future_mtime_settles_after_the_settle_time_on_the_watchers_clock() {
        let dir = tempfile::tempdir().unwrap();
        let landing = LandingDir::open(dir.path(), None).unwrap();
        let path = landing.root.join("tomorrow.csv");
        let file = fs::File::create(&path).unwrap();
        file.set_modified(SystemTime::now() + Duration::from_secs(86_400))
            .unwrap();
        let settle = Duration::from_millis(200);
        let Readiness::SettlesIn(wait) = landing.readiness(&path, settle) else {
            panic!("a fresh sighting waits for the settle time");
        };
        assert!(wait <= settle, "{wait:?}: not until the mtime");
        std::thread::sleep(wait + Duration::from_millis(10));
        assert_eq!(
            landing.readiness(&path, settle),
            Readiness::Ready(Admission::Settled)
        );
    }
}
