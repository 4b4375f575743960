//! The daily partitions of `streaming.events` and `streaming.purchases` (sql/V11): created ahead
//! of each chunk's rows, on a connection of their own, and dropped whole by retention.
//! Owns partition management; loads no rows.
//!
//! Why a connection of its own: a file's transaction lives as long as the file is read, and a
//! partition created inside it would stay invisible to every other load (and hold the parent's
//! SHARE UPDATE EXCLUSIVE lock, which serialises creators) until that file committed. Created
//! and committed apart, a day exists for everyone at once; the file's transaction then locks it
//! (`streaming.lock_event_partitions`) so that it sees it and retention cannot drop it underneath.

use std::sync::Arc;

use chrono::{DateTime, Duration as TimeDelta, NaiveDate, NaiveTime, Utc};
use tokio::sync::Mutex;
use tokio_postgres::{Client, GenericClient};
use tracing::{info, warn};

use super::LoadError;

const ENSURE: &str = "SELECT streaming.ensure_event_partitions($1)";
const LOCK: &str = "SELECT streaming.lock_event_partitions($1)";
const DROP_BEFORE: &str = "SELECT run_id, dropped_before, days_dropped, events_dropped, \
    purchases_dropped FROM streaming.drop_event_days_before($1)";

/// Creates missing daily partitions; shared by a process's workers (one short transaction per
/// call, under the keeper's lock, so two workers never race for the same day in one process;
/// across processes the function's lock on the parents does that).
#[derive(Clone)]
pub struct Partitions {
    url: String,
    keeper: Arc<Mutex<Option<Client>>>,
}

impl Partitions {
    /// Connects lazily, at the first chunk that needs a new day.
    pub fn new(url: &str) -> Partitions {
        Partitions {
            url: url.to_string(),
            keeper: Arc::new(Mutex::new(None)),
        }
    }

    /// Makes sure the partitions of `days` exist, committed; returns how many were created.
    ///
    /// # Errors
    /// `Unavailable` when Postgres is away, `LockTimeout` when another session holds a lock on
    /// the parents, `Refused` for anything else.
    pub async fn ensure(&self, days: &[NaiveDate]) -> Result<i32, LoadError> {
        let mut keeper = self.keeper.lock().await;
        let client = match keeper.take() {
            Some(client) if !client.is_closed() => keeper.insert(client),
            _ => {
                let client = super::connect(&self.url).await?;
                // Attaching a day locks the parent: behind a lock someone else holds on
                // `streaming.events` it must fail as the load itself does (`LockTimeout`, retried
                // and reported), not wait unseen.
                let limit = format!("SET lock_timeout = {}", super::LOCK_TIMEOUT.as_millis());
                client.batch_execute(&limit).await?;
                keeper.insert(client)
            }
        };
        let created: i32 = client.query_one(ENSURE, &[&days]).await?.get(0);
        if created > 0 {
            info!(days = created, first = ?days.first(), last = ?days.last(), "Created daily partitions of events and purchases.");
        }
        Ok(created)
    }
}

/// Locks the partitions of `days` in the caller's transaction (see the module's comment).
pub(super) async fn lock_days(
    tx: &impl GenericClient,
    days: &[NaiveDate],
) -> Result<(), tokio_postgres::Error> {
    tx.query_one(LOCK, &[&days]).await.map(|_| ())
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The UTC day of an event time in microseconds, as days since the epoch: its partition.
pub(crate) fn day_of(micros: i64) -> i64 {
    micros.div_euclid(MICROS_PER_DAY)
}

/// A day number of [`day_of`] as a date.
pub(crate) fn date_of(day: i64) -> NaiveDate {
    DateTime::UNIX_EPOCH.date_naive() + TimeDelta::days(day)
}

/// What one retention run dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retained {
    /// The run's row in `streaming.retention_runs`; None when no day was old enough.
    pub run_id: Option<i64>,
    /// Every event before this UTC midnight is gone.
    pub dropped_before: DateTime<Utc>,
    pub days_dropped: i32,
    pub events_dropped: i64,
    pub purchases_dropped: i64,
}

/// The UTC midnight `days` whole days before today's: the oldest instant kept.
pub fn retention_horizon(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    let midnight = now.date_naive().and_time(NaiveTime::MIN).and_utc();
    midnight - TimeDelta::days(i64::from(days))
}

/// Drops the days of events and purchases before `before`, in one transaction with its note in
/// `streaming.retention_runs`. Aggregates are not touched (README, "Retention").
///
/// # Errors
/// `Unavailable` when Postgres is away, `Refused` for anything else; nothing is dropped then.
pub async fn drop_days_before(
    client: &mut Client,
    before: DateTime<Utc>,
) -> Result<Retained, LoadError> {
    let tx = client.transaction().await?;
    let row = tx.query_one(DROP_BEFORE, &[&before]).await?;
    tx.commit().await?;
    let retained = Retained {
        run_id: row.get(0),
        dropped_before: row.get(1),
        days_dropped: row.get(2),
        events_dropped: row.get(3),
        purchases_dropped: row.get(4),
    };
    info!(?retained, "Retention run finished.");
    Ok(retained)
}

/// PostgreSQL's stock cache and checkpoint distance, and the database's size.
const SETTINGS: &str = "SELECT pg_size_bytes(current_setting('shared_buffers')), \
    pg_size_bytes(current_setting('max_wal_size')), pg_database_size(current_database())";

/// Logs once, at start, when the server runs with the stock shared_buffers (128 MB) or
/// max_wal_size (1 GB) on a database many times larger: ingest then slows as history grows
/// (README, "Postgres settings"). Says nothing when the settings cannot be read.
pub async fn warn_on_stock_settings(client: &Client) {
    const MB: i64 = 1 << 20;
    let Ok(row) = client.query_one(SETTINGS, &[]).await else {
        return;
    };
    let (buffers, wal, size): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    if size > 8 * buffers && (buffers <= 128 * MB || wal <= 1024 * MB) {
        warn!(
            shared_buffers_mb = buffers / MB,
            max_wal_size_mb = wal / MB,
            database_mb = size / MB,
            "PostgreSQL runs with its stock shared_buffers or max_wal_size on a database many \
             times larger; ingest slows as it grows (README: Postgres settings)."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_days_also_before_the_epoch() {
        let t = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .unwrap()
                .to_utc()
                .timestamp_micros()
        };
        assert_eq!(day_of(t("1970-01-01T00:00:00Z")), 0);
        assert_eq!(day_of(t("1970-01-01T23:59:59.999999Z")), 0);
        assert_eq!(day_of(t("1969-12-31T23:59:59Z")), -1);
        let day = day_of(t("2026-11-02T00:30:00+01:00"));
        assert_eq!(day, day_of(t("2026-11-01T23:30:00Z")));
        assert_eq!(date_of(day).to_string(), "2026-11-01");
        assert_eq!(date_of(-1).to_string(), "1969-12-31");
    }

    #[test]
    fn the_horizon_is_a_utc_midnight_whole_days_back() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T13:37:00Z")
            .unwrap()
            .to_utc();
        let h = retention_horizon(now, 30);
        assert_eq!(h.to_rfc3339(), "2026-11-02T00:00:00+00:00");
        assert_eq!(
            retention_horizon(now, 0).to_rfc3339(),
            "2026-12-02T00:00:00+00:00"
        );
    }
}
