use chrono::Utc;

use super::*;
use crate::transform::TimeWindow;

fn read_text(text: &str) -> Result<StreamFile, FileError> {
    let window = TimeWindow::default().resolve(Utc::now());
    read(text.as_bytes(), Limits::default(), &window, None)
}

const TX_HEADER: &str = "transaction_id,line_number,transaction_time,user_id,payment_method,\
product_id,product_name,price,quantity,item_total,tax_amount,shipping_cost,total_amount,\
warehouse,shipping_address";

#[test]
fn headers_choose_their_stream_and_name_what_they_lack() {
    assert_eq!(sniff(TX_HEADER), Some((Stream::Transactions, vec![])));
    assert_eq!(
        sniff("update_id;event_time;product_id;warehouse;stock_change;current_stock"),
        Some((Stream::Inventory, vec![]))
    );
    assert_eq!(
        sniff("stock_change,current_stock,product_id"),
        Some((Stream::Inventory, vec!["event_time", "warehouse"]))
    );
    assert_eq!(sniff(&crate::schema::header_line()), None);
}

#[test]
fn a_transaction_loads_whole_or_is_rejected_whole_naming_its_lines() {
    let text = format!(
        "{TX_HEADER}\n\
         t1,1,2026-11-01T10:00:00Z,u1,card,p1,Lamp,19.99,2,39.98,3.20,4.90,53.08,w1,\"1 Main St, Springfield\"\n\
         t1,2,2026-11-01T10:00:00Z,u1,card,p2,,5,1,5.00,3.2,4.9,53.080,w1,\"1 Main St, Springfield\"\n\
         t2,1,2026-11-01T11:00:00Z,u2,card,p1,Lamp,19.99,1,19.99,0,0,20.00,w2,\n\
         t2,2,2026-11-01T11:00:00Z,u2,card,p3,Pen,1.00,1,1.00,0,0,20.00,w2,\n\
         t3,1,2026-11-01T12:00:00Z,u3,card,p1,Lamp,19.99,-1,-19.99,0,0,0,w2,\n\
         t3,2,2026-11-01T12:00:00Z,u3,card,p2,Pen,1.00,1,1.00,0,0,0,w2,\n\
         t4,1,2026-11-01T12:00:00Z,u4,card,p1,Lamp,2.50,2,5.01,0,0,5.01,w2,\n"
    );
    let file = read_text(&text).unwrap();
    assert_eq!(file.rows_total, 7);
    let StreamRows::Transactions(good) = &file.rows else {
        panic!("transactions")
    };
    assert_eq!(good.len(), 1);
    assert_eq!(good[0].transaction_id, "t1");
    assert_eq!(good[0].items.len(), 2);
    assert_eq!(good[0].total_amount, "53.08");
    assert_eq!(
        good[0].shipping_address.as_deref(),
        Some("1 Main St, Springfield")
    );
    let got: Vec<(u64, Option<&str>, &str)> = file
        .rejects
        .iter()
        .map(|r| (r.line, r.column.as_deref(), r.reason.as_str()))
        .collect();
    let sum = "transaction t2: its lines 4, 5 add up to 20.99 (items 20.99 + tax 0.00 + \
               shipping 0.00), not its total_amount 20.00";
    assert_eq!(got[0], (4, Some("total_amount"), sum));
    assert_eq!(got[1], (5, Some("total_amount"), sum));
    assert_eq!(got[2].0, 6);
    assert!(got[2].2.contains("negative quantity"), "{}", got[2].2);
    assert_eq!(got[3].1, Some("transaction_id"));
    assert!(
        got[3].2.contains("rejected whole: line(s) 6"),
        "{}",
        got[3].2
    );
    assert_eq!(got[4].1, Some("item_total"));
    assert!(got[4].2.contains("2.50 × 2 = 5.00"), "{}", got[4].2);
    assert_eq!(got.len(), 5);
}

#[test]
fn inventory_rows_are_checked_and_their_ids_derived_when_absent() {
    let text = "event_time,product_id,warehouse,stock_change,current_stock\n\
                2026-11-01T10:00:00Z,p1,w1,-2,8\n\
                2026-11-01T10:00:00Z,p1,w1,x,8\n\
                2026-11-01T10:00:00Z,p1,w1,-2,-1\n\
                2026-11-01T10:00:00Z,p1,,-2,3\n\
                2026-11-01T10:00:00Z,p1,w1,-2,8\n";
    let file = read_text(text).unwrap();
    let StreamRows::Inventory(good) = &file.rows else {
        panic!("inventory")
    };
    assert_eq!(good.len(), 2);
    assert_eq!(good[0].update_id, good[1].update_id, "same row, same id");
    let got: Vec<(u64, Option<&str>)> = file
        .rejects
        .iter()
        .map(|r| (r.line, r.column.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, Some("stock_change")),
            (4, Some("current_stock")),
            (5, Some("warehouse"))
        ]
    );
    let missing = read_text("stock_change,current_stock,product_id\n1,2,p\n").unwrap_err();
    assert!(
        missing.to_string().contains("event_time, warehouse"),
        "{missing}"
    );
}

