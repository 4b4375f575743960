//! Flat cost as history grows (issue 15): events and purchases in daily partitions created by
//! the load, the dedupe rule "an event is its id and its event time" across partitions, late
//! rows into old days, retention by whole days, and the in-place upgrade of a database built by
//! the migrations before V11.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use tokio_postgres::Client;
use uuid::Uuid;

use crate::support::*;

const HEADER: &str = "event_id,event_time,user_id,session_id,event_type,product_id,\
    product_category,product_price,quantity,total_amount,device,country";

/// One native row: a view, or a purchase of 2 x 10.50 when `purchase`.
fn row(id: Uuid, time: &str, purchase: bool) -> String {
    let (kind, total) = if purchase {
        ("purchase", "21.00")
    } else {
        ("view", "")
    };
    format!("{id},{time},u1,s-{time},{kind},p1,books,10.50,2,{total},mobile,DE")
}

fn write_csv(dir: &Path, name: &str, rows: &[String]) {
    let mut text = format!("{HEADER}\n");
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    std::fs::write(dir.join(name), text).unwrap();
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0000 | n)
}

/// Rows per partition of `parent`, by partition name.
async fn partitions(pg: &Client, parent: &str) -> Vec<(String, i64)> {
    let names: Vec<String> = pg
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = $1::text::regclass ORDER BY 1",
            &[&format!("streaming.{parent}")],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    for name in names {
        let n = count(pg, &format!("SELECT count(*) FROM streaming.{name}")).await;
        out.push((name, n));
    }
    out
}

/// (rows_loaded, rows_duplicate, status) of the ledger row of `file`.
async fn ledger(pg: &Client, file: &str) -> (i64, i64, String) {
    let r = pg
        .query_one(
            "SELECT rows_loaded, rows_duplicate, status FROM streaming.ingest_files \
             WHERE file_name = $1 ORDER BY file_id DESC LIMIT 1",
            &[&file],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

#[tokio::test]
async fn partitions_follow_the_data_and_an_event_is_its_id_and_its_time() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let first = [
        row(id(1), "2026-11-01T10:00:00.000000Z", false),
        row(id(2), "2026-11-01T23:59:59.999999Z", false),
        row(id(3), "2026-11-02T00:00:00.000000Z", false),
        row(id(4), "2026-11-02T12:00:00.000000Z", true),
        row(id(5), "2026-11-03T01:00:00.000000Z", false),
        row(id(6), "2026-11-03T02:00:00.000000Z", true),
    ];
    write_csv(landing.path(), "a.csv", &first);
    watch_once(landing.path(), &db, None);
    let pg = db.client().await;
    assert_eq!(ledger(&pg, "a.csv").await, (6, 0, "loaded".into()));
    let days = |names: &[&str]| -> Vec<(String, i64)> {
        names.iter().map(|n| (n.to_string(), 2)).collect()
    };
    assert_eq!(
        partitions(&pg, "events").await,
        days(&["events_20261101", "events_20261102", "events_20261103"]),
        "one partition per UTC day the file's rows fall on, each holding its day's rows"
    );
    let purchases = partitions(&pg, "purchases").await;
    assert_eq!(
        purchases.len(),
        3,
        "purchases get the same days: {purchases:?}"
    );
    assert_eq!(purchases.iter().map(|p| p.1).sum::<i64>(), 2);

    // The same bytes under another name: the ledger's content identity; nothing is read.
    std::fs::copy(
        landing.path().join("processed/a.csv"),
        landing.path().join("a-again.csv"),
    )
    .unwrap();
    // The same events in another order (other bytes): every row a duplicate, in every day.
    let mut reversed = first.to_vec();
    reversed.reverse();
    write_csv(landing.path(), "b.csv", &reversed);
    watch_once(landing.path(), &db, None);
    assert_eq!(ledger(&pg, "a-again.csv").await.2, "duplicate_file");
    assert_eq!(ledger(&pg, "b.csv").await, (0, 6, "loaded".into()));

    // An id seen before is a duplicate only with its own event time; with another time it is
    // another event. A row older than every day loaded so far (late) gets its own old day.
    write_csv(
        landing.path(),
        "c.csv",
        &[
            row(id(1), "2026-11-01T10:00:00.000000Z", false),
            row(id(2), "2026-11-01T11:00:00.000000Z", false),
            row(id(7), "2026-11-05T08:00:00.000000Z", false),
            row(id(8), "2026-10-20T08:00:00.000000Z", true),
        ],
    );
    watch_once(landing.path(), &db, None);
    assert_eq!(ledger(&pg, "c.csv").await, (3, 1, "loaded".into()));
    let events = partitions(&pg, "events").await;
    assert_eq!(
        events,
        vec![
            ("events_20261020".to_string(), 1),
            ("events_20261101".to_string(), 3),
            ("events_20261102".to_string(), 2),
            ("events_20261103".to_string(), 2),
            ("events_20261105".to_string(), 1),
        ]
    );
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.events WHERE event_id = '01930000-0000-7000-8000-000000000002'").await,
        2,
        "the id of event 2 with another time is a second event"
    );
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.purchases_20261020").await,
        1,
        "the late purchase is in its own day's purchases partition"
    );
    assert_eq!(stats_mismatches(&pg).await, 0);
    db.cleanup().await;
}

