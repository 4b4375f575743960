-- The Kafka outbox (src/mirror/message.rs, OUTBOX_EVENTS) is the only reader of events by
-- file_id, and it reads a file's events only when the watcher did not keep the file's messages
-- (the backlog after an outage or a crash, files whose messages exceed the kept bound). Yet
-- the btree on file_id took an entry per event at every load (issue 14, pg_stat_statements
-- over 100 files of 10,000 rows: the events COPY took 12.7 s with it and 9.8 s with this
-- BRIN, both runs while a build shared the machine).
--
-- A file's events are appended by one COPY, so they lie on a run of adjacent heap pages of
-- each day they cover, and file ids grow with time: a BRIN of (min, max) file_id per 16 pages
-- finds them from a few index tuples per day and costs next to nothing at load. Pages past the
-- last summarised range are scanned whole until autovacuum summarises them (autosummarize asks
-- it to as soon as a range fills), which bounds a backlog read to a day's recent pages.
DROP INDEX streaming.events_file_id;
CREATE INDEX events_file_id_brin ON streaming.events USING brin (file_id)
    WITH (pages_per_range = 16, autosummarize = on);

-- Makes reading a file's events back cheap; the outbox calls it before it does. Two things
-- stand in the way on days written since autovacuum last visited them:
--  * pages past the BRIN's last summarised range are read for every file (measured: 265 ms for
--    a file of 10,000 events in a day of 600,000 unsummarised rows; 5 ms once summarised);
--  * a day never analysed has no correlation for file_id, and the planner then prices the BRIN
--    as reading the whole day and scans it (150 ms for that day, per file).
-- So it summarises the new ranges of the days written since their last vacuum (a vacuum
-- summarises every range) and analyses file_id on days that have no statistics yet (once per
-- day; autovacuum keeps them after). Days untouched since their vacuum are skipped: a
-- summary pass reads the index's map of every range, and a backlog calls this once per file.
-- Returns the ranges summarised.
CREATE FUNCTION streaming.summarize_event_files()
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    part record;
    ranges bigint := 0;
BEGIN
    -- Retention locks the parent before it drops days: locked first here too, no day goes away
    -- between this list of them and their summary, and the two never deadlock.
    LOCK TABLE ONLY streaming.events IN ACCESS SHARE MODE;
    FOR part IN SELECT i.inhrelid::regclass AS brin, x.indrelid::regclass AS day,
                       s.last_analyze IS NULL AND s.last_autoanalyze IS NULL AS unanalysed
                FROM pg_inherits i
                JOIN pg_index x ON x.indexrelid = i.inhrelid
                JOIN pg_stat_user_tables s ON s.relid = x.indrelid
                WHERE i.inhparent = 'streaming.events_file_id_brin'::regclass
                  AND (s.n_ins_since_vacuum > 0
                       OR (s.last_analyze IS NULL AND s.last_autoanalyze IS NULL))
    LOOP
        ranges := ranges + brin_summarize_new_values(part.brin);
        IF part.unanalysed THEN
            EXECUTE format('ANALYZE %s (file_id)', part.day);
        END IF;
    END LOOP;
    RETURN ranges;
END $$;
