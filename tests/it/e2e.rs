use std::collections::HashMap;
use std::time::Duration;

use crate::support::*;

/// The CSV rows by event_id, first occurrence wins (later ones are duplicates).
fn first_by_id(rows: &[(String, usize, Vec<String>)]) -> HashMap<String, Vec<String>> {
    let mut by_id = HashMap::new();
    for (_, _, f) in rows {
        by_id.entry(f[0].clone()).or_insert_with(|| f.clone());
    }
    by_id
}

const EVENT_AS_CSV: &str = "SELECT event_id::text, \
    to_char(event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), user_id, session_id, \
    event_type, product_id, coalesce(product_category, ''), product_price::text, quantity::text, \
    coalesce(total_amount::text, ''), coalesce(device, ''), coalesce(country, '') FROM streaming.events";

#[tokio::test(flavor = "multi_thread")]
async fn generate_ingest_then_every_table_and_the_topic_hold_exactly_the_generated_events() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let topic = unique("events");
    generate(
        landing.path(),
        4,
        2_500,
        11,
        &["--duplicate-fraction", "0.02", "--late-fraction", "0.05"],
    );
    let rows = csv_rows(landing.path());
    let expected = first_by_id(&rows);
    let duplicates = rows.len() - expected.len();
    assert!(duplicates > 0, "the generator was asked for duplicates");

    watch_once(landing.path(), &db, Some(&topic));
    let pg = db.client().await;

    // Ledger: four loaded files, every row accounted for, all mirrored.
    let ledger = pg
        .query_one(
            "SELECT count(*), sum(rows_total)::bigint, sum(rows_loaded)::bigint, sum(rows_rejected)::bigint, \
             sum(rows_duplicate)::bigint, count(mirrored_at), count(*) FILTER (WHERE admitted_by = 'settled') \
             FROM streaming.ingest_files WHERE status = 'loaded'",
            &[],
        )
        .await
        .unwrap();
    let got: (i64, i64, i64, i64, i64, i64, i64) = (
        ledger.get(0),
        ledger.get(1),
        ledger.get(2),
        ledger.get(3),
        ledger.get(4),
        ledger.get(5),
        ledger.get(6),
    );
    let n = expected.len() as i64;
    assert_eq!(got, (4, 10_000, n, 0, duplicates as i64, 4, 4));

    // Events: exactly the distinct generated events, every value as written.
    let stored: HashMap<String, Vec<String>> = pg
        .query(EVENT_AS_CSV, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (0..12).map(|i| r.get::<_, String>(i)).collect::<Vec<_>>())
        .map(|f| (f[0].clone(), f))
        .collect();
    assert_eq!(stored.len(), expected.len());
    for (id, fields) in &expected {
        assert_eq!(stored.get(id), Some(fields), "event {id}");
    }

    // Purchases and revenue.
    let purchases: Vec<&Vec<String>> = expected.values().filter(|f| f[4] == "purchase").collect();
    let revenue_cents: i64 = purchases
        .iter()
        .map(|f| (f[9].parse::<f64>().unwrap() * 100.0).round() as i64)
        .sum();
    assert!(!purchases.is_empty());
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.purchases").await,
        purchases.len() as i64
    );
    assert_eq!(
        count(
            &pg,
            "SELECT (sum(total_amount) * 100)::bigint FROM streaming.purchases"
        )
        .await,
        revenue_cents
    );

    // Hourly stats equal the recompute, and count every event once.
    assert_eq!(stats_mismatches(&pg).await, 0);
    assert_eq!(
        count(
            &pg,
            "SELECT sum(event_count)::bigint FROM streaming.event_stats_hourly"
        )
        .await,
        n
    );

    // Files moved on.
    assert_eq!(csv_count(landing.path()), 0);
    assert_eq!(csv_count(&landing.path().join("processed")), 4);

    // Kafka: every loaded event, keyed by its user, with the contract's values.
    let (messages, _) = read_topic(&topic, expected.len(), Duration::from_secs(60));
    assert_eq!(
        messages.len(),
        expected.len(),
        "every loaded event reached the topic"
    );
    for (id, fields) in &expected {
        let (key, payload) = &messages[id];
        assert_eq!(key, &fields[2], "keyed by user_id");
        assert_eq!(payload["event_type"], fields[4].as_str());
        assert_eq!(payload["event_time"], fields[1].as_str());
    }
    db.cleanup().await;
}

