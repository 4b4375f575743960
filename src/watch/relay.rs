//! The Kafka relay: after a file's transaction committed, its events (and its rejected rows, to
//! the dead-letter topic) are read back from Postgres and produced; the ledger's `mirrored_at`
//! is set only once Kafka acknowledged all of them. Files without it form the backlog, drained
//! at start, after each file and at every rescan: at-least-once, whatever failed in between.

use futures_util::{pin_mut, TryStreamExt};
use tokio_postgres::RowStream;
use tracing::{info, warn};

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
            let sent = produce(mirror, &self.settings.kafka_topic, events).await?;
            let rejects = ledger::outbox_rejects(&self.client, file_id).await?;
            produce(mirror, &self.settings.kafka_rejected_topic, rejects).await?;
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

/// Produces every (key, payload) row of `rows` to `topic` and waits for all acknowledgements.
async fn produce(mirror: &KafkaMirror, topic: &str, rows: RowStream) -> Result<u64, RelayError> {
    pin_mut!(rows);
    let mut deliveries = mirror.deliveries(topic);
    while let Some(row) = rows.try_next().await? {
        deliveries.send(row.get(0), row.get(1)).await?;
    }
    Ok(deliveries.finish().await?)
}
