//! In-place upgrades: a database built by the migrations of an earlier release, with rows in it,
//! migrates at the next start with its rows kept and every aggregate equal to its recompute.
//! Before V11 (events and purchases unpartitioned) and before V16 (sessions keyed by id alone,
//! a session over a midnight one row).

use chrono::{DateTime, Utc};
use tokio_postgres::Client;
use uuid::Uuid;

use crate::growth::{id, ledger, partitions, row, time, write_csv};
use crate::support::*;

/// Every migration up to and including `last`, applied as refinery applied them.
fn migrations_through(last: u32) -> Vec<refinery::Migration> {
    [
        (
            1,
            "V1__streaming_schema",
            include_str!("../../sql/V1__streaming_schema.sql"),
        ),
        (
            2,
            "V2__analytics",
            include_str!("../../sql/V2__analytics.sql"),
        ),
        (
            3,
            "V3__events_extra",
            include_str!("../../sql/V3__events_extra.sql"),
        ),
        (
            5,
            "V5__load_speed",
            include_str!("../../sql/V5__load_speed.sql"),
        ),
        (
            6,
            "V6__source_profiles",
            include_str!("../../sql/V6__source_profiles.sql"),
        ),
        (
            7,
            "V7__recompute_views",
            include_str!("../../sql/V7__recompute_views.sql"),
        ),
        (
            8,
            "V8__row_warnings",
            include_str!("../../sql/V8__row_warnings.sql"),
        ),
        (
            9,
            "V9__derive_upkeep",
            include_str!("../../sql/V9__derive_upkeep.sql"),
        ),
        (
            10,
            "V10__byte_order_keys",
            include_str!("../../sql/V10__byte_order_keys.sql"),
        ),
        (
            11,
            "V11__partitioned_events",
            include_str!("../../sql/V11__partitioned_events.sql"),
        ),
        (12, "V12__alerts", include_str!("../../sql/V12__alerts.sql")),
        (
            13,
            "V13__streams",
            include_str!("../../sql/V13__streams.sql"),
        ),
        (
            15,
            "V15__kpi_rollups",
            include_str!("../../sql/V15__kpi_rollups.sql"),
        ),
    ]
    .iter()
    .filter(|(n, _, _)| *n <= last)
    .map(|(_, name, sql)| refinery::Migration::unapplied(name, sql).unwrap())
    .collect()
}

/// 3,000 events over three days in one loaded file, and every derived table as its recompute
/// view says (what the loader of that release left). Sessions are 7 events 86 s apart: two of
/// them run over a midnight.
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

/// From V11 on, events need their days' partitions before they can be inserted.
const OLD_DAYS: &str = "SELECT streaming.ensure_event_partitions(
    ARRAY['2026-11-01', '2026-11-02', '2026-11-03']::date[]);";

/// Counts and a digest of every row (events without the columns later migrations add, such as
/// sql/V17's `search_query`, NULL for old rows) of the tables an upgrade rewrites or must leave alone, and
/// the sessions' totals (a split moves events and revenue between rows, never changes the sum).
const DIGEST: &str = "SELECT
    (SELECT count(*) || ':' || md5(string_agg((to_jsonb(e) - 'search_query')::text, ',' \
       ORDER BY event_id)) FROM streaming.events e),
    (SELECT count(*) || ':' || md5(string_agg(p::text, ',' ORDER BY event_id)) FROM streaming.purchases p),
    (SELECT count(*) || ':' || md5(string_agg(s::text, ',' ORDER BY hour, event_type, product_category))
       FROM streaming.event_stats_hourly s),
    (SELECT sum(events) || ':' || sum(revenue) || ':' || count(DISTINCT session_id) FROM streaming.sessions),
    (SELECT count(*)::text FROM streaming.hourly_users)";

async fn digest(pg: &Client) -> Vec<String> {
    let r = pg.query_one(DIGEST, &[]).await.unwrap();
    (0..5).map(|i| r.get::<_, String>(i)).collect()
}

const SESSIONS: &str = "SELECT count(*) FROM streaming.sessions";
const SPANNING: &str = "SELECT count(*) FROM streaming.sessions \
    WHERE (started_at AT TIME ZONE 'UTC')::date <> (ended_at AT TIME ZONE 'UTC')::date";

async fn relkind(pg: &Client, table: &str) -> u8 {
    let sql = format!("SELECT relkind::\"char\" FROM pg_class WHERE oid = '{table}'::regclass");
    pg.query_one(&sql, &[]).await.unwrap().get::<_, i8>(0) as u8
}