#[test]
fn semicolons_crlf_a_bom_and_blank_lines_read_as_commas_do() {
    let text = "\u{feff}Update_ID;event_time;product_id;warehouse;stock_change;current_stock\r\n\
                6f9619ff-8b86-4d01-b42d-00cf4fc964ff;2026-11-01T10:00:00Z;\"p;1\";w1;-2;8\r\n\
                ;;;;;\r\n\
                \r\n\
                6f9619ff-8b86-4d01-b42d-00cf4fc96400;2026-11-01T10:00:00Z;p2;w1;3;3\r\n";
    let file = read_text(text).unwrap();
    assert_eq!((file.delimiter, file.rows_total), (b';', 2));
    assert!(file.rejects.is_empty(), "{:?}", file.rejects);
    let StreamRows::Inventory(good) = &file.rows else {
        panic!("inventory")
    };
    assert_eq!(good[0].product_id, "p;1");
    assert_eq!(good[1].file_line, 5);
}

#[test]
fn a_stream_profile_maps_invoice_lines_and_derives_numbers_and_totals_exactly() {
    let profile = StreamProfile::from_toml(
        r#"name = "invoices"
stream = "transactions"
time_formats = ["%m/%d/%Y %H:%M"]
decimal_comma = true
[columns]
transaction_id = "InvoiceNo"
transaction_time = "InvoiceDate"
user_id = "CustomerID"
product_id = "StockCode"
price = "UnitPrice"
quantity = "Quantity"
shipping_cost = { column = "Shipping", optional = true }
[defaults]
user_id = "guest"
"#,
        "test",
    )
    .unwrap();
    let header = "InvoiceNo;StockCode;Quantity;InvoiceDate;UnitPrice;CustomerID;Shipping";
    assert!(sniff(header).is_none());
    let profiles = [std::sync::Arc::new(profile)];
    assert!(profile_for(header, &profiles).is_some());
    assert!(profile_for("InvoiceNo;StockCode", &profiles).is_none());
    let text = format!(
        "{header}\n1;A;6;12/1/2010 8:26;2,55;17850;4,99\n1;B;3;12/1/2010 8:26;0,1;17850;4,99\n\
         2;C;1;12/1/2010 9:00;1;;0\nC3;D;-1;12/1/2010 9:41;27,50;14527;0\n\
         4;E;1;2010-12-01;1;1;0\n"
    );
    let window = TimeWindow::default().resolve(Utc::now());
    let file = read(
        text.as_bytes(),
        Limits::default(),
        &window,
        Some(&profiles[0]),
    )
    .unwrap();
    let StreamRows::Transactions(t) = &file.rows else {
        panic!("transactions expected");
    };
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].total_amount, "20.59");
    assert_eq!(t[0].shipping_cost, "4.99");
    let items: Vec<(i32, &str)> = t[0]
        .items
        .iter()
        .map(|i| (i.line_number, i.item_total.as_str()))
        .collect();
    assert_eq!(items, [(1, "15.30"), (2, "0.3")]);
    assert_eq!(t[1].user_id, "guest");
    let rejects: Vec<(u64, Option<&str>)> = file
        .rejects
        .iter()
        .map(|r| (r.line, r.column.as_deref()))
        .collect();
    assert_eq!(rejects, [(5, Some("Quantity")), (6, Some("InvoiceDate"))]);
    assert!(file.rejects[0].reason.contains("negative quantity"));
}

#[test]
fn a_stream_profile_must_map_what_the_contract_needs() {
    let bad = |text: &str| StreamProfile::from_toml(text, "test").unwrap_err();
    let base = "name = \"x\"\nstream = \"transactions\"\n[columns]\ntransaction_id = \"a\"\n\
                transaction_time = \"b\"\nproduct_id = \"c\"\nprice = \"d\"\nquantity = \"e\"\n";
    assert!(bad(base).contains("user_id is required"));
    assert!(bad(&base.replace("transactions", "inventory")).contains("only stream"));
    assert!(bad(&format!("{base}user = \"f\"\n")).contains("not a column of the transactions"));
    assert!(StreamProfile::from_toml(&format!("{base}user_id = \"f\"\n"), "test").is_ok());
    assert!(is_stream_profile(base) && !is_stream_profile("name = \"x\""));
}
