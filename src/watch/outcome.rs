//! How one attempt at a file ended, and the run's statistics, counted from those outcomes in
//! one place ([`RunStats::record`]).

use std::time::Duration;

use crate::load::{Counts, LoadError};

/// How one attempt at a file ended. Every variant but `Busy`, `Retry` and `Stuck` is final: the
/// file's fate is in the ledger and the file has left the landing directory.
#[derive(Debug)]
pub enum Outcome {
    /// The file's transaction committed with these counts (a file none of whose rows could be
    /// used is committed too, as `rejected`, with its rows in `rejected_rows`).
    Loaded(Counts),
    /// The same content was loaded before, under this or another name; nothing was loaded.
    Duplicate,
    /// Our own earlier run loaded it but stopped before archiving it; archived now.
    Archived,
    /// Rejected as a whole; nothing of it was loaded.
    Rejected(String),
    /// It is not there any more: another watcher finished it, or a user took it back.
    Gone,
    /// Another watcher holds the file's claim; look again later.
    Busy,
    /// Nothing was committed; try again later.
    Retry(RetryCause),
    /// Its fate is committed but it cannot leave the landing directory (a read-only or full
    /// file system): only the move is tried again later. Carries the fate the first time, so
    /// that it is counted once.
    Stuck(Option<Box<Outcome>>),
}

/// Why a file is tried again later.
#[derive(Debug, thiserror::Error)]
pub enum RetryCause {
    #[error(transparent)]
    Database(#[from] LoadError),
    #[error("the file changed while it was read; it is read again once it settles")]
    Changed,
    #[error("the reading task failed: {0}")]
    Task(String),
}

impl RetryCause {
    /// A collision with a concurrent load of the same event ids is how sharing work ends
    /// sometimes, not a fault: logged at info, not counted as an error.
    pub fn is_fault(&self) -> bool {
        !matches!(self, RetryCause::Database(LoadError::Conflict(_)))
    }
}

impl From<tokio_postgres::Error> for RetryCause {
    fn from(e: tokio_postgres::Error) -> Self {
        RetryCause::Database(e.into())
    }
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
    /// Loaded files Kafka has not acknowledged; `None` when the mirror is off.
    pub unmirrored_files: Option<u64>,
    /// Batch mode: files still in the landing directory because a stop was asked.
    pub files_left: u64,
    /// Batch mode: files whose fate is in the ledger but that could not leave the landing
    /// directory (the next run only moves them).
    pub files_stuck: u64,
    pub elapsed: Duration,
}

impl RunStats {
    /// Counts one attempt's outcome; the only place where run statistics change.
    pub fn record(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Loaded(c) => {
                self.rows_total += c.total as u64;
                self.rows_loaded += c.loaded as u64;
                self.rows_rejected += c.rejected as u64;
                self.rows_duplicate += c.duplicate as u64;
                if c.loaded == 0 && c.duplicate == 0 {
                    self.files_rejected += 1;
                } else {
                    self.files_loaded += 1;
                }
            }
            Outcome::Duplicate => self.files_duplicate += 1,
            Outcome::Rejected(_) => self.files_rejected += 1,
            Outcome::Stuck(Some(fate)) => self.record(fate),
            Outcome::Stuck(None) => {}
            Outcome::Archived | Outcome::Gone | Outcome::Busy | Outcome::Retry(_) => {}
        }
    }

    pub(super) fn add(&mut self, other: &RunStats) {
        self.files_loaded += other.files_loaded;
        self.files_duplicate += other.files_duplicate;
        self.files_rejected += other.files_rejected;
        self.rows_total += other.rows_total;
        self.rows_loaded += other.rows_loaded;
        self.rows_rejected += other.rows_rejected;
        self.rows_duplicate += other.rows_duplicate;
        self.files_stuck += other.files_stuck;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_whose_every_row_broke_the_contract_counts_as_rejected_with_its_rows() {
        let mut stats = RunStats::default();
        let all_bad = Counts {
            total: 3,
            rejected: 3,
            ..Counts::default()
        };
        let good = Counts {
            total: 4,
            loaded: 3,
            duplicate: 1,
            rejected: 0,
            repaired: 0,
            quarantined: 0,
        };
        for o in [
            Outcome::Loaded(all_bad),
            Outcome::Loaded(good),
            Outcome::Duplicate,
            Outcome::Rejected("empty".into()),
            Outcome::Busy,
            Outcome::Archived,
            Outcome::Stuck(Some(Box::new(Outcome::Rejected("read-only".into())))),
            Outcome::Stuck(None),
        ] {
            stats.record(&o);
        }
        assert_eq!(
            (
                stats.files_loaded,
                stats.files_rejected,
                stats.files_duplicate
            ),
            (1, 3, 1)
        );
        assert_eq!(
            (stats.rows_total, stats.rows_loaded, stats.rows_rejected),
            (7, 3, 3)
        );
    }
}
