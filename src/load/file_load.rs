//! The per-file load: ONE transaction holding a file's ledger row, its new events (binary COPY
//! chunk by chunk; ids loaded before count as duplicates), its rejected rows and row warnings
//! (damaged optional values loaded as NULL), and the derive of
//! purchases, hourly stats and analytics from exactly those new events ([`super::derive`]).
//! Never touches files or Kafka.
//! Invariant: either everything of a file commits, or nothing does.

use std::collections::HashSet;
use std::pin::pin;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use futures_util::SinkExt;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Transaction};
use tracing::debug;
use uuid::Uuid;

use super::derive::{copy_purchases, FileDerive};
use super::encode::{EncodedEvents, COPY_EVENTS, COPY_HEADER};
use super::ledger::{self, FileRecord};
use super::{LoadError, LOCK_TIMEOUT};
use crate::transform::{Batch, RejectedRow, RowWarning};

/// Which of a chunk's event ids are loaded already: committed by anyone, or earlier in this
/// file's own transaction (so a repeat across chunks is caught too).
const KNOWN_IDS: &str = "SELECT event_id FROM streaming.events WHERE event_id = ANY($1)";

/// For one file's transaction. The planner's row estimate for events lags far behind while files
/// pour in (autovacuum analyzes later), and a stale estimate turns the id lookup into a full scan
/// per chunk. The derive's merge sorts a file's keys; with the default 4 MB of work_mem a large
/// file's would be sorted on disk. With seq scans priced out, the merge's scan of its temporary
/// tables looks costly enough for JIT compilation, which took 150-200 ms per statement to save
/// nothing on a few thousand rows. [`lock_timeout_setting`] follows them.
const LOAD_SETTINGS: &str =
    "SET LOCAL enable_seqscan = off; SET LOCAL work_mem = '64MB'; SET LOCAL jit = off";

/// Distinct derived keys (sessions, products, hours, user-hours) a load holds in memory before
/// it sends them to its temporary tables: about 20 MB.
const SPILL_KEYS: usize = 100_000;

/// A lock held by another session (`LOCK TABLE streaming.events` in an open psql transaction)
/// fails the load after [`LOCK_TIMEOUT`] with `LoadError::LockTimeout` instead of hanging it;
/// LOCAL, so that it ends with the transaction and the claims' and migrations' advisory locks
/// outside it still wait as long as they need.
fn lock_timeout_setting() -> String {
    format!("SET LOCAL lock_timeout = {}", LOCK_TIMEOUT.as_millis())
}

const COPY_REJECTED: &str =
    "COPY streaming.rejected_rows (file_id, line, column_name, reason, raw_line) \
    FROM STDIN (FORMAT binary)";

const COPY_WARNINGS: &str =
    "COPY streaming.row_warnings (file_id, line, column_name, reason, raw_value) \
    FROM STDIN (FORMAT binary)";

/// How starting a file's load ended.
pub enum Begun<'a> {
    Started(FileLoad<'a>),
    /// Another transaction holds or committed the same content (the ledger's unique content
    /// index decided); nothing was written.
    SameContent,
}

/// One file's load in progress: ONE transaction holding its ledger row, its new events and its
/// rejected rows. Nothing is visible to others until [`FileLoad::commit`]; dropping it (or
/// [`FileLoad::rollback`]) leaves no trace.
pub struct FileLoad<'a> {
    tx: Transaction<'a>,
    file_id: i64,
    counts: ledger::Counts,
    spent: Spent,
    /// Chunks added so far.
    chunks: u32,
    /// What the new events add to the derived tables, merged at commit.
    derive: Box<FileDerive>,
}

/// Where a file's load spent its time in Postgres: logged with each file, summed by
/// `scripts/bench`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Spent {
    /// Looking up which event ids are loaded already.
    pub lookup: Duration,
    /// COPY of new events and rejected rows.
    pub copy: Duration,
    /// Purchases, hourly stats and analytics from the new events.
    pub derive: Duration,
    /// Ledger row finished, and the commit (its WAL flush).
    pub commit: Duration,
}

