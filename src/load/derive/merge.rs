//! Sending the derive to Postgres: at commit a file's folded sums are merged by ONE statement
//! per derived table, in key order ([`super::sql`]), sent as arrays. Sessions and (hour, user)
//! pairs are mostly new: one probe per file finds those that exist, the new ones are COPYed
//! under a savepoint (a load that committed the same key meanwhile sends them all through the
//! merge instead) and only the rest merged, as `ON CONFLICT` checks each row on its own.
//! A file with more keys than the watcher keeps in memory ([`MEMORY_KEYS`]) merges its sessions
//! and user-hours so far the same way, batch by batch, and sends its product and hour sums to
//! temporary tables (private to the connection, no WAL, no locks others can meet) when those
//! alone are many; they are merged from there at commit. Purchases are the new purchase events
//! themselves, copied as their chunk is.

use std::collections::HashSet;
use std::pin::Pin;

use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::sql::{self, TEMP_TABLES, TOTALS};
use super::{EventFacts, EventKind, FileDerive, HourSums, ProductSums, SessionSums};
use crate::load::binary::Decimal;
use crate::load::partitions::date_of;

/// Distinct derived keys (sessions, products, hours, user-hours) a load holds in memory, about
/// 200 bytes each, before it writes them out.
const MEMORY_KEYS: usize = 100_000;

const COPY_PRODUCTS: &str = "COPY derive_products FROM STDIN (FORMAT binary)";
const COPY_HOURS: &str = "COPY derive_hours FROM STDIN (FORMAT binary)";
const COPY_PURCHASES: &str = "COPY streaming.purchases (event_id, event_time, user_id, \
    session_id, product_id, product_category, product_price, quantity, total_amount) \
    FROM STDIN (FORMAT binary)";

impl FileDerive {
    /// Keeps the watcher's memory bounded on a file with millions of keys: once the sums hold
    /// [`MEMORY_KEYS`], the sessions and user-hours so far are merged into their tables (as at
    /// commit; a later batch's probe finds this one's rows, the transaction's own) and forgotten,
    /// and product and hour sums, when they alone fill half of it, go to the temporary tables.
    /// (Sending everything to temporary tables and merging from there at commit, a sort of
    /// every row and then `ON CONFLICT` for each, took 20.8 s of server time for a file of
    /// 1,000,000 one-event sessions; these merges take 12.7 s.)
    pub async fn bound_memory(
        &mut self,
        tx: &Transaction<'_>,
    ) -> Result<(), tokio_postgres::Error> {
        if self.keys() < MEMORY_KEYS {
            return Ok(());
        }
        self.merge_sessions(tx).await?;
        self.merge_user_hours(tx).await?;
        if self.keys() >= MEMORY_KEYS / 2 {
            self.spill_totals(tx).await?;
        }
        Ok(())
    }

    /// Merges the file's sums into the derived tables, in the lock order `super::sql` gives:
    /// products and hours from memory, or, once they have spilled, through the temporary tables.
    pub async fn merge(&mut self, tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
        self.merge_sessions(tx).await?;
        self.merge_user_hours(tx).await?;
        if self.spilled {
            self.spill_totals(tx).await?;
            for m in &TOTALS {
                tx.batch_execute(m.from_temp).await?;
            }
            return Ok(());
        }
        self.merge_products(tx).await?;
        self.merge_hours(tx).await
    }

    /// Sends the product and hour sums to the connection's temporary tables and forgets them.
    async fn spill_totals(&mut self, tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
        tx.batch_execute(TEMP_TABLES).await?;
        self.spilled = true;
        let mut writer = copy_writer(tx, COPY_PRODUCTS, &PRODUCT_TYPES).await?;
        for (product, categories) in self.products.drain() {
            for (category, p) in categories {
                let [views, carts, removes, purchases] = p.kinds.0;
                let revenue = p.revenue.to_string();
                let row: [&(dyn ToSql + Sync); 8] = [
                    &product,
                    &category,
                    &views,
                    &carts,
                    &removes,
                    &purchases,
                    &p.units_sold,
                    &Decimal(&revenue),
                ];
                writer.as_mut().write(&row).await?;
            }
        }
        writer.as_mut().finish().await?;

        let mut writer = copy_writer(tx, COPY_HOURS, &HOUR_TYPES).await?;
        for ((hour, kind), categories) in self.hours.drain() {
            for (category, h) in categories {
                let revenue = h.revenue.to_string();
                let row: [&(dyn ToSql + Sync); 6] = [
                    &micros(hour),
                    &kind.name(),
                    &category,
                    &h.events,
                    &h.quantity,
                    &Decimal(&revenue),
                ];
                writer.as_mut().write(&row).await?;
            }
        }
        writer.as_mut().finish().await?;
        Ok(())
    }

