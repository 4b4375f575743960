//! Data-quality alerts (README: Alerts): checks that run ONCE per file, inside its load
//! transaction just before the commit, and raise or resolve rows of `streaming.alerts`. A file
//! commits with its alerts or with none, so a crash or a retry cannot raise one twice; the
//! partial unique index on open (kind, subject) makes a condition that persists raise once.
//! The checks read only what the file touched: its products' price history, the hourly stats
//! of its hours, the ledger rows of the last files of its profile. Never reads the events.
//!
//! Kinds: [`prices`] (`price_outlier`), [`volume`] (`volume_spike`, `volume_drop`), [`rates`]
//! (`reject_rate`, `duplicate_rate`) for event files; [`stock`] (`low_stock`) for inventory
//! files, run by their own load (`load::streams`) with the levels the file moved.

mod prices;
mod rates;
mod stock;
mod volume;

use tokio_postgres::{Row, Transaction};
use tracing::{info, warn};

pub use prices::FilePrices;
pub use stock::check_stock;
pub use volume::FileHours;

/// Every kind of alert.
pub const KINDS: [&str; 6] = [
    "price_outlier",
    "volume_spike",
    "volume_drop",
    "reject_rate",
    "duplicate_rate",
    "low_stock",
];

/// The thresholds of every check; each default is a named const, each has a flag
/// (`config::AlertArgs`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertRules {
    /// Off: no check runs (`--alerts off`).
    pub enabled: bool,
    /// `price_outlier`: a price above baseline × factor or below baseline / factor.
    pub price_factor: f64,
    /// `volume_spike` / `volume_drop`: an hour above baseline × factor or below baseline / factor.
    pub volume_factor: f64,
    /// `volume_*`: hours whose baseline is smaller (events per hour) are not judged.
    pub volume_min_events: f64,
    /// `reject_rate`: a file's reject share above max(this, baseline × rate_factor).
    pub reject_share: f64,
    /// `duplicate_rate`: a file's duplicate share above max(this, baseline × rate_factor).
    pub duplicate_share: f64,
    /// `reject_rate` / `duplicate_rate`: how far above its baseline a share may go.
    pub rate_factor: f64,
    /// `low_stock`: a product's stock in a warehouse below this many units.
    pub low_stock: i32,
}

pub const PRICE_FACTOR: f64 = 10.0;
/// Price samples (file medians) of a product whose median is its typical price (the newest).
pub const PRICE_HISTORY: i32 = 9;
/// A product is judged once it has that many samples (from as many earlier files).
pub const PRICE_MIN_FILES: i64 = 3;
pub const VOLUME_FACTOR: f64 = 3.0;
/// The baseline of an hour is the mean of the same hour on this many days before...
pub const VOLUME_DAYS: i32 = 7;
/// ...of which at least this many must have events in that hour.
pub const VOLUME_MIN_DAYS: i64 = 3;
pub const VOLUME_MIN_EVENTS: f64 = 100.0;
pub const REJECT_SHARE: f64 = 0.05;
pub const DUPLICATE_SHARE: f64 = 0.10;
pub const RATE_FACTOR: f64 = 3.0;
/// Earlier loaded files of the same profile whose shares make the rates' baseline...
pub const RATE_WINDOW: i64 = 20;
/// ...of which at least this many must exist.
pub const RATE_MIN_FILES: i64 = 3;
/// Smaller files are not judged: a few bad rows in a tiny file say little.
pub const RATE_MIN_ROWS: i64 = 100;
pub const LOW_STOCK: i32 = 10;

impl Default for AlertRules {
    fn default() -> AlertRules {
        AlertRules {
            enabled: true,
            price_factor: PRICE_FACTOR,
            volume_factor: VOLUME_FACTOR,
            volume_min_events: VOLUME_MIN_EVENTS,
            reject_share: REJECT_SHARE,
            duplicate_share: DUPLICATE_SHARE,
            rate_factor: RATE_FACTOR,
            low_stock: LOW_STOCK,
        }
    }
}

