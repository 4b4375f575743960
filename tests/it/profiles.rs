//! Source profiles through the real watcher: REES46-layout files (exact events, ledger profile,
//! re-drops deduplicated by derived event ids), `;` and Excel-resaved variants, a user profile
//! from --profiles-dir, an unknown layout and a broken profile file.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/profiles")
        .join(name)
}

fn drop_fixture(landing: &Path, name: &str, as_name: &str) {
    std::fs::copy(fixture(name), landing.join(as_name)).unwrap();
}

/// The ledger row of one file: (status, profile, total, loaded, rejected, duplicate, error).
async fn ledger(
    pg: &tokio_postgres::Client,
    file: &str,
) -> (String, Option<String>, i64, i64, i64, i64, Option<String>) {
    let r = pg
        .query_one(
            "SELECT status, profile, rows_total, rows_loaded, rows_rejected, rows_duplicate, error \
             FROM streaming.ingest_files WHERE file_name = $1",
            &[&file],
        )
        .await
        .unwrap();
    (
        r.get(0),
        r.get(1),
        r.get(2),
        r.get(3),
        r.get(4),
        r.get(5),
        r.get(6),
    )
}

async fn rejected(pg: &tokio_postgres::Client, file: &str) -> Vec<(i64, Option<String>, String)> {
    pg.query(
        "SELECT line, column_name, reason FROM streaming.rejected_rows r \
         JOIN streaming.ingest_files f USING (file_id) WHERE f.file_name = $1 ORDER BY line",
        &[&file],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

type EventRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    i32,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    String,
);

async fn events(pg: &tokio_postgres::Client, file: &str) -> Vec<EventRow> {
    pg.query(
        "SELECT to_char(event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), event_type, \
             product_id, product_category, product_price::text, quantity, total_amount::text, \
             brand, category_id, category_code, user_id || ' ' || session_id \
         FROM streaming.events WHERE source_file = $1 ORDER BY event_time, event_type",
        &[&file],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            r.get(6),
            r.get(7),
            r.get(8),
            r.get(9),
            r.get(10),
        )
    })
    .collect()
}

fn s(v: &str) -> String {
    v.to_string()
}

