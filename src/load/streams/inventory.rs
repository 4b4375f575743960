//! Inventory updates into `streaming.inventory_updates`, and the stock levels they move in
//! `streaming.stock_levels`, in one statement of the file's transaction. The level of a product
//! in a warehouse is the `current_stock` of its latest update by (event_time, update_id): the
//! upsert only ever moves a level forward in that order, so files arriving late or out of order
//! end where an in-order load ends, and the table equals `streaming.stock_levels_recompute`.

use tokio_postgres::Transaction;

use crate::transform::streams::InventoryUpdate;

const INSERT_INVENTORY: &str = include_str!("insert_inventory.sql");

/// Inserts the updates whose id is new and moves the stock levels; returns the updates inserted.
pub(super) async fn insert(
    tx: &Transaction<'_>,
    file_id: i64,
    updates: &[InventoryUpdate],
) -> Result<u64, tokio_postgres::Error> {
    if updates.is_empty() {
        return Ok(0);
    }
    let ids: Vec<_> = updates.iter().map(|u| u.update_id).collect();
    let times: Vec<_> = updates.iter().map(|u| u.time).collect();
    let products: Vec<&str> = updates.iter().map(|u| u.product_id.as_str()).collect();
    let names: Vec<Option<&str>> = updates.iter().map(|u| u.product_name.as_deref()).collect();
    let warehouses: Vec<&str> = updates.iter().map(|u| u.warehouse.as_str()).collect();
    let changes: Vec<i32> = updates.iter().map(|u| u.stock_change).collect();
    let stocks: Vec<i32> = updates.iter().map(|u| u.current_stock).collect();
    let row = tx
        .query_one(
            INSERT_INVENTORY,
            &[
                &ids,
                &times,
                &products,
                &names,
                &warehouses,
                &changes,
                &stocks,
                &file_id,
            ],
        )
        .await?;
    Ok(row.get::<_, i64>(0) as u64)
}