/// A file just loaded is mirrored from messages built from its rows on the reader's thread; a
/// file of the backlog from the outbox (its rows read back from Postgres). Both give the same
/// messages, to the byte, also for values Postgres stores otherwise than the file writes them.
#[tokio::test(flavor = "multi_thread")]
async fn messages_built_from_the_loaded_rows_equal_those_read_back_from_the_outbox() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    generate(
        landing.path(),
        2,
        1_000,
        41,
        &["--search-share", "0.1", "--duplicate-fraction", "0.02"],
    );
    // An upper-case id, decimals with a plus sign and leading zeros, a fraction of one digit,
    // and a device the rules set aside (loaded as NULL).
    let odd = "0A1B2C3D-0000-4000-8000-00000000000A,2026-11-01T10:00:00.5Z,u1,s1,purchase,p1,\
               books,+007.50,2,0015.00,phone,DE";
    let text = shopstream::schema::header_line() + "\n" + odd + "\n";
    std::fs::write(landing.path().join("odd.csv"), text).unwrap();
    let just_loaded = unique("loaded");
    watch_once(landing.path(), &db, Some(&just_loaded));
    let pg = db.client().await;
    let events = count(&pg, "SELECT count(*) FROM streaming.events").await as usize;
    assert!(events > 1_900, "{events} events loaded");

    // The same files as backlog: mirrored again, from the outbox, to another topic.
    pg.execute("UPDATE streaming.ingest_files SET mirrored_at = NULL", &[])
        .await
        .unwrap();
    let from_outbox = unique("outbox");
    let empty = tempfile::tempdir().unwrap();
    watch_once(empty.path(), &db, Some(&from_outbox));

    let a = read_topic_raw(&just_loaded, events, Duration::from_secs(30));
    let b = read_topic_raw(&from_outbox, events, Duration::from_secs(30));
    assert_eq!(a.len(), events);
    assert_eq!(b.len(), events);
    assert!(a == b, "the two mirrors differ");
    let (key, payload) = &a["0a1b2c3d-0000-4000-8000-00000000000a"];
    assert_eq!(key, "u1");
    assert!(
        payload.contains(r#""event_time":"2026-11-01T10:00:00.500000Z""#)
            && payload.contains(r#""product_price":7.50,"quantity":2,"total_amount":15.00"#)
            && payload.contains(r#""device":null,"country":"DE""#),
        "{payload}"
    );
    assert_eq!(
        b.values()
            .filter(|(_, p)| p.contains("search_query"))
            .count(),
        count(
            &pg,
            "SELECT count(*) FROM streaming.events WHERE event_type = 'search'"
        )
        .await as usize
    );
    db.cleanup().await;
}

/// The outbox finds a file's events through a BRIN on file_id (sql/V18), which is only as good
/// as its summaries and the planner's statistics: `summarize_event_files` brings both up to
/// date for days written since autovacuum last came, and each file reads back exactly its rows
/// through the index.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_of_a_fresh_day_is_read_back_through_the_file_index() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    generate(landing.path(), 8, 2_500, 43, &[]);
    watch_once(landing.path(), &db, None);
    let pg = db.client().await;
    let summarized: i64 = pg
        .query_one("SELECT streaming.summarize_event_files()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(summarized > 0, "no page range was left to summarise");
    let again: i64 = pg
        .query_one("SELECT streaming.summarize_event_files()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(again, 0, "the first call left ranges unsummarised");
    let unanalysed = count(
        &pg,
        "SELECT count(*) FROM pg_stat_user_tables WHERE schemaname = 'streaming' \
         AND relname ~ '^events_[0-9]{8}$' AND last_analyze IS NULL AND last_autoanalyze IS NULL",
    )
    .await;
    assert_eq!(unanalysed, 0, "days without statistics on file_id");

    let files = pg
        .query(
            "SELECT file_id, rows_loaded FROM streaming.ingest_files WHERE status = 'loaded'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(files.len(), 8);
    for file in &files {
        let (file_id, loaded): (i64, i64) = (file.get(0), file.get(1));
        let read = pg
            .query_one(
                "SELECT count(*) FROM streaming.events WHERE file_id = $1",
                &[&file_id],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        assert_eq!(read, loaded, "file {file_id}");
    }
    let plan: Vec<String> = pg
        .query(
            "EXPLAIN SELECT * FROM streaming.events WHERE file_id = $1",
            &[&files[3].get::<_, i64>(0)],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(
        plan.contains("Bitmap Index Scan") && !plan.contains("Seq Scan"),
        "{plan}"
    );
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_file_dropped_again_under_any_name_changes_nothing() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    generate(landing.path(), 2, 1_000, 21, &[]);
    watch_once(landing.path(), &db, None);
    let pg = db.client().await;
    let before = snapshot(&pg).await;
    assert_eq!(before.0, 2_000);

    let processed = landing.path().join("processed");
    let first = std::fs::read_dir(&processed)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let name = first.file_name().unwrap().to_owned();
    std::fs::copy(&first, landing.path().join(&name)).unwrap();
    std::fs::copy(&first, landing.path().join("renamed copy.csv")).unwrap();
    watch_once(landing.path(), &db, None);

    assert_eq!(snapshot(&pg).await, before);
    assert_eq!(stats_mismatches(&pg).await, 0);
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.ingest_files WHERE status = 'duplicate_file' AND error LIKE 'same content as %'").await,
        2
    );
    assert_eq!(
        csv_count(landing.path()),
        0,
        "duplicates are archived, not left behind"
    );
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_whose_event_id_is_already_loaded_count_as_duplicates() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    generate(landing.path(), 1, 1_000, 31, &[]);
    watch_once(landing.path(), &db, None);
    let pg = db.client().await;

    // A new file: 100 rows already loaded, then 50 new ones from another seed.
    let old = csv_rows(&landing.path().join("processed"));
    let fresh_dir = tempfile::tempdir().unwrap();
    generate(fresh_dir.path(), 1, 50, 32, &[]);
    let fresh = csv_rows(fresh_dir.path());
    let mut text = shopstream::schema::header_line() + "\n";
    for (_, _, f) in old.iter().take(100).chain(fresh.iter()) {
        text += &(f.join(",") + "\n");
    }
    std::fs::write(landing.path().join("overlap.csv"), text).unwrap();
    watch_once(landing.path(), &db, None);

    let row = pg
        .query_one(
            "SELECT rows_total, rows_loaded, rows_duplicate, rows_rejected FROM streaming.ingest_files \
             WHERE file_name = 'overlap.csv'",
            &[],
        )
        .await
        .unwrap();
    let got: (i64, i64, i64, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(got, (150, 50, 100, 0));
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.events").await,
        1_050
    );
    assert_eq!(stats_mismatches(&pg).await, 0);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_rows_are_rejected_with_reasons_and_good_rows_still_load() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let out = run_ok(
        std::process::Command::new(bin("gen"))
            .arg("--out")
            .arg(landing.path())
            .args([
                "--files",
                "2",
                "--rows-per-file",
                "1000",
                "--seed",
                "5",
                "--invalid-fraction",
                "0.1",
            ]),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let invalid: i64 = stdout
        .rsplit("invalid ")
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(invalid > 100, "{stdout}");
    let topic = unique("bad");
    let dead_letters = format!("{topic}.rejected");
    watch_once_with(
        landing.path(),
        &db,
        Some(&topic),
        &["--kafka-rejected-topic", &dead_letters],
    );
    let pg = db.client().await;

    // The dead-letter topic: every rejected row, keyed by its file, as the ledger stores it.
    let letter_id =
        |p: &serde_json::Value| format!("{}:{}", p["file"].as_str().unwrap(), p["line"]);
    let (letters, _) = read_topic_by(
        &kafka_brokers(),
        &dead_letters,
        letter_id,
        invalid as usize,
        Duration::from_secs(60),
    );
    assert_eq!(
        letters.len(),
        invalid as usize,
        "every rejected row is a dead letter"
    );
    let stored = pg
        .query(
            "SELECT f.file_name, r.line, r.column_name, r.reason, r.raw_line \
             FROM streaming.rejected_rows r JOIN streaming.ingest_files f USING (file_id)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(stored.len(), invalid as usize);
    for r in &stored {
        let (file, line): (String, i64) = (r.get(0), r.get(1));
        let (key, letter) = &letters[&format!("{file}:{line}")];
        assert_eq!(key, &file, "keyed by the file's name");
        assert_eq!(letter["column"].as_str(), r.get::<_, Option<&str>>(2));
        assert_eq!(letter["reason"].as_str(), Some(r.get::<_, &str>(3)));
        assert_eq!(letter["raw_line"].as_str(), Some(r.get::<_, &str>(4)));
    }
    let row = pg
        .query_one(
            "SELECT sum(rows_total)::bigint, sum(rows_loaded)::bigint, sum(rows_rejected)::bigint, \
             sum(rows_duplicate)::bigint FROM streaming.ingest_files",
            &[],
        )
        .await
        .unwrap();
    let (total, loaded, rejected, duplicate): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(total, 2_000);
    assert_eq!(rejected, invalid);
    assert_eq!(loaded + rejected + duplicate, total);
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.events").await,
        loaded
    );
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.rejected_rows WHERE (column_name IS NOT NULL OR reason LIKE 'has % fields where the header has 12') AND reason <> '' AND raw_line <> '' AND line >= 2").await,
        rejected
    );
    let rejected_dir = landing.path().join("rejected");
    let error_files: Vec<_> = std::fs::read_dir(&rejected_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        error_files.len(),
        2,
        "one .rejected.csv per file: {error_files:?}"
    );
    let text = std::fs::read_to_string(&error_files[0]).unwrap();
    assert!(text.starts_with(&(shopstream::schema::header_line() + ",line,reason")));
    db.cleanup().await;
}

/// Row counts that a re-drop must leave unchanged.
async fn snapshot(pg: &tokio_postgres::Client) -> (i64, i64, i64, i64) {
    (
        count(pg, "SELECT count(*) FROM streaming.events").await,
        count(pg, "SELECT count(*) FROM streaming.purchases").await,
        count(
            pg,
            "SELECT sum(event_count)::bigint FROM streaming.event_stats_hourly",
        )
        .await,
        count(
            pg,
            "SELECT count(*) FROM streaming.ingest_files WHERE status = 'loaded'",
        )
        .await,
    )
}

/// Prices and amounts travel in numeric's binary form, encoded by shopstream itself: every shape
/// the contract admits must arrive as the very value (and scale) PostgreSQL reads from the text.
#[tokio::test(flavor = "multi_thread")]
async fn decimals_sent_in_binary_equal_the_servers_reading_of_the_text() {
    use shopstream::load::binary::Decimal;
    let db = TestDb::new().await;
    let pg = db.client().await;
    let samples = [
        "0",
        "0.00",
        "-0",
        "+7",
        "1",
        "19.99",
        "-12.50",
        "10000",
        "9999.9999",
        "0.0001",
        "0.00005",
        "007.10",
        "123456789012345678901234567890.123456789",
        "100000000",
        "-0.5",
        "99999999999999999999",
        "1.000000000000000000001",
    ];
    for text in samples {
        let row = pg
            .query_one(
                "SELECT $1::numeric::text, $2::text::numeric::text",
                &[&Decimal(text), &text],
            )
            .await
            .unwrap();
        let (sent, read): (String, String) = (row.get(0), row.get(1));
        assert_eq!(sent, read, "{text}");
    }
    db.cleanup().await;
}
