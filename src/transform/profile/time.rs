//! Timestamp layouts a profile accepts and the zone of those written without an offset:
//! each format either reads a text as one instant, or says it is not in that format. A
//! pattern's `%Y` takes exactly four digits and `%y` exactly two (chrono alone reads `11` for
//! `%Y` as the year 11); a two-digit year is chrono's pivot: 00-69 → 2000-2069, 70-99 →
//! 1970-1999.

use chrono::format::{parse_and_remainder, Item, Numeric, Parsed, StrftimeItems};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};

use super::RFC3339;

/// The zone of timestamps written without an offset.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Zone {
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

/// One accepted timestamp layout.
#[derive(Debug, Clone)]
pub(crate) enum TimeFormat {
    Rfc3339,
    /// A chrono pattern with an offset (`%z`, `%:z`).
    WithOffset(Pattern),
    /// A chrono pattern without an offset, read in the profile's zone.
    Local(Pattern),
}

/// A chrono pattern and its items, split once: splitting it again for every row of a
/// profile-mapped file was about 2.4 % of the watcher's CPU samples (perf on 20 REES46-layout
/// files, 2026-12-06: chrono's `StrftimeItems` 4.8 % before, 2.4 % after; the rest is Polars'
/// own strptime of the contract's time column).
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub(crate) text: String,
    items: Vec<Item<'static>>,
}

impl Pattern {
    fn new(text: &str) -> Pattern {
        Pattern {
            text: text.to_string(),
            // A pattern chrono cannot read matches no text, as `Item::Error` says.
            items: StrftimeItems::new(text)
                .parse_to_owned()
                .unwrap_or_else(|_| vec![Item::Error]),
        }
    }
}

impl TimeFormat {
    pub(crate) fn new(format: &str) -> TimeFormat {
        if format == RFC3339 {
            TimeFormat::Rfc3339
        } else if ["%z", "%:z", "%::z", "%#z"]
            .iter()
            .any(|z| format.contains(z))
        {
            TimeFormat::WithOffset(Pattern::new(format))
        } else {
            TimeFormat::Local(Pattern::new(format))
        }
    }

    /// The instant `text` names, or `Ok(None)` when it is not in this format.
    ///
    /// # Errors
    /// A reason when the text fits the format but names no instant in `zone` (a DST gap).
    pub(crate) fn parse(&self, text: &str, zone: Zone) -> Result<Option<DateTime<Utc>>, String> {
        let Some(instant) = self.parse_any(text, zone)? else {
            return Ok(None);
        };
        // The same rules as the native contract's (`rules.rs`): nothing is stored altered.
        let nanos = instant.timestamp_subsec_nanos();
        if nanos >= 1_000_000_000 {
            Err(
                "a leap second (:60) is not supported; it would be stored as the next second"
                    .into(),
            )
        } else if nanos % 1000 != 0 {
            Err(
                "has a fraction of a second finer than microseconds, which would be cut \
                 (at most 6 digits are stored)"
                    .into(),
            )
        } else {
            Ok(Some(instant))
        }
    }

    fn parse_any(&self, text: &str, zone: Zone) -> Result<Option<DateTime<Utc>>, String> {
        match self {
            TimeFormat::Rfc3339 => Ok(DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.with_timezone(&Utc))),
            TimeFormat::WithOffset(f) => Ok(parse_fixed_years(text, &f.items)
                .and_then(|p| p.to_datetime().ok())
                .map(|t| t.with_timezone(&Utc))),
            TimeFormat::Local(f) => {
                match parse_fixed_years(text, &f.items)
                    .and_then(|p| p.to_naive_datetime_with_offset(0).ok())
                {
                    Some(local) => zone.to_utc(local).map(Some),
                    None => Ok(None),
                }
            }
        }
    }

    /// This format applied to 2019-10-01 10:30:00 UTC, for messages and validation.
    pub(crate) fn example(&self) -> Result<String, std::fmt::Error> {
        let sample = NaiveDate::from_ymd_opt(2019, 10, 1)
            .and_then(|d| d.and_hms_opt(10, 30, 0))
            .unwrap_or_default();
        self.example_at(sample)
    }

    /// This format applied to `sample` (as UTC).
    pub(crate) fn example_at(&self, sample: NaiveDateTime) -> Result<String, std::fmt::Error> {
        use std::fmt::Write as _;
        let mut out = String::new();
        match self {
            TimeFormat::Rfc3339 => out.push_str("2019-10-01T10:30:00Z"),
            TimeFormat::WithOffset(f) => write!(out, "{}", sample.and_utc().format(&f.text))?,
            TimeFormat::Local(f) => write!(out, "{}", sample.format(&f.text))?,
        }
        Ok(out)
    }
}

/// Reads `text` by a pattern's `items` as chrono does, except that `%Y` takes exactly four digits
/// and `%y` exactly two, so that a two-digit year meets the `%y` pattern listed for it instead of
/// becoming the year 11 under `%Y`.
fn parse_fixed_years(text: &str, items: &[Item<'static>]) -> Option<Parsed> {
    let mut parsed = Parsed::new();
    let mut rest = text;
    for item in items {
        let width = match *item {
            Item::Numeric(Numeric::Year, _) => 4,
            Item::Numeric(Numeric::YearMod100, _) => 2,
            Item::Error => return None,
            _ => {
                rest = parse_and_remainder(&mut parsed, rest, std::iter::once(item)).ok()?;
                continue;
            }
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits != width {
            return None;
        }
        let value: i64 = rest[..width].parse().ok()?;
        if width == 4 {
            parsed.set_year(value).ok()?;
        } else {
            parsed.set_year_mod_100(value).ok()?;
        }
        rest = &rest[width..];
    }
    rest.is_empty().then_some(parsed)
}

impl Zone {
    pub(crate) fn parse(text: &str) -> Option<Zone> {
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
    pub(crate) fn to_utc(self, local: NaiveDateTime) -> Result<DateTime<Utc>, String> {
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
