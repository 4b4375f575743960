//! Batch mode (`--once`): the files in the landing directory at start, shared by the workers
//! through one queue, each read once it is complete, until none is left or a stop is asked. A
//! file another watcher holds goes to the back of the queue.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;

use tokio::sync::watch;

use super::{Outcome, WatchError, Watcher, BUSY_RECHECK};
use crate::landing::Readiness;
use crate::progress::Progress;

/// Moves tried again before a batch leaves a stuck file in place (0.5 s, 1 s, 2 s apart).
const STUCK_MOVE_TRIES: u32 = 3;

impl Watcher {
    /// Takes files from the shared queue, each once it is complete, until none is left.
    pub(super) async fn ingest_once(
        &mut self,
        queue: &Mutex<VecDeque<PathBuf>>,
        progress: &Mutex<Progress>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), WatchError> {
        // Files in a row found claimed by another watcher; once every file left was, wait.
        let mut busy_in_a_row = 0;
        while let Some(path) = next_file(queue) {
            let mut backoff = super::retry_backoff();
            let mut move_tries = 0;
            let mut busy = false;
            loop {
                if *shutdown.borrow_and_update() {
                    // Left for the next run; the run's summary counts it as not done.
                    queue
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_front(path);
                    return Ok(());
                }
                let admission = match self.landing.readiness(&path, self.settings.settle).await {
                    Readiness::Ready(admission) => admission,
                    // Not ours to read yet, or taken by another watcher or a user.
                    Readiness::AwaitingMarker | Readiness::Gone => break,
                    Readiness::SettlesIn(wait) => {
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                };
                match self.process(&path, admission).await {
                    // Another watcher reads it: go on with the next file and come back to this
                    // one, so that watchers listing the same files spread over them instead of
                    // queueing behind each other on the same one.
                    Outcome::Busy => {
                        busy = true;
                        break;
                    }
                    // A batch does not wait long for a read-only or full disk: the file's fate
                    // is committed, and the next run only moves it.
                    Outcome::Stuck(_) if move_tries < STUCK_MOVE_TRIES => {
                        move_tries += 1;
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                    Outcome::Stuck(_) => {
                        self.stats.files_stuck += 1;
                        break;
                    }
                    Outcome::Retry(cause) => {
                        let delay = backoff.next_delay();
                        super::note_retry(&path, &cause, delay);
                        tokio::time::sleep(delay).await;
                    }
                    _ => break,
                }
            }
            if busy {
                let left = {
                    let mut queue = queue.lock().unwrap_or_else(|e| e.into_inner());
                    queue.push_back(path);
                    queue.len()
                };
                busy_in_a_row += 1;
                if busy_in_a_row >= left {
                    busy_in_a_row = 0;
                    tokio::time::sleep(BUSY_RECHECK).await;
                }
                continue;
            }
            busy_in_a_row = 0;
            progress.lock().unwrap_or_else(|e| e.into_inner()).inc();
        }
        Ok(())
    }
}

fn next_file(queue: &Mutex<VecDeque<PathBuf>>) -> Option<PathBuf> {
    queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
}