#[tokio::test]
async fn a_day_that_begins_in_the_middle_of_a_file_is_created_and_loaded() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    // 150,000 rows (several 8 MB chunks) from 20:00: the later chunks reach the next day, whose
    // partition is created while the file's transaction is open.
    generate(
        landing.path(),
        1,
        150_000,
        11,
        &["--start", "2026-11-01T20:00:00Z"],
    );
    watch_once(landing.path(), &db, None);
    let pg = db.client().await;
    let days = partitions(&pg, "events").await;
    assert!(days.len() >= 2, "{days:?}");
    assert_eq!(days.iter().map(|d| d.1).sum::<i64>(), 150_000);
    assert!(days.iter().all(|d| d.1 > 0), "{days:?}");
    assert_eq!(
        count(
            &pg,
            "SELECT sum(rows_loaded)::bigint FROM streaming.ingest_files"
        )
        .await,
        150_000
    );
    assert_eq!(stats_mismatches(&pg).await, 0);
    db.cleanup().await;
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Hourly stats over the retained range (hours from `horizon` on) equal the recompute.
const RETAINED_STATS_MISMATCHES: &str = "SELECT count(*) FROM (
    (SELECT hour, event_type, product_category, event_count, quantity, revenue
       FROM streaming.event_stats_hourly WHERE hour >= $1
     EXCEPT SELECT * FROM streaming.event_stats_hourly_recompute)
    UNION ALL
    (SELECT * FROM streaming.event_stats_hourly_recompute
     EXCEPT SELECT hour, event_type, product_category, event_count, quantity, revenue
       FROM streaming.event_stats_hourly)) d";

#[tokio::test]
async fn retention_drops_whole_old_days_and_keeps_the_aggregates() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let mut rows = Vec::new();
    for (n, days_ago) in [(1, 10), (2, 10), (3, 8), (4, 2), (5, 0)] {
        rows.push(row(
            id(n),
            &time(now - Duration::days(days_ago)),
            n % 2 == 1,
        ));
    }
    write_csv(landing.path(), "days.csv", &rows);
    watch_once(landing.path(), &db, None);
    let pg = db.client().await;
    assert_eq!(partitions(&pg, "events").await.len(), 4);
    let hours_before = count(&pg, "SELECT count(*) FROM streaming.event_stats_hourly").await;
    let sessions_before = count(&pg, "SELECT count(*) FROM streaming.sessions").await;

    let retain = |days: &str| {
        let out = run_ok(
            std::process::Command::new(bin("watch"))
                .args(["retain", "--days", days])
                .env("DATABASE_URL", &db.url)
                .env("HTTP_ADDR", "off")
                .env("RUST_LOG", "warn"),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let said = retain("7");
    assert!(
        said.contains("2 day(s), 3 events, 2 purchases"),
        "retain reports what it dropped: {said}"
    );
    assert_eq!(count(&pg, "SELECT count(*) FROM streaming.events").await, 2);
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.purchases").await,
        1
    );
    assert_eq!(partitions(&pg, "events").await.len(), 2);
    assert_eq!(partitions(&pg, "purchases").await.len(), 2);
    let run = pg
        .query_one(
            "SELECT days_dropped, events_dropped, purchases_dropped, note, dropped_before \
             FROM streaming.retention_runs",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((run.get::<_, i32>(0), run.get::<_, i64>(1)), (2, 3));
    assert_eq!(run.get::<_, i64>(2), 2);
    let note: String = run.get(3);
    assert!(
        note.starts_with("dropped 2 day(s) of events and purchases before"),
        "{note}"
    );
    let horizon: DateTime<Utc> = run.get(4);
    assert_eq!(horizon, load_horizon(now, 7));
    // Aggregates stay whole; the recompute covers the retained range and agrees there.
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.event_stats_hourly").await,
        hours_before
    );
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.sessions").await,
        sessions_before
    );
    let mismatches: i64 = pg
        .query_one(RETAINED_STATS_MISMATCHES, &[&horizon])
        .await
        .unwrap()
        .get(0);
    assert_eq!(mismatches, 0);

    // Nothing older is left: a second run drops nothing and notes nothing.
    assert!(retain("7").contains("0 day(s)"));
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.retention_runs").await,
        1
    );
    db.cleanup().await;
}

