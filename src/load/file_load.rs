//! The per-file load: ONE transaction holding a file's ledger row, its new events (binary COPY
//! chunk by chunk; ids loaded before count as duplicates, looked up once the primary key
//! refused a chunk), its rejected rows and row warnings
//! (damaged optional values loaded as NULL), and the derive of
//! purchases, hourly stats and analytics from exactly those new events ([`super::derive`]),
//! and the data-quality checks of the file ([`super::alerts`]) just before the commit.
//! Never touches files or Kafka.
//! Invariant: either everything of a file commits, or nothing does.

use std::collections::BTreeSet;
use std::pin::pin;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, Utc};
use foldhash::{HashSet, HashSetExt};
use futures_util::SinkExt;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Transaction};
use tracing::debug;
use uuid::Uuid;

use super::alerts::{self, AlertRules, FileFacts};
use super::derive::{copy_purchases, FileDerive};
use super::encode::{EncodedEvents, COPY_EVENTS, COPY_HEADER};
use super::ledger::{self, FileRecord};
use super::partitions::{self, Partitions};
use super::{LoadError, LOCK_TIMEOUT};
use crate::transform::{Batch, RejectedRow, RowWarning};

/// Which of a chunk's events are loaded already (committed by anyone, or earlier in this file's
/// own transaction, so a repeat across chunks is caught too). Asked only once the primary key
/// refused a chunk copied without it ([`copy_new_events`]). An event is its id AND its event
/// time (sql/V11): each pair is one descent of its own day's primary key (run-time pruning), and
/// the chunk's time range prunes the plan to the chunk's days, however many days the table holds.
/// LATERAL ... LIMIT 1 keeps it a loop of probes: as a semi-join, the planner (which knows the
/// array's size) hashes every key of the chunk's days instead, a scan of whole days per chunk
/// (measured: 1-2.5 s per chunk at 3M events, against 0.1 s for the probes).
const KNOWN_EVENTS: &str =
    "SELECT k.id, k.t FROM unnest($1::uuid[], $2::timestamptz[]) AS k(id, t) \
    CROSS JOIN LATERAL (SELECT FROM streaming.events e \
        WHERE e.event_time = k.t AND e.event_id = k.id AND e.event_time BETWEEN $3 AND $4 \
        LIMIT 1) known";

/// For one file's transaction. The planner's row estimate for events lags far behind while files
/// pour in (autovacuum analyzes later), and a stale estimate turns the id lookup into a full scan
/// per chunk. The derive's merge sorts a file's keys; with the default 4 MB of work_mem a large
/// file's would be sorted on disk. With seq scans priced out, the merge's scan of its temporary
/// tables looks costly enough for JIT compilation, which took 150-200 ms per statement to save
/// nothing on a few thousand rows. [`lock_timeout_setting`] follows them.
const LOAD_SETTINGS: &str =
    "SET LOCAL enable_seqscan = off; SET LOCAL work_mem = '64MB'; SET LOCAL jit = off";

/// A lock held by another session (`LOCK TABLE streaming.events` in an open psql transaction)
/// fails the load after [`LOCK_TIMEOUT`] with `LoadError::LockTimeout` instead of hanging it;
/// LOCAL, so that it ends with the transaction and the claims' and migrations' advisory locks
/// outside it still wait as long as they need.
pub(super) fn lock_timeout_setting() -> String {
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
    /// Boxed: a load in progress is large, the other outcome is nothing.
    Started(Box<FileLoad<'a>>),
    /// Another transaction holds or committed the same content (the ledger's unique content
    /// index decided); nothing was written.
    SameContent,
}

/// One file's load in progress: ONE transaction holding its ledger row, its new events and its
/// rejected rows. Nothing is visible to others until [`FileLoad::commit`]; dropping it (or
/// [`FileLoad::rollback`]) leaves no trace.
pub struct FileLoad<'a> {
    tx: Transaction<'a>,
    partitions: &'a Partitions,
    /// Days (UTC, since the epoch) whose partitions exist and are locked by this transaction.
    days: BTreeSet<i64>,
    file_id: i64,
    counts: ledger::Counts,
    spent: Spent,
    /// Chunks added so far.
    chunks: u32,
    /// A chunk of this file met an event loaded before: the rest look their ids up first.
    expect_duplicates: bool,
    /// What the new events add to the derived tables, merged at commit.
    derive: Box<FileDerive>,
    /// What the alert checks need of the new events (prices, hours), judged at commit.
    facts: Box<FileFacts>,
}

