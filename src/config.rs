//! Command-line and environment configuration of both binaries, parsed once into a settings
//! struct. Each field's doc comment is its `--help` text. Parsing and validation do no I/O: the
//! user's source profile files are read when the watcher is built (`watch::run`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

mod alerts;
mod gen;
pub use alerts::AlertArgs;
pub use gen::{GenArgs, SEEDED_START};

pub const DEFAULT_DATABASE_URL: &str = "postgres://shopstream:shopstream@127.0.0.1:5432/shopstream";
pub const DEFAULT_LANDING_DIR: &str = "landing";
pub const DEFAULT_TOPIC: &str = "shopstream.events";
pub const DEFAULT_KAFKA_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_WORKERS: u16 = 2;
pub const DEFAULT_SETTLE_MS: u64 = 1000;
pub const DEFAULT_RESCAN_SECS: u64 = 10;
pub const DEFAULT_REJECTED_TOPIC: &str = "shopstream.rejected";
pub const DEFAULT_TRANSACTIONS_TOPIC: &str = "shopstream.transactions";
pub const DEFAULT_INVENTORY_TOPIC: &str = "shopstream.inventory";
pub const DEFAULT_MAX_REJECT_FRACTION: f64 = 0.5;
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 << 30;
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:9898";
/// A setting of either binary that cannot be right, whatever the machine.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--{name} must be between 0 and 1, got {value}")]
    Fraction { name: &'static str, value: f64 },
    #[error("--{name} must be at least 1")]
    Zero { name: &'static str },
    #[error("--start {value:?} is not an RFC 3339 timestamp: {source}")]
    Start {
        value: String,
        source: chrono::ParseError,
    },
    #[error("--landing-dir: {0}")]
    Bucket(String),
    #[error("--rate must be a positive number of events per second")]
    Rate,
    #[error("--events-per-session must be a number of at least 1, got {0}")]
    EventsPerSession(f64),
    #[error(
        "--purchase-share {purchase} and --cart-share {cart} (plus 15% of it for removals) \
         add up to more than all events"
    )]
    Shares { purchase: f64, cart: f64 },
    #[error(
        "--invalid-fraction and --search-share work with --layout native only (the faults \
         break native rows; REES46 files have no search events)"
    )]
    InvalidLayout,
    #[error("--http-addr {value:?} is not HOST:PORT with an IP address (or `off`): {source}")]
    HttpAddr {
        value: String,
        source: std::net::AddrParseError,
    },
    #[error(
        "--http-addr {0} is reachable from other machines: set --http-token (or HTTP_TOKEN) so \
         that the dashboard and /api/* ask for it"
    )]
    HttpToken(std::net::SocketAddr),
    #[error("--{name} must be a finite number above 1 (at least 0 for a minimum), got {value}")]
    Factor { name: &'static str, value: f64 },
}

