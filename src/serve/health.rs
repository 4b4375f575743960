//! `/healthz`: whether Postgres answers a query and Kafka returns cluster metadata, each within
//! a short timeout, and whether the watcher is waiting for a lock another session holds. Owns
//! the Kafka metadata client; never writes anything anywhere.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;
use serde::Serialize;

use crate::status::WatchStatus;

/// How long each check may take.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One dependency's state.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    /// `ok`, `down`, `disabled` (Kafka without brokers configured), or `waiting` (the watcher,
    /// for a lock).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Check {
    pub fn ok() -> Check {
        Check {
            status: "ok",
            error: None,
        }
    }
    pub fn down(error: impl std::fmt::Display) -> Check {
        Check {
            status: "down",
            error: Some(error.to_string()),
        }
    }
    pub fn is_healthy(&self) -> bool {
        matches!(self.status, "ok" | "disabled")
    }

    /// The watcher's state: `ok`, or `waiting` with what for, how long and how many files.
    pub fn watcher(status: &WatchStatus) -> Check {
        match status.waiting() {
            None => Check::ok(),
            Some(w) => Check {
                status: "waiting",
                error: Some(format!(
                    "waiting {} s for {}: another session holds it; {} file(s) retried with \
                     backoff until it is released",
                    // The first load waited this long before it gave up.
                    (w.since + crate::load::LOCK_TIMEOUT).as_secs(),
                    w.held,
                    w.files
                )),
            },
        }
    }
}

/// The `/healthz` body.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Health {
    /// `ok` when every configured dependency answers and the watcher loads; `degraded` when a
    /// dependency is down; `waiting` when only the watcher waits (for a lock).
    pub status: &'static str,
    pub postgres: Check,
    pub kafka: Check,
    pub watcher: Check,
}

impl Health {
    pub fn new(postgres: Check, kafka: Check, watcher: Check) -> Health {
        let status = if !(postgres.is_healthy() && kafka.is_healthy()) {
            "degraded"
        } else if !watcher.is_healthy() {
            "waiting"
        } else {
            "ok"
        };
        Health {
            status,
            postgres,
            kafka,
            watcher,
        }
    }
}

/// A client that asks the brokers for metadata; connects lazily.
#[derive(Clone)]
pub struct KafkaProbe {
    client: Option<Arc<BaseProducer>>,
    error: Option<String>,
}

impl KafkaProbe {
    /// `brokers` None: Kafka is off and reported as `disabled`.
    pub fn new(brokers: Option<&str>) -> KafkaProbe {
        let Some(brokers) = brokers else {
            return KafkaProbe {
                client: None,
                error: None,
            };
        };
        match ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("log_level", "3")
            .create::<BaseProducer>()
        {
            Ok(p) => KafkaProbe {
                client: Some(Arc::new(p)),
                error: None,
            },
            Err(e) => KafkaProbe {
                client: None,
                error: Some(e.to_string()),
            },
        }
    }

    /// Fetches cluster metadata within [`CHECK_TIMEOUT`].
    pub async fn check(&self) -> Check {
        if let Some(e) = &self.error {
            return Check::down(e);
        }
        let Some(client) = self.client.clone() else {
            return Check {
                status: "disabled",
                error: None,
            };
        };
        let fetched = tokio::task::spawn_blocking(move || {
            client
                .client()
                .fetch_metadata(None, CHECK_TIMEOUT)
                .map(|m| m.brokers().len())
        })
        .await;
        match fetched {
            Ok(Ok(n)) if n > 0 => Check::ok(),
            Ok(Ok(_)) => Check::down("the cluster reported no brokers"),
            Ok(Err(e)) => Check::down(e),
            Err(e) => Check::down(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disabled_kafka_is_healthy_a_down_postgres_is_not() {
        let disabled = Check {
            status: "disabled",
            error: None,
        };
        let h = Health::new(Check::ok(), disabled.clone(), Check::ok());
        assert_eq!(h.status, "ok");
        let h = Health::new(Check::down("refused"), disabled, Check::ok());
        assert_eq!(h.status, "degraded");
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(json["postgres"]["error"], "refused");
        assert!(json["kafka"].get("error").is_none());
    }

    #[test]
    fn a_watcher_waiting_for_a_lock_is_not_healthy_and_says_for_what() {
        let status = WatchStatus::default();
        assert_eq!(Check::watcher(&status), Check::ok());
        status.lock_wait(
            std::path::Path::new("a.csv"),
            "a lock on streaming.events (AccessExclusiveLock, pid 7)",
        );
        let watcher = Check::watcher(&status);
        assert_eq!(watcher.status, "waiting");
        let said = watcher.error.clone().unwrap();
        assert!(
            said.starts_with(
                "waiting 5 s for a lock on streaming.events (AccessExclusiveLock, pid 7)"
            ),
            "{said}"
        );
        let h = Health::new(Check::ok(), Check::ok(), watcher.clone());
        assert_eq!(h.status, "waiting");
        let h = Health::new(Check::down("refused"), Check::ok(), watcher);
        assert_eq!(h.status, "degraded");
    }
}
