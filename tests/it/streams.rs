use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use shopstream::transform::records::fields;

use crate::support::*;

/// stock_levels rows that differ from the recompute, both ways.
async fn stock_mismatches(pg: &tokio_postgres::Client) -> i64 {
    count(
        pg,
        "SELECT count(*) FROM (
            (TABLE streaming.stock_levels EXCEPT TABLE streaming.stock_levels_recompute)
            UNION ALL
            (TABLE streaming.stock_levels_recompute EXCEPT TABLE streaming.stock_levels)) d",
    )
    .await
}

/// Data rows of the files in `dir` whose name starts with `prefix`, fields unquoted.
fn rows_of(dir: &Path, prefix: &str) -> Vec<Vec<String>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(".csv")
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.lines()
                .skip(1)
                .map(|l| fields(l, ','))
                .collect::<Vec<_>>()
        })
        .collect()
}

const ITEM_AS_CSV: &str = "SELECT t.transaction_id, i.line_number::text, \
    to_char(t.transaction_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), \
    t.user_id, coalesce(t.payment_method, ''), i.product_id, coalesce(i.product_name, ''), \
    i.price::text, i.quantity::text, i.item_total::text, t.tax_amount::text, \
    t.shipping_cost::text, t.total_amount::text, coalesce(i.warehouse, ''), \
    coalesce(t.shipping_address, '') \
    FROM streaming.transactions t JOIN streaming.transaction_items i USING (transaction_id)";

const UPDATE_AS_CSV: &str = "SELECT update_id::text, \
    to_char(event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), product_id, \
    coalesce(product_name, ''), warehouse, stock_change::text, current_stock::text \
    FROM streaming.inventory_updates";

