-- KPI rollups (issue 15: dashboard and Grafana queries fast on tens of millions of events).
-- The KPIs counted sessions and distinct users over whole tables: on 20M events the all-time
-- row of streaming.kpis took 3-5 s and the session-duration histogram 3 s. Here those counts
-- are kept as they change, per start hour and duration bucket, per hour, and for all time, so
-- the views read a few thousand rows whatever the history.
--
-- Kept by statement-level triggers on the two tables the derive writes (sessions, hourly_users),
-- from their transition tables: the rows a merge inserted, and the before and after of the rows
-- it updated. The old values are those of the very row versions the merge locked and changed,
-- so concurrent loads cannot count a session twice or miss a move, and the spill path (merges
-- from temporary tables) is covered like the in-memory one. Every trigger writes its keys in
-- key order, in the same phase of every load (sessions first, hourly users second: the order
-- of src/load/derive/sql.rs), so two loads cannot deadlock here either.
-- Each table below equals its *_recompute view at every commit (tests/it/analytics.rs).

-- The dashboard's session-duration buckets: 0-1, 1-2, 2-5, 5-10, 10-30, 30+ minutes.
CREATE FUNCTION streaming.duration_bucket(d interval) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN d < interval '1 minute' THEN 1
                WHEN d < interval '2 minutes' THEN 2
                WHEN d < interval '5 minutes' THEN 3
                WHEN d < interval '10 minutes' THEN 4
                WHEN d < interval '30 minutes' THEN 5
                ELSE 6 END::smallint
$$;

