//! The header line: names, delimiter, the source profile it chooses and the columns that
//! profile leaves to `events.extra`. Decides how every later record of the file is read.

use std::sync::Arc;

use super::extra::ExtraColumn;
use super::mapping::{self, Plan};
use super::profile::{Detection, Profiles, ResolvedWindow};
use super::records::{self, Record};
use super::FileError;
use crate::schema::{COLUMNS, SEARCH_QUERY};

/// The header of a file: its column names (trimmed, unquoted) and delimiter.
#[derive(Debug, Clone)]
pub struct Header {
    /// As written, without BOM or line ending; the first line of `rejected/<file>.rejected.csv`.
    pub raw: String,
    /// Trimmed, unquoted and lowercased, in file order.
    pub names: Vec<String>,
    pub delimiter: u8,
    /// The columns the profile does not read, kept per row in `EXTRA`.
    pub extra: Vec<ExtraColumn>,
    /// Name of the source profile the header chose (recorded in the ledger).
    pub profile: String,
    /// How rows are mapped onto the contract; `None` when the profile is the contract itself.
    pub(super) plan: Option<Arc<Plan>>,
    /// Name in the frame of each column, in file order: the contract's name, or the extra
    /// column's internal name.
    pub(super) columns: Vec<String>,
    /// Plausible event times, resolved against the clock when the file was opened.
    pub(super) window: ResolvedWindow,
}

/// Reads the header record: names trimmed and unquoted, the BOM dropped, the delimiter guessed
/// (`;` when it splits the header into more columns than `,` does, unless the profile fixes
/// it), and the source profile chosen.
pub(super) fn parse_header(
    bytes: &[u8],
    first: Record,
    profiles: &Profiles,
) -> Result<Header, FileError> {
    let raw_bytes = &bytes[first.start..first.end];
    let raw_bytes = raw_bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw_bytes);
    if raw_bytes.contains(&0) {
        return Err(FileError::Binary { line: first.line });
    }
    let raw = std::str::from_utf8(raw_bytes)
        .map_err(|e| FileError::NotUtf8 {
            line: first.line,
            offset: (first.start + e.valid_up_to()) as u64,
        })?
        .to_string();
    let delimiter = if raw.matches(';').count() > raw.matches(',').count() {
        b';'
    } else {
        b','
    };
    check_duplicates(&records::fields(&raw, delimiter as char))?;
    let detected = match profiles.detect(&raw, delimiter) {
        Detection::Found(detected) => detected,
        Detection::Ambiguous(names) => return Err(FileError::AmbiguousProfile { names }),
        Detection::NoFit(misses) => return Err(FileError::NoProfile { misses }),
    };
    let written = detected.written;
    let names = check_duplicates(&written)?;
    let profile = detected.profile;
    let as_is = profile.is_contract_itself();
    let mut extra = Vec::new();
    let mut columns = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        // A native file may carry `search_query` (the contract's column for searches).
        if as_is && (COLUMNS.contains(&name.as_str()) || name == SEARCH_QUERY) {
            columns.push(name.clone());
        } else if !as_is && Plan::reads(&profile, name) {
            columns.push(mapping::source_column(i));
        } else {
            let x = ExtraColumn::new(i, &written[i]);
            columns.push(x.column.clone());
            extra.push(x);
        }
    }
    let window = profile
        .window
        .unwrap_or(profiles.window)
        .resolve(chrono::Utc::now());
    Ok(Header {
        window,
        raw,
        delimiter: detected.delimiter,
        extra,
        columns,
        profile: profile.name.clone(),
        plan: (!as_is).then(|| Arc::new(Plan::new(profile, &names, &written))),
        names,
    })
}

/// Lowercases header names; a name written twice is an error.
fn check_duplicates(written: &[String]) -> Result<Vec<String>, FileError> {
    let names: Vec<String> = written.iter().map(|n| n.to_lowercase()).collect();
    for (i, name) in names.iter().enumerate() {
        // Unnamed columns (Excel's trailing `,,`) may repeat; they are told apart by position.
        if !name.is_empty() && names[..i].contains(name) {
            return Err(FileError::DuplicateColumn(name.clone()));
        }
    }
    Ok(names)
}
