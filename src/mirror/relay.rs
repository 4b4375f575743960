//! The Kafka relay: after a file's transaction committed, its events (from the messages built
//! while it loaded, or read back from the outbox) and its rejected rows (to the dead-letter
//! topic) are produced; the ledger's `mirrored_at` is set only once Kafka acknowledged all of
//! them. Files without it form the backlog, drained
//! at start, after each file and at every rescan: at-least-once, whatever failed in between.
//! Reads Postgres through the caller's connection; never loads or moves anything.

use std::time::Duration;

use futures_util::{pin_mut, TryStreamExt};
use tokio_postgres::{Client, Row, RowStream};
use tracing::{info, warn};

use super::message::{event_message, Messages};
use super::outbox;
use super::producer::{KafkaMirror, MirrorError};
use super::streams::{inventory_message, item_message, OUTBOX_INVENTORY, OUTBOX_ITEMS};

/// A row's Kafka message: (key, payload).
type Message = fn(&Row) -> (String, String);

/// Where the relay produces to, and how long the broker may take.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    pub brokers: String,
    pub topic: String,
    pub rejected_topic: String,
    /// Topic of transaction line items (key user_id).
    pub transactions_topic: String,
    /// Topic of inventory updates (key product_id).
    pub inventory_topic: String,
    pub timeout: Duration,
}

/// One worker's relay: its own producer, replaced after a failure.
pub struct Relay {
    settings: RelaySettings,
    mirror: KafkaMirror,
    /// The file relayed last, whose acknowledgements are awaited (and which is marked mirrored)
    /// only when the next file is relayed or the worker goes idle: Kafka's round trip overlaps
    /// the next file's load instead of stalling the worker. Only one file is ever unsettled,
    /// so "every message the producer was handed" is that file's.
    unsettled: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("cannot read the outbox: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Kafka(#[from] MirrorError),
}

impl Relay {
    /// Creates the producer; it connects lazily, so an unreachable broker is not an error here.
    ///
    /// # Errors
    /// A producer setting librdkafka refuses.
    pub fn new(settings: RelaySettings) -> Result<Relay, MirrorError> {
        let mirror = KafkaMirror::new(&settings.brokers, settings.timeout)?;
        Ok(Relay {
            settings,
            mirror,
            unsettled: None,
        })
    }

    /// Hands one loaded file's events and rejects to the producer; [`Relay::settle`] (called
    /// here for the file before, and by the worker when it goes idle) awaits their
    /// acknowledgements and marks the file mirrored. A failure leaves the file in the backlog.
    /// The events are `loaded` when the file was just loaded and its messages kept, else they
    /// are read back from the outbox. Returns whether the file was handed over.
    pub async fn mirror_file(
        &mut self,
        client: &Client,
        file_id: i64,
        loaded: Option<&Messages>,
    ) -> bool {
        // Its acknowledgements had the whole load of this file to arrive.
        self.settle(client).await;
        let topics = [
            self.settings.topic.as_str(),
            self.settings.rejected_topic.as_str(),
            self.settings.transactions_topic.as_str(),
            self.settings.inventory_topic.as_str(),
        ];
        if let Err(e) = self.mirror.ensure_topics(&topics).await {
            warn!(file_id, error = %e, "Kafka mirror failed; the file stays in the backlog.");
            return false;
        }
        let mirror = &self.mirror;
        let relayed = async {
            let topic = &self.settings.topic;
            let mut sent = match loaded {
                Some(messages) => produce_loaded(mirror, topic, messages).await?,
                None => {
                    let events = outbox::outbox_events(client, file_id).await?;
                    produce(mirror, topic, events, event_message).await?
                }
            };
            // A file without events may be of another stream; event files never ask.
            if sent == 0 {
                sent = self.produce_stream(client, file_id).await?;
            }
            let rejects = outbox::outbox_rejects(client, file_id).await?;
            let dead_letter = &self.settings.rejected_topic;
            sent += produce(mirror, dead_letter, rejects, |row| (row.get(0), row.get(1))).await?;
            Ok::<u64, RelayError>(sent)
        };
        match relayed.await {
            Ok(_) => {
                self.unsettled = Some(file_id);
                true
            }
            Err(e) => {
                warn!(file_id, error = %e, "Kafka mirror failed; the file stays in the backlog.");
                self.replace_producer();
                false
            }
        }
    }

