//! The file ledger (`streaming.ingest_files`): one audit row per file the watcher finished with,
//! the content identity that makes loading exactly-once, and the outbox of files whose events
//! Kafka has not acknowledged yet. Owns every ledger query; knows nothing of CSV or Kafka.

use chrono::{DateTime, Utc};
use tokio_postgres::{GenericClient, Row};

/// What the ledger knows about a file before it is loaded.
#[derive(Debug, Clone)]
pub struct FileRecord {
    pub file_name: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub admitted_by: &'static str,
    pub started_at: DateTime<Utc>,
}

/// Per-file row accounting: total = loaded + rejected + duplicate (a CHECK in the table).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: i64,
    pub loaded: i64,
    pub rejected: i64,
    pub duplicate: i64,
}

/// A loaded file, as the ledger remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedFile {
    pub file_id: i64,
    pub file_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadReport {
    Loaded {
        file_id: i64,
        counts: Counts,
    },
    /// The same content was loaded before (possibly under another name).
    AlreadyLoaded(Option<LoadedFile>),
}

/// The earlier load of this content, if any.
pub async fn find_loaded(
    client: &impl GenericClient,
    sha256: &str,
    size_bytes: i64,
) -> Result<Option<LoadedFile>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT file_id, file_name FROM streaming.ingest_files \
             WHERE sha256 = $1 AND size_bytes = $2 AND status = 'loaded'",
            &[&sha256, &size_bytes],
        )
        .await?;
    Ok(row.map(|r| LoadedFile {
        file_id: r.get(0),
        file_name: r.get(1),
    }))
}

/// Inserts the file's row as `loaded` with zero counts inside the load transaction. Fails with a
/// unique violation when the same content is (being) loaded by another transaction.
pub async fn insert_loading(
    tx: &impl GenericClient,
    file: &FileRecord,
) -> Result<i64, tokio_postgres::Error> {
    let row = tx
        .query_one(
            "INSERT INTO streaming.ingest_files \
                 (file_name, size_bytes, sha256, status, admitted_by, started_at) \
             VALUES ($1, $2, $3, 'loaded', $4, $5) RETURNING file_id",
            &[
                &file.file_name,
                &file.size_bytes,
                &file.sha256,
                &file.admitted_by,
                &file.started_at,
            ],
        )
        .await?;
    Ok(row.get(0))
}

/// Sets the final counts; a file none of whose rows could be used becomes `rejected`.
pub async fn finish_loading(
    tx: &impl GenericClient,
    file_id: i64,
    c: &Counts,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "UPDATE streaming.ingest_files SET rows_total = $2, rows_loaded = $3, rows_rejected = $4, \
             rows_duplicate = $5, finished_at = clock_timestamp(), \
             status = CASE WHEN $3 = 0 AND $5 = 0 THEN 'rejected' ELSE 'loaded' END, \
             error = CASE WHEN $3 = 0 AND $5 = 0 THEN 'every row broke the contract' END \
         WHERE file_id = $1",
        &[&file_id, &c.total, &c.loaded, &c.rejected, &c.duplicate],
    )
    .await?;
    Ok(())
}

/// Records a file that ended without loading: `duplicate_file` or `rejected` with its error.
pub async fn record_unloaded(
    client: &impl GenericClient,
    file: &FileRecord,
    status: &str,
    error: &str,
) -> Result<i64, tokio_postgres::Error> {
    let row = client
        .query_one(
            "INSERT INTO streaming.ingest_files \
                 (file_name, size_bytes, sha256, status, admitted_by, started_at, error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING file_id",
            &[
                &file.file_name,
                &file.size_bytes,
                &file.sha256,
                &status,
                &file.admitted_by,
                &file.started_at,
                &error,
            ],
        )
        .await?;
    Ok(row.get(0))
}

/// Loaded files whose events Kafka has not acknowledged, oldest first.
pub async fn unmirrored(client: &impl GenericClient) -> Result<Vec<i64>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT file_id FROM streaming.ingest_files \
             WHERE status = 'loaded' AND mirrored_at IS NULL ORDER BY file_id",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The events a file loaded, as (key = user_id, JSON payload with the contract's fields).
pub async fn outbox_events(
    client: &impl GenericClient,
    file_id: i64,
) -> Result<Vec<(String, String)>, tokio_postgres::Error> {
    let rows: Vec<Row> = client
        .query(
            "SELECT user_id, json_build_object(
                 'event_id', event_id,
                 'event_time', to_char(event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
                 'user_id', user_id, 'session_id', session_id, 'event_type', event_type,
                 'product_id', product_id, 'product_category', product_category,
                 'product_price', product_price, 'quantity', quantity,
                 'total_amount', total_amount, 'device', device, 'country', country)::text
             FROM streaming.events WHERE file_id = $1",
            &[&file_id],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

pub async fn mark_mirrored(
    client: &impl GenericClient,
    file_id: i64,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE streaming.ingest_files SET mirrored_at = clock_timestamp() WHERE file_id = $1",
            &[&file_id],
        )
        .await?;
    Ok(())
}
