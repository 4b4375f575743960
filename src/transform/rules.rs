//! The contract's row rules as Polars expressions: trim and null-ify text, set aside damaged
//! optional values (`super::repair`), type the columns the loader needs, and name the first
//! broken rule of each row. Pure expressions, no I/O.

use polars::prelude::*;

use super::profile::{ResolvedWindow, TimeWindow};
use super::repair::RowWarning;
use super::LINE;
use crate::schema::{
    self, COLUMNS, DEVICES, EVENT_TYPES, PRODUCT_COLUMNS, PURCHASE, SEARCH, SEARCH_QUERY,
};

/// Names of the columns the rules add to a frame.
/// The position in [`broken_rules`] of the first rule a row breaks (null for good rows).
pub const RULE: &str = "__rule";
/// Typed copies of text columns, used by the rules and by the loader.
pub const TIME: &str = "__event_time";
pub const QUANTITY: &str = "__quantity";

const UUID_PATTERN: &str =
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
/// Decimals as written by shops and spreadsheets; no exponent, no NaN or infinity, which
/// `numeric` would either refuse or store as nonsense. Prices and totals alike: no minus sign,
/// not even on 0 (`-0` is as likely a sign error as a refund, and refunds are no event type of
/// the contract), so a negative total cannot lower the revenue.
const AMOUNT_PATTERN: &str = r"^\+?[0-9]+(\.[0-9]+)?$";
/// The digits an amount may carry (`load::derive::sum`): revenue is summed exactly on the
/// watcher, in 38 digits.
const AMOUNT_DIGITS_PATTERN: &str = r"^\+?0*[0-9]{1,20}(\.[0-9]{1,12})?$";
/// `:60`, a leap second: chrono and Polars read it as the next second (23:59:60 on 31 December
/// as the next year), and Postgres has no leap seconds either.
const LEAP_SECOND_PATTERN: &str = r"[T ][0-9]{2}:[0-9]{2}:60";
/// A fraction with a non-zero digit past the sixth: `timestamptz` keeps microseconds, and the
/// rest would be cut without a word (trailing zeros lose nothing and pass).
const SUB_MICROSECOND_PATTERN: &str = r"\.[0-9]{6}0*[1-9]";
const INTEGER_PATTERN: &str = r"^\+?[0-9]{1,9}$";
const COUNTRY_PATTERN: &str = r"^[A-Z]{2}$";

/// Adds the rule columns to a frame of the contract's text columns; event times must lie in
/// `window`.
pub(super) fn check(frame: LazyFrame, window: &ResolvedWindow) -> LazyFrame {
    let set_aside = repairs().map(|r| {
        when(r.damaged.fill_null(lit(false)))
            .then(col(r.column))
            .otherwise(lit(NULL).cast(DataType::String))
            .alias(damaged_column(r.column))
    });
    let emptied = repairs().map(|r| {
        when(col(damaged_column(r.column)).is_not_null())
            .then(lit(NULL).cast(DataType::String))
            .otherwise(col(r.column))
            .alias(r.column)
    });
    frame
        .with_columns(COLUMNS.map(|c| clean(col(c)).alias(c)))
        .with_column(clean(col(SEARCH_QUERY)).alias(SEARCH_QUERY))
        .with_columns(set_aside)
        .with_columns(emptied)
        .with_columns(typed_columns())
        .with_column(verdict(window))
}

/// An optional contract column whose value, when `damaged`, is set NULL and reported.
struct Repair {
    column: &'static str,
    damaged: Expr,
    reason: &'static str,
}

fn repairs() -> [Repair; 2] {
    let present = |c: &str| col(c).is_not_null();
    [
        Repair {
            column: "device",
            damaged: present("device").and(any_of("device", &DEVICES).not()),
            reason: "unknown device (expected mobile, desktop or tablet, or empty)",
        },
        Repair {
            column: "country",
            damaged: present("country").and(mismatches("country", COUNTRY_PATTERN)),
            reason: "not an ISO 3166 alpha-2 code like DE",
        },
    ]
}

/// The frame column holding a damaged value set aside from `column` (null when it was fine).
fn damaged_column(column: &str) -> String {
    format!("__damaged_{column}")
}

