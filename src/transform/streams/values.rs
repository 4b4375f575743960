//! The value rules the stream contracts share: exact amounts (fixed point, 12 decimals, never
//! a float), integers, RFC 3339 times inside the plausible window. Each check returns the
//! reason a value breaks its rule, worded as the event contract words it. Reads no rows.

use chrono::{DateTime, Timelike, Utc};

use crate::transform::profile::ResolvedWindow;

/// Decimal places every amount is compared at: the most an amount may carry.
const SCALE_DIGITS: usize = 12;
const SCALE: i128 = 1_000_000_000_000;
/// Digits before the point an amount may carry (as events' `total_amount`).
const INT_DIGITS: usize = 20;

/// An amount as written (trimmed, for `numeric`) and its exact value in 10⁻¹² units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount {
    pub text: String,
    pub units: i128,
}

/// A decimal ≥ 0 like `19.99` (an optional `+`, no minus, not even on 0; at most 20 digits
/// before the point and 12 after).
pub fn amount(text: &str) -> Result<Amount, String> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !all_digits(int) || !all_digits(frac) || digits.ends_with('.') {
        return Err("not a decimal number ≥ 0 like 19.99".into());
    }
    let int = int.trim_start_matches('0');
    if int.len() > INT_DIGITS || frac.len() > SCALE_DIGITS {
        return Err(format!(
            "more digits than an amount may have (at most {INT_DIGITS} before the point and \
             {SCALE_DIGITS} after)"
        ));
    }
    let int_units: i128 = if int.is_empty() { 0 } else { parse_i128(int) };
    let frac_units = parse_i128(&format!("{frac:0<SCALE_DIGITS$}"));
    Ok(Amount {
        text: text.to_string(),
        units: int_units * SCALE + frac_units,
    })
}

/// Digits known to be ASCII and few enough for i128.
fn parse_i128(digits: &str) -> i128 {
    digits
        .bytes()
        .fold(0i128, |n, b| n * 10 + i128::from(b - b'0'))
}

/// An amount in 10⁻¹² units as a decimal, without trailing zeros past the second decimal.
pub fn show_units(units: i128) -> String {
    let int = units / SCALE;
    let frac = format!("{:012}", (units % SCALE).abs());
    let frac = frac.trim_end_matches('0');
    format!("{int}.{frac:0<2}")
}

/// A whole number (an optional sign); `min` the least value allowed, named in the reason.
pub fn integer(text: &str, min: Option<i32>) -> Result<i32, String> {
    let n: i32 = text
        .strip_prefix('+')
        .unwrap_or(text)
        .parse()
        .map_err(|_| match min {
            Some(m) => format!("not a whole number ≥ {m}"),
            None => "not a whole number".to_string(),
        })?;
    match min {
        Some(m) if n < m => Err(format!("not a whole number ≥ {m}")),
        _ => Ok(n),
    }
}

/// An RFC 3339 timestamp (any offset, stored as the instant), not a leap second, no finer
/// than microseconds, inside the plausible window.
pub fn time(text: &str, window: &ResolvedWindow) -> Result<DateTime<Utc>, String> {
    let t = DateTime::parse_from_rfc3339(text)
        .map_err(|_| "not an RFC 3339 timestamp like 2026-11-01T10:30:00.123456Z".to_string())?
        .with_timezone(&Utc);
    if t.nanosecond() >= 1_000_000_000 {
        return Err(
            "a leap second (:60) is not supported; it would be stored as the next second".into(),
        );
    }
    if t.nanosecond() % 1_000 != 0 {
        return Err(
            "has a fraction of a second finer than microseconds, which would be cut \
                    (at most 6 digits are stored)"
                .into(),
        );
    }
    let micros = t.timestamp_micros();
    if micros < window.earliest_micros || micros > window.latest_micros {
        return Err(format!(
            "outside the plausible time window {} (--event-time-window)",
            window.spec
        ));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_and_refuse_signs_and_too_many_digits() {
        assert_eq!(amount("19.99").unwrap().units, 19_990_000_000_000);
        assert_eq!(amount("+0.1").unwrap().units, 100_000_000_000);
        assert_eq!(amount("007").unwrap().units, 7 * SCALE);
        for bad in ["", "-1", "-0", "1.", ".5", "1e3", "1,5", "abc", "1.2.3"] {
            assert!(amount(bad).is_err(), "{bad}");
        }
        assert!(amount("1.1234567890123")
            .unwrap_err()
            .contains("more digits"));
        assert!(amount("123456789012345678901")
            .unwrap_err()
            .contains("more digits"));
        assert_eq!(show_units(amount("69.7").unwrap().units), "69.70");
        assert_eq!(show_units(amount("0.125").unwrap().units), "0.125");
    }

    #[test]
    fn integers_and_times_follow_the_event_rules() {
        assert_eq!(integer("+3", Some(1)), Ok(3));
        assert_eq!(integer("-4", None), Ok(-4));
        assert!(integer("0", Some(1)).is_err());
        assert!(integer("1.5", None).is_err());
        let window = crate::transform::TimeWindow::default().resolve(Utc::now());
        assert!(time("2026-11-01T10:30:00.123456Z", &window).is_ok());
        assert!(time("2026-11-01T10:30:00+01:00", &window).is_ok());
        assert!(time("2026-11-01T23:59:60Z", &window)
            .unwrap_err()
            .contains("leap"));
        assert!(time("2026-11-01T10:30:00.1234567Z", &window)
            .unwrap_err()
            .contains("finer"));
        assert!(time("0011-11-01T10:30:00Z", &window)
            .unwrap_err()
            .contains("window"));
        assert!(time("2026-11-01 10:30", &window).is_err());
    }
}
