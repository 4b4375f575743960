//! A profile file as written (the serde shape of the TOML) and its validation into a
//! [`Profile`]. Every rule a profile file must follow is checked here, once, at startup.

use std::fmt;
use std::marker::PhantomData;

use chrono::FixedOffset;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::{Profile, Source, TimeFormat, Zone, REQUIRED_TARGETS, TARGETS};
use crate::schema::EVENT_TYPES;

/// The TOML document of one profile (README: Source profiles).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProfileSpec {
    name: String,
    #[serde(default)]
    description: String,
    delimiter: Option<String>,
    timezone: Option<String>,
    time_formats: Option<Vec<String>>,
    event_time_window: Option<String>,
    #[serde(deserialize_with = "ordered")]
    columns: Vec<(String, SourceSpec)>,
    #[serde(default, deserialize_with = "ordered")]
    event_types: Vec<(String, String)>,
    #[serde(default, deserialize_with = "ordered")]
    defaults: Vec<(String, String)>,
    #[serde(default)]
    decimal_comma: bool,
    purchase_total: Option<String>,
}

/// `target = "column"` or `target = { column = "…", optional = …, before = "…", integer = … }`.
#[derive(Debug)]
struct SourceSpec(SourceTable);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceTable {
    column: String,
    #[serde(default)]
    optional: bool,
    before: Option<String>,
    #[serde(default)]
    integer: bool,
}

impl<'de> Deserialize<'de> for SourceSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SourceSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a source column name, or a table like { column = \"price\" }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SourceSpec, E> {
                Ok(SourceSpec(SourceTable {
                    column: v.to_string(),
                    optional: false,
                    before: None,
                    integer: false,
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SourceSpec, A::Error> {
                SourceTable::deserialize(de::value::MapAccessDeserializer::new(map)).map(SourceSpec)
            }
        }
        d.deserialize_any(V)
    }
}

/// A TOML table as (key, value) pairs in the order the file writes them.
fn ordered<'de, D, T>(d: D) -> Result<Vec<(String, T)>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Vec<(String, T)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a table")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(entry) = map.next_entry()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
    d.deserialize_map(V(PhantomData))
}

fn target(name: &str, section: &str) -> Result<&'static str, String> {
    TARGETS.iter().copied().find(|t| *t == name).ok_or_else(|| {
        format!(
            "[{section}] names {name:?}, which is not a column of the contract; use one of {}",
            TARGETS.join(", ")
        )
    })
}

