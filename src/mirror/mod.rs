//! Mirror: Kafka, fed after commit: a file just loaded from the messages built from its rows
//! as they were read, the backlog from Postgres. [`outbox`] says which loaded files Kafka has
//! not acknowledged and streams their rows back, [`message`] turns an event into its Kafka
//! message, [`producer`] is the idempotent producer (acks=all, lz4), [`streams`] does the same for transaction line items and inventory
//! updates (a topic each), and [`relay`] drives them:
//! a file is marked mirrored only after every message was acknowledged (at-least-once).
//! Never reads or moves files and never writes Postgres but the outbox's `mirrored_at`.

mod message;
pub mod outbox;
pub mod producer;
mod relay;
mod streams;

pub use message::{frame_messages, Messages};
pub use producer::{KafkaMirror, MirrorError};
pub use relay::{Relay, RelaySettings};
