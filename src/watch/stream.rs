//! Streaming one file: the reader thread (header, then chunks with their rows encoded for the
//! COPY) and the loop that feeds its chunks into ONE Postgres transaction and decides how it
//! ends. What then happens to the file (archive, ledger, mirror) is [`super::ingest`]'s.

use std::path::PathBuf;

use polars::prelude::DataFrame;
use tokio::sync::mpsc;
use tokio_postgres::Client;
use tracing::warn;

use crate::landing::{Landing, RejectsFile};
use crate::load::{
    self, Begun, Counts, EncodedEvents, FileLoad, FileRecord, LoadError, Partitions, Spent,
};
use crate::mirror::{frame_messages, Messages};
use crate::transform::{self, Batch, FileError, FileReader, Header, Limits, Profiles, RejectedRow};

/// What the reader thread sends: the header first, then the row chunks, each with its good
/// rows already encoded for the COPY and, when the mirror is on, as Kafka messages.
pub(super) enum Read {
    Header(Header),
    Rows(Batch, Result<EncodedEvents, LoadError>, Option<Messages>),
}

/// Kafka messages of a file kept in memory until its commit, so that the mirror need not read
/// its events back from Postgres; a file with more is mirrored from the outbox instead.
const MESSAGES_KEPT_BYTES: usize = 64 << 20;

/// How streaming a file into its transaction ended.
pub(super) enum Streamed {
    Committed {
        file_id: i64,
        counts: Counts,
        spent: Spent,
        /// The inserted events' Kafka messages, when all were kept.
        messages: Option<Messages>,
    },
    /// The file is unusable as a whole; nothing was written.
    FileError(FileError),
    /// Too large a share of bad rows; nothing was written. The first bad rows (at most
    /// `QUARANTINE_KEPT`) are kept for the ledger.
    TooManyRejects(Counts, Vec<RejectedRow>),
    /// The same bytes are loaded (or being loaded) under another name.
    SameContent,
    /// The file changed while it was read: someone is still writing it.
    Changed,
}

/// Chunks read ahead of the loader: parsing the next chunk overlaps the COPY of this one.
pub(super) const READ_AHEAD: usize = 1;

/// Bad rows of a quarantined file kept in memory for `streaming.rejected_rows`: enough to see
/// what is wrong, bounded so a huge bad file cannot exhaust memory. The rest are counted, and
/// all of them are in `rejected/<file>.rejected.csv`.
pub(super) const QUARANTINE_KEPT: usize = 10_000;

/// Streams the reader's chunks into one transaction and commits it, unless the file proves
/// unusable, has too many bad rows, changed underneath, or its content is already loaded.
#[allow(clippy::too_many_arguments)]
pub(super) async fn stream_into_postgres(
    client: &mut Client,
    partitions: &Partitions,
    file: &FileRecord,
    rx: &mut mpsc::Receiver<Result<Read, FileError>>,
    rejects: &mut RejectsFile,
    delimiter: u8,
    max_reject_fraction: f64,
    alert_rules: &load::AlertRules,
    unchanged: impl std::future::Future<Output = bool>,
) -> Result<Streamed, LoadError> {
    let mut load = match FileLoad::begin(client, partitions, file).await? {
        Begun::Started(load) => *load,
        Begun::SameContent => return Ok(Streamed::SameContent),
    };
    let mut kept: Vec<RejectedRow> = Vec::new();
    let mut messages = Some(Messages::default());
    while let Some(read) = rx.recv().await {
        let (batch, events, chunk_messages) = match read {
            Ok(Read::Rows(batch, events, chunk_messages)) => (batch, events, chunk_messages),
            Ok(Read::Header(_)) => continue,
            Err(e) => {
                load.rollback().await?;
                return Ok(Streamed::FileError(e));
            }
        };
        let inserted = load.add(&batch, &events?).await?;
        // The reader stops building messages past MESSAGES_KEPT_BYTES, so the inserted rows'
        // (a part of them) are within it too; a chunk without any ends the file's.
        messages = match (messages, chunk_messages) {
            (Some(mut all), Some(chunk)) => {
                all.extend_rows(&chunk, &inserted);
                Some(all)
            }
            _ => None,
        };
        let room = QUARANTINE_KEPT.saturating_sub(kept.len());
        kept.extend(batch.rejects.iter().take(room).cloned());
        let lines = transform::rejects_csv_lines(&batch.rejects, delimiter);
        if let Err(e) = rejects.append(&lines) {
            warn!(error = %e, "Cannot write the rejected rows beside the file; they are in streaming.rejected_rows.");
        }
    }
    if !unchanged.await {
        load.rollback().await?;
        return Ok(Streamed::Changed);
    }
    let c = load.counts();
    if c.rejected > 0 && c.rejected as f64 > max_reject_fraction * c.total as f64 {
        load.rollback().await?;
        return Ok(Streamed::TooManyRejects(c, kept));
    }
    let (file_id, counts, spent) = load.commit(alert_rules).await?;
    Ok(Streamed::Committed {
        file_id,
        counts,
        spent,
        messages,
    })
}

/// The reader thread: header, then chunks, then it ends; stops early when the loader hangs up.
/// With `mirror`, each chunk's good rows come with their Kafka messages too.
pub(super) fn read_file(
    landing: &Landing,
    path: PathBuf,
    limits: Limits,
    profiles: &Profiles,
    mirror: bool,
    tx: mpsc::Sender<Result<Read, FileError>>,
) {
    let source_file = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let compression = transform::Compression::of_name(&source_file);
    let reader = landing
        .reader(&path)
        .and_then(|f| transform::decompressed(f, compression))
        .map_err(FileError::from)
        .and_then(|f| FileReader::open_with(f, limits, profiles));
    let mut messages = MessageBuilder {
        on: mirror,
        built: 0,
    };
    let mut reader = match reader {
        Ok(reader) => reader,
        Err(e) => {
            let _ = tx.blocking_send(Err(e));
            return;
        }
    };
    if tx
        .blocking_send(Ok(Read::Header(reader.header().clone())))
        .is_err()
    {
        return;
    }
    loop {
        let next = match reader.next_batch() {
            Ok(Some(mut batch)) => {
                let events = load::encode_events(&batch.good, &source_file);
                let messages = messages.next(&batch.good);
                // The loader needs only the encoded rows; the frame would double the memory of
                // every chunk waiting in the channel.
                batch.good = DataFrame::empty();
                Ok(Read::Rows(batch, events, messages))
            }
            Ok(None) => return,
            Err(e) => Err(e),
        };
        let failed = next.is_err();
        if tx.blocking_send(next).is_err() || failed {
            return;
        }
    }
}

/// Builds each chunk's Kafka messages on the reader's thread until the file's exceed what the
/// loader keeps ([`MESSAGES_KEPT_BYTES`]); then, and after any failure, it builds none, and the
/// file is mirrored from the outbox, as after a restart.
struct MessageBuilder {
    on: bool,
    built: usize,
}

impl MessageBuilder {
    fn next(&mut self, good: &DataFrame) -> Option<Messages> {
        if !self.on {
            return None;
        }
        match frame_messages(good) {
            Ok(messages) if self.built + messages.size() <= MESSAGES_KEPT_BYTES => {
                self.built += messages.size();
                Some(messages)
            }
            Ok(_) => {
                self.on = false;
                None
            }
            Err(e) => {
                warn!(error = %e, "Cannot build Kafka messages from the rows; the mirror reads them back from Postgres.");
                self.on = false;
                None
            }
        }
    }
}
