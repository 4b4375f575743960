-- Analytics kept current on ingest: sessions, product counters and the users active per hour.
-- They are written ONLY by the load statement (src/sink/postgres.rs, UPSERT), from exactly the
-- event rows its INSERT returned, so a re-delivered or duplicate event changes nothing here and
-- a file arriving late or out of order merges (least/greatest of times, sums of counts).
-- Rates are never stored: the views below compute them from the exact counters.

-- One row per session; a session spread over several files or hours merges into one row.
CREATE TABLE streaming.sessions (
    session_id   text        PRIMARY KEY,
    -- The smallest user_id seen in the session (a session has one user in the contract).
    user_id      text        NOT NULL,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz NOT NULL,
    duration     interval    GENERATED ALWAYS AS (ended_at - started_at) STORED,
    events       bigint      NOT NULL,
    views        bigint      NOT NULL,
    carts        bigint      NOT NULL,
    removes      bigint      NOT NULL,
    purchases    bigint      NOT NULL,
    revenue      numeric     NOT NULL,
    reached_cart boolean     GENERATED ALWAYS AS (carts > 0) STORED,
    purchased    boolean     GENERATED ALWAYS AS (purchases > 0) STORED,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_started_at ON streaming.sessions (started_at);

-- Counters per product and category ('' for an empty category, so it can be a key).
CREATE TABLE streaming.product_counts (
    product_id       text    NOT NULL,
    product_category text    NOT NULL DEFAULT '',
    views            bigint  NOT NULL,
    add_to_cart      bigint  NOT NULL,
    removes          bigint  NOT NULL,
    purchases        bigint  NOT NULL,
    units_sold       bigint  NOT NULL,
    revenue          numeric NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (product_id, product_category)
);

-- Which users were active in which hour: the exact base of "active users" per hour and in all.
CREATE TABLE streaming.hourly_users (
    hour    timestamptz NOT NULL,
    user_id text        NOT NULL,
    PRIMARY KEY (hour, user_id)
);

-- Backfill from events already loaded before this migration (empty on a new database).
INSERT INTO streaming.sessions
    (session_id, user_id, started_at, ended_at, events, views, carts, removes, purchases, revenue)
SELECT session_id, min(user_id), min(event_time), max(event_time), count(*),
       count(*) FILTER (WHERE event_type = 'view'),
       count(*) FILTER (WHERE event_type = 'add_to_cart'),
       count(*) FILTER (WHERE event_type = 'remove_from_cart'),
       count(*) FILTER (WHERE event_type = 'purchase'),
       coalesce(sum(total_amount), 0)
FROM streaming.events GROUP BY session_id;

INSERT INTO streaming.product_counts
    (product_id, product_category, views, add_to_cart, removes, purchases, units_sold, revenue)
SELECT product_id, coalesce(product_category, ''),
       count(*) FILTER (WHERE event_type = 'view'),
       count(*) FILTER (WHERE event_type = 'add_to_cart'),
       count(*) FILTER (WHERE event_type = 'remove_from_cart'),
       count(*) FILTER (WHERE event_type = 'purchase'),
       coalesce(sum(quantity) FILTER (WHERE event_type = 'purchase'), 0),
       coalesce(sum(total_amount), 0)
FROM streaming.events GROUP BY 1, 2;

INSERT INTO streaming.hourly_users (hour, user_id)
SELECT DISTINCT date_trunc('hour', event_time, 'UTC'), user_id FROM streaming.events;

-- Per product and category, with the rates (NULL when the product was never viewed).
CREATE VIEW streaming.product_metrics AS
SELECT product_id, product_category, views, add_to_cart, removes, purchases, units_sold, revenue,
       round(add_to_cart::numeric / nullif(views, 0), 4) AS cart_rate,
       round(purchases::numeric / nullif(views, 0), 4)   AS conversion_rate
FROM streaming.product_counts;

-- Key performance indicators: one row per hour (UTC), and one row with hour NULL for all time.
-- Event counts and revenue come from event_stats_hourly; session rates count each session in
-- the hour it started; conversion = sessions with a purchase / sessions; cart abandonment =
-- sessions that reached the cart without a purchase / sessions that reached the cart;
-- average order value = revenue / purchase events.
CREATE VIEW streaming.kpis AS
WITH ev AS (
    SELECT coalesce(hour, '-infinity') AS k,
           coalesce(sum(event_count) FILTER (WHERE event_type = 'view'), 0)::bigint AS views,
           coalesce(sum(event_count) FILTER (WHERE event_type = 'add_to_cart'), 0)::bigint AS carts,
           coalesce(sum(event_count) FILTER (WHERE event_type = 'purchase'), 0)::bigint AS purchases,
           coalesce(sum(revenue), 0) AS revenue
    FROM streaming.event_stats_hourly GROUP BY GROUPING SETS ((hour), ())
), se AS (
    SELECT coalesce(date_trunc('hour', started_at, 'UTC'), '-infinity') AS k,
           count(*) AS sessions,
           count(*) FILTER (WHERE purchased) AS converted_sessions,
           count(*) FILTER (WHERE reached_cart) AS cart_sessions,
           count(*) FILTER (WHERE reached_cart AND NOT purchased) AS abandoned_sessions
    FROM streaming.sessions GROUP BY GROUPING SETS ((date_trunc('hour', started_at, 'UTC')), ())
), us AS (
    SELECT hour AS k, count(*) AS active_users FROM streaming.hourly_users GROUP BY hour
    UNION ALL
    SELECT '-infinity', count(DISTINCT user_id) FROM streaming.hourly_users
)
SELECT nullif(k, '-infinity'::timestamptz)          AS hour,
       coalesce(ev.views, 0)                         AS views,
       coalesce(ev.carts, 0)                         AS carts,
       coalesce(ev.purchases, 0)                     AS purchases,
       coalesce(ev.revenue, 0)                       AS revenue,
       coalesce(se.sessions, 0)                      AS sessions,
       coalesce(se.converted_sessions, 0)            AS converted_sessions,
       round(se.converted_sessions::numeric / nullif(se.sessions, 0), 4)       AS conversion_rate,
       round(se.abandoned_sessions::numeric / nullif(se.cart_sessions, 0), 4)  AS cart_abandonment_rate,
       round(ev.revenue / nullif(ev.purchases, 0), 2)                          AS average_order_value,
       coalesce(us.active_users, 0)                  AS active_users
FROM ev FULL JOIN se USING (k) FULL JOIN us USING (k);
