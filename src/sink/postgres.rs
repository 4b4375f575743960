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
use tokio_postgres::{Client, NoTls};
use tracing::{debug, warn};

use crate::ledger::{self, FileRecord, LoadReport};
use crate::transform::{Batch, RejectedRow, LINE, QUANTITY, TIME};

mod embedded {
    refinery::embed_migrations!("sql");
}

/// Why a load failed, and whether trying again later can help.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The database is unreachable or the transaction was aborted by it; retry later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] tokio_postgres::Error),
    /// The database refused the data itself; retrying the same file cannot help.
    #[error("database refused the file: {0}")]
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
    quantity integer, total_amount text, device text, country text
) ON COMMIT DELETE ROWS";

const COPY_STAGING: &str = "COPY staging_events (line, event_id, event_time, user_id, session_id, \
    event_type, product_id, product_category, product_price, quantity, total_amount, device, country) \
    FROM STDIN (FORMAT binary)";

const STAGING_TYPES: [Type; 13] = [
    Type::INT8,
    Type::UUID,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
];

/// New events only (ON CONFLICT DO NOTHING), and purchases and hourly stats from exactly those:
/// a re-delivered event changes nothing anywhere. Stats keys are upserted in key order so that
/// concurrent watchers lock them in the same order.
const UPSERT: &str = "
WITH fresh AS (
    INSERT INTO streaming.events (event_id, event_time, user_id, session_id, event_type, product_id,
        product_category, product_price, quantity, total_amount, device, country, file_id, source_file)
    SELECT DISTINCT ON (event_id) event_id, event_time, user_id, session_id, event_type, product_id,
        product_category, product_price::numeric, quantity, total_amount::numeric, device, country, $1, $2
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
)
SELECT count(*) FROM fresh";

const COPY_REJECTED: &str =
    "COPY streaming.rejected_rows (file_id, line, column_name, reason, raw_line) \
    FROM STDIN (FORMAT binary)";

/// Loads one transformed file in one transaction and records it in the ledger.
///
/// Returns `LoadReport::AlreadyLoaded` when a concurrent or earlier transaction loaded the same
/// content first (the ledger's unique content index decides).
pub async fn load(
    client: &mut Client,
    file: &FileRecord,
    batch: &Batch,
) -> Result<LoadReport, LoadError> {
    client.batch_execute(CREATE_STAGING).await?;
    let tx = client.transaction().await?;
    let file_id = match ledger::insert_loading(&tx, file).await {
        Ok(id) => id,
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            drop(tx);
            let original = ledger::find_loaded(client, &file.sha256, file.size_bytes).await?;
            return Ok(LoadReport::AlreadyLoaded(original));
        }
        Err(e) => return Err(e.into()),
    };
    copy_good_rows(&tx, &batch.good).await?;
    let loaded: i64 = tx
        .query_one(UPSERT, &[&file_id, &file.file_name])
        .await?
        .get(0);
    copy_rejected_rows(&tx, file_id, &batch.rejects).await?;
    let counts = ledger::Counts {
        total: batch.rows_total as i64,
        loaded,
        rejected: batch.rejects.len() as i64,
        duplicate: batch.good.height() as i64 - loaded,
    };
    ledger::finish_loading(&tx, file_id, &counts).await?;
    tx.commit().await?;
    Ok(LoadReport::Loaded { file_id, counts })
}

async fn copy_good_rows(
    tx: &tokio_postgres::Transaction<'_>,
    good: &DataFrame,
) -> Result<u64, LoadError> {
    let sink = tx.copy_in(COPY_STAGING).await?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &STAGING_TYPES));
    let text =
        |name: &str| -> PolarsResult<StringChunked> { Ok(good.column(name)?.str()?.clone()) };
    let lines = good.column(LINE)?.cast(&DataType::Int64)?;
    let mut lines = lines.i64()?.into_iter();
    let times = good.column(TIME)?.datetime()?.phys.clone();
    let mut times = times.into_iter();
    let quantities = good.column(QUANTITY)?.i64()?.clone();
    let mut quantities = quantities.into_iter();
    let columns = [
        "event_id",
        "user_id",
        "session_id",
        "event_type",
        "product_id",
        "product_category",
        "product_price",
        "total_amount",
        "device",
        "country",
    ]
    .map(text);
    let mut iters = Vec::with_capacity(columns.len());
    for c in &columns {
        iters.push(
            c.as_ref()
                .map_err(|e| LoadError::Frame(e.to_string().into()))?
                .into_iter(),
        );
    }
    for _ in 0..good.height() {
        let mut v: [Option<&str>; 10] = [None; 10];
        for (slot, it) in v.iter_mut().zip(iters.iter_mut()) {
            *slot = it.next().flatten();
        }
        let line = lines.next().flatten();
        let time: Option<DateTime<Utc>> = times
            .next()
            .flatten()
            .and_then(DateTime::from_timestamp_micros);
        let quantity = quantities
            .next()
            .flatten()
            .and_then(|q| i32::try_from(q).ok());
        // Validation guarantees the pattern; a parse failure here is a bug, so fail loudly.
        let event_id = v[0].and_then(|s| uuid::Uuid::parse_str(s).ok());
        let row: [&(dyn ToSql + Sync); 13] = [
            &line, &event_id, &time, &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &quantity, &v[7],
            &v[8], &v[9],
        ];
        writer.as_mut().write(&row).await?;
    }
    Ok(writer.finish().await?)
}

async fn copy_rejected_rows(
    tx: &tokio_postgres::Transaction<'_>,
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
