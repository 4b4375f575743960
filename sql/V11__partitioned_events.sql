-- Flat cost as history grows (issue 15): streaming.events and streaming.purchases become
-- partitioned by event_time, one partition per UTC day, created ahead of the data by the loader
-- (streaming.ensure_event_partitions below) and dropped whole by `shopstream-watch retain`.
--
-- Why. With one table keyed by a random uuid, every insert lands on a random page of a btree
-- that outgrows shared_buffers (measured: 159k rows/s into an empty database, 35k at 19M events),
-- and every checkpoint makes the next touch of each page write a full-page image. Keyed by
-- (event_time, event_id), a file's inserts go to the few pages of its own hours, whatever the
-- ids look like; partitioned by day, the duplicate lookup probes only the days of a chunk and
-- retention is a DROP TABLE instead of a DELETE of millions of rows.
--
-- THE DEDUPE RULE THAT RESULTS: an event is its id AND its event time. A row whose
-- (event_id, event_time) is loaded already is a duplicate; the same event_id with another
-- event_time is another event (the primary key of a partitioned table must contain the
-- partition key, so the id alone cannot be unique across partitions without a global index).
-- A late row (its day's partition is old) costs one index descent and one heap page in that
-- day's partition: a few random page reads if the day is no longer cached, nothing more.
--
-- Lookups by event_id alone (no time) probe every partition's primary key; give a time range.

-- Creates the daily partitions of events and purchases for the UTC `days` that are missing
-- (only days that hold rows: a late row two weeks back creates one old day, not fourteen);
-- returns how many days it created. Idempotent and safe for concurrent callers: partitions are
-- created as plain tables and ATTACHed, which takes SHARE UPDATE EXCLUSIVE on the parent (not
-- ACCESS EXCLUSIVE as CREATE TABLE ... PARTITION OF does), so loads in flight never block it
-- and it never blocks them; that lock also serialises two creators, and the re-check after it
-- sees what the other one committed.
CREATE FUNCTION streaming.ensure_event_partitions(days date[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    day date;
    suffix text;
    parent text;
    created integer := 0;
    locked boolean := false;
BEGIN
    FOREACH day IN ARRAY days LOOP
        suffix := to_char(day, 'YYYYMMDD');
        CONTINUE WHEN EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                              WHERE n.nspname = 'streaming' AND c.relname = 'events_' || suffix);
        IF NOT locked THEN
            -- Same order everywhere (events, then purchases): no lock cycle with retention.
            LOCK TABLE streaming.events, streaming.purchases IN SHARE UPDATE EXCLUSIVE MODE;
            locked := true;
            -- Another creator may have committed this day while we waited for the lock.
            CONTINUE WHEN EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                  WHERE n.nspname = 'streaming' AND c.relname = 'events_' || suffix);
        END IF;
        FOREACH parent IN ARRAY ARRAY['events', 'purchases'] LOOP
            EXECUTE format('CREATE TABLE streaming.%I (LIKE streaming.%I INCLUDING DEFAULTS '
                           'INCLUDING CONSTRAINTS INCLUDING STORAGE)', parent || '_' || suffix, parent);
            EXECUTE format('ALTER TABLE streaming.%I ATTACH PARTITION streaming.%I '
                           'FOR VALUES FROM (%L) TO (%L)',
                           parent, parent || '_' || suffix,
                           day::timestamp AT TIME ZONE 'UTC',
                           (day + 1)::timestamp AT TIME ZONE 'UTC');
        END LOOP;
        created := created + 1;
    END LOOP;
    RETURN created;
END $$;

-- Locks the partitions of the UTC `days` in the caller's transaction (ROW EXCLUSIVE, what an insert
-- takes anyway). A loader calls it after ensure_event_partitions committed on another connection:
-- the first lock of a relation in a transaction reads the catalog changes others committed (so
-- the COPY routes rows to the new partition), and retention cannot drop a day until the loads
-- writing into it have committed. Raises undefined_table when a day is missing.
CREATE FUNCTION streaming.lock_event_partitions(days date[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    day date;
BEGIN
    FOREACH day IN ARRAY days LOOP
        EXECUTE format('LOCK TABLE streaming.%I, streaming.%I IN ROW EXCLUSIVE MODE',
                       'events_' || to_char(day, 'YYYYMMDD'), 'purchases_' || to_char(day, 'YYYYMMDD'));
    END LOOP;
END $$;

-- Retention: drops the days of events and purchases that end at or before `before` (rounded
-- down to a UTC midnight), whole partitions in the caller's transaction, and notes the run in
-- streaming.retention_runs. ACCESS EXCLUSIVE on both parents (events first, as the loader's
-- partition creation): waits for the loads in flight, and new loads wait for it (milliseconds:
-- a DROP TABLE does not read the rows). Returns the run's row (NULL run_id when nothing to drop).
CREATE FUNCTION streaming.drop_event_days_before(before timestamptz)
RETURNS TABLE (run_id bigint, dropped_before timestamptz, days_dropped integer,
               events_dropped bigint, purchases_dropped bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    horizon timestamptz := date_trunc('day', before AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    part record;
    n bigint;
    days integer := 0;
    n_events bigint := 0;
    n_purchases bigint := 0;
    names text[] := '{}';
BEGIN
    LOCK TABLE streaming.events, streaming.purchases IN ACCESS EXCLUSIVE MODE;
    FOR part IN
        SELECT c.relname, p.relname AS parent
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        JOIN pg_namespace s ON s.oid = p.relnamespace AND s.nspname = 'streaming'
        WHERE p.relname IN ('events', 'purchases')
          AND c.relname ~ '^(events|purchases)_[0-9]{8}$'
          AND to_date(right(c.relname, 8), 'YYYYMMDD') + 1 <= (horizon AT TIME ZONE 'UTC')::date
        ORDER BY c.relname
    LOOP
        EXECUTE format('SELECT count(*) FROM streaming.%I', part.relname) INTO n;
        IF part.parent = 'events' THEN
            n_events := n_events + n;
            days := days + 1;
            names := names || right(part.relname, 8);
        ELSE
            n_purchases := n_purchases + n;
        END IF;
        EXECUTE format('DROP TABLE streaming.%I', part.relname);
    END LOOP;
    IF days = 0 THEN
        RETURN QUERY SELECT NULL::bigint, horizon, 0, 0::bigint, 0::bigint;
        RETURN;
    END IF;
    RETURN QUERY
    INSERT INTO streaming.retention_runs AS r
        (dropped_before, days_dropped, events_dropped, purchases_dropped, note)
    VALUES (horizon, days, n_events, n_purchases,
            format('dropped %s day(s) of events and purchases before %s (UTC): %s',
                   days, horizon AT TIME ZONE 'UTC', array_to_string(names, ', ')))
    RETURNING r.run_id, r.dropped_before, r.days_dropped, r.events_dropped, r.purchases_dropped;
END $$;

-- In place: the views over the old tables are kept by their definitions (whatever V2..V10 made
-- them), the old tables renamed, the partitioned ones created with the same columns, the rows
-- moved, the old tables dropped and the views made again over the new tables.
SET LOCAL search_path TO public;
CREATE TEMP TABLE v11_views ON COMMIT DROP AS
SELECT DISTINCT v.oid::regclass::text AS name, pg_get_viewdef(v.oid) AS definition
FROM pg_depend d
JOIN pg_rewrite r ON r.oid = d.objid
JOIN pg_class v ON v.oid = r.ev_class AND v.relkind = 'v'
WHERE d.classid = 'pg_rewrite'::regclass
  AND d.refobjid IN ('streaming.events'::regclass, 'streaming.purchases'::regclass);
DO $$
DECLARE v record;
BEGIN
    FOR v IN SELECT name FROM v11_views LOOP
        EXECUTE format('DROP VIEW %s', v.name);
    END LOOP;
END $$;

ALTER TABLE streaming.events RENAME TO events_unpartitioned;
ALTER TABLE streaming.purchases RENAME TO purchases_unpartitioned;
ALTER INDEX streaming.events_pkey RENAME TO events_unpartitioned_pkey;
ALTER INDEX streaming.purchases_pkey RENAME TO purchases_unpartitioned_pkey;
ALTER INDEX streaming.events_file_id RENAME TO events_unpartitioned_file_id;

CREATE TABLE streaming.events (LIKE streaming.events_unpartitioned
    INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)
    PARTITION BY RANGE (event_time);
-- Time first: a file's rows go to the right edge of its day's btree (see the top).
ALTER TABLE streaming.events ADD PRIMARY KEY (event_time, event_id);
-- The derive and the Kafka outbox read a file's events back by file_id.
CREATE INDEX events_file_id ON streaming.events (file_id);
-- No BRIN on event_time any more: the primary key serves time ranges (the dashboard's last hour).

CREATE TABLE streaming.purchases (LIKE streaming.purchases_unpartitioned
    INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)
    PARTITION BY RANGE (event_time);
ALTER TABLE streaming.purchases ADD PRIMARY KEY (event_time, event_id);

SELECT streaming.ensure_event_partitions(array_agg(DISTINCT (event_time AT TIME ZONE 'UTC')::date))
FROM streaming.events_unpartitioned HAVING count(*) > 0;
-- Purchases were copied from events, so their days exist now; a purchase without its event
-- (none is expected) would still find its day.
SELECT streaming.ensure_event_partitions(array_agg(DISTINCT (event_time AT TIME ZONE 'UTC')::date))
FROM streaming.purchases_unpartitioned HAVING count(*) > 0;

INSERT INTO streaming.events SELECT * FROM streaming.events_unpartitioned;
INSERT INTO streaming.purchases SELECT * FROM streaming.purchases_unpartitioned;
DROP TABLE streaming.events_unpartitioned;
DROP TABLE streaming.purchases_unpartitioned;

DO $$
DECLARE v record;
BEGIN
    FOR v IN SELECT name, definition FROM v11_views ORDER BY name LOOP
        EXECUTE format('CREATE VIEW %s AS %s', v.name, v.definition);
    END LOOP;
END $$;

-- Retention (shopstream-watch retain): one row per run that dropped days. Aggregates (hourly
-- stats, sessions, product counts, hourly users) are never dropped; the recompute views then
-- cover only the retained range, and each table equals its view over that range (README,
-- "Retention" says how to compare).
CREATE TABLE streaming.retention_runs (
    run_id            bigserial   PRIMARY KEY,
    -- Every event before this instant (a UTC midnight) is gone.
    dropped_before    timestamptz NOT NULL,
    days_dropped      integer     NOT NULL,
    events_dropped    bigint      NOT NULL,
    purchases_dropped bigint      NOT NULL,
    ran_at            timestamptz NOT NULL DEFAULT now(),
    note              text        NOT NULL
);
