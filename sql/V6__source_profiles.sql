-- Source profiles: files in other layouts (REES46, user-defined TOML profiles) map onto the
-- contract. Attributes such sources carry beyond the contract are kept on each event (NULL for
-- native files), and the ledger records which profile read each file (NULL when none fitted).
ALTER TABLE streaming.events
    ADD COLUMN brand text,
    ADD COLUMN category_id bigint,
    ADD COLUMN category_code text;
ALTER TABLE streaming.ingest_files ADD COLUMN profile text;