/// Ingests e-commerce event CSV files dropped into a landing directory into PostgreSQL, and
/// mirrors the loaded events to Kafka.
#[derive(Debug, Parser)]
#[command(name = "shopstream-watch", version)]
pub struct WatchArgs {
    /// PostgreSQL connection URL (never logged with its password).
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
    /// Directory to watch, or a bucket `s3://BUCKET/PREFIX` (endpoint and credentials from
    /// AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ALLOW_HTTP);
    /// finished files move to processed/ or rejected/ inside it.
    #[arg(long, env = "LANDING_DIR", default_value = DEFAULT_LANDING_DIR)]
    pub landing_dir: PathBuf,
    /// Kafka bootstrap servers (host:port,…); empty turns the Kafka mirror off.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "")]
    pub kafka_brokers: String,
    /// Topic the loaded events are mirrored to.
    #[arg(long, env = "KAFKA_TOPIC", default_value = DEFAULT_TOPIC)]
    pub kafka_topic: String,
    /// How long Kafka may take to acknowledge an event before the file goes back to the backlog.
    #[arg(long, env = "KAFKA_TIMEOUT_MS", default_value_t = DEFAULT_KAFKA_TIMEOUT_MS, allow_negative_numbers = true)]
    pub kafka_timeout_ms: u64,
    /// Ingest what is in the landing directory now, then exit (batch mode).
    #[arg(long)]
    pub once: bool,
    /// Files loaded at the same time, each on its own Postgres connection (one transaction per
    /// file either way). More than the server's cores buys nothing.
    #[arg(long, env = "WORKERS", default_value_t = DEFAULT_WORKERS, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: u16,
    /// A file not renamed into place is read only after nothing wrote to it for this long.
    #[arg(long, env = "SETTLE_MS", default_value_t = DEFAULT_SETTLE_MS, allow_negative_numbers = true)]
    pub settle_ms: u64,
    /// Rescan the directory this often, to catch files whose notify events were lost.
    #[arg(long, env = "RESCAN_SECS", default_value_t = DEFAULT_RESCAN_SECS, allow_negative_numbers = true)]
    pub rescan_secs: u64,
    /// Marker mode: read `x.csv` only once `x.csv<SUFFIX>` exists (for example `.done`).
    #[arg(long, env = "MARKER_SUFFIX", value_name = "SUFFIX")]
    pub marker_suffix: Option<String>,
    /// Topic for rejected rows (the dead-letter topic), when the Kafka mirror is on.
    #[arg(long, env = "KAFKA_REJECTED_TOPIC", default_value = DEFAULT_REJECTED_TOPIC)]
    pub kafka_rejected_topic: String,
    /// Topic the loaded transaction line items are mirrored to (key user_id).
    #[arg(long, env = "KAFKA_TRANSACTIONS_TOPIC", default_value = DEFAULT_TRANSACTIONS_TOPIC)]
    pub kafka_transactions_topic: String,
    /// Topic the loaded inventory updates are mirrored to (key product_id).
    #[arg(long, env = "KAFKA_INVENTORY_TOPIC", default_value = DEFAULT_INVENTORY_TOPIC)]
    pub kafka_inventory_topic: String,
    /// A file whose share of bad rows is above this is quarantined whole and nothing of it loads.
    #[arg(long, env = "MAX_REJECT_FRACTION", default_value_t = DEFAULT_MAX_REJECT_FRACTION, allow_negative_numbers = true)]
    pub max_reject_fraction: f64,
    /// Larger files are rejected whole (protects the machine from a wrong file dropped in).
    #[arg(long, env = "MAX_FILE_BYTES", default_value_t = DEFAULT_MAX_FILE_BYTES, allow_negative_numbers = true)]
    pub max_file_bytes: u64,
    /// Longer lines reject their file: no CSV export has such rows.
    #[arg(long, env = "MAX_LINE_BYTES", default_value_t = DEFAULT_MAX_LINE_BYTES, allow_negative_numbers = true)]
    pub max_line_bytes: usize,
    /// Address of the HTTP server: dashboard `/`, `/metrics` (Prometheus), `/healthz`, `/files`
    /// (per-file lifecycle). Empty or `off` turns it off. It serves even while Postgres is down.
    #[arg(long, env = "HTTP_ADDR", default_value = DEFAULT_HTTP_ADDR, value_name = "HOST:PORT")]
    pub http_addr: String,
    /// Bearer token the dashboard, /files and /api/* require (`Authorization: Bearer TOKEN`);
    /// /healthz and /metrics stay open. Required when --http-addr is not a loopback address.
    #[arg(long, env = "HTTP_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub http_token: Option<String>,
    /// Directory of user source profiles (`*.toml`; README: Source profiles), read once at
    /// start. The built-in profiles `native` and `rees46` are always known.
    #[arg(long, env = "SHOPSTREAM_PROFILES_DIR", value_name = "DIR")]
    pub profiles_dir: Option<PathBuf>,
    /// Plausible event times, EARLIEST..LATEST (dates, RFC 3339 instants, or now / now+2d /
    /// now-12h); a row outside is rejected. A profile's `event_time_window` takes precedence.
    #[arg(
        long,
        env = "EVENT_TIME_WINDOW",
        default_value = "1990-01-01..now+2d",
        value_name = "EARLIEST..LATEST"
    )]
    pub event_time_window: crate::transform::TimeWindow,
    #[command(flatten)]
    pub alerts: AlertArgs,
    /// An admin command instead of watching (for a scheduler such as cron).
    #[command(subcommand)]
    pub command: Option<WatchCommand>,
}

/// Admin commands of shopstream-watch; each connects, migrates, does its work and exits.
#[derive(Debug, clap::Subcommand)]
pub enum WatchCommand {
    /// Drops events and purchases older than DAYS whole UTC days (whole daily partitions, in one
    /// transaction noted in streaming.retention_runs); aggregates and the ledger stay.
    Retain {
        #[arg(long)]
        days: u32,
    },
}

