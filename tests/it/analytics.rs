//! streaming.sessions, streaming.product_metrics and streaming.kpis always equal a recompute
//! from streaming.events, whatever order files arrive in and however often events repeat.

use std::path::Path;
use std::process::Command;

use tokio_postgres::Client;

use crate::support::*;

const SESSIONS: &str =
    "SELECT session_id, user_id, started_at, ended_at, duration, events, views, \
    carts, removes, purchases, revenue, reached_cart, purchased, session_day FROM streaming.sessions";

const SESSIONS_RECOMPUTE: &str = "SELECT * FROM streaming.sessions_recompute";

const PRODUCTS: &str =
    "SELECT product_id, product_category, views, add_to_cart, removes, purchases, \
    units_sold, revenue, cart_rate, conversion_rate FROM streaming.product_metrics";

/// The rates as `product_metrics` computes them, over the counts' recompute view.
const PRODUCTS_RECOMPUTE: &str = "SELECT *, round(add_to_cart::numeric / nullif(views, 0), 4), \
    round(purchases::numeric / nullif(views, 0), 4) FROM streaming.product_counts_recompute";

const HOURLY_USERS: &str = "SELECT hour, user_id FROM streaming.hourly_users";
const HOURLY_USERS_RECOMPUTE: &str = "SELECT * FROM streaming.hourly_users_recompute";

/// The KPI rollups (sql/V15), kept by triggers as sessions and hourly users change.
const ROLLUPS: [(&str, &str, &str); 4] = [
    (
        "session_stats_hourly",
        "SELECT * FROM streaming.session_stats_hourly",
        "SELECT * FROM streaming.session_stats_hourly_recompute",
    ),
    (
        "hourly_user_counts",
        "SELECT * FROM streaming.hourly_user_counts",
        "SELECT * FROM streaming.hourly_user_counts_recompute",
    ),
    (
        "users",
        "SELECT * FROM streaming.users",
        "SELECT * FROM streaming.users_recompute",
    ),
    (
        "user_totals",
        "SELECT users FROM streaming.user_totals",
        "SELECT count(*) FROM streaming.users_recompute",
    ),
];

const KPIS: &str = "SELECT hour, views, carts, purchases, revenue, sessions, converted_sessions, \
    conversion_rate, cart_abandonment_rate, average_order_value, active_users FROM streaming.kpis";

/// Every KPI, per hour (UTC) and for all time (hour NULL), straight from the events. A session
/// ends at midnight UTC (sql/V16): its events of one UTC day.
const KPIS_RECOMPUTE: &str = "
WITH sess AS (
    SELECT date_trunc('hour', min(event_time), 'UTC') AS hour,
           bool_or(event_type = 'add_to_cart') AS carted, bool_or(event_type = 'purchase') AS bought
    FROM streaming.events GROUP BY session_id, (event_time AT TIME ZONE 'UTC')::date
), hours AS (
    SELECT DISTINCT date_trunc('hour', event_time, 'UTC') AS hour FROM streaming.events
    UNION ALL SELECT NULL
)
SELECT h.hour, ev.views, ev.carts, ev.purchases, ev.revenue, se.sessions, se.converted,
       round(se.converted::numeric / nullif(se.sessions, 0), 4),
       round(se.abandoned::numeric / nullif(se.carted, 0), 4),
       round(ev.revenue / nullif(ev.purchases, 0), 2),
       ev.users
FROM hours h
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE event_type = 'view') AS views,
           count(*) FILTER (WHERE event_type = 'add_to_cart') AS carts,
           count(*) FILTER (WHERE event_type = 'purchase') AS purchases,
           coalesce(sum(total_amount), 0) AS revenue,
           count(DISTINCT user_id) AS users
    FROM streaming.events e
    WHERE h.hour IS NULL OR date_trunc('hour', e.event_time, 'UTC') = h.hour) ev
CROSS JOIN LATERAL (
    SELECT count(*) AS sessions, count(*) FILTER (WHERE bought) AS converted,
           count(*) FILTER (WHERE carted) AS carted,
           count(*) FILTER (WHERE carted AND NOT bought) AS abandoned
    FROM sess s WHERE h.hour IS NULL OR s.hour = h.hour) se";

/// Rows in `a` not in `b` plus rows in `b` not in `a`; prints a few of them when any differ.
pub(crate) async fn differences(pg: &Client, what: &str, a: &str, b: &str) -> i64 {
    let diff = format!("(({a}) EXCEPT ({b})) UNION ALL (({b}) EXCEPT ({a}))");
    let n = count(pg, &format!("SELECT count(*) FROM ({diff}) d")).await;
    if n > 0 {
        let rows = pg
            .query(&format!("SELECT d::text FROM ({diff}) d LIMIT 6"), &[])
            .await
            .unwrap();
        for r in rows {
            eprintln!("{what} differs: {}", r.get::<_, String>(0));
        }
    }
    n
}

