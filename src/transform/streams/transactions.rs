//! The transactions contract: one row per line item, the transaction's columns repeated on
//! each line. Checks each line, then each transaction as a whole: its repeated columns agree,
//! its line numbers are distinct, and its items plus tax plus shipping add up to its total,
//! exactly. A transaction with any bad line is rejected whole, naming the lines, so that a
//! transaction is never stored in part.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::values::{amount, integer, show_units, time, Amount};
use super::Row;
use crate::transform::profile::ResolvedWindow;
use crate::transform::RejectedRow;

/// The header shopstream-gen writes, in its order (columns may come in any order).
pub const TRANSACTION_COLUMNS: [&str; 15] = [
    "transaction_id",
    "line_number",
    "transaction_time",
    "user_id",
    "payment_method",
    "product_id",
    "product_name",
    "price",
    "quantity",
    "item_total",
    "tax_amount",
    "shipping_cost",
    "total_amount",
    "warehouse",
    "shipping_address",
];

pub(super) const REQUIRED: &[&str] = &[
    "transaction_id",
    "line_number",
    "transaction_time",
    "user_id",
    "product_id",
    "price",
    "quantity",
    "item_total",
    "total_amount",
];

/// A transaction whose lines all passed and add up.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    pub transaction_id: String,
    pub time: DateTime<Utc>,
    pub user_id: String,
    pub payment_method: Option<String>,
    /// Decimals as written (`0` when the column is absent or empty).
    pub tax_amount: String,
    pub shipping_cost: String,
    pub total_amount: String,
    pub shipping_address: Option<String>,
    /// In file order.
    pub items: Vec<Item>,
}

/// One line item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub line_number: i32,
    /// Line in the file (the header is line 1).
    pub file_line: u64,
    pub product_id: String,
    pub product_name: Option<String>,
    pub price: String,
    pub quantity: i32,
    pub item_total: String,
    pub warehouse: Option<String>,
}

/// The columns every line of a transaction repeats, parsed.
#[derive(Debug, Clone, PartialEq)]
struct Head {
    time: DateTime<Utc>,
    user_id: String,
    payment_method: Option<String>,
    tax: Amount,
    shipping: Amount,
    total: Amount,
    shipping_address: Option<String>,
}

/// A row and how its own check ended.
type Checked<'r, 'a> = (&'r Row<'a>, Result<Line, RejectedRow>);

struct Line {
    head: Head,
    item: Item,
    item_units: i128,
}

/// Checks `rows`; appends the rejects (unordered) and returns the good transactions in the
/// order their first lines appear.
pub(super) fn check(
    rows: &[Row<'_>],
    window: &ResolvedWindow,
    rejects: &mut Vec<RejectedRow>,
) -> Vec<Transaction> {
    let mut order: Vec<&str> = Vec::new();
    let mut groups: HashMap<&str, Vec<Checked<'_, '_>>> = HashMap::new();
    for row in rows {
        let Some(id) = row.get("transaction_id") else {
            rejects.push(row.reject("transaction_id", "required"));
            continue;
        };
        let group = groups.entry(id).or_insert_with(|| {
            order.push(id);
            Vec::new()
        });
        group.push((row, line(row, window)));
    }
    let mut good = Vec::with_capacity(order.len());
    for id in order {
        let lines = groups.remove(id).unwrap_or_default();
        if let Some(t) = whole(id, lines, rejects) {
            good.push(t);
        }
    }
    good
}

/// Checks one line's own values; the first broken rule rejects it.
fn line(row: &Row<'_>, window: &ResolvedWindow) -> Result<Line, RejectedRow> {
    if let Some((column, reason)) = &row.pre {
        return Err(row.reject(column, reason.clone()));
    }
    let need = |c: &str| row.get(c).ok_or_else(|| row.reject(c, "required"));
    let on = |c: &'static str| move |reason: String| row.reject(c, reason);
    let line_number = integer(need("line_number")?, Some(1)).map_err(on("line_number"))?;
    let t = time(need("transaction_time")?, window).map_err(on("transaction_time"))?;
    let user_id = need("user_id")?.to_string();
    let product_id = need("product_id")?.to_string();
    let price = amount(need("price")?).map_err(on("price"))?;
    let quantity_text = need("quantity")?;
    let quantity = integer(quantity_text, Some(1)).map_err(|reason| {
        if quantity_text.starts_with('-') {
            row.reject(
                "quantity",
                "a negative quantity (a cancellation or return) is not a sale; refunds are out \
                 of scope of the transactions contract",
            )
        } else {
            row.reject("quantity", reason)
        }
    })?;
    let item_total = amount(need("item_total")?).map_err(on("item_total"))?;
    let expected = price.units * i128::from(quantity);
    if item_total.units != expected {
        return Err(row.reject(
            "item_total",
            format!(
                "is not price × quantity ({} × {quantity} = {})",
                price.text,
                show_units(expected)
            ),
        ));
    }
    let optional_amount = |c: &'static str| match row.get(c) {
        None => Ok(Amount {
            text: "0".into(),
            units: 0,
        }),
        Some(v) => amount(v).map_err(on(c)),
    };
    let tax = optional_amount("tax_amount")?;
    let shipping = optional_amount("shipping_cost")?;
    let total = amount(need("total_amount")?).map_err(on("total_amount"))?;
    let text = |c: &str| row.get(c).map(str::to_string);
    Ok(Line {
        head: Head {
            time: t,
            user_id,
            payment_method: text("payment_method"),
            tax,
            shipping,
            total,
            shipping_address: text("shipping_address"),
        },
        item_units: item_total.units,
        item: Item {
            line_number,
            file_line: row.line,
            product_id,
            product_name: text("product_name"),
            price: price.text,
            quantity,
            item_total: item_total.text,
            warehouse: text("warehouse"),
        },
    })
}