/// A database built by the migrations through `last`, holding the old data.
async fn old_database(last: u32) -> (TestDb, Client) {
    let db = TestDb::new().await;
    let mut pg = db.client().await;
    refinery::Runner::new(&migrations_through(last))
        .set_migration_table_name("shopstream_schema_history")
        .run_async(&mut pg)
        .await
        .unwrap();
    if last >= 11 {
        pg.batch_execute(OLD_DAYS).await.unwrap();
    }
    pg.batch_execute(OLD_DATA).await.unwrap();
    (db, pg)
}

/// Builds a database with the migrations through `last` and the old data, starts the watcher
/// once (it migrates) and checks what every upgrade must keep.
async fn upgrade_from(last: u32) {
    let (db, pg) = old_database(last).await;
    let before = digest(&pg).await;
    assert!(before[0].starts_with("3000:"), "{before:?}");
    assert!(before[1].starts_with("300:"), "{before:?}");
    let sessions = count(&pg, SESSIONS).await;
    assert_eq!(
        count(&pg, SPANNING).await,
        2,
        "two old sessions run over a midnight"
    );

    // The next start migrates; an empty landing directory loads nothing.
    let landing = tempfile::tempdir().unwrap();
    watch_once(landing.path(), &db, None);
    for table in [
        "streaming.events",
        "streaming.purchases",
        "streaming.sessions",
    ] {
        assert_eq!(
            relkind(&pg, table).await,
            b'p',
            "{table} is partitioned now"
        );
    }
    assert_eq!(
        digest(&pg).await,
        before,
        "every row kept, every total unchanged"
    );
    let days: Vec<String> = partitions(&pg, "events")
        .await
        .into_iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(
        days,
        ["events_20261101", "events_20261102", "events_20261103"]
    );
    assert_eq!(partitions(&pg, "purchases").await.len(), 3);
    assert_eq!(partitions(&pg, "sessions").await.len(), 3);
    assert_eq!(
        count(&pg, SESSIONS).await,
        sessions + 2,
        "a session over a midnight is one row per day now"
    );
    assert_eq!(count(&pg, SPANNING).await, 0);
    assert_eq!(
        stats_mismatches(&pg).await,
        0,
        "the recompute views work over the new tables"
    );

    for (table, recompute) in [
        (
            "(SELECT session_id, user_id, started_at, ended_at, duration, events, views, carts, \
             removes, purchases, revenue, reached_cart, purchased, session_day \
             FROM streaming.sessions) s",
            "streaming.sessions_recompute",
        ),
        (
            "(SELECT product_id, product_category, views, add_to_cart, removes, purchases, \
             units_sold, revenue FROM streaming.product_counts) p",
            "streaming.product_counts_recompute",
        ),
        // The KPI rollups (V15), filled from what the old release had, the split counted.
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
            "SELECT count(*) FROM ((SELECT * FROM {table} EXCEPT SELECT * FROM {recompute}) \
             UNION ALL (SELECT * FROM {recompute} EXCEPT SELECT * FROM {table})) d"
        );
        assert_eq!(
            count(&pg, &diff).await,
            0,
            "{table} after the upgrade from V{last}"
        );
    }
    assert_eq!(
        count(&pg, "SELECT users FROM streaming.user_totals").await,
        50,
        "users u0..u49 of the old data"
    );

    // Old events are still known: one of them again is a duplicate, a new one loads, and its
    // session merges into the new table.
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
    assert_eq!(count(&pg, SESSIONS).await, sessions + 3);
    db.cleanup().await;
}

#[tokio::test]
async fn a_database_of_the_release_before_partitions_is_partitioned_in_place() {
    upgrade_from(9).await;
}

#[tokio::test]
async fn a_database_of_the_release_before_day_sessions_splits_its_sessions_in_place() {
    upgrade_from(15).await;
}

/// A session over a midnight can only be split by its events: when retention dropped its first
/// day, V16 keeps it whole under that day; one whose days are all kept is split.
#[tokio::test]
async fn a_session_over_a_midnight_whose_first_day_was_dropped_stays_whole() {
    let (db, pg) = old_database(15).await;
    pg.batch_execute("SELECT streaming.drop_event_days_before('2026-11-02T00:00:00Z')")
        .await
        .unwrap();

    let landing = tempfile::tempdir().unwrap();
    watch_once(landing.path(), &db, None);
    let days = |id: &'static str| {
        let pg = &pg;
        async move {
            pg.query(
                "SELECT session_day::text, events FROM streaming.sessions \
                 WHERE session_id = $1 ORDER BY session_day",
                &[&id],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
            .collect::<Vec<_>>()
        }
    };
    // s143: events 1001..1007, four on Nov 1 (dropped) and three on Nov 2.
    assert_eq!(days("s143").await, [("2026-11-01".to_string(), 7)]);
    // s287: events 2009..2015, one on Nov 2 and six on Nov 3, all kept.
    assert_eq!(
        days("s287").await,
        [("2026-11-02".to_string(), 1), ("2026-11-03".to_string(), 6)]
    );
    db.cleanup().await;
}
