//! The seeds' other streams: transaction line items and inventory updates (README: "The
//! transactions contract", "The inventory contract"). A file whose header names one of them is
//! read here instead of by the event reader: whole (these files are small beside clickstream),
//! split quote-aware by [`records`](super::records), checked row by row and, for transactions,
//! transaction by transaction. Pure: the watcher hands it the file's bytes (from a directory or
//! a bucket, decompressed); never touches the event path's reader, mapping or rules.

mod inventory;
mod profile;
mod transactions;
mod values;

use std::collections::HashMap;

use super::profile::ResolvedWindow;
use super::records::{self, Record, RecordSplitter};
use super::{FileError, Limits, RejectedRow};

pub use inventory::{InventoryUpdate, INVENTORY_COLUMNS, INVENTORY_ID_NAMESPACE};
pub(crate) use profile::is_stream_profile;
pub use profile::StreamProfile;
pub use transactions::{Item, Transaction, TRANSACTION_COLUMNS};
pub use values::{amount, show_units, Amount};

/// A stream other than clickstream events, chosen by the file's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Transactions,
    Inventory,
}

impl Stream {
    /// The name the ledger records as the file's profile, and the README's.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Transactions => "transactions",
            Stream::Inventory => "inventory",
        }
    }

    /// Columns a header must name to be this stream's.
    fn required(self) -> &'static [&'static str] {
        match self {
            Stream::Transactions => transactions::REQUIRED,
            Stream::Inventory => inventory::REQUIRED,
        }
    }

    /// Columns that alone say the file means to be this stream (then the rest must be there).
    fn marks(self) -> &'static [&'static str] {
        match self {
            Stream::Transactions => &["transaction_id", "item_total"],
            Stream::Inventory => &["stock_change", "current_stock"],
        }
    }
}

/// The good rows of a stream file.
#[derive(Debug)]
pub enum StreamRows {
    Transactions(Vec<Transaction>),
    Inventory(Vec<InventoryUpdate>),
}

/// A stream file read and checked: its good rows and its explained rejects.
#[derive(Debug)]
pub struct StreamFile {
    pub stream: Stream,
    /// The header as written, the first line of `rejected/<file>.rejected.csv`.
    pub header_raw: String,
    pub delimiter: u8,
    /// Data rows (blank lines are not rows).
    pub rows_total: u64,
    pub rows: StreamRows,
    /// In line order.
    pub rejects: Vec<RejectedRow>,
}

/// Which stream a header line belongs to: `None` for none (an event file), else the stream
/// and the required columns it lacks.
pub fn sniff(header: &str) -> Option<(Stream, Vec<&'static str>)> {
    let (names, _) = header_names(header);
    [Stream::Transactions, Stream::Inventory]
        .into_iter()
        .find(|s| s.marks().iter().all(|m| names.iter().any(|n| n == m)))
        .map(|s| {
            let missing = s
                .required()
                .iter()
                .filter(|r| !names.iter().any(|n| n == *r))
                .copied()
                .collect();
            (s, missing)
        })
}

/// The first line of a file whose first bytes are `head`, if it is text.
pub fn first_line(head: &[u8]) -> Option<String> {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    std::str::from_utf8(&head[..end])
        .ok()
        .map(|l| l.trim_end_matches('\r').to_string())
}

/// Names (trimmed, unquoted, lowercased) and the delimiter: `;` when it splits the header into
/// more columns than `,` does, as for events.
fn header_names(raw: &str) -> (Vec<String>, u8) {
    header_names_with(raw, None)
}

/// As [`header_names`], with the delimiter `fixed` when a profile fixes it.
fn header_names_with(raw: &str, fixed: Option<u8>) -> (Vec<String>, u8) {
    let delimiter = fixed.unwrap_or(if raw.matches(';').count() > raw.matches(',').count() {
        b';'
    } else {
        b','
    });
    let names = records::fields(raw, delimiter as char)
        .into_iter()
        .map(|n| n.to_lowercase())
        .collect();
    (names, delimiter)
}

/// One data row: its line, its text as written and its fields by column name.
pub(super) struct Row<'a> {
    pub line: u64,
    pub raw: &'a str,
    fields: Vec<String>,
    columns: &'a HashMap<String, usize>,
    /// A reason the row's stream profile found while mapping it (column, reason): the
    /// contract's check rejects the row with it first.
    pub pre: Option<(&'static str, String)>,
}

impl Row<'_> {
    /// The trimmed value of `column`; `None` when empty or the header lacks the column.
    pub fn get(&self, column: &str) -> Option<&str> {
        let at = *self.columns.get(column)?;
        self.fields
            .get(at)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Replaces the value of `column` (a stream profile's mapping; the layout has every one).
    pub fn set(&mut self, column: &str, value: String) {
        if let Some(field) = self
            .columns
            .get(column)
            .and_then(|&at| self.fields.get_mut(at))
        {
            *field = value;
        }
    }

    /// Whether the header names `column`.
    pub fn has(&self, column: &str) -> bool {
        self.columns.contains_key(column)
    }

    pub fn reject(&self, column: &str, reason: impl Into<String>) -> RejectedRow {
        RejectedRow {
            line: self.line,
            column: Some(column.to_string()),
            reason: reason.into(),
            raw: self.raw.to_string(),
        }
    }
}

/// The stream profile of `profiles` that reads the most columns of a header line, if any fits
/// (a tie goes to the first in file-name order).
pub fn profile_for<'p>(
    header: &str,
    profiles: &'p [std::sync::Arc<StreamProfile>],
) -> Option<&'p std::sync::Arc<StreamProfile>> {
    let mut best: Option<(usize, &std::sync::Arc<StreamProfile>)> = None;
    for p in profiles {
        let (names, _) = header_names_with(header, p.delimiter());
        if let Some(n) = p.claims(&names) {
            if best.is_none_or(|(b, _)| n > b) {
                best = Some((n, p));
            }
        }
    }
    best.map(|(_, p)| p)
}

