//! Extra columns: header columns the contract does not name. They are kept, not dropped: each
//! good row carries them as one JSON object (text in the `EXTRA` column, JSONB in Postgres).
//! Owns the internal names of those columns so that no header can collide with the frame's own
//! `__` columns; knows nothing of the rules or the database. The raw text of a repaired value
//! (`super::repair`) joins the same object under `<target>_raw`.

use std::collections::HashMap;

use polars::prelude::*;

use super::repair::{raw_key, RowWarning};
use super::LINE;

/// Name of the good-rows column holding a row's extra columns as JSON object text, or null
/// when the file has none or all of them are empty in that row.
pub const EXTRA: &str = "__extra";

/// One column of the file that is not in the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraColumn {
    /// The key in the row's JSON object: the header name as written (trimmed), or
    /// `column_<n>` (1-based position) when the header cell is empty.
    pub key: String,
    /// The column's name inside the frame (`__x<n>`), never a name a header could choose.
    pub column: String,
}

impl ExtraColumn {
    /// The extra column at 0-based `index` of the header, named `written` there.
    pub fn new(index: usize, written: &str) -> ExtraColumn {
        let key = if written.is_empty() {
            format!("column_{}", index + 1)
        } else {
            written.to_string()
        };
        ExtraColumn {
            key,
            column: format!("__x{}", index + 1),
        }
    }
}

/// Adds `EXTRA` to `frame` from its extra columns and the raw text of its rows' `repaired`
/// values. Values are trimmed; empty ones are left out of the object, so an Excel export's
/// trailing unnamed columns add nothing.
pub fn add_extra_column(
    frame: &mut DataFrame,
    extra: &[ExtraColumn],
    repaired: &[RowWarning],
) -> PolarsResult<()> {
    let height = frame.height();
    let mut objects: Vec<serde_json::Map<String, serde_json::Value>> =
        vec![serde_json::Map::new(); height];
    for x in extra {
        let values = frame.column(&x.column)?.str()?;
        for (object, value) in objects.iter_mut().zip(values.iter()) {
            if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
                object.insert(x.key.clone(), serde_json::Value::String(v.to_string()));
            }
        }
    }
    if !repaired.is_empty() {
        let mut by_line: HashMap<u64, Vec<&RowWarning>> = HashMap::new();
        for w in repaired {
            by_line.entry(w.line).or_default().push(w);
        }
        let lines = frame.column(LINE)?.u64()?;
        for (object, line) in objects.iter_mut().zip(lines.iter()) {
            for w in line.and_then(|l| by_line.get(&l)).into_iter().flatten() {
                let raw = serde_json::Value::String(w.raw_value.clone());
                object.insert(raw_key(w.target), raw);
            }
        }
    }
    let json: Vec<Option<String>> = objects
        .into_iter()
        .map(|o| (!o.is_empty()).then(|| serde_json::Value::Object(o).to_string()))
        .collect();
    frame.with_column(Column::new(EXTRA.into(), json))?;
    Ok(())
}
