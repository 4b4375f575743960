//! The Kafka relay: after a file's transaction committed, its events (and its rejected rows, to
//! the dead-letter topic) are read back from Postgres and produced; the ledger's `mirrored_at`
//! is set only once Kafka acknowledged all of them. Files without it form the backlog, drained
//! at start, after each file and at every rescan: at-least-once, whatever failed in between.

use chrono::{DateTime, Utc};
use futures_util::{pin_mut, TryStreamExt};
use tokio_postgres::{Row, RowStream};
use tracing::{info, warn};
use uuid::Uuid;

use super::Watcher;
use crate::ledger;
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
    json.text("event_id", Some(&id.to_string()));
    json.text(
        "event_time",
        Some(&time.format(EVENT_TIME_FORMAT_MICROS).to_string()),
    );
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

/// Always six fractional digits, as the generator writes them.
const EVENT_TIME_FORMAT_MICROS: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

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

    fn text(&mut self, key: &str, value: Option<&str>) {
        self.key(key);
        match value {
            Some(v) => self.out.push_str(&serde_json::Value::from(v).to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_object_escapes_text_and_keeps_decimal_digits() {
        let mut json = JsonObject::default();
        json.text("name", Some("a \"quoted\"\nline"));
        json.text("none", None);
        json.number("price", Some("12.50"));
        json.number("total", None);
        let text = json.finish();
        assert_eq!(
            text,
            r#"{"name":"a \"quoted\"\nline","none":null,"price":12.50,"total":null}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["name"], "a \"quoted\"\nline");
        assert_eq!(JsonObject::default().finish(), "{}");
    }
}
