//! Leaving the landing directory once a file's fate is committed: the move to `processed/` or
//! `rejected/`, and the files that could not be moved (a read-only or full file system). Such
//! a file is never read or recorded again: only its move is retried, with backoff, and the
//! failure is logged once. Owns no decision about a file's fate, only about where it goes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tracing::{error, info, warn};

use super::{Outcome, Watcher};
use crate::landing::ArchiveError;
use crate::load::ledger;

/// Where a file whose fate is committed goes.
#[derive(Debug, Clone)]
pub(super) enum Destination {
    Processed,
    /// To `rejected/`, with this text in `<name>.error.txt`.
    Rejected(String),
}

/// A file whose fate is in the ledger but that is still in the landing directory.
#[derive(Debug, Clone)]
struct StuckFile {
    file_id: i64,
    to: Destination,
    /// What the file was when it got stuck: a file replaced since is a new file.
    size: u64,
    modified: Option<SystemTime>,
}

/// The stuck files of a run, shared by its workers (each scans the whole directory).
#[derive(Debug, Clone, Default)]
pub(super) struct StuckFiles(Arc<Mutex<HashMap<PathBuf, StuckFile>>>);

impl StuckFiles {
    fn get(&self, path: &Path) -> Option<StuckFile> {
        self.lock().get(path).cloned()
    }

    fn insert(&self, path: &Path, file: StuckFile) {
        self.lock().insert(path.to_path_buf(), file);
    }

    fn remove(&self, path: &Path) {
        self.lock().remove(path);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, StuckFile>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Watcher {
    /// Moves a file whose fate (`outcome`, ledger row `file_id`) is committed. When the move
    /// fails the file is remembered as stuck and the outcome comes back wrapped in
    /// [`Outcome::Stuck`], so that it is counted once and the file is not read again.
    pub(super) async fn leave_landing(
        &mut self,
        path: &Path,
        file_id: i64,
        to: Destination,
        outcome: Outcome,
    ) -> Outcome {
        match self.move_out(path, &to).await {
            Ok(()) => {}
            Err(ArchiveError::NoNote { target, source }) => no_note(file_id, &target, &source),
            // Moved by someone else meanwhile: it has left, which is all that was asked.
            Err(ArchiveError::NotMoved(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(ArchiveError::NotMoved(e)) => {
                let meta = self.landing.stat(path).await;
                self.stuck.insert(
                    path,
                    StuckFile {
                        file_id,
                        to: to.clone(),
                        size: meta.map_or(0, |(size, _)| size),
                        modified: meta.and_then(|(_, modified)| modified),
                    },
                );
                error!(
                    file_id,
                    error = %e,
                    "File {} (see the ledger, file_id {file_id}), but it cannot be moved to {}/; \
                     it stays in the landing directory, is not read again, and only the move is \
                     retried with backoff (said again only once it succeeds).",
                    fate(&outcome),
                    folder(&to),
                );
                return Outcome::Stuck(Some(Box::new(outcome)));
            }
        }
        self.mark_archived(file_id).await;
        outcome
    }

    /// For a claimed file that is stuck: the move tried again (`Archived` or `Stuck(None)`).
    /// `None` when the file is not stuck, or was replaced since and must be read as new.
    pub(super) async fn retry_stuck(&mut self, path: &Path) -> Option<Outcome> {
        let stuck = self.stuck.get(path)?;
        let Some((size, modified)) = self.landing.stat(path).await else {
            self.stuck.remove(path);
            return Some(Outcome::Gone);
        };
        if size != stuck.size || modified != stuck.modified {
            self.stuck.remove(path);
            info!(
                file_id = stuck.file_id,
                "A file that could not leave the landing directory was replaced; reading it as a new file."
            );
            return None;
        }
        match self.move_out(path, &stuck.to).await {
            Err(ArchiveError::NotMoved(e)) if e.kind() != std::io::ErrorKind::NotFound => {
                return Some(Outcome::Stuck(None))
            }
            Err(ArchiveError::NoNote { target, source }) => {
                no_note(stuck.file_id, &target, &source)
            }
            Err(ArchiveError::NotMoved(_)) | Ok(()) => {}
        }
        self.stuck.remove(path);
        info!(
            file_id = stuck.file_id,
            "Moved the file to {}/ at last.",
            folder(&stuck.to)
        );
        self.mark_archived(stuck.file_id).await;
        Some(Outcome::Archived)
    }

    async fn move_out(&self, path: &Path, to: &Destination) -> Result<(), ArchiveError> {
        match to {
            Destination::Processed => self.landing.archive_processed(path).await.map(drop)?,
            Destination::Rejected(note) => {
                self.landing.archive_rejected(path, note).await.map(drop)?
            }
        }
        Ok(())
    }

    async fn mark_archived(&mut self, file_id: i64) {
        if let Err(e) = ledger::mark_archived(&self.client, file_id).await {
            warn!(file_id, error = %e, "Archived, but cannot record it in the ledger.");
        }
    }
}

fn no_note(file_id: i64, target: &Path, source: &std::io::Error) {
    warn!(
        file_id,
        error = %source,
        "File rejected and moved to {}, but its .error.txt cannot be written; the reason is in \
         the ledger (streaming.ingest_files.error, file_id {file_id}).",
        target.display()
    );
}

fn fate(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Loaded(c) if c.loaded == 0 && c.duplicate == 0 => {
            "committed as rejected (every row broke the contract)"
        }
        Outcome::Loaded(_) => "loaded",
        Outcome::Duplicate => "recorded as a duplicate file",
        Outcome::Rejected(_) => "rejected",
        _ => "recorded",
    }
}

fn folder(to: &Destination) -> &'static str {
    match to {
        Destination::Processed => crate::landing::PROCESSED,
        Destination::Rejected(_) => crate::landing::REJECTED,
    }
}
