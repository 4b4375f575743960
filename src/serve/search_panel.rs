//! The dashboard's panel of searches and brands over the newest 24 hours of event time
//! (`streaming.recent_window`, sql/V17): searches in all and those that led to no view, the top
//! queries, the queries most often left without a view, and the top brands by purchases. Its
//! own queries and markup, read with the snapshot; writes nothing.

use std::fmt::Write as _;

use tokio_postgres::Client;

use super::dashboard::escape;

/// Rows of each of the panel's tables.
const ROWS: usize = 10;

/// One search query of the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryCount {
    /// Lowercased, as `streaming.search_queries` groups them.
    pub query: String,
    pub searches: i64,
    /// Searches after which the session viewed nothing (sql/V17 defines it).
    pub without_view: i64,
}

/// One brand of the window's purchase events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrandCount {
    pub brand: String,
    pub purchases: i64,
    /// Sum of the purchases' totals, two decimals, as Postgres prints it.
    pub revenue: String,
}

/// What the panel shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchPanel {
    pub searches: i64,
    pub without_view: i64,
    /// Most searched first (then by query).
    pub top_queries: Vec<QueryCount>,
    /// Most often without a view first; only queries with at least one.
    pub no_view_queries: Vec<QueryCount>,
    /// Most purchased first (then by revenue, brand).
    pub top_brands: Vec<BrandCount>,
}

/// Every query of the newest 24 hours of event time, most searched first; the panel's other lists are cut from it.
const QUERIES: &str = "SELECT q.search_query, q.searches, q.without_view \
    FROM streaming.recent_window(24) w, streaming.search_queries(w.since, w.until) q \
    ORDER BY q.searches DESC, q.search_query COLLATE \"C\"";

const BRANDS: &str = "SELECT b.brand, b.purchases, round(b.revenue, 2)::text \
    FROM streaming.recent_window(24) w, streaming.brand_purchases(w.since, w.until) b \
    ORDER BY b.purchases DESC, b.revenue DESC, b.brand COLLATE \"C\" LIMIT $1";

/// Reads the panel.
///
/// # Errors
/// A query failing (Postgres away, schema not migrated yet).
pub async fn read(client: &Client) -> Result<SearchPanel, tokio_postgres::Error> {
    let all: Vec<QueryCount> = client
        .query(QUERIES, &[])
        .await?
        .iter()
        .map(|r| QueryCount {
            query: r.get(0),
            searches: r.get(1),
            without_view: r.get(2),
        })
        .collect();
    let mut no_view: Vec<QueryCount> = all.iter().filter(|q| q.without_view > 0).cloned().collect();
    no_view.sort_by(|a, b| {
        b.without_view
            .cmp(&a.without_view)
            .then_with(|| a.query.cmp(&b.query))
    });
    no_view.truncate(ROWS);
    let top_brands = client
        .query(BRANDS, &[&(ROWS as i64)])
        .await?
        .iter()
        .map(|r| BrandCount {
            brand: r.get(0),
            purchases: r.get(1),
            revenue: r.get(2),
        })
        .collect();
    Ok(SearchPanel {
        searches: all.iter().map(|q| q.searches).sum(),
        without_view: all.iter().map(|q| q.without_view).sum(),
        top_queries: all.into_iter().take(ROWS).collect(),
        no_view_queries: no_view,
        top_brands,
    })
}

/// The panel's card body; ids `search-*`, `search-query-{i}-*`, `no-view-{i}-*`, `brand-{i}-*`
/// for tests.
pub fn render(p: &SearchPanel) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<table><tr><th>searches</th><td id=\"search-total\">{}</td></tr>\
         <tr><th>searches that led to no view</th><td id=\"search-no-view-total\">{}</td></tr></table>",
        p.searches, p.without_view
    );
    if p.top_queries.is_empty() {
        h.push_str("<p class=\"muted\">no search in the window</p>");
    } else {
        h.push_str(
            "<h2>Top search queries</h2><table><tr><th>query</th><th>searches</th>\
             <th>no view</th></tr>",
        );
        for (i, q) in p.top_queries.iter().enumerate() {
            let _ = write!(
                h,
                "<tr><td id=\"search-query-{i}-label\">{}</td>\
                 <td id=\"search-query-{i}-searches\">{}</td>\
                 <td id=\"search-query-{i}-no-view\">{}</td></tr>",
                escape(&q.query),
                q.searches,
                q.without_view
            );
        }
        h.push_str("</table>");
    }
    if !p.no_view_queries.is_empty() {
        h.push_str(
            "<h2>Searches that led to no view</h2><table><tr><th>query</th><th>no view</th></tr>",
        );
        for (i, q) in p.no_view_queries.iter().enumerate() {
            let _ = write!(
                h,
                "<tr><td id=\"no-view-{i}-label\">{}</td><td id=\"no-view-{i}-count\">{}</td></tr>",
                escape(&q.query),
                q.without_view
            );
        }
        h.push_str("</table>");
    }
    if p.top_brands.is_empty() {
        h.push_str("<p class=\"muted\">no purchase with a brand in the window</p>");
        return h;
    }
    h.push_str(
        "<h2>Top brands by purchases</h2><table><tr><th>brand</th><th>purchases</th>\
         <th>revenue</th></tr>",
    );
    for (i, b) in p.top_brands.iter().enumerate() {
        let _ = write!(
            h,
            "<tr><td id=\"brand-{i}-label\">{}</td><td id=\"brand-{i}-purchases\">{}</td>\
             <td id=\"brand-{i}-revenue\">{}</td></tr>",
            escape(&b.brand),
            b.purchases,
            escape(&b.revenue)
        );
    }
    h.push_str("</table>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panel_shows_queries_and_brands_with_ids_and_escapes_them() {
        let q = QueryCount {
            query: "<shoes>".into(),
            searches: 5,
            without_view: 2,
        };
        let html = render(&SearchPanel {
            searches: 5,
            without_view: 2,
            top_queries: vec![q.clone()],
            no_view_queries: vec![q],
            top_brands: vec![BrandCount {
                brand: "zara".into(),
                purchases: 3,
                revenue: "30.00".into(),
            }],
        });
        assert!(html.contains("id=\"search-total\">5<"));
        assert!(html.contains("id=\"search-query-0-label\">&lt;shoes&gt;<"));
        assert!(html.contains("id=\"no-view-0-count\">2<"));
        assert!(html.contains("id=\"brand-0-revenue\">30.00<"));
        let empty = render(&SearchPanel::default());
        assert!(empty.contains("no search in the window") && empty.contains("no purchase"));
    }
}
