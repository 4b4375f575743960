//! The outbox: which loaded files Kafka has not acknowledged yet (the ledger's `mirrored_at`
//! is NULL), and the queries that stream a file's events and rejected rows back for the relay.
//! The event query is [`super::message`]'s, beside the code that reads its rows.

use tokio_postgres::{GenericClient, RowStream};

use super::message::OUTBOX_EVENTS;

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

/// The events a file loaded, streamed (a file of millions of events is never held in memory)
/// as rows of [`OUTBOX_EVENTS`]'s columns.
pub async fn outbox_events(
    client: &impl GenericClient,
    file_id: i64,
) -> Result<RowStream, tokio_postgres::Error> {
    // The index on file_id is a BRIN (sql/V18): pages written since autovacuum last summarised
    // them would be read for every file of a backlog; summarised, a file is a few page ranges.
    client
        .execute("SELECT streaming.summarize_event_files()", &[])
        .await?;
    client.query_raw(OUTBOX_EVENTS, [file_id]).await
}

/// The stream a loaded file belongs to when it is not an event file (`transactions` or
/// `inventory`, as the ledger's `profile` records it).
pub async fn stream_of(
    client: &impl GenericClient,
    file_id: i64,
) -> Result<Option<String>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT profile FROM streaming.ingest_files \
             WHERE file_id = $1 AND profile IN ('transactions', 'inventory')",
            &[&file_id],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// The rows of a transactions or inventory file, as `query` (one of [`super::streams`]'s)
/// selects them.
pub(super) async fn outbox_stream(
    client: &impl GenericClient,
    query: &str,
    file_id: i64,
) -> Result<RowStream, tokio_postgres::Error> {
    client.query_raw(query, [file_id]).await
}
