//! The file ledger (`streaming.ingest_files`): one audit row per file the watcher finished with,
//! and the content identity (sha256 + size, a unique index over loaded files) that makes
//! loading exactly-once. Owns every write of the ledger but the outbox's `mirrored_at`
//! ([`crate::mirror::outbox`]); `serve` reads it for display. Knows nothing of CSV or Kafka.

use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;

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

impl FileRecord {
    /// A file known by name only: rejected before its content could be identified.
    pub fn unidentified(
        file_name: String,
        admitted_by: &'static str,
        started_at: DateTime<Utc>,
    ) -> FileRecord {
        FileRecord {
            file_name,
            size_bytes: 0,
            sha256: String::new(),
            admitted_by,
            started_at,
            notes: None,
            profile: None,
        }
    }
}

/// Per-file row accounting: total = loaded + rejected + duplicate + quarantined (a CHECK in
/// the table).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: i64,
    pub loaded: i64,
    pub rejected: i64,
    pub duplicate: i64,
    /// Good rows of a quarantined file, not loaded because too many others were bad.
    pub quarantined: i64,
    /// Damaged optional values set NULL in rows that passed (`streaming.row_warnings`); not a
    /// row count: one row may have several.
    pub repaired: i64,
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

/// A file recorded as `rejected` or `duplicate_file` that never left the landing directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnarchivedFile {
    pub file_id: i64,
    pub status: String,
    pub error: Option<String>,
}

/// The unarchived `rejected` or `duplicate_file` row of exactly this file (name and content),
/// if an earlier run recorded it but could not move it. Files without a content hash (not
/// readable, not a regular file) are never matched: their bytes may have changed.
pub async fn find_unarchived(
    client: &impl GenericClient,
    file: &FileRecord,
) -> Result<Option<UnarchivedFile>, tokio_postgres::Error> {
    if file.sha256.is_empty() {
        return Ok(None);
    }
    let row = client
        .query_opt(
            "SELECT file_id, status, error FROM streaming.ingest_files \
             WHERE file_name = $1 AND sha256 = $2 AND size_bytes = $3 \
               AND status IN ('rejected', 'duplicate_file') AND archived_at IS NULL \
             ORDER BY file_id DESC LIMIT 1",
            &[&file.file_name, &file.sha256, &file.size_bytes],
        )
        .await?;
    Ok(row.map(|r| UnarchivedFile {
        file_id: r.get(0),
        status: r.get(1),
        error: r.get(2),
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
             rows_duplicate = $5, values_repaired = $6, finished_at = clock_timestamp(), \
             status = CASE WHEN $3::bigint = 0 AND $5::bigint = 0 THEN 'rejected' ELSE 'loaded' END, \
             error = CASE WHEN $3::bigint = 0 AND $5::bigint = 0 THEN 'every row broke the contract' END \
         WHERE file_id = $1",
        &[
            &file_id,
            &c.total,
            &c.loaded,
            &c.rejected,
            &c.duplicate,
            &c.repaired,
        ],
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

/// Records a quarantined file: `rejected` with its error, and its rows counted as `counts`
/// says (none loaded).
pub async fn record_quarantined(
    client: &impl GenericClient,
    file: &FileRecord,
    error: &str,
    c: &Counts,
) -> Result<i64, tokio_postgres::Error> {
    let row = client
        .query_one(
            "INSERT INTO streaming.ingest_files \
                 (file_name, size_bytes, sha256, status, admitted_by, started_at, error, notes, \
                  profile, rows_total, rows_rejected, rows_quarantined) \
             VALUES ($1, $2, $3, 'rejected', $4, $5, $6, $7, $8, $9, $10, $11) RETURNING file_id",
            &[
                &file.file_name,
                &file.size_bytes,
                &file.sha256,
                &file.admitted_by,
                &file.started_at,
                &error,
                &file.notes,
                &file.profile,
                &c.total,
                &c.rejected,
                &c.quarantined,
            ],
        )
        .await?;
    Ok(row.get(0))
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
