//! One file, start to end: claim it, identify it by content, stream it through the transform
//! into ONE Postgres transaction, then move it on and relay its events. Every path ends in an
//! `Outcome`; a file is moved out of `landing/` only after its fate is committed to the ledger.

use std::path::{Path, PathBuf};

use chrono::Utc;
use tokio::sync::mpsc;
use tracing::{info, instrument, warn};

use super::stream::{read_file, stream_into_postgres, Read, Streamed, READ_AHEAD};
use super::stuck::Destination;
use super::{Outcome, RetryCause, Watcher};
use crate::landing::{self, Admission, Identity, IdentityError, RejectsFile};
use crate::load::ledger;
use crate::load::{self, Counts, FileRecord, LoadError, LoadedFile, Spent};
use crate::mirror::Messages;
use crate::transform::{FileError, Header, RejectedRow};

impl Watcher {
    /// Claims, reads, transforms, loads and archives one complete file, and counts how that
    /// ended in the run's statistics.
    #[instrument(skip_all, fields(file = %path.file_name().unwrap_or_default().to_string_lossy()))]
    pub(super) async fn process(&mut self, path: &Path, admission: Admission) -> Outcome {
        let outcome = self.claim_and_process(path, admission).await;
        self.stats.record(&outcome);
        self.note_lock_wait(path, &outcome);
        outcome
    }

    async fn claim_and_process(&mut self, path: &Path, admission: Admission) -> Outcome {
        if let Err(e) = self.ensure_connected().await {
            return Outcome::Retry(e.into());
        }
        let name = landing::escaped_name(path);
        match landing::try_claim(&self.client, &name).await {
            Ok(true) => {}
            Ok(false) => return Outcome::Busy,
            Err(e) => return Outcome::Retry(e.into()),
        }
        // Its fate is committed already; only its move out of the landing directory is left.
        let outcome = match self.retry_stuck(path).await {
            Some(outcome) => outcome,
            None => self.process_claimed(path, name.clone(), admission).await,
        };
        self.landing.done_with(path);
        if !self.client.is_closed() {
            if let Err(e) = landing::release_claim(&self.client, &name).await {
                warn!(error = %e, "Cannot release the file's claim; it ends with this connection.");
            }
        }
        outcome
    }

    async fn process_claimed(
        &mut self,
        path: &Path,
        name: String,
        admission: Admission,
    ) -> Outcome {
        let started_at = Utc::now();
        if path.file_name().and_then(|n| n.to_str()).is_none() {
            // Its name would reach the tables, the topic and the log altered; the user renames it.
            let file = FileRecord::unidentified(name, admission.as_str(), started_at);
            let reason = "the file name is not valid UTF-8 (shown with its other bytes as \\xNN); \
                          rename it to UTF-8 and drop it again";
            return self.reject_file(path, &file, reason).await;
        }
        let identified = self
            .landing
            .identify(path, self.settings.max_file_bytes)
            .await;
        let identity = match identified {
            Ok(identity) => identity,
            // Gone since it was seen: another watcher finished it, or a user took it back.
            Err(IdentityError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Outcome::Gone
            }
            // A bucket that does not answer: nothing is known of the object yet; try again.
            Err(IdentityError::Io(e)) if self.landing.local().is_none() => {
                return Outcome::Retry(RetryCause::Task(format!("reading the object: {e}")))
            }
            Err(e) => {
                let file = FileRecord::unidentified(name, admission.as_str(), started_at);
                return self.reject_file(path, &file, &e.to_string()).await;
            }
        };
        if identity.size == 0 && self.settings.marker_suffix.is_none() {
            if let Some(suffix) = landing::marker_suffix_of(&name) {
                let file = FileRecord::unidentified(name, admission.as_str(), started_at);
                let reason = format!(
                    "looks like a completion marker (empty, named *{suffix}), but marker mode is \
                     off: start the watcher with --marker-suffix {suffix} (MARKER_SUFFIX) to read \
                     x.csv only once x.csv{suffix} exists"
                );
                return self.reject_file(path, &file, &reason).await;
            }
        }
        let file = FileRecord {
            file_name: name,
            size_bytes: identity.size as i64,
            sha256: identity.sha256.clone(),
            admitted_by: admission.as_str(),
            started_at,
            notes: None,
            profile: None,
        };
        match ledger::find_loaded(&self.client, &file.sha256, file.size_bytes).await {
            Ok(Some(earlier)) => return self.already_loaded(path, &file, Some(earlier)).await,
            Ok(None) => {}
            Err(e) => return Outcome::Retry(e.into()),
        }
        match ledger::find_unarchived(&self.client, &file).await {
            // An earlier run recorded its fate but could not move it (a read-only or full
            // file system): move it now, record nothing new.
            Ok(Some(earlier)) => {
                info!(
                    file_id = earlier.file_id,
                    status = %earlier.status,
                    "File was recorded by an earlier run that could not move it; moving it now."
                );
                let to = match earlier.error {
                    Some(error) if earlier.status == "rejected" => {
                        Destination::Rejected(format!("{}: {error}", file.file_name))
                    }
                    _ => Destination::Processed,
                };
                return self
                    .leave_landing(path, earlier.file_id, to, Outcome::Archived)
                    .await;
            }
            Ok(None) => {}
            Err(e) => return Outcome::Retry(e.into()),
        }
        self.load(path, &file, &identity).await
    }

