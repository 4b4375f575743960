//! Load: PostgreSQL, the system of record. [`connect`] opens connections and applies the
//! `sql/` migrations, [`encode`] turns a chunk's good rows into binary COPY tuples (with
//! [`binary`] for `numeric` and `jsonb`), [`file_load`] loads one file in ONE transaction, and
//! [`ledger`] is the file ledger (`streaming.ingest_files`) that makes it exactly-once, and
//! [`partitions`] keeps the daily partitions of events and purchases (created ahead, retained).
//! Never reads or moves files and never talks to Kafka.

pub mod binary;
mod connect;
mod encode;
mod error;
mod file_load;
pub mod ledger;
mod partitions;

pub use connect::{connect, connect_with_retry, migrate};
pub use encode::{encode_events, EncodedEvents};
pub use error::LoadError;
pub use file_load::{record_quarantine, Begun, FileLoad, Spent};
pub use ledger::{Counts, FileRecord, LoadedFile};
pub use partitions::{
    drop_days_before, retention_horizon, warn_on_stock_settings, Partitions, Retained,
};
