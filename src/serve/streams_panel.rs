//! The dashboard's panel of the other streams: revenue from transactions beside revenue from
//! purchase events (and the difference, when both are loaded), and the products whose stock
//! runs low. Its own queries and markup, read with the snapshot; writes nothing.

use std::fmt::Write as _;

use tokio_postgres::Client;

use super::dashboard::escape;

/// A stock level under this is shown as low.
pub const LOW_STOCK: i32 = 10;
/// Rows of the low-stock table.
const LOW_STOCK_ROWS: i64 = 10;

/// What the panel shows; every number as Postgres prints it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamsPanel {
    pub transactions: i64,
    /// Sum of the line items' `item_total` (without tax and shipping).
    pub transaction_revenue: String,
    /// Sum of the purchase events' `total_amount`.
    pub event_revenue: String,
    /// transaction_revenue − event_revenue.
    pub difference: String,
    /// (product_id, warehouse, current_stock) under [`LOW_STOCK`], lowest first.
    pub low_stock: Vec<(String, String, i32)>,
}

const REVENUES: &str = "SELECT (SELECT count(*) FROM streaming.transactions), \
    round(i.revenue, 2)::text, round(e.revenue, 2)::text, round(i.revenue - e.revenue, 2)::text \
    FROM (SELECT coalesce(sum(item_total), 0) AS revenue FROM streaming.transaction_items) i, \
         (SELECT coalesce(sum(revenue), 0) AS revenue FROM streaming.event_stats_hourly) e";

const LOW: &str = "SELECT product_id, warehouse, current_stock FROM streaming.stock_levels \
    WHERE current_stock < $1 ORDER BY current_stock, product_id, warehouse LIMIT $2";

/// Reads the panel.
///
/// # Errors
/// A query failing (Postgres away, schema not migrated yet).
pub async fn read(client: &Client) -> Result<StreamsPanel, tokio_postgres::Error> {
    let r = client.query_one(REVENUES, &[]).await?;
    let low_stock = client
        .query(LOW, &[&LOW_STOCK, &LOW_STOCK_ROWS])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    Ok(StreamsPanel {
        transactions: r.get(0),
        transaction_revenue: r.get(1),
        event_revenue: r.get(2),
        difference: r.get(3),
        low_stock,
    })
}

/// The panel's card body; ids `stream-*` and `low-stock-{i}-*` for tests.
pub fn render(p: &StreamsPanel) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<table><tr><th>transactions</th><td id=\"stream-transactions\">{}</td></tr>\
         <tr><th>revenue from transaction lines</th><td id=\"stream-transaction-revenue\">{}</td></tr>\
         <tr><th>revenue from purchase events</th><td id=\"stream-event-revenue\">{}</td></tr>\
         <tr><th>difference</th><td id=\"stream-revenue-difference\">{}</td></tr></table>",
        p.transactions,
        escape(&p.transaction_revenue),
        escape(&p.event_revenue),
        escape(&p.difference)
    );
    if p.low_stock.is_empty() {
        let _ = write!(
            h,
            "<p class=\"muted\">no product under {LOW_STOCK} in stock</p>"
        );
        return h;
    }
    let _ = write!(
        h,
        "<h2>Low stock (under {LOW_STOCK})</h2><table><tr><th>product</th><th>warehouse</th><th>stock</th></tr>"
    );
    for (i, (product, warehouse, stock)) in p.low_stock.iter().enumerate() {
        let _ = write!(
            h,
            "<tr><td id=\"low-stock-{i}-product\">{}</td><td id=\"low-stock-{i}-warehouse\">{}</td>\
             <td id=\"low-stock-{i}-stock\">{stock}</td></tr>",
            escape(product),
            escape(warehouse)
        );
    }
    h.push_str("</table>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panel_shows_both_revenues_and_escapes_low_stock_names() {
        let html = render(&StreamsPanel {
            transactions: 2,
            transaction_revenue: "10.00".into(),
            event_revenue: "7.50".into(),
            difference: "2.50".into(),
            low_stock: vec![("<p1>".into(), "w1".into(), 3)],
        });
        assert!(html.contains("id=\"stream-revenue-difference\">2.50<"));
        assert!(html.contains("id=\"low-stock-0-product\">&lt;p1&gt;<"));
        assert!(html.contains("id=\"low-stock-0-stock\">3<"));
        assert!(render(&StreamsPanel::default()).contains("no product under"));
    }
}
