//! shopstream: a file-drop streaming ETL for e-commerce event CSV files.
//!
//! The data's path, one module per stage:
//! `generator` (shopstream-gen) → landing/ → [`landing`] (complete files, identity, archive)
//! → [`transform`] (Polars read + contract validation) → [`sink::postgres`] (one transaction
//! per file, with the [`ledger`]) → [`sink::kafka`] (mirror of committed events).
//! [`watch`] drives the stages; [`config`] and [`schema`] are shared by all. [`metrics`] and
//! [`serve`] (dashboard, /metrics, /healthz, file lifecycle) observe them; [`progress`] shows
//! the binaries' progress.

pub mod config;
pub mod generator;
pub mod landing;
pub mod ledger;
pub mod metrics;
pub mod progress;
pub mod schema;
pub mod serve;
pub mod sink;
pub mod telemetry;
pub mod transform;
pub mod watch;
