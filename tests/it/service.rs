use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;

fn start_watcher(
    landing: &std::path::Path,
    db: &TestDb,
    kafka: Option<(&str, &str)>,
    settle_ms: u64,
    log: &std::path::Path,
) -> Child {
    let mut cmd = Command::new(bin("watch"));
    cmd.env("HTTP_ADDR", "off");
    cmd.arg("--landing-dir")
        .arg(landing)
        .args(["--settle-ms", &settle_ms.to_string(), "--rescan-secs", "1"])
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap());
    match kafka {
        Some((brokers, topic)) => cmd.env("KAFKA_BROKERS", brokers).env("KAFKA_TOPIC", topic),
        None => cmd.env("KAFKA_BROKERS", ""),
    };
    cmd.spawn().expect("start shopstream-watch")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_watcher_picks_up_renamed_and_slowly_written_files_and_stops_cleanly() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let topic = unique("live");
    let log = landing.path().join(".watcher.log");
    let watcher = start_watcher(
        landing.path(),
        &db,
        Some((&kafka_brokers(), &topic)),
        700,
        &log,
    );
    // Files that arrive before notify watches are found by the startup scan and must settle;
    // this test is about files announced by notify.
    let watching = wait_for(Duration::from_secs(60), || async {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Watching the landing directory"))
    })
    .await;
    assert!(watching, "the watcher started watching");
    let pg = db.client().await;

    // Renamed into place by the generator: picked up by notify.
    generate(landing.path(), 3, 1_000, 51, &[]);
    // Written under its final name in two bursts: must be read whole, after it settled.
    let source = tempfile::tempdir().unwrap();
    generate(source.path(), 1, 1_000, 52, &[]);
    let full = std::fs::read(
        std::fs::read_dir(source.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap();
    let slow = landing.path().join("slow.csv");
    let mut file = std::fs::File::create(&slow).unwrap();
    file.write_all(&full[..full.len() / 2]).unwrap();
    file.flush().unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    file.write_all(&full[full.len() / 2..]).unwrap();
    drop(file);

    let loaded = wait_for(Duration::from_secs(60), || async {
        count(&pg, "SELECT count(*) FROM streaming.ingest_files WHERE status = 'loaded' AND mirrored_at IS NOT NULL").await == 4
    })
    .await;
    let out = terminate(watcher);
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(
        loaded,
        "four files loaded and mirrored; watcher log:\n{stderr}"
    );
    assert!(
        out.status.success(),
        "exit 0 on SIGTERM: {:?}\n{stderr}",
        out.status
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("files loaded 4"));

    let slow_row = pg
        .query_one(
            "SELECT rows_total, rows_rejected, admitted_by FROM streaming.ingest_files WHERE file_name = 'slow.csv'",
            &[],
        )
        .await
        .unwrap();
    let got: (i64, i64, String) = (slow_row.get(0), slow_row.get(1), slow_row.get(2));
    assert_eq!(
        got,
        (1_000, 0, "settled".to_string()),
        "the slow file was read whole"
    );
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM streaming.ingest_files WHERE admitted_by = 'renamed'"
        )
        .await,
        3
    );
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.events").await,
        4_000
    );
    let (messages, _) = read_topic(&topic, 4_000, Duration::from_secs(60));
    assert_eq!(messages.len(), 4_000);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kafka_outage_leaves_a_backlog_in_the_ledger_that_drains_later() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let topic = unique("backlog");
    generate(landing.path(), 2, 500, 61, &[]);
    // A broker address where nothing listens: Postgres ingestion must go on regardless.
    run_ok(
        Command::new(bin("watch"))
            .env("HTTP_ADDR", "off")
            .arg("--once")
            .arg("--landing-dir")
            .arg(landing.path())
            .args(["--settle-ms", "0", "--kafka-timeout-ms", "1500"])
            .env("DATABASE_URL", &db.url)
            .env("KAFKA_BROKERS", "127.0.0.1:9")
            .env("KAFKA_TOPIC", &topic),
    );
    let pg = db.client().await;
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.events").await,
        1_000
    );
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.ingest_files WHERE status = 'loaded' AND mirrored_at IS NULL").await,
        2,
        "both files wait in the mirror backlog"
    );

    // The broker is back: the next start drains the backlog before anything else.
    watch_once(landing.path(), &db, Some(&topic));
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM streaming.ingest_files WHERE mirrored_at IS NULL"
        )
        .await,
        0
    );
    let (messages, _) = read_topic(&topic, 1_000, Duration::from_secs(60));
    assert_eq!(messages.len(), 1_000);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_marker_mode_a_file_waits_for_its_marker() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let log = landing.path().join(".watcher.log");
    let mut cmd = Command::new(bin("watch"));
    cmd.env("HTTP_ADDR", "off")
        .arg("--landing-dir")
        .arg(landing.path())
        .args([
            "--settle-ms",
            "0",
            "--rescan-secs",
            "1",
            "--marker-suffix",
            ".done",
        ])
        .env("DATABASE_URL", &db.url)
        .env("KAFKA_BROKERS", "")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap());
    let watcher = cmd.spawn().expect("start shopstream-watch");
    let pg = db.client().await;
    wait_for_schema(&pg).await;
    // A marker whose data file never comes: said once, however many rescans see it.
    std::fs::write(landing.path().join("orphan.csv.done"), b"").unwrap();
    generate(landing.path(), 1, 500, 53, &[]);
    let data = std::fs::read_dir(landing.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "csv"))
        .unwrap();

    // Renamed in and settled, but without its marker it is not read, not even by a rescan.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.ingest_files").await,
        0
    );
    let mut marker = data.clone().into_os_string();
    marker.push(".done");
    std::fs::write(&marker, b"").unwrap();
    let loaded = wait_for(Duration::from_secs(30), || async {
        count(&pg, "SELECT count(*) FROM streaming.ingest_files WHERE admitted_by = 'marker' AND rows_loaded = 500").await == 1
    })
    .await;
    terminate(watcher);
    assert!(
        loaded,
        "loaded once its marker appeared; log:\n{}",
        std::fs::read_to_string(&log).unwrap()
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    let orphan_lines: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("A marker without its data file"))
        .collect();
    assert_eq!(orphan_lines.len(), 1, "{logged}");
    assert!(orphan_lines[0].contains("WARN"), "{logged}");
    assert!(
        orphan_lines[0].contains("orphan.csv does not exist"),
        "{logged}"
    );
    assert!(landing.path().join("orphan.csv.done").exists());
    let name = data.file_name().unwrap().to_string_lossy().into_owned();
    let processed = landing.path().join("processed");
    assert!(processed.join(&name).exists());
    assert!(
        processed.join(format!("{name}.done")).exists(),
        "the marker moved with its file"
    );
    db.cleanup().await;
}
