//! The Kafka message of an event: key user_id; payload a flat JSON object of the contract's
//! columns and the kept source attributes (`search_query` on searches only). The outbox query
//! that feeds it is defined here too, so that the positions the message reads are the
//! positions the query selects.
//! Built here, not by Postgres: the server is the busy side of every load.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::schema;

/// A file's loaded events in the order [`event_message`] reads them: the contract's columns
/// in contract order, then the kept source attributes (decimals and `category_id` as text, to
/// keep their digits).
pub(super) const OUTBOX_EVENTS: &str = "SELECT event_id, event_time, user_id, session_id, \
    event_type, product_id, product_category, product_price::text, quantity, \
    total_amount::text, device, country, brand, category_id::text, category_code, search_query \
    FROM streaming.events WHERE file_id = $1";

/// An event as the topic carries it: key user_id; payload a JSON object of the contract's
/// columns and kept source attributes, decimals as JSON numbers with their stored scale, the time as RFC 3339 UTC with
/// microseconds. Built here, not by Postgres: the server is the busy side of every load.
pub(super) fn event_message(row: &Row) -> (String, String) {
    let id: Uuid = row.get(0);
    let time: DateTime<Utc> = row.get(1);
    let user: String = row.get(2);
    // NULL for a search, which names no product.
    let quantity: Option<i32> = row.get(8);
    let mut json = JsonObject::default();
    json.plain_text("event_id", |out| {
        out.push_str(id.as_hyphenated().encode_lower(&mut Uuid::encode_buffer()))
    });
    json.plain_text("event_time", |out| schema::write_event_time(out, time));
    json.text("user_id", Some(&user));
    json.text("session_id", row.get(3));
    json.text("event_type", row.get(4));
    json.text("product_id", row.get(5));
    json.text("product_category", row.get(6));
    json.number("product_price", row.get(7));
    json.number("quantity", quantity.map(|q| q.to_string()).as_deref());
    json.number("total_amount", row.get(9));
    json.text("device", row.get(10));
    json.text("country", row.get(11));
    json.text("brand", row.get(12));
    // As text: a 19-digit id is more than a JSON number keeps in many consumers.
    json.text("category_id", row.get(13));
    json.text("category_code", row.get(14));
    // Only searches carry the field, so every other event's message is as it always was.
    let query: Option<&str> = row.get(15);
    if query.is_some() {
        json.text("search_query", query);
    }
    (user, json.finish())
}

/// A flat JSON object written field by field; numbers are written as given, so that a
/// decimal keeps its exact digits (a float would not).
#[derive(Default)]
pub(super) struct JsonObject {
    out: String,
}

impl JsonObject {
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