#[tokio::test(flavor = "multi_thread")]
async fn three_generated_streams_load_exactly_agree_with_each_other_and_reach_their_topics() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let (events, transactions, inventory) = (
        unique("events"),
        unique("transactions"),
        unique("inventory"),
    );
    generate(
        landing.path(),
        3,
        3_000,
        17,
        &["--streams", "events,transactions,inventory"],
    );
    let mut expected_items = rows_of(landing.path(), "transactions-");
    let mut expected_updates = rows_of(landing.path(), "inventory-");
    expected_items.sort();
    expected_updates.sort();
    assert!(expected_items.len() > 20 && expected_updates.len() > expected_items.len());
    let args = [
        "--kafka-transactions-topic",
        &transactions,
        "--kafka-inventory-topic",
        &inventory,
    ];
    watch_once_with(landing.path(), &db, Some(&events), &args);
    let pg = db.client().await;

    // Ledger: nine files loaded, each under its stream, every row loaded and mirrored.
    let by_profile: HashMap<String, (i64, i64, i64)> = pg
        .query(
            "SELECT profile, count(*), sum(rows_loaded)::bigint, count(mirrored_at) \
             FROM streaming.ingest_files WHERE status = 'loaded' AND rows_rejected = 0 \
             AND rows_duplicate = 0 GROUP BY profile",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
        .collect();
    let n_items = expected_items.len() as i64;
    let n_updates = expected_updates.len() as i64;
    assert_eq!(by_profile["transactions"], (3, n_items, 3));
    assert_eq!(by_profile["inventory"], (3, n_updates, 3));
    assert_eq!(by_profile["native"].0, 3);

    // Exact rows, every value as written.
    assert_eq!(rows_as_text(&pg, ITEM_AS_CSV, 15).await, expected_items);
    assert_eq!(rows_as_text(&pg, UPDATE_AS_CSV, 7).await, expected_updates);

    // The streams agree: each purchase is a line (user, product, price, quantity), each line a
    // sale of its warehouse, and the stock left is what the updates say.
    let unmatched = "SELECT count(*) FROM (
        (SELECT user_id, product_id, product_price, quantity FROM streaming.purchases
         EXCEPT ALL SELECT t.user_id, i.product_id, i.price, i.quantity
         FROM streaming.transactions t JOIN streaming.transaction_items i USING (transaction_id))
        UNION ALL
        (SELECT t.user_id, i.product_id, i.price, i.quantity
         FROM streaming.transactions t JOIN streaming.transaction_items i USING (transaction_id)
         EXCEPT ALL SELECT user_id, product_id, product_price, quantity FROM streaming.purchases)) d";
    assert_eq!(count(&pg, unmatched).await, 0);
    let sales_unmatched = "SELECT count(*) FROM (
        (SELECT product_id, warehouse, sum(quantity) FROM streaming.transaction_items
         GROUP BY 1, 2
         EXCEPT SELECT product_id, warehouse, -sum(stock_change) FROM streaming.inventory_updates
         WHERE stock_change < 0 GROUP BY 1, 2)
        UNION ALL
        (SELECT product_id, warehouse, -sum(stock_change) FROM streaming.inventory_updates
         WHERE stock_change < 0 GROUP BY 1, 2
         EXCEPT SELECT product_id, warehouse, sum(quantity) FROM streaming.transaction_items
         GROUP BY 1, 2)) d";
    assert_eq!(count(&pg, sales_unmatched).await, 0);
    assert_eq!(stock_mismatches(&pg).await, 0);
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM streaming.stock_levels s WHERE current_stock <> \
             (SELECT sum(stock_change) FROM streaming.inventory_updates u \
              WHERE u.product_id = s.product_id AND u.warehouse = s.warehouse)"
        )
        .await,
        0,
        "the latest current_stock is the sum of the changes"
    );
    assert!(
        count(
            &pg,
            "SELECT count(*) FROM streaming.inventory_updates WHERE stock_change > 0"
        )
        .await
            > 0
    );

    // Kafka: every line keyed by its user, every update keyed by its product.
    let line_id = |p: &serde_json::Value| {
        format!(
            "{}#{}",
            p["transaction_id"].as_str().unwrap(),
            p["line_number"]
        )
    };
    let (lines, _) = read_topic_by(
        &kafka_brokers(),
        &transactions,
        line_id,
        expected_items.len(),
        Duration::from_secs(60),
    );
    assert_eq!(lines.len(), expected_items.len());
    for row in &expected_items {
        let (key, payload) = &lines[&format!("{}#{}", row[0], row[1])];
        assert_eq!(key, &row[3], "keyed by user_id");
        let total = payload["total_amount"].as_f64();
        assert_eq!(total, row[12].parse().ok(), "{payload}");
    }
    let update_id = |p: &serde_json::Value| p["update_id"].as_str().unwrap().to_string();
    let (updates, _) = read_topic_by(
        &kafka_brokers(),
        &inventory,
        update_id,
        expected_updates.len(),
        Duration::from_secs(60),
    );
    assert_eq!(updates.len(), expected_updates.len());
    for row in &expected_updates {
        let (key, payload) = &updates[&row[0]];
        assert_eq!(key, &row[2], "keyed by product_id");
        assert_eq!(payload["current_stock"].to_string(), row[6]);
    }

    // Dropped again under other names: recorded as duplicate files, nothing changes.
    let before_items = count(&pg, "SELECT count(*) FROM streaming.transaction_items").await;
    let processed = landing.path().join("processed");
    for entry in std::fs::read_dir(&processed).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("events-") {
            std::fs::copy(&path, landing.path().join(format!("again-{name}"))).unwrap();
        }
    }
    watch_once_with(landing.path(), &db, Some(&events), &args);
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM streaming.ingest_files WHERE status = 'duplicate_file'"
        )
        .await,
        6
    );
    assert_eq!(
        count(&pg, "SELECT count(*) FROM streaming.transaction_items").await,
        before_items
    );
    assert_eq!(rows_as_text(&pg, UPDATE_AS_CSV, 7).await, expected_updates);
    assert_eq!(stock_mismatches(&pg).await, 0);
    db.cleanup().await;
}

