//! The native CSV contract (README, "CSV contract"): column names and order, event types,
//! devices, the event_time format. The contract's lists are defined here; code that needs one
//! column (a rule, a COPY column list, a query) names it where it uses it.
//! Invariant: `COLUMNS` is the header shopstream-gen writes, in order. `KEPT_COLUMNS` are not
//! part of the native header: source profiles may fill them, native files leave them empty.

/// The native header, in the order shopstream-gen writes it.
pub const COLUMNS: [&str; 12] = [
    "event_id",
    "event_time",
    "user_id",
    "session_id",
    "event_type",
    "product_id",
    "product_category",
    "product_price",
    "quantity",
    "total_amount",
    "device",
    "country",
];

/// Source attributes beyond the native contract that a source profile may keep (nullable
/// columns of `streaming.events`); `category_id` must be a whole number fitting BIGINT.
/// `search_query` is also read from a native file that has the column (a search's text).
pub const KEPT_COLUMNS: [&str; 4] = ["brand", "category_id", "category_code", SEARCH_QUERY];

/// The column holding a search's text: required for `search` rows, empty for every other type.
pub const SEARCH_QUERY: &str = "search_query";

/// The header line, without a line ending.
pub fn header_line() -> String {
    COLUMNS.join(",")
}

/// The event types a row may name: the funnel steps, and `search` (a query typed into the
/// shop's search box: `search_query` set, the product columns empty).
pub const EVENT_TYPES: [&str; 5] = [
    "view",
    "add_to_cart",
    "remove_from_cart",
    "purchase",
    SEARCH,
];

/// The event type of a search: it names no product, so the product columns stay empty.
pub const SEARCH: &str = "search";

/// Columns a `search` row leaves empty (it names no product); required or optional for others.
pub const PRODUCT_COLUMNS: [&str; 5] = [
    "product_id",
    "product_category",
    "product_price",
    "quantity",
    "total_amount",
];

/// The only event type that carries a `total_amount` and lands in `streaming.purchases`.
pub const PURCHASE: &str = "purchase";

/// Devices a row may name; the column may also be empty.
pub const DEVICES: [&str; 3] = ["mobile", "desktop", "tablet"];

/// The timestamp format of `event_time` (RFC 3339, UTC, microseconds).
pub const EVENT_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.fZ";

/// Writes `time` as shopstream writes an `event_time` (generator files, Kafka messages):
/// `EVENT_TIME_FORMAT` with exactly six fractional digits, `2026-11-01T10:30:00.123456Z`.
/// Digit by digit: with `write!` the formatting machinery was 2-3 % of the watcher's samples
/// with the mirror on (a message per event). Years past 9999 or before 0 go through `write!`.
pub fn write_event_time(out: &mut String, time: chrono::DateTime<chrono::Utc>) {
    use chrono::{Datelike, Timelike};
    let year = time.year();
    if !(0..=9999).contains(&year) {
        use std::fmt::Write as _;
        let _ = write!(
            out,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            year,
            time.month(),
            time.day(),
            time.hour(),
            time.minute(),
            time.second(),
            time.timestamp_subsec_micros()
        );
        return;
    }
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    put_digits(&mut text[0..4], year as u32);
    put_digits(&mut text[5..7], time.month());
    put_digits(&mut text[8..10], time.day());
    put_digits(&mut text[11..13], time.hour());
    put_digits(&mut text[14..16], time.minute());
    put_digits(&mut text[17..19], time.second());
    put_digits(&mut text[20..26], time.timestamp_subsec_micros());
    out.push_str(std::str::from_utf8(&text).expect("ASCII digits"));
}

