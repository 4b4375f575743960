-- shopstream schema: the ledger first, because every loaded row points at the file it came from.
CREATE SCHEMA IF NOT EXISTS streaming;

-- One row per file the watcher finished with (loaded, duplicate content, or rejected whole).
-- The partial unique index on content is the exactly-once anchor: a second transaction that
-- tries to load the same bytes blocks on it, then fails, and the file is recorded as a duplicate.
CREATE TABLE streaming.ingest_files (
    file_id        bigserial   PRIMARY KEY,
    file_name      text        NOT NULL,
    size_bytes     bigint      NOT NULL,
    sha256         text        NOT NULL,
    status         text        NOT NULL CHECK (status IN ('loaded', 'duplicate_file', 'rejected')),
    admitted_by    text,
    rows_total     bigint      NOT NULL DEFAULT 0,
    rows_loaded    bigint      NOT NULL DEFAULT 0,
    rows_rejected  bigint      NOT NULL DEFAULT 0,
    rows_duplicate bigint      NOT NULL DEFAULT 0,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    error          text,
    -- Set once the file left landing/ (processed/ or rejected/); a loaded file without it was
    -- committed just before a stop and is moved, not loaded again, at the next start.
    archived_at    timestamptz,
    mirrored_at    timestamptz,
    CONSTRAINT every_row_accounted_for
        CHECK (rows_total = rows_loaded + rows_rejected + rows_duplicate)
);
CREATE UNIQUE INDEX ingest_files_content_loaded_once
    ON streaming.ingest_files (sha256, size_bytes) WHERE status = 'loaded';
-- The mirror's outbox: loaded files whose events Kafka has not acknowledged yet.
CREATE INDEX ingest_files_unmirrored
    ON streaming.ingest_files (file_id) WHERE status = 'loaded' AND mirrored_at IS NULL;

CREATE TABLE streaming.events (
    event_id         uuid        PRIMARY KEY,
    event_time       timestamptz NOT NULL,
    user_id          text        NOT NULL,
    session_id       text        NOT NULL,
    event_type       text        NOT NULL
        CHECK (event_type IN ('view', 'add_to_cart', 'remove_from_cart', 'purchase')),
    product_id       text        NOT NULL,
    product_category text,
    product_price    numeric     NOT NULL CHECK (product_price >= 0),
    quantity         integer     NOT NULL CHECK (quantity >= 1),
    total_amount     numeric,
    device           text,
    country          text,
    file_id          bigint      NOT NULL REFERENCES streaming.ingest_files (file_id),
    source_file      text        NOT NULL,
    ingested_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_file_id ON streaming.events (file_id);
CREATE INDEX events_event_time ON streaming.events (event_time);

CREATE TABLE streaming.purchases (
    event_id         uuid        PRIMARY KEY REFERENCES streaming.events (event_id),
    event_time       timestamptz NOT NULL,
    user_id          text        NOT NULL,
    session_id       text        NOT NULL,
    product_id       text        NOT NULL,
    product_category text,
    product_price    numeric     NOT NULL,
    quantity         integer     NOT NULL,
    total_amount     numeric     NOT NULL
);

-- Empty categories are keyed as '' so the key can be a primary key.
CREATE TABLE streaming.event_stats_hourly (
    hour             timestamptz NOT NULL,
    event_type       text        NOT NULL,
    product_category text        NOT NULL DEFAULT '',
    event_count      bigint      NOT NULL,
    quantity         bigint      NOT NULL,
    revenue          numeric     NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (hour, event_type, product_category)
);

-- The definition event_stats_hourly must always equal; tests and users compare against it.
CREATE VIEW streaming.event_stats_hourly_recompute AS
SELECT date_trunc('hour', event_time, 'UTC')  AS hour,
       event_type,
       coalesce(product_category, '')         AS product_category,
       count(*)::bigint                       AS event_count,
       sum(quantity)::bigint                  AS quantity,
       coalesce(sum(total_amount), 0)         AS revenue
FROM streaming.events
GROUP BY 1, 2, 3;

-- Rows that broke the contract, with enough context to fix and re-drop them.
CREATE TABLE streaming.rejected_rows (
    id          bigserial PRIMARY KEY,
    file_id     bigint    NOT NULL REFERENCES streaming.ingest_files (file_id),
    line        bigint    NOT NULL,
    column_name text,
    reason      text      NOT NULL,
    raw_line    text      NOT NULL
);
CREATE INDEX rejected_rows_file_id ON streaming.rejected_rows (file_id);
