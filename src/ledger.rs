//! The file ledger (`streaming.ingest_files`): one audit row per file the watcher finished with,
//! the content identity that makes loading exactly-once, and the outbox of files whose events
//! Kafka has not acknowledged yet. Owns every ledger query; knows nothing of CSV or Kafka.

use chrono::{DateTime, Utc};
use tokio_postgres::{GenericClient, RowStream};

/// What the ledger knows about a file before it is loaded.
#[derive(Debug, Clone)]
pub struct FileRecord {
    pub file_name: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub admitted_by: &'static str,
    pub started_at: DateTime<Utc>,
    /// What the ledger should note about the file, such as the extra columns it carried.
    pub notes: Option<String>,
    /// The source profile its header chose; `None` when no profile fitted or it was not read.
    pub profile: Option<String>,
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
    /// False while the file still waits to be moved to `processed/` (a stop came in between).
    pub archived: bool,
}

/// The earlier load of this content, if any.
pub async fn find_loaded(
    client: &impl GenericClient,
    sha256: &str,
    size_bytes: i64,
) -> Result<Option<LoadedFile>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT file_id, file_name, archived_at IS NOT NULL FROM streaming.ingest_files \
             WHERE sha256 = $1 AND size_bytes = $2 AND status = 'loaded'",
            &[&sha256, &size_bytes],
        )
        .await?;
    Ok(row.map(|r| LoadedFile {
        file_id: r.get(0),
        file_name: r.get(1),
        archived: r.get(2),
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
                 (file_name, size_bytes, sha256, status, admitted_by, started_at, notes, profile) \
             VALUES ($1, $2, $3, 'loaded', $4, $5, $6, $7) RETURNING file_id",
            &[
                &file.file_name,
                &file.size_bytes,
                &file.sha256,
                &file.admitted_by,
                &file.started_at,
                &file.notes,
                &file.profile,
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
             status = CASE WHEN $3::bigint = 0 AND $5::bigint = 0 THEN 'rejected' ELSE 'loaded' END, \
             error = CASE WHEN $3::bigint = 0 AND $5::bigint = 0 THEN 'every row broke the contract' END \
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
                 (file_name, size_bytes, sha256, status, admitted_by, started_at, error, notes, \
                  profile) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING file_id",
            &[
                &file.file_name,
                &file.size_bytes,
                &file.sha256,
                &status,
                &file.admitted_by,
                &file.started_at,
                &error,
                &file.notes,
                &file.profile,
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

/// The events a file loaded, streamed as rows of the contract's columns in contract order
/// and the kept source attributes (decimals and `category_id` as text, to keep their digits), so that a file of millions of events is never held
/// in memory.
pub async fn outbox_events(
    client: &impl GenericClient,
    file_id: i64,
) -> Result<RowStream, tokio_postgres::Error> {
    client
        .query_raw(
            "SELECT event_id, event_time, user_id, session_id, event_type, product_id,
                 product_category, product_price::text, quantity, total_amount::text, device,
                 country, brand, category_id::text, category_code
             FROM streaming.events WHERE file_id = $1",
            [file_id],
        )
        .await
}

/// Records that the file left the landing directory; a loaded file without it is moved at restart.
pub async fn mark_archived(
    client: &impl GenericClient,
    file_id: i64,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE streaming.ingest_files SET archived_at = clock_timestamp() WHERE file_id = $1",
            &[&file_id],
        )
        .await?;
    Ok(())
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

/// The rejected rows of a file for the dead-letter topic: (key = file name, JSON payload).
pub async fn outbox_rejects(
    client: &impl GenericClient,
    file_id: i64,
) -> Result<RowStream, tokio_postgres::Error> {
    client
        .query_raw(
            "SELECT f.file_name, json_build_object(
                 'file', f.file_name, 'file_id', r.file_id, 'line', r.line,
                 'column', r.column_name, 'reason', r.reason, 'raw_line', r.raw_line)::text
             FROM streaming.rejected_rows r JOIN streaming.ingest_files f USING (file_id)
             WHERE r.file_id = $1 ORDER BY r.line",
            [file_id],
        )
        .await
}

/// Claims a landing file for this database session, so that of several watchers sharing one
/// landing directory exactly one reads it. The claim is a session advisory lock: it is
/// released by [`release_claim`], and by Postgres itself when the holder's connection dies, so
/// a crashed watcher never leaves a file stuck.
pub async fn try_claim(
    client: &impl GenericClient,
    file_name: &str,
) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&claim_key(file_name)])
        .await?;
    Ok(row.get(0))
}

pub async fn release_claim(
    client: &impl GenericClient,
    file_name: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .query_one("SELECT pg_advisory_unlock($1)", &[&claim_key(file_name)])
        .await?;
    Ok(())
}

/// A 64-bit lock key from the file name (names, not contents: the claim exists before hashing).
fn claim_key(file_name: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("shopstream-claim:{file_name}").as_bytes());
    let mut key = [0u8; 8];
    key.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(key)
}
