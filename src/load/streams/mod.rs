//! The load of a transactions or inventory file: ONE transaction holding its ledger row (the
//! same ledger, content identity and rejected rows as event files, through [`super::ledger`]
//! and [`super::file_load`]'s helpers), its new rows and, for inventory, the stock levels they
//! move. Beside the event load, never inside it: events, purchases and their derive are not
//! touched. Never reads or moves files and never talks to Kafka.

mod inventory;
mod transactions;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Transaction};

use super::alerts::{self, AlertRules};
use super::file_load::{copy_rejected_rows, lock_timeout_setting};
use super::ledger::{self, Counts, FileRecord};
use super::LoadError;
use crate::transform::streams::{StreamFile, StreamRows};

/// How starting a stream file's load ended.
pub enum StreamBegun<'a> {
    Started(StreamLoad<'a>),
    /// Another transaction holds or committed the same content; nothing was written.
    SameContent,
}

/// A stream file's load in progress; nothing is visible to others until
/// [`StreamLoad::commit`], and dropping it leaves no trace.
pub struct StreamLoad<'a> {
    tx: Transaction<'a>,
    file_id: i64,
    counts: Counts,
}

impl<'a> StreamLoad<'a> {
    /// Opens the transaction and inserts the file's ledger row.
    ///
    /// # Errors
    /// As [`super::FileLoad::begin`]: `Unavailable`, `LockTimeout` or `Refused`.
    pub async fn begin(
        client: &'a mut Client,
        file: &FileRecord,
    ) -> Result<StreamBegun<'a>, LoadError> {
        let tx = client.transaction().await?;
        tx.batch_execute(&lock_timeout_setting()).await?;
        match ledger::insert_loading(&tx, file).await {
            Ok(file_id) => Ok(StreamBegun::Started(StreamLoad {
                tx,
                file_id,
                counts: Counts::default(),
            })),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(StreamBegun::SameContent),
            Err(e) => Err(e.into()),
        }
    }

    /// Inserts the file's new rows (those whose keys are loaded already count as duplicates)
    /// and its rejected rows; an inventory file's stock levels are then checked for
    /// `low_stock` alerts, which commit with it.
    ///
    /// # Errors
    /// `Unavailable`, `LockTimeout`, `Conflict` (a deadlock with a concurrent load of the same
    /// stock levels: read the file again) or `Refused`.
    pub async fn add(&mut self, file: &StreamFile, rules: &AlertRules) -> Result<(), LoadError> {
        let (rows, loaded) = match &file.rows {
            StreamRows::Transactions(t) => {
                let rows: usize = t.iter().map(|t| t.items.len()).sum();
                (rows, transactions::insert(&self.tx, self.file_id, t).await)
            }
            StreamRows::Inventory(u) => {
                let loaded = match inventory::insert(&self.tx, self.file_id, u).await {
                    Ok(n) => alerts::check_stock(&self.tx, self.file_id, u, rules)
                        .await
                        .map(|_| n),
                    Err(e) => Err(e),
                };
                (u.len(), loaded)
            }
        };
        let loaded = loaded.map_err(|e| match e.code() {
            Some(&SqlState::T_R_DEADLOCK_DETECTED) => LoadError::Conflict(e),
            _ => e.into(),
        })? as i64;
        copy_rejected_rows(&self.tx, self.file_id, &file.rejects).await?;
        self.counts = Counts {
            total: file.rows_total as i64,
            loaded,
            duplicate: rows as i64 - loaded,
            rejected: file.rejects.len() as i64,
            ..Counts::default()
        };
        Ok(())
    }

    /// Rows seen: total, loaded, duplicate and rejected.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Finishes the ledger row and commits; returns the file's id and counts.
    pub async fn commit(self) -> Result<(i64, Counts), LoadError> {
        ledger::finish_loading(&self.tx, self.file_id, &self.counts).await?;
        self.tx.commit().await?;
        Ok((self.file_id, self.counts))
    }

    /// Abandons the load; nothing of it stays.
    pub async fn rollback(self) -> Result<(), LoadError> {
        self.tx.rollback().await?;
        Ok(())
    }
}
