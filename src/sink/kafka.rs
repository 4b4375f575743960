//! Kafka mirror: produces a file's loaded events (already committed in Postgres) to a topic,
//! keyed by user_id, with an idempotent producer (acks=all, lz4), and waits for every delivery.
//! At-least-once: the caller marks the file mirrored only after `produce_all` succeeds.
//! Never reads files and never writes Postgres.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tracing::debug;

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("cannot create the Kafka producer: {0}")]
    Config(#[source] KafkaError),
    #[error("Kafka did not acknowledge an event: {0}")]
    Delivery(#[source] KafkaError),
    #[error("the Kafka producer went away before acknowledging")]
    Canceled,
}

/// An idempotent producer bound to one topic.
pub struct KafkaMirror {
    producer: FutureProducer,
    pub topic: String,
}

impl KafkaMirror {
    /// Creates the producer; connects lazily, so an unreachable broker is not an error here.
    pub fn new(brokers: &str, topic: &str, timeout: Duration) -> Result<KafkaMirror, MirrorError> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            .set("message.timeout.ms", timeout.as_millis().to_string())
            .set("queue.buffering.max.messages", "500000")
            .create()
            .map_err(MirrorError::Config)?;
        Ok(KafkaMirror {
            producer,
            topic: topic.to_string(),
        })
    }

    /// Produces every (key, payload) and returns once all are acknowledged by the broker.
    ///
    /// # Errors
    /// The first delivery failure; some events may have been delivered (at-least-once).
    pub async fn produce_all(&self, events: &[(String, String)]) -> Result<(), MirrorError> {
        let mut pending = Vec::with_capacity(events.len());
        for (key, payload) in events {
            let mut record = FutureRecord::to(&self.topic).key(key).payload(payload);
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push(delivery);
                        break;
                    }
                    // The local queue is full: wait for deliveries to drain it, then resend.
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => return Err(MirrorError::Delivery(e)),
                }
            }
        }
        for delivery in pending {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(MirrorError::Delivery(e)),
                Err(_) => return Err(MirrorError::Canceled),
            }
        }
        debug!(events = events.len(), topic = %self.topic, "Kafka acknowledged every event.");
        Ok(())
    }

    /// Waits up to `timeout` for in-flight messages; used on shutdown.
    pub fn flush(&self, timeout: Duration) {
        let _ = self.producer.flush(timeout);
    }
}
