//! Issue 13, points 1-3, through the real watcher: an Excel-resaved REES46 file loads every row
//! with its damaged category_id NULL, the raw text in events.extra and one row_warnings row
//! each; a four-digit-year profile meets two-digit years; a native event in the year 0011 is
//! rejected; a quarantined file's ledger row counts its rows and rejected_rows holds them.

use std::path::Path;

use crate::support::*;

const NATIVE: &str = "event_id,event_time,user_id,session_id,event_type,product_id,product_category,product_price,quantity,total_amount,device,country";

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/profiles")
        .join(name)
}

/// (status, total, loaded, rejected, duplicate, quarantined, values_repaired, notes, error)
type Ledger = (
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
);

async fn ledger(pg: &tokio_postgres::Client, file: &str) -> Ledger {
    let r = pg
        .query_one(
            "SELECT status, rows_total, rows_loaded, rows_rejected, rows_duplicate, \
             rows_quarantined, values_repaired, notes, error \
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
        r.get(7),
        r.get(8),
    )
}

async fn strings(pg: &tokio_postgres::Client, sql: &str, file: &str) -> Vec<String> {
    pg.query(sql, &[&file])
        .await
        .expect(sql)
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn s(v: &str) -> String {
    v.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_excel_resaved_rees46_file_loads_every_row_and_reports_each_damaged_category_id() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    // Every category_id as Excel writes a 19-digit number: before, every row was rejected and
    // the file quarantined.
    let text = std::fs::read_to_string(fixture("rees46_excel_resaved.csv")).unwrap();
    let mut lines = text.lines();
    let mut all_damaged = format!("{}\n", lines.next().unwrap());
    for line in lines.filter(|l| !l.contains("5.12743E+08")) {
        let mut fields: Vec<&str> = line.split(',').collect();
        fields[3] = "2.05301E+18";
        all_damaged += &(fields.join(",") + "\n");
    }
    std::fs::write(landing.path().join("excel_all.csv"), all_damaged).unwrap();
    watch_once(landing.path(), &db, None);
    let pg = db.client().await;

    assert_eq!(
        ledger(&pg, "excel_all.csv").await,
        (s("loaded"), 3, 3, 0, 0, 0, 3, None, None)
    );
    assert_eq!(
        strings(
            &pg,
            "SELECT coalesce(category_id::text, 'NULL') || ' ' || category_code || ' ' || \
             (extra->>'category_id_raw') FROM streaming.events WHERE source_file = $1 \
             ORDER BY event_time",
            "excel_all.csv"
        )
        .await,
        ["NULL computers.notebook 2.05301E+18"; 3]
    );
    assert_eq!(
        strings(
            &pg,
            "SELECT w.line || '|' || w.column_name || '|' || w.reason || '|' || w.raw_value \
             FROM streaming.row_warnings w JOIN streaming.ingest_files f USING (file_id) \
             WHERE f.file_name = $1 ORDER BY w.line",
            "excel_all.csv"
        )
        .await,
        [2, 3, 4].map(|l| format!(
            "{l}|category_id|looks like a number Excel rounded to scientific notation|2.05301E+18"
        ))
    );
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.rejected_rows").await,
        0
    );
    assert_eq!(stats_mismatches(&pg).await, 0);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_four_digit_year_pattern_leaves_two_digit_years_to_the_next_and_year_0011_is_rejected() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let profiles = tempfile::tempdir().unwrap();
    std::fs::write(
        profiles.path().join("till.toml"),
        r#"
name = "till"
time_formats = ["%m/%d/%Y %H:%M", "%m/%d/%y %H:%M"]
[columns]
event_time = "when"
user_id = "customer"
session_id = "visit"
event_type = "action"
product_id = "sku"
product_price = "price"
[defaults]
quantity = "1"
"#,
    )
    .unwrap();
    std::fs::write(
        landing.path().join("till.csv"),
        "when,customer,visit,action,sku,price\n\
         2/20/11 11:39,c1,v1,view,p1,1.00\n\
         2/20/2011 11:40,c1,v1,view,p1,1.00\n\
         2/20/0011 11:41,c1,v1,view,p1,1.00\n",
    )
    .unwrap();
    std::fs::write(
        landing.path().join("native.csv"),
        format!(
            "{NATIVE}\n\
             00000001-0000-4000-8000-000000000001,0011-02-20T11:39:00.000000Z,u1,s1,view,p1,books,9.99,1,,mobile,DE\n\
             00000001-0000-4000-8000-000000000002,2011-02-20T11:39:00.000000Z,u1,s1,view,p1,books,9.99,1,,mobile,DE\n"
        ),
    )
    .unwrap();
    let dir = profiles.path().to_str().unwrap();
    watch_once_with(landing.path(), &db, None, &["--profiles-dir", dir]);
    let pg = db.client().await;

    assert_eq!(
        strings(
            &pg,
            "SELECT to_char(event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') \
             FROM streaming.events WHERE source_file = $1 ORDER BY event_time",
            "till.csv"
        )
        .await,
        ["2011-02-20 11:39", "2011-02-20 11:40"]
    );
    let window = "outside the plausible event_time window 1990-01-01..now+2d (a profile's \
                  event_time_window or --event-time-window)";
    let rejected = "SELECT r.line || '|' || r.column_name || '|' || r.reason \
                    FROM streaming.rejected_rows r JOIN streaming.ingest_files f USING (file_id) \
                    WHERE f.file_name = $1 ORDER BY r.line";
    assert_eq!(
        strings(&pg, rejected, "till.csv").await,
        [format!(
            "4|when|{window} (got \"0011-02-20T11:41:00.000000Z\")"
        )]
    );
    assert_eq!(
        strings(&pg, rejected, "native.csv").await,
        [format!(
            "2|event_time|{window} (got \"0011-02-20T11:39:00.000000Z\")"
        )]
    );
    assert_eq!(
        ledger(&pg, "native.csv").await,
        (s("loaded"), 2, 1, 1, 0, 0, 0, None, None)
    );
    assert_eq!(stats_mismatches(&pg).await, 0);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quarantined_file_counts_its_rows_and_keeps_its_bad_rows_in_sql() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let row = |n: usize, quantity: &str| {
        format!(
            "00000002-0000-4000-8000-{n:012x},2026-11-01T10:30:00Z,u1,s1,view,p1,books,9.99,{quantity},,mobile,DE\n"
        )
    };
    let mut text = format!("{NATIVE}\n");
    text += &row(1, "1");
    for n in 2..=4 {
        text += &row(n, "0");
    }
    std::fs::write(landing.path().join("mostly_bad.csv"), text).unwrap();
    watch_once(landing.path(), &db, None);
    let pg = db.client().await;

    assert_eq!(
        ledger(&pg, "mostly_bad.csv").await,
        (
            s("rejected"),
            4,
            0,
            3,
            0,
            1,
            0,
            None,
            Some(s(
                "3 of 4 rows (75.0%) broke the contract, more than --max-reject-fraction 0.5; \
                 nothing of the file was loaded. The bad rows and their reasons are in \
                 streaming.rejected_rows and rejected/mostly_bad.csv.rejected.csv."
            ))
        )
    );
    assert_eq!(
        strings(
            &pg,
            "SELECT r.line || '|' || r.column_name || '|' || r.reason \
             FROM streaming.rejected_rows r JOIN streaming.ingest_files f USING (file_id) \
             WHERE f.file_name = $1 ORDER BY r.line",
            "mostly_bad.csv"
        )
        .await,
        [3, 4, 5].map(|l| format!("{l}|quantity|must be at least 1 (got \"0\")"))
    );
    assert_eq!(count(&pg, "SELECT count(*) FROM streaming.events").await, 0);
    assert!(landing.path().join("rejected/mostly_bad.csv").exists());
    db.cleanup().await;
}
