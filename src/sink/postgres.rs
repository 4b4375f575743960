//! PostgreSQL sink: connects, applies `sql/` migrations, and loads one file in ONE transaction:
//! ledger row, new events by binary COPY chunk by chunk (ids seen before are skipped), rejected
//! rows, then set-based upserts of purchases, hourly stats and analytics from the file's new
//! events. Never touches files or Kafka.
//! Invariant: either everything of a file commits, or nothing does.

use std::collections::HashSet;
use std::pin::pin;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures_util::SinkExt;
use polars::prelude::*;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres::{Client, NoTls, Transaction};
use tracing::{debug, warn};
use uuid::Uuid;

use crate::ledger::{self, FileRecord};
use crate::schema::KEPT_COLUMNS;
use crate::sink::binary::{Decimal, JsonText};
use crate::transform::{Batch, RejectedRow, EXTRA, QUANTITY, TIME};

mod embedded {
    refinery::embed_migrations!("sql");
}

/// Why a load failed, and whether trying again later can help.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The database is unreachable or the transaction was aborted by it; retry later.
    #[error("database unavailable: {}", describe(.0))]
    Unavailable(#[source] tokio_postgres::Error),
    /// Another watcher committed some of the file's event ids while this one loaded them; the
    /// file is read again (those rows then count as duplicates).
    #[error("another watcher loaded some of these event ids at the same moment: {}", describe(.0))]
    Conflict(#[source] tokio_postgres::Error),
    /// The database refused the data itself; retrying the same file cannot help.
    #[error("database refused the file: {}", describe(.0))]
    Refused(#[source] tokio_postgres::Error),
    #[error("the file's rows could not be read back from the frame: {0}")]
    Frame(#[from] PolarsError),
    #[error("migration failed: {0}")]
    Migration(#[from] refinery::Error),
}

impl From<tokio_postgres::Error> for LoadError {
    fn from(e: tokio_postgres::Error) -> Self {
        if is_transient(&e) {
            LoadError::Unavailable(e)
        } else {
            LoadError::Refused(e)
        }
    }
}

impl LoadError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, LoadError::Unavailable(_) | LoadError::Conflict(_))
    }
}

/// The server's own words when it sent any ("db error" alone says nothing), else the client's.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let detail = db.detail().map(|d| format!(" ({d})")).unwrap_or_default();
            format!("{}: {}{detail}", db.code().code(), db.message())
        }
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// Connection loss, server shutdown, serialization failure and deadlock are worth a retry.
fn is_transient(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        None => true,
        Some(code) => {
            code.code().starts_with("08")
                || code.code().starts_with("57P")
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::TOO_MANY_CONNECTIONS
        }
    }
}

/// Opens one connection and drives it on a background task.
///
/// # Errors
/// `LoadError::Unavailable` when the server cannot be reached.
pub async fn connect(url: &str) -> Result<Client, LoadError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(LoadError::Unavailable)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            debug!(error = %e, "Postgres connection ended.");
        }
    });
    // Notices such as "relation already exists, skipping" are not worth a log line each.
    client
        .batch_execute("SET client_min_messages = warning")
        .await?;
    // A watcher killed mid-statement leaves a backend that still holds its file claims until it
    // notices; PostgreSQL 14+ can look for the lost client while a statement runs.
    let _ = client
        .batch_execute("SET client_connection_check_interval = '250ms'")
        .await;
    Ok(client)
}