CREATE FUNCTION streaming.duration_bucket_label(b smallint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (ARRAY['0-1 min', '1-2 min', '2-5 min', '5-10 min', '10-30 min', '30+ min'])[b]
$$;

-- Sessions by the hour (UTC) they started and their duration bucket. A row whose count falls
-- to zero (its sessions merged into an earlier start or a longer duration) is deleted.
CREATE TABLE streaming.session_stats_hourly (
    hour            timestamptz NOT NULL,
    duration_bucket smallint    NOT NULL,
    sessions        bigint      NOT NULL,
    reached_cart    bigint      NOT NULL,
    purchased       bigint      NOT NULL,
    -- Reached the cart without a purchase.
    abandoned       bigint      NOT NULL,
    PRIMARY KEY (hour, duration_bucket)
) WITH (fillfactor = 50);

-- Users active per hour (the row count of hourly_users per hour).
CREATE TABLE streaming.hourly_user_counts (
    hour  timestamptz PRIMARY KEY,
    users bigint      NOT NULL
) WITH (fillfactor = 50);

-- Every user ever active, and their count (one row), for the all-time "active users".
CREATE TABLE streaming.users (
    user_id text COLLATE "C" PRIMARY KEY
);
CREATE TABLE streaming.user_totals (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    users    bigint  NOT NULL
) WITH (fillfactor = 10);

CREATE VIEW streaming.session_stats_hourly_recompute AS
SELECT date_trunc('hour', started_at, 'UTC') AS hour,
       streaming.duration_bucket(ended_at - started_at) AS duration_bucket,
       count(*) AS sessions,
       count(*) FILTER (WHERE carts > 0) AS reached_cart,
       count(*) FILTER (WHERE purchases > 0) AS purchased,
       count(*) FILTER (WHERE carts > 0 AND purchases = 0) AS abandoned
FROM streaming.sessions
GROUP BY 1, 2;

CREATE VIEW streaming.hourly_user_counts_recompute AS
SELECT hour, count(*) AS users FROM streaming.hourly_users GROUP BY hour;

CREATE VIEW streaming.users_recompute AS
SELECT DISTINCT user_id FROM streaming.hourly_users;

-- Backfill (a database of an earlier release) and the all-time row.
INSERT INTO streaming.session_stats_hourly SELECT * FROM streaming.session_stats_hourly_recompute;
INSERT INTO streaming.hourly_user_counts SELECT * FROM streaming.hourly_user_counts_recompute;
INSERT INTO streaming.users SELECT * FROM streaming.users_recompute;
INSERT INTO streaming.user_totals (users) SELECT count(*) FROM streaming.users;

-- Adds what the sessions in `added` contribute and takes away what those in `removed` did.
CREATE FUNCTION streaming.apply_session_stats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO streaming.session_stats_hourly AS t
        SELECT date_trunc('hour', started_at, 'UTC'), streaming.duration_bucket(ended_at - started_at),
               count(*), count(*) FILTER (WHERE carts > 0), count(*) FILTER (WHERE purchases > 0),
               count(*) FILTER (WHERE carts > 0 AND purchases = 0)
        FROM added GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (hour, duration_bucket) DO UPDATE
        SET sessions = t.sessions + excluded.sessions,
            reached_cart = t.reached_cart + excluded.reached_cart,
            purchased = t.purchased + excluded.purchased,
            abandoned = t.abandoned + excluded.abandoned;
        RETURN NULL;
    END IF;
    -- An update: most merged sessions stay in their hour and bucket and change nothing here.
    WITH delta AS (
        SELECT date_trunc('hour', started_at, 'UTC') AS hour,
               streaming.duration_bucket(ended_at - started_at) AS bucket,
               sum(sign) AS sessions,
               sum(sign) FILTER (WHERE carts > 0) AS reached_cart,
               sum(sign) FILTER (WHERE purchases > 0) AS purchased,
               sum(sign) FILTER (WHERE carts > 0 AND purchases = 0) AS abandoned
        FROM (SELECT started_at, ended_at, carts, purchases, 1 AS sign FROM added
              UNION ALL
              SELECT started_at, ended_at, carts, purchases, -1 FROM removed) c
        GROUP BY 1, 2
    ), changed AS (
        SELECT hour, bucket, sessions, coalesce(reached_cart, 0) AS reached_cart,
               coalesce(purchased, 0) AS purchased, coalesce(abandoned, 0) AS abandoned
        FROM delta
        WHERE (sessions, coalesce(reached_cart, 0), coalesce(purchased, 0), coalesce(abandoned, 0))
              <> (0, 0, 0, 0)
    )
    INSERT INTO streaming.session_stats_hourly AS t
    SELECT * FROM changed ORDER BY 1, 2
    ON CONFLICT (hour, duration_bucket) DO UPDATE
    SET sessions = t.sessions + excluded.sessions,
        reached_cart = t.reached_cart + excluded.reached_cart,
        purchased = t.purchased + excluded.purchased,
        abandoned = t.abandoned + excluded.abandoned;
    DELETE FROM streaming.session_stats_hourly WHERE sessions = 0
        AND (hour, duration_bucket) IN (SELECT date_trunc('hour', started_at, 'UTC'),
                                               streaming.duration_bucket(ended_at - started_at)
                                        FROM removed);
    RETURN NULL;
END $$;

CREATE TRIGGER session_stats_on_insert AFTER INSERT ON streaming.sessions
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION streaming.apply_session_stats();
CREATE TRIGGER session_stats_on_update AFTER UPDATE ON streaming.sessions
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION streaming.apply_session_stats();

-- hourly_users only ever gains rows (ON CONFLICT DO NOTHING: `added` holds the new ones).
CREATE FUNCTION streaming.apply_user_counts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    new_users bigint;
BEGIN
    INSERT INTO streaming.hourly_user_counts AS t
    SELECT hour, count(*) FROM added GROUP BY hour ORDER BY hour
    ON CONFLICT (hour) DO UPDATE SET users = t.users + excluded.users;
    WITH fresh AS (
        INSERT INTO streaming.users
        SELECT DISTINCT user_id FROM added ORDER BY 1
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT count(*) INTO new_users FROM fresh;
    -- One row every load shares: touched only when a load brings users never seen before.
    IF new_users > 0 THEN
        UPDATE streaming.user_totals SET users = users + new_users;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER user_counts_on_insert AFTER INSERT ON streaming.hourly_users
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION streaming.apply_user_counts();

-- The KPIs over the rollups: the same columns, types and definitions as V2's view.
CREATE OR REPLACE VIEW streaming.kpis AS
WITH ev AS (
    SELECT coalesce(hour, '-infinity') AS k,
           coalesce(sum(event_count) FILTER (WHERE event_type = 'view'), 0)::bigint AS views,
           coalesce(sum(event_count) FILTER (WHERE event_type = 'add_to_cart'), 0)::bigint AS carts,
           coalesce(sum(event_count) FILTER (WHERE event_type = 'purchase'), 0)::bigint AS purchases,
           coalesce(sum(revenue), 0) AS revenue
    FROM streaming.event_stats_hourly GROUP BY GROUPING SETS ((hour), ())
), se AS (
    SELECT coalesce(hour, '-infinity') AS k,
           coalesce(sum(sessions), 0)::bigint AS sessions,
           coalesce(sum(purchased), 0)::bigint AS converted_sessions,
           coalesce(sum(reached_cart), 0)::bigint AS cart_sessions,
           coalesce(sum(abandoned), 0)::bigint AS abandoned_sessions
    FROM streaming.session_stats_hourly GROUP BY GROUPING SETS ((hour), ())
), us AS (
    SELECT hour AS k, users AS active_users FROM streaming.hourly_user_counts
    UNION ALL
    SELECT '-infinity', users FROM streaming.user_totals
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

-- Events per minute and type over the 60 minutes of event time up to the newest event's minute
-- (the dashboard's and Grafana's chart). Two steps because the planner, given the window as a
-- subquery, cannot prune partitions or use the index when it plans: on 50M events one statement
-- took 1.2 s (every partition opened) to 87 s (a join over all of them); with the window's ends
-- as values it reads one day's index range, ~20 ms.
CREATE FUNCTION streaming.events_per_minute()
RETURNS TABLE (minute timestamptz, event_type text, events bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    newest timestamptz;
BEGIN
    SELECT date_trunc('minute', max(e.event_time), 'UTC') INTO newest
    FROM streaming.events e
    WHERE e.event_time >= (SELECT max(s.hour) FROM streaming.event_stats_hourly s);
    IF newest IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE
        'SELECT date_trunc(''minute'', event_time, ''UTC''), event_type::text, count(*)
         FROM streaming.events WHERE event_time >= $1 AND event_time < $2
         GROUP BY 1, 2 ORDER BY 1, 2'
        USING newest - interval '59 minutes', newest + interval '1 minute';
END $$;
