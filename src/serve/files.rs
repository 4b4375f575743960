//! The per-file lifecycle view, from the ledger (`streaming.ingest_files`): discovered and
//! admitted (started_at, admitted_by, profile) → loaded (finished_at, counts) → mirrored (mirrored_at)
//! → archived (archived_at). Read-only; as JSON and as an HTML table.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tokio_postgres::Client;

use super::dashboard::{escape, REFRESH_SECS};

/// One file's way through the watcher; times are RFC 3339 UTC, `None` where not reached.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileLifecycle {
    pub file_id: i64,
    pub file_name: String,
    pub status: String,
    /// The stage reached last: admitted, loaded, archived or mirrored.
    pub stage: &'static str,
    pub admitted_by: Option<String>,
    /// The source profile that read the file (`native`, `rees46`, a user profile's name).
    pub profile: Option<String>,
    pub discovered_at: String,
    pub loaded_at: Option<String>,
    pub mirrored_at: Option<String>,
    pub archived_at: Option<String>,
    pub rows_total: i64,
    pub rows_loaded: i64,
    pub rows_rejected: i64,
    pub rows_duplicate: i64,
    pub error: Option<String>,
}

/// Most files a view lists.
pub const MAX_FILES: i64 = 1000;

const RECENT: &str = "SELECT file_id, file_name, status, admitted_by, started_at, finished_at, \
    mirrored_at, archived_at, rows_total, rows_loaded, rows_rejected, rows_duplicate, error, \
    profile FROM streaming.ingest_files ORDER BY file_id DESC LIMIT $1";

/// The `limit` most recent files, newest first.
///
/// # Errors
/// The query failed (Postgres away, schema not migrated yet).
pub async fn recent(
    client: &Client,
    limit: i64,
) -> Result<Vec<FileLifecycle>, tokio_postgres::Error> {
    let rows = client.query(RECENT, &[&limit.clamp(1, MAX_FILES)]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let status: String = r.get(2);
            let mirrored: Option<DateTime<Utc>> = r.get(6);
            let archived: Option<DateTime<Utc>> = r.get(7);
            let loaded = (status == "loaded").then(|| r.get::<_, DateTime<Utc>>(5));
            // The stage reached last in time (the watcher archives before Kafka acknowledges).
            let stage = [
                ("loaded", loaded),
                ("archived", archived),
                ("mirrored", mirrored),
            ]
            .into_iter()
            .filter_map(|(name, t)| t.map(|t| (t, name)))
            .max()
            .map_or("admitted", |(_, name)| name);
            FileLifecycle {
                file_id: r.get(0),
                file_name: r.get(1),
                stage,
                admitted_by: r.get(3),
                profile: r.get(13),
                discovered_at: time(r.get(4)),
                loaded_at: loaded.map(time),
                mirrored_at: mirrored.map(time),
                archived_at: archived.map(time),
                rows_total: r.get(8),
                rows_loaded: r.get(9),
                rows_rejected: r.get(10),
                rows_duplicate: r.get(11),
                error: r.get(12),
                status,
            }
        })
        .collect())
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The lifecycle as an HTML table.
pub fn page(files: &[FileLifecycle], note: Option<&str>) -> String {
    let mut h = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <title>shopstream files</title><style>body{{font-family:sans-serif;margin:16px}}\
         table{{border-collapse:collapse;font-size:12px}}td,th{{border:1px solid #ddd;padding:2px 6px}}</style></head>\
         <body><h1>File lifecycle</h1><p><a href=\"/\">dashboard</a> · <a href=\"/files.json\">JSON</a></p>"
    );
    if let Some(note) = note {
        let _ = write!(h, "<p id=\"error\">{}</p>", escape(note));
    }
    h.push_str(
        "<table id=\"files\"><tr><th>file_id</th><th>file</th><th>status</th><th>stage</th>\
         <th>admitted by</th><th>profile</th><th>discovered</th><th>loaded</th><th>mirrored</th><th>archived</th>\
         <th>rows</th><th>loaded</th><th>rejected</th><th>duplicate</th><th>error</th></tr>",
    );
    let opt = |v: &Option<String>| escape(v.as_deref().unwrap_or(""));
    for f in files {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            f.file_id,
            escape(&f.file_name),
            escape(&f.status),
            f.stage,
            opt(&f.admitted_by),
            opt(&f.profile),
            escape(&f.discovered_at),
            opt(&f.loaded_at),
            opt(&f.mirrored_at),
            opt(&f.archived_at),
            f.rows_total,
            f.rows_loaded,
            f.rows_rejected,
            f.rows_duplicate,
            opt(&f.error),
        );
    }
    h.push_str("</table></body></html>");
    h
}