/// Connects, retrying with capped exponential backoff until `give_up` has passed (forever if None).
pub async fn connect_with_retry(url: &str, give_up: Option<Duration>) -> Result<Client, LoadError> {
    let started = std::time::Instant::now();
    let mut delay = Duration::from_millis(200);
    loop {
        match connect(url).await {
            Ok(client) => return Ok(client),
            Err(e) if give_up.is_none_or(|limit| started.elapsed() < limit) => {
                warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "Cannot reach Postgres; retrying.");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Applies the migrations in `sql/` that this database has not seen, one watcher at a time.
pub async fn migrate(client: &mut Client) -> Result<(), LoadError> {
    // Several watchers may start together; the advisory lock makes them migrate in turn.
    client
        .batch_execute("SELECT pg_advisory_lock(7431104651)")
        .await?;
    let result = embedded::migrations::runner()
        .set_migration_table_name("shopstream_schema_history")
        .run_async(client)
        .await;
    client
        .batch_execute("SELECT pg_advisory_unlock(7431104651)")
        .await?;
    result?;
    Ok(())
}

/// Good rows go straight into `streaming.events` (binary COPY: the server's fastest insert path):
/// typed columns first, then every text column in `TEXT_COLUMNS` order, then the attributes a
/// source profile keeps (`KEPT_COLUMNS`), then `file_id`.
const COPY_EVENTS: &str = "COPY streaming.events (event_id, event_time, quantity, \
    product_price, total_amount, extra, source_file, user_id, session_id, event_type, \
    product_id, product_category, device, country, brand, category_id, category_code, file_id) \
    FROM STDIN (FORMAT binary)";

/// Fields of every COPY_EVENTS tuple; `encode_events` writes them in its column order, each
/// with its type beside it.
const COPY_EVENTS_FIELDS: i16 = 18;

/// Which of a chunk's event ids are loaded already: committed by anyone, or earlier in this
/// file's own transaction (so a repeat across chunks is caught too).
const KNOWN_IDS: &str = "SELECT event_id FROM streaming.events WHERE event_id = ANY($1)";

/// The origin DERIVE bins hours from: any whole UTC hour.
const UTC_EPOCH: DateTime<Utc> = DateTime::UNIX_EPOCH;

/// For one file's transaction. The planner's row estimate for events lags far behind while files
/// pour in (autovacuum analyzes later), and a stale estimate turns the id lookup into a full scan
/// per chunk. DERIVE reads the file's new events once and aggregates them five ways; with the
/// default 4 MB of work_mem they would be written to disk and read back five times.
const LOAD_SETTINGS: &str = "SET LOCAL enable_seqscan = off; SET LOCAL work_mem = '64MB'";

/// Purchases, hourly stats and the analytics (sessions, product counts, hourly users) from
/// exactly the events this file added: a re-delivered event changes nothing anywhere. Stats keys
/// are upserted in key order so that concurrent watchers lock them in the same order. Hours are
/// `date_bin('1 hour', t, $2)` with $2 = UTC_EPOCH: the same hours as `date_trunc('hour', t,
/// 'UTC')` (what the recompute views say), without a time-zone lookup per row.
const DERIVE: &str = "
WITH fresh AS MATERIALIZED (
    SELECT event_id, event_time, user_id, session_id, event_type, product_id, product_category,
        product_price, quantity, total_amount
    FROM streaming.events WHERE file_id = $1
), new_purchases AS (
    INSERT INTO streaming.purchases (event_id, event_time, user_id, session_id, product_id,
        product_category, product_price, quantity, total_amount)
    SELECT event_id, event_time, user_id, session_id, product_id, product_category, product_price,
        quantity, total_amount
    FROM fresh WHERE event_type = 'purchase'
), new_stats AS (
    INSERT INTO streaming.event_stats_hourly AS s
        (hour, event_type, product_category, event_count, quantity, revenue)
    SELECT date_bin('1 hour', event_time, $2), event_type, coalesce(product_category, ''),
        count(*), sum(quantity), coalesce(sum(total_amount), 0)
    FROM fresh GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (hour, event_type, product_category) DO UPDATE
    SET event_count = s.event_count + excluded.event_count,
        quantity    = s.quantity + excluded.quantity,
        revenue     = s.revenue + excluded.revenue,
        updated_at  = now()
), new_sessions AS (
    -- analytics (sql/V2__analytics.sql): sessions merge by least/greatest time and summed counts.
    INSERT INTO streaming.sessions AS s (session_id, user_id, started_at, ended_at, events, views,
        carts, removes, purchases, revenue)
    SELECT session_id, min(user_id), min(event_time), max(event_time), count(*),
        count(*) FILTER (WHERE event_type = 'view'),
        count(*) FILTER (WHERE event_type = 'add_to_cart'),
        count(*) FILTER (WHERE event_type = 'remove_from_cart'),
        count(*) FILTER (WHERE event_type = 'purchase'),
        coalesce(sum(total_amount), 0)
    FROM fresh GROUP BY session_id ORDER BY session_id
    ON CONFLICT (session_id) DO UPDATE
    SET user_id    = least(s.user_id, excluded.user_id),
        started_at = least(s.started_at, excluded.started_at),
        ended_at   = greatest(s.ended_at, excluded.ended_at),
        events     = s.events + excluded.events,
        views      = s.views + excluded.views,
        carts      = s.carts + excluded.carts,
        removes    = s.removes + excluded.removes,
        purchases  = s.purchases + excluded.purchases,
        revenue    = s.revenue + excluded.revenue,
        updated_at = now()
), new_product_counts AS (
    INSERT INTO streaming.product_counts AS p (product_id, product_category, views, add_to_cart,
        removes, purchases, units_sold, revenue)
    SELECT product_id, coalesce(product_category, ''),
        count(*) FILTER (WHERE event_type = 'view'),
        count(*) FILTER (WHERE event_type = 'add_to_cart'),
        count(*) FILTER (WHERE event_type = 'remove_from_cart'),
        count(*) FILTER (WHERE event_type = 'purchase'),
        coalesce(sum(quantity) FILTER (WHERE event_type = 'purchase'), 0),
        coalesce(sum(total_amount), 0)
    FROM fresh GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (product_id, product_category) DO UPDATE
    SET views       = p.views + excluded.views,
        add_to_cart = p.add_to_cart + excluded.add_to_cart,
        removes     = p.removes + excluded.removes,
        purchases   = p.purchases + excluded.purchases,
        units_sold  = p.units_sold + excluded.units_sold,
        revenue     = p.revenue + excluded.revenue,
        updated_at  = now()
), new_hourly_users AS (
    INSERT INTO streaming.hourly_users (hour, user_id)
    SELECT DISTINCT date_bin('1 hour', event_time, $2), user_id FROM fresh ORDER BY 1, 2
    ON CONFLICT DO NOTHING
)
SELECT count(*) FROM fresh";

const COPY_REJECTED: &str =
    "COPY streaming.rejected_rows (file_id, line, column_name, reason, raw_line) \
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
    /// `Unavailable` when Postgres is away (retry later), `Refused` for anything else.
    pub async fn begin(client: &'a mut Client, file: &FileRecord) -> Result<Begun<'a>, LoadError> {
        let tx = client.transaction().await?;
        tx.batch_execute(LOAD_SETTINGS).await?;
        match ledger::insert_loading(&tx, file).await {
            Ok(file_id) => Ok(Begun::Started(FileLoad {
                tx,
                file_id,
                counts: ledger::Counts::default(),
                spent: Spent::default(),
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
            let copied = copy_new_events(&self.tx, self.file_id, events, &mut self.spent).await?;
            self.counts.loaded += copied as i64;
            self.counts.duplicate += events.len() as i64 - copied as i64;
        }
        copy_rejected_rows(&self.tx, self.file_id, &batch.rejects).await?;
        self.counts.total += batch.rows_total as i64;
        self.counts.rejected += batch.rejects.len() as i64;
        Ok(())
    }

    /// Derives purchases, hourly stats and analytics from the file's new events, finishes the
    /// ledger row and commits. Returns the file's id, final counts and where the time went.
    pub async fn commit(mut self) -> Result<(i64, ledger::Counts, Spent), LoadError> {
        let started = Instant::now();
        if self.counts.loaded > 0 {
            self.tx
                .query_one(DERIVE, &[&self.file_id, &UTC_EPOCH])
                .await?;
        }
        self.spent.derive = started.elapsed();
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

/// Text columns of the COPY, in order after the typed ones.
const TEXT_COLUMNS: [&str; 7] = [
    "user_id",
    "session_id",
    "event_type",
    "product_id",
    "product_category",
    "device",
    "country",
];

/// A chunk's good rows as binary COPY tuples for `streaming.events`. Encoded on the reader's
/// thread, off the connection's path, so that loading only looks up ids and moves bytes.
pub struct EncodedEvents {
    ids: Vec<Uuid>,
    /// Every row's tuple but its last field, `file_id`, which exists once the ledger row does.
    tuples: Bytes,
    ends: Vec<usize>,
}

impl EncodedEvents {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Encodes the good rows of one chunk (the frame the transform produced) for COPY_EVENTS.
pub fn encode_events(good: &DataFrame, source_file: &str) -> Result<EncodedEvents, LoadError> {
    let times = good.column(TIME)?.datetime()?.phys.clone();
    let quantities = good.column(QUANTITY)?.i64()?.clone();
    let prices = good.column("product_price")?.str()?.clone();
    let totals = good.column("total_amount")?.str()?.clone();
    let extras = good.column(EXTRA)?.str()?.clone();
    let ids = good.column("event_id")?.str()?.clone();
    let mut texts = Vec::with_capacity(TEXT_COLUMNS.len());
    for name in TEXT_COLUMNS {
        texts.push(good.column(name)?.str()?.clone());
    }
    let mut text_iters: Vec<_> = texts.iter().map(|c| c.iter()).collect();
    let [brand, category_id, category_code] = KEPT_COLUMNS;
    let brands = good.column(brand)?.str()?.clone();
    let category_ids = good.column(category_id)?.str()?.clone();
    let category_codes = good.column(category_code)?.str()?.clone();
    let kept = brands
        .iter()
        .zip(category_ids.iter())
        .zip(category_codes.iter());
    let rows = ids
        .iter()
        .zip(times.iter())
        .zip(quantities.iter())
        .zip(prices.iter())
        .zip(totals.iter())
        .zip(extras.iter())
        .zip(kept);

    let mut encoded = EncodedEvents {
        ids: Vec::with_capacity(good.height()),
        tuples: Bytes::new(),
        ends: Vec::with_capacity(good.height()),
    };
    let mut out = BytesMut::with_capacity(good.height() * 200);
    for (
        (((((id, time), quantity), price), total), extra),
        ((brand, category_id), category_code),
    ) in rows
    {
        // The rules admitted only UUIDs; anything else here is a bug, not a duplicate.
        let id = id.and_then(|s| Uuid::parse_str(s).ok()).ok_or_else(
            || polars_err!(ComputeError: "an event id is not a UUID after validation"),
        )?;
        let time: Option<DateTime<Utc>> = time.and_then(DateTime::from_timestamp_micros);
        // The rules checked the range; an out-of-range value would meet NOT NULL and fail loudly.
        let quantity = quantity.and_then(|q| i32::try_from(q).ok());
        out.put_i16(COPY_EVENTS_FIELDS);
        put_field(&mut out, &id, &Type::UUID)?;
        put_field(&mut out, &time, &Type::TIMESTAMPTZ)?;
        put_field(&mut out, &quantity, &Type::INT4)?;
        put_field(&mut out, &price.map(Decimal), &Type::NUMERIC)?;
        put_field(&mut out, &total.map(Decimal), &Type::NUMERIC)?;
        put_field(&mut out, &extra.map(JsonText), &Type::JSONB)?;
        put_field(&mut out, &source_file, &Type::TEXT)?;
        for it in text_iters.iter_mut() {
            put_field(&mut out, &it.next().flatten(), &Type::TEXT)?;
        }
        // The profile's mapping admitted only digits that fit a bigint.
        let category_id: Option<i64> = category_id.map(|v| v.parse()).transpose().map_err(
            |e| polars_err!(ComputeError: "category_id is not a bigint after mapping: {e}"),
        )?;
        put_field(&mut out, &brand, &Type::TEXT)?;
        put_field(&mut out, &category_id, &Type::INT8)?;
        put_field(&mut out, &category_code, &Type::TEXT)?;
        encoded.ids.push(id);
        encoded.ends.push(out.len());
    }
    encoded.tuples = out.freeze();
    Ok(encoded)
}

/// One field of a binary COPY tuple: its length (-1 for NULL), then its bytes.
fn put_field(out: &mut BytesMut, value: &(dyn ToSql + Sync), ty: &Type) -> Result<(), LoadError> {
    let at = out.len();
    out.put_i32(0);
    let written = value
        .to_sql_checked(ty, out)
        .map_err(|e| polars_err!(ComputeError: "cannot encode a {ty} value: {e}"))?;
    let len = match written {
        IsNull::Yes => -1,
        IsNull::No => (out.len() - at - 4) as i32,
    };
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Binary COPY's fixed header: signature, flags, header extension length.
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The sink is fed in pieces of about this size.
const SEND_BYTES: usize = 256 << 10;

/// COPYs the rows whose event id is new (not loaded before, not earlier in the chunk: the
/// first line wins) into `streaming.events`; returns how many.
async fn copy_new_events(
    tx: &Transaction<'_>,
    file_id: i64,
    events: &EncodedEvents,
    spent: &mut Spent,
) -> Result<u64, LoadError> {
    let mut unique = events.ids.clone();
    unique.sort_unstable();
    unique.dedup();
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
    for (id, &end) in events.ids.iter().zip(&events.ends) {
        let tuple = &events.tuples[start..end];
        start = end;
        // A repeated id: loaded before, or earlier in this file (`insert` is false).
        if !seen.insert(*id) {
            continue;
        }
        buf.put_slice(tuple);
        buf.put_i32(8);
        buf.put_i64(file_id);
        if buf.len() >= SEND_BYTES {
            sink.send(buf.split().freeze()).await.map_err(conflict_or)?;
        }
    }
    buf.put_i16(-1);
    sink.send(buf.split().freeze()).await.map_err(conflict_or)?;
    let copied = sink.as_mut().finish().await.map_err(conflict_or)?;
    spent.copy += started.elapsed();
    Ok(copied)
}

/// A unique violation while inserting events means another watcher committed some of the same
/// event ids after this chunk's lookup: the file is read again, and then they count as duplicates.
fn conflict_or(e: tokio_postgres::Error) -> LoadError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        LoadError::Conflict(e)
    } else {
        e.into()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_copy_tuple_has_one_field_per_column_of_the_copy() {
        let columns = COPY_EVENTS
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(list, _)| list.split(',').count())
            .unwrap();
        assert_eq!(columns, COPY_EVENTS_FIELDS as usize);
    }
}
