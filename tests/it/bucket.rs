//! A bucket as the landing, on the s3s-fs S3-protocol server that scripts/test starts
//! (SHOPSTREAM_TEST_S3_ENDPOINT): objects loaded and moved to processed/, rejected ones with
//! their reasons beside them, duplicates by content, and three watcher processes sharing one
//! bucket, one of them killed, each object loaded exactly once.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::compressed::{generated_text, gzip, with_bad_line};
use crate::support::*;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("set {name} (scripts/test starts an s3s-fs S3 server on loopback and sets it)")
    })
}

/// A prefix of its own in the test bucket.
pub struct TestBucket {
    store: AmazonS3,
    bucket: String,
    pub prefix: String,
}

impl TestBucket {
    pub fn new() -> TestBucket {
        let endpoint = env("SHOPSTREAM_TEST_S3_ENDPOINT");
        let bucket = env("SHOPSTREAM_TEST_S3_BUCKET");
        let store = AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_bucket_name(&bucket)
            .with_access_key_id(env("AWS_ACCESS_KEY_ID"))
            .with_secret_access_key(env("AWS_SECRET_ACCESS_KEY"))
            .with_region("us-east-1")
            .with_allow_http(true)
            .build()
            .unwrap();
        TestBucket {
            store,
            bucket,
            prefix: unique("landing"),
        }
    }

    /// `s3://BUCKET/PREFIX`, the watcher's --landing-dir.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    pub async fn put(&self, name: &str, bytes: Vec<u8>) {
        let key = Key::parse(format!("{}/{name}", self.prefix)).unwrap();
        self.store.put(&key, PutPayload::from(bytes)).await.unwrap();
    }

    /// Every file of `dir`, put under its name, 16 at a time.
    pub async fn put_dir(&self, dir: &Path) {
        let files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        futures_util::stream::iter(files)
            .map(|path| async move {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                self.put(&name, std::fs::read(&path).unwrap()).await;
            })
            .buffer_unordered(16)
            .collect::<Vec<()>>()
            .await;
    }

    /// Names of the objects in `folder` ("" for the prefix itself, not counting sub-folders).
    pub async fn names(&self, folder: &str) -> Vec<String> {
        let dir = match folder {
            "" => self.prefix.clone(),
            f => format!("{}/{f}", self.prefix),
        };
        let listed = self
            .store
            .list_with_delimiter(Some(&Key::parse(dir).unwrap()))
            .await
            .unwrap();
        let mut names: Vec<String> = listed
            .objects
            .into_iter()
            .map(|m| m.location.filename().unwrap_or_default().to_string())
            .collect();
        names.sort();
        names
    }

    /// Every object under the prefix, sub-folders included.
    pub async fn all_keys(&self) -> usize {
        let prefix = Key::parse(&self.prefix).unwrap();
        let all: Vec<_> = self.store.list(Some(&prefix)).try_collect().await.unwrap();
        all.len()
    }

    pub async fn text(&self, rel: &str) -> String {
        let key = Key::parse(format!("{}/{rel}", self.prefix)).unwrap();
        let got = self.store.get(&key).await.unwrap().bytes().await.unwrap();
        String::from_utf8(got.to_vec()).unwrap()
    }
}

/// The watcher on `bucket`, with the test server's endpoint and credentials.
pub fn watcher(bucket: &TestBucket, db: &TestDb) -> Command {
    let mut cmd = Command::new(bin("watch"));
    cmd.env("HTTP_ADDR", "off")
        .env("KAFKA_BROKERS", "")
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .env("AWS_ENDPOINT_URL", env("SHOPSTREAM_TEST_S3_ENDPOINT"))
        .env("AWS_ACCESS_KEY_ID", env("AWS_ACCESS_KEY_ID"))
        .env("AWS_SECRET_ACCESS_KEY", env("AWS_SECRET_ACCESS_KEY"))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ALLOW_HTTP", "true")
        .args(["--landing-dir", &bucket.url()]);
    cmd
}

