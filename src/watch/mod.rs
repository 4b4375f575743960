//! The watcher: the only module that knows every stage. This file runs the loops (batch mode,
//! and service mode with notify, a periodic rescan and retries) and decides *when* a file is
//! read; [`ingest`] decides *what happens* to one file; [`relay`] feeds Kafka from Postgres.
//! Each file ends Done (loaded, duplicate or rejected, and moved), Busy (another watcher has
//! it) or Retry (kept in place and tried again later, never lost).

mod ingest;
mod relay;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use notify::event::{ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::{mpsc, watch};
use tokio_postgres::Client;
use tracing::{info, warn};

use crate::config::{redact_url, WatchSettings};
use crate::landing::{self, Admission, LandingDir};
use crate::ledger;
use crate::sink::kafka::{KafkaMirror, MirrorError};
use crate::sink::postgres::{self, LoadError};

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

/// How one attempt at a file ended.
enum Outcome {
    Done,
    /// Another watcher holds the file's claim; look again later.
    Busy,
    /// Nothing was committed; try again later.
    Retry(String),
}

/// Longest wait between two tries of a file while Postgres is away.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);
/// How often a file claimed by another watcher is looked at again.
const BUSY_RECHECK: Duration = Duration::from_millis(500);

struct Watcher {
    settings: WatchSettings,
    landing: LandingDir,
    client: Client,
    mirror: Option<KafkaMirror>,
    /// The lead worker alone drains the mirror backlog, so that no file is relayed twice at once.
    lead: bool,
    stats: RunStats,
}

/// Runs the watcher until `shutdown` turns true (or, with `--once`, until the directory is done).
pub async fn run(
    settings: WatchSettings,
    mut shutdown: watch::Receiver<bool>,
) -> Result<RunStats, WatchError> {
    let started = Instant::now();
    let landing = LandingDir::open(&settings.landing_dir, settings.marker_suffix.clone()).map_err(
        |source| WatchError::Landing {
            path: settings.landing_dir.clone(),
            source,
        },
    )?;
    crate::serve::start(&settings, shutdown.clone()).await; // analytics: serves before Postgres is up.
    info!(database = %redact_url(&settings.database_url), landing = %landing.root.display(), "Connecting to Postgres.");
    // A stop requested while Postgres is still unreachable ends the run at once: nothing is open.
    let mut client = tokio::select! {
        client = postgres::connect_with_retry(&settings.database_url, None) => client?,
        _ = shutdown.wait_for(|stop| *stop) => {
            info!("Shutdown requested before Postgres was reachable.");
            return Ok(RunStats::default());
        }
    };
    postgres::migrate(&mut client).await?;
    match &settings.kafka_brokers {
        Some(brokers) => {
            info!(brokers = %brokers, topic = %settings.kafka_topic, rejected_topic = %settings.kafka_rejected_topic, "Kafka mirror on.");
        }
        None => {
            info!("Kafka mirror off (no KAFKA_BROKERS); loaded files stay in the mirror backlog.");
        }
    }
    // Workers share nothing but the landing directory: each has its own connection and
    // producer, and file claims in Postgres keep them apart as they keep watcher processes apart.
    let mut clients = vec![client];
    for _ in 1..settings.workers {
        clients.push(postgres::connect(&settings.database_url).await?);
    }
    let mut workers = Vec::with_capacity(clients.len());
    for (index, client) in clients.into_iter().enumerate() {
        workers.push(Watcher {
            mirror: new_mirror(&settings)?,
            settings: settings.clone(),
            landing: landing.clone(),
            client,
            lead: index == 0,
            stats: RunStats::default(),
        });
    }
    workers[0].drain_mirror_backlog().await;
    let runs = if settings.once {
        let files = workers[0].scan()?;
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
        workers[0].drain_mirror_backlog().await;
        runs
    } else {
        join_all(workers.iter_mut().map(|w| w.watch(shutdown.clone()))).await
    };
    let mut stats = RunStats::default();
    for w in &workers {
        if let Some(mirror) = &w.mirror {
            mirror.flush(Duration::from_secs(10));
        }
        stats.add(&w.stats);
    }
    runs.into_iter().collect::<Result<(), WatchError>>()?;
    stats.unmirrored_files = ledger::unmirrored(&workers[0].client)
        .await
        .map(|v| v.len() as u64)
        .unwrap_or(0);
    stats.elapsed = started.elapsed();
    Ok(stats)
}

fn new_mirror(settings: &WatchSettings) -> Result<Option<KafkaMirror>, MirrorError> {
    settings
        .kafka_brokers
        .as_deref()
        .map(|brokers| KafkaMirror::new(brokers, settings.kafka_timeout))
        .transpose()
}

impl RunStats {
    fn add(&mut self, other: &RunStats) {
        self.files_loaded += other.files_loaded;
        self.files_duplicate += other.files_duplicate;
        self.files_rejected += other.files_rejected;
        self.rows_total += other.rows_total;
        self.rows_loaded += other.rows_loaded;
        self.rows_rejected += other.rows_rejected;
        self.rows_duplicate += other.rows_duplicate;
    }
}

impl Watcher {
    /// Batch mode: takes files from the shared queue, each once it is complete, until none is
    /// left.
    async fn ingest_once(
        &mut self,
        queue: &Mutex<VecDeque<PathBuf>>,
        progress: &Mutex<crate::progress::Progress>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), WatchError> {
        while let Some(path) = next_file(queue) {
            let mut delay = Duration::from_millis(500);
            loop {
                if *shutdown.borrow_and_update() {
                    return Ok(());
                }
                let admission = match self.admission(&path) {
                    Ok(Some(admission)) => admission,
                    Ok(None) => break, // Marker mode and no marker: not ours to read yet.
                    Err(Some(wait)) => {
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    Err(None) => break, // Gone: another watcher or a user took it.
                };
                match self.process(&path, admission).await {
                    Outcome::Done => break,
                    Outcome::Busy => tokio::time::sleep(BUSY_RECHECK).await,
                    Outcome::Retry(e) => {
                        crate::metrics::error_seen();
                        warn!(file = %path.display(), error = %e, retry_in_ms = delay.as_millis() as u64, "Will retry the file.");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(MAX_RETRY_DELAY);
                    }
                }
            }
            progress.lock().unwrap_or_else(|e| e.into_inner()).inc();
        }
        Ok(())
    }

    /// Whether `path` may be read now and why: `Ok(Some)` yes, `Ok(None)` not until its marker
    /// appears, `Err(Some(wait))` once it settled, `Err(None)` it is gone.
    fn admission(&self, path: &Path) -> Result<Option<Admission>, Option<Duration>> {
        if let Some(marker) = self.landing.marker(path) {
            return Ok(marker.exists().then_some(Admission::Marker));
        }
        match landing::settle_wait(path, self.settings.settle) {
            Ok(None) => Ok(Some(Admission::Settled)),
            Ok(Some(wait)) => Err(Some(wait)),
            Err(_) => Err(None),
        }
    }

    /// Service mode: notify events, a periodic rescan, and retries, until shutdown.
    async fn watch(&mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), WatchError> {
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
        // A rescan that waited on a slow broker must not be followed by a burst of catch-up ones.
        rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                    if self.lead {
                        self.drain_mirror_backlog().await;
                    }
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
        let Some(hint) = pending.get(path).map(|p| p.hint) else {
            return;
        };
        let admission = match (self.admission(path), hint) {
            // Waiting for its marker (a rescan or the marker's event brings it back), or gone.
            (Ok(None) | Err(None), _) => {
                pending.remove(path);
                return;
            }
            // Renamed into place: whole already, however fresh its mtime.
            (Ok(Some(admission)), hint) => hint.unwrap_or(admission),
            (Err(Some(_)), Some(hint)) => hint,
            (Err(Some(wait)), None) => {
                if let Some(p) = pending.get_mut(path) {
                    p.due = Instant::now() + wait;
                }
                return;
            }
        };
        match self.process(path, admission).await {
            Outcome::Done => {
                pending.remove(path);
            }
            Outcome::Busy => {
                if let Some(p) = pending.get_mut(path) {
                    p.due = Instant::now() + BUSY_RECHECK;
                }
            }
            Outcome::Retry(e) => {
                crate::metrics::error_seen();
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
        // A marker's arrival makes its data file due.
        let path = match self.landing.data_file_of_marker(path) {
            Some(data) => data,
            None => path.clone(),
        };
        if !self.landing.is_candidate(&path) || std::fs::symlink_metadata(&path).is_err() {
            return;
        }
        let hint =
            (renamed_in && self.landing.marker(&path).is_none()).then_some(Admission::Renamed);
        let entry = pending.entry(path).or_insert_with(|| Pending::new(hint));
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

fn next_file(queue: &Mutex<VecDeque<PathBuf>>) -> Option<PathBuf> {
    queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}