fn o(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rees46_file_loads_mapped_and_its_rows_dedupe_when_dropped_again() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    drop_fixture(landing.path(), "rees46_2019-Oct_sample.csv", "2019-Oct.csv");
    let topic = unique("rees46");
    watch_once(landing.path(), &db, Some(&topic));
    let pg = db.client().await;

    assert_eq!(
        ledger(&pg, "2019-Oct.csv").await,
        (s("loaded"), o("rees46"), 10, 10, 0, 0, None)
    );
    // The mirror carries the kept attributes too; category_id as text (19 digits).
    let (messages, _) = read_topic(&topic, 10, std::time::Duration::from_secs(60));
    assert_eq!(messages.len(), 10, "every event reached the topic");
    let kept = pg
        .query(
            "SELECT event_id::text, brand, category_id::text, category_code FROM streaming.events",
            &[],
        )
        .await
        .unwrap();
    for r in &kept {
        let (_, payload) = &messages[&r.get::<_, String>(0)];
        assert_eq!(payload["brand"].as_str(), r.get::<_, Option<&str>>(1));
        assert_eq!(payload["category_id"].as_str(), r.get::<_, Option<&str>>(2));
        assert_eq!(
            payload["category_code"].as_str(),
            r.get::<_, Option<&str>>(3)
        );
    }
    assert!(messages
        .values()
        .any(|(_, p)| p["category_id"] == "2053013555631882655" && p["brand"] == "apple"));
    let apple = |t: &str, ty: &str, total: Option<&str>| {
        (
            s(t),
            s(ty),
            s("1004237"),
            o("electronics"),
            s("1081.98"),
            1,
            total.map(s),
            o("apple"),
            Some(2053013555631882655),
            o("electronics.smartphone"),
            s("535871217 c6bd7419-2748-4c56-95b4-8cec9ff8b80d"),
        )
    };
    let bare = |t: &str, ty: &str, total: Option<&str>| {
        (
            s(t),
            s(ty),
            s("26300219"),
            None,
            s("40.54"),
            1,
            total.map(s),
            None,
            Some(2053013563424899933),
            None,
            s("555446831 6ec635da-0d3e-4e8f-a23c-2c6b3ac0a4c4"),
        )
    };
    let expected: Vec<EventRow> = vec![
        (
            s("2019-10-01 00:00:00"),
            s("view"),
            s("3900821"),
            o("appliances"),
            s("33.20"),
            1,
            None,
            o("aqua"),
            Some(2053013552326770905),
            o("appliances.environment.water_heater"),
            s("554748717 9333dfbd-b87a-4708-9857-6336556b0fcc"),
        ),
        (
            s("2019-10-01 00:00:00"),
            s("view"),
            s("44600062"),
            None,
            s("35.79"),
            1,
            None,
            o("shiseido"),
            Some(2103807459595387724),
            None,
            s("541312140 72d76fde-8bb3-4e00-8c23-a032dfed738c"),
        ),
        (
            s("2019-10-01 00:00:01"),
            s("view"),
            s("17200506"),
            o("furniture"),
            s("543.10"),
            1,
            None,
            None,
            Some(2053013559792632471),
            o("furniture.living_room.sofa"),
            s("519107250 566511c2-e2e3-422b-b695-cf8e6e792ca8"),
        ),
        bare("2019-10-01 00:00:02", "view", None),
        apple("2019-10-01 00:00:04", "view", None),
        apple("2019-10-01 00:00:05", "add_to_cart", None),
        apple("2019-10-01 00:00:07", "remove_from_cart", None),
        apple("2019-10-01 00:00:09", "add_to_cart", None),
        apple("2019-10-01 00:01:10", "purchase", Some("1081.98")),
        bare("2019-10-01 00:02:14", "purchase", Some("40.54")),
    ];
    let mut got = events(&pg, "2019-Oct.csv").await;
    // Two views share 00:00:00; order them by product for the comparison.
    got[..2].sort_by(|a, b| a.2.cmp(&b.2));
    let mut want = expected;
    want[..2].sort_by(|a, b| a.2.cmp(&b.2));
    assert_eq!(got, want);
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.purchases").await,
        2
    );
    assert_eq!(stats_mismatches(&pg).await, 0);

    // The same bytes under a new name: the file is a duplicate. The same rows in other bytes
    // (rows reversed, CRLF, `;`) under another name: every row is a duplicate event.
    drop_fixture(landing.path(), "rees46_2019-Oct_sample.csv", "copy.csv");
    let text = std::fs::read_to_string(fixture("rees46_2019-Oct_sample.csv")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1..].reverse();
    let resaved = lines.join("\r\n").replace(',', ";") + "\r\n";
    std::fs::write(landing.path().join("2019-Oct (resaved).csv"), resaved).unwrap();
    watch_once(landing.path(), &db, None);
    let copy = ledger(&pg, "copy.csv").await;
    assert_eq!((copy.0.as_str(), copy.2), ("duplicate_file", 0));
    assert_eq!(
        ledger(&pg, "2019-Oct (resaved).csv").await,
        (s("loaded"), o("rees46"), 10, 0, 0, 10, None)
    );
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.events").await,
        10
    );
    assert_eq!(stats_mismatches(&pg).await, 0);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn semicolon_and_excel_resaved_rees46_files_load_and_excel_damage_nulls_optional_ids_only() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    drop_fixture(landing.path(), "rees46_semicolon.csv", "semicolon.csv");
    drop_fixture(landing.path(), "rees46_excel_resaved.csv", "excel.csv");
    watch_once(landing.path(), &db, None);
    let pg = db.client().await;

    assert_eq!(
        ledger(&pg, "semicolon.csv").await,
        (s("loaded"), o("rees46"), 3, 3, 0, 0, None)
    );
    let semicolon = events(&pg, "semicolon.csv").await;
    let kinds: Vec<(&str, &str, Option<&str>)> = semicolon
        .iter()
        .map(|e| (e.0.as_str(), e.1.as_str(), e.6.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("2019-10-02 08:15:00", "view", None),
            ("2019-10-02 08:16:30", "add_to_cart", None),
            ("2019-10-02 08:18:02", "purchase", Some("975.57")),
        ]
    );

    // category_id is optional: its damaged row loads with it NULL; user_id is required.
    assert_eq!(
        ledger(&pg, "excel.csv").await,
        (s("loaded"), o("rees46"), 4, 3, 1, 0, None)
    );
    let excel = events(&pg, "excel.csv").await;
    let times: Vec<&str> = excel.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        times,
        [
            "2019-10-03 09:05:00",
            "2019-10-03 09:07:00",
            "2019-10-03 14:30:00"
        ]
    );
    assert_eq!(
        rejected(&pg, "excel.csv").await,
        [(
            5,
            o("user_id"),
            s("looks like a number Excel rounded to scientific notation (got \"5.12743E+08\")")
        ),]
    );
    let warned = pg
        .query_one(
            "SELECT w.line, w.column_name, w.raw_value, e.category_id IS NULL, \
             e.extra->>'category_id_raw' \
             FROM streaming.row_warnings w JOIN streaming.ingest_files f USING (file_id) \
             JOIN streaming.events e ON e.file_id = f.file_id \
             AND e.event_time = '2019-10-03 09:07:00+00' WHERE f.file_name = 'excel.csv'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            warned.get::<_, i64>(0),
            warned.get::<_, String>(1),
            warned.get::<_, String>(2),
            warned.get::<_, bool>(3),
            warned.get::<_, Option<String>>(4)
        ),
        (
            3,
            s("category_id"),
            s("2.05301E+18"),
            true,
            o("2.05301E+18")
        )
    );
    db.cleanup().await;
}

