//! Stream profiles through the real watcher: an order-items export (`;`, decimal comma, every
//! field mapped) and UCI Online Retail invoice lines (line numbers, item and invoice totals
//! derived) load as transactions, exactly; cancellations (negative quantities), a line that
//! does not add up and an unreadable time are rejected with line, source column and reason;
//! the same file again, under another name or with other line ends, changes nothing.

use std::path::{Path, PathBuf};

use crate::support::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/profiles/streams")
}

const TRANSACTIONS: &str = "SELECT transaction_id, \
    to_char(transaction_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), user_id, \
    coalesce(payment_method, '-'), tax_amount::text, shipping_cost::text, total_amount::text, \
    coalesce(shipping_address, '-'), line_count::text FROM streaming.transactions";

const ITEMS: &str = "SELECT transaction_id, line_number::text, product_id, \
    coalesce(product_name, '-'), price::text, quantity::text, item_total::text, \
    coalesce(warehouse, '-') FROM streaming.transaction_items";

const REJECTED: &str = "SELECT f.file_name, r.line::text, r.column_name, r.reason \
    FROM streaming.rejected_rows r JOIN streaming.ingest_files f USING (file_id)";

fn rows(lines: &[&str]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = lines
        .iter()
        .map(|l| l.split('|').map(String::from).collect())
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn order_item_and_invoice_line_exports_load_as_transactions_through_stream_profiles() {
    let db = TestDb::new().await;
    let landing = tempfile::tempdir().unwrap();
    for name in ["order_items.csv", "uci_invoices.csv"] {
        std::fs::copy(fixtures().join(name), landing.path().join(name)).unwrap();
    }
    let dir = fixtures();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for example in ["order_items.toml", "uci_invoices.toml"] {
        let text = std::fs::read_to_string(dir.join(example)).unwrap();
        assert!(readme.contains(&text), "README shows {example} as it is");
    }
    let args = ["--profiles-dir", dir.to_str().unwrap()];
    watch_once_with(landing.path(), &db, None, &args);
    let pg = db.client().await;

    let ledger = rows_as_text(
        &pg,
        "SELECT file_name, status, profile, rows_total::text, rows_loaded::text, \
         rows_rejected::text FROM streaming.ingest_files",
        6,
    )
    .await;
    assert_eq!(
        ledger,
        rows(&[
            "order_items.csv|loaded|transactions|7|4|3",
            "uci_invoices.csv|loaded|transactions|8|6|2",
        ])
    );
    let transactions = rows(&[
        "A-1001|2026-11-01T09:15:00Z|K-17|card|4.77|4.99|39.64|Hauptstr. 1; 10115 Berlin|2",
        "A-1002|2026-11-01T10:00:00Z|K-18|invoice|1.20|0|8.70|Ringstr. 5|1",
        "A-1005|2026-11-01T13:30:00Z|K-21|paypal|0|4.99|40.99|Elbchaussee 9|1",
        "536365|2010-12-01T08:26:00Z|17850|-|0|0|57.64|United Kingdom|3",
        "536366|2010-12-01T08:28:00Z|17850|-|0|0|11.10|United Kingdom|1",
        "536367|2010-12-01T08:34:00Z|13047|-|0|0|54.08|United Kingdom|1",
        "536414|2010-12-01T11:52:00Z|guest|-|0|0|0.00|United Kingdom|1",
    ]);
    assert_eq!(rows_as_text(&pg, TRANSACTIONS, 9).await, transactions);
    let items = rows(&[
        "A-1001|1|SKU-1|Kaffeebecher|4.99|2|9.98|Berlin",
        "A-1001|2|SKU-2|Teekanne|19.90|1|19.90|Berlin",
        "A-1002|1|SKU-3|Untersetzer|7.50|1|7.50|-",
        "A-1005|1|SKU-6|Teller|12.00|3|36.00|Hamburg",
        "536365|1|85123A|WHITE HANGING HEART T-LIGHT HOLDER|2.55|6|15.30|-",
        "536365|2|71053|WHITE METAL LANTERN|3.39|6|20.34|-",
        "536365|3|84406B|CREAM CUPID HEARTS COAT HANGER|2.75|8|22.00|-",
        "536366|1|22633|HAND WARMER UNION JACK|1.85|6|11.10|-",
        "536367|1|84879|ASSORTED COLOUR BIRD ORNAMENT|1.69|32|54.08|-",
        "536414|1|22139|-|0.00|56|0.00|-",
    ]);
    assert_eq!(rows_as_text(&pg, ITEMS, 8).await, items);

    // Each reject names the line, the column as the export names it, and why.
    let negative = "a negative quantity (a cancellation or return) is not a sale; refunds are \
        out of scope of the transactions contract";
    let want = rows(&[
        &format!("order_items.csv|5|Menge|{negative}"),
        "order_items.csv|6|Bestellnummer|transaction A-1004 (lines 6, 7) is rejected whole: \
         line(s) 7 broke the contract",
        "order_items.csv|7|Positionssumme|is not price × quantity (1.00 × 2 = 2.00)",
        &format!("uci_invoices.csv|7|Quantity|{negative}"),
        "uci_invoices.csv|9|InvoiceDate|not a timestamp in the profile's time_formats \
         (%m/%d/%Y %H:%M) (got \"2010-12-01 11:57\")",
    ]);
    assert_eq!(rows_as_text(&pg, REJECTED, 4).await, want);
    let rejected_csv = std::fs::read_to_string(
        landing
            .path()
            .join("rejected/uci_invoices.csv.rejected.csv"),
    )
    .unwrap();
    assert!(
        rejected_csv.contains("C536379,D,Discount,-1,"),
        "{rejected_csv}"
    );

    // The same bytes under another name: a duplicate file. The same rows with CRLF line ends
    // (other bytes): every row a duplicate of its transaction. Nothing changes.
    let processed = landing.path().join("processed");
    std::fs::copy(
        processed.join("uci_invoices.csv"),
        landing.path().join("uci-again.csv"),
    )
    .unwrap();
    let crlf = std::fs::read_to_string(processed.join("order_items.csv"))
        .unwrap()
        .replace('\n', "\r\n");
    std::fs::write(landing.path().join("order_items_crlf.csv"), crlf).unwrap();
    watch_once_with(landing.path(), &db, None, &args);
    let again = rows_as_text(
        &pg,
        "SELECT file_name, status, rows_loaded::text, rows_duplicate::text, \
         rows_rejected::text FROM streaming.ingest_files \
         WHERE file_name IN ('uci-again.csv', 'order_items_crlf.csv')",
        5,
    )
    .await;
    assert_eq!(
        again,
        rows(&[
            "order_items_crlf.csv|loaded|0|4|3",
            "uci-again.csv|duplicate_file|0|0|0",
        ])
    );
    assert_eq!(rows_as_text(&pg, TRANSACTIONS, 9).await, transactions);
    assert_eq!(rows_as_text(&pg, ITEMS, 8).await, items);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_stream_profile_stops_the_watcher_naming_the_file_and_field() {
    let profiles = tempfile::tempdir().unwrap();
    std::fs::write(
        profiles.path().join("bad.toml"),
        "name = \"bad\"\nstream = \"transactions\"\n[columns]\ntransaction_id = \"Id\"\n\
         transaction_time = \"When\"\nproduct_id = \"Sku\"\nprice = \"Price\"\n\
         quantity = \"Qty\"\nline_total = \"Total\"\n",
    )
    .unwrap();
    let landing = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin("watch"))
        .args(["--once", "--http-addr", "off", "--profiles-dir"])
        .arg(profiles.path())
        .arg("--landing-dir")
        .arg(landing.path())
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("[columns] names \"line_total\""),
        "{stderr}"
    );
}
