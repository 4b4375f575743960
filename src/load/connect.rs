//! Connecting to Postgres (with retry for a server that is away) and applying the `sql/`
//! migrations, one watcher at a time. Owns connection set-up; loads nothing.

use std::time::Duration;

use tokio_postgres::{Client, Config, NoTls};
use tracing::{debug, warn};

use super::LoadError;
use crate::backoff::Backoff;

mod embedded {
    refinery::embed_migrations!("sql");
}
/// Opens one connection and drives it on a background task.
///
/// # Errors
/// `LoadError::Unavailable` when the server cannot be reached (worth a retry), and
/// `LoadError::Setting` when the URL or the credentials are wrong (not worth one).
pub async fn connect(url: &str) -> Result<Client, LoadError> {
    let config: Config = url.parse().map_err(|e| LoadError::from_url(e, url))?;
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| LoadError::from_connect(e, url))?;
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
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    loop {
        match connect(url).await {
            Ok(client) => return Ok(client),
            Err(e)
                if !e.is_wrong_setting()
                    && give_up.is_none_or(|limit| started.elapsed() < limit) =>
            {
                let delay = backoff.next_delay();
                warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "Cannot reach Postgres; retrying.");
                tokio::time::sleep(delay).await;
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
