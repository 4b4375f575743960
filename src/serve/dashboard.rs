//! The live dashboard page: a [`Snapshot`] rendered as one self-contained HTML page with inline
//! SVG charts (no script, no CDN) that reloads itself. Pure rendering: no I/O, no SQL. Every
//! number a test may check carries an `id`; every text from the data is HTML-escaped.

use std::fmt::Write as _;

use super::data::{Ranked, Snapshot};

/// Seconds between two reloads of the page.
pub const REFRESH_SECS: u32 = 5;

const EVENT_TYPES: [(&str, &str); 5] = [
    ("view", "#4e79a7"),
    ("add_to_cart", "#f28e2b"),
    ("remove_from_cart", "#bab0ac"),
    ("purchase", "#59a14f"),
    ("search", "#b07aa1"),
];

const STYLE: &str = "body{font-family:sans-serif;margin:16px;background:#fafafa;color:#222}\
h1{font-size:22px;margin:0 0 12px}h2{font-size:16px;margin:0 0 8px}\
.tiles{display:flex;flex-wrap:wrap;gap:8px;margin-bottom:12px}\
.tile{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:120px}\
.tile .v{font-size:20px;font-weight:bold}.tile .l{font-size:12px;color:#666}\
.grid{display:grid;grid-template-columns:1fr 1fr;gap:12px}\
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px}\
table{border-collapse:collapse;font-size:12px}td,th{padding:2px 8px;text-align:right}\
td:first-child,th:first-child{text-align:left}.err{color:#b00}.muted{color:#666;font-size:12px}";

/// The page for `snap`; `note` is shown when the data could not be read (Postgres away).
pub fn page(snap: &Snapshot, note: Option<&str>) -> String {
    let mut h = String::with_capacity(32 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <title>shopstream dashboard</title><style>{STYLE}</style></head><body>\
         <h1>shopstream: live</h1>"
    );
    if let Some(note) = note {
        let _ = write!(h, "<p class=\"err\" id=\"error\">{}</p>", escape(note));
    }
    let k = &snap.kpis;
    h.push_str("<div class=\"tiles\">");
    for (id, label, value) in [
        ("kpi-views", "views", &k.views),
        ("kpi-carts", "add to cart", &k.carts),
        ("kpi-purchases", "purchases", &k.purchases),
        ("kpi-revenue", "revenue", &k.revenue),
        ("kpi-sessions", "sessions", &k.sessions),
        ("kpi-conversion-rate", "conversion rate", &k.conversion_rate),
        (
            "kpi-cart-abandonment-rate",
            "cart abandonment",
            &k.cart_abandonment_rate,
        ),
        (
            "kpi-average-order-value",
            "average order value",
            &k.average_order_value,
        ),
        ("kpi-active-users", "active users", &k.active_users),
    ] {
        let _ = write!(
            h,
            "<div class=\"tile\"><div class=\"v\" id=\"{id}\">{}</div><div class=\"l\">{label}</div></div>",
            escape(value)
        );
    }
    let _ = write!(
        h,
        "<div class=\"tile\"><div class=\"v\" id=\"files-loaded\">{}</div><div class=\"l\">files loaded</div></div>\
         <div class=\"tile\"><div class=\"v\" id=\"files-rejected\">{}</div><div class=\"l\">files rejected</div></div>\
         <div class=\"tile\"><div class=\"v\" id=\"files-duplicate\">{}</div><div class=\"l\">duplicate files</div></div>\
         <div class=\"tile\"><div class=\"v\" id=\"rows-rejected\">{}</div><div class=\"l\">rows rejected</div></div></div>",
        snap.files_loaded, snap.files_rejected, snap.files_duplicate, snap.rows_rejected
    );
    h.push_str("<div class=\"grid\">");
    card(
        &mut h,
        "Events per minute by type (last 60 min of event time)",
        &events_chart(snap),
    );
    card(
        &mut h,
        "Top products by revenue",
        &ranked_chart("top-product", &snap.top_products),
    );
    card(
        &mut h,
        "Top categories by revenue",
        &ranked_chart("top-category", &snap.top_categories),
    );
    card(&mut h, "Session duration", &duration_chart(&snap.durations));
    card(&mut h, "Open alerts", &super::alerts::panel(&snap.alerts));
    card(
        &mut h,
        "Ingest throughput per minute (rows loaded, rows rejected)",
        &throughput_chart(snap),
    );
    card(
        &mut h,
        "Transactions and stock",
        &super::streams_panel::render(&snap.streams),
    );
    card(
        &mut h,
        "Searches and brands (last 24 h of event time)",
        &super::search_panel::render(&snap.search),
    );
    h.push_str(
        "</div><p class=\"muted\">Other views: <a href=\"/files\">file lifecycle</a> · \
        <a href=\"/api/alerts?open=true\">open alerts (JSON)</a> · \
        <a href=\"/metrics\">/metrics</a> · <a href=\"/healthz\">/healthz</a></p></body></html>",
    );
    h
}

