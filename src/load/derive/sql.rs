//! The derive's merge statements, one per derived table. Sessions and user-hours are merged
//! from the sums held in memory (sent as arrays, already one row per key and in key order);
//! product and hour sums also from the temporary tables a large file spilled them into (summed
//! per key first), the INSERT and the conflict rule written once for both. Merge rules as the
//! `*_recompute` views say: least/greatest of times and of the session's user, sums of counts.

/// A derived table's merge in its two forms.
pub(super) struct Merge {
    pub from_arrays: &'static str,
    pub from_temp: &'static str,
}

macro_rules! merge {
    (insert: $insert:literal, arrays: $arrays:literal, temp: $temp:literal, conflict: $conflict:literal) => {
        Merge {
            from_arrays: concat!($insert, $arrays, $conflict),
            from_temp: concat!($insert, $temp, $conflict),
        }
    };
}

// The order of the merges: sessions, user-hours, product counts, hourly stats, each in key
// order, so two loads lock shared keys in the same order and cannot deadlock. The keys
// concurrent loads share most come last: a load waits for another's commit from the first key
// both touch, so sessions (rarely shared between files) merge in parallel and only the hourly
// users, product counts and the hour's stats rows (every file of an hour touches the same few)
// are merged one load after another. A file too large to sum in memory merges its sessions and
// user-hours batch by batch (`FileDerive::bound_memory`): a load that shares keys with two of
// its batches can meet it in a lock cycle, which Postgres's deadlock check ends by failing one
// of the two; that file is retried whole (`LoadError::Unavailable`), nothing of it committed.
// Product and hour sums, the keys every load shares, are merged once, at commit, in key order.

/// Products and hours: the merges a spilled file runs from its temporary tables, in order.
pub(super) const TOTALS: [Merge; 2] = [PRODUCTS, HOURS];

pub(super) const SESSIONS: &str = "INSERT INTO streaming.sessions AS s (session_id, session_day,
        user_id, started_at, ended_at, events, views, carts, removes, purchases, revenue)
    SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::timestamptz[],
        $5::timestamptz[], $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[],
        $11::numeric[])
    ON CONFLICT (session_id, session_day) DO UPDATE
        SET user_id    = least(s.user_id, excluded.user_id),
            started_at = least(s.started_at, excluded.started_at),
            ended_at   = greatest(s.ended_at, excluded.ended_at),
            events     = s.events + excluded.events,
            views      = s.views + excluded.views,
            carts      = s.carts + excluded.carts,
            removes    = s.removes + excluded.removes,
            purchases  = s.purchases + excluded.purchases,
            revenue    = s.revenue + excluded.revenue,
            updated_at = now()";

pub(super) const USERS: &str = "INSERT INTO streaming.hourly_users (hour, user_id)
    SELECT * FROM unnest($1::timestamptz[], $2::text[]) ON CONFLICT DO NOTHING";

pub(super) const PRODUCTS: Merge = merge! {
    insert: "INSERT INTO streaming.product_counts AS p (product_id, product_category, views,
        add_to_cart, removes, purchases, units_sold, revenue) ",
    arrays: "SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[],
        $6::int8[], $7::int8[], $8::numeric[]) ",
    temp: "SELECT product_id, product_category, sum(views), sum(add_to_cart), sum(removes),
        sum(purchases), sum(units_sold), sum(revenue)
        FROM derive_products GROUP BY 1, 2 ORDER BY 1, 2 ",
    conflict: "ON CONFLICT (product_id, product_category) DO UPDATE
        SET views       = p.views + excluded.views,
            add_to_cart = p.add_to_cart + excluded.add_to_cart,
            removes     = p.removes + excluded.removes,
            purchases   = p.purchases + excluded.purchases,
            units_sold  = p.units_sold + excluded.units_sold,
            revenue     = p.revenue + excluded.revenue,
            updated_at  = now()"
};

pub(super) const HOURS: Merge = merge! {
    insert: "INSERT INTO streaming.event_stats_hourly AS s (hour, event_type, product_category,
        event_count, quantity, revenue) ",
    arrays: "SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::int8[],
        $5::int8[], $6::numeric[]) ",
    temp: "SELECT hour, event_type, product_category, sum(event_count), sum(quantity),
        sum(revenue) FROM derive_hours GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 ",
    conflict: "ON CONFLICT (hour, event_type, product_category) DO UPDATE
        SET event_count = s.event_count + excluded.event_count,
            quantity    = s.quantity + excluded.quantity,
            revenue     = s.revenue + excluded.revenue,
            updated_at  = now()"
};

/// Which of a file's sessions (id, day) exist already, for [`super::merge`]: one descent of its
/// day's primary key per session. LATERAL ... LIMIT 1 keeps it a loop of probes (see the
/// events' lookup in `load::file_load`); the days' range prunes the plan to the file's days.
/// (`session_id = ANY(..)` over the file's days searched every id in every day: 0.6 s a file
/// of 20,000 sessions over three days.)
pub(super) const KNOWN_SESSIONS: &str =
    "SELECT k.id, k.day FROM unnest($1::text[], $2::date[]) AS k(id, day) \
    CROSS JOIN LATERAL (SELECT FROM streaming.sessions s \
        WHERE s.session_day = k.day AND s.session_id = k.id AND s.session_day BETWEEN $3 AND $4 \
        LIMIT 1) known";

/// Sessions no one has yet: inserted as they are (the merge's rules give a new row its sums).
pub(super) const COPY_NEW_SESSIONS: &str = "COPY streaming.sessions (session_id, session_day, \
    user_id, started_at, ended_at, events, views, carts, removes, purchases, revenue) \
    FROM STDIN (FORMAT binary)";

/// Which of a file's (hour, user) pairs exist already: one descent of the primary key each.
pub(super) const KNOWN_USER_HOURS: &str =
    "SELECT k.hour, k.user_id FROM unnest($1::timestamptz[], $2::text[]) AS k(hour, user_id) \
    CROSS JOIN LATERAL (SELECT FROM streaming.hourly_users u \
        WHERE u.hour = k.hour AND u.user_id = k.user_id LIMIT 1) known";

pub(super) const COPY_NEW_USER_HOURS: &str =
    "COPY streaming.hourly_users (hour, user_id) FROM STDIN (FORMAT binary)";

/// Private to the connection; emptied at every commit; made only when a file spills.
/// `COLLATE "C"`: the order the derived tables' keys are stored in (sql/V10).
pub(super) const TEMP_TABLES: &str = "
CREATE TEMP TABLE IF NOT EXISTS derive_products (product_id text COLLATE \"C\",
    product_category text COLLATE \"C\", views int8, add_to_cart int8, removes int8,
    purchases int8, units_sold int8, revenue numeric) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS derive_hours (hour timestamptz, event_type text COLLATE \"C\",
    product_category text COLLATE \"C\", event_count int8, quantity int8, revenue numeric)
    ON COMMIT DELETE ROWS;";
