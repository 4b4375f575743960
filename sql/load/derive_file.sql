-- The per-file derive (src/load/file_load.rs runs it once per file, inside the file's
-- transaction, after the file's new events were COPYed): purchases, hourly stats and the
-- analytics (sessions, product counts, hourly users) from exactly the events this file added,
-- so a re-delivered event changes nothing anywhere. $1 = the file's file_id, $2 = the UTC epoch.
-- Keys are upserted in key order so that concurrent watchers lock them in the same order.
-- Hours are date_bin('1 hour', t, $2): the same hours as date_trunc('hour', t, 'UTC') (what
-- the *_recompute views say), without a time-zone lookup per row.
WITH fresh AS MATERIALIZED (
    SELECT event_id, event_time, user_id, session_id, event_type, product_id, product_category,
        product_price, quantity, total_amount
    FROM streaming.events WHERE file_id = $1
), new_purchases AS (
    INSERT INTO streaming.purchases (event_id, event_time, user_id, session_id, product_id,
        product_category, product_price, quantity, total_amount)
    SELECT event_id, event_time, user_id, session_id, product_id, product_category, product_price,
        quantity, total_amount
    FROM fresh WHERE event_type = 'purchase'
), new_stats AS (
    INSERT INTO streaming.event_stats_hourly AS s
        (hour, event_type, product_category, event_count, quantity, revenue)
    SELECT date_bin('1 hour', event_time, $2), event_type, coalesce(product_category, ''),
        count(*), sum(quantity), coalesce(sum(total_amount), 0)
    FROM fresh GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (hour, event_type, product_category) DO UPDATE
    SET event_count = s.event_count + excluded.event_count,
        quantity    = s.quantity + excluded.quantity,
        revenue     = s.revenue + excluded.revenue,
        updated_at  = now()
), new_sessions AS (
    -- analytics (sql/V2__analytics.sql): sessions merge by least/greatest time and summed counts.
    INSERT INTO streaming.sessions AS s (session_id, user_id, started_at, ended_at, events, views,
        carts, removes, purchases, revenue)
    SELECT session_id, min(user_id), min(event_time), max(event_time), count(*),
        count(*) FILTER (WHERE event_type = 'view'),
        count(*) FILTER (WHERE event_type = 'add_to_cart'),
        count(*) FILTER (WHERE event_type = 'remove_from_cart'),
        count(*) FILTER (WHERE event_type = 'purchase'),
        coalesce(sum(total_amount), 0)
    FROM fresh GROUP BY session_id ORDER BY session_id
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
        updated_at = now()
), new_product_counts AS (
    INSERT INTO streaming.product_counts AS p (product_id, product_category, views, add_to_cart,
        removes, purchases, units_sold, revenue)
    SELECT product_id, coalesce(product_category, ''),
        count(*) FILTER (WHERE event_type = 'view'),
        count(*) FILTER (WHERE event_type = 'add_to_cart'),
        count(*) FILTER (WHERE event_type = 'remove_from_cart'),
        count(*) FILTER (WHERE event_type = 'purchase'),
        coalesce(sum(quantity) FILTER (WHERE event_type = 'purchase'), 0),
        coalesce(sum(total_amount), 0)
    FROM fresh GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (product_id, product_category) DO UPDATE
    SET views       = p.views + excluded.views,
        add_to_cart = p.add_to_cart + excluded.add_to_cart,
        removes     = p.removes + excluded.removes,
        purchases   = p.purchases + excluded.purchases,
        units_sold  = p.units_sold + excluded.units_sold,
        revenue     = p.revenue + excluded.revenue,
        updated_at  = now()
), new_hourly_users AS (
    INSERT INTO streaming.hourly_users (hour, user_id)
    SELECT DISTINCT date_bin('1 hour', event_time, $2), user_id FROM fresh ORDER BY 1, 2
    ON CONFLICT DO NOTHING
)
SELECT count(*) FROM fresh;
