//! Kafka mirror: produces a file's loaded events (already committed in Postgres) to a topic,
//! keyed by user_id, with an idempotent producer (acks=all, lz4), and waits for every delivery.
//! At-least-once: the relay marks a file mirrored only after every delivery succeeded.
//! Never reads files and never writes Postgres.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use tokio::sync::Notify;
use tracing::debug;

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("cannot create the Kafka producer: {0}")]
    Config(#[source] KafkaError),
    #[error("Kafka did not acknowledge an event: {0}")]
    Delivery(#[source] KafkaError),
    #[error("cannot create the mirror's topics: {0}")]
    Topic(#[source] KafkaError),
    #[error("the broker refused to create topic {topic}: {code:?}")]
    TopicRefused {
        topic: String,
        code: RDKafkaErrorCode,
    },
}

/// An idempotent producer, and the admin client that makes sure its topics exist.
pub struct KafkaMirror {
    producer: ThreadedProducer<Acknowledgements>,
    admin: AdminClient<DefaultClientContext>,
    topics_ready: bool,
    /// How long the broker may take to answer, for deliveries and topic creation alike.
    timeout: Duration,
}

/// Counts a producer's messages and their acknowledgements. librdkafka reports each delivery
/// to [`ProducerContext::delivery`] on the producer's polling thread; counting there costs no
/// allocation, where a future per message cost a channel and a boxed sender (a million of
/// them per million events).
#[derive(Default)]
struct Acknowledgements {
    sent: AtomicU64,
    /// Delivered or failed.
    settled: AtomicU64,
    /// The first delivery failure: the relay replaces a producer that had one, so a producer
    /// never reports more than its first.
    failure: Mutex<Option<KafkaError>>,
    settling: Notify,
}

impl ClientContext for Acknowledgements {}

impl ProducerContext for Acknowledgements {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
            failure.get_or_insert_with(|| error.clone());
        }
        self.settled.fetch_add(1, Ordering::Release);
        // Stores a permit when nobody waits, so a waiter that checked just before cannot miss it.
        self.settling.notify_one();
    }
}

impl Acknowledgements {
    fn failure(&self) -> Option<KafkaError> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Partitions of a topic the mirror creates; events are keyed by user_id, so each user's
/// events stay in order within one partition.
const PARTITIONS: i32 = 3;

impl KafkaMirror {
    /// Creates the producer; connects lazily, so an unreachable broker is not an error here.
    pub fn new(brokers: &str, timeout: Duration) -> Result<KafkaMirror, MirrorError> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            .set("message.timeout.ms", timeout.as_millis().to_string())
            .set("queue.buffering.max.messages", "500000")
            .create_with_context(Acknowledgements::default())
            .map_err(MirrorError::Config)?;
        let admin = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .create()
            .map_err(MirrorError::Config)?;
        Ok(KafkaMirror {
            producer,
            admin,
            topics_ready: false,
            timeout,
        })
    }

    /// Creates the topics that do not exist yet (3 partitions, replication factor 1: on a real
    /// cluster, create them beforehand with the replication you need; existing topics are left
    /// as they are). Done once per producer; brokers that auto-create topics need none of it.
    ///
    /// # Errors
    /// The broker is unreachable or refused to create a topic.
    pub async fn ensure_topics(&mut self, topics: &[&str]) -> Result<(), MirrorError> {
        if self.topics_ready {
            return Ok(());
        }
        let new: Vec<NewTopic> = topics
            .iter()
            .map(|t| NewTopic::new(t, PARTITIONS, TopicReplication::Fixed(1)))
            .collect();
        let options = AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout));
        let results = self
            .admin
            .create_topics(&new, &options)
            .await
            .map_err(MirrorError::Topic)?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(MirrorError::TopicRefused { topic, code }),
            }
        }
        self.topics_ready = true;
        Ok(())
    }

    /// Hands one message to the producer; waits while its queue is full.
    ///
    /// # Errors
    /// The producer refused the message, or an earlier message failed while the queue was full.
    pub async fn send(&self, topic: &str, key: &str, payload: &str) -> Result<(), MirrorError> {
        let acks = self.producer.context();
        let mut record = BaseRecord::to(topic).key(key).payload(payload);
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    acks.sent.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                // The local queue is full: let deliveries drain it, unless they are failing.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    if let Some(e) = acks.failure() {
                        return Err(MirrorError::Delivery(e));
                    }
                    record = r;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, _)) => return Err(MirrorError::Delivery(e)),
            }
        }
    }

    /// Waits until the broker acknowledged every message sent so far; returns how many the
    /// producer was handed in all.
    ///
    /// # Errors
    /// The first delivery failure; some events may have been delivered (at-least-once).
    pub async fn acknowledged(&self) -> Result<u64, MirrorError> {
        let acks = self.producer.context();
        let sent = acks.sent.load(Ordering::Relaxed);
        while acks.settled.load(Ordering::Acquire) < sent {
            acks.settling.notified().await;
        }
        if let Some(e) = acks.failure() {
            return Err(MirrorError::Delivery(e));
        }
        debug!(sent, "Kafka acknowledged every message.");
        Ok(sent)
    }
}

impl KafkaMirror {
    /// The producer's fatal error, if it had one: an idempotent producer that lost its
    /// sequence state (a broker that lost its log, say) refuses every later send until it is
    /// replaced by a new one.
    pub fn fatal_error(&self) -> Option<String> {
        self.producer
            .client()
            .fatal_error()
            .map(|(code, reason)| format!("{code:?}: {reason}"))
    }

    /// Waits up to `timeout` for in-flight messages; used on shutdown.
    pub fn flush(&self, timeout: Duration) {
        let _ = self.producer.flush(timeout);
    }
}
