//! The Kafka message of an event: key user_id; payload a flat JSON object of the contract's
//! columns and the kept source attributes (`search_query` on searches only). The outbox query
//! that feeds it is defined here too, so that the positions the message reads are the
//! positions the query selects.
//! Built here, not by Postgres: the server is the busy side of every load. A file just loaded
//! has its messages built from its rows on the reader's thread ([`frame_messages`]); the
//! backlog reads them back from the outbox ([`event_message`]); both through one [`payload`].

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use polars::prelude::*;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::schema::{self, KEPT_COLUMNS};
use crate::transform::{QUANTITY, TIME};

/// A file's loaded events in the order [`event_message`] reads them: the contract's columns
/// in contract order, then the kept source attributes (decimals as text, to keep their digits).
pub(super) const OUTBOX_EVENTS: &str = "SELECT event_id, event_time, user_id, session_id, \
    event_type, product_id, product_category, product_price::text, quantity, \
    total_amount::text, device, country, brand, category_id, category_code, search_query \
    FROM streaming.events WHERE file_id = $1";

/// An event's message fields, read from the outbox or from the rows just loaded: one
/// [`payload`] for both, so the two cannot drift apart.
struct EventFields<'a> {
    id: Uuid,
    time: DateTime<Utc>,
    user_id: &'a str,
    session_id: Option<&'a str>,
    event_type: Option<&'a str>,
    product_id: Option<&'a str>,
    product_category: Option<&'a str>,
    /// Decimals as Postgres prints them (`numeric`'s text).
    product_price: Option<&'a str>,
    quantity: Option<i32>,
    total_amount: Option<&'a str>,
    device: Option<&'a str>,
    country: Option<&'a str>,
    brand: Option<&'a str>,
    category_id: Option<i64>,
    category_code: Option<&'a str>,
    search_query: Option<&'a str>,
}

/// An event as the topic carries it: key user_id; payload a JSON object of the contract's
/// columns and kept source attributes, decimals as JSON numbers with their stored scale, the time as RFC 3339 UTC with
/// microseconds. Built here, not by Postgres: the server is the busy side of every load.
pub(super) fn event_message(row: &Row) -> (String, String) {
    let fields = EventFields {
        id: row.get(0),
        time: row.get(1),
        user_id: row.get(2),
        session_id: row.get(3),
        event_type: row.get(4),
        product_id: row.get(5),
        product_category: row.get(6),
        product_price: row.get(7),
        // NULL for a search, which names no product.
        quantity: row.get(8),
        total_amount: row.get(9),
        device: row.get(10),
        country: row.get(11),
        brand: row.get(12),
        category_id: row.get(13),
        category_code: row.get(14),
        search_query: row.get(15),
    };
    (fields.user_id.to_string(), payload(&fields))
}

fn payload(e: &EventFields) -> String {
    // An event's payload is about 300 bytes: one allocation instead of a doubling series.
    let mut json = JsonObject::with_capacity(384);
    json.plain_text("event_id", |out| {
        out.push_str(
            e.id.as_hyphenated()
                .encode_lower(&mut Uuid::encode_buffer()),
        )
    });
    json.plain_text("event_time", |out| schema::write_event_time(out, e.time));
    json.text("user_id", Some(e.user_id));
    json.text("session_id", e.session_id);
    json.text("event_type", e.event_type);
    json.text("product_id", e.product_id);
    json.text("product_category", e.product_category);
    json.number("product_price", e.product_price);
    json.number("quantity", e.quantity.map(|q| q.to_string()).as_deref());
    json.number("total_amount", e.total_amount);
    json.text("device", e.device);
    json.text("country", e.country);
    json.text("brand", e.brand);
    // As text: a 19-digit id is more than a JSON number keeps in many consumers.
    json.text(
        "category_id",
        e.category_id.map(|c| c.to_string()).as_deref(),
    );
    json.text("category_code", e.category_code);
    // Only searches carry the field, so every other event's message is as it always was.
    if e.search_query.is_some() {
        json.text("search_query", e.search_query);
    }
    json.finish()
}

/// The Kafka messages of a chunk's good rows, built on the reader's thread from the rows as
/// they are loaded, so that a file just committed is mirrored without reading its events back
/// from Postgres. Keys and payloads are kept end to end in two strings.
#[derive(Debug, Default)]
pub struct Messages {
    keys: String,
    key_ends: Vec<usize>,
    payloads: String,
    payload_ends: Vec<usize>,
}

impl Messages {
    pub fn len(&self) -> usize {
        self.key_ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.key_ends.is_empty()
    }

    /// Bytes held.
    pub fn size(&self) -> usize {
        self.keys.len() + self.payloads.len() + 16 * self.len()
    }

    fn push(&mut self, key: &str, payload: &str) {
        self.keys.push_str(key);
        self.key_ends.push(self.keys.len());
        self.payloads.push_str(payload);
        self.payload_ends.push(self.payloads.len());
    }

    fn get(&self, row: usize) -> (&str, &str) {
        let start = |ends: &[usize]| if row == 0 { 0 } else { ends[row - 1] };
        (
            &self.keys[start(&self.key_ends)..self.key_ends[row]],
            &self.payloads[start(&self.payload_ends)..self.payload_ends[row]],
        )
    }