/// Checks a transaction as a whole; rejects every line of it (each with the reason that
/// names the lines) when it fails.
fn whole(
    id: &str,
    lines: Vec<Checked<'_, '_>>,
    rejects: &mut Vec<RejectedRow>,
) -> Option<Transaction> {
    let file_lines = lines
        .iter()
        .map(|(r, _)| r.line.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let bad: Vec<u64> = lines
        .iter()
        .filter(|(_, l)| l.is_err())
        .map(|(r, _)| r.line)
        .collect();
    if !bad.is_empty() {
        let bad = bad
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        for (row, l) in lines {
            match l {
                Err(reject) => rejects.push(reject),
                Ok(_) => rejects.push(row.reject(
                    "transaction_id",
                    format!(
                        "transaction {id} (lines {file_lines}) is rejected whole: line(s) {bad} \
                         broke the contract"
                    ),
                )),
            }
        }
        return None;
    }
    let lines: Vec<(&Row<'_>, Line)> = lines
        .into_iter()
        .filter_map(|(r, l)| l.ok().map(|l| (r, l)))
        .collect();
    let reject_all = |rejects: &mut Vec<RejectedRow>, column: &str, reason: String| {
        for (row, _) in &lines {
            rejects.push(row.reject(column, reason.clone()));
        }
    };
    let first = &lines[0].1.head;
    if let Some(column) = lines.iter().find_map(|(_, l)| differs(first, &l.head)) {
        reject_all(
            rejects,
            column,
            format!("transaction {id}: {column} differs between its lines ({file_lines})"),
        );
        return None;
    }
    let mut numbers: Vec<i32> = lines.iter().map(|(_, l)| l.item.line_number).collect();
    numbers.sort_unstable();
    if let Some(w) = numbers.windows(2).find(|w| w[0] == w[1]) {
        reject_all(
            rejects,
            "line_number",
            format!(
                "transaction {id}: line_number {} appears more than once (lines {file_lines})",
                w[0]
            ),
        );
        return None;
    }
    let items: i128 = lines.iter().map(|(_, l)| l.item_units).sum();
    let sum = items + first.tax.units + first.shipping.units;
    if sum != first.total.units {
        reject_all(
            rejects,
            "total_amount",
            format!(
                "transaction {id}: its lines {file_lines} add up to {} (items {} + tax {} + \
                 shipping {}), not its total_amount {}",
                show_units(sum),
                show_units(items),
                show_units(first.tax.units),
                show_units(first.shipping.units),
                first.total.text
            ),
        );
        return None;
    }
    let head = first.clone();
    Some(Transaction {
        transaction_id: id.to_string(),
        time: head.time,
        user_id: head.user_id,
        payment_method: head.payment_method,
        tax_amount: head.tax.text,
        shipping_cost: head.shipping.text,
        total_amount: head.total.text,
        shipping_address: head.shipping_address,
        items: lines.into_iter().map(|(_, l)| l.item).collect(),
    })
}

/// The first repeated column whose value differs between two lines (decimals by value).
fn differs(a: &Head, b: &Head) -> Option<&'static str> {
    [
        ("transaction_time", a.time != b.time),
        ("user_id", a.user_id != b.user_id),
        ("payment_method", a.payment_method != b.payment_method),
        ("tax_amount", a.tax.units != b.tax.units),
        ("shipping_cost", a.shipping.units != b.shipping.units),
        ("total_amount", a.total.units != b.total.units),
        ("shipping_address", a.shipping_address != b.shipping_address),
    ]
    .into_iter()
    .find(|(_, d)| *d)
    .map(|(c, _)| c)
}