    /// The sessions held in memory, in key order (session_id, session_day) as the primary key:
    /// the new ones COPYed, the rest merged; then forgotten.
    async fn merge_sessions(&mut self, tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
        // Nothing to send (a file of duplicates, or a batch merged just before the commit):
        // no probe either.
        if self.sessions.is_empty() {
            return Ok(());
        }
        let mut sessions: Vec<SessionRow> = self
            .sessions
            .iter()
            .flat_map(|(&day, by_id)| by_id.iter().map(move |(id, s)| (id.as_str(), day, s)))
            .collect();
        sessions.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let all: Vec<&SessionRow> = sessions.iter().collect();
        // A batch after one that met no existing session is COPYed without a probe (see
        // `unless_taken`); a refusal sends it, and the batches after it, the probing way.
        let copied_unprobed =
            self.sessions_new && unless_taken(tx, write_sessions(tx, &all)).await?;
        if !copied_unprobed {
            let known = known_sessions(tx, &sessions).await?;
            self.sessions_new = known.is_empty();
            let (old, new): (Vec<_>, Vec<_>) = all
                .iter()
                .partition(|s| known.contains(&(s.0, date_of(s.1))));
            let copied = new.is_empty() || unless_taken(tx, write_sessions(tx, &new)).await?;
            upsert_sessions(tx, if copied { &old } else { &all }).await?;
        }
        self.sessions.clear();
        Ok(())
    }

    /// The (hour, user) pairs held in memory, sorted: a pair that exists needs nothing
    /// (`ON CONFLICT DO NOTHING`), so only new ones are sent; then forgotten. (Files of the same
    /// hour share most of their users, so the probe comes first here.)
    async fn merge_user_hours(
        &mut self,
        tx: &Transaction<'_>,
    ) -> Result<(), tokio_postgres::Error> {
        if self.users.is_empty() {
            return Ok(());
        }
        let mut users: Vec<(i64, &str)> = self
            .users
            .iter()
            .flat_map(|(&hour, users)| users.iter().map(move |u| (hour, u.as_str())))
            .collect();
        users.sort_unstable();
        let known = known_user_hours(tx, &users).await?;
        let new: Vec<_> = users.iter().filter(|u| !known.contains(u)).collect();
        let copied = new.is_empty() || unless_taken(tx, write_user_hours(tx, &new)).await?;
        if !copied {
            tx.execute(
                sql::USERS,
                &[
                    &users.iter().map(|u| micros(u.0)).collect::<Vec<_>>(),
                    &users.iter().map(|u| u.1).collect::<Vec<_>>(),
                ],
            )
            .await?;
        }
        self.users.clear();
        Ok(())
    }

    async fn merge_products(&self, tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
        let mut products: Vec<(&str, &str, &ProductSums)> = self
            .products
            .iter()
            .flat_map(|(id, by_category)| {
                by_category
                    .iter()
                    .map(move |(category, p)| (id.as_str(), category.as_str(), p))
            })
            .collect();
        products.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let revenue: Vec<String> = products.iter().map(|p| p.2.revenue.to_string()).collect();
        let kind = |i: usize| -> Vec<i64> { products.iter().map(|p| p.2.kinds.0[i]).collect() };
        tx.execute(
            sql::PRODUCTS.from_arrays,
            &[
                &products.iter().map(|p| p.0).collect::<Vec<_>>(),
                &products.iter().map(|p| p.1).collect::<Vec<_>>(),
                &kind(0),
                &kind(1),
                &kind(2),
                &kind(3),
                &products.iter().map(|p| p.2.units_sold).collect::<Vec<_>>(),
                &decimals(&revenue),
            ],
        )
        .await?;
        Ok(())
    }

    async fn merge_hours(&self, tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
        // EventKind's order is its names' byte order.
        let mut hours: Vec<(i64, EventKind, &str, &HourSums)> = self
            .hours
            .iter()
            .flat_map(|(&(hour, kind), by_category)| {
                by_category
                    .iter()
                    .map(move |(category, h)| (hour, kind, category.as_str(), h))
            })
            .collect();
        hours.sort_unstable_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        let revenue: Vec<String> = hours.iter().map(|h| h.3.revenue.to_string()).collect();
        tx.execute(
            sql::HOURS.from_arrays,
            &[
                &hours.iter().map(|h| micros(h.0)).collect::<Vec<_>>(),
                &hours.iter().map(|h| h.1.name()).collect::<Vec<_>>(),
                &hours.iter().map(|h| h.2).collect::<Vec<_>>(),
                &hours.iter().map(|h| h.3.events).collect::<Vec<_>>(),
                &hours.iter().map(|h| h.3.quantity).collect::<Vec<_>>(),
                &decimals(&revenue),
            ],
        )
        .await?;
        Ok(())
    }

