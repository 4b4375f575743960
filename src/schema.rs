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
/// Field by field, because chrono's `format` parses its pattern again on every call.
pub fn write_event_time(out: &mut String, time: chrono::DateTime<chrono::Utc>) {
    use chrono::{Datelike, Timelike};
    use std::fmt::Write as _;
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second(),
        time.timestamp_subsec_micros()
    );
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
    fn header_has_every_column_once_in_contract_order() {
        assert_eq!(
            header_line(),
            "event_id,event_time,user_id,session_id,event_type,product_id,product_category,\
             product_price,quantity,total_amount,device,country"
        );
    }
}