    async fn load(&mut self, path: &Path, file: &FileRecord, identity: &Identity) -> Outcome {
        let (tx, mut rx) = mpsc::channel(READ_AHEAD);
        let source = path.to_path_buf();
        let limits = self.settings.limits;
        let profiles = self.profiles.clone();
        let landing = self.landing.clone();
        let mirror = self.relay.is_some();
        let reader = tokio::task::spawn_blocking(move || {
            read_file(&landing, source, limits, &profiles, mirror, tx)
        });
        let header = match rx.recv().await {
            Some(Ok(Read::Header(header))) => header,
            Some(Err(FileError::NoProfile { misses })) => {
                return self.load_other_stream(path, file, identity, misses).await
            }
            Some(Err(e)) => return self.file_error(path, file, e).await,
            Some(Ok(Read::Rows(..))) | None => {
                return Outcome::Retry(RetryCause::Task(format!(
                    "the reader stopped early: {:?}",
                    reader.await.err()
                )))
            }
        };
        let mut rejects = self
            .landing
            .rejects_file(&file.file_name, &header.raw, header.delimiter);
        let file = &with_extra_columns_noted(file, &header);
        let landing = self.landing.clone();
        let streamed = stream_into_postgres(
            &mut self.client,
            &self.partitions,
            file,
            &mut rx,
            &mut rejects,
            header.delimiter,
            self.settings.max_reject_fraction,
            &self.settings.alerts,
            landing.unchanged_since(path, identity),
        )
        .await;
        drop(rx);
        self.settle_streamed(path, file, streamed, rejects).await
    }

    /// What happens to a file after its rows were streamed into its transaction (or not): the
    /// same for every stream.
    pub(super) async fn settle_streamed(
        &mut self,
        path: &Path,
        file: &FileRecord,
        streamed: Result<Streamed, LoadError>,
        rejects: RejectsFile,
    ) -> Outcome {
        let streamed = match streamed {
            Ok(streamed) => streamed,
            // The lock is released when its holder is done; name the holder while it still is.
            Err(LoadError::LockTimeout { source, .. }) => {
                let held = load::lock_holder(&self.client).await;
                return Outcome::Retry(LoadError::LockTimeout { source, held }.into());
            }
            Err(e) if e.is_retryable() => return Outcome::Retry(e.into()),
            Err(e) => return self.reject_file(path, file, &e.to_string()).await,
        };
        match streamed {
            Streamed::Committed {
                file_id,
                counts,
                spent,
                messages,
            } => {
                let kept = match self.landing.place_rejects(rejects).await {
                    Ok(kept) => kept,
                    Err(e) => {
                        warn!(error = %e, "Cannot write the rejected rows beside the file; they are in streaming.rejected_rows.");
                        None
                    }
                };
                self.loaded(path, file, (file_id, counts), spent, kept, messages)
                    .await
            }
            Streamed::FileError(e) => self.file_error(path, file, e).await,
            Streamed::TooManyRejects(c, bad) => {
                let beside = self.landing.place_rejects(rejects).await.ok().flatten();
                let reason = format!(
                    "{} of {} rows ({:.1}%) broke the contract, more than --max-reject-fraction {}; \
                     nothing of the file was loaded. The bad rows and their reasons are in \
                     streaming.rejected_rows and {}.",
                    c.rejected,
                    c.total,
                    100.0 * c.rejected as f64 / c.total.max(1) as f64,
                    self.settings.max_reject_fraction,
                    beside.map_or("the watcher's log".to_string(), |p| display_name(&p)),
                );
                self.quarantine(path, file, c, &bad, &reason).await
            }
            Streamed::SameContent => {
                let earlier = ledger::find_loaded(&self.client, &file.sha256, file.size_bytes)
                    .await
                    .ok()
                    .flatten();
                self.already_loaded(path, file, earlier).await
            }
            Streamed::Changed => Outcome::Retry(RetryCause::Changed),
        }
    }