impl<'a> FileLoad<'a> {
    /// Opens the transaction and inserts the file's ledger row.
    ///
    /// # Errors
    /// `Unavailable` when Postgres is away (retry later), `LockTimeout` when another session
    /// holds a lock this load needs (any statement of the load may say so), `Refused` for
    /// anything else.
    pub async fn begin(client: &'a mut Client, file: &FileRecord) -> Result<Begun<'a>, LoadError> {
        let tx = client.transaction().await?;
        tx.batch_execute(&format!("{LOAD_SETTINGS}; {}", lock_timeout_setting()))
            .await?;
        match ledger::insert_loading(&tx, file).await {
            Ok(file_id) => Ok(Begun::Started(FileLoad {
                tx,
                file_id,
                counts: ledger::Counts::default(),
                spent: Spent::default(),
                chunks: 0,
                derive: Box::default(),
            })),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(Begun::SameContent),
            Err(e) => Err(e.into()),
        }
    }

    pub fn file_id(&self) -> i64 {
        self.file_id
    }

    /// Rows seen so far: total, loaded, duplicate and rejected.
    pub fn counts(&self) -> ledger::Counts {
        self.counts
    }

    /// Inserts one chunk's new events (binary COPY; ids loaded before count as duplicates) and
    /// stores its rejected rows.
    ///
    /// # Errors
    /// `Conflict` when another transaction committed one of these event ids meanwhile.
    pub async fn add(&mut self, batch: &Batch, events: &EncodedEvents) -> Result<(), LoadError> {
        if !events.is_empty() {
            let retry_chunk = self.chunks < SAVEPOINT_CHUNKS;
            self.chunks += 1;
            let copied =
                copy_new_events(&self.tx, self.file_id, events, retry_chunk, &mut self.spent)
                    .await?;
            self.counts.loaded += copied.len() as i64;
            self.counts.duplicate += events.len() as i64 - copied.len() as i64;
            let started = Instant::now();
            copy_purchases(&self.tx, &events.ids, &events.facts, &copied).await?;
            self.spent.copy += started.elapsed();
            let started = Instant::now();
            for &row in &copied {
                self.derive.fold(&events.facts[row as usize])?;
            }
            if self.derive.keys() >= SPILL_KEYS {
                self.derive.spill(&self.tx).await?;
            }
            self.spent.derive += started.elapsed();
        }
        copy_rejected_rows(&self.tx, self.file_id, &batch.rejects).await?;
        copy_warnings(&self.tx, self.file_id, &batch.warnings).await?;
        self.counts.total += batch.rows_total as i64;
        self.counts.rejected += batch.rejects.len() as i64;
        self.counts.repaired += batch.warnings.len() as i64;
        Ok(())
    }

    /// Derives purchases, hourly stats and analytics from the file's new events, finishes the
    /// ledger row and commits. Returns the file's id, final counts and where the time went.
    pub async fn commit(mut self) -> Result<(i64, ledger::Counts, Spent), LoadError> {
        let started = Instant::now();
        if self.counts.loaded > 0 {
            self.derive.merge(&self.tx).await?;
        }
        self.spent.derive += started.elapsed();
        let started = Instant::now();
        ledger::finish_loading(&self.tx, self.file_id, &self.counts).await?;
        self.tx.commit().await?;
        self.spent.commit = started.elapsed();
        Ok((self.file_id, self.counts, self.spent))
    }

    /// Abandons the load; nothing of it stays.
    pub async fn rollback(self) -> Result<(), LoadError> {
        self.tx.rollback().await?;
        Ok(())
    }
}

/// Records a quarantined file in a short transaction of its own (its load was rolled back): its
/// ledger row as `rejected` with `counts`, and its bad rows `kept` in memory. Returns its id.
///
/// # Errors
/// `Unavailable` when Postgres is away (retry later), `Refused` for anything else.
pub async fn record_quarantine(
    client: &mut Client,
    file: &FileRecord,
    error: &str,
    counts: &ledger::Counts,
    kept: &[RejectedRow],
) -> Result<i64, LoadError> {
    let tx = client.transaction().await?;
    tx.batch_execute(&lock_timeout_setting()).await?;
    let file_id = ledger::record_quarantined(&tx, file, error, counts).await?;
    copy_rejected_rows(&tx, file_id, kept).await?;
    tx.commit().await?;
    Ok(file_id)
}

const SEND_BYTES: usize = 256 << 10;

/// How often one chunk is tried again after a concurrent load committed some of its ids.
const CHUNK_ATTEMPTS: usize = 5;

/// Chunks of a file that get a savepoint. Postgres keeps up to 64 subtransaction ids per
/// transaction in shared memory; past that every other session's snapshot must look them up
/// on disk. A file of more chunks (over about 500 MB) falls back to reading the whole file
/// again after a collision, which is rare at that size.
const SAVEPOINT_CHUNKS: u32 = 60;

/// COPYs the rows whose event id is new (not loaded before, not earlier in the chunk: the
/// first line wins) into `streaming.events`; returns which (indexes into `events`).
///
/// Two loads that share event ids (two workers on overlapping files, or two watchers) meet at
/// the unique index: the later one waits for the earlier one's commit, then gets a unique
/// violation (or a deadlock when each holds an id the other wants). Only this chunk is undone
/// (a savepoint) and tried again: its lookup then sees the committed ids, which count as
/// duplicates. The file is not read again.
async fn copy_new_events(
    tx: &Transaction<'_>,
    file_id: i64,
    events: &EncodedEvents,
    retry_chunk: bool,
    spent: &mut Spent,
) -> Result<Vec<u32>, LoadError> {
    let mut unique = events.ids.clone();
    unique.sort_unstable();
    unique.dedup();
    if !retry_chunk {
        return copy_chunk(tx, file_id, events, &unique, spent)
            .await
            .map_err(|e| match is_concurrent_load(&e) {
                true => LoadError::Conflict(e),
                false => e.into(),
            });
    }
    let mut attempt = 1;
    loop {
        tx.batch_execute("SAVEPOINT chunk").await?;
        match copy_chunk(tx, file_id, events, &unique, spent).await {
            Ok(copied) => {
                tx.batch_execute("RELEASE SAVEPOINT chunk").await?;
                return Ok(copied);
            }
            Err(e) if is_concurrent_load(&e) && attempt < CHUNK_ATTEMPTS => {
                debug!(attempt, error = %e, "A concurrent load committed some of this chunk's event ids; copying the chunk again without them.");
                tx.batch_execute("ROLLBACK TO SAVEPOINT chunk").await?;
                attempt += 1;
            }
            Err(e) if is_concurrent_load(&e) => return Err(LoadError::Conflict(e)),
            Err(e) => return Err(e.into()),
        }
    }
}

/// One try of [`copy_new_events`]: look the ids up, COPY the new ones.
async fn copy_chunk(
    tx: &Transaction<'_>,
    file_id: i64,
    events: &EncodedEvents,
    unique: &[Uuid],
    spent: &mut Spent,
) -> Result<Vec<u32>, tokio_postgres::Error> {
    let started = Instant::now();
    let mut seen: HashSet<Uuid> = tx
        .query(KNOWN_IDS, &[&unique])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    spent.lookup += started.elapsed();

    let started = Instant::now();
    let sink = tx.copy_in(COPY_EVENTS).await?;
    let mut sink = pin!(sink);
    let mut buf = BytesMut::with_capacity(SEND_BYTES + 4096);
    buf.put_slice(COPY_HEADER);
    let mut start = 0;
    let mut sent = Vec::with_capacity(events.len());
    for (row, (id, &end)) in events.ids.iter().zip(&events.ends).enumerate() {
        let tuple = &events.tuples[start..end];
        start = end;
        // A repeated id: loaded before, or earlier in this file (`insert` is false).
        if !seen.insert(*id) {
            continue;
        }
        sent.push(row as u32);
        buf.put_slice(tuple);
        buf.put_i32(8);
        buf.put_i64(file_id);
        if buf.len() >= SEND_BYTES {
            sink.send(buf.split().freeze()).await?;
        }
    }
    buf.put_i16(-1);
    sink.send(buf.split().freeze()).await?;
    let copied = sink.as_mut().finish().await?;
    spent.copy += started.elapsed();
    debug_assert_eq!(copied, sent.len() as u64);
    Ok(sent)
}

/// A unique violation or a deadlock on insert: another load holds or committed some of the
/// same event ids.
fn is_concurrent_load(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
        || e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED)
}