/// Validated watcher settings.
#[derive(Clone)]
pub struct WatchSettings {
    pub database_url: String,
    pub landing_dir: PathBuf,
    pub kafka_brokers: Option<String>,
    pub kafka_topic: String,
    pub kafka_timeout: Duration,
    pub once: bool,
    pub workers: usize,
    pub settle: Duration,
    pub rescan: Duration,
    pub marker_suffix: Option<String>,
    pub kafka_rejected_topic: String,
    pub kafka_transactions_topic: String,
    pub kafka_inventory_topic: String,
    pub max_reject_fraction: f64,
    pub max_file_bytes: u64,
    pub limits: crate::transform::Limits,
    /// Where the HTTP server listens; `None` when turned off.
    pub http_addr: Option<std::net::SocketAddr>,
    /// The bearer token of the dashboard and `/api/*`; always set when `http_addr` is not
    /// loopback.
    pub http_token: Option<String>,
    /// Directory of the user's source profiles, read when the watcher is built.
    pub profiles_dir: Option<PathBuf>,
    /// Plausible event times for profiles that set none.
    pub event_time_window: crate::transform::TimeWindow,
    /// Thresholds of the data-quality checks.
    pub alerts: crate::load::AlertRules,
}

impl std::fmt::Debug for WatchSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchSettings")
            .field("database_url", &redact_url(&self.database_url))
            .field("landing_dir", &self.landing_dir)
            .field("kafka_brokers", &self.kafka_brokers)
            .field("kafka_topic", &self.kafka_topic)
            .field("once", &self.once)
            .field("settle", &self.settle)
            .field("rescan", &self.rescan)
            .field("marker_suffix", &self.marker_suffix)
            .field("max_reject_fraction", &self.max_reject_fraction)
            .field("http_addr", &self.http_addr)
            .field("profiles_dir", &self.profiles_dir)
            .finish_non_exhaustive()
    }
}

impl WatchArgs {
    pub fn validate(self) -> Result<WatchSettings, ConfigError> {
        if self.rescan_secs == 0 {
            return Err(ConfigError::Zero {
                name: "rescan-secs",
            });
        }
        if !(0.0..=1.0).contains(&self.max_reject_fraction) {
            return Err(ConfigError::Fraction {
                name: "max-reject-fraction",
                value: self.max_reject_fraction,
            });
        }
        if self.max_line_bytes == 0 {
            return Err(ConfigError::Zero {
                name: "max-line-bytes",
            });
        }
        if crate::landing::is_bucket_url(&self.landing_dir) {
            let url = self.landing_dir.to_string_lossy();
            crate::landing::bucket::parse_url(&url).map_err(ConfigError::Bucket)?;
        }
        let http_addr: Option<std::net::SocketAddr> = match self.http_addr.trim() {
            "" | "off" => None,
            value => Some(value.parse().map_err(|source| ConfigError::HttpAddr {
                value: value.to_string(),
                source,
            })?),
        };
        let alerts = self.alerts.validate()?;
        let http_token = self.http_token.filter(|t| !t.trim().is_empty());
        if let Some(addr) = http_addr {
            if !addr.ip().is_loopback() && http_token.is_none() {
                return Err(ConfigError::HttpToken(addr));
            }
        }
        let marker_suffix = self.marker_suffix.filter(|s| !s.is_empty());
        let brokers = self.kafka_brokers.trim();
        Ok(WatchSettings {
            database_url: self.database_url,
            landing_dir: self.landing_dir,
            kafka_brokers: (!brokers.is_empty()).then(|| brokers.to_string()),
            kafka_topic: self.kafka_topic,
            kafka_timeout: Duration::from_millis(self.kafka_timeout_ms.max(1)),
            once: self.once,
            workers: usize::from(self.workers),
            settle: Duration::from_millis(self.settle_ms),
            rescan: Duration::from_secs(self.rescan_secs),
            marker_suffix,
            kafka_rejected_topic: self.kafka_rejected_topic,
            kafka_transactions_topic: self.kafka_transactions_topic,
            kafka_inventory_topic: self.kafka_inventory_topic,
            max_reject_fraction: self.max_reject_fraction,
            max_file_bytes: self.max_file_bytes,
            limits: crate::transform::Limits {
                max_line_bytes: self.max_line_bytes,
            },
            http_addr,
            http_token,
            profiles_dir: self.profiles_dir,
            event_time_window: self.event_time_window,
            alerts,
        })
    }
}

/// The connection string with any password replaced by `***`, for logs and errors: the
/// password of a URL's user info, and any `password=` setting (a URL query parameter or the
/// key=value form `host=db password=secret`).
pub fn redact_url(url: &str) -> String {
    redact_password_settings(&redact_user_info(url))
}

fn redact_user_info(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    let user = userinfo.split(':').next().unwrap_or_default();
    format!("{scheme}://{user}:***@{host}")
}

