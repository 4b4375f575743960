//! What a scheduler and an operator rely on: exit codes of wrong settings and interrupted
//! batches, notify with the default relative landing directory, a closed log pipe.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// Runs `shopstream-watch --once` with `url`, giving up after `limit`; returns (exit code, stderr).
fn once_with_url(landing: &std::path::Path, url: &str, limit: Duration) -> (Option<i32>, String) {
    let log = landing.with_extension("log");
    let mut child = Command::new(bin("watch"))
        .env("HTTP_ADDR", "off")
        .env("KAFKA_BROKERS", "")
        .env("DATABASE_URL", url)
        .args(["--once", "--settle-ms", "0", "--landing-dir"])
        .arg(landing)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (code, std::fs::read_to_string(&log).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_database_setting_stops_at_once_with_exit_code_2_naming_it() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (base, _) = db.url.rsplit_once('/').unwrap();
    let wrong_password = db.url.replacen(":shopstream@", ":not-the-password@", 1);
    assert_ne!(wrong_password, db.url, "the test URL carries the password");
    let cases = [
        ("not a url".to_string(), "not a url"),
        (format!("{}?sslmode=bogus", db.url), "sslmode"),
        (wrong_password, "password"),
        (
            format!("{base}/no_such_database_here"),
            "no_such_database_here",
        ),
    ];
    for (i, (url, named)) in cases.iter().enumerate() {
        let landing = dir.path().join(format!("landing{i}"));
        let (code, log) = once_with_url(&landing, url, Duration::from_secs(30));
        assert_eq!(code, Some(2), "{url}: {log}");
        assert!(log.contains("DATABASE_URL"), "{url}: {log}");
        assert!(log.contains(named), "{url}: {log}");
        assert!(!log.contains("not-the-password"), "password leaked: {log}");
        assert!(!log.contains("retrying"), "{url} was retried: {log}");
    }
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_batch_exits_143_and_leaves_the_rest_for_the_next_run() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let landing = dir.path().join("landing");
    generate(&landing, 60, 20_000, 31, &[]);
    let mut child = Command::new(bin("watch"))
        .env("HTTP_ADDR", "off")
        .env("KAFKA_BROKERS", "")
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .args([
            "--once",
            "--workers",
            "1",
            "--settle-ms",
            "0",
            "--landing-dir",
        ])
        .arg(&landing)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pg = db.client().await;
    wait_for_schema(&pg).await;
    let started = wait_for(Duration::from_secs(60), || async {
        count(&pg, "SELECT count(*) FROM streaming.ingest_files").await >= 1
    })
    .await;
    assert!(started, "the batch loaded a first file");
    let out = terminate(child_take(&mut child));
    let loaded = count(&pg, "SELECT count(*) FROM streaming.ingest_files").await;
    let left = csv_count(&landing);
    let summary = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        loaded < 60,
        "the stop came before the end ({loaded} files loaded)"
    );
    assert_eq!(out.status.code(), Some(143), "{summary}");
    assert_eq!(
        loaded as usize + left,
        60,
        "every file loaded or left in place"
    );
    assert!(
        summary.contains(&format!("files left in the landing directory {left}")),
        "{summary}"
    );
    // The next run finishes the job and exits 0.
    watch_once(&landing, &db, None);
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.ingest_files").await,
        60
    );
    db.cleanup().await;
}

/// `terminate` takes the child by value; the test keeps it in a variable it may also poll.
fn child_take(child: &mut std::process::Child) -> std::process::Child {
    std::mem::replace(child, Command::new("true").spawn().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn notify_admits_a_renamed_file_in_a_relative_landing_directory_without_a_rescan() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("landing")).unwrap();
    let source = dir.path().join("source");
    generate(&source, 1, 100, 32, &[]);
    let log = dir.path().join("watch.log");
    let watcher = Command::new(bin("watch"))
        .current_dir(dir.path())
        .env("HTTP_ADDR", "off")
        .env("KAFKA_BROKERS", "")
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "info")
        // The default landing directory is the relative `landing`; no rescan within the test.
        .args(["--rescan-secs", "3600", "--settle-ms", "60000"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let watching = wait_for(Duration::from_secs(60), || async {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("Watching the landing directory")
    })
    .await;
    assert!(watching, "{}", std::fs::read_to_string(&log).unwrap());
    let name = std::fs::read_dir(&source)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    std::fs::rename(source.join(&name), dir.path().join("landing").join(&name)).unwrap();
    let pg = db.client().await;
    let loaded = wait_for(Duration::from_secs(10), || async {
        count(
            &pg,
            "SELECT count(*) FROM streaming.ingest_files WHERE admitted_by = 'renamed'",
        )
        .await
            == 1
    })
    .await;
    let out = terminate(watcher);
    assert!(
        loaded,
        "renamed file loaded through notify: {}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(out.status.success());
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_log_pipe_does_not_stop_ingesting() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let landing = dir.path().join("landing");
    generate(&landing, 5, 200, 33, &[]);
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' --once --settle-ms 0 --landing-dir '{}' 2>&1 | head -1 >/dev/null",
            bin("watch").display(),
            landing.display()
        ))
        .env("HTTP_ADDR", "off")
        .env("KAFKA_BROKERS", "")
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "debug")
        .status()
        .unwrap();
    assert!(status.success());
    let pg = db.client().await;
    // `head` exits after the first line; the watcher must have gone on to load every file.
    let done = wait_for(Duration::from_secs(60), || async {
        count(
            &pg,
            "SELECT count(*) FROM streaming.ingest_files WHERE status = 'loaded'",
        )
        .await
            == 5
    })
    .await;
    assert!(done, "every file loaded with its log pipe closed");
    assert_eq!(csv_count(&landing), 0);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_workers_on_files_sharing_event_ids_need_no_whole_file_retry() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let landing = dir.path().join("landing");
    // Duplicates are drawn from recent events, so neighbouring files, which the two workers
    // load at the same time, share event ids.
    generate(&landing, 24, 3_000, 34, &["--duplicate-fraction", "0.3"]);
    let out = watch_once_with(&landing, &db, None, &["--workers", "2"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("Will retry the file"), "{log}");
    assert!(!log.contains("WARN"), "{log}");
    let pg = db.client().await;
    let (events, loaded, total) = (
        count(&pg, "SELECT count(*) FROM streaming.events").await,
        count(&pg, "SELECT sum(rows_loaded)::bigint FROM streaming.ingest_files").await,
        count(&pg, "SELECT sum(rows_loaded + rows_duplicate + rows_rejected)::bigint FROM streaming.ingest_files").await,
    );
    assert_eq!(loaded, events, "each event counted as loaded exactly once");
    assert_eq!(total, 24 * 3_000);
    assert_eq!(stats_mismatches(&pg).await, 0);
    db.cleanup().await;
}
