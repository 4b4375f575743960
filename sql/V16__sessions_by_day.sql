-- Flat cost as history grows (issue 15), the sessions: streaming.sessions becomes partitioned
-- by the UTC day of its events, one partition per day like events (created by the loader with
-- them, in streaming.ensure_event_partitions below), keyed (session_id, session_day).
--
-- Why. Keyed by session_id alone (a random text in every real source), each new session went
-- to a random leaf of one btree that outgrew shared_buffers: at 50M events its primary key was
-- 813 MB and a batch of 1M events read it from outside the cache 7.6M times; ingest into that
-- database ran at 0.76x the rate into an empty one. Keyed by day first, a file's sessions go to
-- the small index of its own day, whatever the ids look like.
--
-- THE SESSION RULE THAT RESULTS: a session ends at midnight UTC, as in Google Analytics (whose
-- sessions end at midnight of the view's time zone). A session_id's events of one UTC day are one
-- row; a session with events on both sides of a midnight is one row per day, each with its own
-- start, end, counts and revenue. A late event merges into its own day's row, whatever other
-- days hold. `sessions_recompute` groups by (session_id, day) to say the same.
-- /api/sessions/{id} still shows the whole session (its day rows summed).
--
-- Retention drops days of events and purchases only: sessions, like every aggregate, stay.

CREATE OR REPLACE FUNCTION streaming.ensure_event_partitions(days date[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    day date;
    suffix text;
    parent text;
    low text;
    high text;
    created integer := 0;
    made boolean;
    locked boolean := false;
BEGIN
    FOREACH day IN ARRAY days LOOP
        suffix := to_char(day, 'YYYYMMDD');
        made := false;
        -- Per parent: retention drops a day of events and purchases but keeps its sessions, so a
        -- late row for that day makes the first two again and finds the third.
        FOREACH parent IN ARRAY ARRAY['events', 'purchases', 'sessions'] LOOP
            CONTINUE WHEN to_regclass(format('streaming.%I', parent || '_' || suffix)) IS NOT NULL;
            IF NOT locked THEN
                -- Same order everywhere (events, purchases, sessions): no lock cycle with retention.
                LOCK TABLE streaming.events, streaming.purchases, streaming.sessions
                    IN SHARE UPDATE EXCLUSIVE MODE;
                locked := true;
                -- Another creator may have committed this day while we waited for the lock.
                CONTINUE WHEN to_regclass(format('streaming.%I', parent || '_' || suffix)) IS NOT NULL;
            END IF;
            IF parent = 'sessions' THEN
                low := quote_literal(day);
                high := quote_literal(day + 1);
                -- Room for the in-place (HOT) updates of sessions continued by later files (V9).
                EXECUTE format('CREATE TABLE streaming.%I (LIKE streaming.sessions INCLUDING DEFAULTS '
                               'INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING GENERATED) '
                               'WITH (fillfactor = 70)', parent || '_' || suffix);
            ELSE
                low := quote_literal(day::timestamp AT TIME ZONE 'UTC');
                high := quote_literal((day + 1)::timestamp AT TIME ZONE 'UTC');
                EXECUTE format('CREATE TABLE streaming.%I (LIKE streaming.%I INCLUDING DEFAULTS '
                               'INCLUDING CONSTRAINTS INCLUDING STORAGE)', parent || '_' || suffix, parent);
            END IF;
            EXECUTE format('ALTER TABLE streaming.%I ATTACH PARTITION streaming.%I '
                           'FOR VALUES FROM (%s) TO (%s)', parent, parent || '_' || suffix, low, high);
            made := true;
        END LOOP;
        IF made THEN
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END $$;

-- As V11's, with the day's sessions: the derive's merge writes into them at commit.
CREATE OR REPLACE FUNCTION streaming.lock_event_partitions(days date[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    day date;
    suffix text;
BEGIN
    FOREACH day IN ARRAY days LOOP
        suffix := to_char(day, 'YYYYMMDD');
        EXECUTE format('LOCK TABLE streaming.%I, streaming.%I, streaming.%I IN ROW EXCLUSIVE MODE',
                       'events_' || suffix, 'purchases_' || suffix, 'sessions_' || suffix);
    END LOOP;
END $$;

-- In place, as V11 did for events: the views over the old table kept by their definitions, the
-- old table renamed, the partitioned one made, the rows moved (split at midnight), the views and
-- triggers made again, and the rollups the triggers keep filled again from the new rows.
SET LOCAL search_path TO public;
CREATE TEMP TABLE v16_views ON COMMIT DROP AS
SELECT DISTINCT v.oid::regclass::text AS name, pg_get_viewdef(v.oid) AS definition
FROM pg_depend d
JOIN pg_rewrite r ON r.oid = d.objid
JOIN pg_class v ON v.oid = r.ev_class AND v.relkind = 'v'
WHERE d.classid = 'pg_rewrite'::regclass
  AND d.refobjid = 'streaming.sessions'::regclass;
DO $$
DECLARE v record;
BEGIN
    FOR v IN SELECT name FROM v16_views LOOP
        EXECUTE format('DROP VIEW %s', v.name);
    END LOOP;
END $$;

ALTER TABLE streaming.sessions RENAME TO sessions_unsplit;
ALTER INDEX streaming.sessions_pkey RENAME TO sessions_unsplit_pkey;
ALTER INDEX streaming.sessions_started_at_brin RENAME TO sessions_unsplit_started_at_brin;

CREATE TABLE streaming.sessions (LIKE streaming.sessions_unsplit
    INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING GENERATED,
    session_day date NOT NULL)
    PARTITION BY RANGE (session_day);
ALTER TABLE streaming.sessions ADD PRIMARY KEY (session_id, session_day);
CREATE INDEX sessions_started_at_brin ON streaming.sessions USING brin (started_at);

-- A partition for every day that has events or a session.
SELECT streaming.ensure_event_partitions(array_agg(day ORDER BY day))
FROM (SELECT DISTINCT (event_time AT TIME ZONE 'UTC')::date AS day FROM streaming.events
      UNION
      SELECT DISTINCT (started_at AT TIME ZONE 'UTC')::date FROM streaming.sessions_unsplit) d
HAVING count(*) > 0;

-- Sessions of one day move as they are.
INSERT INTO streaming.sessions (session_id, user_id, started_at, ended_at, events, views, carts,
    removes, purchases, revenue, updated_at, session_day)
SELECT session_id, user_id, started_at, ended_at, events, views, carts, removes, purchases,
       revenue, updated_at, (started_at AT TIME ZONE 'UTC')::date
FROM streaming.sessions_unsplit
WHERE (started_at AT TIME ZONE 'UTC')::date = (ended_at AT TIME ZONE 'UTC')::date;

-- Sessions over a midnight are split by their events. One whose events are no longer all kept
-- (retention dropped some of its days) cannot be split exactly: it stays whole, under its first
-- day, and the recompute views (over the retained range only) do not describe it anyway.
CREATE TEMP TABLE v16_spanning ON COMMIT DROP AS
SELECT s.session_id, s.events, s.started_at, s.ended_at
FROM streaming.sessions_unsplit s
WHERE (started_at AT TIME ZONE 'UTC')::date <> (ended_at AT TIME ZONE 'UTC')::date;
CREATE TEMP TABLE v16_split ON COMMIT DROP AS
SELECT e.session_id, (e.event_time AT TIME ZONE 'UTC')::date AS day,
       min(e.user_id) AS user_id, min(e.event_time) AS started_at, max(e.event_time) AS ended_at,
       count(*) AS events,
       count(*) FILTER (WHERE e.event_type = 'view') AS views,
       count(*) FILTER (WHERE e.event_type = 'add_to_cart') AS carts,
       count(*) FILTER (WHERE e.event_type = 'remove_from_cart') AS removes,
       count(*) FILTER (WHERE e.event_type = 'purchase') AS purchases,
       coalesce(sum(e.total_amount), 0) AS revenue
FROM streaming.events e
JOIN v16_spanning s ON s.session_id = e.session_id
 AND e.event_time BETWEEN s.started_at AND s.ended_at
GROUP BY 1, 2;
-- Whether the events kept still add up to the session.
CREATE TEMP TABLE v16_complete ON COMMIT DROP AS
SELECT s.session_id, s.events = coalesce(sum(p.events), 0) AS complete
FROM v16_spanning s LEFT JOIN v16_split p USING (session_id)
GROUP BY s.session_id, s.events;
INSERT INTO streaming.sessions (session_id, user_id, started_at, ended_at, events, views, carts,
    removes, purchases, revenue, session_day)
SELECT p.session_id, p.user_id, p.started_at, p.ended_at, p.events, p.views, p.carts, p.removes,
       p.purchases, p.revenue, p.day
FROM v16_split p JOIN v16_complete c USING (session_id)
WHERE c.complete;
INSERT INTO streaming.sessions (session_id, user_id, started_at, ended_at, events, views, carts,
    removes, purchases, revenue, updated_at, session_day)
SELECT u.session_id, u.user_id, u.started_at, u.ended_at, u.events, u.views, u.carts, u.removes,
       u.purchases, u.revenue, u.updated_at, (u.started_at AT TIME ZONE 'UTC')::date
FROM streaming.sessions_unsplit u JOIN v16_complete c USING (session_id)
WHERE NOT c.complete;

DROP TABLE streaming.sessions_unsplit;

CREATE OR REPLACE VIEW streaming.sessions_recompute AS
SELECT session_id,
       min(user_id)                                          AS user_id,
       min(event_time)                                       AS started_at,
       max(event_time)                                       AS ended_at,
       max(event_time) - min(event_time)                     AS duration,
       count(*)                                              AS events,
       count(*) FILTER (WHERE event_type = 'view')           AS views,
       count(*) FILTER (WHERE event_type = 'add_to_cart')    AS carts,
       count(*) FILTER (WHERE event_type = 'remove_from_cart') AS removes,
       count(*) FILTER (WHERE event_type = 'purchase')       AS purchases,
       coalesce(sum(total_amount), 0)                        AS revenue,
       bool_or(event_type = 'add_to_cart')                   AS reached_cart,
       bool_or(event_type = 'purchase')                      AS purchased,
       (event_time AT TIME ZONE 'UTC')::date                 AS session_day
FROM streaming.events
GROUP BY session_id, (event_time AT TIME ZONE 'UTC')::date;

DO $$
DECLARE v record;
BEGIN
    FOR v IN SELECT name, definition FROM v16_views ORDER BY name LOOP
        EXECUTE format('CREATE VIEW %s AS %s', v.name, v.definition);
    END LOOP;
END $$;

CREATE TRIGGER session_stats_on_insert AFTER INSERT ON streaming.sessions
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION streaming.apply_session_stats();
CREATE TRIGGER session_stats_on_update AFTER UPDATE ON streaming.sessions
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION streaming.apply_session_stats();

-- The rollup counted the sessions before the split; a split session counts once per day now.
DELETE FROM streaming.session_stats_hourly;
INSERT INTO streaming.session_stats_hourly SELECT * FROM streaming.session_stats_hourly_recompute;
