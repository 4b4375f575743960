//! shopstream-gen's settings: the flags, their `--help` text and their validation (no I/O).

use std::path::PathBuf;

use clap::Parser;

use super::{ConfigError, DEFAULT_LANDING_DIR};
use crate::generator::{GenSettings, Layout, Shape};

/// Event time of the first session when a seed is given and `--start` is not: runs repeat exactly.
pub const SEEDED_START: &str = "2026-11-01T00:00:00Z";

/// Writes Faker-style e-commerce event CSV files (the native contract, or the REES46 layout)
/// into a landing directory.
#[derive(Debug, Parser)]
#[command(name = "shopstream-gen", version)]
pub struct GenArgs {
    /// Directory the files are written to (each under a temporary dot-name, then renamed).
    #[arg(long, env = "LANDING_DIR", default_value = DEFAULT_LANDING_DIR)]
    pub out: PathBuf,
    /// Number of files to write.
    #[arg(long, default_value_t = 10)]
    pub files: usize,
    /// Rows (events) per file.
    #[arg(long, default_value_t = 10_000)]
    pub rows_per_file: usize,
    /// Events per second across all files; default: as fast as possible.
    #[arg(long, value_name = "EVENTS_PER_SEC")]
    pub rate: Option<f64>,
    /// Random seed; the same seed and flags give byte-identical files. Default: random.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Event time of the first session (RFC 3339). Default: 2026-11-01T00:00:00Z with --seed, else now.
    #[arg(long)]
    pub start: Option<String>,
    /// Fraction of rows that repeat an earlier event exactly (same event_id).
    #[arg(long, default_value_t = 0.0)]
    pub duplicate_fraction: f64,
    /// Fraction of events whose time is moved 1 to 48 hours into the past.
    #[arg(long, default_value_t = 0.0)]
    pub late_fraction: f64,
    /// Fraction of rows made to break the contract (bad id, time, type, price, quantity, …).
    #[arg(long, default_value_t = 0.0)]
    pub invalid_fraction: f64,
    /// Size of the shopper population.
    #[arg(long, default_value_t = 5_000)]
    pub users: usize,
    /// Size of the product catalogue.
    #[arg(long, default_value_t = 1_000)]
    pub products: usize,
    /// Mean events per session (at least 1; lengths are geometric). Setting this,
    /// --purchase-share or --cart-share draws sessions to that shape; the knobs not set take
    /// the funnel's averages (5.19 events, 0.0106 purchases, 0.105 carts). Default: unset, the
    /// funnel itself (1 to 8 views, 12% of them carted, 12% of the sessions with a cart buy).
    #[arg(long, value_name = "MEAN")]
    pub events_per_session: Option<f64>,
    /// Fraction of events that are purchases (see --events-per-session).
    #[arg(long, value_name = "FRACTION")]
    pub purchase_share: Option<f64>,
    /// Fraction of events that are add_to_cart; remove_from_cart is 15% of that (see
    /// --events-per-session).
    #[arg(long, value_name = "FRACTION")]
    pub cart_share: Option<f64>,
    /// Columns and formats of the files: `native` (the contract) or `rees46` (REES46's
    /// eCommerce behavior data: no event id, no quantity, read by the built-in rees46 profile).
    #[arg(long, value_enum, default_value_t = Layout::Native)]
    pub layout: Layout,
    /// Streams to write, comma-separated: `events` (event files), `transactions` (a purchase
    /// event's line items, README: The transactions contract), `inventory` (the stock each sale
    /// lowers and restocks raise). Drawn together, so they agree; `events` alone writes the
    /// same files as before streams existed.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "events")]
    pub streams: Vec<crate::generator::GenStream>,
    /// Chance that a view is preceded by a search for its product (event_type `search`, a
    /// `search_query` column; a fifth of those searches instead end the session with no view
    /// after them). Native layout only. Default 0: no searches, the same files as before
    /// searches existed.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0)]
    pub search_share: f64,
}

impl GenArgs {
    /// Checks the flags and turns them into settings; draws a seed if none was given.
    pub fn validate(self) -> Result<GenSettings, ConfigError> {
        for (name, value) in [
            ("duplicate-fraction", self.duplicate_fraction),
            ("late-fraction", self.late_fraction),
            ("invalid-fraction", self.invalid_fraction),
            ("purchase-share", self.purchase_share.unwrap_or(0.0)),
            ("cart-share", self.cart_share.unwrap_or(0.0)),
            ("search-share", self.search_share),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError::Fraction { name, value });
            }
        }
        for (name, value) in [("users", self.users), ("products", self.products)] {
            if value == 0 {
                return Err(ConfigError::Zero { name });
            }
        }
        if self.rate.is_some_and(|r| r <= 0.0 || r.is_nan()) {
            return Err(ConfigError::Rate);
        }
        if (self.invalid_fraction > 0.0 || self.search_share > 0.0) && self.layout != Layout::Native
        {
            return Err(ConfigError::InvalidLayout);
        }
        let shape = self.shape()?;
        let start_micros = match (&self.start, self.seed) {
            (Some(value), _) => parse_start(value)?,
            (None, Some(_)) => parse_start(SEEDED_START)?,
            (None, None) => chrono::Utc::now().timestamp_micros(),
        };
        Ok(GenSettings {
            out_dir: self.out,
            files: self.files,
            rows_per_file: self.rows_per_file,
            rate: self.rate,
            seed: self.seed.unwrap_or_else(rand::random),
            start_micros,
            duplicate_fraction: self.duplicate_fraction,
            late_fraction: self.late_fraction,
            invalid_fraction: self.invalid_fraction,
            users: self.users,
            products: self.products,
            shape,
            layout: self.layout,
            streams: self.streams,
            search_share: self.search_share,
        })
    }

    /// The session shape the knobs ask for; `None` when none is set, which keeps the funnel
    /// (and so the bytes of every run made before the knobs existed).
    fn shape(&self) -> Result<Option<Shape>, ConfigError> {
        if self.events_per_session.is_none()
            && self.purchase_share.is_none()
            && self.cart_share.is_none()
        {
            return Ok(None);
        }
        let funnel = Shape::FUNNEL;
        let shape = Shape {
            events_per_session: self.events_per_session.unwrap_or(funnel.events_per_session),
            purchase_share: self.purchase_share.unwrap_or(funnel.purchase_share),
            cart_share: self.cart_share.unwrap_or(funnel.cart_share),
        };
        // A range, not `< 1.0`: NaN is in no range.
        if !(1.0..f64::INFINITY).contains(&shape.events_per_session) {
            return Err(ConfigError::EventsPerSession(shape.events_per_session));
        }
        if shape.purchase_share + shape.cart_share + shape.remove_share() > 1.0 {
            return Err(ConfigError::Shares {
                purchase: shape.purchase_share,
                cart: shape.cart_share,
            });
        }
        Ok(Some(shape))
    }
}

pub(super) fn parse_start(value: &str) -> Result<i64, ConfigError> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_micros())
        .map_err(|source| ConfigError::Start {
            value: value.to_string(),
            source,
        })
}
