//! The plausibility window of `event_time`: a timestamp that parses but lies outside it (the
//! year 0011 from a two-digit year read as four, a clock decades off) rejects its row. Written
//! `EARLIEST..LATEST` (`1990-01-01..now+2d`) in a profile's `event_time_window` and in
//! `--event-time-window`; resolved against the clock once per file. Reads no rows.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

/// `EARLIEST..LATEST`; both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    earliest: End,
    latest: End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// A date (midnight UTC) or an instant.
    At(DateTime<Utc>, bool),
    /// `now`, `now+2d`, `now-12h`: relative to when the file is read.
    Now(TimeDelta),
}

/// A window text that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error(
    "event_time window {text:?}: {problem}; write EARLIEST..LATEST, each a date like 1990-01-01, \
     an RFC 3339 instant, or now / now+2d / now-12h (for example \"1990-01-01..now+2d\")"
)]
pub struct WindowError {
    text: String,
    problem: &'static str,
}

/// The window of one file: instants in microseconds since the epoch, and the text that names it.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub earliest_micros: i64,
    pub latest_micros: i64,
    pub spec: TimeWindow,
}

impl Default for TimeWindow {
    /// 1990-01-01 to two days ahead: older than any web shop, later than any clock skew.
    fn default() -> Self {
        let start = NaiveDate::from_ymd_opt(1990, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .unwrap_or_default()
            .and_utc();
        TimeWindow {
            earliest: End::At(start, true),
            latest: End::Now(TimeDelta::days(2)),
        }
    }
}

impl TimeWindow {
    pub(crate) fn resolve(&self, now: DateTime<Utc>) -> Resolved {
        let at = |e: End| match e {
            End::At(t, _) => t,
            End::Now(d) => now.checked_add_signed(d).unwrap_or(now),
        };
        Resolved {
            earliest_micros: at(self.earliest).timestamp_micros(),
            latest_micros: at(self.latest).timestamp_micros(),
            spec: *self,
        }
    }
}

impl FromStr for TimeWindow {
    type Err = WindowError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |problem| WindowError {
            text: text.to_string(),
            problem,
        };
        let (a, b) = text.trim().split_once("..").ok_or(err("no \"..\""))?;
        let end = |s: &str| parse_end(s.trim()).ok_or(err("an end is not a date, instant or now"));
        let window = TimeWindow {
            earliest: end(a)?,
            latest: end(b)?,
        };
        let now = Utc::now();
        let r = window.resolve(now);
        if r.earliest_micros > r.latest_micros {
            return Err(err("EARLIEST is after LATEST"));
        }
        Ok(window)
    }
}

fn parse_end(s: &str) -> Option<End> {
    if let Some(rest) = s.strip_prefix("now") {
        if rest.is_empty() {
            return Some(End::Now(TimeDelta::zero()));
        }
        let (sign, rest) = match rest.as_bytes().first()? {
            b'+' => (1, &rest[1..]),
            b'-' => (-1, &rest[1..]),
            _ => return None,
        };
        let (n, unit) = rest.split_at(rest.len().checked_sub(1)?);
        let n: i64 = n.parse().ok().filter(|n| (0..=100_000).contains(n))?;
        let delta = match unit {
            "d" => TimeDelta::days(sign * n),
            "h" => TimeDelta::hours(sign * n),
            _ => return None,
        };
        return Some(End::Now(delta));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(End::At(d.and_hms_opt(0, 0, 0)?.and_utc(), true));
    }
    let t = DateTime::parse_from_rfc3339(s).ok()?;
    Some(End::At(t.with_timezone(&Utc), false))
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            End::At(t, true) => write!(f, "{}", t.format("%Y-%m-%d")),
            End::At(t, false) => write!(f, "{}", t.to_rfc3339()),
            End::Now(d) if d.is_zero() => f.write_str("now"),
            End::Now(d) if d.num_hours() % 24 == 0 => write!(f, "now{:+}d", d.num_days()),
            End::Now(d) => write!(f, "now{:+}h", d.num_hours()),
        }
    }
}

impl fmt::Display for TimeWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.earliest, self.latest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_read_and_write_the_same_text() {
        for text in [
            "1990-01-01..now+2d",
            "2019-10-01..2019-12-01",
            "2019-10-01T00:00:00+00:00..now",
            "2000-01-01..now-12h",
        ] {
            assert_eq!(text.parse::<TimeWindow>().unwrap().to_string(), text);
        }
        assert_eq!(TimeWindow::default().to_string(), "1990-01-01..now+2d");
        for bad in [
            "1990-01-01",
            "yesterday..now",
            "2020-01-01..2019-01-01",
            "1990-01-01..now+2w",
        ] {
            assert!(bad.parse::<TimeWindow>().is_err(), "{bad}");
        }
    }

    #[test]
    fn now_is_resolved_per_call() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let r = TimeWindow::default().resolve(now);
        assert_eq!(
            r.latest_micros,
            (now + TimeDelta::days(2)).timestamp_micros()
        );
    }
}
