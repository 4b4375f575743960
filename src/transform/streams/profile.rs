//! Stream profiles: a user profile (`stream = "transactions"` in a `--profiles-dir` TOML file)
//! that maps a shop's own line-item export (an order-items file, an invoice-lines file such as
//! UCI Online Retail) onto the transactions contract: source column names, timestamp formats
//! and zone, decimal comma, defaults, and the values such exports leave out (the line number,
//! `item_total`, `total_amount`) derived exactly. Mapping only: the contract's checks
//! ([`super::transactions`]) then judge every mapped row as they judge a native one.
//! Never reads files, never touches the database.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use super::transactions::TRANSACTION_COLUMNS;
use super::values::{amount, show_units};
use super::Row;
use crate::transform::profile::{check_name, delimiter, zone, TimeFormat, Zone, RFC3339};

/// Targets a stream profile must map (or, where allowed, give in `[defaults]`).
const MAPPED: [&str; 4] = ["transaction_id", "transaction_time", "product_id", "price"];
/// Amount targets, read with a decimal comma when the profile says so.
const AMOUNTS: [&str; 5] = [
    "price",
    "item_total",
    "tax_amount",
    "shipping_cost",
    "total_amount",
];

/// The TOML of a stream profile (README: "Profiles for order-item and invoice-line exports").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    name: String,
    #[serde(default)]
    description: String,
    stream: String,
    delimiter: Option<String>,
    timezone: Option<String>,
    time_formats: Option<Vec<String>>,
    #[serde(default)]
    decimal_comma: bool,
    columns: toml::Table,
    #[serde(default)]
    defaults: toml::Table,
}

/// A validated stream profile.
#[derive(Debug)]
pub struct StreamProfile {
    pub name: String,
    pub description: String,
    /// The TOML file it came from.
    pub origin: String,
    delimiter: Option<u8>,
    zone: Zone,
    time_formats: Vec<TimeFormat>,
    /// The formats as written, for rejects ("not a timestamp like …").
    examples: Vec<String>,
    decimal_comma: bool,
    /// (contract column, source column lowercased, optional) in the file's order.
    columns: Vec<(&'static str, String, bool)>,
    defaults: Vec<(&'static str, String)>,
}

/// Whether a profile file is a stream profile (has a top-level `stream` key).
pub(crate) fn is_stream_profile(text: &str) -> bool {
    text.parse::<toml::Table>()
        .is_ok_and(|t| t.contains_key("stream"))
}

impl StreamProfile {
    /// Parses and validates one stream profile file's text; `origin` names it in errors.
    ///
    /// # Errors
    /// A message naming the field and what is wrong with it.
    pub fn from_toml(text: &str, origin: &str) -> Result<StreamProfile, String> {
        let spec: Spec = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        if spec.stream != "transactions" {
            return Err(format!(
                "stream {:?}: the only stream a profile can map is \"transactions\"",
                spec.stream
            ));
        }
        check_name(&spec.name)?;
        let delimiter = delimiter(spec.delimiter.as_deref())?;
        let zone = zone(spec.timezone.as_deref())?;
        let examples = spec
            .time_formats
            .unwrap_or_else(|| vec![RFC3339.to_string()]);
        if examples.is_empty() {
            return Err("time_formats is empty; name at least one format".into());
        }
        let mut time_formats = Vec::new();
        for f in &examples {
            let format = TimeFormat::new(f);
            let back = format.example().ok().map(|e| format.parse(&e, zone));
            if !matches!(back, Some(Ok(Some(_)))) {
                return Err(format!(
                    "time format {f:?} does not read a date and time back; it needs year, \
                     month, day, hour and minute"
                ));
            }
            time_formats.push(format);
        }
        let target = |name: &str, section: &str| {
            TRANSACTION_COLUMNS
                .iter()
                .copied()
                .find(|t| *t == name)
                .ok_or_else(|| {
                    format!(
                        "[{section}] names {name:?}, which is not a column of the transactions \
                         contract; use one of {}",
                        TRANSACTION_COLUMNS.join(", ")
                    )
                })
        };
        let mut columns = Vec::new();
        for (name, value) in spec.columns {
            let t = target(&name, "columns")?;
            let (column, optional) = match &value {
                toml::Value::String(c) => (c.clone(), false),
                toml::Value::Table(table) => {
                    if let Some(k) = table.keys().find(|k| *k != "column" && *k != "optional") {
                        return Err(format!("[columns] {name}: unknown key {k:?}"));
                    }
                    let column = table.get("column").and_then(toml::Value::as_str);
                    let optional = table.get("optional").and_then(toml::Value::as_bool);
                    match column {
                        Some(c) => (c.to_string(), optional.unwrap_or(false)),
                        None => return Err(format!("[columns] {name}: needs column = \"…\"")),
                    }
                }
                _ => return Err(format!("[columns] {name}: a column name or a table")),
            };
            let column = column.trim().to_lowercase();
            if column.is_empty() {
                return Err(format!("[columns] {name} names an empty source column"));
            }
            columns.push((t, column, optional));
        }
        let mut defaults = Vec::new();
        for (name, value) in spec.defaults {
            let t = target(&name, "defaults")?;
            let Some(v) = value.as_str() else {
                return Err(format!("[defaults] {name}: the value must be a string"));
            };
            if matches!(t, "transaction_id" | "transaction_time" | "line_number") {
                return Err(format!(
                    "[defaults] {name}: a default {name} makes no sense"
                ));
            }
            defaults.push((t, v.to_string()));
        }
        for t in MAPPED.into_iter().chain(["user_id", "quantity"]) {
            let mapped = columns.iter().any(|(c, _, _)| *c == t);
            let defaulted = defaults.iter().any(|(d, _)| *d == t) && !MAPPED.contains(&t);
            if !mapped && !defaulted {
                return Err(format!(
                    "{t} is required by the transactions contract: map a source column to it \
                     in [columns]{}",
                    if MAPPED.contains(&t) {
                        ""
                    } else {
                        " or give it a value in [defaults]"
                    }
                ));
            }
        }
        Ok(StreamProfile {
            name: spec.name,
            description: spec.description,
            origin: origin.to_string(),
            delimiter,
            zone,
            time_formats,
            examples,
            decimal_comma: spec.decimal_comma,
            columns,
            defaults,
        })
    }

    /// The delimiter the profile fixes, if any.
    pub(crate) fn delimiter(&self) -> Option<u8> {
        self.delimiter
    }

    /// How many header columns (lowercased `names`) it reads, or `None` when the header lacks
    /// one it needs.
    pub(crate) fn claims(&self, names: &[String]) -> Option<usize> {
        let has = |c: &str| names.iter().any(|n| n == c);
        self.columns
            .iter()
            .all(|(_, c, optional)| *optional || has(c))
            .then(|| self.columns.iter().filter(|(_, c, _)| has(c)).count())
    }

    /// The source column a contract column is read from, as the header writes it.
    pub(crate) fn source_of<'h>(&self, target: &str, written: &'h [String]) -> Option<&'h str> {
        let (_, column, _) = self.columns.iter().find(|(t, _, _)| *t == target)?;
        written
            .iter()
            .find(|w| w.trim().to_lowercase() == *column)
            .map(|w| w.trim())
    }

