//! Transactions and inventory files in a bucket, plain and compressed, through the real watcher
//! on s3s-fs: the same files loaded from a local directory into another database are the
//! reference, and the bucket must end exactly as the directory did (ledger, tables, what is in
//! processed/ and rejected/ with the same reasons), each content loaded once.

use std::path::Path;

use crate::bucket::{watcher, TestBucket};
use crate::compressed::gzip;
use crate::support::*;

const ORDERS: &str = "transaction_id,line_number,transaction_time,user_id,payment_method,\
product_id,product_name,price,quantity,item_total,tax_amount,shipping_cost,total_amount\n\
t1,1,2026-11-01T10:00:00Z,u1,card,p1,Lamp,19.99,2,39.98,3.20,4.90,53.08\n\
t1,2,2026-11-01T10:00:00Z,u1,card,p2,Pen,5.00,1,5.00,3.20,4.90,53.08\n\
t2,1,2026-11-01T11:00:00Z,u2,card,p1,Lamp,abc,1,19.99,0,0,19.99\n";

/// Every row of the stream tables (file ids and load times aside), one fingerprint per table,
/// with its row count so that a difference reads at once.
async fn stream_tables(pg: &tokio_postgres::Client) -> Vec<(String, i64, String)> {
    let tables = [
        ("transactions", "SELECT (transaction_id, transaction_time, user_id, payment_method, tax_amount, shipping_cost, total_amount, shipping_address, line_count)::text FROM streaming.transactions"),
        ("transaction_items", "SELECT (transaction_id, line_number, product_id, product_name, price, quantity, item_total, warehouse)::text FROM streaming.transaction_items"),
        ("inventory_updates", "SELECT (update_id, event_time, product_id, product_name, warehouse, stock_change, current_stock)::text FROM streaming.inventory_updates"),
        ("stock_levels", "SELECT s::text FROM streaming.stock_levels s"),
        ("events", "SELECT (event_id, event_time, user_id, event_type, product_id, quantity)::text FROM streaming.events"),
    ];
    let mut out = Vec::new();
    for (name, rows) in tables {
        let sql = format!(
            "SELECT count(*), coalesce(md5(string_agg(x, '|' ORDER BY x)), '') FROM ({rows}) AS r(x)"
        );
        let row = pg.query_one(&sql, &[]).await.unwrap();
        out.push((name.to_string(), row.get(0), row.get(1)));
    }
    out
}

type LedgerRow = (String, String, String, Vec<i64>, String);

/// The ledger as both landings must agree on it (how a file was admitted aside).
async fn ledger(pg: &tokio_postgres::Client) -> Vec<LedgerRow> {
    pg.query(
        "SELECT file_name, status, coalesce(profile, ''), ARRAY[rows_total, rows_loaded,
                rows_rejected, rows_duplicate, rows_quarantined, size_bytes],
                sha256 || ' ' || coalesce(error, '') || ' ' || coalesce(notes, '')
           FROM streaming.ingest_files ORDER BY file_name",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
    .collect()
}