/// Where a file's load spent its time in Postgres: logged with each file, summed by
/// `scripts/bench`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Spent {
    /// Looking up which event ids are loaded already (only after a chunk met one), and locking
    /// the file's daily partitions.
    pub lookup: Duration,
    /// COPY of new events and rejected rows.
    pub copy: Duration,
    /// Purchases, hourly stats and analytics from the new events.
    pub derive: Duration,
    /// The data-quality checks (`load::alerts`).
    pub alerts: Duration,
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
    pub async fn begin(
        client: &'a mut Client,
        partitions: &'a Partitions,
        file: &FileRecord,
    ) -> Result<Begun<'a>, LoadError> {
        let tx = client.transaction().await?;
        tx.batch_execute(&format!("{LOAD_SETTINGS}; {}", lock_timeout_setting()))
            .await?;
        match ledger::insert_loading(&tx, file).await {
            Ok(file_id) => Ok(Begun::Started(Box::new(FileLoad {
                tx,
                partitions,
                days: BTreeSet::new(),
                file_id,
                counts: ledger::Counts::default(),
                spent: Spent::default(),
                chunks: 0,
                expect_duplicates: false,
                derive: Box::default(),
                facts: Box::default(),
            }))),
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
    /// stores its rejected rows. Returns which of `events` were inserted (their indexes).
    ///
    /// # Errors
    /// `Conflict` when another transaction committed one of these event ids meanwhile.
    pub async fn add(
        &mut self,
        batch: &Batch,
        events: &EncodedEvents,
    ) -> Result<Vec<u32>, LoadError> {
        let mut inserted = Vec::new();
        if !events.is_empty() {
            self.make_room(events).await?;
            let retry_chunk = self.chunks < SAVEPOINT_CHUNKS;
            self.chunks += 1;
            let copied = copy_new_events(
                &self.tx,
                self.file_id,
                events,
                retry_chunk,
                &mut self.expect_duplicates,
                &mut self.spent,
            )
            .await?;
            self.counts.loaded += copied.len() as i64;
            self.counts.duplicate += events.len() as i64 - copied.len() as i64;
            let started = Instant::now();
            copy_purchases(&self.tx, &events.ids, &events.facts, &copied).await?;
            self.spent.copy += started.elapsed();
            let started = Instant::now();
            for &row in &copied {
                let facts = &events.facts[row as usize];
                self.derive.fold(facts)?;
                self.facts.fold(facts);
            }
            self.derive.bound_memory(&self.tx).await?;
            self.spent.derive += started.elapsed();
            inserted = copied;
        }
        copy_rejected_rows(&self.tx, self.file_id, &batch.rejects).await?;
        copy_warnings(&self.tx, self.file_id, &batch.warnings).await?;
        self.counts.total += batch.rows_total as i64;
        self.counts.rejected += batch.rejects.len() as i64;
        self.counts.repaired += batch.warnings.len() as i64;
        Ok(inserted)
    }

    /// Makes sure the chunk's days have their partitions and this transaction holds them.
    async fn make_room(&mut self, events: &EncodedEvents) -> Result<(), LoadError> {
        let days: BTreeSet<i64> = events.times().map(partitions::day_of).collect();
        if days.is_subset(&self.days) {
            return Ok(());
        }
        let started = Instant::now();
        let dates: Vec<_> = days.iter().map(|&d| partitions::date_of(d)).collect();
        self.partitions.ensure(&dates).await?;
        partitions::lock_days(&self.tx, &dates)
            .await
            .map_err(|e| match e.code() {
                // Retention dropped a day between its creation and this lock: read the file again.
                Some(&SqlState::UNDEFINED_TABLE) => LoadError::Conflict(e),
                _ => e.into(),
            })?;
        self.days.extend(days);
        self.spent.lookup += started.elapsed();
        Ok(())
    }

    /// Derives purchases, hourly stats and analytics from the file's new events, finishes the
    /// ledger row, runs the alert checks (`rules`) and commits: a file's alerts commit with it,
    /// so a retried file cannot raise them twice. Returns the file's id, final counts and
    /// where the time went.
    pub async fn commit(
        mut self,
        rules: &AlertRules,
    ) -> Result<(i64, ledger::Counts, Spent), LoadError> {
        let started = Instant::now();
        if self.counts.loaded > 0 {
            self.derive.merge(&self.tx).await?;
        }
        self.spent.derive += started.elapsed();
        let started = Instant::now();
        ledger::finish_loading(&self.tx, self.file_id, &self.counts).await?;
        let checked = Instant::now();
        alerts::check(&self.tx, self.file_id, &self.facts, rules).await?;
        self.spent.alerts = checked.elapsed();
        self.tx.commit().await?;
        self.spent.commit = started.elapsed().saturating_sub(self.spent.alerts);
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
/// Most chunks hold no event loaded before, so a chunk that has a savepoint is first copied
/// without asking: the primary key refuses it if it repeats any committed event (or one of an
/// earlier chunk), the chunk is undone, and it and the rest of the file look their ids up
/// first ([`KNOWN_EVENTS`]). The lookup was a fifth of the server's time on new data
/// (10,000 probes per chunk, each pruned to its day at run time).
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
    expect_duplicates: &mut bool,
    spent: &mut Spent,
) -> Result<Vec<u32>, LoadError> {
    if !retry_chunk {
        return copy_chunk(tx, file_id, events, true, spent)
            .await
            .map_err(|e| match is_concurrent_load(&e) {
                true => LoadError::Conflict(e),
                false => e.into(),
            });
    }
    let mut attempt = 1;
    loop {
        let look_up = *expect_duplicates;
        tx.batch_execute("SAVEPOINT chunk").await?;
        match copy_chunk(tx, file_id, events, look_up, spent).await {
            Ok(copied) => {
                tx.batch_execute("RELEASE SAVEPOINT chunk").await?;
                return Ok(copied);
            }
            Err(e) if is_concurrent_load(&e) && !look_up => {
                debug!(error = %e, "A chunk repeats events loaded before; looking its ids up.");
                tx.batch_execute("ROLLBACK TO SAVEPOINT chunk").await?;
                *expect_duplicates = true;
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

/// A chunk's distinct events as the lookup's parameters, and its time range.
struct Keys {
    ids: Vec<Uuid>,
    times: Vec<DateTime<Utc>>,
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
}

impl Keys {
    /// In key order (time, then id): the probes walk each day's primary key left to right.
    fn of(events: &EncodedEvents) -> Keys {
        let mut pairs: Vec<(i64, Uuid)> = events.times().zip(events.ids.iter().copied()).collect();
        pairs.sort_unstable();
        pairs.dedup();
        Keys {
            ids: pairs.iter().map(|p| p.1).collect(),
            times: pairs.iter().map(|p| micros_time(p.0)).collect(),
            lo: micros_time(pairs.first().map_or(0, |p| p.0)),
            hi: micros_time(pairs.last().map_or(0, |p| p.0)),
        }
    }

    /// The ids of these keys that are loaded already.
    async fn known(
        &self,
        tx: &Transaction<'_>,
    ) -> Result<HashSet<(Uuid, i64)>, tokio_postgres::Error> {
        let rows = tx
            .query(KNOWN_EVENTS, &[&self.ids, &self.times, &self.lo, &self.hi])
            .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let t: DateTime<Utc> = row.get(1);
                (row.get(0), t.timestamp_micros())
            })
            .collect())
    }
}

/// The encoder wrote only times that fit; the epoch stands in for the impossible.
fn micros_time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::UNIX_EPOCH)
}

