//! What used to stall a run without a word: a file name that is not UTF-8, a file whose mtime
//! is in the future, a lock on `streaming.events` held by another session.

use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_non_utf8_name_is_rejected_and_a_future_mtime_settles_on_the_watchers_clock() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let landing = dir.path().join("landing");
    generate(&landing, 2, 50, 51, &[]);
    let mut names: Vec<_> = std::fs::read_dir(&landing)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    let odd = landing.join(std::ffi::OsStr::from_bytes(b"caf\xe9.csv"));
    std::fs::rename(&names[0], &odd).unwrap();
    let tomorrow = std::fs::File::options()
        .append(true)
        .open(&names[1])
        .unwrap();
    tomorrow
        .set_modified(SystemTime::now() + Duration::from_secs(86_400))
        .unwrap();
    let log = dir.path().join("watch.log");
    let mut child = Command::new(bin("watch"))
        .env("HTTP_ADDR", "off")
        .env("KAFKA_BROKERS", "")
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "info")
        .args(["--once", "--settle-ms", "500", "--landing-dir"])
        .arg(&landing)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "the run ended: {logged}"
    );
    assert_eq!(
        logged.matches("modification time is in the future").count(),
        1,
        "{logged}"
    );
    let pg = db.client().await;
    let rows = pg
        .query(
            "SELECT file_name, status, coalesce(error, '') FROM streaming.ingest_files ORDER BY file_id",
            &[],
        )
        .await
        .unwrap();
    let rows: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let odd_row = rows
        .iter()
        .find(|r| r.0 == "caf\\xE9.csv")
        .expect("escaped name in the ledger");
    assert_eq!(odd_row.1, "rejected", "{rows:?}");
    assert!(odd_row.2.contains("not valid UTF-8"), "{rows:?}");
    assert!(landing
        .join("rejected")
        .join(odd.file_name().unwrap())
        .exists());
    let loaded = names[1].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        rows.iter().any(|r| r.0 == loaded && r.1 == "loaded"),
        "{rows:?}"
    );
    db.cleanup().await;
}

/// The value of an unlabelled metric in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_table_lock_makes_the_watcher_wait_and_say_so_and_the_file_loads_once_released() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let landing = dir.path().join("landing");
    std::fs::create_dir(&landing).unwrap();
    let log = dir.path().join("watch.log");
    let addr = free_addr();
    let child = Command::new(bin("watch"))
        .env("KAFKA_BROKERS", "")
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "info")
        .args(["--settle-ms", "0", "--rescan-secs", "1", "--workers", "1"])
        .args(["--http-addr", &addr, "--landing-dir"])
        .arg(&landing)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let watching = wait_for(Duration::from_secs(60), || async {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Watching the landing directory"))
    })
    .await;
    assert!(watching, "{}", std::fs::read_to_string(&log).unwrap());
    let pg = db.client().await;
    let holder = db.client().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE streaming.events IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    generate(&landing, 1, 200, 61, &[]);

    // The load gives up after its 5 s lock timeout; health says so.
    let mut seen = (0, String::new());
    let waiting = wait_for(Duration::from_secs(20), || {
        let got = http_get(&addr, "/healthz").unwrap_or_default();
        let hit = got.0 == 503 && got.1.contains("waiting");
        seen = got;
        async move { hit }
    })
    .await;
    let (status, body) = seen;
    assert!(waiting, "{status} {body}");
    eprintln!("/healthz while the lock is held: {status} {body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "waiting", "{body}");
    assert_eq!(health["postgres"]["status"], "ok", "{body}");
    assert_eq!(health["watcher"]["status"], "waiting", "{body}");
    let said = health["watcher"]["error"].as_str().unwrap();
    assert!(
        said.contains("a lock on streaming.events (AccessExclusiveLock, pid "),
        "{body}"
    );

    // The HTTP handlers do not hang behind the lock.
    let asked = Instant::now();
    let (status, metrics) = http_get(&addr, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "{:?}",
        asked.elapsed()
    );
    assert!(
        metric(&metrics, "shopstream_lock_timeouts_total").unwrap() >= 1.0,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "shopstream_lock_waiting_files"),
        Some(1.0),
        "{metrics}"
    );
    let asked = Instant::now();
    let (status, files) = http_get(&addr, "/files.json").unwrap();
    assert_eq!(status, 200, "{files}");
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "{:?}",
        asked.elapsed()
    );
    let asked = Instant::now();
    let (status, page) = http_get(&addr, "/").unwrap();
    assert_eq!(status, 200);
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    assert!(page.contains("Cannot read from Postgres: 55P03"), "{page}");
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.ingest_files").await,
        0,
        "nothing is recorded while the load waits"
    );

    holder.batch_execute("COMMIT").await.unwrap();
    let loaded = wait_for(Duration::from_secs(40), || async {
        count(
            &pg,
            "SELECT count(*) FROM streaming.ingest_files WHERE status = 'loaded' AND rows_loaded = 200",
        )
        .await
            == 1
    })
    .await;
    assert!(loaded, "{}", std::fs::read_to_string(&log).unwrap());
    let healthy = wait_for(Duration::from_secs(10), || async {
        http_get(&addr, "/healthz").is_ok_and(|(s, b)| s == 200 && b.contains("\"status\":\"ok\""))
    })
    .await;
    assert!(healthy, "{:?}", http_get(&addr, "/healthz"));
    let (_, metrics) = http_get(&addr, "/metrics").unwrap();
    assert_eq!(
        metric(&metrics, "shopstream_lock_waiting_files"),
        Some(0.0),
        "{metrics}"
    );

    let out = terminate(child);
    assert!(out.status.success());
    let logged = std::fs::read_to_string(&log).unwrap();
    let warned: Vec<&str> = logged.lines().filter(|l| l.contains("WARN")).collect();
    eprintln!("WARN lines: {warned:#?}");
    assert_eq!(warned.len(), 1, "{logged}");
    assert!(
        warned[0].contains("Loading is blocked: another session holds a lock on streaming.events")
            && warned[0].contains("retried with backoff"),
        "{logged}"
    );
    assert_eq!(
        logged.matches("The lock was released").count(),
        1,
        "{logged}"
    );
    db.cleanup().await;
}
