//! The watcher's HTTP server: /healthz, /metrics, /files.json and the dashboard page, read by a
//! real headless Chromium whose rendered numbers must equal the SQL. Needs the Debian package
//! `chromium` (scripts/test installs it); CHROMIUM overrides the binary's path.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio_postgres::Client;

use crate::support::*;

fn start_watcher(landing: &Path, database_url: &str, addr: &str, topic: Option<&str>) -> Child {
    let mut cmd = Command::new(bin("watch"));
    cmd.arg("--landing-dir")
        .arg(landing)
        .args([
            "--settle-ms",
            "0",
            "--rescan-secs",
            "1",
            "--http-addr",
            addr,
        ])
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match topic {
        Some(topic) => cmd
            .env("KAFKA_BROKERS", kafka_brokers())
            .env("KAFKA_TOPIC", topic)
            .env("KAFKA_REJECTED_TOPIC", format!("{topic}.rejected")),
        None => cmd.env("KAFKA_BROKERS", ""),
    };
    cmd.spawn().expect("start shopstream-watch")
}

fn chromium() -> PathBuf {
    let path =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    assert!(
        path.exists(),
        "{} not found: install it with `apt-get install -y chromium` (scripts/test does)",
        path.display()
    );
    path
}

/// Runs headless Chromium with a fresh profile and the given extra arguments.
pub(crate) fn run_chromium(args: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .arg(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of the element with `id` in the rendered DOM.
pub(crate) fn by_id(dom: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let start = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no element #{id} in the page"))
        + marker.len();
    let end = start + dom[start..].find('<').unwrap();
    dom[start..end].replace("&amp;", "&")
}

async fn text(pg: &Client, sql: &str) -> String {
    pg.query_one(sql, &[]).await.expect(sql).get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_shown_by_chromium_equals_the_sql_and_metrics_count_the_files() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let topic = unique("dash");
    generate(
        landing.path(),
        3,
        800,
        61,
        &["--invalid-fraction", "0.02", "--duplicate-fraction", "0.02"],
    );
    let addr = free_addr();
    let child = start_watcher(landing.path(), &db.url, &addr, Some(&topic));
    let pg = db.client().await;
    let done = wait_for(Duration::from_secs(120), || async {
        // The ledger may not exist until the watcher migrated.
        pg.query_one(
            "SELECT count(*) FROM streaming.ingest_files WHERE archived_at IS NOT NULL AND mirrored_at IS NOT NULL",
            &[],
        )
        .await
        .is_ok_and(|r| r.get::<_, i64>(0) == 3)
    })
    .await;
    assert!(done, "three files loaded, archived and mirrored");

    // /healthz: both dependencies reachable.
    let (status, body) = http_get(&addr, "/healthz").unwrap();
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(health["postgres"]["status"], "ok");
    assert_eq!(health["kafka"]["status"], "ok");

    // /metrics: files and rows by outcome equal the ledger; latency histogram; empty backlog.
    let (status, metrics) = http_get(&addr, "/metrics").unwrap();
    assert_eq!(status, 200);
    let value = |line_start: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(line_start))
            .unwrap_or_else(|| panic!("no {line_start} in\n{metrics}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let ledger = pg
        .query_one(
            "SELECT sum(rows_loaded)::bigint, sum(rows_rejected)::bigint, sum(rows_duplicate)::bigint \
             FROM streaming.ingest_files",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(value("shopstream_files_total{outcome=\"loaded\"}"), 3.0);
    assert_eq!(
        value("shopstream_rows_total{outcome=\"loaded\"}"),
        ledger.get::<_, i64>(0) as f64
    );
    assert_eq!(
        value("shopstream_rows_total{outcome=\"rejected\"}"),
        ledger.get::<_, i64>(1) as f64
    );
    assert_eq!(
        value("shopstream_rows_total{outcome=\"duplicate\"}"),
        ledger.get::<_, i64>(2) as f64
    );
    assert_eq!(value("shopstream_ingest_seconds_count"), 3.0);
    assert_eq!(value("shopstream_unmirrored_files"), 0.0);
    assert!(metrics.contains("shopstream_last_error_timestamp_seconds"));

    // /files.json: the lifecycle of each file, with its counts.
    let (status, body) = http_get(&addr, "/files.json").unwrap();
    assert_eq!(status, 200);
    let files: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(files.len(), 3);
    for f in &files {
        assert_eq!(f["status"], "loaded");
        assert_eq!(f["admitted_by"], "settled");
        assert_eq!(f["profile"], "native");
        for stage in ["discovered_at", "loaded_at", "mirrored_at", "archived_at"] {
            assert!(f[stage].is_string(), "{stage} in {f}");
        }
        assert_eq!(f["rows_total"], 800);
    }

    // The page as Chromium renders it shows the numbers the SQL gives.
    let url = format!("http://{addr}/");
    let dom = run_chromium(&["--dump-dom".into(), url.clone()]);
    let kpis = "FROM streaming.kpis WHERE hour IS NULL";
    for (id, column) in [
        ("kpi-views", "views::text"),
        ("kpi-carts", "carts::text"),
        ("kpi-purchases", "purchases::text"),
        ("kpi-revenue", "round(revenue, 2)::text"),
        ("kpi-sessions", "sessions::text"),
        ("kpi-conversion-rate", "conversion_rate::text"),
        ("kpi-cart-abandonment-rate", "cart_abandonment_rate::text"),
        ("kpi-average-order-value", "average_order_value::text"),
        ("kpi-active-users", "active_users::text"),
    ] {
        let sql = text(&pg, &format!("SELECT {column} {kpis}")).await;
        assert_eq!(by_id(&dom, id), sql, "{id}");
    }
    // Cross-check the KPIs themselves against the events table.
    assert_eq!(
        by_id(&dom, "kpi-views"),
        text(
            &pg,
            "SELECT count(*)::text FROM streaming.events WHERE event_type = 'view'"
        )
        .await
    );
    assert_eq!(
        by_id(&dom, "kpi-revenue"),
        text(
            &pg,
            "SELECT round(sum(total_amount), 2)::text FROM streaming.purchases"
        )
        .await
    );
    let top = pg
        .query_one(
            "SELECT product_id, round(revenue, 2)::text FROM streaming.product_metrics \
             ORDER BY revenue DESC, product_id, product_category LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    assert!(by_id(&dom, "top-product-0-label").starts_with(&top.get::<_, String>(0)));
    assert_eq!(by_id(&dom, "top-product-0-value"), top.get::<_, String>(1));
    let top_category = text(
        &pg,
        "SELECT round(sum(revenue), 2)::text FROM streaming.product_counts \
         GROUP BY product_category ORDER BY sum(revenue) DESC, product_category LIMIT 1",
    )
    .await;
    assert_eq!(by_id(&dom, "top-category-0-value"), top_category);
    assert_eq!(by_id(&dom, "files-loaded"), "3");
    assert_eq!(
        by_id(&dom, "rows-rejected"),
        ledger.get::<_, i64>(1).to_string()
    );
    let sessions_under_a_minute = text(
        &pg,
        "SELECT count(*)::text FROM streaming.sessions WHERE duration < interval '1 minute'",
    )
    .await;
    assert_eq!(by_id(&dom, "duration-0"), sessions_under_a_minute);
    // Events per minute: the 60 minutes up to the newest event's, every event in them once.
    let snapshot = shopstream::serve::snapshot(&pg).await.unwrap();
    assert_eq!(
        snapshot
            .events_per_minute
            .iter()
            .map(|m| m.events)
            .sum::<i64>(),
        count(
            &pg,
            "SELECT count(*) FROM streaming.events WHERE event_time >= \
             (SELECT date_trunc('minute', max(event_time), 'UTC') - interval '59 minutes' \
              FROM streaming.events)"
        )
        .await
    );
    assert_eq!(dom.matches("<svg").count(), 5, "five charts");

    // A screenshot, kept where SHOPSTREAM_SCREENSHOT says (docs/dashboard.png in the README).
    let shots = tempfile::tempdir().unwrap();
    let png = shots.path().join("dashboard.png");
    run_chromium(&[
        format!("--screenshot={}", png.display()),
        "--window-size=1280,1600".into(),
        url,
    ]);
    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000);
    if let Ok(keep) = std::env::var("SHOPSTREAM_SCREENSHOT") {
        std::fs::copy(&png, keep).unwrap();
    }

    let out = terminate(child);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_answers_while_postgres_is_down_and_says_so() {
    let landing = tempfile::tempdir().unwrap();
    let addr = free_addr();
    // Nothing listens on the port of a just-closed listener.
    let dead = format!("postgres://shopstream:x@{}/none", free_addr());
    let child = start_watcher(landing.path(), &dead, &addr, None);
    let up = wait_for(Duration::from_secs(30), || async {
        http_get(&addr, "/healthz").is_ok()
    })
    .await;
    assert!(up, "the server listens although Postgres is down");
    let (status, body) = http_get(&addr, "/healthz").unwrap();
    assert_eq!(status, 503, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["postgres"]["status"], "down");
    assert_eq!(health["kafka"]["status"], "disabled");
    let (status, page) = http_get(&addr, "/").unwrap();
    assert_eq!(status, 200);
    assert!(
        page.contains("id=\"error\">Cannot read from Postgres"),
        "{page}"
    );
    let (status, metrics) = http_get(&addr, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(metrics.contains("shopstream_files_total"));
    // The watcher itself still waits for Postgres; it is not this test's subject.
    let mut child = child;
    child.kill().unwrap();
    child.wait().unwrap();
}
