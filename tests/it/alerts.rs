//! Data-quality alerts: each kind raised by a crafted file, raised once while the condition
//! lasts (a second offending file adds no row), resolved by a later file; shown on /metrics,
//! the dashboard and /api/alerts.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tokio_postgres::Client;

use crate::support::*;

const HEADER: &str = "event_id,event_time,user_id,session_id,event_type,product_id,\
    product_category,product_price,quantity,total_amount,device,country";

/// A view of `product` at `price`, at `time` (RFC 3339).
fn view(time: &str, product: &str, price: &str) -> String {
    let id = uuid::Uuid::new_v4();
    format!("{id},{time},u1,s-{id},view,{product},toys,{price},1,,mobile,DE")
}

/// Writes `rows` as a native CSV file `name` into `landing`.
fn drop_file(landing: &Path, name: &str, rows: &[String]) {
    let text = format!("{HEADER}\n{}\n", rows.join("\n"));
    let tmp = landing.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(tmp, landing.join(name)).unwrap();
}

/// `watch --once` on what was dropped; returns its stderr (the log).
fn load(landing: &Path, db: &TestDb, args: &[&str]) -> String {
    let out = watch_once_with(landing, db, None, args);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// (open, resolved) alerts of `kind` for `subject`.
async fn alerts(pg: &Client, kind: &str, subject: &str) -> (i64, i64) {
    let r = pg
        .query_one(
            "SELECT count(*) FILTER (WHERE resolved_at IS NULL), \
                    count(*) FILTER (WHERE resolved_at IS NOT NULL) \
             FROM streaming.alerts WHERE kind = $1 AND subject = $2",
            &[&kind, &subject],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

async fn file_id(pg: &Client, name: &str) -> i64 {
    pg.query_one(
        "SELECT file_id FROM streaming.ingest_files WHERE file_name = $1",
        &[&name],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_product_priced_100x_raises_one_price_outlier_shown_everywhere_until_resolved() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let t = "2026-11-02T10:00:00Z";
    for i in 0..3 {
        let rows: Vec<String> = (0..5)
            .map(|_| view(t, "p-usual", "10.00"))
            .chain([view(t, "p-other", "5.00")])
            .collect();
        drop_file(landing.path(), &format!("usual-{i}.csv"), &rows);
    }
    load(landing.path(), &db, &[]);
    let pg = db.client().await;
    assert_eq!(count(&pg, "SELECT count(*) FROM streaming.alerts").await, 0);

    drop_file(
        landing.path(),
        "hundredfold.csv",
        &[view(t, "p-usual", "1000.00"), view(t, "p-other", "5.10")],
    );
    let log = load(landing.path(), &db, &[]);
    assert!(log.contains("Data-quality alert raised."), "{log}");
    let raised = pg
        .query_one(
            "SELECT observed::text, baseline::text, expected_low::text, expected_high::text, \
                    file_id, parameters->>'factor' FROM streaming.alerts \
             WHERE kind = 'price_outlier' AND subject = 'p-usual'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(raised.get::<_, String>(0), "1000");
    assert_eq!(raised.get::<_, String>(1), "10");
    assert_eq!(raised.get::<_, String>(2), "1");
    assert_eq!(raised.get::<_, String>(3), "100");
    assert_eq!(
        raised.get::<_, i64>(4),
        file_id(&pg, "hundredfold.csv").await
    );
    assert_eq!(raised.get::<_, String>(5), "10.0");
    assert_eq!(alerts(&pg, "price_outlier", "p-other").await, (0, 0));

    // Shown: the gauge, the dashboard's panel, the API.
    let addr = free_addr();
    let child = serve_watcher(landing.path(), &db, &addr, &[], &[]);
    let shown = wait_for(Duration::from_secs(60), || async {
        http_get(&addr, "/metrics")
            .is_ok_and(|(_, m)| m.contains("shopstream_alerts_open{kind=\"price_outlier\"} 1"))
    })
    .await;
    assert!(shown, "the gauge counts the open alert");
    let (_, page) = http_get(&addr, "/").unwrap();
    assert!(
        page.contains("id=\"alert-0-kind\">price_outlier<"),
        "{page}"
    );
    assert!(page.contains("id=\"alert-0-subject\">p-usual<"));
    let (status, body) = http_get(&addr, "/api/alerts?open=true").unwrap();
    assert_eq!(status, 200);
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{body}");
    assert_eq!(list[0]["subject"], "p-usual");
    assert_eq!(list[0]["observed"], "1000");
    terminate(child);

    // Still 100x: no second row. Back to its price: resolved by that file.
    drop_file(landing.path(), "still.csv", &[view(t, "p-usual", "990.00")]);
    load(landing.path(), &db, &[]);
    assert_eq!(alerts(&pg, "price_outlier", "p-usual").await, (1, 0));
    drop_file(landing.path(), "back.csv", &[view(t, "p-usual", "10.50")]);
    load(landing.path(), &db, &[]);
    assert_eq!(alerts(&pg, "price_outlier", "p-usual").await, (0, 1));
    let resolved_by: i64 = pg
        .query_one(
            "SELECT resolved_by FROM streaming.alerts WHERE subject = 'p-usual'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(resolved_by, file_id(&pg, "back.csv").await);
    db.cleanup().await;
}

/// `n` views in the hour starting at `hour` (RFC 3339 without the minutes).
fn hour_of_views(day: &str, hour: u32, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| view(&format!("{day}T{hour:02}:{:02}:00Z", i % 60), "p", "1.00"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_hour_far_above_or_below_its_usual_volume_raises_once_and_resolves() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let flags = ["--alert-volume-min-events", "10", "--workers", "1"];
    // Seven days before 2026-11-08 with 20 events in each of the hours 10, 11 and 12.
    let mut rows = Vec::new();
    for day in 1..=7 {
        for hour in 10..=12 {
            rows.extend(hour_of_views(&format!("2026-11-0{day}"), hour, 20));
        }
    }
    drop_file(landing.path(), "baseline.csv", &rows);
    load(landing.path(), &db, &flags);
    let pg = db.client().await;
    assert_eq!(count(&pg, "SELECT count(*) FROM streaming.alerts").await, 0);

    let day = "2026-11-08";
    let spike = "2026-11-08T10:00Z";
    drop_file(landing.path(), "spike.csv", &hour_of_views(day, 10, 100));
    load(landing.path(), &db, &flags);
    assert_eq!(alerts(&pg, "volume_spike", spike).await, (1, 0));
    let r = pg
        .query_one(
            "SELECT observed::text, baseline::text, expected_high::text FROM streaming.alerts \
             WHERE kind = 'volume_spike'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            r.get::<_, String>(0),
            r.get::<_, String>(1),
            r.get::<_, String>(2)
        ),
        ("100".into(), "20".into(), "60".into())
    );
    drop_file(
        landing.path(),
        "spike-more.csv",
        &hour_of_views(day, 10, 30),
    );
    load(landing.path(), &db, &flags);
    assert_eq!(
        alerts(&pg, "volume_spike", spike).await,
        (1, 0),
        "raised once"
    );
    // The next hour is usual: the spike has ended.
    drop_file(landing.path(), "usual-11.csv", &hour_of_views(day, 11, 20));
    load(landing.path(), &db, &flags);
    assert_eq!(alerts(&pg, "volume_spike", spike).await, (0, 1));

    // Events of 13:00 arrive with none of 12:00: hour 12 is taken as complete, and empty.
    let drop = "2026-11-08T12:00Z";
    drop_file(landing.path(), "gap.csv", &hour_of_views(day, 13, 2));
    load(landing.path(), &db, &flags);
    assert_eq!(alerts(&pg, "volume_drop", drop).await, (1, 0));
    let observed: String = pg
        .query_one(
            "SELECT observed::text FROM streaming.alerts WHERE kind = 'volume_drop'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(observed, "0");
    drop_file(landing.path(), "gap-more.csv", &hour_of_views(day, 13, 2));
    load(landing.path(), &db, &flags);
    assert_eq!(
        alerts(&pg, "volume_drop", drop).await,
        (1, 0),
        "raised once"
    );
    // Hour 12's events arrive late, with one more of 13:00: the drop has ended.
    let mut late = hour_of_views(day, 12, 20);
    late.extend(hour_of_views(day, 13, 1));
    drop_file(landing.path(), "late-12.csv", &late);
    load(landing.path(), &db, &flags);
    assert_eq!(alerts(&pg, "volume_drop", drop).await, (0, 1));
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.alerts").await,
        2,
        "nothing else raised"
    );
    db.cleanup().await;
}

/// `n` rows at a fixed time, `bad` of them with an unknown event type (rejected).
fn rows_with_rejects(n: usize, bad: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let row = view("2026-11-03T09:00:00Z", &format!("p{}", i % 7), "3.00");
            if i < bad {
                row.replace(",view,", ",bogus,")
            } else {
                row
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_far_above_its_sources_reject_or_duplicate_share_raises_once_and_resolves() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    for i in 0..3 {
        drop_file(
            landing.path(),
            &format!("clean-{i}.csv"),
            &rows_with_rejects(200, 0),
        );
    }
    load(landing.path(), &db, &[]);
    let pg = db.client().await;

    // 20% rejected rows against 0% in the files before.
    drop_file(landing.path(), "bad-1.csv", &rows_with_rejects(200, 40));
    load(landing.path(), &db, &[]);
    assert_eq!(alerts(&pg, "reject_rate", "native").await, (1, 0));
    let observed: String = pg
        .query_one(
            "SELECT observed::text FROM streaming.alerts WHERE kind = 'reject_rate'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(observed, "0.200000");
    drop_file(landing.path(), "bad-2.csv", &rows_with_rejects(200, 40));
    load(landing.path(), &db, &[]);
    assert_eq!(
        alerts(&pg, "reject_rate", "native").await,
        (1, 0),
        "raised once"
    );
    drop_file(landing.path(), "clean-3.csv", &rows_with_rejects(200, 0));
    load(landing.path(), &db, &[]);
    assert_eq!(alerts(&pg, "reject_rate", "native").await, (0, 1));

    // Half of a file's rows repeat events loaded before (a re-export).
    let again = std::fs::read_to_string(landing.path().join("processed/clean-3.csv")).unwrap();
    let repeats: Vec<String> = again.lines().skip(1).take(100).map(String::from).collect();
    let mut rows = repeats.clone();
    rows.extend(rows_with_rejects(100, 0));
    drop_file(landing.path(), "reexport-1.csv", &rows);
    load(landing.path(), &db, &[]);
    assert_eq!(alerts(&pg, "duplicate_rate", "native").await, (1, 0));
    let mut rows = repeats;
    rows.extend(rows_with_rejects(100, 0));
    drop_file(landing.path(), "reexport-2.csv", &rows);
    load(landing.path(), &db, &[]);
    assert_eq!(
        alerts(&pg, "duplicate_rate", "native").await,
        (1, 0),
        "raised once"
    );
    drop_file(landing.path(), "clean-4.csv", &rows_with_rejects(200, 0));
    load(landing.path(), &db, &[]);
    assert_eq!(alerts(&pg, "duplicate_rate", "native").await, (0, 1));
    assert_eq!(alerts(&pg, "reject_rate", "native").await, (0, 1));
    db.cleanup().await;
}

/// Writes inventory updates (time, product, stock_change, current_stock) in warehouse wh-a.
fn drop_inventory(landing: &Path, name: &str, rows: &[(&str, &str, i32, i32)]) {
    let rows: Vec<String> = rows
        .iter()
        .map(|(time, product, change, stock)| {
            let id = uuid::Uuid::new_v4();
            format!("{id},{time},{product},Widget,wh-a,{change},{stock}")
        })
        .collect();
    let text = format!(
        "update_id,event_time,product_id,product_name,warehouse,stock_change,current_stock\n{}\n",
        rows.join("\n")
    );
    let tmp = landing.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(tmp, landing.join(name)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn stock_below_the_threshold_raises_one_low_stock_alert_until_a_restock() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    drop_inventory(
        landing.path(),
        "inv-1.csv",
        &[
            ("2026-11-01T10:00:00Z", "p1", -5, 20),
            ("2026-11-01T11:00:00Z", "p1", -15, 5),
            ("2026-11-01T11:00:00Z", "p2", -1, 50),
        ],
    );
    let log = load(landing.path(), &db, &[]);
    let pg = db.client().await;
    assert_eq!(alerts(&pg, "low_stock", "p1@wh-a").await, (1, 0), "{log}");
    assert!(log.contains("Data-quality alert raised.") && log.contains("low_stock"));
    assert_eq!(alerts(&pg, "low_stock", "p2@wh-a").await, (0, 0));
    let raised = pg
        .query_one(
            "SELECT observed::text, expected_low::text, parameters->>'threshold' \
             FROM streaming.alerts WHERE kind = 'low_stock'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(raised.get::<_, String>(0), "5");
    assert_eq!(raised.get::<_, String>(1), "10");
    assert_eq!(raised.get::<_, String>(2), "10");

    // Still low: the open alert stays the only one.
    drop_inventory(
        landing.path(),
        "inv-2.csv",
        &[("2026-11-01T12:00:00Z", "p1", -2, 3)],
    );
    load(landing.path(), &db, &[]);
    assert_eq!(alerts(&pg, "low_stock", "p1@wh-a").await, (1, 0));

    // The API shows the level and the open alert; an unknown product is a 404 naming it.
    let addr = free_addr();
    let child = serve_watcher(landing.path(), &db, &addr, &[], &[]);
    let up = wait_for(Duration::from_secs(60), || async {
        http_get(&addr, "/api/stock/p1").is_ok_and(|(status, _)| status == 200)
    })
    .await;
    assert!(up, "/api/stock answers");
    let (_, body) = http_get(&addr, "/api/stock/p1").unwrap();
    let stock: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stock["product_id"], "p1");
    assert_eq!(stock["warehouses"][0]["warehouse"], "wh-a");
    assert_eq!(stock["warehouses"][0]["current_stock"], 3);
    assert_eq!(stock["warehouses"][0]["low_stock"], true);
    let (status, body) = http_get(&addr, "/api/stock/nope").unwrap();
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("product_id"), "{body}");
    terminate(child);

    // A restock resolves it, by that file.
    drop_inventory(
        landing.path(),
        "inv-3.csv",
        &[("2026-11-01T13:00:00Z", "p1", 40, 43)],
    );
    load(landing.path(), &db, &[]);
    assert_eq!(alerts(&pg, "low_stock", "p1@wh-a").await, (0, 1));
    let resolved_by: i64 = pg
        .query_one(
            "SELECT resolved_by FROM streaming.alerts WHERE kind = 'low_stock'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(resolved_by, file_id(&pg, "inv-3.csv").await);
    db.cleanup().await;
}
