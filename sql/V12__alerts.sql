-- Data-quality alerts (issue 17). The checks run in each file's own load transaction, just
-- before its commit (src/load/alerts/): a file commits together with the alerts it raised and
-- resolved, or with none of them, so a crash or a retry can never raise an alert twice.
CREATE TABLE streaming.alerts (
    alert_id      bigserial   PRIMARY KEY,
    -- low_stock is raised by inventory files (src/load/alerts/stock.rs).
    kind          text        NOT NULL CHECK (kind IN ('price_outlier', 'volume_spike',
                      'volume_drop', 'reject_rate', 'duplicate_rate', 'low_stock')),
    -- What it is about: a product id (price_outlier), an hour as 'YYYY-MM-DDTHH:00Z' (volume_*),
    -- a source profile (reject_rate, duplicate_rate), 'PRODUCT@WAREHOUSE' (low_stock).
    subject       text        NOT NULL,
    -- The value that broke the rule, the baseline it was judged against, and the range of
    -- values the rule accepts (NULL: unbounded on that side).
    observed      numeric     NOT NULL,
    baseline      numeric,
    expected_low  numeric,
    expected_high numeric,
    -- The rule in words, and its parameters as they were when the alert was raised.
    rule          text        NOT NULL,
    parameters    jsonb       NOT NULL,
    -- The file whose load raised it, and the one whose load showed the condition had ended.
    file_id       bigint      NOT NULL REFERENCES streaming.ingest_files (file_id),
    raised_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at   timestamptz,
    resolved_by   bigint      REFERENCES streaming.ingest_files (file_id),
    CHECK ((resolved_at IS NULL) = (resolved_by IS NULL))
);
-- Raised once: at most one open alert per kind and subject; a file that still shows the
-- condition meets this index and adds nothing (ON CONFLICT DO NOTHING).
CREATE UNIQUE INDEX alerts_one_open ON streaming.alerts (kind, subject) WHERE resolved_at IS NULL;
CREATE INDEX alerts_raised_at ON streaming.alerts (raised_at);

-- The baseline of price_outlier: per product, its last price samples (at most 9, newest last)
-- and their median, the product's typical price. A file's median price of the product is
-- recorded as a sample while the product has fewer than 3, or when it differs from the typical
-- price by more than 1%: a steady price costs one indexed read per product and file, no write,
-- and a real price change becomes the typical price after a few files. The check reads one row
-- per product the file touched, never the events.
CREATE TABLE streaming.product_prices (
    product_id text        PRIMARY KEY,
    recent     float8[]    NOT NULL,
    typical    float8      NOT NULL,
    file_id    bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 70);

-- The rates' baseline: the last loaded files of a source profile, walked back from the file at
-- hand, whatever the length of the ledger (one entry per file).
CREATE INDEX ingest_files_loaded_by_profile
    ON streaming.ingest_files ((coalesce(profile, '')), file_id) WHERE status = 'loaded';
