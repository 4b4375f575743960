//! `/healthz`: whether Postgres answers a query and Kafka returns cluster metadata, each within
//! a short timeout. Owns the Kafka metadata client; never writes anything anywhere.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;
use serde::Serialize;

/// How long each check may take.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One dependency's state.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    /// `ok`, `down`, or `disabled` (Kafka without brokers configured).
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
        self.status != "down"
    }
}

/// The `/healthz` body.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Health {
    /// `ok` when every configured dependency answers, else `degraded`.
    pub status: &'static str,
    pub postgres: Check,
    pub kafka: Check,
}

impl Health {
    pub fn new(postgres: Check, kafka: Check) -> Health {
        let healthy = postgres.is_healthy() && kafka.is_healthy();
        Health {
            status: if healthy { "ok" } else { "degraded" },
            postgres,
            kafka,
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
        assert_eq!(Health::new(Check::ok(), disabled.clone()).status, "ok");
        let h = Health::new(Check::down("refused"), disabled);
        assert_eq!(h.status, "degraded");
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(json["postgres"]["error"], "refused");
        assert!(json["kafka"].get("error").is_none());
    }
}
