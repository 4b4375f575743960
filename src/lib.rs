//! shopstream: a file-drop streaming ETL for e-commerce event CSV files.
//!
//! One module per stage of the data's path (ARCHITECTURE.md draws it and gives the
//! exactly-once argument):
//! `generator` (shopstream-gen) → landing/ → [`landing`] (discover, settle, identity, claim,
//! archive) → [`transform`] (reader, header, profiles, mapping, rules) → [`load`] (Postgres:
//! one transaction per file, with the ledger) → [`mirror`] (Kafka, from the outbox after
//! commit). [`watch`] drives the stages; [`serve`] (dashboard, /metrics, /healthz, files)
//! observes them beside the path. Shared by all: [`config`] (one settings struct built once),
//! [`schema`] (the contract's names), [`backoff`], [`metrics`], [`progress`], [`status`] (what
//! the watcher waits for, for /healthz), [`telemetry`].

pub mod backoff;
pub mod config;
pub mod generator;
pub mod landing;
pub mod load;
pub mod metrics;
pub mod mirror;
pub mod progress;
pub mod schema;
pub mod serve;
pub mod status;
pub mod telemetry;
pub mod transform;
pub mod watch;
