//! Source profiles: what a CSV layout looks like and how it maps onto the native contract
//! (columns, timestamp formats and zone, event-type names, delimiter, defaults). The built-ins
//! (`profiles/*.toml`) are the same TOML a user drops into `--profiles-dir`. Owns loading,
//! validating and choosing a profile from a header; applying one to rows is [`super::mapping`].
//! Never reads CSV rows, never touches the database. Invariant: a `Profile` is valid once built.

use std::path::PathBuf;

use crate::schema::{COLUMNS, EVENT_TIME_FORMAT, KEPT_COLUMNS};

mod registry;
mod spec;
#[cfg(test)]
mod tests;
mod time;
mod window;

pub(crate) use registry::Detection;
pub use registry::{Miss, Profiles};
pub(crate) use spec::{check_name, delimiter, zone};
pub(crate) use time::{TimeFormat, Zone};
pub(crate) use window::Resolved as ResolvedWindow;
pub use window::{TimeWindow, WindowError};

/// Columns a profile may fill: the native contract's, then the kept source attributes.
pub const TARGETS: [&str; 16] = [
    COLUMNS[0],
    COLUMNS[1],
    COLUMNS[2],
    COLUMNS[3],
    COLUMNS[4],
    COLUMNS[5],
    COLUMNS[6],
    COLUMNS[7],
    COLUMNS[8],
    COLUMNS[9],
    COLUMNS[10],
    COLUMNS[11],
    KEPT_COLUMNS[0],
    KEPT_COLUMNS[1],
    KEPT_COLUMNS[2],
    KEPT_COLUMNS[3],
];

/// Targets a profile must fill, from a column or a default (`event_id` is derived when absent).
pub(crate) const REQUIRED_TARGETS: [&str; 7] = [
    "event_time",
    "user_id",
    "session_id",
    "event_type",
    "product_id",
    "product_price",
    "quantity",
];

/// Keyword of `time_formats` for RFC 3339 with any offset (`2019-10-01T10:30:00+02:00`).
pub const RFC3339: &str = "rfc3339";

/// The built-in profiles, in the order they are tried and listed.
pub(crate) const BUILT_IN: [(&str, &str); 2] = [
    ("native", include_str!("builtin/native.toml")),
    ("rees46", include_str!("builtin/rees46.toml")),
];

/// Why a profile file cannot be used; the watcher refuses to start with it.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read the profiles directory {}: {source}", .path.display())]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read source profile {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("source profile {origin} is not a valid profile file: {message}")]
    Toml { origin: String, message: String },
    #[error("source profile {origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error("source profile name {name:?} is used twice: {first} and {second}")]
    DuplicateName {
        name: String,
        first: String,
        second: String,
    },
}

/// A validated source profile.
#[derive(Debug)]
pub struct Profile {
    /// Recorded in the ledger (`ingest_files.profile`) for each file read with it.
    pub name: String,
    pub description: String,
    /// `built-in` or the path of the TOML file.
    pub origin: String,
    /// Fixed delimiter; `None`: detected from the header (`;` or `,`).
    pub delimiter: Option<u8>,
    pub(crate) zone: Zone,
    pub(crate) time_formats: Vec<TimeFormat>,
    /// Plausible event times of this source; `None`: the watcher's `--event-time-window`.
    pub(crate) window: Option<TimeWindow>,
    /// (target, source) in the order the file declares them.
    pub(crate) columns: Vec<(&'static str, Source)>,
    /// Source value → contract event type; empty: the values are the contract's own.
    pub(crate) event_types: Vec<(String, &'static str)>,
    /// Target → value used when the source column is absent or the field empty.
    pub(crate) defaults: Vec<(&'static str, String)>,
    /// Prices and totals are written with a decimal comma (`19,99`).
    pub(crate) decimal_comma: bool,
    /// A purchase without a total gets product_price × quantity, exactly.
    pub(crate) purchase_total: bool,
}

/// Where one target column comes from.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// Header name, trimmed and lowercased (headers are matched that way).
    pub column: String,
    /// The file may lack the column; the target is then empty (or its default).
    pub optional: bool,
    /// Keep only the text before the first occurrence of this separator.
    pub before: Option<String>,
    /// Whole numbers only; Excel's `2.05301E+18` is rejected per row.
    pub integer: bool,
}

impl Profile {
    /// Parses and validates one profile file's text; `origin` names it in errors.
    ///
    /// # Errors
    /// `Toml` when the text is not TOML of the profile's shape (the message has line and
    /// column), `Invalid` when a value is not allowed (the message names the field).
    pub fn from_toml(text: &str, origin: &str) -> Result<Profile, ProfileError> {
        let spec: spec::ProfileSpec = toml::from_str(text).map_err(|e| ProfileError::Toml {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        spec.validate(origin)
            .map_err(|message| ProfileError::Invalid {
                origin: origin.to_string(),
                message,
            })
    }

    /// The source columns a header must have, in the order the profile declares them.
    pub fn expected_columns(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for (_, s) in &self.columns {
            if !s.optional && !out.contains(&s.column.as_str()) {
                out.push(&s.column);
            }
        }
        out
    }

    /// The contract read as it is: same names, native time format, nothing derived. Such a
    /// profile needs no per-row mapping; the contract rules see the file's own values.
    pub(crate) fn is_contract_itself(&self) -> bool {
        self.columns.len() == COLUMNS.len()
            && self.columns.iter().all(|(t, s)| {
                *t == s.column
                    && COLUMNS.contains(t)
                    && s.before.is_none()
                    && !s.integer
                    && !s.optional
            })
            && matches!(&self.time_formats[..], [TimeFormat::Local(f)] if f.text == EVENT_TIME_FORMAT)
            && matches!(self.zone, Zone::Fixed(z) if z.local_minus_utc() == 0)
            && self.event_types.is_empty()
            && self.defaults.is_empty()
            && !self.decimal_comma
            && !self.purchase_total
    }

    /// Header columns (lowercased) this profile reads, or the required ones it lacks.
    pub(crate) fn claims(&self, names: &[String]) -> Result<usize, Vec<String>> {
        let missing: Vec<String> = self
            .expected_columns()
            .into_iter()
            .filter(|c| !names.iter().any(|n| n == c))
            .map(str::to_string)
            .collect();
        if !missing.is_empty() {
            return Err(missing);
        }
        Ok(names
            .iter()
            .filter(|n| self.columns.iter().any(|(_, s)| &s.column == *n))
            .count())
    }
}