fn load_horizon(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    shopstream::load::retention_horizon(now, days)
}

/// The migrations a database had before V11, applied as refinery applied them.
fn migrations_before_v11() -> Vec<refinery::Migration> {
    [
        (
            "V1__streaming_schema",
            include_str!("../../sql/V1__streaming_schema.sql"),
        ),
        ("V2__analytics", include_str!("../../sql/V2__analytics.sql")),
        (
            "V3__events_extra",
            include_str!("../../sql/V3__events_extra.sql"),
        ),
        (
            "V5__load_speed",
            include_str!("../../sql/V5__load_speed.sql"),
        ),
        (
            "V6__source_profiles",
            include_str!("../../sql/V6__source_profiles.sql"),
        ),
        (
            "V7__recompute_views",
            include_str!("../../sql/V7__recompute_views.sql"),
        ),
        (
            "V8__row_warnings",
            include_str!("../../sql/V8__row_warnings.sql"),
        ),
        (
            "V9__derive_upkeep",
            include_str!("../../sql/V9__derive_upkeep.sql"),
        ),
    ]
    .iter()
    .map(|(name, sql)| refinery::Migration::unapplied(name, sql).unwrap())
    .collect()
}

/// 3,000 events over three days in one loaded file, and every derived table as its recompute
/// view says (what the loader before V11 left).
const OLD_DATA: &str = "
INSERT INTO streaming.ingest_files (file_id, file_name, size_bytes, sha256, status, rows_total,
    rows_loaded, started_at)
VALUES (1, 'old.csv', 1, 'old', 'loaded', 3000, 3000, now());
SELECT setval('streaming.ingest_files_file_id_seq', 1);
INSERT INTO streaming.events (event_id, event_time, user_id, session_id, event_type, product_id,
    product_category, product_price, quantity, total_amount, device, country, file_id, source_file)
SELECT md5(i::text)::uuid, '2026-11-01T00:00:00Z'::timestamptz + i * interval '86 seconds',
       'u' || i % 50, 's' || i / 7,
       CASE WHEN i % 10 = 0 THEN 'purchase' WHEN i % 10 < 3 THEN 'add_to_cart' ELSE 'view' END,
       'p' || i % 30, CASE WHEN i % 4 = 0 THEN NULL ELSE 'c' || i % 4 END, 10.5, 1 + i % 3,
       CASE WHEN i % 10 = 0 THEN 10.5 * (1 + i % 3) END, 'mobile', 'DE', 1, 'old.csv'
FROM generate_series(1, 3000) i;
INSERT INTO streaming.purchases SELECT event_id, event_time, user_id, session_id, product_id,
    product_category, product_price, quantity, total_amount
FROM streaming.events WHERE event_type = 'purchase';
INSERT INTO streaming.event_stats_hourly (hour, event_type, product_category, event_count,
    quantity, revenue) SELECT * FROM streaming.event_stats_hourly_recompute;
INSERT INTO streaming.sessions (session_id, user_id, started_at, ended_at, events, views, carts,
    removes, purchases, revenue)
SELECT session_id, user_id, started_at, ended_at, events, views, carts, removes, purchases, revenue
FROM streaming.sessions_recompute;
INSERT INTO streaming.product_counts (product_id, product_category, views, add_to_cart, removes,
    purchases, units_sold, revenue) SELECT * FROM streaming.product_counts_recompute;
INSERT INTO streaming.hourly_users SELECT * FROM streaming.hourly_users_recompute;";

