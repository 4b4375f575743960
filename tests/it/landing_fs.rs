//! A landing directory on a file system that refuses writes: read-only (the file cannot leave
//! `landing/`) and full (its `.error.txt` and `.rejected.csv` cannot be written). Each test
//! mounts its own small tmpfs (the tests run as root); without mount rights it is skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::*;

/// A tmpfs mounted at `dir/landing`, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn new(dir: &Path, size: &str) -> Option<Mount> {
        let at = dir.join("landing");
        std::fs::create_dir(&at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: cannot mount a tmpfs here (needs root and mount rights)");
            return None;
        }
        std::fs::create_dir(at.join("processed")).unwrap();
        std::fs::create_dir(at.join("rejected")).unwrap();
        Some(Mount(at))
    }

    fn remount(&self, mode: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(ok.success(), "remount {mode}");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// One generated file of `rows` good rows, and its text.
fn good_file(dir: &Path, rows: usize, seed: u64) -> (String, String) {
    let source = dir.join(format!("source{seed}"));
    generate(&source, 1, rows, seed, &[]);
    let path = std::fs::read_dir(&source)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    (name, std::fs::read_to_string(path).unwrap())
}

fn once(landing: &Path, db: &TestDb) -> Output {
    Command::new(bin("watch"))
        .env("HTTP_ADDR", "off")
        .env("KAFKA_BROKERS", "")
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "info")
        .args(["--once", "--settle-ms", "0", "--landing-dir"])
        .arg(landing)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_cannot_leave_a_read_only_landing_directory_is_recorded_once_and_moved_later() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = Mount::new(dir.path(), "4m") else {
        return;
    };
    let db = TestDb::new().await;
    let (good, content) = good_file(dir.path(), 20, 41);
    std::fs::write(mount.0.join(&good), content).unwrap();
    std::fs::write(mount.0.join("empty.csv"), "").unwrap();
    mount.remount("ro");
    let log = dir.path().join("watch.log");
    let watcher = Command::new(bin("watch"))
        .env("HTTP_ADDR", "off")
        .env("KAFKA_BROKERS", "")
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "info")
        .args(["--settle-ms", "0", "--rescan-secs", "1", "--landing-dir"])
        .arg(&mount.0)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let pg = db.client().await;
    wait_for_schema(&pg).await;
    let recorded = wait_for(Duration::from_secs(30), || async {
        count(&pg, "SELECT count(*) FROM streaming.ingest_files").await >= 2
    })
    .await;
    assert!(recorded, "{}", std::fs::read_to_string(&log).unwrap());
    // Several rescans and retries later: still one ledger row per file, and one message each.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rows = |status: &'static str| {
        let pg = &pg;
        async move {
            count(
                pg,
                &format!("SELECT count(*) FROM streaming.ingest_files WHERE status = '{status}'"),
            )
            .await
        }
    };
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        (rows("loaded").await, rows("rejected").await),
        (1, 1),
        "{logged}"
    );
    assert_eq!(
        logged.matches("cannot be moved to rejected/").count(),
        1,
        "{logged}"
    );
    assert_eq!(
        logged.matches("cannot be moved to processed/").count(),
        1,
        "{logged}"
    );
    assert!(!logged.contains("Loaded, but"), "{logged}");
    // Writable again: the moves succeed, and nothing is recorded anew.
    mount.remount("rw");
    let moved = wait_for(Duration::from_secs(60), || async {
        count(
            &pg,
            "SELECT count(*) FROM streaming.ingest_files WHERE archived_at IS NOT NULL",
        )
        .await
            == 2
    })
    .await;
    let out = terminate(watcher);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(moved, "{logged}");
    assert!(out.status.success());
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.ingest_files").await,
        2
    );
    assert!(mount.0.join("processed").join(&good).exists());
    let note = std::fs::read_to_string(mount.0.join("rejected/empty.csv.error.txt")).unwrap();
    assert!(note.contains("empty"), "{note}");
    assert_eq!(logged.matches("at last").count(), 2, "{logged}");
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_runs_on_a_read_only_landing_directory_record_each_file_once_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = Mount::new(dir.path(), "4m") else {
        return;
    };
    let db = TestDb::new().await;
    let (good, content) = good_file(dir.path(), 20, 42);
    std::fs::write(mount.0.join(&good), content).unwrap();
    std::fs::write(mount.0.join("header-only.csv"), "event_id,event_time\n").unwrap();
    mount.remount("ro");
    let pg = db.client().await;
    for _ in 0..2 {
        let out = once(&mount.0, &db);
        let logged = text(&out);
        assert!(out.status.success(), "{logged}");
        assert!(
            logged.contains("files that could not leave the landing directory 2"),
            "{logged}"
        );
        assert_eq!(
            count(&pg, "SELECT count(*) FROM streaming.ingest_files").await,
            2,
            "a second run records nothing new: {logged}"
        );
    }
    mount.remount("rw");
    let out = once(&mount.0, &db);
    let logged = text(&out);
    assert!(logged.contains("moving it now"), "{logged}");
    assert_eq!(csv_count(&mount.0), 0, "{logged}");
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM streaming.ingest_files WHERE archived_at IS NOT NULL"
        )
        .await,
        2
    );
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.ingest_files").await,
        2
    );
    let note = std::fs::read_to_string(mount.0.join("rejected/header-only.csv.error.txt")).unwrap();
    assert!(note.starts_with("header-only.csv: "), "{note}");
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_landing_file_system_leaves_no_empty_notes_or_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = Mount::new(dir.path(), "256k") else {
        return;
    };
    let db = TestDb::new().await;
    let (good, content) = good_file(dir.path(), 3, 43);
    let bad_row = "not-a-uuid,2026-01-01T00:00:00Z,u,s,view,p,c,1,1,,mobile,DE\n";
    std::fs::write(mount.0.join(&good), format!("{content}{bad_row}")).unwrap();
    std::fs::write(mount.0.join("empty.csv"), "").unwrap();
    // Fill the file system to the last block.
    {
        use std::io::Write;
        let mut filler =
            std::fs::File::create(dir.path().join("landing/processed/filler")).unwrap();
        while filler
            .write_all(&[b'x'; 4096])
            .and_then(|()| filler.flush())
            .is_ok()
        {}
    }
    let out = once(&mount.0, &db);
    let logged = text(&out);
    assert!(out.status.success(), "{logged}");
    assert!(!logged.contains("Loaded, but"), "{logged}");
    assert!(
        logged.contains("its .error.txt cannot be written"),
        "{logged}"
    );
    assert!(
        !logged.contains(".rejected.csv and"),
        "names no rejects file: {logged}"
    );
    assert!(mount.0.join("rejected/empty.csv").exists(), "{logged}");
    assert!(mount.0.join("processed").join(&good).exists(), "{logged}");
    for entry in std::fs::read_dir(mount.0.join("rejected")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "stray temporary file {name}");
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(name == "empty.csv" || size > 0, "empty {name}");
    }
    let pg = db.client().await;
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.rejected_rows").await,
        1,
        "the bad row is in SQL even when its rejects file could not be written"
    );
    db.cleanup().await;
}