/// The stock levels after loading `order` of the generated inventory files one run each.
async fn levels_after(files: &[std::path::PathBuf], order: &[usize]) -> Vec<Vec<String>> {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    for &i in order {
        let name = files[i].file_name().unwrap();
        std::fs::copy(&files[i], landing.path().join(name)).unwrap();
        watch_once(landing.path(), &db, None);
    }
    let pg = db.client().await;
    assert_eq!(stock_mismatches(&pg).await, 0, "order {order:?}");
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM streaming.ingest_files WHERE status = 'loaded'"
        )
        .await,
        order.len() as i64
    );
    let levels = rows_as_text(
        &pg,
        "SELECT product_id, warehouse, current_stock::text, as_of::text, update_id::text \
         FROM streaming.stock_levels",
        5,
    )
    .await;
    db.cleanup().await;
    levels
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_order_and_late_inventory_files_end_where_an_in_order_load_ends() {
    let generated = tempfile::tempdir().unwrap();
    generate(generated.path(), 3, 4_000, 23, &["--streams", "inventory"]);
    let mut files: Vec<_> = std::fs::read_dir(generated.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 3);
    // A late file: an old update of a product the others know, arriving last.
    let first_row = rows_of(generated.path(), "inventory-").remove(0);
    let late = generated.path().join("zz-late.csv");
    std::fs::write(
        &late,
        format!(
            "event_time,product_id,warehouse,stock_change,current_stock\n\
             2020-01-01T00:00:00Z,{},{},999,999\n",
            first_row[2], first_row[4]
        ),
    )
    .unwrap();
    files.push(late);
    let in_order = levels_after(&files, &[0, 1, 2]).await;
    assert!(!in_order.is_empty());
    assert_eq!(levels_after(&files, &[2, 0, 1]).await, in_order);
    assert_eq!(levels_after(&files, &[3, 2, 1, 0]).await, in_order);
    assert_eq!(levels_after(&files, &[0, 1, 2, 3]).await, in_order);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_rows_of_each_contract_are_rejected_with_line_column_and_reason() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    let header = "transaction_id,line_number,transaction_time,user_id,payment_method,product_id,\
                  product_name,price,quantity,item_total,tax_amount,shipping_cost,total_amount";
    std::fs::write(
        landing.path().join("orders.csv"),
        format!(
            "{header}\n\
             t1,1,2026-11-01T10:00:00Z,u1,card,p1,Lamp,19.99,2,39.98,3.20,4.90,53.08\n\
             t1,2,2026-11-01T10:00:00Z,u1,card,p2,Pen,5.00,1,5.00,3.20,4.90,53.08\n\
             t2,1,2026-11-01T11:00:00Z,u2,card,p1,Lamp,19.99,1,19.99,0,0,25.00\n\
             t2,2,2026-11-01T11:00:00Z,u2,card,p3,Pen,1.00,1,1.00,0,0,25.00\n\
             t3,1,2026-11-01T12:00:00Z,u3,card,p1,Lamp,19.99,1,19.99,0,0,19.99\n\
             t4,1,2026-11-01T12:00:00Z,u4,card,p1,Lamp,abc,1,19.99,0,0,19.99\n\
             t5,1,2026-11-01T12:00:00Z,u5,card,p1,Lamp,1.00,1,1.00,0,0,1.00\n\
             t5,2,2026-11-01T12:00:00Z,u5,card,p1,Lamp,1.00,-1,-1.00,0,0,1.00\n"
        ),
    )
    .unwrap();
    std::fs::write(
        landing.path().join("stock.csv"),
        "update_id,event_time,product_id,warehouse,stock_change,current_stock\n\
         6f9619ff-8b86-4d01-b42d-00cf4fc964ff,2026-11-01T10:00:00Z,p1,w1,-2,8\n\
         not-a-uuid,2026-11-01T10:00:00Z,p1,w1,-2,8\n\
         6f9619ff-8b86-4d01-b42d-00cf4fc96400,2026-11-01T10:00:00Z,p1,w1,-2,-3\n\
         6f9619ff-8b86-4d01-b42d-00cf4fc96401,2026-13-01T10:00:00Z,p1,w1,-2,3\n\
         6f9619ff-8b86-4d01-b42d-00cf4fc96402,2026-11-01T11:00:00Z,p1,w1,-1,7\n\
         6f9619ff-8b86-4d01-b42d-00cf4fc96403,2026-11-01T11:00:00Z,p2,w1,+4,4\n\
         6f9619ff-8b86-4d01-b42d-00cf4fc96404,2026-11-01T11:00:00Z,p3,w1,1.5,4\n",
    )
    .unwrap();
    // Every row bad: quarantined whole. A header of the contract that lacks columns: rejected.
    std::fs::write(
        landing.path().join("all_bad.csv"),
        "event_time,product_id,warehouse,stock_change,current_stock\n\
         yesterday,p1,w1,-1,3\n\
         2026-11-01T10:00:00Z,p1,w1,-1,\n",
    )
    .unwrap();
    std::fs::write(
        landing.path().join("missing.csv"),
        "transaction_id,item_total,price\nt1,1.00,1.00\n",
    )
    .unwrap();
    watch_once_with(landing.path(), &db, None, &["--max-reject-fraction", "0.9"]);
    let pg = db.client().await;
    let rejected: Vec<(String, i64, String, String)> = pg
        .query(
            "SELECT f.file_name, r.line, r.column_name, r.reason FROM streaming.rejected_rows r \
             JOIN streaming.ingest_files f USING (file_id) ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let sum = "transaction t2: its lines 4, 5 add up to 20.99 (items 20.99 + tax 0.00 + \
               shipping 0.00), not its total_amount 25.00";
    let at = |file: &str, line: i64, column: &str| {
        rejected
            .iter()
            .find(|r| r.0 == file && r.1 == line && r.2 == column)
            .map(|r| r.3.clone())
            .unwrap_or_else(|| panic!("{file}:{line} {column} not in {rejected:#?}"))
    };
    assert_eq!(at("orders.csv", 4, "total_amount"), sum);
    assert_eq!(at("orders.csv", 5, "total_amount"), sum);
    assert_eq!(
        at("orders.csv", 7, "price"),
        "not a decimal number ≥ 0 like 19.99"
    );
    assert!(at("orders.csv", 9, "quantity").contains("negative quantity"));
    assert!(at("orders.csv", 8, "transaction_id").contains("rejected whole: line(s) 9"));
    assert_eq!(at("stock.csv", 3, "update_id"), "not a UUID");
    assert_eq!(
        at("stock.csv", 4, "current_stock"),
        "not a whole number ≥ 0"
    );
    assert!(at("stock.csv", 5, "event_time").contains("RFC 3339"));
    assert_eq!(at("stock.csv", 8, "stock_change"), "not a whole number");
    assert_eq!(at("all_bad.csv", 3, "current_stock"), "required");
    assert_eq!(rejected.len(), 11);
    let errors: Vec<(String, String, Option<String>)> = pg
        .query(
            "SELECT file_name, status, error FROM streaming.ingest_files \
             WHERE file_name IN ('all_bad.csv', 'missing.csv') ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(errors[0].1, "rejected");
    assert!(
        errors[0].2.as_deref().unwrap().contains("2 of 2 rows"),
        "{errors:?}"
    );
    assert_eq!(
        errors[1].2.as_deref(),
        Some(
            "the header is of the transactions contract (README) but lacks its required \
             column(s) line_number, transaction_time, user_id, product_id, quantity, total_amount"
        )
    );
    assert!(landing
        .path()
        .join("rejected/missing.csv.error.txt")
        .exists());

    // Only whole, consistent transactions loaded; the ledger accounts for every row.
    let loaded: Vec<(String, i64)> = pg
        .query(
            "SELECT transaction_id, count(*) FROM streaming.transaction_items GROUP BY 1 ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(loaded, vec![("t1".to_string(), 2), ("t3".to_string(), 1)]);
    let ledger: Vec<(String, i64, i64, i64)> = pg
        .query(
            "SELECT file_name, rows_total, rows_loaded, rows_rejected FROM streaming.ingest_files \
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        ledger,
        vec![
            ("all_bad.csv".to_string(), 2, 0, 2),
            ("missing.csv".to_string(), 0, 0, 0),
            ("orders.csv".to_string(), 8, 3, 5),
            ("stock.csv".to_string(), 7, 3, 4)
        ]
    );
    assert_eq!(
        count(
            &pg,
            "SELECT current_stock::bigint FROM streaming.stock_levels WHERE product_id = 'p1'"
        )
        .await,
        7
    );
    assert_eq!(stock_mismatches(&pg).await, 0);
    let beside =
        std::fs::read_to_string(landing.path().join("rejected/orders.csv.rejected.csv")).unwrap();
    assert!(beside.contains(sum), "{beside}");
    db.cleanup().await;
}