    /// Contract column → field index for a header's lowercased `names`: mapped columns at
    /// their place, every other contract column at `names.len() + k` (filled by [`Self::fill`]).
    pub(crate) fn layout(&self, names: &[String]) -> HashMap<String, usize> {
        let mut at = names.len();
        let mut out = HashMap::new();
        for t in TRANSACTION_COLUMNS {
            let source = self
                .columns
                .iter()
                .find(|(c, _, _)| *c == t)
                .and_then(|(_, s, _)| names.iter().position(|n| n == s));
            out.insert(
                t.to_string(),
                source.unwrap_or_else(|| {
                    at += 1;
                    at - 1
                }),
            );
        }
        out
    }

    /// Maps every row in place (fields beyond the header's were added empty): timestamps to
    /// RFC 3339, decimal commas to points, defaults into empty fields, then the derived line
    /// numbers (file order within a transaction), item totals (price × quantity, exact) and
    /// transaction totals (items + tax + shipping, exact). A timestamp in none of the formats
    /// marks its row with the reason, for the contract's check to reject.
    pub(super) fn fill(&self, rows: &mut [Row<'_>]) {
        let mapped = |t: &str| self.columns.iter().any(|(c, _, _)| *c == t);
        let mut lines: HashMap<String, i32> = HashMap::new();
        for row in rows.iter_mut() {
            if let Some(v) = row.get("transaction_time").map(str::to_string) {
                match self.time(&v) {
                    Ok(t) => row.set("transaction_time", t),
                    Err(reason) => row.pre = Some(("transaction_time", reason)),
                }
            }
            if self.decimal_comma {
                for t in AMOUNTS {
                    if let Some(v) = row.get(t).filter(|v| v.contains(',')) {
                        let v = v.replace(',', ".");
                        row.set(t, v);
                    }
                }
            }
            for (t, v) in &self.defaults {
                if row.get(t).is_none() {
                    row.set(t, v.clone());
                }
            }
            if !mapped("line_number") {
                if let Some(id) = row.get("transaction_id") {
                    let n = lines.entry(id.to_string()).or_insert(0);
                    *n += 1;
                    let n = n.to_string();
                    row.set("line_number", n);
                }
            }
            if !mapped("item_total") {
                let total = row
                    .get("price")
                    .zip(row.get("quantity"))
                    .and_then(|(p, q)| crate::transform::mapping::times(p, q));
                if let Some(total) = total {
                    row.set("item_total", total);
                }
            }
        }
        if mapped("total_amount") {
            return;
        }
        let mut totals: HashMap<String, i128> = HashMap::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for row in rows.iter() {
            let Some(id) = row.get("transaction_id") else {
                continue;
            };
            let units = |t: &str| {
                row.get(t)
                    .and_then(|v| amount(v).ok())
                    .map_or(0, |a| a.units)
            };
            let mut add = units("item_total");
            // Tax and shipping are the transaction's, repeated on each line: counted once.
            if seen.insert(id) {
                add += units("tax_amount") + units("shipping_cost");
            }
            *totals.entry(id.to_string()).or_insert(0) += add;
        }
        for row in rows.iter_mut() {
            if let Some(sum) = row.get("transaction_id").and_then(|id| totals.get(id)) {
                let text = show_units(*sum);
                row.set("total_amount", text);
            }
        }
    }

    /// A source timestamp as RFC 3339 UTC with microseconds, or why it cannot be read.
    fn time(&self, v: &str) -> Result<String, String> {
        for f in &self.time_formats {
            if let Some(t) = f.parse(v, self.zone)? {
                let mut out = String::with_capacity(27);
                crate::schema::write_event_time(&mut out, t);
                return Ok(out);
            }
        }
        Err(format!(
            "not a timestamp in the profile's time_formats ({}) (got {v:?})",
            self.examples.join(", ")
        ))
    }
}
