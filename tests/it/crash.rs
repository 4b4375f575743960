use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};

use crate::support::*;

const FILES: usize = 50;
const ROWS: usize = 2_000;
const KILLS: usize = 20;

fn spawn_watcher(landing: &Path, db: &TestDb, topic: &str) -> Child {
    Command::new(bin("watch"))
        .env("HTTP_ADDR", "off")
        .arg("--landing-dir")
        .arg(landing)
        // Every file is renamed into place by the feeder, so none needs to settle. A settle wait
        // would let a file found by a restart's scan be overtaken by one announced by rename,
        // which changes which of two files counts a shared event as its duplicate (see
        // COMPARISONS). Parallel workers would do it all the time: both runs load one at a time.
        .args(["--settle-ms", "0", "--rescan-secs", "1", "--workers", "1"])
        .env("DATABASE_URL", &db.url)
        .env("KAFKA_BROKERS", kafka_brokers())
        .env("KAFKA_TOPIC", topic)
        .env("KAFKA_REJECTED_TOPIC", format!("{topic}.rejected"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start shopstream-watch")
}

/// Drops the files of `source` into `landing` one at a time, each renamed into place.
fn feed(source: &Path, landing: &Path, done: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let mut files: Vec<_> = std::fs::read_dir(source)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let landing = landing.to_path_buf();
    std::thread::spawn(move || {
        for file in files {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let tmp = landing.join(format!(".{name}.tmp"));
            std::fs::copy(&file, &tmp).unwrap();
            std::fs::rename(&tmp, landing.join(&name)).unwrap();
            std::thread::sleep(Duration::from_millis(60));
        }
        done.store(true, Ordering::SeqCst);
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_random_moments_leaves_every_table_as_a_clean_run_would() {
    let source = tempfile::tempdir().unwrap();
    generate(
        source.path(),
        FILES,
        ROWS,
        77,
        &[
            "--duplicate-fraction",
            "0.02",
            "--late-fraction",
            "0.05",
            "--invalid-fraction",
            "0.01",
        ],
    );

    // The reference: one uninterrupted batch run.
    let clean_db = TestDb::new().await;
    let clean_landing = tempfile::tempdir().unwrap();
    copy_dir(source.path(), clean_landing.path());
    watch_once_with(clean_landing.path(), &clean_db, None, &["--workers", "1"]);

    // The chaos run: files stream in while the watcher is killed with SIGKILL again and again.
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let topic = unique("chaos");
    let fed = Arc::new(AtomicBool::new(false));
    let feeder = feed(source.path(), landing.path(), fed.clone());
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let mut kills = 0;
    let started = Instant::now();
    while kills < KILLS || !fed.load(Ordering::SeqCst) {
        let mut watcher = spawn_watcher(landing.path(), &db, &topic);
        std::thread::sleep(Duration::from_millis(rng.random_range(150..900)));
        watcher.kill().unwrap(); // SIGKILL
        watcher.wait().unwrap();
        kills += 1;
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "chaos loop ran too long"
        );
    }
    feeder.join().unwrap();

    // The last start finishes the work: every file moved on, every file mirrored.
    let watcher = spawn_watcher(landing.path(), &db, &topic);
    let pg = db.client().await;
    wait_for_schema(&pg).await;
    let settled = wait_for(Duration::from_secs(180), || async {
        csv_count(landing.path()) == 0
            && count(
                &pg,
                "SELECT count(*) FROM streaming.ingest_files WHERE status = 'loaded' AND mirrored_at IS NULL",
            )
            .await
                == 0
    })
    .await;
    terminate(watcher);
    assert!(settled, "the watcher caught up after {kills} kills");

    let clean = clean_db.client().await;
    for (what, sql) in COMPARISONS {
        let want = table_text(&clean, sql).await;
        let got = table_text(&pg, sql).await;
        assert!(!want.is_empty(), "{what} is empty in the clean run");
        let missing: Vec<_> = want.iter().filter(|r| !got.contains(r)).take(5).collect();
        let extra: Vec<_> = got.iter().filter(|r| !want.contains(r)).take(5).collect();
        assert!(
            got == want,
            "{what} differs after {kills} kills ({} rows vs {} in the clean run); \
             missing {missing:?}; unexpected {extra:?}",
            got.len(),
            want.len()
        );
    }
    assert_eq!(stats_mismatches(&pg).await, 0);
    let events = count(&pg, "SELECT count(*) FROM streaming.events").await as usize;
    let (messages, _) = read_topic(&topic, events, Duration::from_secs(120));
    assert_eq!(
        messages.len(),
        events,
        "every loaded event is in the topic at least once"
    );
    eprintln!(
        "chaos: {kills} kills, {FILES} files, {} rows, {events} events; tables equal a clean run",
        FILES * ROWS
    );
    clean_db.cleanup().await;
    db.cleanup().await;
}

/// Each table as sorted text rows, without the columns that name a run (ids, clocks).
/// Which of two files counts an event they share as its duplicate depends on which commits
/// first, and a claim still held by a killed watcher's backend can let a later file go first;
/// so per file the ledger is compared with loaded and duplicate rows together, and the split
/// only in total.
const COMPARISONS: [(&str, &str); 6] = [
    (
        "events",
        "SELECT event_id::text, event_time::text, user_id, session_id, event_type, product_id, \
         coalesce(product_category, ''), product_price::text, quantity::text, \
         coalesce(total_amount::text, ''), coalesce(device, ''), coalesce(country, '') \
         FROM streaming.events",
    ),
    (
        "purchases",
        "SELECT event_id::text, event_time::text, user_id, session_id, product_id, \
         coalesce(product_category, ''), product_price::text, quantity::text, total_amount::text \
         FROM streaming.purchases",
    ),
    (
        "event_stats_hourly",
        "SELECT hour::text, event_type, product_category, event_count::text, quantity::text, \
         revenue::text FROM streaming.event_stats_hourly",
    ),
    (
        "ingest_files",
        "SELECT file_name, status, size_bytes::text, sha256, rows_total::text, \
         (rows_loaded + rows_duplicate)::text, rows_rejected::text FROM streaming.ingest_files",
    ),
    (
        "ledger totals",
        "SELECT sum(rows_loaded)::text, sum(rows_duplicate)::text FROM streaming.ingest_files",
    ),
    (
        "rejected_rows",
        "SELECT f.file_name, r.line::text, coalesce(r.column_name, ''), r.reason, r.raw_line \
         FROM streaming.rejected_rows r JOIN streaming.ingest_files f USING (file_id)",
    ),
];

async fn table_text(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = client
        .query(sql, &[])
        .await
        .expect(sql)
        .iter()
        .map(|r| (0..r.len()).map(|i| r.get::<_, String>(i)).collect())
        .collect();
    rows.sort();
    rows
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}