/// Replaces the value after every `password=` (case-insensitive): a quoted value up to its
/// closing quote, else up to the next `&` or whitespace.
fn redact_password_settings(text: &str) -> String {
    const KEY: &str = "password=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.to_ascii_lowercase().find(KEY) {
        let value_start = at + KEY.len();
        out.push_str(&rest[..value_start]);
        out.push_str("***");
        let value = &rest[value_start..];
        let end = if let Some(quoted) = value.strip_prefix('\'') {
            quoted.find('\'').map_or(value.len(), |e| e + 2)
        } else {
            value
                .find(|c: char| c == '&' || c.is_whitespace())
                .unwrap_or(value.len())
        };
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::Shape;

    #[test]
    fn passwords_never_survive_redaction() {
        assert_eq!(
            redact_url("postgres://bob:s3cr@t@db:5432/x"),
            "postgres://bob:***@db:5432/x"
        );
        assert_eq!(redact_url("postgres://db/x"), "postgres://db/x");
        assert_eq!(
            redact_url("host=db user=bob password=s3cr port=1"),
            "host=db user=bob password=*** port=1"
        );
        assert_eq!(
            redact_url("host=db PASSWORD='a b' dbname=x"),
            "host=db PASSWORD=*** dbname=x"
        );
        assert_eq!(
            redact_url("postgres://bob@db/x?sslmode=disable&password=s3cr&x=1"),
            "postgres://bob:***@db/x?sslmode=disable&password=***&x=1"
        );
    }

    #[test]
    fn fractions_outside_zero_one_are_refused() {
        let args = GenArgs::parse_from(["gen", "--duplicate-fraction", "1.5"]);
        assert!(matches!(args.validate(), Err(ConfigError::Fraction { .. })));
    }

    #[test]
    fn http_addr_defaults_to_loopback_and_can_be_turned_off() {
        let on = WatchArgs::parse_from(["watch"]).validate().unwrap();
        assert_eq!(on.http_addr, Some(DEFAULT_HTTP_ADDR.parse().unwrap()));
        let off = WatchArgs::parse_from(["watch", "--http-addr", "off"])
            .validate()
            .unwrap();
        assert_eq!(off.http_addr, None);
        let bad = WatchArgs::parse_from(["watch", "--http-addr", "localhost"]).validate();
        assert!(matches!(bad, Err(ConfigError::HttpAddr { .. })));
        let open = WatchArgs::parse_from(["watch", "--http-addr", "0.0.0.0:9898"]).validate();
        assert!(matches!(open, Err(ConfigError::HttpToken(_))));
        let guarded =
            WatchArgs::parse_from(["watch", "--http-addr", "0.0.0.0:9898", "--http-token", "t"])
                .validate()
                .unwrap();
        assert_eq!(guarded.http_token.as_deref(), Some("t"));
    }

    #[test]
    fn shape_knobs_are_checked_and_unset_ones_take_the_funnel_averages() {
        let parse = |args: &[&str]| {
            let mut all = vec!["gen"];
            all.extend_from_slice(args);
            GenArgs::parse_from(all).validate().map(|s| s.shape)
        };
        assert_eq!(parse(&[]).unwrap(), None);
        let one = parse(&["--events-per-session", "1"]).unwrap().unwrap();
        assert_eq!(one.events_per_session, 1.0);
        assert_eq!(one.purchase_share, Shape::FUNNEL.purchase_share);
        assert_eq!(one.cart_share, Shape::FUNNEL.cart_share);
        for bad in [
            ["--events-per-session", "0.5"],
            ["--events-per-session", "NaN"],
        ] {
            assert!(matches!(
                parse(&bad[..]),
                Err(ConfigError::EventsPerSession(_))
            ));
        }
        let too_much = parse(&["--purchase-share", "0.5", "--cart-share", "0.5"]);
        assert!(matches!(too_much, Err(ConfigError::Shares { .. })));
        let negative = parse(&["--cart-share=-0.1"]);
        assert!(matches!(negative, Err(ConfigError::Fraction { .. })));
        let faults = parse(&["--layout", "rees46", "--invalid-fraction", "0.1"]);
        assert!(matches!(faults, Err(ConfigError::InvalidLayout)));
    }

    #[test]
    fn seed_without_start_pins_the_start() {
        let a = GenArgs::parse_from(["gen", "--seed", "7"])
            .validate()
            .unwrap();
        assert_eq!(a.start_micros, gen::parse_start(SEEDED_START).unwrap());
    }
}
