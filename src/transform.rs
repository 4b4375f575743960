//! Transform: the bytes of one complete file → a `Batch` of typed good rows and explained rejects.
//! Reads with Polars under an explicit all-text schema (no inference), then validates the contract
//! of DESIGN.md with Polars expressions. Pure: no database, no Kafka, no file moves.

use std::io::Cursor;
use std::sync::Arc;

use polars::prelude::*;

use crate::schema::{self, COLUMNS, DEVICES, EVENT_TIME_FORMAT, EVENT_TYPES, PURCHASE};

/// Name of the 1-based source line number column added to every frame.
pub const LINE: &str = "__line";
const REASON: &str = "__reason";
const COLUMN: &str = "__column";
/// Typed copies of text columns, used by the rules and by the loader.
pub const TIME: &str = "__event_time";
pub const QUANTITY: &str = "__quantity";
const PRICE: &str = "__price";
const TOTAL: &str = "__total";

const UUID_PATTERN: &str =
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
const COUNTRY_PATTERN: &str = r"^[A-Z]{2}$";

/// Problems with a file as a whole; the file is rejected and nothing of it is loaded.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the file is empty")]
    Empty,
    #[error("the file has a header but no rows")]
    HeaderOnly,
    #[error("the file is not UTF-8 text (first bad byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error(
        "the header lacks column(s) {missing:?}; the native layout expects: {expected}",
        expected = schema::header_line()
    )]
    MissingColumns { missing: Vec<String> },
    #[error("the header names column {0:?} twice")]
    DuplicateColumn(String),
    #[error("the CSV cannot be parsed: {0}")]
    Parse(String),
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

/// The outcome of transforming one file.
#[derive(Debug)]
pub struct Batch {
    /// The file's header line as written (without BOM or line ending).
    pub header: String,
    pub rows_total: u64,
    /// Good rows: the contract's columns (trimmed text, empty → null) plus typed `TIME` and
    /// `QUANTITY` and the `LINE` number.
    pub good: DataFrame,
    pub rejects: Vec<RejectedRow>,
}

/// Reads and validates one native-contract CSV file held in memory.
///
/// # Errors
/// A `FileError` when the file as a whole is unusable; bad rows are never errors, they are
/// returned in `Batch::rejects`.
pub fn transform(bytes: &[u8]) -> Result<Batch, FileError> {
    let text = std::str::from_utf8(bytes).map_err(|e| FileError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(FileError::Empty);
    }
    let header = read_header(text)?;
    let frame = read_frame(text, &header)?;
    if frame.height() == 0 {
        return Err(FileError::HeaderOnly);
    }
    let checked = frame
        .lazy()
        .with_columns(COLUMNS.map(|c| clean(col(c)).alias(c)))
        .with_columns(typed_columns())
        .with_columns(verdict())
        .collect()
        .map_err(|e| FileError::Parse(e.to_string()))?;
    let mut batch = split(text, checked)?;
    batch.header = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end_matches('\r')
        .to_string();
    Ok(batch)
}

/// The rejected rows as CSV: the file's own header and raw lines, plus `line` and `reason`.
pub fn rejects_csv(batch: &Batch) -> String {
    let mut out = format!("{},line,reason\n", batch.header);
    for r in &batch.rejects {
        let reason = match &r.column {
            Some(column) => format!("{column}: {}", r.reason),
            None => r.reason.clone(),
        };
        out.push_str(&format!(
            "{},{},\"{}\"\n",
            r.raw,
            r.line,
            reason.replace('"', "\"\"")
        ));
    }
    out
}

/// The header's column names, checked against the contract (order and extra columns are free).
fn read_header(text: &str) -> Result<Vec<String>, FileError> {
    let first = text.lines().next().unwrap_or_default();
    let names: Vec<String> = first
        .split(',')
        .map(|n| n.trim().trim_matches('"').trim().to_string())
        .collect();
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(FileError::DuplicateColumn(name.clone()));
        }
    }
    let missing: Vec<String> = COLUMNS
        .iter()
        .filter(|c| !names.iter().any(|n| n == *c))
        .map(|c| c.to_string())
        .collect();
    if missing.is_empty() {
        Ok(names)
    } else {
        Err(FileError::MissingColumns { missing })
    }
}

