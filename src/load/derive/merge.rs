//! The derive's SQL: a file's folded sums go by binary COPY into temporary tables (private to
//! the connection, no WAL, no locks others can meet), then ONE statement per derived table
//! merges them in key order, so concurrent loads lock shared keys in the same order and only
//! at commit time. Purchases are the new purchase events themselves, copied as their chunk is.

use std::pin::Pin;

use chrono::{DateTime, Utc};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::{EventFacts, EventKind, FileDerive};
use crate::load::binary::Decimal;

/// Private to the connection; emptied at every commit. `COLLATE "C"`: the order the derived
/// tables' keys are stored in (sql/V10), so the merge's ORDER BY needs no locale lookups.
const TEMP_TABLES: &str = "
CREATE TEMP TABLE IF NOT EXISTS derive_sessions (session_id text COLLATE \"C\",
    user_id text COLLATE \"C\", started_at timestamptz, ended_at timestamptz, events int8,
    views int8, carts int8, removes int8, purchases int8, revenue numeric) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS derive_products (product_id text COLLATE \"C\",
    product_category text COLLATE \"C\", views int8, add_to_cart int8, removes int8,
    purchases int8, units_sold int8, revenue numeric) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS derive_hours (hour timestamptz, event_type text COLLATE \"C\",
    product_category text COLLATE \"C\", event_count int8, quantity int8, revenue numeric)
    ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS derive_users (hour timestamptz, user_id text COLLATE \"C\")
    ON COMMIT DELETE ROWS;";

/// One statement per derived table, in a fixed table order, each in key order, so two loads
/// lock shared keys in the same order and cannot deadlock. A key spilled more than once (a
/// large file) is summed first. Merge rules as the `*_recompute` views say: least/greatest of
/// times and of the session's user, sums of counts.
///
/// The order puts the keys concurrent loads share most last: a load waits for another's commit
/// from the first key both touch, so sessions (rarely shared between files) merge in parallel
/// and only the hourly users, product counts and the hour's stats rows (every file of the same
/// hour touches the same few) are merged one load after another.
const MERGE: &str = "
INSERT INTO streaming.sessions AS s (session_id, user_id, started_at, ended_at, events, views,
    carts, removes, purchases, revenue)
SELECT session_id, min(user_id), min(started_at), max(ended_at), sum(events), sum(views),
    sum(carts), sum(removes), sum(purchases), sum(revenue)
FROM derive_sessions GROUP BY session_id ORDER BY session_id
ON CONFLICT (session_id) DO UPDATE
SET user_id    = least(s.user_id, excluded.user_id),
    started_at = least(s.started_at, excluded.started_at),
    ended_at   = greatest(s.ended_at, excluded.ended_at),
    events     = s.events + excluded.events,
    views      = s.views + excluded.views,
    carts      = s.carts + excluded.carts,
    removes    = s.removes + excluded.removes,
    purchases  = s.purchases + excluded.purchases,
    revenue    = s.revenue + excluded.revenue,
    updated_at = now();
INSERT INTO streaming.hourly_users (hour, user_id)
SELECT DISTINCT hour, user_id FROM derive_users ORDER BY 1, 2
ON CONFLICT DO NOTHING;
INSERT INTO streaming.product_counts AS p (product_id, product_category, views, add_to_cart,
    removes, purchases, units_sold, revenue)
SELECT product_id, product_category, sum(views), sum(add_to_cart), sum(removes), sum(purchases),
    sum(units_sold), sum(revenue)
FROM derive_products GROUP BY 1, 2 ORDER BY 1, 2
ON CONFLICT (product_id, product_category) DO UPDATE
SET views       = p.views + excluded.views,
    add_to_cart = p.add_to_cart + excluded.add_to_cart,
    removes     = p.removes + excluded.removes,
    purchases   = p.purchases + excluded.purchases,
    units_sold  = p.units_sold + excluded.units_sold,
    revenue     = p.revenue + excluded.revenue,
    updated_at  = now();
INSERT INTO streaming.event_stats_hourly AS s
    (hour, event_type, product_category, event_count, quantity, revenue)
SELECT hour, event_type, product_category, sum(event_count), sum(quantity), sum(revenue)
FROM derive_hours GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
ON CONFLICT (hour, event_type, product_category) DO UPDATE
SET event_count = s.event_count + excluded.event_count,
    quantity    = s.quantity + excluded.quantity,
    revenue     = s.revenue + excluded.revenue,
    updated_at  = now();";

const COPY_SESSIONS: &str = "COPY derive_sessions FROM STDIN (FORMAT binary)";
const COPY_PRODUCTS: &str = "COPY derive_products FROM STDIN (FORMAT binary)";
const COPY_HOURS: &str = "COPY derive_hours FROM STDIN (FORMAT binary)";
const COPY_USERS: &str = "COPY derive_users FROM STDIN (FORMAT binary)";
const COPY_PURCHASES: &str = "COPY streaming.purchases (event_id, event_time, user_id, \
    session_id, product_id, product_category, product_price, quantity, total_amount) \
    FROM STDIN (FORMAT binary)";

impl FileDerive {
    /// Sends the sums folded so far to the connection's temporary tables and forgets them, so
    /// a file with millions of distinct keys needs bounded memory on the watcher.
    pub async fn spill(&mut self, tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
        tx.batch_execute(TEMP_TABLES).await?;
        let mut writer = copy_writer(tx, COPY_SESSIONS, &SESSION_TYPES).await?;
        for (id, s) in self.sessions.drain() {
            let [views, carts, removes, purchases] = s.kinds.0;
            let revenue = s.revenue.to_string();
            let row: [&(dyn ToSql + Sync); 10] = [
                &id,
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

        let mut writer = copy_writer(tx, COPY_USERS, &[Type::TIMESTAMPTZ, Type::TEXT]).await?;
        for (hour, users) in self.users.drain() {
            let hour = micros(hour);
            for user in users {
                writer.as_mut().write(&[&hour, &user]).await?;
            }
        }
        writer.as_mut().finish().await?;
        Ok(())
    }

    /// Spills what is left and merges everything spilled into the derived tables.
    pub async fn merge(&mut self, tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
        self.spill(tx).await?;
        tx.batch_execute(MERGE).await
    }

    /// Distinct keys held in memory (what a spill would send).
    pub fn keys(&self) -> usize {
        self.sessions.len()
            + self.products.values().map(|c| c.len()).sum::<usize>()
            + self.hours.values().map(|c| c.len()).sum::<usize>()
            + self.users.values().map(|u| u.len()).sum::<usize>()
    }
}

const SESSION_TYPES: [Type; 10] = [
    Type::TEXT,
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

/// Event times came from valid timestamps, and hours are their floors.
fn micros(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t).expect("a time the transform produced")
}