fn card(h: &mut String, title: &str, body: &str) {
    let _ = write!(
        h,
        "<div class=\"card\"><h2>{}</h2>{body}</div>",
        escape(title)
    );
}

const W: f64 = 560.0;
const H: f64 = 220.0;

/// Horizontal bars with the shown value beside each; ids `{prefix}-{i}-label` / `-value`.
fn ranked_chart(prefix: &str, items: &[Ranked]) -> String {
    if items.is_empty() {
        return "<p class=\"muted\">no data yet</p>".into();
    }
    let row = 20.0;
    let height = row * items.len() as f64 + 4.0;
    let max = items.iter().map(|r| r.value).fold(0.0, f64::max).max(1e-9);
    let mut s = format!("<svg width=\"{W}\" height=\"{height}\" viewBox=\"0 0 {W} {height}\" xmlns=\"http://www.w3.org/2000/svg\" font-size=\"11\">");
    for (i, r) in items.iter().enumerate() {
        let y = i as f64 * row + 2.0;
        let len = (r.value / max) * 250.0;
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{ty}\" id=\"{prefix}-{i}-label\">{label}</text>\
             <rect x=\"200\" y=\"{y}\" width=\"{len:.1}\" height=\"{bh}\" fill=\"#4e79a7\"/>\
             <text x=\"{vx:.1}\" y=\"{ty}\" id=\"{prefix}-{i}-value\">{shown}</text>",
            ty = y + 13.0,
            label = escape(&truncate(&r.label, 32)),
            bh = row - 4.0,
            vx = 204.0 + len,
            shown = escape(&r.shown),
        );
    }
    s.push_str("</svg>");
    s
}

/// Vertical bars with labels under them and counts above.
fn duration_chart(bins: &[(String, i64)]) -> String {
    let max = bins.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
    let n = bins.len().max(1) as f64;
    let slot = W / n;
    let mut s = svg_open();
    for (i, (label, count)) in bins.iter().enumerate() {
        let bh = (*count as f64 / max) * (H - 40.0);
        let x = i as f64 * slot + 6.0;
        let _ = write!(
            s,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{bh:.1}\" fill=\"#76b7b2\"/>\
             <text x=\"{cx:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" id=\"duration-{i}\">{count}</text>\
             <text x=\"{cx:.1}\" y=\"{ly}\" text-anchor=\"middle\">{label}</text>",
            y = H - 20.0 - bh,
            w = slot - 12.0,
            cx = x + (slot - 12.0) / 2.0,
            ty = H - 24.0 - bh,
            ly = H - 6.0,
            label = escape(label),
        );
    }
    s.push_str("</svg>");
    s
}

/// One polyline per event type over the minutes present, with a legend.
fn events_chart(snap: &Snapshot) -> String {
    let mut minutes: Vec<&str> = snap
        .events_per_minute
        .iter()
        .map(|m| m.minute.as_str())
        .collect();
    minutes.dedup();
    if minutes.is_empty() {
        return "<p class=\"muted\">no data yet</p>".into();
    }
    let max = snap
        .events_per_minute
        .iter()
        .map(|m| m.events)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let step = (W - 60.0) / (minutes.len().max(2) - 1) as f64;
    let mut s = svg_open();
    let _ = write!(
        s,
        "<text x=\"0\" y=\"12\">{}</text><text x=\"0\" y=\"{}\">0</text>\
         <text x=\"40\" y=\"{H}\">{}</text><text x=\"{}\" y=\"{H}\" text-anchor=\"end\">{}</text>",
        max as i64,
        H - 20.0,
        escape(minutes[0]),
        W - 20.0,
        escape(minutes[minutes.len() - 1])
    );
    for (t, (event_type, color)) in EVENT_TYPES.iter().enumerate() {
        let mut points = String::new();
        for (i, minute) in minutes.iter().enumerate() {
            let n = snap
                .events_per_minute
                .iter()
                .find(|m| m.minute == *minute && m.event_type == *event_type)
                .map_or(0, |m| m.events);
            let _ = write!(
                points,
                "{:.1},{:.1} ",
                40.0 + i as f64 * step,
                H - 20.0 - (n as f64 / max) * (H - 40.0)
            );
        }
        let _ = write!(
            s,
            "<polyline points=\"{points}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>\
             <rect x=\"{lx}\" y=\"4\" width=\"10\" height=\"10\" fill=\"{color}\"/>\
             <text x=\"{tx}\" y=\"13\">{event_type}</text>",
            lx = 60 + t * 100,
            tx = 74 + t * 100,
        );
    }
    s.push_str("</svg>");
    s
}