async fn copy_rejected_rows(
    tx: &Transaction<'_>,
    file_id: i64,
    rejects: &[RejectedRow],
) -> Result<(), LoadError> {
    if rejects.is_empty() {
        return Ok(());
    }
    let sink = tx.copy_in(COPY_REJECTED).await?;
    let types = [Type::INT8, Type::INT8, Type::TEXT, Type::TEXT, Type::TEXT];
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
    for r in rejects {
        let line = r.line as i64;
        writer
            .as_mut()
            .write(&[&file_id, &line, &r.column, &r.reason, &r.raw])
            .await?;
    }
    writer.finish().await?;
    Ok(())
}

async fn copy_warnings(
    tx: &Transaction<'_>,
    file_id: i64,
    warnings: &[RowWarning],
) -> Result<(), LoadError> {
    if warnings.is_empty() {
        return Ok(());
    }
    let sink = tx.copy_in(COPY_WARNINGS).await?;
    let types = [Type::INT8, Type::INT8, Type::TEXT, Type::TEXT, Type::TEXT];
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
    for w in warnings {
        let line = w.line as i64;
        writer
            .as_mut()
            .write(&[&file_id, &line, &w.column, &w.reason, &w.raw_value])
            .await?;
    }
    writer.finish().await?;
    Ok(())
}
