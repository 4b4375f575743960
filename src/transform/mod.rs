//! Transform: the bytes of one complete file → a stream of `Batch`es of typed good rows and
//! explained rejects, read in bounded chunks so memory does not grow with the file.
//! [`reader`] buffers and splits the file ([`records`], quote-aware), [`header`] chooses the
//! source [`profile`], [`chunk`] parses each chunk with Polars under an all-text schema (no
//! inference), [`mapping`] maps it onto the contract and [`rules`] checks the contract
//! (ARCHITECTURE.md, "The native CSV contract").
//! Pure apart from reading the one file it is given: no database, no Kafka, no file moves.

mod chunk;
mod compression;
mod derived_id;
mod error;
mod extra;
#[cfg(test)]
mod fuzz;
mod header;
mod mapping;
pub mod profile;
mod reader;
pub mod records;
mod rejects;
mod repair;
mod rules;
pub mod streams;
#[cfg(test)]
mod tests;
mod text;

pub use compression::{decompressed, Compression, CorruptArchive};
pub use error::FileError;
pub use extra::{ExtraColumn, EXTRA};
pub use header::Header;
pub use mapping::EVENT_ID_NAMESPACE;
pub use profile::{Miss, Profile, ProfileError, Profiles, TimeWindow, WindowError};
pub use reader::FileReader;
pub use rejects::rejects_csv_lines;
pub use repair::RowWarning;
pub use rules::{all_reasons, QUANTITY, TIME};

use polars::prelude::DataFrame;

/// Name of the 1-based source line number column of every good-rows frame.
pub const LINE: &str = "__line";

/// How much of a file is read, parsed and loaded at a time. Bounds memory whatever the file size.
pub const CHUNK_BYTES: usize = 8 << 20;

/// Whole-file limits; a file that breaks one is rejected as a whole.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest record accepted, in bytes.
    pub max_line_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_bytes: 1 << 20,
        }
    }
}

/// One row that broke the contract, with where and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedRow {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    pub column: Option<String>,
    pub reason: String,
    pub raw: String,
}

/// The outcome of transforming one chunk of a file.
#[derive(Debug)]
pub struct Batch {
    /// Data rows in this chunk (blank lines are not rows).
    pub rows_total: u64,
    /// Good rows: the contract's columns and `KEPT_COLUMNS` (trimmed text, empty → null) plus
    /// typed `TIME` and `QUANTITY`, `EXTRA` and the `LINE` number.
    pub good: DataFrame,
    pub rejects: Vec<RejectedRow>,
    /// Damaged optional values of good rows (set NULL there), in line order.
    pub warnings: Vec<RowWarning>,
}

/// Transforms a whole file held in memory; for tests and small inputs.
///
/// # Errors
/// As [`FileReader::open`] and [`FileReader::next_batch`].
pub fn transform_all(bytes: &[u8]) -> Result<(Header, Vec<Batch>), FileError> {
    transform_all_with(bytes, &Profiles::default())
}

/// As [`transform_all`], with the given source profiles.
///
/// # Errors
/// As [`FileReader::open_with`] and [`FileReader::next_batch`].
pub fn transform_all_with(
    bytes: &[u8],
    profiles: &Profiles,
) -> Result<(Header, Vec<Batch>), FileError> {
    let mut reader = FileReader::open_with(bytes, Limits::default(), profiles)?;
    let mut batches = Vec::new();
    while let Some(batch) = reader.next_batch()? {
        batches.push(batch);
    }
    Ok((reader.header().clone(), batches))
}
