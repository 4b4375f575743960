//! `low_stock`: after an inventory file moved its stock levels, each (product, warehouse) it
//! touched whose current stock is below [`AlertRules::low_stock`] units raises one alert (subject
//! `PRODUCT@WAREHOUSE`); a later file that lifts it to the threshold or above resolves it.
//! Reads only the levels the file touched. Owns low_stock.sql.

use tokio_postgres::Transaction;

use super::{log_changes, AlertRules, Change};
use crate::transform::streams::InventoryUpdate;

const LOW_STOCK: &str = include_str!("low_stock.sql");

/// Runs the check for inventory file `file_id` in its load transaction, after its updates moved
/// the levels; logs each alert raised (WARN) or resolved (INFO).
///
/// # Errors
/// The statement failed; the load then fails as any of its statements would.
pub async fn check_stock(
    tx: &Transaction<'_>,
    file_id: i64,
    updates: &[InventoryUpdate],
    rules: &AlertRules,
) -> Result<Vec<Change>, tokio_postgres::Error> {
    if !rules.enabled || updates.is_empty() {
        return Ok(Vec::new());
    }
    let products: Vec<&str> = updates.iter().map(|u| u.product_id.as_str()).collect();
    let warehouses: Vec<&str> = updates.iter().map(|u| u.warehouse.as_str()).collect();
    let parameters = serde_json::json!({ "threshold": rules.low_stock });
    let rows = tx
        .query(
            LOW_STOCK,
            &[
                &file_id,
                &rules.low_stock,
                &parameters,
                &products,
                &warehouses,
            ],
        )
        .await?;
    let changes: Vec<Change> = rows.iter().map(Change::from_row).collect();
    log_changes(file_id, &changes);
    Ok(changes)
}
