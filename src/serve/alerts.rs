//! Open data-quality alerts where people and Prometheus see them: the dashboard's panel and the
//! `shopstream_alerts_open{kind}` gauge, both read from `streaming.alerts`. Read-only; the
//! checks that raise them are `load::alerts`.

use std::fmt::Write as _;

use tokio_postgres::Client;

use super::dashboard::escape;

/// Most open alerts the panel lists (the newest).
pub const PANEL_ROWS: i64 = 20;

/// One open alert as the panel shows it; numbers as Postgres prints them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenAlert {
    pub kind: String,
    pub subject: String,
    pub observed: String,
    pub expected: String,
    pub raised_at: String,
    pub file_id: i64,
}

const OPEN: &str = "SELECT kind, subject, observed::text, \
    coalesce(expected_low::text, '') || '..' || coalesce(expected_high::text, ''), \
    to_char(raised_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), file_id \
    FROM streaming.alerts WHERE resolved_at IS NULL ORDER BY alert_id DESC LIMIT $1";

const OPEN_BY_KIND: &str =
    "SELECT kind, count(*) FROM streaming.alerts WHERE resolved_at IS NULL GROUP BY kind";

/// The newest open alerts, for the panel.
///
/// # Errors
/// The query failed (Postgres away, schema not migrated yet).
pub async fn open(client: &Client) -> Result<Vec<OpenAlert>, tokio_postgres::Error> {
    let rows = client.query(OPEN, &[&PANEL_ROWS]).await?;
    Ok(rows
        .iter()
        .map(|r| OpenAlert {
            kind: r.get(0),
            subject: r.get(1),
            observed: r.get(2),
            expected: r.get(3),
            raised_at: r.get(4),
            file_id: r.get(5),
        })
        .collect())
}

/// Sets the gauge of every kind (0 where none is open).
///
/// # Errors
/// The query failed; the gauges keep their last values.
pub async fn count_for_metrics(client: &Client) -> Result<(), tokio_postgres::Error> {
    let rows = client.query(OPEN_BY_KIND, &[]).await?;
    for kind in crate::load::alerts::KINDS {
        let open = rows
            .iter()
            .find(|r| r.get::<_, &str>(0) == kind)
            .map_or(0, |r| r.get::<_, i64>(1));
        crate::metrics::set_alerts_open(kind, open);
    }
    Ok(())
}

/// The panel's HTML: a table of open alerts (ids `alert-{i}-kind`, `-subject`), or a note.
pub fn panel(alerts: &[OpenAlert]) -> String {
    if alerts.is_empty() {
        return "<p class=\"muted\" id=\"alerts-none\">no open alerts</p>".into();
    }
    let mut h = String::from(
        "<table id=\"alerts\"><tr><th>kind</th><th>subject</th><th>observed</th>\
         <th>expected</th><th>raised (UTC)</th><th>file</th></tr>",
    );
    for (i, a) in alerts.iter().enumerate() {
        let _ = write!(
            h,
            "<tr class=\"err\"><td id=\"alert-{i}-kind\">{}</td><td id=\"alert-{i}-subject\">{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&a.kind),
            escape(&a.subject),
            escape(&a.observed),
            escape(&a.expected),
            escape(&a.raised_at),
            a.file_id
        );
    }
    h.push_str("</table>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panel_lists_alerts_escaped_or_says_there_are_none() {
        assert!(panel(&[]).contains("no open alerts"));
        let html = panel(&[OpenAlert {
            kind: "price_outlier".into(),
            subject: "<p1>".into(),
            observed: "1250".into(),
            expected: "1.25..125".into(),
            raised_at: "2026-11-01 10:00:00".into(),
            file_id: 7,
        }]);
        assert!(html.contains("id=\"alert-0-kind\">price_outlier<"));
        assert!(html.contains("id=\"alert-0-subject\">&lt;p1&gt;<"));
    }
}
