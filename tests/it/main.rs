//! One integration test binary against a real PostgreSQL and a real Kafka-protocol broker,
//! started by scripts/test (SHOPSTREAM_TEST_DATABASE_URL, SHOPSTREAM_TEST_KAFKA).

mod support;

/// Data-quality alerts: each kind raised by a crafted file, raised once, resolved later.
mod alerts;
/// sessions, product_metrics and kpis equal a recompute from events, whatever the arrival order.
mod analytics;
/// The JSON API against the SQL it equals; bad parameters; the token off loopback.
mod api;
/// A bucket as the landing (s3s-fs): objects moved, rejects beside them, watchers sharing it.
mod bucket;
/// Transactions and inventory objects, plain and compressed: as a directory would end.
mod bucket_streams;
/// docker-compose.yml, Prometheus and Grafana provisioning: parsed and cross-checked.
mod compose;
/// .csv.gz and .csv.zst landing files: compressed identity, decompressed lines, cut archives.
mod compressed;
/// The bad-input corpus: every case through the real watcher, each with its exact outcome.
mod corpus;
/// kill -9 at random moments while files stream in → tables equal a clean run.
mod crash;
/// HTTP server: /healthz, /metrics, /files.json; the dashboard read by headless Chromium.
mod dashboard;
/// generate → ingest → exact contents of every table and the topic; re-drops and duplicates.
mod e2e;
/// shopstream-gen: determinism, the contract's shape, the fault knobs.
mod gen;
/// Daily partitions made by the load, dedupe across them, late rows, retention, the upgrade.
mod growth;
/// A read-only or full landing file system: each file recorded once, moved when it can be.
mod landing_fs;
/// Exit codes of wrong settings and interrupted batches, a relative landing directory, a
/// closed log pipe.
mod operations;
/// Postgres and Kafka stopped and started under a running watcher.
mod outage;
/// Source profiles: REES46 and user layouts mapped onto the contract, detection errors.
mod profiles;
/// Damaged optional values repaired, implausible timestamps rejected, quarantine in the ledger.
mod quality;
/// Three watchers on one directory; memory over 10,000 files.
mod scale;
/// Search events: rules, a profile, sessions and hours, top queries against their definition.
mod search;
/// The streams, search and brand panels read by headless Chromium; the search and brand API.
mod search_dashboard;
/// Credentials never in logs or errors; SQL never built from input.
mod security;
/// Long-running watcher: notify pickup, half-written files, graceful stop, mirror backlog.
mod service;
/// What used to stall a run silently: a non-UTF-8 name, a future mtime, a held table lock.
mod stalls;
/// Stream profiles: order-items and invoice-lines exports loaded as transactions.
mod stream_profiles;
/// Transactions and inventory files: exact rows, re-drops, out-of-order stock, bad rows, topics.
mod streams;
/// In-place upgrades of databases built by earlier releases' migrations.
mod upgrade;
