//! The dashboard's panel of searches and brands, over the newest hours of event time
//! (`streaming.recent_window`, sql/V17): searches and the top queries of the newest 24 hours,
//! the searches of the newest hour that led to no view and their queries, and the top brands by
//! purchases of the newest 24 hours. Its own queries and markup, read with the snapshot;
//! writes nothing.

use std::fmt::Write as _;

use tokio_postgres::Client;

use super::dashboard::escape;

/// Rows of each of the panel's tables.
const ROWS: i64 = 10;

/// One search query and a count of its searches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryCount {
    /// Lowercased, as the functions of sql/V17 group them.
    pub query: String,
    pub count: i64,
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
    /// Searches of the newest 24 hours.
    pub searches: i64,
    /// Most searched first (then by query, byte order), newest 24 hours.
    pub top_queries: Vec<QueryCount>,
    /// Searches of the newest hour, and those of them that led to no view.
    pub hour_searches: i64,
    pub without_view: i64,
    /// Queries of the newest hour most often left without a view (count = without a view).
    pub no_view_queries: Vec<QueryCount>,
    /// Most purchased first (then by revenue, brand), newest 24 hours.
    pub top_brands: Vec<BrandCount>,
}

/// The top queries of the newest 24 hours, and the searches of those hours in all (a window
/// sum, computed before the LIMIT). The partial index of searches alone.
const TOP_QUERIES: &str = "SELECT q.search_query, q.searches, sum(q.searches) OVER ()::bigint \
    FROM streaming.recent_window(24) w, streaming.search_counts(w.since, w.until) q \
    ORDER BY q.searches DESC, q.search_query COLLATE \"C\" LIMIT $1";

/// Every query of the newest hour with its searches and those that led to no view (this one
/// reads the hour's views too, so it covers one hour).
const NO_VIEW: &str = "SELECT q.search_query, q.searches, q.without_view \
    FROM streaming.recent_window(1) w, streaming.search_queries(w.since, w.until) q \
    ORDER BY q.without_view DESC, q.search_query COLLATE \"C\"";

const BRANDS: &str = "SELECT b.brand, b.purchases, round(b.revenue, 2)::text \
    FROM streaming.recent_window(24) w, streaming.brand_purchases(w.since, w.until) b \
    ORDER BY b.purchases DESC, b.revenue DESC, b.brand COLLATE \"C\" LIMIT $1";

/// Reads the panel.
///
/// # Errors
/// A query failing (Postgres away, schema not migrated yet).
pub async fn read(client: &Client) -> Result<SearchPanel, tokio_postgres::Error> {
    let top = client.query(TOP_QUERIES, &[&ROWS]).await?;
    let searches = top.first().map_or(0, |r| r.get(2));
    let top_queries = top
        .iter()
        .map(|r| QueryCount {
            query: r.get(0),
            count: r.get(1),
        })
        .collect();
    let hour = client.query(NO_VIEW, &[]).await?;
    let hour_searches = hour.iter().map(|r| r.get::<_, i64>(1)).sum();
    let without_view = hour.iter().map(|r| r.get::<_, i64>(2)).sum();
    let no_view_queries = hour
        .iter()
        .filter(|r| r.get::<_, i64>(2) > 0)
        .take(ROWS as usize)
        .map(|r| QueryCount {
            query: r.get(0),
            count: r.get(2),
        })
        .collect();
    let top_brands = client
        .query(BRANDS, &[&ROWS])
        .await?
        .iter()
        .map(|r| BrandCount {
            brand: r.get(0),
            purchases: r.get(1),
            revenue: r.get(2),
        })
        .collect();
    Ok(SearchPanel {
        searches,
        top_queries,
        hour_searches,
        without_view,
        no_view_queries,
        top_brands,
    })
}

/// The panel's card body; ids `search-*`, `search-query-{i}-*`, `no-view-{i}-*`, `brand-{i}-*`
/// for tests.
pub fn render(p: &SearchPanel) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<table><tr><th>searches (24 h)</th><td id=\"search-total\">{}</td></tr>\
         <tr><th>searches (newest hour)</th><td id=\"search-hour-total\">{}</td></tr>\
         <tr><th>of those, led to no view</th><td id=\"search-no-view-total\">{}</td></tr></table>",
        p.searches, p.hour_searches, p.without_view
    );
    if p.top_queries.is_empty() {
        h.push_str("<p class=\"muted\">no search in the window</p>");
    } else {
        h.push_str(
            "<h2>Top search queries (24 h)</h2><table><tr><th>query</th><th>searches</th></tr>",
        );
        for (i, q) in p.top_queries.iter().enumerate() {
            let _ = write!(
                h,
                "<tr><td id=\"search-query-{i}-label\">{}</td>\
                 <td id=\"search-query-{i}-searches\">{}</td></tr>",
                escape(&q.query),
                q.count
            );
        }
        h.push_str("</table>");
    }
    if !p.no_view_queries.is_empty() {
        h.push_str(
            "<h2>Searches that led to no view (newest hour)</h2><table><tr><th>query</th>\
             <th>no view</th></tr>",
        );
        for (i, q) in p.no_view_queries.iter().enumerate() {
            let _ = write!(
                h,
                "<tr><td id=\"no-view-{i}-label\">{}</td><td id=\"no-view-{i}-count\">{}</td></tr>",
                escape(&q.query),
                q.count
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
            count: 2,
        };
        let html = render(&SearchPanel {
            searches: 5,
            hour_searches: 3,
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
        assert!(html.contains("id=\"search-hour-total\">3<"));
        assert!(html.contains("id=\"search-query-0-label\">&lt;shoes&gt;<"));
        assert!(html.contains("id=\"no-view-0-count\">2<"));
        assert!(html.contains("id=\"brand-0-revenue\">30.00<"));
        let empty = render(&SearchPanel::default());
        assert!(empty.contains("no search in the window") && empty.contains("no purchase"));
    }
}
