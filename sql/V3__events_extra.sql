-- Extra columns: a file's columns that the contract does not name are kept, not dropped.
-- Each loaded event carries its non-empty extra values as one JSON object (NULL when none),
-- and the ledger notes, once per file, which extra columns it had.
ALTER TABLE streaming.events ADD COLUMN extra jsonb;
ALTER TABLE streaming.ingest_files ADD COLUMN notes text;