/// The warnings for values [`check`] set aside in `good`, with the column named as `source`
/// says the file names it; drops the set-aside columns.
pub(super) fn take_repairs(
    good: &mut DataFrame,
    source: impl Fn(&'static str) -> String,
) -> PolarsResult<Vec<RowWarning>> {
    let mut out = Vec::new();
    for r in repairs() {
        let name = damaged_column(r.column);
        let Some(at) = good.get_column_index(&name) else {
            continue;
        };
        let values = good
            .select_at_idx(at)
            .map(|c| c.str().cloned())
            .transpose()?;
        if let Some(values) = values.filter(|v| v.null_count() < v.len()) {
            let lines = good.column(LINE)?.u64()?;
            for (line, value) in lines.iter().zip(values.iter()) {
                if let Some(value) = value {
                    out.push(RowWarning {
                        line: line.unwrap_or_default(),
                        column: source(r.column),
                        target: r.column,
                        reason: r.reason.to_string(),
                        raw_value: value.to_string(),
                    });
                }
            }
        }
        *good = good.drop(&name)?;
    }
    Ok(out)
}

/// Trims surrounding whitespace and treats an empty field as missing.
fn clean(column: Expr) -> Expr {
    column.map(clean_column, |_, field| Ok(field.clone()))
}

/// [`clean`] on a column. A column with nothing to trim and no empty value (every column of
/// a tidy file) is passed on as it is: trimming then nulling copied every text value twice,
/// the watcher's busiest work (perf: a sixth of its samples on 1,000,000 rows).
fn clean_column(column: Column) -> PolarsResult<Column> {
    let values = column.str()?;
    let untidy = |v: &str| v.is_empty() || v.trim().len() != v.len();
    if !values.iter().flatten().any(untidy) {
        return Ok(column);
    }
    let cleaned: StringChunked = values
        .iter()
        .map(|v| v.map(str::trim).filter(|v| !v.is_empty()))
        .collect();
    Ok(cleaned.with_name(values.name().clone()).into_column())
}

fn typed_columns() -> Vec<Expr> {
    vec![
        col("event_time")
            .map(parse_event_times, |_, field| {
                Ok(Field::new(
                    field.name().clone(),
                    DataType::Datetime(TimeUnit::Microseconds, None),
                ))
            })
            .alias(TIME),
        col("quantity").cast(DataType::Int64).alias(QUANTITY),
    ]
}

/// `event_time` as `EVENT_TIME_FORMAT` reads it, null where it names no time: Polars' strptime
/// of that pattern (no fast path for `%.f`), with the usual shape read by hand.
fn parse_event_times(column: Column) -> PolarsResult<Column> {
    let values = column.str()?;
    let times: Int64Chunked = values
        .iter()
        .map(|v| v.and_then(schema::parse_event_time))
        .collect();
    Ok(times
        .with_name(values.name().clone())
        .into_datetime(TimeUnit::Microseconds, None)
        .into_column())
}

/// A contract rule: `broken` is true for rows that violate it.
struct Rule {
    column: &'static str,
    broken: Expr,
    reason: String,
}

fn rule(column: &'static str, broken: Expr, reason: impl Into<String>) -> Rule {
    Rule {
        column,
        broken,
        reason: reason.into(),
    }
}

fn any_of(column: &str, values: &[&str]) -> Expr {
    values
        .iter()
        .map(|v| col(column).eq(lit(*v)))
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(false))
}

fn mismatches(column: &str, pattern: &str) -> Expr {
    matches(column, pattern).not()
}

fn matches(column: &str, pattern: &str) -> Expr {
    col(column).str().contains(lit(pattern), true)
}

