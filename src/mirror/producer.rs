//! Kafka mirror: produces a file's loaded events (already committed in Postgres) to a topic,
//! keyed by user_id, with an idempotent producer (acks=all, lz4), and waits for every delivery.
//! At-least-once: the relay marks a file mirrored only after every delivery succeeded.
//! Never reads files and never writes Postgres.

use std::collections::VecDeque;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
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
    #[error("the Kafka producer went away before acknowledging")]
    Canceled,
}

/// An idempotent producer, and the admin client that makes sure its topics exist.
pub struct KafkaMirror {
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    topics_ready: bool,
    /// How long the broker may take to answer, for deliveries and topic creation alike.
    timeout: Duration,
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
            .create()
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

    /// Starts a run of sends whose acknowledgements are awaited together once it is turned
    /// into [`InFlight`]; at most `MAX_IN_FLIGHT` wait at a time, so memory stays bounded.
    pub fn deliveries<'a>(&'a self, topic: &'a str) -> Deliveries<'a> {
        Deliveries {
            mirror: self,
            topic,
            in_flight: VecDeque::new(),
            sent: 0,
        }
    }
}

/// Deliveries not awaited at once: bounds memory when a file holds millions of events.
const MAX_IN_FLIGHT: usize = 100_000;

/// Sends of one file, acknowledged as a whole.
pub struct Deliveries<'a> {
    mirror: &'a KafkaMirror,
    topic: &'a str,
    in_flight: VecDeque<DeliveryFuture>,
    sent: u64,
}

impl Deliveries<'_> {
    /// Queues one event; waits for older acknowledgements when too many are in flight.
    ///
    /// # Errors
    /// A delivery failure of this or an earlier event of the run.
    pub async fn send(&mut self, key: &str, payload: &str) -> Result<(), MirrorError> {
        let mut record = FutureRecord::to(self.topic).key(key).payload(payload);
        loop {
            match self.mirror.producer.send_result(record) {
                Ok(delivery) => {
                    self.in_flight.push_back(delivery);
                    break;
                }
                // The local queue is full: wait for deliveries to drain it, then resend.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    match self.in_flight.pop_front() {
                        Some(oldest) => acknowledged(oldest).await?,
                        None => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
                Err((e, _)) => return Err(MirrorError::Delivery(e)),
            }
        }
        self.sent += 1;
        if self.in_flight.len() > MAX_IN_FLIGHT {
            if let Some(oldest) = self.in_flight.pop_front() {
                acknowledged(oldest).await?;
            }
        }
        Ok(())
    }

    /// The events sent, whose acknowledgements are still to be awaited.
    pub fn in_flight(self) -> InFlight {
        InFlight {
            deliveries: self.in_flight,
            sent: self.sent,
        }
    }
}

/// Events handed to the producer whose acknowledgements were not awaited yet: a file's, kept
/// while the next file loads.
#[derive(Default)]
pub struct InFlight {
    deliveries: VecDeque<DeliveryFuture>,
    sent: u64,
}

impl InFlight {
    /// Events sent (acknowledged or not).
    pub fn sent(&self) -> u64 {
        self.sent
    }

    pub fn extend(&mut self, other: InFlight) {
        self.deliveries.extend(other.deliveries);
        self.sent += other.sent;
    }

    /// Waits until the broker acknowledged every event sent; returns how many there were.
    ///
    /// # Errors
    /// The first delivery failure; some events may have been delivered (at-least-once).
    pub async fn acknowledged(mut self) -> Result<u64, MirrorError> {
        while let Some(delivery) = self.deliveries.pop_front() {
            acknowledged(delivery).await?;
        }
        debug!(events = self.sent, "Kafka acknowledged every event.");
        Ok(self.sent)
    }
}

async fn acknowledged(delivery: DeliveryFuture) -> Result<(), MirrorError> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(MirrorError::Delivery(e)),
        Err(_) => Err(MirrorError::Canceled),
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
