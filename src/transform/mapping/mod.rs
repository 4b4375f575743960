//! Mapping: one chunk's source columns → the contract's columns, as the file's source profile
//! says (timestamps to UTC, event-type names, segments, defaults, derived totals, Excel-damage
//! checks, deterministic event ids). Runs per chunk, row by row, before the contract rules;
//! a row it cannot map is rejected with the SOURCE column's name, unless only an optional
//! target's value is damaged: that target is then NULL and reported (`super::repair`).
//! No I/O, no database.
//! Invariant: a row's output depends only on the row and the profile, never on the file.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use polars::prelude::*;
use uuid::Uuid;

use super::derived_id::derived_id;
use super::profile::{Profile, TARGETS};
use super::repair::{self, RowWarning};
use super::LINE;
use crate::schema::{PRODUCT_COLUMNS, PURCHASE, SEARCH};

/// Namespace of the UUIDv5 event ids derived for sources without an event id. Fixed forever:
/// changing it would give re-dropped files new ids and load them twice.
pub const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6d3f_2a1c_9b7e_4c05_8e21_5f0a_3b9d_c4e7);

const EVENT_ID: usize = 0;
const EVENT_TIME: usize = 1;
const EVENT_TYPE: usize = 4;
const PRODUCT_PRICE: usize = 7;
const QUANTITY: usize = 8;
const TOTAL_AMOUNT: usize = 9;
const CATEGORY_ID: usize = 13;
const SEARCH_QUERY: usize = 15;
const N: usize = TARGETS.len();

/// How one file's header binds to its profile: which frame column feeds each target.
#[derive(Debug)]
pub(crate) struct Plan {
    pub profile: Arc<Profile>,
    /// Per target (`TARGETS` order): the frame column, its header name as written, and how.
    bound: Vec<Option<Bound>>,
}

#[derive(Debug)]
struct Bound {
    frame: String,
    written: String,
    before: Option<String>,
    integer: bool,
}

/// Frame name of the header column at 0-based `index` that a profile reads.
pub(crate) fn source_column(index: usize) -> String {
    format!("__s{}", index + 1)
}

impl Plan {
    /// Binds `profile` to a header's lowercased `names` (as `written`).
    pub(crate) fn new(profile: Arc<Profile>, names: &[String], written: &[String]) -> Plan {
        let bound = TARGETS
            .iter()
            .map(|t| {
                let (_, s) = profile.columns.iter().find(|(c, _)| c == t)?;
                let at = names.iter().position(|n| *n == s.column)?;
                Some(Bound {
                    frame: source_column(at),
                    written: written[at].clone(),
                    before: s.before.clone(),
                    integer: s.integer,
                })
            })
            .collect();
        Plan { profile, bound }
    }

    /// Whether the header column `name` (lowercased) is read by the profile.
    pub(crate) fn reads(profile: &Profile, name: &str) -> bool {
        profile.columns.iter().any(|(_, s)| s.column == name)
    }

    /// The header name a target column is read from, for rejected rows.
    pub(crate) fn source_of(&self, target: &str) -> Option<&str> {
        let at = TARGETS.iter().position(|t| *t == target)?;
        self.bound[at].as_ref().map(|b| b.written.as_str())
    }
}

/// A row the mapping refused: (line, source column, reason with the value).
pub(crate) type MapReject = (u64, String, String);

