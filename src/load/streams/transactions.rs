//! Transactions and their line items into `streaming.transactions` and
//! `streaming.transaction_items`. A transaction is its id: the first file that brings it loads
//! every line, and a later one loads none of them (they count as duplicates), so a transaction
//! is never stored in part or mixed from two files.

use std::collections::HashSet;

use tokio_postgres::Transaction as PgTransaction;

use crate::transform::streams::Transaction;

const INSERT_TRANSACTIONS: &str = include_str!("insert_transactions.sql");
const INSERT_ITEMS: &str = include_str!("insert_items.sql");

/// Inserts the transactions not loaded before and all their lines; returns the lines inserted.
pub(super) async fn insert(
    tx: &PgTransaction<'_>,
    file_id: i64,
    transactions: &[Transaction],
) -> Result<u64, tokio_postgres::Error> {
    if transactions.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = transactions
        .iter()
        .map(|t| t.transaction_id.as_str())
        .collect();
    let times: Vec<_> = transactions.iter().map(|t| t.time).collect();
    let users: Vec<&str> = transactions.iter().map(|t| t.user_id.as_str()).collect();
    let methods: Vec<Option<&str>> = transactions
        .iter()
        .map(|t| t.payment_method.as_deref())
        .collect();
    let taxes: Vec<&str> = transactions.iter().map(|t| t.tax_amount.as_str()).collect();
    let shipping: Vec<&str> = transactions
        .iter()
        .map(|t| t.shipping_cost.as_str())
        .collect();
    let totals: Vec<&str> = transactions
        .iter()
        .map(|t| t.total_amount.as_str())
        .collect();
    let addresses: Vec<Option<&str>> = transactions
        .iter()
        .map(|t| t.shipping_address.as_deref())
        .collect();
    let lines: Vec<i32> = transactions.iter().map(|t| t.items.len() as i32).collect();
    let new: HashSet<String> = tx
        .query(
            INSERT_TRANSACTIONS,
            &[
                &ids, &times, &users, &methods, &taxes, &shipping, &totals, &addresses, &lines,
                &file_id,
            ],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let items = transactions
        .iter()
        .filter(|t| new.contains(&t.transaction_id))
        .flat_map(|t| t.items.iter().map(move |i| (t.transaction_id.as_str(), i)));
    let (mut ids, mut numbers, mut products, mut names) = (vec![], vec![], vec![], vec![]);
    let (mut prices, mut quantities, mut totals, mut warehouses) = (vec![], vec![], vec![], vec![]);
    for (id, i) in items {
        ids.push(id);
        numbers.push(i.line_number);
        products.push(i.product_id.as_str());
        names.push(i.product_name.as_deref());
        prices.push(i.price.as_str());
        quantities.push(i.quantity);
        totals.push(i.item_total.as_str());
        warehouses.push(i.warehouse.as_deref());
    }
    if ids.is_empty() {
        return Ok(0);
    }
    tx.execute(
        INSERT_ITEMS,
        &[
            &ids,
            &numbers,
            &products,
            &names,
            &prices,
            &quantities,
            &totals,
            &warehouses,
        ],
    )
    .await
}
