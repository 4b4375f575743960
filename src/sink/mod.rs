//! Sinks: where transformed rows go. PostgreSQL is the system of record (one transaction per
//! file); Kafka is a mirror fed from Postgres after commit. Neither reads or moves files.

pub mod binary;
pub mod kafka;
pub mod postgres;
