-- Search events (issue 16): event_type 'search' joins the event contract. A search carries the
-- text typed into the shop's search box in `search_query` and names no product, so the product
-- columns of streaming.events become nullable; the rules (src/transform/rules.rs) still require
-- them for every other type and require them empty for a search. Then the analytics the
-- dashboard and Grafana show over the newest hours of event time: top search queries (24 h),
-- searches that led to no view (the newest hour), top brands by purchases (24 h).
--
-- Cost of the migration: the new CHECK on event_type is validated over every event (one scan,
-- ~10 s per 10M events on the test machine); the nullable columns and search_query are
-- catalogue changes only; the partial indexes read every day once and hold only searches
-- (none before this version) and purchases (about 1 % of events).

ALTER TABLE streaming.events ADD COLUMN search_query text;
ALTER TABLE streaming.events
    ALTER COLUMN product_id DROP NOT NULL,
    ALTER COLUMN product_price DROP NOT NULL,
    ALTER COLUMN quantity DROP NOT NULL;

-- The old CHECK lists four types. Each daily partition holds a copy of it (made with LIKE ...
-- INCLUDING CONSTRAINTS, then merged at ATTACH); a copy left behind would still refuse a search.
ALTER TABLE streaming.events DROP CONSTRAINT IF EXISTS events_event_type_check;
DO $$
DECLARE c record;
BEGIN
    FOR c IN
        SELECT con.conrelid::regclass::text AS rel, con.conname
        FROM pg_constraint con
        JOIN pg_inherits i ON i.inhrelid = con.conrelid
        WHERE i.inhparent = 'streaming.events'::regclass
          AND con.contype = 'c' AND con.conname = 'events_event_type_check'
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', c.rel, c.conname);
    END LOOP;
END $$;
ALTER TABLE streaming.events ADD CONSTRAINT events_event_type_check
    CHECK (event_type IN ('view', 'add_to_cart', 'remove_from_cart', 'purchase', 'search'));

-- Searches and purchases of a time range without reading the other events (the analytics
-- below). Partial: only those rows (a few percent of events) pay for them at load; the
-- columns the analytics read are included, so a day no longer written (all-visible after
-- autovacuum) is read from the index alone.
CREATE INDEX events_searches ON streaming.events (event_time) INCLUDE (session_id, search_query)
    WHERE event_type = 'search';
CREATE INDEX events_purchases_brand ON streaming.events (event_time)
    INCLUDE (brand, quantity, total_amount) WHERE event_type = 'purchase';

-- The derive counts a search in its session (`events`), hour and user, never as a product's
-- and with no quantity: the recompute views say the same (a search's quantity is NULL).
CREATE OR REPLACE VIEW streaming.event_stats_hourly_recompute AS
SELECT date_trunc('hour', event_time, 'UTC')  AS hour,
       event_type,
       coalesce(product_category, '')         AS product_category,
       count(*)::bigint                       AS event_count,
       coalesce(sum(quantity), 0)::bigint     AS quantity,
       coalesce(sum(total_amount), 0)         AS revenue
FROM streaming.events
GROUP BY 1, 2, 3;

CREATE OR REPLACE VIEW streaming.product_counts_recompute AS
SELECT product_id,
       coalesce(product_category, '')                        AS product_category,
       count(*) FILTER (WHERE event_type = 'view')           AS views,
       count(*) FILTER (WHERE event_type = 'add_to_cart')    AS add_to_cart,
       count(*) FILTER (WHERE event_type = 'remove_from_cart') AS removes,
       count(*) FILTER (WHERE event_type = 'purchase')       AS purchases,
       coalesce(sum(quantity) FILTER (WHERE event_type = 'purchase'), 0) AS units_sold,
       coalesce(sum(total_amount), 0)                        AS revenue
FROM streaming.events
WHERE event_type <> 'search'
GROUP BY 1, 2;

-- The window of the analytics below: the `hours` hours of event time up to the end of the
-- newest hour with events (as events_per_minute, relative to the data, not the clock, so a
-- replay of old files shows its own day). NULLs when nothing is loaded.
CREATE FUNCTION streaming.recent_window(hours integer, OUT since timestamptz, OUT until timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT max(hour) + interval '1 hour' - make_interval(hours => hours), max(hour) + interval '1 hour'
    FROM streaming.event_stats_hourly
$$;

-- Searches in [since, until) per query (lowercased: "Shoes" and "shoes" are one query), and how
-- many of them led to NO VIEW: no view event of the same session with a later event_time, at
-- any time after the search (a view in a later file counts once it is loaded; a view at the
-- very same microsecond does not count as later). Every view after a search in the window is
-- at or after `since`, so reading views from `since` on decides it exactly.
-- Two steps, with the window's ends as values, for the reason events_per_minute gives (sql/V15).
-- Cost: one read of every view from `since` on (events have no index by session, which would
-- slow every load): ~300 ms for a day of 600,000 events, ~15 ms for an hour; the dashboard
-- asks it for the newest hour.
CREATE FUNCTION streaming.search_queries(since timestamptz, until timestamptz)
RETURNS TABLE (search_query text, searches bigint, without_view bigint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF since IS NULL OR until IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE
        'WITH s AS (
             SELECT e.event_time, e.session_id, lower(e.search_query) AS q
             FROM streaming.events e
             WHERE e.event_type = ''search'' AND e.event_time >= $1 AND e.event_time < $2
         ), v AS (
             SELECT e.session_id, max(e.event_time) AS last_view
             FROM streaming.events e
             WHERE e.event_type = ''view'' AND e.event_time >= $1
               AND e.session_id IN (SELECT session_id FROM s)
             GROUP BY 1
         )
         SELECT s.q, count(*),
                count(*) FILTER (WHERE v.last_view IS NULL OR v.last_view <= s.event_time)
         FROM s LEFT JOIN v USING (session_id)
         GROUP BY 1'
        USING since, until;
END $$;

-- Searches in [since, until) per lowercased query, read through the partial index alone: the
-- top queries over a day cost a few milliseconds (search_queries above also reads the views).
CREATE FUNCTION streaming.search_counts(since timestamptz, until timestamptz)
RETURNS TABLE (search_query text, searches bigint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF since IS NULL OR until IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE
        'SELECT lower(e.search_query), count(*) FROM streaming.events e
         WHERE e.event_type = ''search'' AND e.event_time >= $1 AND e.event_time < $2
         GROUP BY 1'
        USING since, until;
END $$;

-- Brands by purchase events in [since, until): purchases, units and revenue. The brand is the
-- event's (sources such as REES46 carry one; native files do not: NULL, left out). Read
-- through the partial index of purchase events (streaming.purchases has no brand).
CREATE FUNCTION streaming.brand_purchases(since timestamptz, until timestamptz)
RETURNS TABLE (brand text, purchases bigint, units bigint, revenue numeric)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF since IS NULL OR until IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE
        'SELECT e.brand, count(*), sum(e.quantity)::bigint, sum(e.total_amount)
         FROM streaming.events e
         WHERE e.event_type = ''purchase'' AND e.event_time >= $1 AND e.event_time < $2
           AND e.brand IS NOT NULL
         GROUP BY 1'
        USING since, until;
END $$;
