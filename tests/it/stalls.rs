//! Inputs that used to stall a run without a word: a file name that is not UTF-8, a file whose
//! mtime is in the future.

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