/// Every analytics table and view equals its recompute; returns the number of differing rows.
pub(crate) async fn analytics_mismatches(pg: &Client) -> i64 {
    differences(pg, "sessions", SESSIONS, SESSIONS_RECOMPUTE).await
        + differences(pg, "product_metrics", PRODUCTS, PRODUCTS_RECOMPUTE).await
        + differences(pg, "hourly_users", HOURLY_USERS, HOURLY_USERS_RECOMPUTE).await
        + differences(pg, "kpis", KPIS, KPIS_RECOMPUTE).await
        + rollup_mismatches(pg).await
}

async fn rollup_mismatches(pg: &Client) -> i64 {
    let mut n = 0;
    for (what, table, recompute) in ROLLUPS {
        n += differences(pg, what, table, recompute).await;
    }
    n
}

fn move_in(source: &Path, landing: &Path, names: &[&str]) {
    for name in names {
        std::fs::rename(source.join(name), landing.join(name)).unwrap();
    }
}

fn gen_name(seed: u64, index: usize) -> String {
    format!("events-{seed:016x}-{index:05}.csv")
}

#[tokio::test(flavor = "multi_thread")]
async fn analytics_equal_a_recompute_after_out_of_order_duplicate_and_overlapping_drops() {
    let db = TestDb::new().await;
    let source = tempfile::tempdir().unwrap();
    let landing = tempfile::tempdir().unwrap();
    let seed = 41;
    generate(
        source.path(),
        6,
        400,
        seed,
        &["--duplicate-fraction", "0.03", "--late-fraction", "0.1"],
    );
    let name = |i| gen_name(seed, i);

    // Out of order: the last files first, then the first and a middle one, then the rest.
    let waves: [&[usize]; 3] = [&[6, 5], &[1, 3], &[4, 2]];
    let mut pg = None;
    for wave in waves {
        let names: Vec<String> = wave.iter().map(|&i| name(i)).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        move_in(source.path(), landing.path(), &names);
        watch_once(landing.path(), &db, None);
        let client = db.client().await;
        assert_eq!(analytics_mismatches(&client).await, 0, "after {wave:?}");
        pg = Some(client);
    }
    let pg = pg.unwrap();
    let events = count(&pg, "SELECT count(*) FROM streaming.events").await;
    assert!(
        count(
            &pg,
            "SELECT count(*) FROM (SELECT session_id FROM streaming.events \
             GROUP BY 1 HAVING count(DISTINCT file_id) > 1) s"
        )
        .await
            > 0,
        "some sessions were split across files and merged"
    );
    let before = snapshot(&pg).await;

    // The same bytes again under two names, and a file of already loaded events: no change.
    let processed = landing.path().join("processed");
    std::fs::copy(processed.join(name(3)), landing.path().join(name(3))).unwrap();
    std::fs::copy(processed.join(name(5)), landing.path().join("again.csv")).unwrap();
    let old = csv_rows(&processed);
    let mut text = shopstream::schema::header_line() + "\n";
    for (_, _, f) in old.iter().step_by(7) {
        text += &(f.join(",") + "\n");
    }
    std::fs::write(landing.path().join("overlap-only.csv"), &text).unwrap();
    watch_once(landing.path(), &db, None);
    assert_eq!(snapshot(&pg).await, before, "re-delivery changed analytics");
    assert_eq!(analytics_mismatches(&pg).await, 0);

    // Overlapping ids plus new late events of an existing session: they merge, once.
    let fresh_dir = tempfile::tempdir().unwrap();
    generate(fresh_dir.path(), 1, 300, 42, &["--late-fraction", "0.3"]);
    let fresh = csv_rows(fresh_dir.path());
    let (session, user) = {
        let r = pg
            .query_one(
                "SELECT session_id, user_id, started_at FROM streaming.sessions \
                 ORDER BY events DESC, session_id LIMIT 1",
                &[],
            )
            .await
            .unwrap();
        (r.get::<_, String>(0), r.get::<_, String>(1))
    };
    let mut text = shopstream::schema::header_line() + "\n";
    for (_, _, f) in old.iter().step_by(5).chain(fresh.iter()) {
        text += &(f.join(",") + "\n");
    }
    // Two new events of that session, hours before it started (a late arrival).
    for (i, kind) in ["view", "add_to_cart"].iter().enumerate() {
        text += &format!(
            "{},2026-10-29T0{i}:00:00.000000Z,{user},{session},{kind},late-product,,1.00,1,,mobile,DE\n",
            uuid::Uuid::new_v4()
        );
    }
    std::fs::write(landing.path().join("overlap-and-late.csv"), &text).unwrap();
    watch_once(landing.path(), &db, None);
    assert_eq!(analytics_mismatches(&pg).await, 0);
    let after = count(&pg, "SELECT count(*) FROM streaming.events").await;
    assert_eq!(after, events + fresh.len() as i64 + 2);
    let r = pg
        .query_one(
            "SELECT to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24'), carts > 0 \
             FROM streaming.sessions WHERE session_id = $1 ORDER BY session_day LIMIT 1",
            &[&session],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, String>(0), "2026-10-29 00");
    assert!(r.get::<_, bool>(1));
    let totals = pg
        .query_one(
            "SELECT views, sessions FROM streaming.kpis WHERE hour IS NULL",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        totals.get::<_, i64>(0),
        count(
            &pg,
            "SELECT count(*) FROM streaming.events WHERE event_type = 'view'"
        )
        .await
    );
    assert_eq!(
        totals.get::<_, i64>(1),
        count(
            &pg,
            "SELECT count(DISTINCT (session_id, (event_time AT TIME ZONE 'UTC')::date)) \
             FROM streaming.events"
        )
        .await
    );
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_watchers_loading_overlapping_files_at_once_count_each_event_once() {
    let db = TestDb::new().await;
    let source = tempfile::tempdir().unwrap();
    generate(source.path(), 2, 1_500, 51, &[]);
    let rows = csv_rows(source.path());
    // Two landing directories whose files share a third of their events.
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let third = rows.len() / 3;
    let parts = [&rows[..2 * third], &rows[third..]];
    for (dir, part) in dirs.iter().zip(parts) {
        let mut text = shopstream::schema::header_line() + "\n";
        for (_, _, f) in part {
            text += &(f.join(",") + "\n");
        }
        std::fs::write(dir.path().join("part.csv"), text).unwrap();
    }
    let children: Vec<_> = dirs
        .iter()
        .map(|d| {
            Command::new(bin("watch"))
                .arg("--once")
                .arg("--landing-dir")
                .arg(d.path())
                .args(["--settle-ms", "0", "--http-addr", "off"])
                .env("DATABASE_URL", &db.url)
                .env("KAFKA_BROKERS", "")
                .env("RUST_LOG", "warn")
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        assert!(child.wait_with_output().unwrap().status.success());
    }
    let pg = db.client().await;
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.events").await,
        rows.len() as i64
    );
    assert_eq!(
        count(&pg, "SELECT sum(events)::bigint FROM streaming.sessions").await,
        rows.len() as i64
    );
    assert_eq!(analytics_mismatches(&pg).await, 0);
    db.cleanup().await;
}

/// What a re-delivery must leave unchanged: every analytics row, as text.
async fn snapshot(pg: &Client) -> (i64, String, String, String) {
    let digest = |sql: &str| {
        format!(
            "SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM ({sql}) t"
        )
    };
    let text = |r: tokio_postgres::Row| r.get::<_, String>(0);
    (
        count(pg, "SELECT count(*) FROM streaming.events").await,
        text(pg.query_one(&digest(SESSIONS), &[]).await.unwrap()),
        text(pg.query_one(&digest(PRODUCTS), &[]).await.unwrap()),
        text(pg.query_one(&digest(KPIS), &[]).await.unwrap()),
    )
}

/// Totals of the ledger (per-file attribution of duplicates depends on which file commits
/// first; the totals do not) and a digest of every event and hourly stat.
async fn totals(pg: &Client) -> (String, String, String) {
    (
        one_text(
            pg,
            "SELECT concat_ws(' ', count(*) FILTER (WHERE status = 'loaded'), count(*), \
              sum(rows_total), sum(rows_loaded), sum(rows_rejected), sum(rows_duplicate)) \
              FROM streaming.ingest_files",
        )
        .await,
        one_text(
            pg,
            "SELECT md5(string_agg(concat_ws(',', event_id, event_time, user_id, session_id, \
              event_type, product_id, product_category, product_price, quantity, total_amount, \
              device, country), '|' ORDER BY event_id)) FROM streaming.events",
        )
        .await,
        one_text(
            pg,
            "SELECT md5(string_agg(concat_ws(',', hour, event_type, product_category, \
              event_count, quantity, revenue), '|' ORDER BY hour, event_type, product_category)) \
              FROM streaming.event_stats_hourly",
        )
        .await,
    )
}

async fn one_text(pg: &Client, sql: &str) -> String {
    pg.query_one(sql, &[]).await.unwrap().get(0)
}

/// Four workers of one watcher load files whose event ids overlap, all at once: the result is
/// the one a single worker gets, and every derived table equals its recompute.
#[tokio::test(flavor = "multi_thread")]
async fn parallel_workers_on_overlapping_files_end_as_one_worker_does() {
    let source = tempfile::tempdir().unwrap();
    generate(
        source.path(),
        12,
        500,
        43,
        &["--duplicate-fraction", "0.03", "--invalid-fraction", "0.01"],
    );
    // Each overlap file repeats the second half of one file and the first half of the next.
    let mut names: Vec<_> = std::fs::read_dir(source.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let lines: Vec<Vec<String>> = names
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.lines().skip(1).map(str::to_string).collect()
        })
        .collect();
    for (i, pair) in lines.windows(2).enumerate() {
        let mut text = shopstream::schema::header_line() + "\n";
        for line in pair[0][250..].iter().chain(&pair[1][..250]) {
            text += line;
            text += "\n";
        }
        std::fs::write(source.path().join(format!("overlap-{i:02}.csv")), text).unwrap();
    }

    let mut results = Vec::new();
    for workers in ["1", "4"] {
        let db = TestDb::new().await;
        let landing = tempfile::tempdir().unwrap();
        for path in std::fs::read_dir(source.path()).unwrap() {
            let path = path.unwrap().path();
            std::fs::copy(&path, landing.path().join(path.file_name().unwrap())).unwrap();
        }
        let out = watch_once_with(landing.path(), &db, None, &["--workers", workers]);
        let log = String::from_utf8_lossy(&out.stderr);
        eprintln!(
            "{workers} worker(s): {} retries after concurrent loads of the same ids",
            log.matches("another watcher loaded some of these event ids")
                .count()
        );
        let pg = db.client().await;
        assert_eq!(csv_count(landing.path()), 0, "every file moved on");
        assert_eq!(stats_mismatches(&pg).await, 0);
        assert_eq!(analytics_mismatches(&pg).await, 0);
        results.push((totals(&pg).await, snapshot(&pg).await));
    }
    let loaded_files = results[0].0 .0.split(' ').next().unwrap().to_string();
    assert_eq!(loaded_files, "23", "all 23 files loaded with one worker");
    assert_eq!(results[0], results[1], "four workers end where one does");
}