    /// Appends the messages of `rows` (indexes into `from`): the rows a chunk inserted.
    pub fn extend_rows(&mut self, from: &Messages, rows: &[u32]) {
        for &row in rows {
            let (key, payload) = from.get(row as usize);
            self.push(key, payload);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        (0..self.len()).map(|row| self.get(row))
    }
}

/// The messages of a chunk's good rows (the frame the transform produced), in its row order:
/// what the outbox would give for them once loaded.
pub fn frame_messages(good: &DataFrame) -> PolarsResult<Messages> {
    let text =
        |name: &str| -> PolarsResult<StringChunked> { Ok(good.column(name)?.str()?.clone()) };
    let ids = text("event_id")?;
    let times = good.column(TIME)?.datetime()?.phys.clone();
    let quantities = good.column(QUANTITY)?.i64()?.clone();
    let columns: Vec<StringChunked> = [
        "user_id",
        "session_id",
        "event_type",
        "product_id",
        "product_category",
        "product_price",
        "total_amount",
        "device",
        "country",
    ]
    .iter()
    .chain(KEPT_COLUMNS.iter())
    .map(|name| text(name))
    .collect::<PolarsResult<_>>()?;
    let mut messages = Messages::default();
    for row in 0..good.height() {
        let value = |at: usize| columns[at].get(row);
        let id = ids.get(row).and_then(|s| Uuid::parse_str(s).ok());
        let time = times.get(row).and_then(DateTime::from_timestamp_micros);
        let (Some(id), Some(time), Some(user_id)) = (id, time, value(0)) else {
            polars_bail!(ComputeError: "a good row lacks its id, time or user after validation");
        };
        let price = value(5).map(canonical_decimal);
        let total = value(6).map(canonical_decimal);
        let [brand, category_id, category_code, search_query] = [9, 10, 11, 12].map(value);
        let fields = EventFields {
            id,
            time,
            user_id,
            session_id: value(1),
            event_type: value(2),
            product_id: value(3),
            product_category: value(4),
            product_price: price.as_deref(),
            quantity: quantities.get(row).and_then(|q| i32::try_from(q).ok()),
            total_amount: total.as_deref(),
            device: value(7),
            country: value(8),
            brand,
            category_id: category_id.and_then(|c| c.parse().ok()),
            category_code,
            search_query,
        };
        messages.push(user_id, &payload(&fields));
    }
    Ok(messages)
}

/// A decimal the rules admitted (`+`, digits, a point, digits) as Postgres prints the
/// `numeric` it becomes: no plus sign, no leading zeros, every fractional digit kept.
fn canonical_decimal(text: &str) -> Cow<'_, str> {
    let unsigned = text.strip_prefix('+').unwrap_or(text);
    let digits = unsigned.trim_start_matches('0');
    match digits.is_empty() || digits.starts_with('.') {
        true => Cow::Owned(format!("0{digits}")),
        false => Cow::Borrowed(digits),
    }
}

/// A flat JSON object written field by field; numbers are written as given, so that a
/// decimal keeps its exact digits (a float would not).
#[derive(Default)]
pub(super) struct JsonObject {
    out: String,
}

impl JsonObject {
    pub(super) fn with_capacity(bytes: usize) -> JsonObject {
        JsonObject {
            out: String::with_capacity(bytes),
        }
    }

    fn key(&mut self, key: &str) {
        self.out.push(if self.out.is_empty() { '{' } else { ',' });
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
    }

    /// A string field whose value needs no escaping (ids, times), written by `write`.
    pub(super) fn plain_text(&mut self, key: &str, write: impl FnOnce(&mut String)) {
        self.key(key);
        self.out.push('"');
        write(&mut self.out);
        self.out.push('"');
    }

    pub(super) fn text(&mut self, key: &str, value: Option<&str>) {
        self.key(key);
        match value {
            Some(v) => push_json_string(&mut self.out, v),
            None => self.out.push_str("null"),
        }
    }

    pub(super) fn number(&mut self, key: &str, value: Option<&str>) {
        self.key(key);
        self.out.push_str(value.unwrap_or("null"));
    }

    pub(super) fn finish(mut self) -> String {
        if self.out.is_empty() {
            self.out.push('{');
        }
        self.out.push('}');
        self.out
    }
}

/// `value` as a JSON string: quotes, backslashes and control characters escaped.
fn push_json_string(out: &mut String, value: &str) {
    out.push('"');
    // Nearly every value has nothing to escape: copied whole, not char by char.
    if !value.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(value);
        out.push('"');
        return;
    }
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_as_postgres_prints_a_numeric() {
        for (text, printed) in [
            ("12.50", "12.50"),
            ("+12.50", "12.50"),
            ("007.5", "7.5"),
            ("+0.000", "0.000"),
            ("0", "0"),
            ("000", "0"),
            ("+00.10", "0.10"),
            ("100", "100"),
        ] {
            assert_eq!(canonical_decimal(text), printed, "{text}");
        }
    }

    #[test]
    fn a_json_object_escapes_text_and_keeps_decimal_digits() {
        let mut json = JsonObject::default();
        json.text("name", Some("a \"quoted\"\nline"));
        json.text("none", None);
        json.text("tab", Some("a\tb\u{1}"));
        json.plain_text("id", |out| out.push_str("x-1"));
        json.number("price", Some("12.50"));
        json.number("total", None);
        let text = json.finish();
        assert_eq!(
            text,
            r#"{"name":"a \"quoted\"\nline","none":null,"tab":"a\tb\u0001","id":"x-1","price":12.50,"total":null}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["name"], "a \"quoted\"\nline");
        assert_eq!(parsed["tab"], "a\tb\u{1}");
        assert_eq!(JsonObject::default().finish(), "{}");
        for tricky in ["", "ü€😀", "\u{7f}", "\\", "\"", "\u{0}\u{1f}", "a\\\"b"] {
            let mut out = String::new();
            push_json_string(&mut out, tricky);
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, tricky, "{out}");
        }
    }
}
