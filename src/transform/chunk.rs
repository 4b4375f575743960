//! One chunk of whole records → a `Batch`: shape checks, a Polars read under an all-text
//! schema (bisected around records Polars reads differently), the profile's mapping, the
//! contract rules, and an explained reject per bad row. No I/O.

use std::io::Cursor;
use std::sync::Arc;

use polars::prelude::*;

use super::header::Header;
use super::mapping::{self, Plan};
use super::profile::ResolvedWindow;
use super::records::Record;
use super::{extra, rules, Batch, FileError, RejectedRow, LINE};
use crate::schema::KEPT_COLUMNS;

/// Parses and checks one chunk of whole records.
pub(super) fn transform_chunk(
    header: &Header,
    chunk: &[u8],
    records: &[Record],
) -> Result<Batch, FileError> {
    let width = header.names.len();
    let mut rejects = Vec::new();
    let mut clean = Vec::with_capacity(chunk.len());
    let mut lines: Vec<u64> = Vec::with_capacity(records.len());
    let mut kept: Vec<Record> = Vec::with_capacity(records.len());
    for r in records {
        if r.fields == width && !r.open_quote && !r.lone_cr {
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
    let mut warnings = Vec::new();
    match plan {
        Some(plan) => {
            let (mapped, refused, repaired) = mapping::map_chunk(plan, frame).map_err(parse_err)?;
            frame = mapped;
            warnings = repaired;
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
                if frame.get_column_index(name).is_some() {
                    continue; // `search_query`, which a native file may carry
                }
                let empty = Column::full_null(name.into(), frame.height(), &DataType::String);
                frame.with_column(empty).map_err(parse_err)?;
            }
        }
    }
    let checked = rules::check(frame.lazy(), &header.window)
        .collect()
        .map_err(parse_err)?;
    let is_bad = checked
        .column(rules::RULE)
        .map_err(parse_err)?
        .is_not_null();
    let bad = checked.filter(&is_bad).map_err(parse_err)?;
    let mut good = checked.filter(&!is_bad).map_err(parse_err)?;
    // A row rejected by a rule loads nothing, so its mapping repairs are no warnings.
    let good_lines: Vec<u64> = good
        .column(LINE)
        .and_then(|c| c.u64().map(|l| l.iter().flatten().collect()))
        .map_err(parse_err)?;
    warnings.retain(|w| good_lines.binary_search(&w.line).is_ok());
    let source = |t: &'static str| plan.and_then(|p| p.source_of(t)).unwrap_or(t).to_string();
    warnings.extend(rules::take_repairs(&mut good, source).map_err(parse_err)?);
    warnings.sort_by_key(|w| w.line);
    extra::add_extra_column(&mut good, &header.extra, &warnings).map_err(parse_err)?;
    explain(chunk, &kept, &bad, &header.window, plan, &mut rejects).map_err(parse_err)?;
    rejects.sort_by_key(|r| r.line);
    Ok(Batch {
        rows_total: records.len() as u64,
        good,
        rejects,
        warnings,
    })
}

fn shape_reason(r: &Record, width: usize) -> String {
    if r.lone_cr {
        "holds a carriage return (CR) without a line feed: a lone CR does not end a line here \
         (old Mac line endings?); write the file with LF or CRLF line ends"
            .to_string()
    } else if r.open_quote {
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
    window: &ResolvedWindow,
    plan: Option<&Plan>,
    rejects: &mut Vec<RejectedRow>,
) -> PolarsResult<()> {
    if bad.height() == 0 {
        return Ok(());
    }
    let lines = bad.column(LINE)?.u64()?;
    let broken = bad.column(rules::RULE)?.u32()?;
    let rules = rules::broken_rules(window);
    for i in 0..bad.height() {
        let line = lines.get(i).unwrap_or_default();
        let rule = broken.get(i).and_then(|at| rules.get(at as usize));
        let target = rule.map(|(column, _)| *column);
        let mut reason = rule.map_or("invalid", |(_, reason)| reason).to_string();
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