/// Parses the CSV with every column as text, so that no value is lost or guessed before validation.
fn read_frame(text: &str, header: &[String]) -> Result<DataFrame, FileError> {
    let schema = Schema::from_iter(
        header
            .iter()
            .map(|name| Field::new(name.as_str().into(), DataType::String)),
    );
    CsvReadOptions::default()
        .with_has_header(true)
        .with_schema(Some(Arc::new(schema)))
        .with_row_index(Some(RowIndex {
            name: LINE.into(),
            offset: 2,
        }))
        .map_parse_options(|o| o.with_missing_is_null(true))
        .into_reader_with_file_handle(Cursor::new(text.as_bytes()))
        .finish()
        .map_err(|e| FileError::Parse(e.to_string()))
}

/// Trims surrounding whitespace and treats an empty field as missing.
fn clean(column: Expr) -> Expr {
    let trimmed = column.str().strip_chars(lit(NULL));
    when(trimmed.clone().eq(lit("")))
        .then(lit(NULL).cast(DataType::String))
        .otherwise(trimmed)
}

fn typed_columns() -> Vec<Expr> {
    let time_options = StrptimeOptions {
        format: Some(EVENT_TIME_FORMAT.into()),
        strict: false,
        exact: true,
        cache: false,
    };
    vec![
        col("event_time")
            .str()
            .to_datetime(
                Some(TimeUnit::Microseconds),
                None,
                time_options,
                lit("raise"),
            )
            .alias(TIME),
        col("product_price").cast(DataType::Float64).alias(PRICE),
        col("quantity").cast(DataType::Int64).alias(QUANTITY),
        col("total_amount").cast(DataType::Float64).alias(TOTAL),
    ]
}

/// A contract rule: `broken` is true for rows that violate it.
struct Rule {
    column: &'static str,
    broken: Expr,
    reason: &'static str,
}

fn rule(column: &'static str, broken: Expr, reason: &'static str) -> Rule {
    Rule {
        column,
        broken,
        reason,
    }
}

fn any_of(column: &str, values: &[&str]) -> Expr {
    values
        .iter()
        .map(|v| col(column).eq(lit(*v)))
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(false))
}

/// The contract's row rules, in the order a row is checked; the first broken rule is reported.
fn rules() -> Vec<Rule> {
    let missing = |c: &str| col(c).is_null();
    let is_purchase = col("event_type").eq(lit(PURCHASE));
    vec![
        rule("event_id", missing("event_id"), "required"),
        rule(
            "event_id",
            col("event_id")
                .str()
                .contains(lit(UUID_PATTERN), true)
                .not(),
            "not a UUID",
        ),
        rule("event_time", missing("event_time"), "required"),
        rule(
            "event_time",
            col(TIME).is_null(),
            "not an RFC 3339 UTC timestamp like 2026-11-01T10:30:00.123456Z",
        ),
        rule("user_id", missing("user_id"), "required"),
        rule("session_id", missing("session_id"), "required"),
        rule("event_type", missing("event_type"), "required"),
        rule(
            "event_type",
            any_of("event_type", &EVENT_TYPES).not(),
            "unknown event type (expected view, add_to_cart, remove_from_cart or purchase)",
        ),
        rule("product_id", missing("product_id"), "required"),
        rule("product_price", missing("product_price"), "required"),
        rule(
            "product_price",
            col(PRICE).is_null(),
            "not a decimal number",
        ),
        rule(
            "product_price",
            col(PRICE).lt(lit(0.0)),
            "must not be negative",
        ),
        rule("quantity", missing("quantity"), "required"),
        rule("quantity", col(QUANTITY).is_null(), "not an integer"),
        rule("quantity", col(QUANTITY).lt(lit(1)), "must be at least 1"),
        rule(
            "total_amount",
            is_purchase.clone().and(missing("total_amount")),
            "required for a purchase",
        ),
        rule(
            "total_amount",
            missing("total_amount").not().and(col(TOTAL).is_null()),
            "not a decimal number",
        ),
        rule(
            "total_amount",
            is_purchase.not().and(missing("total_amount").not()),
            "must be empty unless event_type is purchase",
        ),
        rule(
            "device",
            missing("device")
                .not()
                .and(any_of("device", &DEVICES).not()),
            "unknown device (expected mobile, desktop or tablet, or empty)",
        ),
        rule(
            "country",
            missing("country").not().and(
                col("country")
                    .str()
                    .contains(lit(COUNTRY_PATTERN), true)
                    .not(),
            ),
            "not an ISO 3166 alpha-2 code like DE",
        ),
    ]
}