/// Names in `dir` (not recursing).
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "processed" && n != "rejected")
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_files_in_a_bucket_plain_or_compressed_end_as_they_do_in_a_directory() {
    let generated = tempfile::tempdir().unwrap();
    let streams = ["--streams", "events,transactions,inventory"];
    generate(generated.path(), 2, 3_000, 37, &streams);
    let mut drop: Vec<(String, Vec<u8>)> = Vec::new();
    for name in names_in(generated.path()) {
        let bytes = std::fs::read(generated.path().join(&name)).unwrap();
        let (name, bytes) = match name.as_str() {
            n if n.starts_with("transactions-")
                && drop.iter().any(|d| d.0.starts_with("transactions-")) =>
            {
                (format!("{n}.gz"), gzip(&bytes))
            }
            n if n.starts_with("inventory-")
                && !drop.iter().any(|d| d.0.starts_with("inventory-")) =>
            {
                (format!("{n}.zst"), zstd::encode_all(&bytes[..], 3).unwrap())
            }
            _ => (name, bytes),
        };
        drop.push((name, bytes));
    }
    let first_tx = drop
        .iter()
        .find(|d| d.0.starts_with("transactions-"))
        .unwrap()
        .clone();
    // Named to sort after its original: both landings read in name order.
    drop.push((format!("x-copy-of-{}", first_tx.0), first_tx.1));
    drop.push(("orders.csv.gz".into(), gzip(ORDERS.as_bytes())));
    drop.push((
        "missing.csv".into(),
        b"transaction_id,item_total,price\nt9,1.00,1.00\n".to_vec(),
    ));
    drop.push((
        "all_bad.csv.zst".into(),
        zstd::encode_all(
            &b"event_time,product_id,warehouse,stock_change,current_stock\nyesterday,p1,w1,-1,3\n"
                [..],
            3,
        )
        .unwrap(),
    ));
    let names: Vec<&str> = drop.iter().map(|d| d.0.as_str()).collect();
    assert!(names
        .iter()
        .any(|n| n.ends_with(".csv.gz") && n.starts_with("transactions-")));
    assert!(names
        .iter()
        .any(|n| n.ends_with(".csv.zst") && n.starts_with("inventory-")));
    // One worker each, so that both read the files in the same (name) order and the ledger's
    // file ids and "same content as" notes agree.
    let args = ["--once", "--workers", "1", "--max-reject-fraction", "0.5"];

    // The reference: a local directory.
    let local_db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in &drop {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    watch_once_with(dir.path(), &local_db, None, &args[1..]);
    let local_pg = local_db.client().await;
    let want_ledger = ledger(&local_pg).await;
    let want_tables = stream_tables(&local_pg).await;

    let db = TestDb::new().await;
    let bucket = TestBucket::new();
    for (name, bytes) in &drop {
        bucket.put(name, bytes.clone()).await;
    }
    run_ok(watcher(&bucket, &db).args(args));
    let pg = db.client().await;
    let got_ledger = ledger(&pg).await;
    assert_eq!(
        got_ledger, want_ledger,
        "the bucket's ledger is the directory's"
    );
    assert_eq!(
        stream_tables(&pg).await,
        want_tables,
        "the same rows, each once"
    );

    // What both did, stated outright (a bug shared by both landings is still caught here).
    let by_name = |prefix: &str| {
        got_ledger
            .iter()
            .find(|r| r.0.starts_with(prefix))
            .unwrap()
            .clone()
    };
    let tx_gz = got_ledger
        .iter()
        .find(|r| r.0.starts_with("transactions-") && r.0.ends_with(".gz"))
        .unwrap();
    assert_eq!(
        (tx_gz.1.as_str(), tx_gz.2.as_str()),
        ("loaded", "transactions"),
        "{tx_gz:?}"
    );
    assert!(tx_gz.3[1] > 0 && tx_gz.3[1] == tx_gz.3[0], "{tx_gz:?}");
    let inv_zst = by_name("inventory-");
    assert!(inv_zst.0.ends_with(".zst"), "{inv_zst:?}");
    assert_eq!(
        (inv_zst.1.as_str(), inv_zst.2.as_str()),
        ("loaded", "inventory")
    );
    assert!(
        inv_zst.3[1] > 0 && inv_zst.3[1] == inv_zst.3[0],
        "{inv_zst:?}"
    );
    let copy = by_name("x-copy-of-");
    assert_eq!(copy.1, "duplicate_file", "{copy:?}");
    assert!(copy.4.contains("same content as transactions-"), "{copy:?}");
    let orders = by_name("orders.csv.gz");
    assert_eq!(
        (orders.1.as_str(), orders.3[..3].to_vec()),
        ("loaded", vec![3, 2, 1])
    );
    let missing = by_name("missing.csv");
    assert_eq!(missing.1, "rejected");
    assert!(
        missing.4.contains("lacks its required column"),
        "{missing:?}"
    );
    let all_bad = by_name("all_bad.csv.zst");
    assert_eq!(
        (all_bad.1.as_str(), all_bad.3[..3].to_vec()),
        ("rejected", vec![1, 0, 1])
    );
    let loaded_files = got_ledger.iter().filter(|r| r.1 == "loaded").count();
    assert_eq!(
        loaded_files,
        2 + 2 + 2 + 1,
        "events, transactions, inventory and orders"
    );

    // Moved as in the directory, the reasons beside the rejected ones.
    assert_eq!(bucket.names("").await, Vec::<String>::new(), "none left");
    assert_eq!(
        bucket.names("processed").await,
        names_in(&dir.path().join("processed"))
    );
    let rejected = bucket.names("rejected").await;
    assert_eq!(rejected, names_in(&dir.path().join("rejected")));
    for name in [
        "missing.csv.error.txt",
        "all_bad.csv.zst.error.txt",
        "orders.csv.gz.rejected.csv",
    ] {
        assert!(rejected.iter().any(|n| n == name), "{name} in {rejected:?}");
        let want = std::fs::read_to_string(dir.path().join("rejected").join(name)).unwrap();
        assert_eq!(
            bucket.text(&format!("rejected/{name}")).await,
            want,
            "{name}"
        );
    }
    let beside = bucket.text("rejected/orders.csv.gz.rejected.csv").await;
    assert!(beside.contains("not a decimal number"), "{beside}");

    // Dropped again under their own names: each recognised, nothing loaded twice.
    for (name, bytes) in drop
        .iter()
        .filter(|d| d.0.starts_with("transactions-") || d.0.starts_with("inventory-"))
    {
        bucket.put(name, bytes.clone()).await;
    }
    run_ok(watcher(&bucket, &db).args(args));
    assert_eq!(
        stream_tables(&pg).await,
        want_tables,
        "nothing loaded twice"
    );
    let again = count(
        &pg,
        "SELECT count(*) FROM streaming.ingest_files WHERE status = 'duplicate_file'
            AND (file_name LIKE 'transactions-%' OR file_name LIKE 'inventory-%')",
    )
    .await;
    assert_eq!(again, 4);
    assert_eq!(bucket.names("").await, Vec::<String>::new());
    local_db.cleanup().await;
    db.cleanup().await;
}
