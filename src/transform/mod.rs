//! Transform: the bytes of one complete file → a stream of `Batch`es of typed good rows and
//! explained rejects, read in bounded chunks so memory does not grow with the file. Records are
//! split quote-aware ([`records`]), parsed by Polars under an explicit all-text schema (no
//! inference), mapped onto the contract by the source profile the header chose ([`profile`],
//! [`mapping`]), and checked against the contract of DESIGN.md ([`rules`]).
//! Pure apart from reading the one file it is given: no database, no Kafka, no file moves.

mod extra;
#[cfg(test)]
mod fuzz;
mod mapping;
pub mod profile;
pub mod records;
mod rules;

use std::io::{Cursor, Read};
use std::sync::Arc;

use polars::prelude::*;

use crate::schema::{COLUMNS, KEPT_COLUMNS};
pub use extra::{ExtraColumn, EXTRA};
use mapping::Plan;
pub use mapping::EVENT_ID_NAMESPACE;
pub use profile::{Miss, Profile, ProfileError, Profiles};
use records::{Record, RecordSplitter};
pub use rules::{all_reasons, QUANTITY, TIME};

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

/// Problems with a file as a whole; the file is rejected and nothing of it is loaded.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the file is empty (no header, no rows)")]
    Empty,
    #[error("the file has a header but no rows")]
    HeaderOnly,
    #[error(
        "the file is not UTF-8 text: invalid byte at line {line}, byte offset {offset}; \
         save it as UTF-8 (in Excel: \"CSV UTF-8\")"
    )]
    NotUtf8 { line: u64, offset: u64 },
    #[error("the file holds binary data (a NUL byte at line {line}), not CSV text")]
    Binary { line: u64 },
    #[error(
        "line {line} is longer than the limit of {limit} bytes (--max-line-bytes); \
         is this really a CSV file?"
    )]
    LineTooLong { line: u64, limit: usize },
    #[error(
        "the first line is not the header of any source profile (a file needs a header line \
         naming its columns); profiles tried: {}",
        .misses.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    NoProfile { misses: Vec<Miss> },
    #[error(
        "the header fits source profiles {} equally well; make one of them name more of \
         the file's columns",
        .names.join(" and ")
    )]
    AmbiguousProfile { names: Vec<String> },
    #[error("the header names column {0:?} twice")]
    DuplicateColumn(String),
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the CSV cannot be parsed near line {line}: {message}")]
    Parse { line: u64, message: String },
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
}

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
    plan: Option<Arc<Plan>>,
    /// Name in the frame of each column, in file order: the contract's name, or the extra
    /// column's internal name.
    columns: Vec<String>,
}

/// Reads one file chunk by chunk. Construct with [`FileReader::open`], then call
/// [`FileReader::next_batch`] until it returns `None`.
pub struct FileReader<R> {
    source: R,
    limits: Limits,
    header: Header,
    splitter: RecordSplitter,
    /// Bytes read but not yet split into records (an unfinished record).
    pending: Vec<u8>,
    /// File offset of `pending[0]`, for error messages.
    offset: u64,
    at_eof: bool,
    rows_seen: u64,
    /// Bytes read ahead per chunk; `CHUNK_BYTES` unless a test shrinks it.
    chunk_bytes: usize,
}

impl<R: Read> FileReader<R> {
    /// [`FileReader::open_with`] the built-in source profiles.
    ///
    /// # Errors
    /// As [`FileReader::open_with`].
    pub fn open(source: R, limits: Limits) -> Result<FileReader<R>, FileError> {
        FileReader::open_with(source, limits, &Profiles::default())
    }