/// What the checks need of a file's NEW events (those its COPY inserted), folded as they are
/// copied: its products' prices and the hours it touched.
#[derive(Debug, Default)]
pub struct FileFacts {
    pub prices: FilePrices,
    pub hours: FileHours,
}

impl FileFacts {
    /// Adds one new event.
    pub fn fold(&mut self, e: &crate::load::derive::EventFacts) {
        if e.kind != crate::load::derive::EventKind::Search {
            self.prices.fold(&e.product_id, e.unit_price);
        }
        self.hours.fold(e.time);
    }
}

/// One alert raised or resolved by a file's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub raised: bool,
    pub kind: String,
    pub subject: String,
    pub observed: Option<String>,
    pub baseline: Option<String>,
    pub expected_low: Option<String>,
    pub expected_high: Option<String>,
}

impl Change {
    /// A row of the checks' common result: (raised, kind, subject, observed, baseline,
    /// expected_low, expected_high), the numbers as text.
    fn from_row(r: &Row) -> Change {
        Change {
            raised: r.get(0),
            kind: r.get(1),
            subject: r.get(2),
            observed: r.get(3),
            baseline: r.get(4),
            expected_low: r.get(5),
            expected_high: r.get(6),
        }
    }
}

/// Runs every check for file `file_id` in its load transaction `tx`, after its derive merged
/// and its ledger row was finished; logs each alert raised (WARN) and resolved (INFO).
///
/// # Errors
/// A statement failed; the load then fails as any of its statements would (nothing commits).
pub async fn check(
    tx: &Transaction<'_>,
    file_id: i64,
    facts: &FileFacts,
    rules: &AlertRules,
) -> Result<Vec<Change>, tokio_postgres::Error> {
    if !rules.enabled {
        return Ok(Vec::new());
    }
    // Pipelined: the three statements go out together, one round trip instead of three.
    let (mut changes, volume, rates) = futures_util::future::try_join3(
        prices::check(tx, file_id, &facts.prices, rules),
        volume::check(tx, file_id, &facts.hours, rules),
        rates::check(tx, file_id, rules),
    )
    .await?;
    changes.extend(volume);
    changes.extend(rates);
    log_changes(file_id, &changes);
    Ok(changes)
}

/// Raised alerts a file logs one line each; the rest are counted in one line. A change of
/// catalogue can raise one per product, and a log that floods hides everything else (and blocks
/// a watcher whose stderr is a pipe nobody reads fast enough).
const LOGGED_PER_FILE: usize = 5;

/// Logs the first [`LOGGED_PER_FILE`] alerts raised (WARN, with what broke the rule), a count of
/// the others (WARN), and each one resolved (INFO).
fn log_changes(file_id: i64, changes: &[Change]) {
    let raised = changes.iter().filter(|c| c.raised).count();
    for c in changes.iter().filter(|c| c.raised).take(LOGGED_PER_FILE) {
        let (kind, subject) = (c.kind.as_str(), c.subject.as_str());
        let observed = c.observed.as_deref().unwrap_or("?");
        let low = c.expected_low.as_deref().unwrap_or("-inf");
        let high = c.expected_high.as_deref().unwrap_or("+inf");
        let baseline = c.baseline.as_deref().unwrap_or("?");
        warn!(
            file_id,
            kind,
            subject,
            observed,
            baseline,
            expected_low = low,
            expected_high = high,
            "Data-quality alert raised."
        );
    }
    if raised > LOGGED_PER_FILE {
        let more = raised - LOGGED_PER_FILE;
        warn!(
            file_id,
            more, "More data-quality alerts raised by this file; all are in streaming.alerts."
        );
    }
    for c in changes.iter().filter(|c| !c.raised) {
        let (kind, subject) = (c.kind.as_str(), c.subject.as_str());
        info!(file_id, kind, subject, "Data-quality alert resolved.");
    }
}
