//! The per-file derive: what a file's NEW events (those its COPY actually inserted) add to
//! purchases, hourly stats and the analytics (sessions, product counts, hourly users). The
//! events are folded into exact sums on the watcher as their chunks are copied, so the file's
//! events are never read back from Postgres and the server only merges one row per key.
//! Owns the derive's arithmetic and its SQL; never reads files, never talks to Kafka.
//!
//! The `*_recompute` views (sql/V7, sql/V10, sql/V16) define what each table must equal over all events;
//! the integration tests compare them after every scenario.

mod merge;
mod sql;
pub mod sum;

// foldhash: the keys are a file's ids, hashed once or more per row.
use foldhash::{HashMap, HashSet};

pub(crate) use merge::copy_purchases;
pub use sum::{ExactSum, SumError};

/// The event types of the contract, as the derive counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    AddToCart,
    Purchase,
    RemoveFromCart,
    /// Counted in its session (`events`), hour and user; no product, no funnel step.
    Search,
    View,
}

impl EventKind {
    /// The contract's name; `None` for anything else (the rules refused it already).
    pub fn parse(name: &str) -> Option<EventKind> {
        match name {
            "view" => Some(EventKind::View),
            "add_to_cart" => Some(EventKind::AddToCart),
            "remove_from_cart" => Some(EventKind::RemoveFromCart),
            "purchase" => Some(EventKind::Purchase),
            "search" => Some(EventKind::Search),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            EventKind::View => "view",
            EventKind::AddToCart => "add_to_cart",
            EventKind::RemoveFromCart => "remove_from_cart",
            EventKind::Purchase => "purchase",
            EventKind::Search => "search",
        }
    }
}

/// What the derive needs of one good row, taken on the reader's thread with its COPY tuple.
#[derive(Debug, Clone)]
pub struct EventFacts {
    /// Microseconds since the UNIX epoch, UTC.
    pub time: i64,
    pub kind: EventKind,
    pub user_id: String,
    pub session_id: String,
    pub product_id: String,
    pub category: Option<String>,
    pub quantity: i32,
    /// product_price as a float, for the price check's typical price (`load::alerts`); never
    /// summed or stored (the exact text is in the COPY tuple).
    pub unit_price: f64,
    /// Kept for purchases only (the purchases table's copy of the row).
    pub price: Option<String>,
    pub total: Option<String>,
    pub total_sum: Option<ExactSum>,
}

/// Views, carts, removes and purchases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct KindCounts([i64; 4]);

impl KindCounts {
    fn count(&mut self, kind: EventKind) {
        let at = match kind {
            EventKind::View => 0,
            EventKind::AddToCart => 1,
            EventKind::RemoveFromCart => 2,
            EventKind::Purchase => 3,
            EventKind::Search => return,
        };
        self.0[at] += 1;
    }
}

#[derive(Debug, Clone)]
struct SessionSums {
    /// The smallest user id seen (byte order, as `COLLATE "C"`).
    user_id: String,
    started: i64,
    ended: i64,
    events: i64,
    kinds: KindCounts,
    revenue: ExactSum,
}

#[derive(Debug, Clone, Default)]
struct ProductSums {
    kinds: KindCounts,
    units_sold: i64,
    revenue: ExactSum,
}

#[derive(Debug, Clone, Default)]
struct HourSums {
    events: i64,
    quantity: i64,
    revenue: ExactSum,
}

const HOUR_MICROS: i64 = 3_600_000_000;

/// A file's new events folded into one row per derived key, ready to merge at commit.
#[derive(Debug, Default)]
pub struct FileDerive {
    /// UTC day (days since the epoch), then session_id: a session ends at midnight (sql/V16).
    sessions: HashMap<i64, HashMap<String, SessionSums>>,
    /// product_id, then product_category or ''.
    products: HashMap<String, HashMap<String, ProductSums>>,
    /// (hour, event type), then product_category or ''.
    hours: HashMap<(i64, EventKind), HashMap<String, HourSums>>,
    /// hour, then the users active in it.
    users: HashMap<i64, HashSet<String>>,
    /// Product and hour sums were sent to the temporary tables; the merge reads them there.
    spilled: bool,
    /// The last batch of sessions merged met none that existed: the next is COPYed unprobed.
    sessions_new: bool,
}

impl FileDerive {
    /// Adds one new event.
    pub fn fold(&mut self, e: &EventFacts) -> Result<(), SumError> {
        let revenue = e.total_sum.unwrap_or_default();
        let hour = e.time.div_euclid(HOUR_MICROS) * HOUR_MICROS;
        let category = e.category.as_deref().unwrap_or("");

        let day = crate::load::partitions::day_of(e.time);
        let sessions = self.sessions.entry(day).or_default();
        match sessions.get_mut(&e.session_id) {
            Some(s) => {
                if e.user_id < s.user_id {
                    s.user_id.clone_from(&e.user_id);
                }
                s.started = s.started.min(e.time);
                s.ended = s.ended.max(e.time);
                s.events += 1;
                s.kinds.count(e.kind);
                s.revenue.add(revenue)?;
            }
            None => {
                let mut kinds = KindCounts::default();
                kinds.count(e.kind);
                sessions.insert(
                    e.session_id.clone(),
                    SessionSums {
                        user_id: e.user_id.clone(),
                        started: e.time,
                        ended: e.time,
                        events: 1,
                        kinds,
                        revenue,
                    },
                );
            }
        }

        if e.kind != EventKind::Search {
            let p = by_text(by_text(&mut self.products, &e.product_id), category);
            p.kinds.count(e.kind);
            if e.kind == EventKind::Purchase {
                p.units_sold += i64::from(e.quantity);
            }
            p.revenue.add(revenue)?;
        }

        let h = by_text(self.hours.entry((hour, e.kind)).or_default(), category);
        h.events += 1;
        h.quantity += i64::from(e.quantity);
        h.revenue.add(revenue)?;

        let users = self.users.entry(hour).or_default();
        if !users.contains(&e.user_id) {
            users.insert(e.user_id.clone());
        }
        Ok(())
    }
}

/// The entry for `key`, made on first sight; the key is copied only then (most rows of a file
/// hit keys seen before).
fn by_text<'m, V: Default>(map: &'m mut HashMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_string(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

#[cfg(test)]
mod tests;
