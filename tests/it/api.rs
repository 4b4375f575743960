//! The JSON API (`/api/*`) against the SQL each endpoint equals, its 400s naming the bad
//! parameter, and the bearer token it needs when the server listens beyond loopback.

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::Value;
use tokio_postgres::Client;

use crate::support::*;

/// A watcher serving on `addr` over an already loaded database; returns once it answers.
async fn serve(landing: &Path, db: &TestDb, addr: &str, env: &[(&str, &str)]) -> Child {
    let child = serve_watcher(landing, db, addr, &[], env);
    let up = wait_for(Duration::from_secs(60), || async {
        http_get(addr, "/healthz").is_ok()
    })
    .await;
    assert!(up, "the HTTP server answers");
    child
}

fn get_json(addr: &str, path: &str) -> Value {
    let (status, body) = http_get(addr, path).unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// The row of `sql` as JSON values: text as strings, bigint as numbers, NULL as null.
async fn sql_row(
    pg: &Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Vec<Vec<Value>> {
    pg.query(sql, params)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| match r.columns()[i].type_().name() {
                    "int8" => r.get::<_, Option<i64>>(i).map_or(Value::Null, Value::from),
                    _ => r
                        .get::<_, Option<String>>(i)
                        .map_or(Value::Null, Value::from),
                })
                .collect()
        })
        .collect()
}

fn fields(v: &Value, names: &[&str]) -> Vec<Value> {
    names.iter().map(|n| v[*n].clone()).collect()
}

const KPI_FIELDS: [&str; 10] = [
    "views",
    "carts",
    "purchases",
    "revenue",
    "sessions",
    "converted_sessions",
    "conversion_rate",
    "cart_abandonment_rate",
    "average_order_value",
    "active_users",
];
const KPI_SQL: &str = "SELECT views, carts, purchases, revenue::text, sessions, \
    converted_sessions, conversion_rate::text, cart_abandonment_rate::text, \
    average_order_value::text, active_users FROM streaming.kpis";

