//! Search events through the real watcher: exact rows with their queries and empty product
//! columns, counted in sessions, hours and KPIs but never as views or products; the contract's
//! rules for search and product columns (line, column, reason); a user profile mapping a
//! search column; the analytics (top queries, searches that led to no view, top brands) against
//! SQL written from their definitions (the dashboard panels: `search_dashboard.rs`).

use std::time::Duration;

use tokio_postgres::Client;

use crate::analytics::{analytics_mismatches, differences};
use crate::support::*;

/// A search as the generator writes it: id, time, user, session, query, device, country.
const SEARCH_AS_CSV: &str = "SELECT event_id::text, \
    to_char(event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), user_id, \
    session_id, search_query, coalesce(device, ''), coalesce(country, '') \
    FROM streaming.events WHERE event_type = 'search'";

/// The definition of README "Searches and brands", straight from the events: per lowercased
/// query, searches since `$since`, and those with no view of the same session later.
pub(crate) fn defined_queries(since: &str) -> String {
    format!(
        "SELECT lower(s.search_query), count(*), count(*) FILTER (WHERE NOT EXISTS ( \
            SELECT FROM streaming.events v WHERE v.session_id = s.session_id \
            AND v.event_type = 'view' AND v.event_time > s.event_time)) \
         FROM streaming.events s WHERE s.event_type = 'search' AND s.event_time >= {since} \
         GROUP BY 1"
    )
}

/// The start of the dashboard's window, from the events: 23 hours before the newest's hour.
pub(crate) const SINCE: &str =
    "(SELECT date_trunc('hour', max(event_time), 'UTC') - interval '23 hours' \
    FROM streaming.events)";