/// Rows loaded (blue) and rejected (red) per minute of the watcher's clock.
fn throughput_chart(snap: &Snapshot) -> String {
    if snap.throughput.is_empty() {
        return "<p class=\"muted\">no file finished in the last hour</p>".into();
    }
    let max = snap
        .throughput
        .iter()
        .map(|t| t.rows_loaded + t.rows_rejected)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let slot = (W - 40.0) / snap.throughput.len().max(1) as f64;
    let mut s = svg_open();
    let _ = write!(s, "<text x=\"0\" y=\"12\">{}</text>", max as i64);
    for (i, t) in snap.throughput.iter().enumerate() {
        let x = 40.0 + i as f64 * slot;
        let loaded = (t.rows_loaded as f64 / max) * (H - 40.0);
        let rejected = (t.rows_rejected as f64 / max) * (H - 40.0);
        let w = (slot - 2.0).clamp(1.0, 24.0);
        let _ = write!(
            s,
            "<rect x=\"{x:.1}\" y=\"{yl:.1}\" width=\"{w:.1}\" height=\"{loaded:.1}\" fill=\"#4e79a7\"><title>{m}: {fl} files, {rl} rows loaded</title></rect>\
             <rect x=\"{x:.1}\" y=\"{yr:.1}\" width=\"{w:.1}\" height=\"{rejected:.1}\" fill=\"#e15759\"><title>{m}: {rr} rows rejected</title></rect>",
            yl = H - 20.0 - loaded,
            yr = H - 20.0 - loaded - rejected,
            m = escape(&t.minute),
            fl = t.files,
            rl = t.rows_loaded,
            rr = t.rows_rejected,
        );
    }
    let first = &snap.throughput[0].minute;
    let last = &snap.throughput[snap.throughput.len() - 1].minute;
    let _ = write!(
        s,
        "<text x=\"40\" y=\"{H}\">{}</text><text x=\"{}\" y=\"{H}\" text-anchor=\"end\">{}</text></svg>",
        escape(first),
        W - 4.0,
        escape(last)
    );
    s
}

fn svg_open() -> String {
    format!("<svg width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" xmlns=\"http://www.w3.org/2000/svg\" font-size=\"11\">")
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::data::{Kpis, MinuteCount, Throughput};
    use super::*;

    fn sample() -> Snapshot {
        Snapshot {
            kpis: Kpis {
                views: "10".into(),
                revenue: "12.50".into(),
                ..Kpis::default()
            },
            events_per_minute: vec![MinuteCount {
                minute: "2026-11-01 00:00".into(),
                event_type: "view".into(),
                events: 10,
            }],
            top_products: vec![Ranked {
                label: "<script>".into(),
                value: 12.5,
                shown: "12.50".into(),
            }],
            durations: vec![("0-1 min".into(), 3), ("1-2 min".into(), 0)],
            throughput: vec![Throughput {
                minute: "10:00".into(),
                files: 1,
                rows_loaded: 10,
                rows_rejected: 1,
            }],
            ..Snapshot::default()
        }
    }

    #[test]
    fn the_page_shows_the_numbers_with_ids_and_escapes_data() {
        let html = page(&sample(), None);
        assert!(html.contains("<div class=\"v\" id=\"kpi-views\">10</div>"));
        assert!(html.contains("id=\"kpi-revenue\">12.50<"));
        assert!(html.contains("id=\"top-product-0-label\">&lt;script&gt;<"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("http-equiv=\"refresh\""));
        assert_eq!(html.matches("<svg").count(), 4, "no categories: no chart");
        assert!(html.contains("id=\"duration-0\">3<"));
    }

    #[test]
    fn an_error_note_is_shown_and_empty_data_renders() {
        let html = page(&Snapshot::default(), Some("Postgres is down & out"));
        assert!(html.contains("id=\"error\">Postgres is down &amp; out<"));
        assert!(html.contains("no data yet"));
    }
}
