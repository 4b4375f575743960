//! The Kafka messages of the other streams, and the outbox queries that feed them: a
//! transaction's line items (one message per line, the transaction's columns repeated, key
//! user_id) and inventory updates (key product_id). Decimals keep their stored digits.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use super::message::JsonObject;
use crate::schema;

/// The loaded line items of a file, in the order [`item_message`] reads them.
pub(super) const OUTBOX_ITEMS: &str = "SELECT t.transaction_id, i.line_number, \
    t.transaction_time, t.user_id, t.payment_method, i.product_id, i.product_name, \
    i.price::text, i.quantity, i.item_total::text, t.tax_amount::text, t.shipping_cost::text, \
    t.total_amount::text, i.warehouse, t.shipping_address \
    FROM streaming.transactions t JOIN streaming.transaction_items i USING (transaction_id) \
    WHERE t.file_id = $1";

/// The loaded inventory updates of a file, in the order [`inventory_message`] reads them.
pub(super) const OUTBOX_INVENTORY: &str = "SELECT update_id, event_time, product_id, \
    product_name, warehouse, stock_change, current_stock \
    FROM streaming.inventory_updates WHERE file_id = $1";

/// A line item: key user_id; payload a flat JSON object of the transactions contract's columns.
pub(super) fn item_message(row: &Row) -> (String, String) {
    let line: i32 = row.get(1);
    let time: DateTime<Utc> = row.get(2);
    let user: String = row.get(3);
    let quantity: i32 = row.get(8);
    let mut json = JsonObject::default();
    json.text("transaction_id", row.get(0));
    json.number("line_number", Some(&line.to_string()));
    json.plain_text("transaction_time", |out| {
        schema::write_event_time(out, time)
    });
    json.text("user_id", Some(&user));
    json.text("payment_method", row.get(4));
    json.text("product_id", row.get(5));
    json.text("product_name", row.get(6));
    json.number("price", row.get(7));
    json.number("quantity", Some(&quantity.to_string()));
    json.number("item_total", row.get(9));
    json.number("tax_amount", row.get(10));
    json.number("shipping_cost", row.get(11));
    json.number("total_amount", row.get(12));
    json.text("warehouse", row.get(13));
    json.text("shipping_address", row.get(14));
    (user, json.finish())
}

/// An inventory update: key product_id; payload a flat JSON object of the inventory contract.
pub(super) fn inventory_message(row: &Row) -> (String, String) {
    let id: Uuid = row.get(0);
    let time: DateTime<Utc> = row.get(1);
    let product: String = row.get(2);
    let change: i32 = row.get(5);
    let stock: i32 = row.get(6);
    let mut json = JsonObject::default();
    json.plain_text("update_id", |out| {
        out.push_str(id.as_hyphenated().encode_lower(&mut Uuid::encode_buffer()))
    });
    json.plain_text("event_time", |out| schema::write_event_time(out, time));
    json.text("product_id", Some(&product));
    json.text("product_name", row.get(3));
    json.text("warehouse", row.get(4));
    json.number("stock_change", Some(&change.to_string()));
    json.number("current_stock", Some(&stock.to_string()));
    (product, json.finish())
}
