-- Creating a day no longer waits for autovacuum (issue 14). ensure_event_partitions (V16) locked
-- the parents with `LOCK TABLE streaming.events, ...` which, without ONLY, also locks every
-- partition, in SHARE UPDATE EXCLUSIVE: the mode autovacuum holds while it vacuums or analyses
-- a day. A new day's first file therefore waited until the deadlock check cancelled autovacuum
-- on the day just filled (measured: 1.5 s, twice, once for the creator and once for the other
-- worker behind it, in a load of 100 files over two days), and a database of a year of days took
-- a thousand locks to add one. What the lock is for needs the parents only: it serialises
-- creators (ATTACH takes the same mode on the parent) and orders them with retention (ACCESS
-- EXCLUSIVE on the parents). Otherwise as V16.
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
                LOCK TABLE ONLY streaming.events, ONLY streaming.purchases, ONLY streaming.sessions
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