/// The watcher in service mode with `args`, its log (stderr) piped for [`terminate`].
fn service_watcher(bucket: &TestBucket, db: &TestDb, args: &[&str]) -> Child {
    watcher(bucket, db)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn ledger(db: &TestDb) -> Vec<(String, String, i64, String)> {
    let pg = db.client().await;
    pg.query(
        "SELECT file_name, status, rows_loaded, coalesce(error, '') || coalesce(notes, '')
           FROM streaming.ingest_files ORDER BY file_name",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_load_and_move_to_processed_and_rejected_ones_keep_their_reasons_beside_them() {
    let db = TestDb::new().await;
    let bucket = TestBucket::new();
    let a = generated_text(200, 61);
    let partly_bad = with_bad_line(&generated_text(100, 62), 40);
    let cut = gzip(generated_text(3000, 63).as_bytes());
    bucket.put("a.csv", a.clone().into_bytes()).await;
    bucket
        .put("b.csv.gz", gzip(generated_text(150, 64).as_bytes()))
        .await;
    bucket.put("c.csv", partly_bad.into_bytes()).await;
    bucket.put("copy-of-a.csv", a.into_bytes()).await;
    bucket
        .put("cut.csv.gz", cut[..cut.len() / 2].to_vec())
        .await;
    bucket.put("header-only.csv", b"event_id,event_time,user_id,session_id,event_type,product_id,product_category,product_price,quantity,total_amount,device,country\n".to_vec()).await;
    run_ok(watcher(&bucket, &db).args(["--once"]));

    let got = ledger(&db).await;
    let summary: Vec<(&str, &str, i64)> = got
        .iter()
        .map(|(n, s, l, _)| (n.as_str(), s.as_str(), *l))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("a.csv", "loaded", 200),
            ("b.csv.gz", "loaded", 150),
            ("c.csv", "loaded", 99),
            ("copy-of-a.csv", "duplicate_file", 0),
            ("cut.csv.gz", "rejected", 0),
            ("header-only.csv", "rejected", 0),
        ]
    );
    assert!(got[3].3.contains("same content as a.csv"), "{:?}", got[3]);
    assert!(got[4].3.contains("truncated or corrupt"), "{:?}", got[4]);
    assert_eq!(bucket.names("").await, Vec::<String>::new(), "none left");
    assert_eq!(
        bucket.names("processed").await,
        ["a.csv", "b.csv.gz", "c.csv", "copy-of-a.csv"]
    );
    assert_eq!(
        bucket.names("rejected").await,
        [
            "c.csv.rejected.csv",
            "cut.csv.gz",
            "cut.csv.gz.error.txt",
            "header-only.csv",
            "header-only.csv.error.txt"
        ]
    );
    let note = bucket.text("rejected/cut.csv.gz.error.txt").await;
    assert!(
        note.contains("gzip (.gz) archive is truncated or corrupt"),
        "{note}"
    );
    let rejects = bucket.text("rejected/c.csv.rejected.csv").await;
    assert_eq!(
        rejects.lines().count(),
        2,
        "header and the bad row: {rejects}"
    );
    assert!(
        rejects.lines().nth(1).unwrap().contains(",40,"),
        "{rejects}"
    );
    let pg = db.client().await;
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.events").await,
        449
    );
    let admitted = count(
        &pg,
        "SELECT count(*) FROM streaming.ingest_files WHERE admitted_by = 'listed'",
    )
    .await;
    assert_eq!(admitted, 6);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watcher_in_service_mode_finds_objects_put_later_in_marker_mode() {
    let db = TestDb::new().await;
    let bucket = TestBucket::new();
    let child = service_watcher(
        &bucket,
        &db,
        &["--rescan-secs", "1", "--marker-suffix", ".done"],
    );
    let pg = db.client().await;
    wait_for_schema(&pg).await;
    // A marker whose data object never comes: said once, however many rescans see it.
    bucket.put("orphan.csv.done", Vec::new()).await;
    bucket
        .put("x.csv", generated_text(50, 71).into_bytes())
        .await;
    bucket
        .put("y.csv", generated_text(60, 72).into_bytes())
        .await;
    bucket.put("y.csv.done", Vec::new()).await;
    // The ledger commits before the object and its marker move out (copy, then delete): wait
    // for y.csv.done to have gone too before looking at what is left.
    let y_loaded = wait_for(Duration::from_secs(60), || async {
        count(&pg, "SELECT count(*) FROM streaming.ingest_files").await == 1
            && !bucket
                .names("")
                .await
                .iter()
                .any(|n| n.starts_with("y.csv"))
    })
    .await;
    let waiting = bucket.names("").await;
    // The orphan's name sorts first: every listing sees it.
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.ingest_files").await,
        1,
        "x.csv is not loaded without its marker"
    );
    // Put below the listing cursor (after y.csv.done): found by the next whole listing.
    bucket.put("x.csv.done", Vec::new()).await;
    let both = wait_for(Duration::from_secs(60), || async {
        bucket.names("").await == ["orphan.csv.done"]
    })
    .await;
    let log = String::from_utf8_lossy(&terminate(child).stderr).into_owned();
    assert!(y_loaded, "y.csv, whose marker is there, is loaded: {log}");
    assert_eq!(
        waiting,
        ["orphan.csv.done", "x.csv"],
        "x.csv waits for its marker"
    );
    let orphan_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("A marker without its data file"))
        .collect();
    assert_eq!(orphan_lines.len(), 1, "said once: {log}");
    assert!(orphan_lines[0].contains("WARN"), "{log}");
    assert!(
        orphan_lines[0].contains(&format!("{}/orphan.csv does not exist", bucket.prefix)),
        "{log}"
    );
    assert!(both, "x.csv loaded once its marker came: {log}");
    assert_eq!(
        bucket.names("processed").await,
        ["x.csv", "x.csv.done", "y.csv", "y.csv.done"]
    );
    let loaded = count(
        &pg,
        "SELECT sum(rows_loaded)::bigint FROM streaming.ingest_files
          WHERE status = 'loaded' AND admitted_by = 'marker'",
    )
    .await;
    assert_eq!(loaded, 110);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_put_below_the_listing_cursor_is_found_by_the_next_rescan() {
    let db = TestDb::new().await;
    let bucket = TestBucket::new();
    let child = service_watcher(&bucket, &db, &["--rescan-secs", "1"]);
    let pg = db.client().await;
    wait_for_schema(&pg).await;
    let files = |n: i64| {
        let (pg, bucket) = (&pg, &bucket);
        move || async move {
            count(pg, "SELECT count(*) FROM streaming.ingest_files").await == n
                && bucket.names("").await.is_empty()
        }
    };
    bucket
        .put("m.csv", generated_text(40, 75).into_bytes())
        .await;
    let first = wait_for(Duration::from_secs(60), files(1)).await;
    // A few rescans past m.csv, so that a cursor would stand at it.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    bucket
        .put("a.csv", generated_text(30, 76).into_bytes())
        .await;
    let put = std::time::Instant::now();
    let second = wait_for(Duration::from_secs(60), files(2)).await;
    let waited = put.elapsed();
    let log = String::from_utf8_lossy(&terminate(child).stderr).into_owned();
    assert!(first && second, "both loaded: {log}");
    // A listing from the cursor alone would find a.csv only at the next whole listing, up to
    // FULL_LISTING_EVERY (10) rescans later; a level of one page is listed whole every rescan.
    assert!(
        waited < Duration::from_secs(5),
        "a.csv, below the cursor, waited {waited:?} with --rescan-secs 1"
    );
    assert_eq!(bucket.names("processed").await, ["a.csv", "m.csv"]);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn three_watcher_processes_on_one_bucket_one_killed_load_every_object_exactly_once() {
    const OBJECTS: usize = 300;
    const ROWS: usize = 20;
    const COPIES: usize = 20;
    let db = TestDb::new().await;
    let bucket = TestBucket::new();
    let files = tempfile::tempdir().unwrap();
    generate(files.path(), OBJECTS, ROWS, 81, &[]);
    // The same bytes under COPIES more keys, most of them sorted together after the others, so
    // that the three read several at once: each content is loaded once, the rest duplicates.
    let first = std::fs::read_dir(files.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let bytes = std::fs::read(first.path()).unwrap();
    for i in 0..COPIES {
        let name = format!("events-{:03}-copy.csv", i * 10);
        std::fs::write(files.path().join(name), &bytes).unwrap();
    }
    bucket.put_dir(files.path()).await;
    // Migrations first, so that the three start together on a ready schema.
    watch_once(tempfile::tempdir().unwrap().path(), &db, None);
    let homes: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut watchers: Vec<Child> = homes
        .iter()
        .map(|home| {
            watcher(&bucket, &db)
                .arg("--once")
                .env("HOME", home.path())
                .env("TMPDIR", home.path())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let pg = db.client().await;
    let some_done = wait_for(Duration::from_secs(120), || async {
        count(&pg, "SELECT count(*) FROM streaming.ingest_files").await >= 50
    })
    .await;
    assert!(some_done, "the watchers started loading");
    assert!(
        watchers[0].try_wait().unwrap().is_none(),
        "the victim is still at work when killed"
    );
    watchers[0].kill().unwrap(); // SIGKILL
    watchers[0].wait().unwrap();
    let finished = wait_for(Duration::from_secs(300), || {
        let done = watchers[1..]
            .iter_mut()
            .all(|w| w.try_wait().unwrap().is_some());
        async move { done }
    })
    .await;
    let logs: Vec<String> = watchers
        .into_iter()
        .map(|mut w| {
            let _ = w.kill();
            String::from_utf8_lossy(&w.wait_with_output().unwrap().stderr).into_owned()
        })
        .collect();
    assert!(
        finished,
        "the two survivors finished; logs:\n{}",
        logs.join("\n")
    );

    let row = pg
        .query_one(
            "SELECT count(*), count(DISTINCT file_name), count(*) FILTER (WHERE status = 'loaded'),
                    coalesce(sum(rows_loaded), 0)::bigint,
                    count(*) FILTER (WHERE status = 'duplicate_file')
               FROM streaming.ingest_files",
            &[],
        )
        .await
        .unwrap();
    let (rows, names, loaded, events, duplicates): (i64, i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    let all = (OBJECTS + COPIES) as i64;
    assert_eq!(
        (rows, names, loaded, duplicates),
        (all, all, OBJECTS as i64, COPIES as i64),
        "one ledger row per object, each content loaded once; logs:\n{}",
        logs.join("\n")
    );
    assert_eq!(events, (OBJECTS * ROWS) as i64);
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.events").await,
        (OBJECTS * ROWS) as i64,
        "every event once"
    );
    assert_eq!(
        bucket.names("").await,
        Vec::<String>::new(),
        "none left under the prefix"
    );
    assert_eq!(
        bucket.names("processed").await.len(),
        OBJECTS + COPIES,
        "each object once in processed/ (no .1 copies)"
    );
    assert_eq!(
        bucket.all_keys().await,
        OBJECTS + COPIES,
        "nothing else anywhere"
    );
    // Each object was fetched into an unnamed file of its watcher's TMPDIR: none is left, not
    // even by the killed one.
    let left: Vec<std::path::PathBuf> = homes.iter().flat_map(|h| files_under(h.path())).collect();
    assert!(left.is_empty(), "left in the watchers' TMPDIRs: {left:?}");
    assert_eq!(stats_mismatches(&pg).await, 0);
    db.cleanup().await;
}

/// Regular files anywhere under `dir`.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}
