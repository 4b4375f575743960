//! Files of the other streams (transactions, inventory): a header that chose no event profile
//! is looked at again here, and a stream file is read whole, checked and loaded in ONE
//! transaction through `load::StreamLoad`, then ends like an event file
//! ([`Watcher::settle_streamed`]): same ledger, rejects file, quarantine, archive and mirror.
//! The event path is not touched: it reaches here only when its own header found no profile.

use std::io::Read;
use std::path::Path;

use chrono::Utc;
use tokio_postgres::Client;

use super::stream::{Streamed, QUARANTINE_KEPT};
use super::{Outcome, RetryCause, Watcher};
use crate::landing::{Identity, Landing};
use crate::load::{self, FileRecord, LoadError, Spent, StreamBegun, StreamLoad};
use crate::transform::streams::{self, StreamFile};
use crate::transform::{self, Compression, FileError, Miss};

impl Watcher {
    /// Loads `path` as a transactions or inventory file when its header is one; otherwise
    /// rejects it as a header of no profile (`misses`, as the event reader said).
    pub(super) async fn load_other_stream(
        &mut self,
        path: &Path,
        file: &FileRecord,
        identity: &Identity,
        misses: Vec<Miss>,
    ) -> Outcome {
        let limits = self.settings.limits;
        let max_bytes = self.settings.max_file_bytes;
        let window = self.profiles.window.resolve(Utc::now());
        let (landing, owned) = (self.landing.clone(), path.to_path_buf());
        let stream_profiles = self.profiles.streams.clone();
        let read = tokio::task::spawn_blocking(move || {
            // A file or an object, decompressed as its name says; only its header decides
            // whether it is read whole.
            let head = text_of(&landing, &owned, limits.max_line_bytes as u64)?;
            let Some(first) = streams::first_line(&head) else {
                return Ok(None);
            };
            if streams::sniff(&first).is_some() {
                let text = whole_text(&landing, &owned, max_bytes)?;
                return streams::read(&text, limits, &window, None).map(Some);
            }
            // A user's own export of a stream (an order-items or invoice-lines file).
            match streams::profile_for(&first, &stream_profiles) {
                Some(p) => {
                    tracing::debug!(profile = %p.name, "Reading through a stream profile.");
                    let text = whole_text(&landing, &owned, max_bytes)?;
                    streams::read(&text, limits, &window, Some(p)).map(Some)
                }
                None => Ok(None),
            }
        })
        .await;
        let parsed = match read {
            Ok(Ok(Some(parsed))) => parsed,
            Ok(Ok(None)) => {
                let e = FileError::NoProfile { misses };
                return self.reject_file(path, file, &e.to_string()).await;
            }
            // A bucket that stopped answering is asked again later; anything else rejects.
            Ok(Err(e)) => return self.file_error(path, file, e).await,
            Err(e) => return Outcome::Retry(RetryCause::Task(format!("reading: {e}"))),
        };
        let file = FileRecord {
            profile: Some(parsed.stream.name().to_string()),
            ..file.clone()
        };
        let mut rejects =
            self.landing
                .rejects_file(&file.file_name, &parsed.header_raw, parsed.delimiter);
        if let Err(e) = rejects.append(&transform::rejects_csv_lines(
            &parsed.rejects,
            parsed.delimiter,
        )) {
            tracing::warn!(error = %e, "Cannot write the rejected rows beside the file; they are in streaming.rejected_rows.");
        }
        let landing = self.landing.clone();
        let streamed = load_stream(
            &mut self.client,
            &file,
            &parsed,
            self.settings.max_reject_fraction,
            &self.settings.alerts,
            landing.unchanged_since(path, identity),
        )
        .await;
        self.settle_streamed(path, &file, streamed, rejects).await
    }
}

/// One stream file into one transaction, ending as an event file's load ends.
async fn load_stream(
    client: &mut Client,
    file: &FileRecord,
    parsed: &StreamFile,
    max_reject_fraction: f64,
    alert_rules: &load::AlertRules,
    unchanged: impl std::future::Future<Output = bool>,
) -> Result<Streamed, LoadError> {
    let mut load = match StreamLoad::begin(client, file).await? {
        StreamBegun::Started(load) => load,
        StreamBegun::SameContent => return Ok(Streamed::SameContent),
    };
    load.add(parsed, alert_rules).await?;
    if !unchanged.await {
        load.rollback().await?;
        return Ok(Streamed::Changed);
    }
    let c = load.counts();
    if c.rejected > 0 && c.rejected as f64 > max_reject_fraction * c.total as f64 {
        load.rollback().await?;
        let kept = parsed
            .rejects
            .iter()
            .take(QUARANTINE_KEPT)
            .cloned()
            .collect();
        return Ok(Streamed::TooManyRejects(c, kept));
    }
    let (file_id, counts) = load.commit().await?;
    Ok(Streamed::Committed {
        file_id,
        counts,
        spent: Spent::default(),
        messages: None,
    })
}

/// At most `limit` bytes of the text of `path` through the landing (a file or an object),
/// decompressed as its name says.
///
/// # Errors
/// It cannot be read; a damaged archive.
fn text_of(landing: &Landing, path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let raw = landing.reader(path)?;
    let mut text = Vec::new();
    transform::decompressed(raw, Compression::of_name(&name))?
        .take(limit)
        .read_to_end(&mut text)?;
    Ok(text)
}

/// The whole text of `path`, as [`text_of`], for a stream file (read whole into memory).
///
/// # Errors
/// As [`text_of`]; its text is over `max_bytes`.
fn whole_text(landing: &Landing, path: &Path, max_bytes: u64) -> Result<Vec<u8>, FileError> {
    let text = text_of(landing, path, max_bytes.saturating_add(1))?;
    if text.len() as u64 > max_bytes {
        return Err(FileError::TooLargeToReadWhole { limit: max_bytes });
    }
    Ok(text)
}
