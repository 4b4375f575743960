//! The Kafka relay: after a file's transaction committed, its events (and its rejected rows, to
//! the dead-letter topic) are read back from Postgres and produced; the ledger's `mirrored_at`
//! is set only once Kafka acknowledged all of them. Files without it form the backlog, drained
//! at start, after each file and at every rescan: at-least-once, whatever failed in between.

use chrono::{DateTime, Utc};
use futures_util::{pin_mut, TryStreamExt};
use tokio_postgres::{Row, RowStream};
use tracing::{info, warn};
use uuid::Uuid;

use std::fmt::Write as _;

use super::Watcher;
use crate::ledger;
use crate::schema;
use crate::sink::kafka::KafkaMirror;

impl Watcher {
    /// Relays one loaded file's events and rejects and marks it mirrored; a failure leaves it
    /// in the backlog. Returns whether the file is now mirrored.
    pub(super) async fn mirror_file(&mut self, file_id: i64) -> bool {
        let topics = [
            self.settings.kafka_topic.as_str(),
            self.settings.kafka_rejected_topic.as_str(),
        ];
        let Some(mirror) = &mut self.mirror else {
            return false;
        };
        if let Err(e) = mirror.ensure_topics(&topics).await {
            warn!(file_id, error = %e, "Kafka mirror failed; the file stays in the backlog.");
            return false;
        }
        let mirror = &*mirror;
        let relayed = async {
            let events = ledger::outbox_events(&self.client, file_id).await?;
            let sent = produce(mirror, &self.settings.kafka_topic, events, event_message).await?;
            let rejects = ledger::outbox_rejects(&self.client, file_id).await?;
            let dead_letter = &self.settings.kafka_rejected_topic;
            produce(mirror, dead_letter, rejects, |row| (row.get(0), row.get(1))).await?;
            ledger::mark_mirrored(&self.client, file_id).await?;
            Ok::<u64, RelayError>(sent)
        };
        let result = relayed.await;
        if let Err(e) = &result {
            warn!(file_id, error = %e, "Kafka mirror failed; the file stays in the backlog.");
            self.replace_producer();
        }
        result.is_ok()
    }

    /// Starts over with a new producer after a failed relay. An idempotent producer keeps
    /// sequence state per partition; after a broker outage (or a broker that came back without
    /// its log) the old one may stall or fail for good, and its queued messages are redone from
    /// the outbox anyway. The new producer also checks the topics again.
    fn replace_producer(&mut self) {
        let Some(brokers) = &self.settings.kafka_brokers else {
            return;
        };
        if let Some(fatal) = self.mirror.as_ref().and_then(KafkaMirror::fatal_error) {
            warn!(%fatal, "The Kafka producer failed for good.");
        }
        match KafkaMirror::new(brokers, self.settings.kafka_timeout) {
            Ok(mirror) => self.mirror = Some(mirror),
            Err(e) => warn!(error = %e, "Cannot start a new Kafka producer; will try again."),
        }
    }

    /// Mirrors every loaded-but-unmirrored file, oldest first, stopping at the first failure.
    pub(super) async fn drain_mirror_backlog(&mut self) {
        if self.mirror.is_none() || self.ensure_connected().await.is_err() {
            return;
        }
        let backlog = match ledger::unmirrored(&self.client).await {
            Ok(files) => files,
            Err(e) => {
                warn!(error = %e, "Cannot read the mirror backlog.");
                return;
            }
        };
        if !backlog.is_empty() {
            info!(files = backlog.len(), "Draining the Kafka mirror backlog.");
        }
        for file_id in backlog {
            if !self.mirror_file(file_id).await {
                return;
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("cannot read the outbox: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Kafka(#[from] crate::sink::kafka::MirrorError),
}

/// Produces one message per row of `rows` to `topic`, `message` giving its (key, payload), and
/// waits for all acknowledgements.
async fn produce(
    mirror: &KafkaMirror,
    topic: &str,
    rows: RowStream,
    message: impl Fn(&Row) -> (String, String),
) -> Result<u64, RelayError> {
    pin_mut!(rows);
    let mut deliveries = mirror.deliveries(topic);
    while let Some(row) = rows.try_next().await? {
        let (key, payload) = message(&row);
        deliveries.send(&key, &payload).await?;
    }
    Ok(deliveries.finish().await?)
}

/// An event as the topic carries it: key user_id; payload a JSON object of the contract's
/// columns and kept source attributes, decimals as JSON numbers with their stored scale, the time as RFC 3339 UTC with
/// microseconds. Built here, not by Postgres: the server is the busy side of every load.
fn event_message(row: &Row) -> (String, String) {
    let id: Uuid = row.get(0);
    let time: DateTime<Utc> = row.get(1);
    let user: String = row.get(2);
    let quantity: i32 = row.get(8);
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
    json.number("quantity", Some(&quantity.to_string()));
    json.number("total_amount", row.get(9));
    json.text("device", row.get(10));
    json.text("country", row.get(11));
    json.text("brand", row.get(12));
    // As text: a 19-digit id is more than a JSON number keeps in many consumers.
    json.text("category_id", row.get(13));
    json.text("category_code", row.get(14));
    (user, json.finish())
}

/// A flat JSON object written field by field; numbers are written as given, so that a
/// decimal keeps its exact digits (a float would not).
#[derive(Default)]
struct JsonObject {
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
    fn plain_text(&mut self, key: &str, write: impl FnOnce(&mut String)) {
        self.key(key);
        self.out.push('"');
        write(&mut self.out);
        self.out.push('"');
    }

    fn text(&mut self, key: &str, value: Option<&str>) {
        self.key(key);
        match value {
            Some(v) => push_json_string(&mut self.out, v),
            None => self.out.push_str("null"),
        }
    }

    fn number(&mut self, key: &str, value: Option<&str>) {
        self.key(key);
        self.out.push_str(value.unwrap_or("null"));
    }

    fn finish(mut self) -> String {
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