/// The README's full profile example, verbatim.
fn readme_profile_example() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find("```toml\n# Required.")
        .expect("README has the example")
        + 8;
    let len = readme[start..].find("```").unwrap();
    readme[start..start + len].to_string()
}

/// (event_time, event_type, product_category, quantity, total_amount, brand, country, extra)
type LadenRow = (
    String,
    String,
    Option<String>,
    i32,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

#[tokio::test(flavor = "multi_thread")]
async fn a_user_profile_from_the_profiles_dir_maps_its_layout() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    drop_fixture(landing.path(), "laden_export.csv", "laden.csv");
    let dir = fixture("user");
    assert_eq!(
        std::fs::read_to_string(dir.join("laden.toml")).unwrap(),
        readme_profile_example(),
        "the fixture is the README's example"
    );
    watch_once_with(
        landing.path(),
        &db,
        None,
        &["--profiles-dir", dir.to_str().unwrap()],
    );
    let pg = db.client().await;
    assert_eq!(
        ledger(&pg, "laden.csv").await,
        (s("loaded"), o("laden"), 4, 3, 1, 0, None)
    );
    let rows: Vec<LadenRow> = pg
        .query(
            "SELECT to_char(event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), event_type, \
                 product_category, quantity, total_amount::text, brand, country, extra::text \
             FROM streaming.events ORDER BY event_time",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
                r.get(7),
            )
        })
        .collect();
    let garden = o("Garten");
    assert_eq!(
        rows,
        [
            (
                s("2024-03-30 22:59:10"),
                s("view"),
                garden.clone(),
                1,
                None,
                o("Gardena"),
                o("DE"),
                None
            ),
            (
                s("2024-03-31 00:30:00"),
                s("add_to_cart"),
                garden.clone(),
                2,
                None,
                o("Gardena"),
                o("DE"),
                None
            ),
            (
                s("2024-03-31 01:05:00"),
                s("purchase"),
                garden,
                2,
                o("39.98"),
                o("Gardena"),
                o("DE"),
                o(r#"{"Bestellnummer": "B-5001"}"#)
            ),
        ]
    );
    assert_eq!(
        rejected(&pg, "laden.csv").await,
        [(
            5,
            o("Aktion"),
            s("unknown event type (expected angesehen, warenkorb, entfernt or gekauft) (got \"angeklickt\")")
        )]
    );
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_layout_is_rejected_naming_every_profile_and_a_broken_profile_stops_the_start() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    std::fs::write(
        landing.path().join("ga.csv"),
        "Date,Page,Views\n2026-11-01,/home,3\n",
    )
    .unwrap();
    let dir = fixture("user");
    watch_once_with(
        landing.path(),
        &db,
        None,
        &["--profiles-dir", dir.to_str().unwrap()],
    );
    let pg = db.client().await;
    let (status, profile, total, .., error) = ledger(&pg, "ga.csv").await;
    assert_eq!((status.as_str(), profile, total), ("rejected", None, 0));
    let error = error.unwrap();
    assert!(
        error.starts_with("the first line is not the header of any source profile"),
        "{error}"
    );
    for tried in [
        "native (lacks event_id, event_time,",
        "rees46 (lacks event_time, event_type,",
        "laden (lacks zeitpunkt, kundennummer, sitzung, aktion, artikelnummer, warengruppe, preis, menge; \
         expects zeitpunkt;kundennummer;sitzung;aktion;artikelnummer;warengruppe;preis;menge in any order)",
    ] {
        assert!(error.contains(tried), "{tried:?} not in {error}");
    }
    let note = std::fs::read_to_string(landing.path().join("rejected/ga.csv.error.txt")).unwrap();
    assert!(note.contains(&error));

    // A profile file that is not valid: the watcher refuses to start, naming file and problem.
    let broken = tempfile::tempdir().unwrap();
    std::fs::write(
        broken.path().join("shop.toml"),
        "name = \"shop\"\n[columns\n",
    )
    .unwrap();
    let out = Command::new(bin("watch"))
        .args(["--once", "--http-addr", "off", "--profiles-dir"])
        .arg(broken.path())
        .arg("--landing-dir")
        .arg(landing.path())
        .env("DATABASE_URL", &db.url)
        .env("KAFKA_BROKERS", "")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--profiles-dir: source profile ")
            && stderr.contains("shop.toml is not a valid profile file")
            && stderr.contains("line 2"),
        "{stderr}"
    );
    db.cleanup().await;
}