/// Checks a whole stream file, its bytes (decompressed) read by the caller: in its contract's
/// own layout, or through `profile`.
///
/// # Errors
/// A file that is empty, header-only, not UTF-8, binary, has a line over the limit, or lacks
/// a required column of its stream.
pub(crate) fn read(
    bytes: &[u8],
    limits: Limits,
    window: &ResolvedWindow,
    profile: Option<&StreamProfile>,
) -> Result<StreamFile, FileError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // The delimiter first: the splitter skips lines of only delimiters (Excel's empty rows).
    let head_end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let fixed = profile.and_then(StreamProfile::delimiter);
    let (_, delimiter) = header_names_with(&String::from_utf8_lossy(&bytes[..head_end]), fixed);
    let mut records = Vec::new();
    RecordSplitter::new(delimiter, 1).split(bytes, true, &mut records);
    let text = |r: &Record| record_text(bytes, r, limits);
    let Some(first) = records.first() else {
        return Err(FileError::Empty);
    };
    let header_raw = text(first)?.to_string();
    let (names, _) = header_names_with(&header_raw, fixed);
    let sniffed = match profile {
        Some(p) => p.claims(&names).map(|_| (Stream::Transactions, Vec::new())),
        None => sniff(&header_raw),
    };
    let Some((stream, missing)) = sniffed else {
        return Err(FileError::Parse {
            line: 1,
            message: "the header is of no stream contract".into(),
        });
    };
    if !missing.is_empty() {
        return Err(FileError::MissingColumns {
            stream: stream.name(),
            missing: missing.iter().map(ToString::to_string).collect(),
        });
    }
    if records.len() == 1 {
        return Err(FileError::HeaderOnly);
    }
    let columns: HashMap<String, usize> = match profile {
        Some(p) => p.layout(&names),
        None => names
            .iter()
            .enumerate()
            .filter(|(_, n)| !n.is_empty())
            .map(|(i, n)| (n.clone(), i))
            .collect(),
    };
    let width = columns.values().max().map_or(0, |m| m + 1).max(names.len());
    let mut rows = Vec::with_capacity(records.len() - 1);
    let mut rejects = Vec::new();
    for r in &records[1..] {
        let raw = text(r)?;
        let reject = |reason: String| RejectedRow {
            line: r.line,
            column: None,
            reason,
            raw: raw.to_string(),
        };
        if r.open_quote {
            rejects.push(reject("ends inside an open quote".into()));
            continue;
        }
        if r.lone_cr {
            rejects.push(reject(
                "holds a carriage return (CR) without a line feed; save the file with LF or \
                 CRLF line ends"
                    .into(),
            ));
            continue;
        }
        let mut fields = records::fields(raw, delimiter as char);
        if fields.len() != names.len() {
            rejects.push(reject(format!(
                "has {} fields, the header has {}",
                fields.len(),
                names.len()
            )));
            continue;
        }
        fields.resize(width, String::new());
        rows.push(Row {
            line: r.line,
            raw,
            fields,
            columns: &columns,
            pre: None,
        });
    }
    if let Some(p) = profile {
        p.fill(&mut rows);
    }
    let rows_total = (records.len() - 1) as u64;
    let rows = match stream {
        Stream::Transactions => {
            StreamRows::Transactions(transactions::check(&rows, window, &mut rejects))
        }
        Stream::Inventory => StreamRows::Inventory(inventory::check(&rows, window, &mut rejects)),
    };
    rejects.sort_by_key(|r| r.line);
    if let Some(p) = profile {
        // Rejects name the column as the file does.
        let written = records::fields(&header_raw, delimiter as char);
        for r in &mut rejects {
            if let Some(source) = r.column.as_deref().and_then(|c| p.source_of(c, &written)) {
                r.column = Some(source.to_string());
            }
        }
    }
    Ok(StreamFile {
        stream,
        header_raw,
        delimiter,
        rows_total,
        rows,
        rejects,
    })
}

/// A record's text: within the line limit, without NUL bytes, UTF-8.
fn record_text<'a>(bytes: &'a [u8], r: &Record, limits: Limits) -> Result<&'a str, FileError> {
    let raw = &bytes[r.start..r.end];
    if raw.len() > limits.max_line_bytes {
        return Err(FileError::LineTooLong {
            line: r.line,
            limit: limits.max_line_bytes,
        });
    }
    if raw.contains(&0) {
        return Err(FileError::Binary { line: r.line });
    }
    std::str::from_utf8(raw).map_err(|e| FileError::NotUtf8 {
        line: r.line,
        offset: (r.start + e.valid_up_to()) as u64,
    })
}

#[cfg(test)]
mod tests;
