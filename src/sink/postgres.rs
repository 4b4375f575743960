//! PostgreSQL sink: connects, applies `sql/` migrations, and loads one file's good rows in ONE
//! transaction: ledger row, COPY (binary) into a staging table, then set-based upserts into
//! events, purchases and hourly stats, and the rejected rows. Never touches files or Kafka.
//! Invariant: either everything of a file commits, or nothing does.

use std::pin::pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use polars::prelude::*;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls, Transaction};
use tracing::{debug, warn};

use crate::ledger::{self, FileRecord};
use crate::schema::KEPT_COLUMNS;
use crate::transform::{Batch, RejectedRow, EXTRA, LINE, QUANTITY, TIME};

mod embedded {
    refinery::embed_migrations!("sql");
}

/// Why a load failed, and whether trying again later can help.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The database is unreachable or the transaction was aborted by it; retry later.
    #[error("database unavailable: {}", describe(.0))]
    Unavailable(#[source] tokio_postgres::Error),
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
        matches!(self, LoadError::Unavailable(_))
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

const CREATE_STAGING: &str = "
CREATE TEMP TABLE IF NOT EXISTS staging_events (
    line bigint, event_id uuid, event_time timestamptz, user_id text, session_id text,
    event_type text, product_id text, product_category text, product_price text,
    quantity integer, total_amount text, device text, country text,
    extra text, brand text, category_id text, category_code text
) ON COMMIT DELETE ROWS";

/// Typed columns first, then every text column in `TEXT_COLUMNS` order.
const COPY_STAGING: &str = "COPY staging_events (line, event_id, event_time, quantity, user_id, \
    session_id, event_type, product_id, product_category, product_price, total_amount, device, \
    country, extra, brand, category_id, category_code) FROM STDIN (FORMAT binary)";

const STAGING_TYPES: [Type; 17] = [
    Type::INT8,
    Type::UUID,
    Type::TIMESTAMPTZ,
    Type::INT4,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT, // extra: JSON object text, cast to jsonb by UPSERT
    Type::TEXT, // brand
    Type::TEXT, // category_id: digits checked to fit bigint, cast by UPSERT
    Type::TEXT, // category_code
];

/// New events only (ON CONFLICT DO NOTHING), and purchases, hourly stats and the analytics
/// (sessions, product counts, hourly users) from exactly those: a re-delivered event changes
/// nothing anywhere. Stats keys are upserted in key order so that
/// concurrent watchers lock them in the same order.
const UPSERT: &str = "
WITH fresh AS (
    INSERT INTO streaming.events (event_id, event_time, user_id, session_id, event_type, product_id,
        product_category, product_price, quantity, total_amount, device, country, file_id, source_file,
        extra, brand, category_id, category_code)
    SELECT DISTINCT ON (event_id) event_id, event_time, user_id, session_id, event_type, product_id,
        product_category, product_price::numeric, quantity, total_amount::numeric, device, country, $1, $2,
        extra::jsonb, brand, category_id::bigint, category_code
    FROM staging_events
    ORDER BY event_id, line
    ON CONFLICT (event_id) DO NOTHING
    RETURNING *
), new_purchases AS (
    INSERT INTO streaming.purchases (event_id, event_time, user_id, session_id, product_id,
        product_category, product_price, quantity, total_amount)
    SELECT event_id, event_time, user_id, session_id, product_id, product_category, product_price,
        quantity, total_amount
    FROM fresh WHERE event_type = 'purchase'
), new_stats AS (
    INSERT INTO streaming.event_stats_hourly AS s
        (hour, event_type, product_category, event_count, quantity, revenue)
    SELECT date_trunc('hour', event_time, 'UTC'), event_type, coalesce(product_category, ''),
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
    SELECT DISTINCT date_trunc('hour', event_time, 'UTC'), user_id FROM fresh ORDER BY 1, 2
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

/// One file's load in progress: ONE transaction holding its ledger row, its staged good rows
/// and its rejected rows. Nothing is visible to others until [`FileLoad::commit`]; dropping it
/// (or [`FileLoad::rollback`]) leaves no trace.
pub struct FileLoad<'a> {
    tx: Transaction<'a>,
    file_id: i64,
    file_name: String,
    counts: ledger::Counts,
    staged: i64,
}

impl<'a> FileLoad<'a> {
    /// Opens the transaction and inserts the file's ledger row.
    ///
    /// # Errors
    /// `Unavailable` when Postgres is away (retry later), `Refused` for anything else.
    pub async fn begin(client: &'a mut Client, file: &FileRecord) -> Result<Begun<'a>, LoadError> {
        client.batch_execute(CREATE_STAGING).await?;
        let tx = client.transaction().await?;
        match ledger::insert_loading(&tx, file).await {
            Ok(file_id) => Ok(Begun::Started(FileLoad {
                tx,
                file_id,
                file_name: file.file_name.clone(),
                counts: ledger::Counts::default(),
                staged: 0,
            })),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(Begun::SameContent),
            Err(e) => Err(e.into()),
        }
    }

    pub fn file_id(&self) -> i64 {
        self.file_id
    }

    /// Rows seen so far: total and rejected (loaded and duplicate are known at commit).
    pub fn counts(&self) -> ledger::Counts {
        self.counts
    }

    /// Stages one chunk's good rows (binary COPY) and stores its rejected rows.
    pub async fn add(&mut self, batch: &Batch) -> Result<(), LoadError> {
        if batch.good.height() > 0 {
            copy_good_rows(&self.tx, &batch.good).await?;
        }
        copy_rejected_rows(&self.tx, self.file_id, &batch.rejects).await?;
        self.counts.total += batch.rows_total as i64;
        self.counts.rejected += batch.rejects.len() as i64;
        self.staged += batch.good.height() as i64;
        Ok(())
    }

    /// Moves the staged rows into events, purchases and hourly stats (new event ids only),
    /// finishes the ledger row and commits. Returns the file's id and final counts.
    pub async fn commit(mut self) -> Result<(i64, ledger::Counts), LoadError> {
        let loaded: i64 = self
            .tx
            .query_one(UPSERT, &[&self.file_id, &self.file_name])
            .await?
            .get(0);
        self.counts.loaded = loaded;
        self.counts.duplicate = self.staged - loaded;
        ledger::finish_loading(&self.tx, self.file_id, &self.counts).await?;
        self.tx.commit().await?;
        Ok((self.file_id, self.counts))
    }

    /// Abandons the load; nothing of it stays.
    pub async fn rollback(self) -> Result<(), LoadError> {
        self.tx.rollback().await?;
        Ok(())
    }
}

/// Text columns of the staging table, in COPY order after line, event_id, event_time, quantity.
const TEXT_COLUMNS: [&str; 13] = [
    "user_id",
    "session_id",
    "event_type",
    "product_id",
    "product_category",
    "product_price",
    "total_amount",
    "device",
    "country",
    EXTRA,
    KEPT_COLUMNS[0],
    KEPT_COLUMNS[1],
    KEPT_COLUMNS[2],
];

async fn copy_good_rows(tx: &Transaction<'_>, good: &DataFrame) -> Result<u64, LoadError> {
    let sink = tx.copy_in(COPY_STAGING).await?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &STAGING_TYPES));
    let lines = good.column(LINE)?.cast(&DataType::Int64)?.i64()?.clone();
    let times = good.column(TIME)?.datetime()?.phys.clone();
    let quantities = good.column(QUANTITY)?.i64()?.clone();
    let ids = good.column("event_id")?.str()?.clone();
    let mut texts = Vec::with_capacity(TEXT_COLUMNS.len());
    for name in TEXT_COLUMNS {
        texts.push(good.column(name)?.str()?.clone());
    }
    let mut text_iters: Vec<_> = texts.iter().map(|c| c.iter()).collect();
    let rows = lines
        .iter()
        .zip(ids.iter())
        .zip(times.iter())
        .zip(quantities.iter());
    for (((line, id), time), quantity) in rows {
        let mut v: [Option<&str>; TEXT_COLUMNS.len()] = [None; TEXT_COLUMNS.len()];
        for (slot, it) in v.iter_mut().zip(text_iters.iter_mut()) {
            *slot = it.next().flatten();
        }
        let time: Option<DateTime<Utc>> = time.and_then(DateTime::from_timestamp_micros);
        // The rules checked the range; an out-of-range value would meet NOT NULL and fail loudly.
        let quantity = quantity.and_then(|q| i32::try_from(q).ok());
        let event_id = id.and_then(|s| uuid::Uuid::parse_str(s).ok());
        let row: [&(dyn ToSql + Sync); 17] = [
            &line, &event_id, &time, &quantity, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
            &v[7], &v[8], &v[9], &v[10], &v[11], &v[12],
        ];
        writer.as_mut().write(&row).await?;
    }
    Ok(writer.finish().await?)
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