/// Replaces the frame's source columns by the contract's columns and drops the rows that
/// cannot be mapped, returning them as rejects, and the damaged optional values of the rows
/// kept as warnings. Extra columns and `LINE` are kept.
pub(crate) fn map_chunk(
    plan: &Plan,
    mut frame: DataFrame,
) -> PolarsResult<(DataFrame, Vec<MapReject>, Vec<RowWarning>)> {
    let height = frame.height();
    let lines = frame.column(LINE)?.u64()?.clone();
    let mut sources = Vec::with_capacity(N);
    for b in &plan.bound {
        sources.push(match b {
            Some(b) => Some(frame.column(&b.frame)?.str()?.clone()),
            None => None,
        });
    }
    let mut iters: Vec<_> = sources
        .iter()
        .map(|s| s.as_ref().map(|c| c.iter()))
        .collect();
    let mut builders: Vec<StringChunkedBuilder> = TARGETS
        .iter()
        .map(|t| StringChunkedBuilder::new((*t).into(), height))
        .collect();
    let mut keep = Vec::with_capacity(height);
    let mut rejects = Vec::new();
    let mut warnings = Vec::new();
    let mut repairs = Vec::new();
    for line in lines.iter() {
        let mut raw: [Option<&str>; N] = [None; N];
        for (slot, it) in raw.iter_mut().zip(iters.iter_mut()) {
            *slot = it.as_mut().and_then(|i| i.next().flatten());
        }
        repairs.clear();
        match map_row(plan, raw, &mut repairs) {
            Ok(row) => {
                for (b, v) in builders.iter_mut().zip(row.iter()) {
                    b.append_option(v.as_deref());
                }
                keep.push(true);
                for &(at, reason) in &repairs {
                    warnings.push(RowWarning {
                        line: line.unwrap_or_default(),
                        column: plan.bound[at]
                            .as_ref()
                            .map_or(TARGETS[at], |b| b.written.as_str())
                            .to_string(),
                        target: TARGETS[at],
                        reason: reason.to_string(),
                        raw_value: clean(raw[at]).unwrap_or_default().to_string(),
                    });
                }
            }
            Err((at, reason)) => {
                for b in builders.iter_mut() {
                    b.append_null();
                }
                keep.push(false);
                let column = plan.bound[at]
                    .as_ref()
                    .map_or(TARGETS[at], |b| b.written.as_str());
                rejects.push((line.unwrap_or_default(), column.to_string(), reason));
            }
        }
    }
    for b in plan.bound.iter().flatten() {
        if frame.get_column_index(&b.frame).is_some() {
            frame = frame.drop(&b.frame)?;
        }
    }
    for b in builders {
        frame.with_column(b.finish().into_column())?;
    }
    let keep = BooleanChunked::new("keep".into(), keep);
    Ok((frame.filter(&keep)?, rejects, warnings))
}

/// Trims a field; empty means missing.
fn clean(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|v| !v.is_empty())
}