/// Two columns naming the first broken rule of each row (null for good rows).
fn verdict() -> [Expr; 2] {
    let none = || lit(NULL).cast(DataType::String);
    let (mut reason, mut column) = (none(), none());
    for r in rules().into_iter().rev() {
        // `fill_null(false)`: a comparison with a missing value breaks no rule of its own.
        let broken = r.broken.fill_null(lit(false));
        reason = when(broken.clone()).then(lit(r.reason)).otherwise(reason);
        column = when(broken).then(lit(r.column)).otherwise(column);
    }
    [reason.alias(REASON), column.alias(COLUMN)]
}

/// Splits a checked frame into good rows and explained rejects.
fn split(text: &str, checked: DataFrame) -> Result<Batch, FileError> {
    let polars_err = |e: PolarsError| FileError::Parse(e.to_string());
    let rows_total = checked.height() as u64;
    let is_bad = checked.column(REASON).map_err(polars_err)?.is_not_null();
    let bad = checked.filter(&is_bad).map_err(polars_err)?;
    let good = checked.filter(&!is_bad).map_err(polars_err)?;
    Ok(Batch {
        header: String::new(),
        rows_total,
        good,
        rejects: explain(text, &bad).map_err(polars_err)?,
    })
}

fn explain(text: &str, bad: &DataFrame) -> PolarsResult<Vec<RejectedRow>> {
    if bad.height() == 0 {
        return Ok(Vec::new());
    }
    let lines = bad.column(LINE)?.cast(&DataType::UInt64)?;
    let lines = lines.u64()?;
    let reasons = bad.column(REASON)?.str()?;
    let columns = bad.column(COLUMN)?.str()?;
    let wanted: Vec<u64> = lines.into_iter().flatten().collect();
    let raw_lines = raw_lines(text, &wanted);
    let mut rejects = Vec::with_capacity(bad.height());
    for i in 0..bad.height() {
        let line = lines.get(i).unwrap_or_default();
        let column = columns.get(i).map(str::to_string);
        let mut reason = reasons.get(i).unwrap_or("invalid").to_string();
        if let Some(name) = &column {
            if let Some(value) = bad.column(name)?.str()?.get(i) {
                reason = format!("{reason} (got {value:?})");
            }
        }
        let raw = raw_lines.get(&line).cloned().unwrap_or_default();
        rejects.push(RejectedRow {
            line,
            column,
            reason,
            raw,
        });
    }
    Ok(rejects)
}

/// The text of the given 1-based lines, without line endings.
fn raw_lines(text: &str, wanted: &[u64]) -> std::collections::HashMap<u64, String> {
    let wanted: std::collections::HashSet<u64> = wanted.iter().copied().collect();
    text.split('\n')
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l))
        .filter(|(n, _)| wanted.contains(n))
        .map(|(n, l)| (n, l.trim_end_matches('\r').to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn good_row_passes_with_typed_columns() {
        let batch = transform(file(&[GOOD]).as_bytes()).unwrap();
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
        let text = file(&[GOOD, &bad_time, &purchase_no_total, &bad_qty]);
        let batch = transform(text.as_bytes()).unwrap();
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
        assert!(matches!(transform(b""), Err(FileError::Empty)));
        assert!(matches!(
            transform(file(&[]).as_bytes()),
            Err(FileError::HeaderOnly)
        ));
        assert!(matches!(
            transform(b"a,b\n1,2\n"),
            Err(FileError::MissingColumns { .. })
        ));
        assert!(matches!(
            transform(b"\xff\xfe"),
            Err(FileError::NotUtf8 { offset: 0 })
        ));
    }
}
