//! The watcher: the only module that knows every stage. It finds complete files (landing),
//! turns them into batches (transform), loads them (sink::postgres + ledger), archives them
//! (landing) and relays loaded events to Kafka (sink::kafka). Each file ends Loaded, Duplicate,
//! Rejected, or Retry (kept in place and tried again later, never lost).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use notify::event::{ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::{mpsc, watch};
use tokio_postgres::Client;
use tracing::{error, info, instrument, warn};

use crate::config::{redact_url, WatchSettings};
use crate::landing::{self, Admission, LandingDir};
use crate::ledger::{self, FileRecord, LoadReport};
use crate::sink::kafka::{KafkaMirror, MirrorError};
use crate::sink::postgres::{self, LoadError};
use crate::transform::{self, Batch};

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
    #[error(transparent)]
    Database(#[from] LoadError),
    #[error(transparent)]
    Mirror(#[from] MirrorError),
}

/// What happened to the files of a run; printed at exit.
#[derive(Debug, Default, Clone)]
pub struct RunStats {
    pub files_loaded: u64,
    pub files_duplicate: u64,
    pub files_rejected: u64,
    pub rows_total: u64,
    pub rows_loaded: u64,
    pub rows_rejected: u64,
    pub rows_duplicate: u64,
    pub unmirrored_files: u64,
    pub elapsed: Duration,
}

/// How one file ended.
enum Outcome {
    Done,
    /// Nothing was committed; try again later.
    Retry(LoadError),
}

/// Longest wait between two tries of a file while Postgres is away.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

struct Watcher {
    settings: WatchSettings,
    landing: LandingDir,
    client: Client,
    mirror: Option<KafkaMirror>,
    stats: RunStats,
}

/// Runs the watcher until `shutdown` turns true (or, with `--once`, until the directory is done).
pub async fn run(
    settings: WatchSettings,
    mut shutdown: watch::Receiver<bool>,
) -> Result<RunStats, WatchError> {
    let started = Instant::now();
    let landing =
        LandingDir::open(&settings.landing_dir).map_err(|source| WatchError::Landing {
            path: settings.landing_dir.clone(),
            source,
        })?;
    info!(database = %redact_url(&settings.database_url), landing = %landing.root.display(), "Connecting to Postgres.");
    let mut client = postgres::connect_with_retry(&settings.database_url, None).await?;
    postgres::migrate(&mut client).await?;
    let mirror = match &settings.kafka_brokers {
        Some(brokers) => {
            info!(brokers = %brokers, topic = %settings.kafka_topic, "Kafka mirror on.");
            Some(KafkaMirror::new(
                brokers,
                &settings.kafka_topic,
                settings.kafka_timeout,
            )?)
        }
        None => {
            info!("Kafka mirror off (no KAFKA_BROKERS); loaded files stay in the mirror backlog.");
            None
        }
    };
    let mut w = Watcher {
        settings,
        landing,
        client,
        mirror,
        stats: RunStats::default(),
    };
    w.drain_mirror_backlog().await;
    if w.settings.once {
        w.ingest_once(&mut shutdown).await?;
    } else {
        w.watch(&mut shutdown).await?;
    }
    if let Some(mirror) = &w.mirror {
        mirror.flush(Duration::from_secs(10));
    }
    w.stats.unmirrored_files = ledger::unmirrored(&w.client)
        .await
        .map(|v| v.len() as u64)
        .unwrap_or(0);
    w.stats.elapsed = started.elapsed();
    Ok(w.stats)
}

impl Watcher {
    /// Batch mode: every candidate now present, each once it is complete, then return.
    async fn ingest_once(
        &mut self,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), WatchError> {
        let files = self.scan()?;
        info!(files = files.len(), "Ingesting the landing directory once.");
        for path in files {
            let mut delay = Duration::from_millis(500);
            loop {
                if *shutdown.borrow() {
                    return Ok(());
                }
                match landing::settle_wait(&path, self.settings.settle) {
                    Ok(Some(wait)) => {
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    Ok(None) => {}
                    Err(_) => break, // Gone: another watcher or a user took it.
                }
                match self.process(&path, Admission::Settled).await {
                    Outcome::Done => break,
                    Outcome::Retry(e) => {
                        warn!(file = %path.display(), error = %e, retry_in_ms = delay.as_millis() as u64, "Will retry the file.");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(MAX_RETRY_DELAY);
                    }
                }
            }
        }
        self.drain_mirror_backlog().await;
        Ok(())
    }

    /// Service mode: notify events, a periodic rescan, and retries, until shutdown.
    async fn watch(&mut self, shutdown: &mut watch::Receiver<bool>) -> Result<(), WatchError> {
        let (tx, mut events) = mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |res| {
            let _ = tx.send(res);
        })
        .map_err(|source| self.notify_error(source))?;
        watcher
            .watch(&self.landing.root, RecursiveMode::NonRecursive)
            .map_err(|source| self.notify_error(source))?;
        let mut pending: HashMap<PathBuf, Pending> = HashMap::new();
        for path in self.scan()? {
            pending.insert(path, Pending::new(None));
        }
        info!(files = pending.len(), "Watching the landing directory.");
        let mut rescan = tokio::time::interval(self.settings.rescan);
        rescan.tick().await;
        loop {
            let next_due = pending.values().map(|p| p.due).min();
            tokio::select! {
                _ = shutdown.changed() => {}
                Some(event) = events.recv() => self.note_event(event, &mut pending),
                _ = rescan.tick() => {
                    for path in self.scan()? {
                        pending.entry(path).or_insert_with(|| Pending::new(None));
                    }
                    self.drain_mirror_backlog().await;
                }
                _ = sleep_until(next_due) => {}
            }
            if *shutdown.borrow() {
                info!("Shutdown requested; the current file was finished or rolled back.");
                return Ok(());
            }
            let now = Instant::now();
            let mut due: Vec<PathBuf> = pending
                .iter()
                .filter(|(_, p)| p.due <= now)
                .map(|(path, _)| path.clone())
                .collect();
            due.sort();
            for path in due {
                if *shutdown.borrow() {
                    break;
                }
                self.try_file(&path, &mut pending).await;
            }
        }
    }

    async fn try_file(&mut self, path: &Path, pending: &mut HashMap<PathBuf, Pending>) {
        let Some(entry) = pending.get(path) else {
            return;
        };
        let admission = match entry.hint {
            Some(admission) => admission,
            None => match landing::settle_wait(path, self.settings.settle) {
                Ok(None) => Admission::Settled,
                Ok(Some(wait)) => {
                    if let Some(p) = pending.get_mut(path) {
                        p.due = Instant::now() + wait;
                    }
                    return;
                }
                Err(_) => {
                    pending.remove(path);
                    return;
                }
            },
        };
        match self.process(path, admission).await {
            Outcome::Done => {
                pending.remove(path);
            }
            Outcome::Retry(e) => {
                if let Some(p) = pending.get_mut(path) {
                    p.delay = (p.delay * 2).min(MAX_RETRY_DELAY);
                    p.due = Instant::now() + p.delay;
                    warn!(file = %path.display(), error = %e, retry_in_ms = p.delay.as_millis() as u64, "Will retry the file.");
                }
            }
        }
    }

    fn note_event(
        &self,
        event: notify::Result<notify::Event>,
        pending: &mut HashMap<PathBuf, Pending>,
    ) {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                // Lost events (queue overflow) are caught by the next rescan.
                warn!(error = %e, "notify reported an error; the periodic rescan will catch up.");
                return;
            }
        };
        let renamed_in = matches!(
            event.kind,
            EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
        );
        let Some(path) = event.paths.last() else {
            return;
        };
        if !self.landing.is_candidate(path) || !path.is_file() {
            return;
        }
        let hint = renamed_in.then_some(Admission::Renamed);
        let entry = pending
            .entry(path.clone())
            .or_insert_with(|| Pending::new(hint));
        if hint.is_some() {
            entry.hint = hint;
        }
        entry.due = entry.due.min(Instant::now());
    }

    fn scan(&self) -> Result<Vec<PathBuf>, WatchError> {
        self.landing.scan().map_err(|source| WatchError::Landing {
            path: self.landing.root.clone(),
            source,
        })
    }

    fn notify_error(&self, source: notify::Error) -> WatchError {
        WatchError::Notify {
            path: self.landing.root.clone(),
            source,
        }
    }

    /// Reconnects if the connection was lost; a failure here means "retry the file later".
    async fn ensure_connected(&mut self) -> Result<(), LoadError> {
        if self.client.is_closed() {
            info!("Reconnecting to Postgres.");
            self.client = postgres::connect(&self.settings.database_url).await?;
        }
        Ok(())
    }

    /// Reads, transforms, loads and archives one complete file.
    #[instrument(skip_all, fields(file = %path.file_name().unwrap_or_default().to_string_lossy()))]
    async fn process(&mut self, path: &Path, admission: Admission) -> Outcome {
        if let Err(e) = self.ensure_connected().await {
            return Outcome::Retry(e);
        }
        let started_at = Utc::now();
        let file_name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let bytes = match tokio::fs::read(path).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Outcome::Done,
            Err(e) => {
                let reason = format!("cannot read the file: {e}");
                return self
                    .reject_unread(path, &file_name, admission, started_at, &reason)
                    .await;
            }
        };
        let (sha256, transformed) = tokio::task::spawn_blocking(move || {
            (
                landing::fingerprint(&bytes),
                (bytes.len(), transform::transform(&bytes)),
            )
        })
        .await
        .unwrap_or_else(|e| {
            (
                String::new(),
                (0, Err(transform::FileError::Parse(e.to_string()))),
            )
        });
        let (size, transformed) = transformed;
        let file = FileRecord {
            file_name,
            size_bytes: size as i64,
            sha256,
            admitted_by: admission.as_str(),
            started_at,
        };
        match ledger::find_loaded(&self.client, &file.sha256, file.size_bytes).await {
            Ok(Some(earlier)) => return self.already_loaded(path, &file, Some(earlier)).await,
            Ok(None) => {}
            Err(e) => return Outcome::Retry(e.into()),
        }
        match transformed {
            Ok(batch) => self.load(path, &file, batch).await,
            Err(file_error) => self.reject_file(path, &file, &file_error.to_string()).await,
        }
    }

    async fn load(&mut self, path: &Path, file: &FileRecord, batch: Batch) -> Outcome {
        let report = match postgres::load(&mut self.client, file, &batch).await {
            Ok(report) => report,
            Err(e) if e.is_retryable() => return Outcome::Retry(e),
            Err(e) => return self.reject_file(path, file, &e.to_string()).await,
        };
        let (file_id, counts) = match report {
            LoadReport::Loaded { file_id, counts } => (file_id, counts),
            LoadReport::AlreadyLoaded(earlier) => {
                return self.already_loaded(path, file, earlier).await
            }
        };
        self.stats.rows_total += counts.total as u64;
        self.stats.rows_loaded += counts.loaded as u64;
        self.stats.rows_rejected += counts.rejected as u64;
        self.stats.rows_duplicate += counts.duplicate as u64;
        if !batch.rejects.is_empty() {
            let csv = transform::rejects_csv(&batch);
            if let Err(e) = self.landing.write_rejected_rows(&file.file_name, &csv) {
                warn!(error = %e, "Cannot write the rejected rows beside the file; they are in streaming.rejected_rows.");
            }
        }
        let archived = if counts.loaded == 0 && counts.duplicate == 0 {
            self.stats.files_rejected += 1;
            let reason = format!(
                "All {} rows broke the contract; see {}.rejected.csv or streaming.rejected_rows (file_id {file_id}).",
                counts.total, file.file_name
            );
            self.landing.archive_rejected(path, &reason)
        } else {
            self.stats.files_loaded += 1;
            self.landing.archive_processed(path)
        };
        if let Err(e) = archived {
            error!(error = %e, "Loaded, but cannot move the file out of the landing directory; it will be recognised by content and not loaded again.");
        }
        info!(
            file_id,
            rows = counts.total,
            loaded = counts.loaded,
            rejected = counts.rejected,
            duplicate = counts.duplicate,
            "File loaded."
        );
        self.mirror_file(file_id).await;
        Outcome::Done
    }

    async fn already_loaded(
        &mut self,
        path: &Path,
        file: &FileRecord,
        earlier: Option<ledger::LoadedFile>,
    ) -> Outcome {
        let same_drop = earlier
            .as_ref()
            .is_some_and(|e| e.file_name == file.file_name);
        if !same_drop {
            // Same bytes under another name, or dropped again: audit it, load nothing.
            let note = match &earlier {
                Some(e) => format!("same content as {} (file_id {})", e.file_name, e.file_id),
                None => "same content as a file loaded concurrently".to_string(),
            };
            if let Err(e) =
                ledger::record_unloaded(&self.client, file, "duplicate_file", &note).await
            {
                return Outcome::Retry(e.into());
            }
            self.stats.files_duplicate += 1;
            info!(%note, "Duplicate file skipped.");
        } else {
            // Our own earlier run committed it but stopped before moving it.
            info!("File was loaded before the last stop; archiving it.");
        }
        if let Err(e) = self.landing.archive_processed(path) {
            error!(error = %e, "Cannot move the duplicate file out of the landing directory.");
        }
        Outcome::Done
    }

    async fn reject_file(&mut self, path: &Path, file: &FileRecord, reason: &str) -> Outcome {
        if let Err(e) = ledger::record_unloaded(&self.client, file, "rejected", reason).await {
            return Outcome::Retry(e.into());
        }
        self.stats.files_rejected += 1;
        warn!(%reason, "File rejected.");
        let message = format!("{}: {reason}", file.file_name);
        if let Err(e) = self.landing.archive_rejected(path, &message) {
            error!(error = %e, "Cannot move the rejected file out of the landing directory.");
        }
        Outcome::Done
    }

    async fn reject_unread(
        &mut self,
        path: &Path,
        file_name: &str,
        admission: Admission,
        started_at: chrono::DateTime<Utc>,
        reason: &str,
    ) -> Outcome {
        let file = FileRecord {
            file_name: file_name.to_string(),
            size_bytes: 0,
            sha256: String::new(),
            admitted_by: admission.as_str(),
            started_at,
        };
        self.reject_file(path, &file, reason).await
    }

    /// Relays one loaded file's events to Kafka and marks it mirrored; failures leave it in the
    /// backlog for the next drain.
    async fn mirror_file(&mut self, file_id: i64) -> bool {
        let Some(mirror) = &self.mirror else {
            return false;
        };
        let events = match ledger::outbox_events(&self.client, file_id).await {
            Ok(events) => events,
            Err(e) => {
                warn!(file_id, error = %e, "Cannot read the file's events for Kafka; will retry.");
                return false;
            }
        };
        if let Err(e) = mirror.produce_all(&events).await {
            warn!(file_id, error = %e, "Kafka mirror failed; the file stays in the backlog.");
            return false;
        }
        if let Err(e) = ledger::mark_mirrored(&self.client, file_id).await {
            warn!(file_id, error = %e, "Mirrored, but cannot record it; the file will be mirrored again.");
            return false;
        }
        true
    }

    /// Mirrors every loaded-but-unmirrored file, oldest first, stopping at the first failure.
    async fn drain_mirror_backlog(&mut self) {
        if self.mirror.is_none() || self.ensure_connected().await.is_err() {
            return;
        }
        let backlog = match ledger::unmirrored(&self.client).await {
            Ok(files) => files,
            Err(e) => {
                warn!(error = %e, "Cannot read the mirror backlog.");
                return;
            }
        };
        if !backlog.is_empty() {
            info!(files = backlog.len(), "Draining the Kafka mirror backlog.");
        }
        for file_id in backlog {
            if !self.mirror_file(file_id).await {
                return;
            }
        }
    }
}

/// A file waiting to be read: when to look at it next, and why it may be complete.
struct Pending {
    hint: Option<Admission>,
    due: Instant,
    delay: Duration,
}

impl Pending {
    fn new(hint: Option<Admission>) -> Pending {
        Pending {
            hint,
            due: Instant::now(),
            delay: Duration::from_millis(250),
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}
