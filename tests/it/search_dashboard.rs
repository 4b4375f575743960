//! The dashboard's streams, search and brand panels as headless Chromium renders them, and the
//! search and brand API endpoints, against SQL written from their definitions (README: Search
//! events, On the dashboard).

use std::time::Duration;

use crate::dashboard::{by_id, run_chromium};
use crate::search::{defined_queries, text, SINCE};

/// The start of the newest hour with events (`streaming.recent_window(1)`), from the events.
const SINCE_HOUR: &str =
    "(SELECT date_trunc('hour', max(event_time), 'UTC') FROM streaming.events)";
use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn the_streams_search_and_brand_panels_shown_by_chromium_equal_the_sql() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    generate(
        landing.path(),
        2,
        1_500,
        31,
        &[
            "--search-share",
            "0.3",
            "--streams",
            "events,transactions,inventory",
        ],
    );
    // Brands come with REES46-layout files (native files have none).
    generate(
        landing.path(),
        1,
        1_500,
        32,
        &[
            "--layout",
            "rees46",
            "--events-per-session",
            "4",
            "--purchase-share",
            "0.05",
        ],
    );
    let addr = free_addr();
    let child = serve_watcher(landing.path(), &db, &addr, &["--rescan-secs", "1"], &[]);
    let pg = db.client().await;
    let done = wait_for(Duration::from_secs(120), || async {
        pg.query_one(
            "SELECT count(*) FROM streaming.ingest_files WHERE archived_at IS NOT NULL",
            &[],
        )
        .await
        .is_ok_and(|r| r.get::<_, i64>(0) == 7)
    })
    .await;
    assert!(done, "seven files loaded and archived");
    let dom = run_chromium(&["--dump-dom".into(), format!("http://{addr}/")]);

    // The streams panel, as before.
    for (id, sql) in [
        (
            "stream-transactions",
            "SELECT count(*)::text FROM streaming.transactions",
        ),
        (
            "stream-transaction-revenue",
            "SELECT round(sum(item_total), 2)::text FROM streaming.transaction_items",
        ),
        (
            "stream-event-revenue",
            "SELECT round(sum(total_amount), 2)::text FROM streaming.purchases",
        ),
        (
            "stream-revenue-difference",
            "SELECT round((SELECT sum(item_total) FROM streaming.transaction_items) \
             - (SELECT sum(total_amount) FROM streaming.purchases), 2)::text",
        ),
    ] {
        assert_eq!(by_id(&dom, id), text(&pg, sql).await, "{id}");
    }
    assert_ne!(by_id(&dom, "stream-transactions"), "0");

    // Searches of the 24 hours: their number and the top query.
    let day = defined_queries(SINCE);
    let total = text(&pg, &format!("SELECT sum(n)::text FROM ({day}) d(q, n, x)")).await;
    assert_eq!(by_id(&dom, "search-total"), total);
    assert_ne!(total, "0");
    let top = pg
        .query_one(
            &format!(
                "SELECT q, n::text FROM ({day}) d(q, n, x) \
                 ORDER BY d.n DESC, d.q COLLATE \"C\" LIMIT 1"
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(by_id(&dom, "search-query-0-label"), top.get::<_, String>(0));
    assert_eq!(
        by_id(&dom, "search-query-0-searches"),
        top.get::<_, String>(1)
    );
    // The newest hour: its searches, those that led to no view, the query most often so.
    let hour = defined_queries(SINCE_HOUR);
    let totals = pg
        .query_one(
            &format!("SELECT sum(n)::text, sum(x)::text FROM ({hour}) d(q, n, x)"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(by_id(&dom, "search-hour-total"), totals.get::<_, String>(0));
    assert_eq!(
        by_id(&dom, "search-no-view-total"),
        totals.get::<_, String>(1)
    );
    assert_ne!(totals.get::<_, String>(1), "0");
    let no_view = pg
        .query_one(
            &format!(
                "SELECT q, x::text FROM ({hour}) d(q, n, x) WHERE d.x > 0 \
                 ORDER BY d.x DESC, d.q COLLATE \"C\" LIMIT 1"
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(by_id(&dom, "no-view-0-label"), no_view.get::<_, String>(0));
    assert_eq!(by_id(&dom, "no-view-0-count"), no_view.get::<_, String>(1));

    // Brands by purchase events in the window, from the events themselves.
    let brand = pg
        .query_one(
            &format!(
                "SELECT brand, count(*)::text, round(sum(total_amount), 2)::text \
                 FROM streaming.events WHERE event_type = 'purchase' AND brand IS NOT NULL \
                 AND event_time >= {SINCE} GROUP BY brand \
                 ORDER BY count(*) DESC, sum(total_amount) DESC, brand COLLATE \"C\" LIMIT 1"
            ),
            &[],
        )
        .await
        .unwrap();
    for (i, id) in ["label", "purchases", "revenue"].iter().enumerate() {
        assert_eq!(
            by_id(&dom, &format!("brand-0-{id}")),
            brand.get::<_, String>(i)
        );
    }

    // The same through the JSON API.
    let (status, body) = http_get(&addr, "/api/searches/top?limit=1").unwrap();
    assert_eq!(status, 200, "{body}");
    let top_json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        top_json[0]["search_query"],
        top.get::<_, String>(0).as_str()
    );
    assert_eq!(top_json[0]["searches"].to_string(), top.get::<_, String>(1));
    let (_, body) = http_get(&addr, "/api/searches/top?by=no_view&limit=1&hours=1").unwrap();
    let no_view_json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        no_view_json[0]["search_query"],
        no_view.get::<_, String>(0).as_str()
    );
    let (_, body) = http_get(&addr, "/api/brands/top?limit=1&hours=24").unwrap();
    let brand_json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(brand_json[0]["brand"], brand.get::<_, String>(0).as_str());
    assert_eq!(
        brand_json[0]["purchases"].to_string(),
        brand.get::<_, String>(1)
    );
    let (status, body) = http_get(&addr, "/api/searches/top?by=clicks").unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("\"parameter\":\"by\""), "{body}");

    let out = terminate(child);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    db.cleanup().await;
}