    async fn loaded(
        &mut self,
        path: &Path,
        file: &FileRecord,
        (file_id, counts): (i64, Counts),
        spent: Spent,
        rejects_kept: Option<PathBuf>,
        messages: Option<Messages>,
    ) -> Outcome {
        // Where the bad rows can be read: the rejects file only if it could be written.
        let beside = rejects_kept.map_or(String::new(), |p| format!("{} and ", display_name(&p)));
        let to = if counts.loaded == 0 && counts.duplicate == 0 {
            Destination::Rejected(format!(
                "All {} rows broke the contract; see {beside}streaming.rejected_rows (file_id {file_id}).",
                counts.total
            ))
        } else {
            Destination::Processed
        };
        let outcome = self
            .leave_landing(path, file_id, to, Outcome::Loaded(counts))
            .await;
        crate::metrics::file_loaded(&counts, file.started_at); // analytics
        if counts.rejected > 0 {
            warn!(
                file = %file.file_name,
                file_id,
                rejected = counts.rejected,
                rows = counts.total,
                "Rows broke the contract and were not loaded; each is in {beside}streaming.rejected_rows with its line, column and reason."
            );
        }
        if counts.repaired > 0 {
            warn!(
                file = %file.file_name,
                file_id,
                repaired = counts.repaired,
                "Optional values could not be used; their rows loaded with them empty, the raw text in events.extra (<column>_raw) and each in streaming.row_warnings."
            );
        }
        info!(
            file_id,
            rows = counts.total,
            loaded = counts.loaded,
            rejected = counts.rejected,
            duplicate = counts.duplicate,
            repaired = counts.repaired,
            lookup_ms = spent.lookup.as_millis() as u64,
            copy_ms = spent.copy.as_millis() as u64,
            derive_ms = spent.derive.as_millis() as u64,
            // Fractional: the checks take about a millisecond.
            alerts_ms = (spent.alerts.as_secs_f64() * 1e5).round() / 100.0,
            commit_ms = spent.commit.as_millis() as u64,
            "File loaded."
        );
        self.mirror_file(file_id, messages.as_ref()).await;
        outcome
    }

    async fn already_loaded(
        &mut self,
        path: &Path,
        file: &FileRecord,
        earlier: Option<LoadedFile>,
    ) -> Outcome {
        if let Some(e) = earlier
            .as_ref()
            .filter(|e| !e.archived && e.file_name == file.file_name)
        {
            // Our own earlier run committed it but stopped before moving it.
            info!(
                file_id = e.file_id,
                "File was loaded before the last stop; archiving it."
            );
            return self
                .leave_landing(path, e.file_id, Destination::Processed, Outcome::Archived)
                .await;
        }
        // Same bytes under another name, or dropped again: audit it, load nothing.
        let note = match &earlier {
            Some(e) => format!("same content as {} (file_id {})", e.file_name, e.file_id),
            None => "same content as a file loaded concurrently".to_string(),
        };
        let file_id =
            match ledger::record_unloaded(&self.client, file, "duplicate_file", &note).await {
                Ok(id) => id,
                Err(e) => return Outcome::Retry(e.into()),
            };
        crate::metrics::file_finished("duplicate_file", &Counts::default(), file.started_at); // analytics
        info!(%note, "Duplicate file skipped.");
        self.leave_landing(path, file_id, Destination::Processed, Outcome::Duplicate)
            .await
    }

