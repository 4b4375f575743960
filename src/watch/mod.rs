//! Watch: the only module that knows every stage; it drives them and owns no data of its own.
//! This file starts a run (connect, migrate, workers); [`batch`] and [`service`] are the two
//! loops that decide *when* a file is read, [`ingest`] decides *what happens* to one file, and
//! [`outcome`] names how each attempt ended and counts the run.
//! Each file ends loaded, duplicate or rejected (and moved), Busy (another watcher has it) or
//! Retry (kept in place and tried again later, never lost).

mod batch;
mod ingest;
mod outcome;
mod pending;
mod service;
mod stream;
mod streams;
mod stuck;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::sync::watch;
use tokio_postgres::Client;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::config::{redact_url, WatchSettings};
use crate::landing::Landing;
use crate::load::{self, LoadError};
use crate::mirror::{outbox, Messages, MirrorError, Relay, RelaySettings};
use crate::status::WatchStatus;
use crate::transform::{ProfileError, Profiles};
pub use outcome::{Outcome, RetryCause, RunStats};

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("landing directory {path}: {source}")]
    Landing {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot watch {path}: {source}")]
    Notify {
        path: PathBuf,
        source: notify::Error,
    },
    #[error("--profiles-dir: {0}")]
    Profiles(#[from] ProfileError),
    #[error(transparent)]
    Database(#[from] LoadError),
    #[error(transparent)]
    Mirror(#[from] MirrorError),
}

impl WatchError {
    /// A setting is wrong (a URL, a password, a profile file, a Kafka option): the run stops
    /// at once, and the binary exits with its configuration-error code.
    pub fn is_wrong_setting(&self) -> bool {
        match self {
            WatchError::Profiles(_) | WatchError::Mirror(MirrorError::Config(_)) => true,
            WatchError::Database(e) => e.is_wrong_setting(),
            _ => false,
        }
    }
}

/// How often a file claimed by another watcher is looked at again.
const BUSY_RECHECK: Duration = Duration::from_millis(500);

/// The one retry schedule of a file that could not be loaded: 0.5 s, doubling up to 30 s.
fn retry_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(500), Duration::from_secs(30))
}

/// Says that `path` is tried again after `delay`, and why; a fault also counts as an error.
/// A wait for a lock is said once when it starts ([`Watcher::note_lock_wait`]), not per retry.
fn note_retry(path: &Path, cause: &RetryCause, delay: Duration) {
    let retry_in_ms = delay.as_millis() as u64;
    if matches!(cause, RetryCause::Database(LoadError::LockTimeout { .. })) {
        crate::metrics::error_seen();
        debug!(file = %path.display(), error = %cause, retry_in_ms, "Will retry the file.");
    } else if cause.is_fault() {
        crate::metrics::error_seen();
        warn!(file = %path.display(), error = %cause, retry_in_ms, "Will retry the file.");
    } else {
        info!(file = %path.display(), reason = %cause, retry_in_ms, "Reading the file again.");
    }
}

/// One worker: its own connection and producer; workers share only the landing directory.
struct Watcher {
    settings: WatchSettings,
    profiles: Profiles,
    landing: Landing,
    client: Client,
    /// Creates the daily partitions a file's rows need; shared by the workers.
    partitions: load::Partitions,
    relay: Option<Relay>,
    /// The lead worker alone drains the mirror backlog, so that no file is relayed twice at once.
    lead: bool,
    stats: RunStats,
    /// Files whose fate is committed but that could not leave the landing directory.
    stuck: stuck::StuckFiles,
    /// Shared by all workers and `/healthz`: the files waiting for a lock.
    status: WatchStatus,
}

/// Runs the watcher until `shutdown` turns true (or, with `--once`, until the directory is done).
pub async fn run(
    settings: WatchSettings,
    mut shutdown: watch::Receiver<bool>,
) -> Result<RunStats, WatchError> {
    let started = Instant::now();
    let profiles = load_profiles(settings.profiles_dir.as_deref())?
        .with_event_time_window(settings.event_time_window);
    let landing =
        Landing::open(&settings.landing_dir, settings.marker_suffix.clone()).map_err(|source| {
            WatchError::Landing {
                path: settings.landing_dir.clone(),
                source,
            }
        })?;
    let status = WatchStatus::default();
    crate::serve::start(&settings, status.clone(), shutdown.clone()).await; // analytics: serves before Postgres is up.
    info!(database = %redact_url(&settings.database_url), landing = %landing.describe(), "Connecting to Postgres.");
    // A stop requested while Postgres is still unreachable ends the run at once: nothing is open.
    let mut client = tokio::select! {
        client = load::connect_with_retry(&settings.database_url, None) => client?,
        _ = shutdown.wait_for(|stop| *stop) => {
            info!("Shutdown requested before Postgres was reachable.");
            return Ok(RunStats::default());
        }
    };
    load::migrate(&mut client).await?;
    load::warn_on_stock_settings(&client).await;
    let relay_settings = relay_settings(&settings);
    match &relay_settings {
        Some(r) => {
            info!(brokers = %r.brokers, topic = %r.topic, rejected_topic = %r.rejected_topic, "Kafka mirror on.");
        }
        None => {
            info!("Kafka mirror off (no KAFKA_BROKERS); loaded files stay in the mirror backlog.");
        }
    }
    // Workers share nothing but the landing directory: each has its own connection and
    // producer, and file claims in Postgres keep them apart as they keep watcher processes apart.
    let mut clients = vec![client];
    for _ in 1..settings.workers {
        clients.push(load::connect(&settings.database_url).await?);
    }
    let partitions = load::Partitions::new(&settings.database_url);
    let mut workers = Vec::with_capacity(clients.len());
    let stuck = stuck::StuckFiles::default();
    for (index, client) in clients.into_iter().enumerate() {
        workers.push(Watcher {
            relay: relay_settings.clone().map(Relay::new).transpose()?,
            settings: settings.clone(),
            profiles: profiles.clone(),
            landing: landing.clone(),
            client,
            partitions: partitions.clone(),
            lead: index == 0,
            stats: RunStats::default(),
            stuck: stuck.clone(),
            status: status.clone(),
        });
    }
    workers[0].drain_mirror_backlog().await;
    let mut files_left = 0;
    let runs = if settings.once {
        let files = workers[0].scan().await?;
        info!(
            files = files.len(),
            workers = workers.len(),
            "Ingesting the landing directory once."
        );
        let progress = Mutex::new(crate::progress::Progress::new("files", files.len() as u64));
        let queue = Mutex::new(VecDeque::from(files));
        let runs = join_all(
            workers
                .iter_mut()
                .map(|w| w.ingest_once(&queue, &progress, shutdown.clone())),
        )
        .await;
        progress.lock().unwrap_or_else(|e| e.into_inner()).finish();
        files_left = queue.lock().unwrap_or_else(|e| e.into_inner()).len() as u64;
        // Every worker's last file first, so that the drain does not send it again.
        for w in &mut workers {
            w.settle_mirror().await;
        }
        workers[0].drain_mirror_backlog().await;
        runs
    } else {
        let runs = join_all(workers.iter_mut().map(|w| w.watch(shutdown.clone()))).await;
        for w in &mut workers {
            w.settle_mirror().await;
        }
        runs
    };
    let mut stats = RunStats::default();
    for w in &workers {
        if let Some(relay) = &w.relay {
            relay.flush(Duration::from_secs(10));
        }
        stats.add(&w.stats);
    }
    runs.into_iter().collect::<Result<(), WatchError>>()?;
    if relay_settings.is_some() {
        let unmirrored = outbox::unmirrored(&workers[0].client).await;
        stats.unmirrored_files = Some(unmirrored.map_or(0, |v| v.len() as u64));
    }
    stats.files_left = files_left;
    stats.elapsed = started.elapsed();
    Ok(stats)
}

/// The built-in source profiles and the user's; read once, when the watcher is built.
fn load_profiles(dir: Option<&Path>) -> Result<Profiles, WatchError> {
    let profiles = Profiles::load(dir)?;
    for p in profiles.iter() {
        info!(profile = %p.name, origin = %p.origin, columns = %p.expected_columns().join(","), "Source profile known.");
    }
    for p in &profiles.streams {
        info!(profile = %p.name, origin = %p.origin, stream = "transactions", "Stream profile known.");
    }
    Ok(profiles)
}

fn relay_settings(settings: &WatchSettings) -> Option<RelaySettings> {
    settings
        .kafka_brokers
        .as_ref()
        .map(|brokers| RelaySettings {
            brokers: brokers.clone(),
            topic: settings.kafka_topic.clone(),
            rejected_topic: settings.kafka_rejected_topic.clone(),
            transactions_topic: settings.kafka_transactions_topic.clone(),
            inventory_topic: settings.kafka_inventory_topic.clone(),
            timeout: settings.kafka_timeout,
        })
}

impl Watcher {
    async fn scan(&self) -> Result<Vec<PathBuf>, WatchError> {
        self.landing
            .scan()
            .await
            .map_err(|source| WatchError::Landing {
                path: PathBuf::from(self.landing.describe()),
                source,
            })
    }

    fn notify_error(&self, source: notify::Error) -> WatchError {
        WatchError::Notify {
            path: PathBuf::from(self.landing.describe()),
            source,
        }
    }

    /// Reconnects if the connection was lost; a failure here means "retry the file later".
    async fn ensure_connected(&mut self) -> Result<(), LoadError> {
        if self.client.is_closed() {
            info!("Reconnecting to Postgres.");
            self.client = load::connect(&self.settings.database_url).await?;
        }
        Ok(())
    }

    /// A load that gave up on another session's lock starts (or goes on with) a stall, told to
    /// `/healthz` and said once at WARN; any other end of an attempt at the file ends its wait,
    /// and the end of the stall is said once too. Busy leaves it as it was: another watcher has
    /// the file now.
    fn note_lock_wait(&self, path: &Path, outcome: &Outcome) {
        match outcome {
            Outcome::Retry(RetryCause::Database(LoadError::LockTimeout { held, .. })) => {
                crate::metrics::lock_timeout();
                let held = held.as_deref().unwrap_or("a lock (row or transaction)");
                if self.status.lock_wait(path, held) {
                    warn!(
                        lock_timeout_s = load::LOCK_TIMEOUT.as_secs(),
                        "Loading is blocked: another session holds {held}. Nothing was written; \
                         the file is retried with backoff until the lock is released (/healthz says waiting)."
                    );
                }
            }
            Outcome::Busy => {}
            _ => self.lock_wait_over(path),
        }
    }

    /// `path` waits for no lock any more.
    fn lock_wait_over(&self, path: &Path) {
        if self.status.lock_released(path) {
            info!("The lock was released; loading goes on.");
        }
    }

    /// Relays a committed file to Kafka when the mirror is on; a failure leaves it in the backlog.
    async fn mirror_file(&mut self, file_id: i64, loaded: Option<&Messages>) {
        if let Some(relay) = &mut self.relay {
            relay.mirror_file(&self.client, file_id, loaded).await;
        }
    }

    /// Waits for Kafka's acknowledgements of the file relayed last and marks it mirrored.
    async fn settle_mirror(&mut self) {
        if let Some(relay) = &mut self.relay {
            relay.settle(&self.client).await;
        }
    }

    /// Mirrors every loaded-but-unmirrored file, oldest first.
    async fn drain_mirror_backlog(&mut self) {
        if self.relay.is_none() || self.ensure_connected().await.is_err() {
            return;
        }
        if let Some(relay) = &mut self.relay {
            relay.drain_backlog(&self.client).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_profile_file_stops_the_start_naming_file_and_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shop.toml");
        std::fs::write(&path, "name = \"shop\"\n[columns]\nevent_time = 3\n").unwrap();
        let err = load_profiles(Some(dir.path())).unwrap_err().to_string();
        assert!(err.starts_with("--profiles-dir: source profile "), "{err}");
        assert!(err.contains("shop.toml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        let missing = load_profiles(Some(Path::new("/nonexistent/profiles")))
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with(
                "--profiles-dir: cannot read the profiles directory /nonexistent/profiles"
            ),
            "{missing}"
        );
    }
}
