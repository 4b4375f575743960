//! The inventory contract: one stock movement per row (`stock_change`, negative when sold,
//! positive when restocked) and the stock it left (`current_stock`) for a product in a
//! warehouse. Without an `update_id` column, ids are derived from the row (UUIDv5), so the
//! same update dropped again is the same update. Checks rows one by one; no cross-row rule.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::values::{integer, time};
use super::Row;
use crate::transform::derived_id::derived_id;
use crate::transform::profile::ResolvedWindow;
use crate::transform::RejectedRow;

/// The header shopstream-gen writes, in its order (columns may come in any order).
pub const INVENTORY_COLUMNS: [&str; 7] = [
    "update_id",
    "event_time",
    "product_id",
    "product_name",
    "warehouse",
    "stock_change",
    "current_stock",
];

pub(super) const REQUIRED: &[&str] = &[
    "event_time",
    "product_id",
    "warehouse",
    "stock_change",
    "current_stock",
];

/// Namespace of the UUIDv5 update ids derived for files without `update_id`. Fixed forever:
/// changing it would make every re-dropped update new.
pub const INVENTORY_ID_NAMESPACE: Uuid = Uuid::from_u128(0x2b8e_61d4_7f3a_4e19_a0c5_93d7_1e6b_f208);

/// A good inventory row.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryUpdate {
    pub update_id: Uuid,
    pub time: DateTime<Utc>,
    pub product_id: String,
    pub product_name: Option<String>,
    pub warehouse: String,
    pub stock_change: i32,
    pub current_stock: i32,
    /// Line in the file (the header is line 1).
    pub file_line: u64,
}

/// Checks `rows`; appends the rejects and returns the good updates in file order.
pub(super) fn check(
    rows: &[Row<'_>],
    window: &ResolvedWindow,
    rejects: &mut Vec<RejectedRow>,
) -> Vec<InventoryUpdate> {
    let mut good = Vec::with_capacity(rows.len());
    for row in rows {
        match update(row, window) {
            Ok(u) => good.push(u),
            Err(r) => rejects.push(r),
        }
    }
    good
}

fn update(row: &Row<'_>, window: &ResolvedWindow) -> Result<InventoryUpdate, RejectedRow> {
    let need = |c: &str| row.get(c).ok_or_else(|| row.reject(c, "required"));
    let on = |c: &'static str| move |reason: String| row.reject(c, reason);
    let given_id = if row.has("update_id") {
        let text = need("update_id")?;
        Some(Uuid::try_parse(text).map_err(|_| row.reject("update_id", "not a UUID"))?)
    } else {
        None
    };
    let t = time(need("event_time")?, window).map_err(on("event_time"))?;
    let product_id = need("product_id")?.to_string();
    let warehouse = need("warehouse")?.to_string();
    let stock_change = integer(need("stock_change")?, None).map_err(on("stock_change"))?;
    let current_stock = integer(need("current_stock")?, Some(0)).map_err(on("current_stock"))?;
    let product_name = row.get("product_name").map(str::to_string);
    let update_id = given_id.unwrap_or_else(|| {
        derived_update_id(
            t,
            &product_id,
            product_name.as_deref(),
            &warehouse,
            stock_change,
            current_stock,
        )
    });
    Ok(InventoryUpdate {
        update_id,
        time: t,
        product_id,
        product_name,
        warehouse,
        stock_change,
        current_stock,
        file_line: row.line,
    })
}

/// UUIDv5 over every value but the id, length-prefixed (`-` when empty), the time as
/// microseconds since the epoch. The same update gets the same id in any file.
fn derived_update_id(
    t: DateTime<Utc>,
    product_id: &str,
    product_name: Option<&str>,
    warehouse: &str,
    stock_change: i32,
    current_stock: i32,
) -> Uuid {
    let micros = t.timestamp_micros().to_string();
    let (change, stock) = (stock_change.to_string(), current_stock.to_string());
    let values = [
        Some(micros.as_str()),
        Some(product_id),
        product_name,
        Some(warehouse),
        Some(change.as_str()),
        Some(stock.as_str()),
    ];
    derived_id(&INVENTORY_ID_NAMESPACE, values)
}