/// `value`'s last `to.len()` decimal digits, zero-padded.
fn put_digits(to: &mut [u8], mut value: u32) {
    for digit in to.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Reads an `event_time` as `EVENT_TIME_FORMAT` does (chrono's `parse_from_str`, then
/// microseconds since the epoch, as Polars' strptime stores them): `None` when it names no
/// time. The usual shape, `2026-11-01T10:30:00.123456Z` with 1 to 9 fractional digits and a
/// second below 60, is read digit by digit; anything else goes to chrono. Chrono splits the
/// pattern again for every value: 2-3 % of the watcher's samples.
pub fn parse_event_time(text: &str) -> Option<i64> {
    match read_usual_event_time(text.as_bytes()) {
        Usual::Time(micros) => Some(micros),
        Usual::NoTime => None,
        Usual::Other => chrono_event_time(text),
    }
}

enum Usual {
    Time(i64),
    /// The usual shape, but no such date or time (a 30 February, an hour 24).
    NoTime,
    Other,
}

fn read_usual_event_time(b: &[u8]) -> Usual {
    const SHAPE: &[u8; 20] = b"0000-00-00T00:00:00.";
    let fraction = b.len().wrapping_sub(SHAPE.len() + 1);
    let shaped = b.len() > SHAPE.len() + 1
        && fraction <= 9
        && b[b.len() - 1] == b'Z'
        && SHAPE.iter().zip(b).all(|(&s, &c)| match s {
            b'0' => c.is_ascii_digit(),
            s => s == c,
        })
        && b[SHAPE.len()..b.len() - 1].iter().all(u8::is_ascii_digit);
    if !shaped {
        return Usual::Other;
    }
    let number = |range: std::ops::Range<usize>| {
        b[range]
            .iter()
            .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'))
    };
    let second = number(17..19);
    if second >= 60 {
        // A leap second: chrono's own reading, whatever it is.
        return Usual::Other;
    }
    let nanos = number(SHAPE.len()..b.len() - 1) * 10u32.pow(9 - fraction as u32);
    let date = chrono::NaiveDate::from_ymd_opt(number(0..4) as i32, number(5..7), number(8..10));
    let time = chrono::NaiveTime::from_hms_nano_opt(number(11..13), number(14..16), second, nanos);
    match (date, time) {
        (Some(date), Some(time)) => Usual::Time(micros_of(date.and_time(time))),
        _ => Usual::NoTime,
    }
}

fn chrono_event_time(text: &str) -> Option<i64> {
    use chrono::format::ParseErrorKind;
    chrono::NaiveDateTime::parse_from_str(text, EVENT_TIME_FORMAT)
        .or_else(|e| match e.kind() {
            // As Polars reads a pattern's date alone.
            ParseErrorKind::NotEnough => chrono::NaiveDate::parse_from_str(text, EVENT_TIME_FORMAT)
                .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight")),
            _ => Err(e),
        })
        .ok()
        .map(micros_of)
}

/// As Polars stores a datetime in microseconds: whole seconds, then the fraction cut.
fn micros_of(t: chrono::NaiveDateTime) -> i64 {
    let t = t.and_utc();
    t.timestamp() * 1_000_000 + i64::from(t.timestamp_subsec_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_times_are_written_with_six_fractional_digits_and_read_back_by_the_format() {
        let time = chrono::DateTime::from_timestamp_micros(1_793_529_000_000_042).unwrap();
        let mut text = String::new();
        write_event_time(&mut text, time);
        assert_eq!(text, "2026-11-01T10:30:00.000042Z");
        let back = chrono::NaiveDateTime::parse_from_str(&text, EVENT_TIME_FORMAT).unwrap();
        assert_eq!(back.and_utc(), time);
    }

    #[test]
    fn event_times_read_digit_by_digit_equal_chronos_reading() {
        let texts = [
            "2026-11-01T10:30:00.123456Z",
            "2026-11-01T10:30:00.1Z",
            "2026-11-01T10:30:00.000000001Z",
            "2026-11-01T10:30:00.1234567Z",
            "2026-11-01T10:30:00.Z",
            "2026-11-01T10:30:00Z",
            "2024-02-29T23:59:59.999999Z",
            "2026-02-29T00:00:00.000000Z",
            "2026-04-31T00:00:00.000000Z",
            "2026-13-01T00:00:00.000000Z",
            "2026-11-01T24:00:00.000000Z",
            "2026-11-01T10:60:00.000000Z",
            "2026-12-31T23:59:60.000000Z",
            "2026-12-31T23:59:60.5Z",
            "0000-01-01T00:00:00.000000Z",
            "1969-12-31T23:59:59.999999Z",
            "2026-11-01 10:30:00.123456Z",
            "2026-11-01T10:30:00.123456",
            "2026-11-01T10:30:00.123456z",
            "2026-1-01T10:30:00.123456Z",
            "+2026-11-01T10:30:00.123456Z",
            "2026-11-01T10:30:00.1234567890Z",
            "2026-11-01T10:30:00.123456Z ",
            "2026-11-01T10:30:00.12a456Z",
            "",
        ];
        for text in texts {
            assert_eq!(parse_event_time(text), chrono_event_time(text), "{text:?}");
        }
        assert_eq!(
            parse_event_time("2026-11-01T10:30:00.000042Z"),
            Some(1_793_529_000_000_042)
        );
        assert!(matches!(
            read_usual_event_time(b"2026-11-01T10:30:00.000042Z"),
            Usual::Time(_)
        ));
    }

    #[test]
    fn event_times_written_digit_by_digit_equal_the_formats_writing() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Years 1970 to about 2100, any microsecond.
            let micros = (seed % 4_100_000_000_000_000) as i64;
            let time = chrono::DateTime::from_timestamp_micros(micros).unwrap();
            let mut text = String::new();
            write_event_time(&mut text, time);
            assert_eq!(text, time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
            assert_eq!(parse_event_time(&text), Some(micros));
        }
        let mut far = String::new();
        write_event_time(
            &mut far,
            chrono::DateTime::from_timestamp(253_402_300_800, 0).unwrap(),
        );
        assert_eq!(far, "10000-01-01T00:00:00.000000Z");
    }

    #[test]
    fn header_has_every_column_once_in_contract_order() {
        assert_eq!(
            header_line(),
            "event_id,event_time,user_id,session_id,event_type,product_id,product_category,\
             product_price,quantity,total_amount,device,country"
        );
    }
}
