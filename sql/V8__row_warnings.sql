-- Damaged optional values (issue 13): a value of an optional target that cannot be used (Excel's
-- 2.05301E+18 as category_id, a device outside mobile/desktop/tablet, a country that is no
-- alpha-2 code) no longer costs its row. The row loads with that column NULL, its raw text is kept
-- in events.extra under "<column>_raw", and each such value is one row here, written in the
-- file's transaction like rejected_rows. The ledger counts them per file.
CREATE TABLE streaming.row_warnings (
    id          bigserial PRIMARY KEY,
    file_id     bigint    NOT NULL REFERENCES streaming.ingest_files (file_id),
    line        bigint    NOT NULL,
    column_name text      NOT NULL,
    reason      text      NOT NULL,
    raw_value   text      NOT NULL
);
CREATE INDEX row_warnings_file_id ON streaming.row_warnings (file_id);
ALTER TABLE streaming.ingest_files
    ADD COLUMN values_repaired bigint NOT NULL DEFAULT 0;

-- A quarantined file (more than --max-reject-fraction bad rows) is counted too: rows_total the
-- rows read, rows_rejected those that broke a rule (in rejected_rows, the first 10,000 per
-- file), rows_quarantined the rest, not loaded because of the quarantine.
ALTER TABLE streaming.ingest_files
    ADD COLUMN rows_quarantined bigint NOT NULL DEFAULT 0,
    DROP CONSTRAINT every_row_accounted_for,
    ADD CONSTRAINT every_row_accounted_for
        CHECK (rows_total = rows_loaded + rows_rejected + rows_duplicate + rows_quarantined);