    /// Distinct keys held in memory.
    pub fn keys(&self) -> usize {
        self.sessions.values().map(|s| s.len()).sum::<usize>()
            + self.products.values().map(|c| c.len()).sum::<usize>()
            + self.hours.values().map(|c| c.len()).sum::<usize>()
            + self.users.values().map(|u| u.len()).sum::<usize>()
    }
}

/// A file's sessions as the merge sends them: (session_id, UTC day, sums), in key order.
type SessionRow<'a> = (&'a str, i64, &'a SessionSums);

/// Which of `sessions` (in key order) exist already, committed by anyone: one probe per
/// session, where `ON CONFLICT` makes a full arbiter check per row before inserting it.
async fn known_sessions<'a>(
    tx: &Transaction<'_>,
    sessions: &[SessionRow<'a>],
) -> Result<HashSet<(&'a str, NaiveDate)>, tokio_postgres::Error> {
    let ids: Vec<&str> = sessions.iter().map(|s| s.0).collect();
    let days: Vec<NaiveDate> = sessions.iter().map(|s| date_of(s.1)).collect();
    let first = days.iter().min().copied().unwrap_or_default();
    let last = days.iter().max().copied().unwrap_or_default();
    let rows = tx
        .query(sql::KNOWN_SESSIONS, &[&ids, &days, &first, &last])
        .await?;
    let mut known = HashSet::with_capacity(rows.len());
    for row in &rows {
        let id: &str = row.get(0);
        let day: NaiveDate = row.get(1);
        // Borrowed from `sessions`, not from the row.
        if let Ok(at) = sessions.binary_search_by(|s| (s.0, date_of(s.1)).cmp(&(id, day))) {
            known.insert((sessions[at].0, day));
        }
    }
    Ok(known)
}