#[tokio::test(flavor = "multi_thread")]
async fn every_endpoint_equals_its_sql_and_bad_parameters_are_named() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    generate(landing.path(), 3, 1500, 71, &["--invalid-fraction", "0.01"]);
    watch_once(landing.path(), &db, None);
    let pg = db.client().await;
    let addr = free_addr();
    let child = serve(landing.path(), &db, &addr, &[]).await;

    // /api/kpis: the all-time row, field by field; numbers as numbers, money as text.
    let kpis = get_json(&addr, "/api/kpis");
    assert!(kpis["hour"].is_null());
    assert!(
        kpis["views"].is_i64() && kpis["revenue"].is_string(),
        "{kpis}"
    );
    let want = sql_row(&pg, &format!("{KPI_SQL} WHERE hour IS NULL"), &[]).await;
    assert_eq!(fields(&kpis, &KPI_FIELDS), want[0]);
    // ?hours=3: the newest three hourly rows, newest first.
    let hourly = get_json(&addr, "/api/kpis?hours=3");
    let want = sql_row(
        &pg,
        &format!("{KPI_SQL} WHERE hour IS NOT NULL ORDER BY hour DESC LIMIT 3"),
        &[],
    )
    .await;
    let got: Vec<Vec<Value>> = hourly
        .as_array()
        .unwrap()
        .iter()
        .map(|r| fields(r, &KPI_FIELDS))
        .collect();
    assert_eq!(got, want);
    assert!(!want.is_empty());

    // Top products by each ranking.
    for (by, order) in [
        ("revenue", "revenue DESC"),
        ("views", "views DESC"),
        ("conversion", "conversion_rate DESC NULLS LAST"),
    ] {
        let top = get_json(&addr, &format!("/api/products/top?limit=5&by={by}"));
        let got: Vec<Vec<Value>> = top
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                fields(
                    r,
                    &[
                        "product_id",
                        "product_category",
                        "views",
                        "revenue",
                        "conversion_rate",
                    ],
                )
            })
            .collect();
        let want = sql_row(
            &pg,
            &format!(
                "SELECT product_id, product_category, views, revenue::text, conversion_rate::text \
                 FROM streaming.product_metrics ORDER BY {order}, product_id, product_category LIMIT 5"
            ),
            &[],
        )
        .await;
        assert_eq!(got, want, "by={by}");
        assert_eq!(got.len(), 5);
    }
    let top = get_json(&addr, "/api/categories/top?limit=3");
    let got: Vec<Vec<Value>> = top
        .as_array()
        .unwrap()
        .iter()
        .map(|r| fields(r, &["product_category", "views", "revenue"]))
        .collect();
    let want = sql_row(
        &pg,
        "SELECT product_category, sum(views)::bigint, sum(revenue)::text FROM streaming.product_counts \
         GROUP BY product_category ORDER BY sum(revenue) DESC, product_category LIMIT 3",
        &[],
    )
    .await;
    assert_eq!(got, want);

    // A session with several events, and its events.
    let r = pg
        .query_one(
            "SELECT session_id, min(user_id), sum(events)::int8, sum(revenue)::text \
             FROM streaming.sessions GROUP BY session_id HAVING sum(events) > 2 \
             ORDER BY session_id LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    let session: String = r.get(0);
    let body = get_json(&addr, &format!("/api/sessions/{session}"));
    assert_eq!(body["user_id"], r.get::<_, String>(1));
    assert_eq!(body["revenue"], r.get::<_, String>(3));
    let ids: Vec<String> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = pg
        .query(
            "SELECT event_id::text FROM streaming.events WHERE session_id = $1 \
             ORDER BY event_time, event_id",
            &[&session],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, want);
    assert_eq!(ids.len() as i64, r.get::<_, i64>(2));
    assert_eq!(body["event_count"], r.get::<_, i64>(2));
    let (status, body) = http_get(&addr, "/api/sessions/no-such-session").unwrap();
    assert_eq!(status, 404, "{body}");

    // A user's newest events.
    let user: String = pg
        .query_one(
            "SELECT user_id FROM streaming.events GROUP BY user_id HAVING count(*) > 4 \
             ORDER BY user_id LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let body = get_json(&addr, &format!("/api/users/{user}/events?limit=4"));
    let ids: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    let want: Vec<String> = pg
        .query(
            "SELECT event_id::text FROM streaming.events WHERE user_id = $1 \
             ORDER BY event_time DESC, event_id LIMIT 4",
            &[&user],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, want);
    assert_eq!(ids.len(), 4);
    assert!(body[0]["product_price"].is_string() && body[0]["quantity"].is_i64());

    // Alerts (none on generated data) and files, as the ledger and /files.json say.
    let open = count(
        &pg,
        "SELECT count(*) FROM streaming.alerts WHERE resolved_at IS NULL",
    )
    .await;
    assert_eq!(
        get_json(&addr, "/api/alerts?open=true")
            .as_array()
            .unwrap()
            .len() as i64,
        open
    );
    let files = get_json(&addr, "/api/files?limit=2");
    assert_eq!(files, get_json(&addr, "/files.json?limit=2"));
    assert_eq!(files.as_array().unwrap().len(), 2);
    let newest = count(&pg, "SELECT max(file_id) FROM streaming.ingest_files").await;
    assert_eq!(files[0]["file_id"], newest);
    let doc = get_json(&addr, "/api/openapi.json");
    assert!(doc["paths"]["/api/kpis"]["get"].is_object());

    // Bad parameters: HTTP 400 with the parameter named.
    for (path, parameter) in [
        ("/api/products/top?limit=abc", "limit"),
        ("/api/products/top?limit=0", "limit"),
        ("/api/products/top?by=price", "by"),
        ("/api/categories/top?by=", "by"),
        ("/api/kpis?hours=-2", "hours"),
        ("/api/kpis?hour=2", "hour"),
        ("/api/alerts?open=maybe", "open"),
        ("/api/alerts?kind=fire", "kind"),
        ("/api/users/u1/events?limit=1e3", "limit"),
        ("/api/files?limit=1&limit=2", "limit"),
        ("/api/sessions/x?x=1", "x"),
    ] {
        let (status, body) = http_get(&addr, path).unwrap();
        assert_eq!(status, 400, "{path}: {body}");
        let err: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(err["parameter"], parameter, "{path}: {body}");
        assert!(err["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    // A limit above its cap is lowered, not refused.
    let capped = get_json(&addr, "/api/files?limit=100000");
    assert_eq!(capped.as_array().unwrap().len(), 3);

    terminate(child);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn off_loopback_the_api_and_dashboard_need_the_token() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let port = free_addr().rsplit_once(':').unwrap().1.to_string();
    let open = format!("0.0.0.0:{port}");

    // Without a token the watcher refuses to start: a wrong setting, exit 2.
    let out = Command::new(bin("watch"))
        .args(["--once", "--http-addr", &open, "--landing-dir"])
        .arg(landing.path())
        .env("DATABASE_URL", &db.url)
        .env("KAFKA_BROKERS", "")
        .env_remove("HTTP_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--http-token"));

    let child = serve_watcher(landing.path(), &db, &open, &[], &[("HTTP_TOKEN", "s3cret")]);
    let local = format!("127.0.0.1:{port}");
    let up = wait_for(Duration::from_secs(60), || async {
        http_get(&local, "/healthz").is_ok_and(|(status, _)| status == 200)
    })
    .await;
    assert!(up, "/healthz is open and healthy");
    let pg = db.client().await;
    let migrated = wait_for(Duration::from_secs(60), || async {
        pg.query("SELECT 1 FROM streaming.alerts LIMIT 0", &[])
            .await
            .is_ok()
    })
    .await;
    assert!(migrated, "the watcher applied its migrations, V12 included");
    for path in ["/api/kpis", "/", "/files.json", "/api/openapi.json"] {
        let (status, body) = http_get_token(&local, path, None).unwrap();
        assert_eq!(status, 401, "{path}: {body}");
        let (status, _) = http_get_token(&local, path, Some("wrong")).unwrap();
        assert_eq!(status, 401, "{path}");
        let (status, body) = http_get_token(&local, path, Some("s3cret")).unwrap();
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, metrics) = http_get(&local, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("shopstream_alerts_open{kind=\"price_outlier\"} 0"),
        "{metrics}"
    );
    terminate(child);
    db.cleanup().await;
}