    /// Waits for the acknowledgements of the file handed over last and marks it mirrored.
    /// Returns false when Kafka failed it (it stays in the backlog).
    pub async fn settle(&mut self, client: &Client) -> bool {
        let Some(file_id) = self.unsettled.take() else {
            return true;
        };
        let settled = async {
            self.mirror.acknowledged().await?;
            outbox::mark_mirrored(client, file_id).await?;
            Ok::<(), RelayError>(())
        };
        match settled.await {
            Ok(()) => true,
            Err(e) => {
                warn!(file_id, error = %e, "Kafka mirror failed; the file stays in the backlog.");
                self.replace_producer();
                false
            }
        }
    }

    /// Produces a transactions or inventory file's rows to their stream's topic.
    async fn produce_stream(&self, client: &Client, file_id: i64) -> Result<u64, RelayError> {
        let (query, topic, message): (_, _, Message) =
            match outbox::stream_of(client, file_id).await?.as_deref() {
                Some("transactions") => (
                    OUTBOX_ITEMS,
                    &self.settings.transactions_topic,
                    item_message,
                ),
                Some(_) => (
                    OUTBOX_INVENTORY,
                    &self.settings.inventory_topic,
                    inventory_message,
                ),
                None => return Ok(0),
            };
        let rows = outbox::outbox_stream(client, query, file_id).await?;
        produce(&self.mirror, topic, rows, message).await
    }

    /// Starts over with a new producer after a failed relay. An idempotent producer keeps
    /// sequence state per partition; after a broker outage (or a broker that came back without
    /// its log) the old one may stall or fail for good, and its queued messages are redone from
    /// the outbox anyway. The new producer also checks the topics again.
    fn replace_producer(&mut self) {
        if let Some(fatal) = self.mirror.fatal_error() {
            warn!(%fatal, "The Kafka producer failed for good.");
        }
        match KafkaMirror::new(&self.settings.brokers, self.settings.timeout) {
            Ok(mirror) => self.mirror = mirror,
            Err(e) => warn!(error = %e, "Cannot start a new Kafka producer; will try again."),
        }
    }

    /// Mirrors every loaded-but-unmirrored file, oldest first, stopping at the first failure.
    pub async fn drain_backlog(&mut self, client: &Client) {
        // Its own file handed over last is no backlog: settled first, it is not sent twice.
        if !self.settle(client).await {
            return;
        }
        let backlog = match outbox::unmirrored(client).await {
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
            if !(self.mirror_file(client, file_id, None).await && self.settle(client).await) {
                return;
            }
        }
    }

    /// Waits up to `timeout` for messages still queued in the producer.
    pub fn flush(&self, timeout: Duration) {
        self.mirror.flush(timeout);
    }
}

/// Produces one message per row of `rows` to `topic`, `message` giving its (key, payload);
/// returns how many.
async fn produce(
    mirror: &KafkaMirror,
    topic: &str,
    rows: RowStream,
    message: impl Fn(&Row) -> (String, String),
) -> Result<u64, RelayError> {
    pin_mut!(rows);
    let mut sent = 0;
    while let Some(row) = rows.try_next().await? {
        let (key, payload) = message(&row);
        mirror.send(topic, &key, &payload).await?;
        sent += 1;
    }
    Ok(sent)
}

/// Produces a just-loaded file's messages to `topic`; returns how many.
async fn produce_loaded(
    mirror: &KafkaMirror,
    topic: &str,
    messages: &Messages,
) -> Result<u64, RelayError> {
    for (key, payload) in messages.iter() {
        mirror.send(topic, key, payload).await?;
    }
    Ok(messages.len() as u64)
}