/// One try of [`copy_new_events`]: look the ids up (`look_up`), COPY the new ones.
async fn copy_chunk(
    tx: &Transaction<'_>,
    file_id: i64,
    events: &EncodedEvents,
    look_up: bool,
    spent: &mut Spent,
) -> Result<Vec<u32>, tokio_postgres::Error> {
    let mut seen = match look_up {
        true => {
            let started = Instant::now();
            let known = Keys::of(events).known(tx).await?;
            spent.lookup += started.elapsed();
            known
        }
        false => HashSet::with_capacity(events.len()),
    };

    let started = Instant::now();
    let sink = tx.copy_in(COPY_EVENTS).await?;
    let mut sink = pin!(sink);
    let mut buf = BytesMut::with_capacity(SEND_BYTES + 4096);
    buf.put_slice(COPY_HEADER);
    let mut start = 0;
    let mut sent = Vec::with_capacity(events.len());
    for (row, ((id, time), &end)) in events
        .ids
        .iter()
        .zip(events.times())
        .zip(&events.ends)
        .enumerate()
    {
        let tuple = &events.tuples[start..end];
        start = end;
        // A repeated event: loaded before, or earlier in this file (`insert` is false).
        if !seen.insert((*id, time)) {
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

pub(super) async fn copy_rejected_rows(
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
