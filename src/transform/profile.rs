//! Source profiles: what a CSV layout looks like and how it maps onto the native contract
//! (columns, timestamp formats and zone, event-type names, delimiter, defaults). The built-ins
//! (`profiles/*.toml`) are the same TOML a user drops into `--profiles-dir`. Owns loading,
//! validating and choosing a profile from a header; applying one to rows is [`super::mapping`].
//! Never reads CSV rows, never touches the database. Invariant: a `Profile` is valid once built.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};

use super::records;
use crate::schema::{COLUMNS, EVENT_TIME_FORMAT, KEPT_COLUMNS};

mod spec;

/// Columns a profile may fill: the native contract's, then the kept source attributes.
pub const TARGETS: [&str; 15] = [
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
];

/// Targets a profile must fill, from a column or a default (`event_id` is derived when absent).
const REQUIRED_TARGETS: [&str; 7] = [
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
const BUILT_IN: [(&str, &str); 2] = [
    ("native", include_str!("profiles/native.toml")),
    ("rees46", include_str!("profiles/rees46.toml")),
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
    pub(super) zone: Zone,
    pub(super) time_formats: Vec<TimeFormat>,
    /// (target, source) in the order the file declares them.
    pub(super) columns: Vec<(&'static str, Source)>,
    /// Source value → contract event type; empty: the values are the contract's own.
    pub(super) event_types: Vec<(String, &'static str)>,
    /// Target → value used when the source column is absent or the field empty.
    pub(super) defaults: Vec<(&'static str, String)>,
    /// Prices and totals are written with a decimal comma (`19,99`).
    pub(super) decimal_comma: bool,
    /// A purchase without a total gets product_price × quantity, exactly.
    pub(super) purchase_total: bool,
}

/// Where one target column comes from.
#[derive(Debug, Clone)]
pub(super) struct Source {
    /// Header name, trimmed and lowercased (headers are matched that way).
    pub column: String,
    /// The file may lack the column; the target is then empty (or its default).
    pub optional: bool,
    /// Keep only the text before the first occurrence of this separator.
    pub before: Option<String>,
    /// Whole numbers only; Excel's `2.05301E+18` is rejected per row.
    pub integer: bool,
}

/// The zone of timestamps written without an offset.
#[derive(Debug, Clone, Copy)]
pub(super) enum Zone {
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

/// One accepted timestamp layout.
#[derive(Debug, Clone)]
pub(super) enum TimeFormat {
    Rfc3339,
    /// A chrono pattern with an offset (`%z`, `%:z`).
    WithOffset(String),
    /// A chrono pattern without an offset, read in the profile's zone.
    Local(String),
}

impl TimeFormat {
    fn new(format: &str) -> TimeFormat {
        if format == RFC3339 {
            TimeFormat::Rfc3339
        } else if ["%z", "%:z", "%::z", "%#z"]
            .iter()
            .any(|z| format.contains(z))
        {
            TimeFormat::WithOffset(format.to_string())
        } else {
            TimeFormat::Local(format.to_string())
        }
    }

    /// The instant `text` names, or `Ok(None)` when it is not in this format.
    ///
    /// # Errors
    /// A reason when the text fits the format but names no instant in `zone` (a DST gap).
    pub(super) fn parse(&self, text: &str, zone: Zone) -> Result<Option<DateTime<Utc>>, String> {
        match self {
            TimeFormat::Rfc3339 => Ok(DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.with_timezone(&Utc))),
            TimeFormat::WithOffset(f) => Ok(DateTime::parse_from_str(text, f)
                .ok()
                .map(|t| t.with_timezone(&Utc))),
            TimeFormat::Local(f) => match NaiveDateTime::parse_from_str(text, f) {
                Ok(local) => zone.to_utc(local).map(Some),
                Err(_) => Ok(None),
            },
        }
    }

    /// This format applied to 2019-10-01 10:30:00 UTC, for messages and validation.
    pub(super) fn example(&self) -> Result<String, std::fmt::Error> {
        use std::fmt::Write as _;
        let sample = NaiveDate::from_ymd_opt(2019, 10, 1)
            .and_then(|d| d.and_hms_opt(10, 30, 0))
            .unwrap_or_default();
        let mut out = String::new();
        match self {
            TimeFormat::Rfc3339 => out.push_str("2019-10-01T10:30:00Z"),
            TimeFormat::WithOffset(f) => write!(out, "{}", sample.and_utc().format(f))?,
            TimeFormat::Local(f) => write!(out, "{}", sample.format(f))?,
        }
        Ok(out)
    }
}

impl Zone {
    fn parse(text: &str) -> Option<Zone> {
        if let Ok(tz) = text.parse::<chrono_tz::Tz>() {
            return Some(Zone::Named(tz));
        }
        let fixed =
            DateTime::parse_from_str(&format!("2000-01-01 00:00 {text}"), "%Y-%m-%d %H:%M %:z")
                .ok()?;
        Some(Zone::Fixed(*fixed.offset()))
    }

    /// A wall-clock time in this zone as UTC. An ambiguous time (the hour repeated when
    /// daylight saving ends) is taken as its earlier instant.
    fn to_utc(self, local: NaiveDateTime) -> Result<DateTime<Utc>, String> {
        let earliest = match self {
            Zone::Fixed(z) => z.from_local_datetime(&local).earliest().map(|t| t.to_utc()),
            Zone::Named(z) => z.from_local_datetime(&local).earliest().map(|t| t.to_utc()),
        };
        earliest.ok_or_else(|| {
            let name = match self {
                Zone::Fixed(z) => z.to_string(),
                Zone::Named(z) => z.name().to_string(),
            };
            format!("does not exist in time zone {name} (skipped when daylight saving began)")
        })
    }
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
    pub(super) fn is_contract_itself(&self) -> bool {
        self.columns.len() == COLUMNS.len()
            && self.columns.iter().all(|(t, s)| {
                *t == s.column
                    && COLUMNS.contains(t)
                    && s.before.is_none()
                    && !s.integer
                    && !s.optional
            })
            && matches!(&self.time_formats[..], [TimeFormat::Local(f)] if f == EVENT_TIME_FORMAT)
            && matches!(self.zone, Zone::Fixed(z) if z.local_minus_utc() == 0)
            && self.event_types.is_empty()
            && self.defaults.is_empty()
            && !self.decimal_comma
            && !self.purchase_total
    }

    /// Header columns (lowercased) this profile reads, or the required ones it lacks.
    fn claims(&self, names: &[String]) -> Result<usize, Vec<String>> {
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

/// The profiles a watcher knows: built-ins first, then the user's, in file-name order.
#[derive(Debug, Clone)]
pub struct Profiles {
    list: Vec<Arc<Profile>>,
}

static BUILT_INS: LazyLock<Profiles> = LazyLock::new(|| Profiles {
    list: BUILT_IN
        .iter()
        .map(|(name, text)| {
            // A startup invariant: the built-ins are tested (`built_ins_are_valid`).
            #[allow(clippy::expect_used)]
            Arc::new(Profile::from_toml(text, "built-in").expect(name))
        })
        .collect(),
});

impl Default for Profiles {
    fn default() -> Self {
        BUILT_INS.clone()
    }
}

/// The profile chosen for a header, with the header split by its delimiter.
#[derive(Debug, Clone)]
pub(super) struct Detected {
    pub profile: Arc<Profile>,
    pub delimiter: u8,
    /// Header names as written (trimmed, unquoted), in file order.
    pub written: Vec<String>,
}

/// A profile that did not fit a header, for the whole-file error.
#[derive(Debug, Clone)]
pub struct Miss {
    pub name: String,
    pub expected: String,
    pub missing: Vec<String>,
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (lacks {}; expects {} in any order)",
            self.name,
            self.missing.join(", "),
            self.expected
        )
    }
}

impl Profiles {
    /// The built-in profiles and every `*.toml` file of `dir`; a user profile named like a
    /// built-in replaces it.
    ///
    /// # Errors
    /// The directory or a file cannot be read, a file is not a valid profile, or two files
    /// use the same name.
    pub fn load(dir: Option<&Path>) -> Result<Profiles, ProfileError> {
        let mut profiles = Profiles::default();
        let Some(dir) = dir else {
            return Ok(profiles);
        };
        let dir_err = |source| ProfileError::Dir {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(dir_err)? {
            let path = entry.map_err(dir_err)?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                paths.push(path);
            }
        }
        paths.sort();
        let mut user: Vec<Arc<Profile>> = Vec::new();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|source| ProfileError::Read {
                path: path.clone(),
                source,
            })?;
            let profile = Profile::from_toml(&text, &path.display().to_string())?;
            if let Some(first) = user.iter().find(|p| p.name == profile.name) {
                return Err(ProfileError::DuplicateName {
                    name: profile.name.clone(),
                    first: first.origin.clone(),
                    second: profile.origin.clone(),
                });
            }
            user.push(Arc::new(profile));
        }
        for p in user {
            match profiles.list.iter_mut().find(|b| b.name == p.name) {
                Some(built_in) => *built_in = p,
                None => profiles.list.push(p),
            }
        }
        for p in &profiles.list {
            tracing::info!(profile = %p.name, origin = %p.origin, columns = %p.expected_columns().join(","), "Source profile known.");
        }
        Ok(profiles)
    }

    /// Adds a profile, replacing one of the same name.
    pub fn add(&mut self, profile: Profile) {
        let profile = Arc::new(profile);
        match self.list.iter_mut().find(|p| p.name == profile.name) {
            Some(same) => *same = profile,
            None => self.list.push(profile),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Profile>> {
        self.list.iter()
    }

    /// Chooses the profile for a header line: of the profiles whose required columns the
    /// header has (names trimmed and compared lowercased, in any order), the one that reads
    /// the most of its columns.
    ///
    /// # Errors
    /// `Err(misses)` when no profile fits (each with what it lacks), `Ok(Err(names))` when
    /// several fit equally well.
    #[allow(clippy::type_complexity)]
    pub(super) fn detect(
        &self,
        raw: &str,
        detected: u8,
    ) -> Result<Result<Detected, Vec<String>>, Vec<Miss>> {
        let mut fits: Vec<(usize, Detected)> = Vec::new();
        let mut misses = Vec::new();
        for profile in &self.list {
            let delimiter = profile.delimiter.unwrap_or(detected);
            let written = records::fields(raw, delimiter as char);
            let names: Vec<String> = written.iter().map(|n| n.to_lowercase()).collect();
            match profile.claims(&names) {
                Ok(claimed) => fits.push((
                    claimed,
                    Detected {
                        profile: profile.clone(),
                        delimiter,
                        written,
                    },
                )),
                Err(missing) => misses.push(Miss {
                    name: profile.name.clone(),
                    expected: profile
                        .expected_columns()
                        .join(&(delimiter as char).to_string()),
                    missing,
                }),
            }
        }
        let best = fits.iter().map(|(n, _)| *n).max();
        let mut best: Vec<Detected> = fits
            .into_iter()
            .filter(|(n, _)| Some(*n) == best)
            .map(|(_, d)| d)
            .collect();
        match best.len() {
            0 => Err(misses),
            1 => Ok(Ok(best.remove(0))),
            _ => Ok(Err(best.iter().map(|d| d.profile.name.clone()).collect())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        name = "shop"
        [columns]
        event_time = "ts"
        user_id = "customer"
        session_id = "visit"
        event_type = "action"
        product_id = "sku"
        product_price = "price"
        [defaults]
        quantity = "1"
    "#;

    fn error(text: &str) -> String {
        Profile::from_toml(text, "shop.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn built_ins_are_valid_and_native_is_the_contract_itself() {
        let profiles = Profiles::default();
        let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["native", "rees46"]);
        let native = &profiles.list[0];
        assert!(native.is_contract_itself());
        assert_eq!(native.expected_columns(), COLUMNS);
        let rees46 = &profiles.list[1];
        assert!(!rees46.is_contract_itself());
        assert_eq!(
            rees46.expected_columns().join(","),
            "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
        );
    }

    #[test]
    fn a_minimal_profile_reads_with_defaults() {
        let p = Profile::from_toml(MINIMAL, "shop.toml").unwrap();
        assert_eq!(p.name, "shop");
        assert_eq!(p.delimiter, None);
        assert!(matches!(&p.time_formats[..], [TimeFormat::Rfc3339]));
        assert_eq!(
            p.expected_columns(),
            ["ts", "customer", "visit", "action", "sku", "price"]
        );
    }

    #[test]
    fn toml_errors_name_the_file_line_and_problem() {
        let syntax = error("name = \"shop\"\n[columns\n");
        assert!(
            syntax.starts_with("source profile shop.toml is not a valid profile file: "),
            "{syntax}"
        );
        assert!(syntax.contains("line 2"), "{syntax}");
        let unknown = error(&format!("colour = \"red\"\n{MINIMAL}"));
        assert!(unknown.contains("unknown field `colour`"), "{unknown}");
        let shape = error("name = \"shop\"\n[columns]\nevent_time = { col = \"ts\" }\n");
        assert!(shape.contains("unknown field `col`"), "{shape}");
        let missing = error("name = \"shop\"\n");
        assert!(missing.contains("missing field `columns`"), "{missing}");
    }

    #[test]
    fn invalid_values_name_the_field() {
        let cases = [
            (MINIMAL.replace("\"shop\"", "\"My Shop\""), "source profile shop.toml: name \"My Shop\" must be lowercase letters, digits, `_` or `-`"),
            (format!("timezone = \"Mars/Olympus\"\n{MINIMAL}"), "timezone \"Mars/Olympus\" is neither an IANA zone name"),
            (format!("delimiter = \":\"\n{MINIMAL}"), "delimiter \":\" is not one of"),
            (format!("time_formats = [\"%d.%m.%Y\"]\n{MINIMAL}"), "time format \"%d.%m.%Y\" does not read a date and time back"),
            (format!("time_formats = [\"%Q\"]\n{MINIMAL}"), "time format \"%Q\" is not a valid chrono pattern"),
            (format!("purchase_total = \"guess\"\n{MINIMAL}"), "purchase_total \"guess\": the only option is"),
            (MINIMAL.replace("sku", "").replace("product_id = \"\"", "produkt = \"sku\""), "[columns] names \"produkt\", which is not a column of the contract"),
            (MINIMAL.replace("quantity = \"1\"", ""), "quantity is required by the contract: map a source column to it"),
            (format!("{MINIMAL}\n[event_types]\nklick = \"click\"\n"), "[event_types] \"klick\" = \"click\": the contract's event types are view, add_to_cart, remove_from_cart, purchase"),
        ];
        for (text, expected) in cases {
            let e = error(&text);
            assert!(e.contains(expected), "{e}\n  does not contain\n{expected}");
        }
    }

    #[test]
    fn user_profiles_load_from_a_directory_and_may_replace_a_built_in() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.toml"), MINIMAL).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a profile").unwrap();
        let rees = include_str!("profiles/rees46.toml")
            .replace("timezone = \"UTC\"", "timezone = \"+02:00\"");
        std::fs::write(dir.path().join("a.toml"), rees).unwrap();
        let profiles = Profiles::load(Some(dir.path())).unwrap();
        let names: Vec<(&str, bool)> = profiles
            .iter()
            .map(|p| (p.name.as_str(), p.origin == "built-in"))
            .collect();
        assert_eq!(
            names,
            [("native", true), ("rees46", false), ("shop", false)]
        );
        std::fs::write(dir.path().join("c.toml"), MINIMAL).unwrap();
        let twice = Profiles::load(Some(dir.path())).unwrap_err().to_string();
        assert!(
            twice.starts_with("source profile name \"shop\" is used twice: "),
            "{twice}"
        );
    }

    #[test]
    fn detection_picks_the_profile_reading_most_columns_and_names_every_miss() {
        let mut profiles = Profiles::default();
        profiles.add(Profile::from_toml(MINIMAL, "shop.toml").unwrap());
        let pick = |profiles: &Profiles, header: &str| match profiles.detect(header, b',') {
            Ok(Ok(d)) => d.profile.name.clone(),
            Ok(Err(names)) => format!("ambiguous {names:?}"),
            Err(misses) => format!(
                "none: {}",
                misses
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        };
        assert_eq!(pick(&profiles, &crate::schema::header_line()), "native");
        assert_eq!(
            pick(&profiles, "TS, Customer ,visit,action,sku,price,note"),
            "shop"
        );
        assert_eq!(
            pick(&profiles, "user_id,price"),
            "none: native (lacks event_id, event_time, session_id, event_type, product_id, \
             product_category, product_price, quantity, total_amount, device, country; expects \
             event_id,event_time,user_id,session_id,event_type,product_id,product_category,\
             product_price,quantity,total_amount,device,country in any order); rees46 (lacks \
             event_time, event_type, product_id, category_id, category_code, brand, user_session; \
             expects event_time,event_type,product_id,category_id,category_code,brand,price,\
             user_id,user_session in any order); shop (lacks ts, customer, visit, action, sku; \
             expects ts,customer,visit,action,sku,price in any order)"
        );
        // A second profile reading the same columns: a tie is refused, not guessed.
        profiles.add(Profile::from_toml(&MINIMAL.replace("\"shop\"", "\"shop2\""), "x").unwrap());
        assert_eq!(
            pick(&profiles, "ts,customer,visit,action,sku,price"),
            "ambiguous [\"shop\", \"shop2\"]"
        );
    }
}