/// One row's targets from its source values, or the first target it fails on and why. An
/// optional target whose value is damaged is left empty (never its default: that would be a
/// guess) and pushed to `repairs` with the reason.
pub(crate) fn map_row<'a>(
    plan: &'a Plan,
    raw: [Option<&'a str>; N],
    repairs: &mut Vec<(usize, &'static str)>,
) -> Result<[Option<Cow<'a, str>>; N], (usize, String)> {
    let p = &*plan.profile;
    let mut out: [Option<Cow<'a, str>>; N] = Default::default();
    let mut micros = None;
    for (at, (slot, value)) in out.iter_mut().zip(raw).enumerate() {
        let Some(v) = clean(value) else {
            *slot = p
                .defaults
                .iter()
                .find(|(t, _)| *t == TARGETS[at])
                .map(|(_, d)| Cow::Borrowed(d.as_str()));
            continue;
        };
        let got = |reason: String| (at, format!("{reason} (got {v:?})"));
        let bound = plan.bound[at].as_ref();
        if bound.is_some_and(|b| b.integer) {
            if let Err(reason) = check_integer(v, at == CATEGORY_ID) {
                if repair::is_optional(TARGETS[at]) {
                    repairs.push((at, reason));
                    continue;
                }
                return Err(got(reason.to_string()));
            }
        }
        *slot = Some(match at {
            EVENT_TIME => {
                let t = parse_time(p, v).map_err(got)?;
                micros = Some(t.timestamp_micros());
                let mut text = String::with_capacity(27);
                crate::schema::write_event_time(&mut text, t);
                Cow::Owned(text)
            }
            EVENT_TYPE if !p.event_types.is_empty() => {
                let known = p.event_types.iter().find(|(s, _)| s == v);
                let known = known.or_else(|| {
                    p.event_types
                        .iter()
                        .find(|(s, _)| s.eq_ignore_ascii_case(v))
                });
                match known {
                    Some((_, t)) => Cow::Borrowed(*t),
                    None => {
                        let names: Vec<&str> =
                            p.event_types.iter().map(|(s, _)| s.as_str()).collect();
                        return Err(got(format!(
                            "unknown event type (expected {})",
                            or_list(&names)
                        )));
                    }
                }
            }
            PRODUCT_PRICE | TOTAL_AMOUNT if p.decimal_comma => Cow::Owned(v.replace(',', ".")),
            _ => match bound.and_then(|b| b.before.as_deref()) {
                Some(sep) => Cow::Borrowed(v.split(sep).next().unwrap_or(v)),
                None => Cow::Borrowed(v),
            },
        });
    }
    if out[EVENT_TYPE].as_deref() == Some(SEARCH) {
        // A search names no product: the profile's defaults (a `quantity = "1"`) are for the
        // rows that do, and would make a valid search break the contract.
        for (at, slot) in out.iter_mut().enumerate() {
            if PRODUCT_COLUMNS.contains(&TARGETS[at]) && clean(raw[at]).is_none() {
                *slot = None;
            }
        }
    }
    if p.purchase_total
        && out[TOTAL_AMOUNT].is_none()
        && out[EVENT_TYPE].as_deref() == Some(PURCHASE)
    {
        if let (Some(price), Some(q)) = (&out[PRODUCT_PRICE], &out[QUANTITY]) {
            out[TOTAL_AMOUNT] = times(price, q).map(Cow::Owned);
        }
    }
    if plan.bound[EVENT_ID].is_none() {
        out[EVENT_ID] = Some(Cow::Owned(event_id(&out, micros)));
    }
    Ok(out)
}

/// "a, b or c"
fn or_list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// The instant of a timestamp in any of the profile's formats.
fn parse_time(p: &Profile, v: &str) -> Result<DateTime<Utc>, String> {
    for f in &p.time_formats {
        if let Some(t) = f.parse(v, p.zone)? {
            return Ok(t);
        }
    }
    let examples: Vec<String> = p
        .time_formats
        .iter()
        .filter_map(|f| f.example().ok())
        .collect();
    let examples: Vec<&str> = examples.iter().map(String::as_str).collect();
    Err(format!("not a timestamp like {}", or_list(&examples)))
}

/// Whole numbers only, and within BIGINT when `bigint`.
fn check_integer(v: &str, bigint: bool) -> Result<(), &'static str> {
    if v.bytes().all(|b| b.is_ascii_digit()) {
        if bigint && v.parse::<i64>().is_err() {
            return Err("a whole number too large for BIGINT (at most 9223372036854775807)");
        }
        return Ok(());
    }
    if looks_scientific(v) {
        return Err("looks like a number Excel rounded to scientific notation");
    }
    Err("not a whole number")
}

/// `2.05301E+18`, `2,05301E+18`, `1e5`: what a spreadsheet writes for a long number.
fn looks_scientific(v: &str) -> bool {
    let Some((mantissa, exponent)) = v.split_once(['e', 'E']) else {
        return false;
    };
    let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    let mantissa = mantissa.strip_prefix(['+', '-']).unwrap_or(mantissa);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once(['.', ',']) {
        Some((a, b)) => digits(a) && digits(b),
        None => digits(mantissa),
    };
    mantissa_ok && digits(exponent)
}

/// `price × quantity` exactly, in decimal text; `None` unless both are well-formed.
pub(crate) fn times(price: &str, quantity: &str) -> Option<String> {
    let price = price.strip_prefix('+').unwrap_or(price);
    let quantity = quantity.strip_prefix('+').unwrap_or(quantity);
    if quantity.is_empty() || quantity.len() > 9 || !quantity.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let q: u64 = quantity.parse().ok()?;
    let (int, frac) = price.split_once('.').unwrap_or((price, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || (price.contains('.') && frac.is_empty()) {
        return None;
    }
    if q == 1 {
        return Some(price.to_string());
    }
    let mut reversed = Vec::with_capacity(int.len() + frac.len() + 10);
    let mut carry = 0u64;
    for d in int.bytes().chain(frac.bytes()).rev() {
        let x = u64::from(d - b'0') * q + carry;
        reversed.push(b'0' + (x % 10) as u8);
        carry = x / 10;
    }
    while carry > 0 {
        reversed.push(b'0' + (carry % 10) as u8);
        carry /= 10;
    }
    while reversed.len() <= frac.len() {
        reversed.push(b'0');
    }
    let all: String = reversed.iter().rev().map(|&b| b as char).collect();
    let (i, f) = all.split_at(all.len() - frac.len());
    let i = i.trim_start_matches('0');
    let i = if i.is_empty() { "0" } else { i };
    Some(if f.is_empty() {
        i.to_string()
    } else {
        format!("{i}.{f}")
    })
}

/// UUIDv5 over the mapped row: every target but the id, length-prefixed (`-` when empty), the
/// time as microseconds since the epoch. The same event gets the same id in any file.
/// `search_query` joins the key only when set (searches), so that the ids of every other row
/// are those derived before the target existed.
fn event_id(out: &[Option<Cow<'_, str>>; N], micros: Option<i64>) -> String {
    let mut time_digits = itoa::Buffer::new();
    let time = micros.map(|m| time_digits.format(m));
    let values = out
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(at, v)| *at != SEARCH_QUERY || v.is_some())
        .map(|(at, v)| if at == EVENT_TIME { time } else { v.as_deref() });
    let mut text = Uuid::encode_buffer();
    derived_id(&EVENT_ID_NAMESPACE, values)
        .hyphenated()
        .encode_lower(&mut text)
        .to_owned()
}

#[cfg(test)]
mod tests;
