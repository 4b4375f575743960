use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;

fn spawn_watcher(landing: &Path, db: &TestDb) -> Child {
    Command::new(bin("watch"))
        .env("HTTP_ADDR", "off")
        .arg("--landing-dir")
        .arg(landing)
        .args(["--settle-ms", "100", "--rescan-secs", "1"])
        .env("DATABASE_URL", &db.url)
        .env("KAFKA_BROKERS", "")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start shopstream-watch")
}

/// Kilobytes of resident memory of a running process (VmRSS).
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_watchers_on_one_directory_ingest_each_file_exactly_once() {
    const FILES: usize = 240;
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    // Migrations first, so that the three start together on a ready schema.
    watch_once(landing.path(), &db, None);
    let watchers: Vec<Child> = (0..3).map(|_| spawn_watcher(landing.path(), &db)).collect();
    generate(
        landing.path(),
        FILES,
        200,
        91,
        &["--duplicate-fraction", "0.01"],
    );
    let pg = db.client().await;
    let done = wait_for(Duration::from_secs(300), || async {
        count(&pg, "SELECT count(*) FROM streaming.ingest_files").await >= FILES as i64
            && csv_count(landing.path()) == 0
    })
    .await;
    // Give a late double-ingest the chance to show itself before looking.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let logs: Vec<String> = watchers
        .into_iter()
        .map(|w| String::from_utf8_lossy(&terminate(w).stderr).into_owned())
        .collect();
    assert!(done, "every file ingested; logs:\n{}", logs.join("\n"));

    let by_status = pg
        .query(
            "SELECT status, count(*), count(DISTINCT file_name) FROM streaming.ingest_files GROUP BY 1",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, i64, i64)> = by_status
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        got,
        vec![("loaded".to_string(), FILES as i64, FILES as i64)],
        "each file exactly once, none seen as a duplicate of itself"
    );
    let rows = csv_rows(&landing.path().join("processed"));
    let distinct_ids = distinct(rows.iter().map(|(_, _, f)| f[0].as_str())).len() as i64;
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.events").await,
        distinct_ids
    );
    assert_eq!(
        count(
            &pg,
            "SELECT sum(rows_total)::bigint FROM streaming.ingest_files"
        )
        .await,
        rows.len() as i64
    );
    assert_eq!(stats_mismatches(&pg).await, 0);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_does_not_grow_with_the_number_of_files_processed() {
    const FILES: usize = 10_000;
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let source = tempfile::tempdir().unwrap();
    generate(source.path(), FILES, 3, 93, &[]);
    let mut names: Vec<_> = std::fs::read_dir(source.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();

    let watcher = spawn_watcher(landing.path(), &db);
    let pg = db.client().await;
    wait_for_schema(&pg).await;
    let mut samples = Vec::new();
    for (batch, files) in names.chunks(1_000).enumerate() {
        for file in files {
            std::fs::rename(file, landing.path().join(file.file_name().unwrap())).unwrap();
        }
        let want = ((batch + 1) * 1_000) as i64;
        let caught_up = wait_for(Duration::from_secs(300), || async {
            count(&pg, "SELECT count(*) FROM streaming.ingest_files").await >= want
        })
        .await;
        assert!(caught_up, "{want} files ingested");
        samples.push(rss_kb(watcher.id()));
    }
    terminate(watcher);
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM streaming.ingest_files WHERE status = 'loaded'"
        )
        .await,
        FILES as i64
    );
    // After the first thousand files the watcher's memory is warmed up; from there on it may
    // wobble with the allocator but must not climb with every file.
    let first = samples[0];
    let last = *samples.last().unwrap();
    eprintln!("watcher RSS (kB) after each 1,000 files: {samples:?}");
    assert!(
        last < first + 16 * 1024,
        "RSS grew from {first} kB to {last} kB over {FILES} files: {samples:?}"
    );
    db.cleanup().await;
}
