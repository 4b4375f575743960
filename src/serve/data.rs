//! What the dashboard shows, read from Postgres in one go: the all-time KPIs (`streaming.kpis`),
//! events per minute, top products and categories, the session duration histogram and the
//! ingest throughput from the ledger. Read-only: never writes a row. Numbers shown to people
//! are read as SQL text (exact decimals); chart geometry uses floats.

use tokio_postgres::Client;

/// The all-time row of `streaming.kpis`, every value as Postgres prints it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kpis {
    pub views: String,
    pub carts: String,
    pub purchases: String,
    pub revenue: String,
    pub sessions: String,
    pub conversion_rate: String,
    pub cart_abandonment_rate: String,
    pub average_order_value: String,
    pub active_users: String,
}

/// One bar of a ranked chart: label, value for the geometry, value as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub label: String,
    pub value: f64,
    pub shown: String,
}

/// Events of one type in one minute (event time).
#[derive(Debug, Clone, PartialEq)]
pub struct MinuteCount {
    pub minute: String,
    pub event_type: String,
    pub events: i64,
}

/// Files and rows the ledger finished in one minute (wall-clock time of the watcher).
#[derive(Debug, Clone, PartialEq)]
pub struct Throughput {
    pub minute: String,
    pub files: i64,
    pub rows_loaded: i64,
    pub rows_rejected: i64,
}

/// Everything the dashboard page needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub kpis: Kpis,
    pub events_per_minute: Vec<MinuteCount>,
    pub top_products: Vec<Ranked>,
    pub top_categories: Vec<Ranked>,
    /// Session counts per duration bucket, in bucket order.
    pub durations: Vec<(String, i64)>,
    pub throughput: Vec<Throughput>,
    pub files_loaded: i64,
    pub files_rejected: i64,
    pub files_duplicate: i64,
    pub rows_rejected: i64,
    /// Transactions and stock (`super::streams_panel`).
    pub streams: super::streams_panel::StreamsPanel,
    /// Searches and brands (`super::search_panel`).
    pub search: super::search_panel::SearchPanel,
    /// The newest open data-quality alerts (`super::alerts`).
    pub alerts: Vec<super::alerts::OpenAlert>,
}

/// How many bars the ranked charts show.
pub const TOP: i64 = 10;

const KPIS: &str = "SELECT views::text, carts::text, purchases::text, round(revenue, 2)::text, \
    sessions::text, coalesce(conversion_rate::text, '-'), coalesce(cart_abandonment_rate::text, '-'), \
    coalesce(average_order_value::text, '-'), active_users::text \
    FROM streaming.kpis WHERE hour IS NULL";

/// The 60 minutes of event time up to the newest event's minute (sql/V15 says why a function).
const EVENTS_PER_MINUTE: &str = "SELECT to_char(minute AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), \
    event_type, events FROM streaming.events_per_minute()";

const TOP_PRODUCTS: &str = "SELECT product_id || CASE WHEN product_category = '' THEN '' \
    ELSE ' (' || product_category || ')' END, revenue::float8, round(revenue, 2)::text \
    FROM streaming.product_metrics ORDER BY revenue DESC, product_id, product_category LIMIT $1";

const TOP_CATEGORIES: &str = "SELECT CASE WHEN product_category = '' THEN '(none)' \
    ELSE product_category END, sum(revenue)::float8, round(sum(revenue), 2)::text \
    FROM streaming.product_counts GROUP BY product_category \
    ORDER BY sum(revenue) DESC, product_category LIMIT $1";

/// Session durations in fixed buckets (`streaming.duration_bucket`); every bucket is present,
/// empty ones with 0. From the rollup per start hour (sql/V15), not the sessions themselves.
const DURATIONS: &str = "
SELECT streaming.duration_bucket_label(b::smallint), coalesce(sum(s.sessions), 0)::bigint
FROM generate_series(1, 6) b LEFT JOIN streaming.session_stats_hourly s ON s.duration_bucket = b
GROUP BY b ORDER BY b";

const THROUGHPUT: &str = "
SELECT to_char(date_trunc('minute', finished_at, 'UTC') AT TIME ZONE 'UTC', 'HH24:MI'),
       count(*), sum(rows_loaded)::bigint, sum(rows_rejected)::bigint
FROM streaming.ingest_files
WHERE finished_at > now() - interval '60 minutes'
GROUP BY 1 ORDER BY 1";

const FILE_TOTALS: &str = "SELECT count(*) FILTER (WHERE status = 'loaded'), \
    count(*) FILTER (WHERE status = 'rejected'), count(*) FILTER (WHERE status = 'duplicate_file'), \
    coalesce(sum(rows_rejected), 0)::bigint FROM streaming.ingest_files";

/// Reads the whole snapshot (several read-only queries).
///
/// # Errors
/// Any query failing (Postgres away, schema not migrated yet).
pub async fn snapshot(client: &Client) -> Result<Snapshot, tokio_postgres::Error> {
    let k = client.query_one(KPIS, &[]).await?;
    let kpis = Kpis {
        views: k.get(0),
        carts: k.get(1),
        purchases: k.get(2),
        revenue: k.get(3),
        sessions: k.get(4),
        conversion_rate: k.get(5),
        cart_abandonment_rate: k.get(6),
        average_order_value: k.get(7),
        active_users: k.get(8),
    };
    let ranked = |rows: Vec<tokio_postgres::Row>| -> Vec<Ranked> {
        rows.iter()
            .map(|r| Ranked {
                label: r.get(0),
                value: r.get(1),
                shown: r.get(2),
            })
            .collect()
    };
    let top_products = ranked(client.query(TOP_PRODUCTS, &[&TOP]).await?);
    let top_categories = ranked(client.query(TOP_CATEGORIES, &[&TOP]).await?);
    let events_per_minute = client
        .query(EVENTS_PER_MINUTE, &[])
        .await?
        .iter()
        .map(|r| MinuteCount {
            minute: r.get(0),
            event_type: r.get(1),
            events: r.get(2),
        })
        .collect();
    let durations = client
        .query(DURATIONS, &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let throughput = client
        .query(THROUGHPUT, &[])
        .await?
        .iter()
        .map(|r| Throughput {
            minute: r.get(0),
            files: r.get(1),
            rows_loaded: r.get(2),
            rows_rejected: r.get(3),
        })
        .collect();
    let f = client.query_one(FILE_TOTALS, &[]).await?;
    Ok(Snapshot {
        kpis,
        events_per_minute,
        top_products,
        top_categories,
        durations,
        throughput,
        files_loaded: f.get(0),
        files_rejected: f.get(1),
        files_duplicate: f.get(2),
        rows_rejected: f.get(3),
        streams: super::streams_panel::read(client).await?,
        search: super::search_panel::read(client).await?,
        alerts: super::alerts::open(client).await?,
    })
}
