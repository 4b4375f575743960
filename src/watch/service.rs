//! Service mode: notify events, a periodic rescan and retries, until a stop is asked. Decides
//! when each pending file is tried; what happens to a file is [`super::ingest`]'s.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use notify::event::{ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::pending::Pending;
use super::{Outcome, WatchError, Watcher, BUSY_RECHECK};
use crate::landing::{Admission, Readiness};

impl Watcher {
    /// Runs until shutdown.
    pub(super) async fn watch(
        &mut self,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), WatchError> {
        let (tx, mut events) = mpsc::unbounded_channel();
        // A bucket has no events to watch: its listing at every rescan is its discovery.
        let _watcher = match self.landing.local() {
            Some(dir) => {
                let mut watcher = notify::recommended_watcher(move |res| {
                    let _ = tx.send(res);
                })
                .map_err(|source| self.notify_error(source))?;
                watcher
                    .watch(&dir.root, RecursiveMode::NonRecursive)
                    .map_err(|source| self.notify_error(source))?;
                Some(watcher)
            }
            None => None,
        };
        let mut pending: HashMap<PathBuf, Pending> = HashMap::new();
        for path in self.scan().await? {
            pending.insert(path, Pending::new(None));
        }
        info!(files = pending.len(), landing = %self.landing.describe(), "Watching the landing directory.");
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
                    match self.scan().await {
                        Ok(paths) => {
                            for path in paths {
                                pending.entry(path).or_insert_with(|| Pending::new(None));
                            }
                        }
                        // A bucket that does not answer for a while (its files stay where they are).
                        Err(e) => warn!(error = %e, "Cannot list the landing; trying again at the next rescan."),
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
            // Nothing more is due: the last file's acknowledgements are not left waiting for the
            // next file to arrive.
            self.settle_mirror().await;
        }
    }

    async fn try_file(&mut self, path: &Path, pending: &mut HashMap<PathBuf, Pending>) {
        let Some(hint) = pending.get(path).map(|p| p.hint) else {
            return;
        };
        let readiness = self.landing.readiness(path, self.settings.settle).await;
        let admission = match (readiness, hint) {
            // Waiting for its marker (a rescan or the marker's event brings it back), or gone.
            (Readiness::AwaitingMarker | Readiness::Gone, _) => {
                self.lock_wait_over(path);
                pending.remove(path);
                return;
            }
            // Renamed into place: whole already, however fresh its mtime.
            (Readiness::Ready(admission), hint) => hint.unwrap_or(admission),
            (Readiness::SettlesIn(_), Some(hint)) => hint,
            (Readiness::SettlesIn(wait), None) => {
                if let Some(p) = pending.get_mut(path) {
                    p.later(wait);
                }
                return;
            }
        };
        match self.process(path, admission).await {
            Outcome::Busy => {
                if let Some(p) = pending.get_mut(path) {
                    p.later(BUSY_RECHECK);
                }
            }
            // Said once when it got stuck; until it moves, only the move is tried, ever later.
            Outcome::Stuck(_) => {
                if let Some(p) = pending.get_mut(path) {
                    p.retry_later();
                }
            }
            Outcome::Retry(cause) => {
                if let Some(p) = pending.get_mut(path) {
                    let delay = p.retry_later();
                    super::note_retry(path, &cause, delay);
                }
            }
            _ => {
                pending.remove(path);
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
        let Some(landing) = self.landing.local() else {
            return;
        };
        // A marker's arrival makes its data file due.
        let path = match landing.data_file_of_marker(path) {
            Some(data) => data,
            None => path.clone(),
        };
        if !landing.is_candidate(&path) || std::fs::symlink_metadata(&path).is_err() {
            return;
        }
        let hint = (renamed_in && landing.marker(&path).is_none()).then_some(Admission::Renamed);
        let entry = pending.entry(path).or_insert_with(|| Pending::new(hint));
        if hint.is_some() {
            entry.hint = hint;
        }
        entry.due = entry.due.min(Instant::now());
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}