/// Two formats that read one text as different instants make a row's time depend on the order
/// they are listed in (`03/04/2019` is March 4 or April 3): such a profile is refused at load
/// rather than guessing per row. Checked on 2019-03-04 10:30, whose day and month both fit
/// either place.
fn check_day_month_order(
    written: &[String],
    formats: &[TimeFormat],
    zone: Zone,
) -> Result<(), String> {
    let sample = chrono::NaiveDate::from_ymd_opt(2019, 3, 4)
        .and_then(|d| d.and_hms_opt(10, 30, 0))
        .unwrap_or_default();
    for (i, a) in formats.iter().enumerate() {
        let Ok(text) = a.example_at(sample) else {
            continue;
        };
        let meant = a.parse(&text, zone).ok().flatten();
        for (j, b) in formats.iter().enumerate() {
            if i == j {
                continue;
            }
            if let Ok(Some(other)) = b.parse(&text, zone) {
                if Some(other) != meant {
                    return Err(format!(
                        "time formats {:?} and {:?} both read {text:?}, as different times \
                         (day and month swapped?); list only the order the source writes",
                        written[i], written[j]
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A profile's `name`: lowercase letters, digits, `_` or `-` (it is recorded in the ledger).
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name {name:?} must be lowercase letters, digits, `_` or `-`"
        ))
    }
}

/// A profile's `delimiter`: `None` when unset (detected from the header).
pub(crate) fn delimiter(text: Option<&str>) -> Result<Option<u8>, String> {
    match text {
        None => Ok(None),
        Some(",") => Ok(Some(b',')),
        Some(";") => Ok(Some(b';')),
        Some("\t") => Ok(Some(b'\t')),
        Some("|") => Ok(Some(b'|')),
        Some(other) => Err(format!(
            "delimiter {other:?} is not one of \",\", \";\", \"\\t\", \"|\""
        )),
    }
}

/// A profile's `timezone`: UTC when unset.
pub(crate) fn zone(text: Option<&str>) -> Result<Zone, String> {
    match text {
        None => Ok(Zone::Fixed(
            FixedOffset::east_opt(0).ok_or("no UTC offset")?,
        )),
        Some(text) => Zone::parse(text).ok_or_else(|| {
            format!(
                "timezone {text:?} is neither an IANA zone name like \"Europe/Berlin\" \
                 nor a fixed offset like \"+01:00\""
            )
        }),
    }
}

impl ProfileSpec {
    /// Checks every field and builds the profile.
    ///
    /// # Errors
    /// A message naming the field and what is wrong with it.
    pub(super) fn validate(self, origin: &str) -> Result<Profile, String> {
        check_name(&self.name)?;
        let delimiter = delimiter(self.delimiter.as_deref())?;
        let zone = zone(self.timezone.as_deref())?;
        let formats = self
            .time_formats
            .unwrap_or_else(|| vec![super::RFC3339.to_string()]);
        if formats.is_empty() {
            return Err("time_formats is empty; name at least one format".into());
        }
        let mut time_formats = Vec::new();
        for f in &formats {
            let format = TimeFormat::new(f);
            // A pattern must write the sample and read it back as a date and time.
            let example = format
                .example()
                .map_err(|_| format!("time format {f:?} is not a valid chrono pattern"))?;
            if !matches!(format.parse(&example, zone), Ok(Some(_))) {
                return Err(format!(
                    "time format {f:?} does not read a date and time back (it writes {example:?}); \
                     it needs year, month, day, hour and minute"
                ));
            }
            time_formats.push(format);
        }
        check_day_month_order(&formats, &time_formats, zone)?;
        let window = match self.event_time_window.as_deref() {
            None => None,
            Some(text) => Some(
                text.parse()
                    .map_err(|e: super::WindowError| e.to_string())?,
            ),
        };
        let mut columns: Vec<(&'static str, Source)> = Vec::new();
        for (name, SourceSpec(s)) in self.columns {
            let t = target(&name, "columns")?;
            let column = s.column.trim().to_lowercase();
            if column.is_empty() {
                return Err(format!("[columns] {name} names an empty source column"));
            }
            if s.before.as_deref() == Some("") {
                return Err(format!("[columns] {name}: before must not be empty"));
            }
            if columns.iter().any(|(seen, _)| *seen == t) {
                return Err(format!("[columns] maps {name} twice"));
            }
            columns.push((
                t,
                Source {
                    column,
                    optional: s.optional,
                    before: s.before,
                    integer: s.integer || t == "category_id",
                },
            ));
        }
        if columns.iter().all(|(_, s)| s.optional) {
            return Err(
                "[columns] names no required source column, so it would fit any header".into(),
            );
        }
        let mut event_types = Vec::new();
        for (source, contract) in self.event_types {
            let Some(t) = EVENT_TYPES.iter().copied().find(|t| *t == contract) else {
                return Err(format!(
                    "[event_types] {source:?} = {contract:?}: the contract's event types are {}",
                    EVENT_TYPES.join(", ")
                ));
            };
            event_types.push((source, t));
        }
        let mut defaults = Vec::new();
        for (name, value) in self.defaults {
            let t = target(&name, "defaults")?;
            if t == "event_id" || t == "event_time" {
                return Err(format!(
                    "[defaults] {name}: a default {name} makes no sense"
                ));
            }
            defaults.push((t, value));
        }
        for t in REQUIRED_TARGETS {
            let mapped = columns.iter().any(|(c, _)| *c == t);
            if !mapped && !defaults.iter().any(|(d, _)| *d == t) {
                return Err(format!(
                    "{t} is required by the contract: map a source column to it in [columns] \
                     or give it a value in [defaults]"
                ));
            }
        }
        let purchase_total = match self.purchase_total.as_deref() {
            None => false,
            Some("price_times_quantity") => true,
            Some(other) => {
                return Err(format!(
                    "purchase_total {other:?}: the only option is \"price_times_quantity\""
                ))
            }
        };
        Ok(Profile {
            name: self.name,
            description: self.description,
            origin: origin.to_string(),
            delimiter,
            zone,
            time_formats,
            window,
            columns,
            event_types,
            defaults,
            decimal_comma: self.decimal_comma,
            purchase_total,
        })
    }
}
