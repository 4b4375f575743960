//! Load: PostgreSQL, the system of record. [`connect`] opens connections and applies the
//! `sql/` migrations, [`encode`] turns a chunk's good rows into binary COPY tuples (with
//! [`binary`] for `numeric` and `jsonb`), [`file_load`] loads one file in ONE transaction (with
//! [`derive`] for what its new events add to purchases, hourly stats and analytics),
//! [`ledger`] is the file ledger (`streaming.ingest_files`) that makes it exactly-once,
//! [`locks`] bounds how long a load waits for another session's lock, and [`partitions`] keeps
//! the daily partitions of events and purchases (created ahead, retained); [`streams`] loads
//! transactions and inventory files beside the event load. [`alerts`] runs the data-quality
//! checks inside each file's transaction, just before its commit.
//! Never reads or moves files and never talks to Kafka.

pub mod alerts;
pub mod binary;
mod connect;
mod derive;
mod encode;
mod error;
mod file_load;
pub mod ledger;
mod locks;
mod partitions;
mod streams;

pub use alerts::AlertRules;
pub use connect::{connect, connect_with_retry, migrate};
pub use encode::{encode_events, EncodedEvents};
pub use error::{describe, LoadError};
pub use file_load::{record_quarantine, Begun, FileLoad, Spent};
pub use ledger::{Counts, FileRecord, LoadedFile};
pub use locks::{lock_holder, LOCK_TIMEOUT};
pub use partitions::{
    drop_days_before, retention_horizon, warn_on_stock_settings, Partitions, Retained,
};
pub use streams::{StreamBegun, StreamLoad};
