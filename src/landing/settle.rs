//! Readiness: whether a file in the landing directory is complete and may be read now.
//! A file renamed into place is whole at once; a marker says so in marker mode; otherwise a
//! file is complete once nothing wrote to it for the settle interval.

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{Admission, Identity, LandingDir};

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
        match settle_wait(path, settle) {
            Ok(None) => Readiness::Ready(Admission::Settled),
            Ok(Some(wait)) => Readiness::SettlesIn(wait),
            Err(_) => Readiness::Gone,
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