pub(crate) async fn text(pg: &Client, sql: &str) -> String {
    pg.query_one(sql, &[]).await.expect(sql).get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_searches_load_exactly_count_in_sessions_and_hours_and_reach_the_topic() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let topic = unique("search");
    generate(
        landing.path(),
        3,
        1_500,
        23,
        &[
            "--search-share",
            "0.3",
            "--duplicate-fraction",
            "0.02",
            "--late-fraction",
            "0.05",
        ],
    );
    let rows = csv_rows(landing.path());
    let searches: Vec<&Vec<String>> = rows
        .iter()
        .map(|(_, _, f)| f)
        .filter(|f| f[4] == "search")
        .collect();
    assert!(searches
        .iter()
        .all(|f| f.len() == 13 && f[5..10].iter().all(String::is_empty)));
    let mut expected: Vec<Vec<String>> = searches
        .iter()
        .map(|f| [0, 1, 2, 3, 12, 10, 11].map(|i| f[i].clone()).to_vec())
        .collect();
    expected.sort();
    expected.dedup(); // --duplicate-fraction repeats rows exactly
    assert!(expected.len() > 150, "{} searches", expected.len());

    watch_once(landing.path(), &db, Some(&topic));
    let pg = db.client().await;
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM streaming.ingest_files WHERE status = 'loaded' \
             AND rows_rejected = 0 AND rows_total = 1500"
        )
        .await,
        3
    );
    assert_eq!(rows_as_text(&pg, SEARCH_AS_CSV, 7).await, expected);
    let n = expected.len() as i64;
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM streaming.events WHERE event_type = 'search' AND (product_id \
             IS NOT NULL OR product_category IS NOT NULL OR product_price IS NOT NULL \
             OR quantity IS NOT NULL OR total_amount IS NOT NULL OR search_query IS NULL)"
        )
        .await,
        0
    );

    // Events of their sessions, hours and users; never views, carts or a product's.
    assert_eq!(analytics_mismatches(&pg).await, 0);
    assert_eq!(stats_mismatches(&pg).await, 0);
    let in_sessions = "SELECT sum(events - views - carts - removes - purchases)::bigint \
        FROM streaming.sessions";
    assert_eq!(count(&pg, in_sessions).await, n);
    let in_hours = "SELECT sum(event_count)::bigint FROM streaming.event_stats_hourly \
        WHERE event_type = 'search' AND quantity = 0 AND revenue = 0 AND product_category = ''";
    assert_eq!(count(&pg, in_hours).await, n);
    let products = "SELECT count(*) FROM streaming.product_counts WHERE product_id = ''";
    assert_eq!(count(&pg, products).await, 0);
    assert_eq!(
        count(&pg, "SELECT views FROM streaming.kpis WHERE hour IS NULL").await,
        count(
            &pg,
            "SELECT count(*) FROM streaming.events WHERE event_type = 'view'"
        )
        .await
    );

    // The analytics equal their definition, over all time and over the dashboard's window.
    let all_time = "SELECT search_query, searches, without_view \
        FROM streaming.search_queries('-infinity', 'infinity')";
    assert_eq!(
        differences(
            &pg,
            "search_queries",
            all_time,
            &defined_queries("'-infinity'")
        )
        .await,
        0
    );
    let window = "SELECT q.* FROM streaming.recent_window(24) w, \
        streaming.search_queries(w.since, w.until) q";
    assert_eq!(
        differences(&pg, "search window", window, &defined_queries(SINCE)).await,
        0
    );
    let counts = "SELECT q.*, 0::bigint FROM streaming.recent_window(24) w, \
        streaming.search_counts(w.since, w.until) q";
    let defined_counts = format!(
        "SELECT q, n, 0::bigint FROM ({}) d(q, n, x)",
        defined_queries(SINCE)
    );
    assert_eq!(
        differences(&pg, "search_counts", counts, &defined_counts).await,
        0
    );
    let (total, without) = {
        let r = pg
            .query_one(
                &format!(
                    "SELECT sum(searches)::bigint, sum(without_view)::bigint FROM ({all_time}) q"
                ),
                &[],
            )
            .await
            .unwrap();
        (r.get::<_, i64>(0), r.get::<_, i64>(1))
    };
    assert_eq!(total, n);
    assert!(without > 0 && without < total / 2, "{without} of {total}");

    // The topic: every event once; a search carries its query and no product.
    let all = count(&pg, "SELECT count(*) FROM streaming.events").await as usize;
    let (seen, _) = read_topic(&topic, all, Duration::from_secs(60));
    assert_eq!(seen.len(), all);
    for s in &expected {
        let (key, payload) = &seen[&s[0]];
        assert_eq!(key, &s[2]);
        assert_eq!(payload["search_query"], s[4].as_str());
        assert!(payload["product_id"].is_null() && payload["quantity"].is_null());
    }
    let view = seen
        .values()
        .find(|(_, p)| p["event_type"] == "view")
        .unwrap();
    assert!(view.1.get("search_query").is_none(), "{}", view.1);

    // The same file again under another name: a duplicate_file, nothing changes.
    let before = rows_as_text(&pg, SEARCH_AS_CSV, 7).await;
    let stats = count(&pg, in_hours).await;
    let processed = landing.path().join("processed");
    let first = std::fs::read_dir(&processed)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "csv"))
        .unwrap();
    std::fs::copy(&first, landing.path().join("again.csv")).unwrap();
    watch_once(landing.path(), &db, None);
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM streaming.ingest_files WHERE status = 'duplicate_file'"
        )
        .await,
        1
    );
    assert_eq!(rows_as_text(&pg, SEARCH_AS_CSV, 7).await, before);
    assert_eq!(count(&pg, in_hours).await, stats);
    assert_eq!(analytics_mismatches(&pg).await, 0);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_search_and_product_rows_are_rejected_with_line_column_reason_and_profiles_map_searches(
) {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let t = "2026-11-01T10:00:00.000000Z";
    let id = |n: u32| format!("00000000-0000-4000-8000-{n:012}");
    let lines = [
        format!("{},{t},u1,s1,search,,,,,,mobile,DE,Running Shoes", id(1)),
        format!("{},{t},u1,s1,search,p1,,,,,mobile,DE,shoes", id(2)),
        format!("{},{t},u1,s1,search,,,,,,,,", id(3)),
        format!("{},{t},u1,s1,view,,shoes,10.00,1,,,,", id(4)),
        format!("{},{t},u1,s1,view,p1,shoes,10.00,1,,,,oops", id(5)),
        format!("{},{t},u1,s1,search,,,,2,,,,boots", id(6)),
        format!("{},{t},u1,s1,search,,,9.99,,,,,boots", id(7)),
        format!(
            "{},2026-11-01T10:00:01.000000Z,u1,s1,view,p1,shoes,10.00,1,,,,",
            id(8)
        ),
    ];
    let file = format!(
        "{},search_query\n{}\n",
        shopstream::schema::header_line(),
        lines.join("\n")
    );
    std::fs::write(landing.path().join("searches.csv"), file).unwrap();
    watch_once_with(landing.path(), &db, None, &["--max-reject-fraction", "0.9"]);
    let pg = db.client().await;
    let ledger = pg
        .query_one(
            "SELECT status, profile, rows_total, rows_loaded, rows_rejected \
             FROM streaming.ingest_files",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(ledger.get::<_, String>(0), "loaded");
    assert_eq!(ledger.get::<_, String>(1), "native");
    assert_eq!(
        (
            ledger.get::<_, i64>(2),
            ledger.get::<_, i64>(3),
            ledger.get::<_, i64>(4)
        ),
        (8, 2, 6)
    );
    let empty = "must be empty for a search (a search names no product)";
    let rejected: Vec<(i64, String, String)> = pg
        .query(
            "SELECT line, column_name, reason FROM streaming.rejected_rows ORDER BY line",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let want = [
        (3, "product_id", format!("{empty} (got \"p1\")")),
        (4, "search_query", "required for a search".to_string()),
        (5, "product_id", "required".to_string()),
        (
            6,
            "search_query",
            "must be empty unless event_type is search (got \"oops\")".to_string(),
        ),
        (7, "quantity", format!("{empty} (got \"2\")")),
        (8, "product_price", format!("{empty} (got \"9.99\")")),
    ]
    .map(|(l, c, r)| (l, c.to_string(), r));
    assert_eq!(rejected, want);
    let loaded = rows_as_text(
        &pg,
        "SELECT event_type, coalesce(search_query, '-'), coalesce(product_id, '-') \
         FROM streaming.events",
        3,
    )
    .await;
    assert_eq!(
        loaded,
        [["search", "Running Shoes", "-"], ["view", "-", "p1"]]
            .map(|r| r.map(String::from).to_vec())
    );
    assert_eq!(stats_mismatches(&pg).await, 0);
    assert_eq!(analytics_mismatches(&pg).await, 0);

    // A user profile maps its own search column and event name; its quantity default is for
    // rows with a product, so the search keeps its quantity empty. Ids are derived: the same
    // rows again, columns reordered, are duplicates.
    let profiles = tempfile::tempdir().unwrap();
    std::fs::write(
        profiles.path().join("suche.toml"),
        r#"name = "suche"
time_formats = ["%d.%m.%Y %H:%M:%S"]
[columns]
event_time = "Zeit"
user_id = "Kunde"
session_id = "Sitzung"
event_type = "Aktion"
product_id = "Artikel"
product_price = "Preis"
quantity = { column = "Menge", optional = true }
search_query = "Suchbegriff"
[event_types]
gesucht = "search"
angesehen = "view"
[defaults]
quantity = "1"
"#,
    )
    .unwrap();
    let dir = ["--profiles-dir", profiles.path().to_str().unwrap()];
    std::fs::write(
        landing.path().join("suche.csv"),
        "Zeit,Kunde,Sitzung,Aktion,Artikel,Preis,Suchbegriff\n\
         02.11.2026 09:00:00,k1,s9,gesucht,,,Rote Schuhe\n\
         02.11.2026 09:00:04,k1,s9,angesehen,a1,19.99,\n\
         02.11.2026 09:00:09,k1,s9,gesucht,,,\n",
    )
    .unwrap();
    watch_once_with(landing.path(), &db, None, &dir);
    let mapped = rows_as_text(
        &pg,
        "SELECT event_type, coalesce(search_query, '-'), coalesce(product_id, '-'), \
         coalesce(quantity::text, '-') FROM streaming.events WHERE user_id = 'k1'",
        4,
    )
    .await;
    assert_eq!(
        mapped,
        [
            ["search", "Rote Schuhe", "-", "-"],
            ["view", "-", "a1", "1"]
        ]
        .map(|r| r.map(String::from).to_vec())
    );
    let reason = text(
        &pg,
        "SELECT column_name || ': ' || reason FROM streaming.rejected_rows r \
         JOIN streaming.ingest_files f USING (file_id) WHERE f.profile = 'suche'",
    )
    .await;
    assert_eq!(reason, "Suchbegriff: required for a search");
    std::fs::write(
        landing.path().join("suche-again.csv"),
        "Suchbegriff,Aktion,Zeit,Kunde,Sitzung,Artikel,Preis\n\
         Rote Schuhe,gesucht,02.11.2026 09:00:00,k1,s9,,\n",
    )
    .unwrap();
    watch_once_with(landing.path(), &db, None, &dir);
    assert_eq!(
        count(
            &pg,
            "SELECT rows_duplicate FROM streaming.ingest_files WHERE file_name = 'suche-again.csv'"
        )
        .await,
        1
    );
    assert_eq!(analytics_mismatches(&pg).await, 0);
    db.cleanup().await;
}