    /// Reads up to and including the header and chooses the source profile that fits it.
    ///
    /// # Errors
    /// `Empty`, `NoProfile`, `AmbiguousProfile`, `DuplicateColumn`, `NotUtf8`, `Binary`,
    /// `LineTooLong` or `Io`.
    pub fn open_with(
        mut source: R,
        limits: Limits,
        profiles: &Profiles,
    ) -> Result<FileReader<R>, FileError> {
        let mut pending = Vec::new();
        let mut at_eof = false;
        let mut found = Vec::new();
        let mut bom = 0;
        loop {
            at_eof = at_eof || fill(&mut source, &mut pending, 64 << 10)?;
            if bom == 0 && pending.starts_with(b"\xEF\xBB\xBF") {
                // A UTF-8 byte order mark (Excel's "CSV UTF-8") is not part of the header.
                pending.drain(..3);
                bom = 3;
            }
            found.clear();
            // The header is the first record that is not blank.
            RecordSplitter::new(b',', 1).split(&pending, at_eof, &mut found);
            if let Some(first) = found.first().copied() {
                let header = parse_header(&pending, first, profiles)?;
                let rest = skip_line_ending(&pending, first.end);
                let lines_used = pending[..rest].iter().filter(|&&b| b == b'\n').count() as u64;
                pending.drain(..rest);
                return Ok(FileReader {
                    source,
                    limits,
                    splitter: RecordSplitter::new(header.delimiter, 1 + lines_used),
                    header,
                    pending,
                    offset: (bom + rest) as u64,
                    at_eof,
                    rows_seen: 0,
                    chunk_bytes: CHUNK_BYTES,
                });
            }
            if at_eof {
                return Err(FileError::Empty);
            }
            if pending.len() > limits.max_line_bytes {
                return Err(FileError::LineTooLong {
                    line: 1,
                    limit: limits.max_line_bytes,
                });
            }
        }
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Reads ahead `bytes` at a time instead of `CHUNK_BYTES`: tests use tiny chunks to put
    /// chunk boundaries everywhere.
    pub fn with_chunk_bytes(mut self, bytes: usize) -> Self {
        self.chunk_bytes = bytes.max(1);
        self
    }

    /// The next chunk of rows, or `None` after the last one.
    ///
    /// # Errors
    /// A `FileError` when the file turns out to be unusable as a whole (`HeaderOnly` when it has
    /// no rows at all); batches returned before stay valid, but the file should not be loaded.
    pub fn next_batch(&mut self) -> Result<Option<Batch>, FileError> {
        let mut records = Vec::new();
        let used = loop {
            if !self.at_eof && self.pending.len() < self.chunk_bytes {
                self.at_eof = fill(&mut self.source, &mut self.pending, self.chunk_bytes)?;
            }
            records.clear();
            let used = self
                .splitter
                .split(&self.pending, self.at_eof, &mut records);
            if !records.is_empty() || self.at_eof {
                break used;
            }
            if self.pending.len() > self.limits.max_line_bytes {
                return Err(FileError::LineTooLong {
                    line: self.splitter.next_line(),
                    limit: self.limits.max_line_bytes,
                });
            }
            // One record longer than a chunk: read on until it ends.
            self.at_eof = fill(&mut self.source, &mut self.pending, self.chunk_bytes)?;
        };
        if records.is_empty() {
            return if self.rows_seen == 0 {
                Err(FileError::HeaderOnly)
            } else {
                Ok(None)
            };
        }
        let chunk = &self.pending[..used];
        check_text(chunk, &records, self.offset)?;
        if let Some(r) = records
            .iter()
            .find(|r| r.end - r.start > self.limits.max_line_bytes)
        {
            return Err(FileError::LineTooLong {
                line: r.line,
                limit: self.limits.max_line_bytes,
            });
        }
        let batch = transform_chunk(&self.header, chunk, &records)?;
        self.rows_seen += batch.rows_total;
        self.pending.drain(..used);
        self.offset += used as u64;
        Ok(Some(batch))
    }
}

/// Reads until `buf` grew by `want` bytes or the source ended; returns true at end of file.
fn fill(source: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> std::io::Result<bool> {
    let target = buf.len() + want;
    let mut block = [0u8; 64 << 10];
    while buf.len() < target {
        match source.read(&mut block) {
            Ok(0) => return Ok(true),
            Ok(n) => buf.extend_from_slice(&block[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

fn skip_line_ending(bytes: &[u8], mut at: usize) -> usize {
    if bytes.get(at) == Some(&b'\r') {
        at += 1;
    }
    if bytes.get(at) == Some(&b'\n') {
        at += 1;
    }
    at
}

/// Text checks of a chunk: UTF-8 throughout and no NUL bytes (binary files).
fn check_text(chunk: &[u8], records: &[Record], offset: u64) -> Result<(), FileError> {
    // Every invalid byte is in a record (blank lines hold only spaces and delimiters).
    let first = records.first().map_or(0, |r| r.start);
    let line_at = |pos: usize| {
        let before = &chunk[first..pos.max(first)];
        records.first().map_or(1, |r| r.line)
            + before.iter().filter(|&&b| b == b'\n').count() as u64
    };
    // The first problem in the file is reported, whichever kind, however the file is chunked.
    let nul = chunk.iter().position(|&b| b == 0);
    let invalid = std::str::from_utf8(chunk).err().map(|e| e.valid_up_to());
    match (nul, invalid) {
        (Some(n), Some(i)) if i < n => Err(FileError::NotUtf8 {
            line: line_at(i),
            offset: offset + i as u64,
        }),
        (Some(n), _) => Err(FileError::Binary { line: line_at(n) }),
        (None, Some(i)) => Err(FileError::NotUtf8 {
            line: line_at(i),
            offset: offset + i as u64,
        }),
        (None, None) => Ok(()),
    }
}

/// Reads the header record: names trimmed and unquoted, the BOM dropped, the delimiter guessed
/// (`;` when it splits the header into more columns than `,` does, unless the profile fixes
/// it), and the source profile chosen.
fn parse_header(bytes: &[u8], first: Record, profiles: &Profiles) -> Result<Header, FileError> {
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
        Ok(Ok(detected)) => detected,
        Ok(Err(names)) => return Err(FileError::AmbiguousProfile { names }),
        Err(misses) => return Err(FileError::NoProfile { misses }),
    };
    let written = detected.written;
    let names = check_duplicates(&written)?;
    let profile = detected.profile;
    let as_is = profile.is_contract_itself();
    let mut extra = Vec::new();
    let mut columns = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        if as_is && COLUMNS.contains(&name.as_str()) {
            columns.push(name.clone());
        } else if !as_is && Plan::reads(&profile, name) {
            columns.push(mapping::source_column(i));
        } else {
            let x = ExtraColumn::new(i, &written[i]);
            columns.push(x.column.clone());
            extra.push(x);
        }
    }
    Ok(Header {
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

/// Parses and checks one chunk of whole records.
fn transform_chunk(header: &Header, chunk: &[u8], records: &[Record]) -> Result<Batch, FileError> {
    let width = header.names.len();
    let mut rejects = Vec::new();
    let mut clean = Vec::with_capacity(chunk.len());
    let mut lines: Vec<u64> = Vec::with_capacity(records.len());
    let mut kept: Vec<Record> = Vec::with_capacity(records.len());
    for r in records {
        if r.fields == width && !r.open_quote {
            clean.extend_from_slice(&chunk[r.start..r.end]);
            clean.push(b'\n');
            lines.push(r.line);
            kept.push(*r);
        } else {
            rejects.push(RejectedRow {
                line: r.line,
                column: None,
                reason: shape_reason(r, width),
                raw: text_of(chunk, r),
            });
        }
    }
    let first_line = records.first().map_or(0, |r| r.line);
    let parse_err = |e: PolarsError| FileError::Parse {
        line: first_line,
        message: e.to_string(),
    };
    let frame = if kept.is_empty() {
        empty_frame(header)
    } else {
        match read_records(header, clean) {
            Ok(frame) if frame.height() == kept.len() => frame,
            // Polars saw these records differently from the splitter (a quote inside an
            // unquoted field, say): find the records it cannot read, reject them, keep the rest.
            _ => {
                let mut frames = Vec::new();
                let mut readable = Vec::with_capacity(kept.len());
                read_apart(
                    header,
                    chunk,
                    &kept,
                    &mut frames,
                    &mut readable,
                    &mut rejects,
                );
                kept = readable;
                lines = kept.iter().map(|r| r.line).collect();
                let mut frame = empty_frame(header);
                for f in &frames {
                    frame.vstack_mut(f).map_err(parse_err)?;
                }
                frame
            }
        }
    };
    let mut frame = frame;
    frame
        .with_column(Column::new(LINE.into(), lines))
        .map_err(parse_err)?;
    let plan = header.plan.as_deref();
    match plan {
        Some(plan) => {
            let (mapped, refused) = mapping::map_chunk(plan, frame).map_err(parse_err)?;
            frame = mapped;
            for (line, column, reason) in refused {
                rejects.push(RejectedRow {
                    line,
                    column: Some(column),
                    reason,
                    raw: raw_of(chunk, &kept, line),
                });
            }
        }
        None => {
            for name in KEPT_COLUMNS {
                let empty = Column::full_null(name.into(), frame.height(), &DataType::String);
                frame.with_column(empty).map_err(parse_err)?;
            }
        }
    }
    let checked = rules::check(frame.lazy()).collect().map_err(parse_err)?;
    let is_bad = checked
        .column(rules::REASON)
        .map_err(parse_err)?
        .is_not_null();
    let bad = checked.filter(&is_bad).map_err(parse_err)?;
    let mut good = checked.filter(&!is_bad).map_err(parse_err)?;
    extra::add_extra_column(&mut good, &header.extra).map_err(parse_err)?;
    explain(chunk, &kept, &bad, plan, &mut rejects).map_err(parse_err)?;
    rejects.sort_by_key(|r| r.line);
    Ok(Batch {
        rows_total: records.len() as u64,
        good,
        rejects,
    })
}

fn shape_reason(r: &Record, width: usize) -> String {
    if r.open_quote {
        "the row ends inside a quoted field (a cut-off last line?)".to_string()
    } else {
        format!("has {} fields where the header has {width}", r.fields)
    }
}

fn text_of(chunk: &[u8], r: &Record) -> String {
    String::from_utf8_lossy(&chunk[r.start..r.end]).into_owned()
}

/// Reads `records` with Polars, halving the set until each part reads as exactly its records;
/// a single record that does not is rejected. Costs O(bad · log n) reads, only on bad input.
fn read_apart(
    header: &Header,
    chunk: &[u8],
    records: &[Record],
    frames: &mut Vec<DataFrame>,
    readable: &mut Vec<Record>,
    rejects: &mut Vec<RejectedRow>,
) {
    let mut clean = Vec::new();
    for r in records {
        clean.extend_from_slice(&chunk[r.start..r.end]);
        clean.push(b'\n');
    }
    let problem = match read_records(header, clean) {
        Ok(frame) if frame.height() == records.len() => {
            frames.push(frame);
            readable.extend_from_slice(records);
            return;
        }
        Ok(frame) => format!("reads as {} rows", frame.height()),
        Err(e) => e.to_string(),
    };
    match records {
        [] => {}
        [r] => rejects.push(RejectedRow {
            line: r.line,
            column: None,
            reason: format!(
                "cannot be parsed as CSV ({problem}); is a quote misplaced inside a field?"
            ),
            raw: text_of(chunk, r),
        }),
        _ => {
            let (a, b) = records.split_at(records.len() / 2);
            read_apart(header, chunk, a, frames, readable, rejects);
            read_apart(header, chunk, b, frames, readable, rejects);
        }
    }
}

fn text_schema(header: &Header) -> Schema {
    Schema::from_iter(
        header
            .columns
            .iter()
            .map(|name| Field::new(name.as_str().into(), DataType::String)),
    )
}

/// Parses records with every column as text, so that no value is lost or guessed before the rules.
fn read_records(header: &Header, clean: Vec<u8>) -> PolarsResult<DataFrame> {
    CsvReadOptions::default()
        .with_has_header(false)
        .with_schema(Some(Arc::new(text_schema(header))))
        .map_parse_options(|o| {
            o.with_separator(header.delimiter)
                .with_missing_is_null(true)
        })
        .into_reader_with_file_handle(Cursor::new(clean))
        .finish()
}

fn empty_frame(header: &Header) -> DataFrame {
    DataFrame::empty_with_schema(&text_schema(header))
}

/// The raw text of the record on `line`; `kept` is in line order.
fn raw_of(chunk: &[u8], kept: &[Record], line: u64) -> String {
    kept.binary_search_by_key(&line, |r| r.line)
        .map(|at| text_of(chunk, &kept[at]))
        .unwrap_or_default()
}

/// Adds the rule-breaking rows of `bad` to `rejects`, with the offending value in the reason
/// and the column named as the file names it.
fn explain(
    chunk: &[u8],
    kept: &[Record],
    bad: &DataFrame,
    plan: Option<&Plan>,
    rejects: &mut Vec<RejectedRow>,
) -> PolarsResult<()> {
    if bad.height() == 0 {
        return Ok(());
    }
    let lines = bad.column(LINE)?.u64()?;
    let reasons = bad.column(rules::REASON)?.str()?;
    let columns = bad.column(rules::COLUMN)?.str()?;
    for i in 0..bad.height() {
        let line = lines.get(i).unwrap_or_default();
        let target = columns.get(i);
        let mut reason = reasons.get(i).unwrap_or("invalid").to_string();
        if let Some(name) = target {
            if let Some(value) = bad.column(name)?.str()?.get(i) {
                reason = format!("{reason} (got {value:?})");
            }
        }
        let column = target.map(|t| plan.and_then(|p| p.source_of(t)).unwrap_or(t).to_string());
        rejects.push(RejectedRow {
            line,
            column,
            reason,
            raw: raw_of(chunk, kept, line),
        });
    }
    Ok(())
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

/// The rejected rows as CSV lines: the raw line, then `line` and `reason`. A raw line cut off
/// inside a quoted field gets its quote closed, so that it cannot swallow the lines after it.
pub fn rejects_csv_lines(rejects: &[RejectedRow], delimiter: u8) -> String {
    let d = delimiter as char;
    let mut out = String::new();
    for r in rejects {
        let close = if r.raw.matches('"').count() % 2 == 1 {
            "\""
        } else {
            ""
        };
        let reason = match &r.column {
            Some(column) => format!("{column}: {}", r.reason),
            None => r.reason.clone(),
        };
        out.push_str(&format!(
            "{}{close}{d}{}{d}\"{}\"\n",
            r.raw,
            r.line,
            reason.replace('"', "\"\"")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema;

    const GOOD: &str = "4f9c1e2a-8a4b-4c4e-9d2f-0a1b2c3d4e5f,2026-11-01T10:30:00.123456Z,u1,s1,view,p1,books,9.99,1,,mobile,DE";

    fn file(rows: &[&str]) -> String {
        let mut text = schema::header_line();
        for row in rows {
            text.push('\n');
            text.push_str(row);
        }
        text.push('\n');
        text
    }

    fn one_batch(text: &str) -> Batch {
        let (_, mut batches) = transform_all(text.as_bytes()).unwrap();
        assert_eq!(batches.len(), 1);
        batches.remove(0)
    }

    #[test]
    fn good_row_passes_with_typed_columns() {
        let batch = one_batch(&file(&[GOOD]));
        assert_eq!(batch.rows_total, 1);
        assert_eq!(batch.good.height(), 1);
        assert!(batch.rejects.is_empty());
        let micros = batch
            .good
            .column(TIME)
            .unwrap()
            .datetime()
            .unwrap()
            .phys
            .get(0);
        let expected = chrono::DateTime::parse_from_rfc3339("2026-11-01T10:30:00.123456Z").unwrap();
        assert_eq!(micros, Some(expected.timestamp_micros()));
    }

    #[test]
    fn each_broken_rule_names_line_column_and_value() {
        let bad_time = GOOD.replace("2026-11-01T10:30:00.123456Z", "yesterday");
        let purchase_no_total = GOOD.replace(",view,", ",purchase,");
        let bad_qty = GOOD.replace(",9.99,1,", ",9.99,0,");
        let batch = one_batch(&file(&[GOOD, &bad_time, &purchase_no_total, &bad_qty]));
        assert_eq!(batch.rows_total, 4);
        assert_eq!(batch.good.height(), 1);
        let got: Vec<(u64, Option<&str>)> = batch
            .rejects
            .iter()
            .map(|r| (r.line, r.column.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (3, Some("event_time")),
                (4, Some("total_amount")),
                (5, Some("quantity"))
            ]
        );
        assert!(batch.rejects[0].reason.contains("\"yesterday\""));
        assert_eq!(batch.rejects[2].raw, bad_qty);
    }

    #[test]
    fn whole_file_problems_are_errors() {
        assert!(matches!(transform_all(b""), Err(FileError::Empty)));
        assert!(matches!(
            transform_all(file(&[]).as_bytes()),
            Err(FileError::HeaderOnly)
        ));
        assert!(matches!(
            transform_all(b"a,b\n1,2\n"),
            Err(FileError::NoProfile { .. })
        ));
        assert!(matches!(
            transform_all(b"\xff\xfe"),
            Err(FileError::NotUtf8 { .. })
        ));
    }

    #[test]
    fn extra_columns_are_kept_as_json_and_unnamed_empty_ones_add_nothing() {
        let text = format!(
            "{},Campaign,,__line\n{GOOD}, spring ,,7\n{GOOD},,,\n",
            schema::header_line()
        );
        let (header, batches) = transform_all(text.as_bytes()).unwrap();
        let keys: Vec<&str> = header.extra.iter().map(|x| x.key.as_str()).collect();
        assert_eq!(keys, ["Campaign", "column_14", "__line"]);
        let good = &batches[0].good;
        let extra: Vec<Option<&str>> = good.column(EXTRA).unwrap().str().unwrap().iter().collect();
        assert_eq!(extra, [Some(r#"{"Campaign":"spring","__line":"7"}"#), None]);
        // A header column named like an internal one does not disturb the line numbers.
        let lines: Vec<Option<u64>> = good.column(LINE).unwrap().u64().unwrap().iter().collect();
        assert_eq!(lines, [Some(2), Some(3)]);
    }

    #[test]
    fn a_bom_is_not_part_of_the_header_and_a_bom_alone_is_an_empty_file() {
        let text = format!("\u{feff}{}", file(&[GOOD]));
        assert_eq!(one_batch(&text).good.height(), 1);
        assert!(matches!(
            transform_all(b"\xEF\xBB\xBF"),
            Err(FileError::Empty)
        ));
    }

    #[test]
    fn a_record_polars_reads_differently_is_rejected_alone() {
        let odd = GOOD.replace(",books,", ",ab\"c,d\"e,");
        let batch = one_batch(&file(&[GOOD, &odd, GOOD]));
        assert_eq!(batch.rows_total, 3);
        assert_eq!(batch.good.height(), 2);
        assert_eq!(batch.rejects.len(), 1);
        assert_eq!(batch.rejects[0].line, 3);
        assert!(
            batch.rejects[0]
                .reason
                .starts_with("cannot be parsed as CSV"),
            "{}",
            batch.rejects[0].reason
        );
    }

    #[test]
    fn a_cut_off_quoted_raw_line_is_closed_in_the_rejects_file() {
        let cut = RejectedRow {
            line: 4,
            column: None,
            reason: "the row ends inside a quoted field".into(),
            raw: "a,\"Books, and".into(),
        };
        assert_eq!(
            rejects_csv_lines(&[cut], b','),
            "a,\"Books, and\",4,\"the row ends inside a quoted field\"\n"
        );
    }

    #[test]
    fn the_first_problem_of_a_file_is_reported_however_it_is_chunked() {
        let text = format!("{}\n{GOOD}\n\u{fc}\n\0\n", schema::header_line());
        let latin1: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
        assert!(matches!(
            transform_all(&latin1),
            Err(FileError::NotUtf8 { line: 3, .. })
        ));
    }

    #[test]
    fn a_file_larger_than_a_chunk_arrives_in_several_batches_with_every_row() {
        let rows: Vec<String> = (0..100_000)
            .map(|i| GOOD.replace("0a1b2c3d4e5f", &format!("{i:012}")))
            .collect();
        let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
        let (_, batches) = transform_all(file(&refs).as_bytes()).unwrap();
        assert!(batches.len() > 1, "{} batches", batches.len());
        let total: u64 = batches.iter().map(|b| b.rows_total).sum();
        let good: usize = batches.iter().map(|b| b.good.height()).sum();
        assert_eq!((total, good), (100_000, 100_000));
        let last = batches.last().unwrap();
        let lines = last.good.column(LINE).unwrap().u64().unwrap();
        assert_eq!(lines.get(last.good.height() - 1), Some(100_001));
    }
}