    /// Records a file with too many bad rows, its rows counted and its first bad rows in
    /// `streaming.rejected_rows`, then moves it to `rejected/`.
    async fn quarantine(
        &mut self,
        path: &Path,
        file: &FileRecord,
        read: Counts,
        bad: &[RejectedRow],
        reason: &str,
    ) -> Outcome {
        let counts = Counts {
            total: read.total,
            rejected: read.rejected,
            quarantined: read.total - read.rejected,
            ..Counts::default()
        };
        let mut file = file.clone();
        let left_out = read.rejected - bad.len() as i64;
        if left_out > 0 {
            let note = format!(
                "rejected_rows holds the first {} of {} bad rows ({left_out} more in the \
                 .rejected.csv)",
                bad.len(),
                read.rejected
            );
            file.notes = Some(match file.notes {
                Some(n) => format!("{n}; {note}"),
                None => note,
            });
        }
        let recorded = load::record_quarantine(&mut self.client, &file, reason, &counts, bad).await;
        let file_id = match recorded {
            Ok(id) => id,
            Err(e) if e.is_retryable() => return Outcome::Retry(e.into()),
            Err(e) => {
                return self
                    .reject_file(path, &file, &format!("{reason} ({e})"))
                    .await
            }
        };
        crate::metrics::file_finished("rejected", &counts, file.started_at); // analytics
        self.archive_rejected(path, &file, file_id, reason).await
    }

    /// A file unusable as a whole is rejected; but a bucket that stopped answering mid-read
    /// says nothing about the object, which is read again later (nothing of it was written).
    pub(super) async fn file_error(
        &mut self,
        path: &Path,
        file: &FileRecord,
        e: FileError,
    ) -> Outcome {
        match e {
            FileError::Io(e) if self.landing.local().is_none() => {
                Outcome::Retry(RetryCause::Task(format!("reading the object: {e}")))
            }
            e => self.reject_file(path, file, &e.to_string()).await,
        }
    }

    pub(super) async fn reject_file(
        &mut self,
        path: &Path,
        file: &FileRecord,
        reason: &str,
    ) -> Outcome {
        let file_id = match ledger::record_unloaded(&self.client, file, "rejected", reason).await {
            Ok(id) => id,
            Err(e) => return Outcome::Retry(e.into()),
        };
        crate::metrics::file_finished("rejected", &Counts::default(), file.started_at); // analytics
        self.archive_rejected(path, file, file_id, reason).await
    }

    async fn archive_rejected(
        &mut self,
        path: &Path,
        file: &FileRecord,
        file_id: i64,
        reason: &str,
    ) -> Outcome {
        warn!(file = %file.file_name, %reason, "File rejected.");
        let message = format!(
            "{}: {reason}\n\nNothing of this file was loaded (ledger file_id {file_id}). Fix it and drop it \
             into the landing directory again.",
            file.file_name
        );
        let outcome = Outcome::Rejected(reason.to_string());
        self.leave_landing(path, file_id, Destination::Rejected(message), outcome)
            .await
    }
}

/// Notes the file's source profile and extra columns (kept per row in `events.extra`) in its
/// ledger row and the log, once per file.
fn with_extra_columns_noted(file: &FileRecord, header: &Header) -> FileRecord {
    let mut file = file.clone();
    file.profile = Some(header.profile.clone());
    if !header.extra.is_empty() {
        let names: Vec<&str> = header.extra.iter().map(|x| x.key.as_str()).collect();
        let names = names.join(", ");
        info!(file = %file.file_name, extra_columns = %names, "The file has columns beyond the contract; they are kept per row in events.extra.");
        file.notes = Some(format!("extra columns kept in events.extra: {names}"));
    }
    file
}

fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| format!("rejected/{}", n.to_string_lossy()))
        .unwrap_or_default()
}
