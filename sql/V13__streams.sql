-- The seeds' other streams (issue 16): transactions with their line items, and inventory
-- updates with the stock levels they leave. Files of these streams go through the same ledger
-- (streaming.ingest_files, whose `profile` names the stream: 'transactions' or 'inventory'),
-- the same rejected_rows and the same outbox as event files; each file is one transaction.

-- One row per transaction, written once: the first file that brings a transaction_id loads
-- it whole (every line), a later one counts all of that transaction's lines as duplicates.
CREATE TABLE streaming.transactions (
    transaction_id   text        PRIMARY KEY,
    transaction_time timestamptz NOT NULL,
    user_id          text        NOT NULL,
    payment_method   text,
    tax_amount       numeric     NOT NULL CHECK (tax_amount >= 0),
    shipping_cost    numeric     NOT NULL CHECK (shipping_cost >= 0),
    total_amount     numeric     NOT NULL CHECK (total_amount >= 0),
    shipping_address text,
    line_count       integer     NOT NULL CHECK (line_count >= 1),
    file_id          bigint      NOT NULL REFERENCES streaming.ingest_files (file_id),
    ingested_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transactions_file_id ON streaming.transactions (file_id);
CREATE INDEX transactions_time ON streaming.transactions (transaction_time);

CREATE TABLE streaming.transaction_items (
    transaction_id text    NOT NULL REFERENCES streaming.transactions (transaction_id),
    line_number    integer NOT NULL CHECK (line_number >= 1),
    product_id     text    NOT NULL,
    product_name   text,
    price          numeric NOT NULL CHECK (price >= 0),
    quantity       integer NOT NULL CHECK (quantity >= 1),
    item_total     numeric NOT NULL CHECK (item_total = price * quantity),
    warehouse      text,
    PRIMARY KEY (transaction_id, line_number)
);

CREATE TABLE streaming.inventory_updates (
    update_id     uuid        PRIMARY KEY,
    event_time    timestamptz NOT NULL,
    product_id    text        NOT NULL,
    product_name  text,
    warehouse     text        NOT NULL,
    stock_change  integer     NOT NULL,
    current_stock integer     NOT NULL CHECK (current_stock >= 0),
    file_id       bigint      NOT NULL REFERENCES streaming.ingest_files (file_id),
    ingested_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inventory_updates_file_id ON streaming.inventory_updates (file_id);
CREATE INDEX inventory_updates_key
    ON streaming.inventory_updates (product_id, warehouse, event_time DESC, update_id DESC);

-- THE AUTHORITATIVE VALUE: a product's stock in a warehouse is the `current_stock` of its
-- latest update by (event_time, update_id). That order is a property of the rows, not of
-- their arrival, so late and out-of-order files end where an in-order load ends; the sum of
-- `stock_change` would instead depend on every update since the first being present.
-- Kept up to date in each inventory file's transaction (load/streams/inventory.rs).
CREATE TABLE streaming.stock_levels (
    product_id    text        NOT NULL,
    warehouse     text        NOT NULL,
    current_stock integer     NOT NULL,
    as_of         timestamptz NOT NULL,
    update_id     uuid        NOT NULL,
    PRIMARY KEY (product_id, warehouse)
);

-- Exactly stock_levels' columns, computed from every update: always equal to the table.
CREATE VIEW streaming.stock_levels_recompute AS
SELECT DISTINCT ON (product_id, warehouse)
       product_id, warehouse, current_stock, event_time AS as_of, update_id
FROM streaming.inventory_updates
ORDER BY product_id, warehouse, event_time DESC, update_id DESC;