/// Counts and a digest of every row of the tables the upgrade rewrites or must leave alone.
/// Events without the columns later migrations add (sql/V17's `search_query`, NULL for them).
const DIGEST: &str = "SELECT
    (SELECT count(*) || ':' || md5(string_agg((to_jsonb(e) - 'search_query')::text, ',' \
       ORDER BY event_id)) FROM streaming.events e),
    (SELECT count(*) || ':' || md5(string_agg(p::text, ',' ORDER BY event_id)) FROM streaming.purchases p),
    (SELECT count(*) || ':' || md5(string_agg(s::text, ',' ORDER BY hour, event_type, product_category))
       FROM streaming.event_stats_hourly s),
    (SELECT count(*) || ':' || md5(string_agg(s::text, ',' ORDER BY session_id)) FROM streaming.sessions s),
    (SELECT count(*) FROM streaming.hourly_users)";

async fn digest(pg: &Client) -> Vec<String> {
    let r = pg.query_one(DIGEST, &[]).await.unwrap();
    (0..4)
        .map(|i| r.get::<_, String>(i))
        .chain([r.get::<_, i64>(4).to_string()])
        .collect()
}

#[tokio::test]
async fn a_database_of_the_previous_release_is_partitioned_in_place() {
    let db = TestDb::new().await;
    let mut pg = db.client().await;
    refinery::Runner::new(&migrations_before_v11())
        .set_migration_table_name("shopstream_schema_history")
        .run_async(&mut pg)
        .await
        .unwrap();
    pg.batch_execute(OLD_DATA).await.unwrap();
    let before = digest(&pg).await;
    assert!(before[0].starts_with("3000:"), "{before:?}");
    assert!(before[1].starts_with("300:"), "{before:?}");

    // The next start migrates; an empty landing directory loads nothing.
    let landing = tempfile::tempdir().unwrap();
    watch_once(landing.path(), &db, None);
    let kind: i8 = pg
        .query_one(
            "SELECT relkind::\"char\" FROM pg_class WHERE oid = 'streaming.events'::regclass",
            &[],
        )
        .await
        .map(|r| r.get::<_, i8>(0))
        .unwrap();
    assert_eq!(kind as u8, b'p', "streaming.events is partitioned now");
    assert_eq!(
        digest(&pg).await,
        before,
        "every row kept, every aggregate unchanged"
    );
    let days = partitions(&pg, "events").await;
    assert_eq!(
        days.iter().map(|d| d.0.as_str()).collect::<Vec<_>>(),
        ["events_20261101", "events_20261102", "events_20261103"]
    );
    assert_eq!(partitions(&pg, "purchases").await.len(), 3);
    assert_eq!(
        stats_mismatches(&pg).await,
        0,
        "the recompute views work over the new table"
    );
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM ((SELECT * FROM streaming.sessions_recompute) EXCEPT \
            (SELECT session_id, user_id, started_at, ended_at, duration, events, views, carts, \
             removes, purchases, revenue, reached_cart, purchased FROM streaming.sessions)) d"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM streaming.product_counts_recompute"
        )
        .await,
        count(&pg, "SELECT count(*) FROM streaming.product_counts").await
    );

    // The KPI rollups (V15) were filled from what the old release had.
    for (table, recompute) in [
        (
            "streaming.session_stats_hourly",
            "streaming.session_stats_hourly_recompute",
        ),
        (
            "streaming.hourly_user_counts",
            "streaming.hourly_user_counts_recompute",
        ),
        ("streaming.users", "streaming.users_recompute"),
    ] {
        let diff = format!(
            "SELECT count(*) FROM (((TABLE {table}) EXCEPT (TABLE {recompute})) \
             UNION ALL ((TABLE {recompute}) EXCEPT (TABLE {table}))) d"
        );
        assert_eq!(count(&pg, &diff).await, 0, "{table} after the upgrade");
    }
    assert_eq!(
        count(&pg, "SELECT users FROM streaming.user_totals").await,
        50,
        "users u0..u49 of the old data"
    );

    // Old events are still known: one of them again is a duplicate, a new one loads.
    let old: (Uuid, DateTime<Utc>) = pg
        .query_one(
            "SELECT event_id, event_time FROM streaming.events ORDER BY event_time LIMIT 1",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    write_csv(
        landing.path(),
        "after.csv",
        &[
            row(old.0, &time(old.1), false),
            row(id(99), "2026-11-02T05:00:00.000000Z", false),
        ],
    );
    watch_once(landing.path(), &db, None);
    assert_eq!(ledger(&pg, "after.csv").await, (1, 1, "loaded".into()));
    db.cleanup().await;
}
