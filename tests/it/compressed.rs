//! `.csv.gz` and `.csv.zst` in a landing directory: loaded through on-the-fly decompression,
//! the ledger holding the compressed bytes' size and sha256 and the rejects the decompressed
//! text's line numbers; a cut or damaged archive rejected whole, with its reason.

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::support::*;

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// The text of one generated file of `rows` rows.
pub fn generated_text(rows: usize, seed: u64) -> String {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 1, rows, seed, &[]);
    let path = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::read_to_string(path).unwrap()
}

/// `text` with its line `line` (1-based, the header being line 1) given an impossible quantity.
pub fn with_bad_line(text: &str, line: usize) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut fields: Vec<String> = lines[line - 1].split(',').map(str::to_string).collect();
    fields[8] = "-3".to_string();
    lines[line - 1] = fields.join(",");
    lines.join("\n") + "\n"
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn gzip_and_zstd_files_load_and_a_cut_archive_is_rejected_whole_with_its_reason() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let gz_text = with_bad_line(&generated_text(300, 51), 200);
    let gz = gzip(gz_text.as_bytes());
    let zst = zstd::encode_all(generated_text(250, 52).as_bytes(), 3).unwrap();
    let cut_source = gzip(generated_text(3000, 53).as_bytes());
    let cut = &cut_source[..cut_source.len() * 2 / 3];
    write(landing.path(), "a.csv.gz", &gz);
    write(landing.path(), "b.csv.zst", &zst);
    write(landing.path(), "cut.csv.gz", cut);
    watch_once(landing.path(), &db, None);

    let pg = db.client().await;
    let files = pg
        .query(
            "SELECT file_name, status, size_bytes, sha256, rows_total, rows_loaded, rows_rejected,
                    coalesce(error, '')
               FROM streaming.ingest_files ORDER BY file_name",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(files.len(), 3, "one ledger row per file");
    let (name, status, size, sha): (String, String, i64, String) = (
        files[0].get(0),
        files[0].get(1),
        files[0].get(2),
        files[0].get(3),
    );
    assert_eq!((name.as_str(), status.as_str()), ("a.csv.gz", "loaded"));
    assert_eq!(
        size,
        gz.len() as i64,
        "the ledger's size is the compressed size"
    );
    assert_eq!(
        sha,
        sha256_hex(&gz),
        "the ledger's hash is of the compressed bytes"
    );
    let (total, loaded, rejected): (i64, i64, i64) =
        (files[0].get(4), files[0].get(5), files[0].get(6));
    assert_eq!((total, loaded, rejected), (300, 299, 1));
    let line: i64 = pg
        .query_one(
            "SELECT r.line FROM streaming.rejected_rows r JOIN streaming.ingest_files f USING (file_id)
              WHERE f.file_name = 'a.csv.gz'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(line, 200, "the line number of the decompressed text");

    let (name, status, size, sha): (String, String, i64, String) = (
        files[1].get(0),
        files[1].get(1),
        files[1].get(2),
        files[1].get(3),
    );
    assert_eq!((name.as_str(), status.as_str()), ("b.csv.zst", "loaded"));
    assert_eq!((size, sha), (zst.len() as i64, sha256_hex(&zst)));
    assert_eq!(files[1].get::<_, i64>(5), 250);

    let (name, status): (String, String) = (files[2].get(0), files[2].get(1));
    let error: String = files[2].get(7);
    assert_eq!((name.as_str(), status.as_str()), ("cut.csv.gz", "rejected"));
    assert!(
        error.contains("gzip (.gz) archive is truncated or corrupt"),
        "a clear reason: {error}"
    );
    assert_eq!(files[2].get::<_, i64>(5), 0, "nothing of it was loaded");
    let events_of_cut = count(
        &pg,
        "SELECT count(*) FROM streaming.events WHERE source_file = 'cut.csv.gz'",
    )
    .await;
    assert_eq!(events_of_cut, 0, "nothing of the cut archive committed");
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.events").await,
        299 + 250
    );
    let note = std::fs::read_to_string(landing.path().join("rejected/cut.csv.gz.error.txt"))
        .expect("the reason beside the rejected archive");
    assert!(note.contains("truncated or corrupt"), "{note}");
    assert!(landing.path().join("processed/a.csv.gz").exists());
    assert!(landing.path().join("processed/b.csv.zst").exists());
    assert_eq!(stats_mismatches(&pg).await, 0);
    db.cleanup().await;
}
