//! The watcher's Prometheus metrics: their names (consts), the process-wide recorder, and the
//! recording helpers the pipeline calls. Owns no pipeline state and never touches Postgres or
//! files; values that live in the database (the mirror backlog) are set by the HTTP server at
//! scrape time. Recording before [`install`] is a no-op, so library users and tests need nothing.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};

use ::metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use ::metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

use crate::load::Counts;

/// Files finished, by `outcome` (loaded, duplicate_file, rejected).
pub const FILES: &str = "shopstream_files_total";
/// Input rows of finished files, by `outcome` (loaded, rejected, duplicate).
pub const ROWS: &str = "shopstream_rows_total";
/// Seconds from a file's claim to its commit (histogram).
pub const INGEST_SECONDS: &str = "shopstream_ingest_seconds";
/// Loaded files whose events Kafka has not acknowledged yet (from the ledger, at scrape time).
pub const UNMIRRORED_FILES: &str = "shopstream_unmirrored_files";
/// Attempts at a file that ended in "retry later" (Postgres away, file still changing, ...).
pub const ERRORS: &str = "shopstream_errors_total";
/// Unix time of the last such error; 0 when there was none.
pub const LAST_ERROR: &str = "shopstream_last_error_timestamp_seconds";

/// Loads that gave up waiting for a lock another session holds (`load::LOCK_TIMEOUT` each).
pub const LOCK_TIMEOUTS: &str = "shopstream_lock_timeouts_total";
/// Files whose load waits for such a lock right now (retried with backoff); 0 when none.
pub const LOCK_WAITING: &str = "shopstream_lock_waiting_files";

/// Data-quality alerts open now, by `kind` (from `streaming.alerts`, at scrape time).
pub const ALERTS_OPEN: &str = "shopstream_alerts_open";

/// Bucket bounds of [`INGEST_SECONDS`], from a small file to a very large one.
const INGEST_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once; later calls return the same handle).
///
/// # Errors
/// Another `metrics` recorder was installed by someone else first.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(INGEST_SECONDS.into()), &INGEST_BUCKETS)?
        .install_recorder()?;
    describe_counter!(FILES, "Files finished, by outcome.");
    describe_counter!(ROWS, "Input rows of finished files, by outcome.");
    describe_histogram!(
        INGEST_SECONDS,
        ::metrics::Unit::Seconds,
        "Seconds from a file's claim to its commit."
    );
    describe_gauge!(
        UNMIRRORED_FILES,
        "Loaded files whose events Kafka has not acknowledged yet."
    );
    describe_counter!(ERRORS, "File attempts that ended in retry later.");
    describe_gauge!(LAST_ERROR, "Unix time of the last error; 0 if none.");
    describe_counter!(
        LOCK_TIMEOUTS,
        "Loads that gave up waiting for a lock another session holds."
    );
    describe_gauge!(
        LOCK_WAITING,
        "Files whose load waits for a lock another session holds."
    );
    // Present from the first scrape, so dashboards and alerts see zeros rather than gaps.
    for outcome in ["loaded", "duplicate_file", "rejected"] {
        counter!(FILES, "outcome" => outcome).absolute(0);
    }
    for outcome in ["loaded", "rejected", "duplicate"] {
        counter!(ROWS, "outcome" => outcome).absolute(0);
    }
    counter!(ERRORS).absolute(0);
    gauge!(LAST_ERROR).set(0.0);
    describe_gauge!(ALERTS_OPEN, "Data-quality alerts open now, by kind.");
    for kind in crate::load::alerts::KINDS {
        gauge!(ALERTS_OPEN, "kind" => kind).set(0.0);
    }
    counter!(LOCK_TIMEOUTS).absolute(0);
    gauge!(LOCK_WAITING).set(0.0);
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// A file claimed at `started_at` finished with `outcome`; `counts` are its ledger counts.
pub fn file_finished(outcome: &'static str, counts: &Counts, started_at: DateTime<Utc>) {
    let elapsed = (Utc::now() - started_at).to_std().unwrap_or(Duration::ZERO);
    counter!(FILES, "outcome" => outcome).increment(1);
    for (row_outcome, n) in [
        ("loaded", counts.loaded),
        ("rejected", counts.rejected),
        ("duplicate", counts.duplicate),
    ] {
        counter!(ROWS, "outcome" => row_outcome).increment(n.max(0) as u64);
    }
    histogram!(INGEST_SECONDS).record(elapsed.as_secs_f64());
}

/// A file's load committed: `loaded`, or `rejected` when none of its rows could be used
/// (the ledger's rule in `ledger::finish_loading`).
pub fn file_loaded(counts: &Counts, started_at: DateTime<Utc>) {
    let outcome = if counts.loaded == 0 && counts.duplicate == 0 {
        "rejected"
    } else {
        "loaded"
    };
    file_finished(outcome, counts, started_at);
}

/// An attempt at a file ended in "retry later".
pub fn error_seen() {
    counter!(ERRORS).increment(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    gauge!(LAST_ERROR).set(now.as_secs_f64());
}

/// The mirror backlog as the ledger counts it.
pub fn set_unmirrored(files: i64) {
    gauge!(UNMIRRORED_FILES).set(files as f64);
}

/// Open alerts of one kind, as `streaming.alerts` counts them.
pub fn set_alerts_open(kind: &'static str, open: i64) {
    gauge!(ALERTS_OPEN, "kind" => kind).set(open as f64);
}

/// A load gave up waiting for a lock.
pub fn lock_timeout() {
    counter!(LOCK_TIMEOUTS).increment(1);
}

/// Files waiting for a lock now (`status::WatchStatus` keeps them).
pub fn set_lock_waiting(files: usize) {
    gauge!(LOCK_WAITING).set(files as f64);
}
