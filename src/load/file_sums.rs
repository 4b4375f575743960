//! A file's sums in progress: what its new events add to the derived tables and what the alert
//! checks need of them, folded chunk by chunk on a blocking thread beside the load's COPYs.
//! Owns no connection and no SQL: [`super::file_load`] merges and checks them at commit.

use tokio::task::{spawn_blocking, JoinHandle};

use super::alerts::FileFacts;
use super::derive::{EventFacts, FileDerive, SumError};
use super::LoadError;

/// What a file's new events add up to so far.
#[derive(Default)]
pub(super) struct FileSums {
    /// What they add to the derived tables, merged at commit.
    pub derive: FileDerive,
    /// What the alert checks need of them (prices, hours), judged at commit.
    pub facts: FileFacts,
}

impl FileSums {
    /// Adds the rows of `facts` at `rows` (the rows a chunk inserted).
    pub fn fold(&mut self, facts: &[EventFacts], rows: &[u32]) -> Result<(), SumError> {
        for &row in rows {
            let facts = &facts[row as usize];
            self.derive.fold(facts)?;
            self.facts.fold(facts);
        }
        Ok(())
    }
}

/// A chunk's rows are folded on a blocking thread while the next chunk's COPY runs. Folded in
/// line, between one COPY and the next, they left the server idle: 54 of 805 samples of a
/// one-file load's backend (1,000,000 rows, funnel shape) found it `idle in transaction` after
/// the purchases' COPY. Memory is bounded one chunk later than it was
/// (`FileDerive::bound_memory` sees the sums up to the chunk before).
pub(super) enum Sums {
    Held(Box<FileSums>),
    Folding(JoinHandle<Result<Box<FileSums>, SumError>>),
}

impl Sums {
    /// Folds the rows of `facts` at `rows` into `sums` on a blocking thread.
    pub fn folding(mut sums: Box<FileSums>, facts: Vec<EventFacts>, rows: Vec<u32>) -> Sums {
        Sums::Folding(spawn_blocking(move || {
            sums.fold(&facts, &rows).map(|()| sums)
        }))
    }

    /// The sums, once the fold in flight (if any) has ended.
    pub async fn settled(self) -> Result<Box<FileSums>, LoadError> {
        match self {
            Sums::Held(sums) => Ok(sums),
            // A panic in the fold is a bug: it goes on unwinding here, as it would have in line.
            Sums::Folding(fold) => Ok(fold
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?),
        }
    }
}