/// Runs `copy`, a COPY of keys taken to be new, under a savepoint. Returns false, with nothing
/// written, when the primary key refused one of them: it exists (from an earlier file, an
/// earlier batch of this one, or a load that committed meanwhile). The caller then probes which
/// exist, or, after a probe, merges them all (`ON CONFLICT`).
/// A COPY without a probe pays off where batch after batch meets no existing key (sessions of
/// one event: the probes cost 2.8 s of server time on a file of 1,000,000 of them); where
/// consecutive files or batches share keys it is refused and costs more than the probe (tried
/// on every file: 1 s more over 100 files of the `gen` and `rees46` shapes).
async fn unless_taken(
    tx: &Transaction<'_>,
    copy: impl std::future::Future<Output = Result<(), tokio_postgres::Error>>,
) -> Result<bool, tokio_postgres::Error> {
    tx.batch_execute("SAVEPOINT new_rows").await?;
    match copy.await {
        Ok(()) => {
            tx.batch_execute("RELEASE SAVEPOINT new_rows").await?;
            Ok(true)
        }
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            tx.batch_execute("ROLLBACK TO SAVEPOINT new_rows").await?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Which of a file's (hour, user) pairs (sorted) exist already: one probe per pair.
async fn known_user_hours<'a>(
    tx: &Transaction<'_>,
    users: &[(i64, &'a str)],
) -> Result<HashSet<(i64, &'a str)>, tokio_postgres::Error> {
    let hours: Vec<DateTime<Utc>> = users.iter().map(|u| micros(u.0)).collect();
    let ids: Vec<&str> = users.iter().map(|u| u.1).collect();
    let rows = tx.query(sql::KNOWN_USER_HOURS, &[&hours, &ids]).await?;
    let mut known = HashSet::with_capacity(rows.len());
    for row in &rows {
        let hour: DateTime<Utc> = row.get(0);
        let key = (hour.timestamp_micros(), row.get::<_, &str>(1));
        if let Ok(at) = users.binary_search(&key) {
            known.insert(users[at]);
        }
    }
    Ok(known)
}

async fn write_user_hours(
    tx: &Transaction<'_>,
    users: &[&(i64, &str)],
) -> Result<(), tokio_postgres::Error> {
    let mut writer = copy_writer(tx, sql::COPY_NEW_USER_HOURS, &USER_HOUR_TYPES).await?;
    for (hour, user) in users {
        writer.as_mut().write(&[&micros(*hour), user]).await?;
    }
    writer.as_mut().finish().await?;
    Ok(())
}

/// Binary COPY of session rows, in `SESSION_TYPES` order.
async fn write_sessions(
    tx: &Transaction<'_>,
    sessions: &[&SessionRow<'_>],
) -> Result<(), tokio_postgres::Error> {
    let mut writer = copy_writer(tx, sql::COPY_NEW_SESSIONS, &SESSION_TYPES).await?;
    for (id, day, s) in sessions {
        let [views, carts, removes, purchases] = s.kinds.0;
        let revenue = s.revenue.to_string();
        let row: [&(dyn ToSql + Sync); 11] = [
            id,
            &date_of(*day),
            &s.user_id,
            &micros(s.started),
            &micros(s.ended),
            &s.events,
            &views,
            &carts,
            &removes,
            &purchases,
            &Decimal(&revenue),
        ];
        writer.as_mut().write(&row).await?;
    }
    writer.as_mut().finish().await?;
    Ok(())
}

/// Merges sessions that may exist (`ON CONFLICT`), in key order.
async fn upsert_sessions(
    tx: &Transaction<'_>,
    sessions: &[&SessionRow<'_>],
) -> Result<(), tokio_postgres::Error> {
    if sessions.is_empty() {
        return Ok(());
    }
    let revenue: Vec<String> = sessions.iter().map(|s| s.2.revenue.to_string()).collect();
    let kind = |i: usize| -> Vec<i64> { sessions.iter().map(|s| s.2.kinds.0[i]).collect() };
    tx.execute(
        sql::SESSIONS,
        &[
            &sessions.iter().map(|s| s.0).collect::<Vec<_>>(),
            &sessions.iter().map(|s| date_of(s.1)).collect::<Vec<_>>(),
            &sessions
                .iter()
                .map(|s| s.2.user_id.as_str())
                .collect::<Vec<_>>(),
            &sessions
                .iter()
                .map(|s| micros(s.2.started))
                .collect::<Vec<_>>(),
            &sessions
                .iter()
                .map(|s| micros(s.2.ended))
                .collect::<Vec<_>>(),
            &sessions.iter().map(|s| s.2.events).collect::<Vec<_>>(),
            &kind(0),
            &kind(1),
            &kind(2),
            &kind(3),
            &decimals(&revenue),
        ],
    )
    .await?;
    Ok(())
}

const USER_HOUR_TYPES: [Type; 2] = [Type::TIMESTAMPTZ, Type::TEXT];
const SESSION_TYPES: [Type; 11] = [
    Type::TEXT,
    Type::DATE,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::NUMERIC,
];
const PRODUCT_TYPES: [Type; 8] = [
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::NUMERIC,
];
const HOUR_TYPES: [Type; 6] = [
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::INT8,
    Type::NUMERIC,
];
const PURCHASE_TYPES: [Type; 9] = [
    Type::UUID,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::NUMERIC,
    Type::INT4,
    Type::NUMERIC,
];

/// COPYs the purchase events among `rows` (indexes into `facts`, the rows a chunk inserted)
/// into `streaming.purchases`.
pub(crate) async fn copy_purchases(
    tx: &Transaction<'_>,
    ids: &[Uuid],
    facts: &[EventFacts],
    rows: &[u32],
) -> Result<(), tokio_postgres::Error> {
    let mut purchases = rows
        .iter()
        .map(|&i| (&ids[i as usize], &facts[i as usize]))
        .filter(|(_, f)| f.kind == EventKind::Purchase)
        .peekable();
    if purchases.peek().is_none() {
        return Ok(());
    }
    let mut writer = copy_writer(tx, COPY_PURCHASES, &PURCHASE_TYPES).await?;
    for (id, f) in purchases {
        let price = f.price.as_deref().map(Decimal);
        let total = f.total.as_deref().map(Decimal);
        let row: [&(dyn ToSql + Sync); 9] = [
            id,
            &micros(f.time),
            &f.user_id,
            &f.session_id,
            &f.product_id,
            &f.category,
            &price,
            &f.quantity,
            &total,
        ];
        writer.as_mut().write(&row).await?;
    }
    writer.as_mut().finish().await?;
    Ok(())
}

async fn copy_writer(
    tx: &Transaction<'_>,
    statement: &str,
    types: &[Type],
) -> Result<Pin<Box<BinaryCopyInWriter>>, tokio_postgres::Error> {
    let sink = tx.copy_in(statement).await?;
    Ok(Box::pin(BinaryCopyInWriter::new(sink, types)))
}

fn decimals(texts: &[String]) -> Vec<Decimal<'_>> {
    texts.iter().map(|t| Decimal(t)).collect()
}

/// Event times came from valid timestamps, and hours are their floors.
fn micros(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t).expect("a time the transform produced")
}