/// A file with more distinct keys than the watcher keeps in memory (100,000) merges its sessions
/// and user-hours batch by batch, and its product and hour sums through temporary tables once
/// those alone are many; the tables still equal the recompute: where a second such file merges
/// into the first one's products and users, and where a third file's sessions and user-hours
/// span its batches (a COPY of a batch refused by the keys the batch before wrote) and its
/// 150,000-product catalogue sends products to the temporary tables.
#[tokio::test(flavor = "multi_thread")]
async fn files_too_large_to_sum_in_memory_still_equal_the_recompute() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let short_sessions = ["--events-per-session", "1", "--users", "30000"];
    generate(landing.path(), 1, 70_000, 61, &short_sessions);
    watch_once(landing.path(), &db, None);
    let other = tempfile::tempdir().unwrap();
    generate(other.path(), 1, 70_000, 62, &short_sessions);
    for f in std::fs::read_dir(other.path()).unwrap() {
        let f = f.unwrap().path();
        std::fs::rename(
            &f,
            landing.path().join(format!(
                "second-{}",
                f.file_name().unwrap().to_string_lossy()
            )),
        )
        .unwrap();
    }
    watch_once(landing.path(), &db, None);
    let pg = db.client().await;
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.events").await,
        140_000
    );
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.sessions").await,
        140_000
    );
    assert_eq!(analytics_mismatches(&pg).await, 0);
    assert_eq!(stats_mismatches(&pg).await, 0);

    let third = tempfile::tempdir().unwrap();
    let long_sessions = [
        "--events-per-session",
        "4",
        "--users",
        "30000",
        "--products",
        "150000",
    ];
    generate(third.path(), 1, 250_000, 63, &long_sessions);
    let before = count(&pg, "SELECT count(*) FROM streaming.sessions").await;
    for f in std::fs::read_dir(third.path()).unwrap() {
        let f = f.unwrap().path();
        let name = format!("third-{}", f.file_name().unwrap().to_string_lossy());
        std::fs::rename(&f, landing.path().join(name)).unwrap();
    }
    watch_once(landing.path(), &db, None);
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.events").await,
        390_000
    );
    let sessions = count(&pg, "SELECT count(*) FROM streaming.sessions").await - before;
    assert!(
        (50_000..75_000).contains(&sessions),
        "sessions of about 4 events: {sessions}"
    );
    assert!(
        count(&pg, "SELECT count(*) FROM streaming.product_counts").await > 100_000,
        "enough products to spill them"
    );
    assert_eq!(analytics_mismatches(&pg).await, 0);
    assert_eq!(stats_mismatches(&pg).await, 0);
    db.cleanup().await;
}