/// The contract's row rules, in the order a row is checked; the first broken rule is reported.
fn rules(window: &ResolvedWindow) -> Vec<Rule> {
    let micros = || col(TIME).cast(DataType::Int64);
    let implausible = micros()
        .lt(lit(window.earliest_micros))
        .or(micros().gt(lit(window.latest_micros)));
    let missing = |c: &str| col(c).is_null();
    let present = |c: &str| col(c).is_not_null();
    let is_purchase = col("event_type").eq(lit(PURCHASE));
    let is_search = || col("event_type").eq(lit(SEARCH));
    // A product column a search must leave empty, or one every other type needs.
    let needs = |c: &'static str| is_search().not().and(missing(c));
    let search_fills = |c: &'static str| {
        rule(
            c,
            is_search().and(present(c)),
            "must be empty for a search (a search names no product)",
        )
    };
    let mut rules = vec![
        rule("event_id", missing("event_id"), "required"),
        rule(
            "event_id",
            mismatches("event_id", UUID_PATTERN),
            "not a UUID",
        ),
        rule("event_time", missing("event_time"), "required"),
        rule(
            "event_time",
            matches("event_time", LEAP_SECOND_PATTERN),
            "a leap second (:60) is not supported; it would be stored as the next second",
        ),
        rule(
            "event_time",
            matches("event_time", SUB_MICROSECOND_PATTERN),
            "has a fraction of a second finer than microseconds, which would be cut \
             (at most 6 digits are stored)",
        ),
        rule(
            "event_time",
            col(TIME).is_null(),
            "not an RFC 3339 UTC timestamp like 2026-11-01T10:30:00.123456Z",
        ),
        rule(
            "event_time",
            implausible,
            format!(
                "outside the plausible event_time window {} (a profile's event_time_window \
                 or --event-time-window)",
                window.spec
            ),
        ),
        rule("user_id", missing("user_id"), "required"),
        rule("session_id", missing("session_id"), "required"),
        rule("event_type", missing("event_type"), "required"),
        rule(
            "event_type",
            any_of("event_type", &EVENT_TYPES).not(),
            "unknown event type (expected view, add_to_cart, remove_from_cart, purchase or \
             search)",
        ),
        rule(
            SEARCH_QUERY,
            is_search().and(missing(SEARCH_QUERY)),
            "required for a search",
        ),
        rule(
            SEARCH_QUERY,
            is_search().not().and(present(SEARCH_QUERY)),
            "must be empty unless event_type is search",
        ),
    ];
    rules.extend(PRODUCT_COLUMNS.map(search_fills));
    rules.extend([
        rule("product_id", needs("product_id"), "required"),
        rule("product_price", needs("product_price"), "required"),
        rule(
            "product_price",
            mismatches("product_price", AMOUNT_PATTERN),
            "not a decimal number ≥ 0 like 19.99",
        ),
        rule("quantity", needs("quantity"), "required"),
        rule(
            "quantity",
            mismatches("quantity", INTEGER_PATTERN),
            "not a whole number between 1 and 999999999",
        ),
        rule("quantity", col(QUANTITY).lt(lit(1)), "must be at least 1"),
        rule(
            "total_amount",
            is_purchase.clone().and(missing("total_amount")),
            "required for a purchase",
        ),
        rule(
            "total_amount",
            present("total_amount").and(mismatches("total_amount", AMOUNT_PATTERN)),
            "not a decimal number ≥ 0 like 39.98",
        ),
        rule(
            "total_amount",
            present("total_amount").and(mismatches("total_amount", AMOUNT_DIGITS_PATTERN)),
            "more digits than an amount may have (20 before the point, 12 after)",
        ),
        rule(
            "total_amount",
            is_purchase.not().and(present("total_amount")),
            "must be empty unless event_type is purchase",
        ),
    ]);
    rules
}

/// Every (column, reason) a row can be rejected for by the rules (with the default event-time
/// window), in checking order.
pub fn all_reasons() -> Vec<(&'static str, String)> {
    broken_rules(&TimeWindow::default().resolve(chrono::Utc::now()))
}

/// The (column, reason) of each rule, in checking order: what a row's [`RULE`] points at.
pub(super) fn broken_rules(window: &ResolvedWindow) -> Vec<(&'static str, String)> {
    rules(window)
        .into_iter()
        .map(|r| (r.column, r.reason))
        .collect()
}

/// The position of the first broken rule of each row (null for good rows). A number, not the
/// reason's text: every rule's test rebuilds the column, and text columns rebuilt for ~25 rules
/// were a tenth of the watcher's time; the few rejected rows look their reasons up.
fn verdict(window: &ResolvedWindow) -> Expr {
    let mut first = lit(NULL).cast(DataType::UInt32);
    for (at, r) in rules(window).into_iter().enumerate().rev() {
        // `fill_null(false)`: a comparison with a missing value breaks no rule of its own.
        let broken = r.broken.fill_null(lit(false));
        first = when(broken).then(lit(at as u32)).otherwise(first);
    }
    first.alias(RULE)
}
