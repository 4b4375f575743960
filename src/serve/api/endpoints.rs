//! One handler per `/api/` route: check the parameters, run ONE fixed query with them bound,
//! answer its rows as JSON ([`super::json`]). Money and rates are cast to text in the SQL
//! (exact decimals); counts stay numbers. The README's JSON API section lists each query's
//! plain-SQL equivalent; tests/it/api.rs compares them.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;
use tokio::sync::MutexGuard;
use tokio_postgres::Client;

use super::params::Params;
use super::{json, ApiError};
use crate::load::alerts::KINDS;
use crate::serve::{files, AppState};

type Pairs = Query<Vec<(String, String)>>;

/// Most rows a ranking, a user's events or the alerts list return.
pub const MAX_ROWS: i64 = 1000;
/// Most hourly KPI rows (`?hours=`): 90 days.
pub const MAX_HOURS: i64 = 24 * 90;
/// Rows of a ranking when `limit` is not given.
pub const DEFAULT_TOP: i64 = 10;
/// Events of a session returned with it, at most.
pub const SESSION_EVENTS: i64 = 1000;

/// The columns of `streaming.kpis`, decimals as text.
macro_rules! kpis {
    () => {
        "SELECT hour, views, carts, purchases, revenue::text AS revenue, sessions, \
         converted_sessions, conversion_rate::text AS conversion_rate, \
         cart_abandonment_rate::text AS cart_abandonment_rate, \
         average_order_value::text AS average_order_value, active_users FROM streaming.kpis"
    };
}
const KPIS_ALL_TIME: &str = concat!(kpis!(), " WHERE hour IS NULL");
const KPIS_HOURLY: &str = concat!(
    kpis!(),
    " WHERE hour IS NOT NULL ORDER BY hour DESC LIMIT $1"
);

/// Searches of the newest `$2` hours of event time (sql/V17), per lowercased query, in the
/// chosen order.
const TOP_SEARCHES: [(&str, &str); 2] = [
    (
        "searches",
        "SELECT q.search_query, q.searches, q.without_view \
         FROM streaming.recent_window($2::int) w, streaming.search_queries(w.since, w.until) q \
         ORDER BY q.searches DESC, q.search_query COLLATE \"C\" LIMIT $1",
    ),
    (
        "no_view",
        "SELECT q.search_query, q.searches, q.without_view \
         FROM streaming.recent_window($2::int) w, streaming.search_queries(w.since, w.until) q \
         WHERE q.without_view > 0 ORDER BY q.without_view DESC, q.search_query COLLATE \"C\" LIMIT $1",
    ),
];

/// Brands by purchase events of the newest `$2` hours of event time (sql/V17).
const TOP_BRANDS: &str = "SELECT b.brand, b.purchases, b.units, b.revenue::text AS revenue \
    FROM streaming.recent_window($2::int) w, streaming.brand_purchases(w.since, w.until) b \
    ORDER BY b.purchases DESC, b.revenue DESC, b.brand COLLATE \"C\" LIMIT $1";

/// Hours of event time the search and brand rankings cover when `hours` is not given.
const DEFAULT_WINDOW_HOURS: i64 = 24;

/// The columns of an event (alias `e`) an answer shows: the contract's, and its file.
macro_rules! event_columns {
    () => {
        "e.event_id, e.event_time, e.user_id, e.session_id, e.event_type, e.product_id, \
         e.product_category, e.product_price::text AS product_price, e.quantity, \
         e.total_amount::text AS total_amount, e.device, e.country, e.file_id"
    };
}

macro_rules! products {
    () => {
        "SELECT product_id, product_category, views, add_to_cart, removes, purchases, \
         units_sold, revenue::text AS revenue, cart_rate::text AS cart_rate, \
         conversion_rate::text AS conversion_rate FROM streaming.product_metrics "
    };
}
/// One fixed text per ranking, chosen by name: the ORDER BY is never written from input.
const TOP_PRODUCTS: [(&str, &str); 3] = [
    (
        "revenue",
        concat!(
            products!(),
            "ORDER BY revenue DESC, product_id, product_category LIMIT $1"
        ),
    ),
    (
        "views",
        concat!(
            products!(),
            "ORDER BY views DESC, product_id, product_category LIMIT $1"
        ),
    ),
    (
        "conversion",
        concat!(
            products!(),
            "ORDER BY conversion_rate DESC NULLS LAST, product_id, product_category LIMIT $1"
        ),
    ),
];

macro_rules! categories {
    () => {
        "SELECT product_category, sum(views)::bigint AS views, \
         sum(add_to_cart)::bigint AS add_to_cart, sum(purchases)::bigint AS purchases, \
         sum(units_sold)::bigint AS units_sold, sum(revenue)::text AS revenue, \
         round(sum(purchases)::numeric / nullif(sum(views), 0), 4)::text AS conversion_rate \
         FROM streaming.product_counts GROUP BY product_category "
    };
}
const TOP_CATEGORIES: [(&str, &str); 3] = [
    (
        "revenue",
        concat!(
            categories!(),
            "ORDER BY sum(revenue) DESC, product_category LIMIT $1"
        ),
    ),
    (
        "views",
        concat!(
            categories!(),
            "ORDER BY sum(views) DESC, product_category LIMIT $1"
        ),
    ),
    (
        "conversion",
        concat!(
            categories!(),
            "ORDER BY round(sum(purchases)::numeric / nullif(sum(views), 0), 4) DESC NULLS LAST, \
             product_category LIMIT $1"
        ),
    ),
];

/// A session over a midnight is one row per UTC day (sql/V16); the API shows the whole session.
const SESSION: &str = "SELECT session_id, min(user_id) AS user_id, min(started_at) AS started_at, \
    max(ended_at) AS ended_at, \
    extract(epoch FROM max(ended_at) - min(started_at))::float8 AS duration_seconds, \
    sum(events)::int8 AS event_count, sum(views)::int8 AS views, sum(carts)::int8 AS carts, \
    sum(removes)::int8 AS removes, sum(purchases)::int8 AS purchases, sum(revenue)::text AS revenue, \
    sum(carts) > 0 AS reached_cart, sum(purchases) > 0 AS purchased \
    FROM streaming.sessions WHERE session_id = $1 GROUP BY session_id";

/// A product's stock per warehouse (`streaming.stock_levels`, from inventory files), with
/// whether it is below the `low_stock` alert's threshold right now (an open alert).
const STOCK: &str =
    "SELECT s.warehouse, s.current_stock, s.as_of, s.update_id::text AS update_id, \
    EXISTS (SELECT FROM streaming.alerts a WHERE a.kind = 'low_stock' AND a.resolved_at IS NULL \
            AND a.subject = s.product_id || '@' || s.warehouse) AS low_stock \
    FROM streaming.stock_levels s WHERE s.product_id = $1 ORDER BY s.warehouse";

/// A session's events lie between its first and last event time: the time range prunes the
/// events to those days' primary keys (events have no index on session_id).
const SESSION_EVENTS_SQL: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM streaming.events e WHERE e.session_id = $1 AND e.event_time BETWEEN $2 AND $3 \
     ORDER BY e.event_time, e.event_id LIMIT $4"
);

/// A user's newest events. Events have no index on user_id (it would slow every load), so the
/// hours the user was active come from `hourly_users`, one primary-key probe per hour walking
/// back from the newest (generate_series yields them in order, newest first); only those hours'
/// events are read. The newest `limit` active hours hold at least `limit` of the user's events.
const USER_EVENTS: &str = concat!(
    "WITH bounds AS (SELECT min(hour) AS lo, max(hour) AS hi FROM streaming.hourly_users), \
     active AS (SELECT g.hour FROM bounds, \
                generate_series(bounds.hi, bounds.lo, interval '-1 hour') AS g(hour) \
                WHERE EXISTS (SELECT FROM streaming.hourly_users u \
                              WHERE u.hour = g.hour AND u.user_id = $1) \
                LIMIT $2) \
     SELECT ",
    event_columns!(),
    " FROM active a JOIN streaming.events e \
       ON e.event_time >= a.hour AND e.event_time < a.hour + interval '1 hour' \
     WHERE e.user_id = $1 ORDER BY e.event_time DESC, e.event_id LIMIT $2"
);

/// Alerts newest first; `$1` NULL: all, true: open only, false: resolved only; `$2` a kind or
/// NULL.
const ALERTS: &str = "SELECT alert_id, kind, subject, observed::text AS observed, \
    baseline::text AS baseline, expected_low::text AS expected_low, \
    expected_high::text AS expected_high, rule, parameters, file_id, raised_at, resolved_at, \
    resolved_by FROM streaming.alerts \
    WHERE ($1::bool IS NULL OR (resolved_at IS NULL) = $1) AND ($2::text IS NULL OR kind = $2) \
    ORDER BY alert_id DESC LIMIT $3";

/// The server's own session (its statement and lock timeouts), made on demand.
async fn session_of(state: &AppState) -> Result<MutexGuard<'_, Option<Client>>, ApiError> {
    state.client().await.map_err(ApiError::Unavailable)
}

fn client<'g>(guard: &'g MutexGuard<'_, Option<Client>>) -> Result<&'g Client, ApiError> {
    guard
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("no Postgres connection".into()))
}

fn ok(body: &Value) -> Response {
    crate::serve::json(StatusCode::OK, body)
}

/// `/api/kpis`: the all-time row; `?hours=N`: the newest N hourly rows, newest first.
pub(super) async fn kpis(
    State(state): State<Arc<AppState>>,
    Query(q): Pairs,
) -> Result<Response, ApiError> {
    let p = Params::new(q, &["hours"])?;
    let hours = p.count("hours", MAX_HOURS)?;
    let guard = session_of(&state).await?;
    let client = client(&guard)?;
    Ok(match hours {
        None => {
            let row = client.query_one(KPIS_ALL_TIME, &[]).await?;
            ok(&Value::Object(json::object(&row)?))
        }
        Some(n) => ok(&json::array(&client.query(KPIS_HOURLY, &[&n]).await?)?),
    })
}

/// The chosen ranking's query, and the limit.
fn ranking(
    p: &Params,
    orders: &[(&'static str, &'static str); 3],
) -> Result<(&'static str, i64), ApiError> {
    let names = orders.map(|(name, _)| name);
    let by = p.choice("by", &names)?;
    let limit = p.limit("limit", DEFAULT_TOP, MAX_ROWS)?;
    let sql = orders
        .iter()
        .find(|(name, _)| *name == by)
        .map_or(orders[0].1, |(_, sql)| sql);
    Ok((sql, limit))
}

/// `/api/searches/top?limit=N&hours=H&by=searches|no_view`: the queries of the newest H hours
/// of event time, with how many of each led to no view.
pub(super) async fn top_searches(
    State(state): State<Arc<AppState>>,
    Query(q): Pairs,
) -> Result<Response, ApiError> {
    let p = Params::new(q, &["limit", "hours", "by"])?;
    let by = p.choice("by", &TOP_SEARCHES.map(|(name, _)| name))?;
    let sql = TOP_SEARCHES
        .iter()
        .find(|(name, _)| *name == by)
        .map_or(TOP_SEARCHES[0].1, |(_, sql)| sql);
    let limit = p.limit("limit", DEFAULT_TOP, MAX_ROWS)?;
    let hours = window_hours(&p)?;
    let guard = session_of(&state).await?;
    let rows = client(&guard)?.query(sql, &[&limit, &hours]).await?;
    Ok(ok(&json::array(&rows)?))
}

/// `/api/brands/top?limit=N&hours=H`: brands by purchase events of the newest H hours.
pub(super) async fn top_brands(
    State(state): State<Arc<AppState>>,
    Query(q): Pairs,
) -> Result<Response, ApiError> {
    let p = Params::new(q, &["limit", "hours"])?;
    let limit = p.limit("limit", DEFAULT_TOP, MAX_ROWS)?;
    let hours = window_hours(&p)?;
    let guard = session_of(&state).await?;
    let rows = client(&guard)?.query(TOP_BRANDS, &[&limit, &hours]).await?;
    Ok(ok(&json::array(&rows)?))
}

/// `hours` (default 24, at most [`MAX_HOURS`]) as the window functions take it.
fn window_hours(p: &Params) -> Result<i32, ApiError> {
    let hours = p.limit("hours", DEFAULT_WINDOW_HOURS, MAX_HOURS)?;
    i32::try_from(hours).map_err(|_| ApiError::bad("hours", "too large"))
}

/// `/api/products/top?limit=N&by=revenue|views|conversion`.
pub(super) async fn top_products(
    State(state): State<Arc<AppState>>,
    Query(q): Pairs,
) -> Result<Response, ApiError> {
    let p = Params::new(q, &["limit", "by"])?;
    let (sql, limit) = ranking(&p, &TOP_PRODUCTS)?;
    let guard = session_of(&state).await?;
    let rows = client(&guard)?.query(sql, &[&limit]).await?;
    Ok(ok(&json::array(&rows)?))
}

/// `/api/categories/top?limit=N&by=revenue|views|conversion`.
pub(super) async fn top_categories(
    State(state): State<Arc<AppState>>,
    Query(q): Pairs,
) -> Result<Response, ApiError> {
    let p = Params::new(q, &["limit", "by"])?;
    let (sql, limit) = ranking(&p, &TOP_CATEGORIES)?;
    let guard = session_of(&state).await?;
    let rows = client(&guard)?.query(sql, &[&limit]).await?;
    Ok(ok(&json::array(&rows)?))
}

/// `/api/sessions/{session_id}`: the session's row with its events (at most
/// [`SESSION_EVENTS`], in time order) under `events`; 404 when there is no such session.
pub(super) async fn session(
    State(state): State<Arc<AppState>>,
    Path(session_id): Path<String>,
    Query(q): Pairs,
) -> Result<Response, ApiError> {
    Params::new(q, &[])?;
    let guard = session_of(&state).await?;
    let client = client(&guard)?;
    let Some(row) = client.query_opt(SESSION, &[&session_id]).await? else {
        return Err(ApiError::NotFound {
            parameter: "session_id".into(),
            message: "no such session".into(),
        });
    };
    let mut body = json::object(&row)?;
    let started: chrono::DateTime<chrono::Utc> = row.get("started_at");
    let ended: chrono::DateTime<chrono::Utc> = row.get("ended_at");
    let events = client
        .query(
            SESSION_EVENTS_SQL,
            &[&session_id, &started, &ended, &SESSION_EVENTS],
        )
        .await?;
    body.insert("events".into(), json::array(&events)?);
    Ok(ok(&Value::Object(body)))
}

/// `/api/stock/{product_id}`: the product's stock in each warehouse; 404 when no inventory
/// file ever named it.
pub(super) async fn stock(
    State(state): State<Arc<AppState>>,
    Path(product_id): Path<String>,
    Query(q): Pairs,
) -> Result<Response, ApiError> {
    Params::new(q, &[])?;
    let guard = session_of(&state).await?;
    let rows = client(&guard)?.query(STOCK, &[&product_id]).await?;
    if rows.is_empty() {
        return Err(ApiError::NotFound {
            parameter: "product_id".into(),
            message: "no stock level for this product".into(),
        });
    }
    let mut body = serde_json::Map::new();
    body.insert("product_id".into(), Value::String(product_id));
    body.insert("warehouses".into(), json::array(&rows)?);
    Ok(ok(&Value::Object(body)))
}

/// `/api/users/{user_id}/events?limit=N`: the user's newest events, newest first.
pub(super) async fn user_events(
    State(state): State<Arc<AppState>>,
    Path(user_id): Path<String>,
    Query(q): Pairs,
) -> Result<Response, ApiError> {
    let p = Params::new(q, &["limit"])?;
    let limit = p.limit("limit", 100, MAX_ROWS)?;
    let guard = session_of(&state).await?;
    let rows = client(&guard)?
        .query(USER_EVENTS, &[&user_id, &limit])
        .await?;
    Ok(ok(&json::array(&rows)?))
}

/// `/api/alerts?open=true|false&kind=K&limit=N`: newest first.
pub(super) async fn alerts(
    State(state): State<Arc<AppState>>,
    Query(q): Pairs,
) -> Result<Response, ApiError> {
    let p = Params::new(q, &["open", "kind", "limit"])?;
    let open = p.flag("open")?;
    let kind = match p.choice("kind", &KINDS) {
        Ok(kind) if p.has("kind") => Some(kind),
        Ok(_) => None,
        Err(e) => return Err(e),
    };
    let limit = p.limit("limit", 100, MAX_ROWS)?;
    let guard = session_of(&state).await?;
    let rows = client(&guard)?
        .query(ALERTS, &[&open, &kind, &limit])
        .await?;
    Ok(ok(&json::array(&rows)?))
}

/// `/api/files?limit=N`: as `/files.json`, newest first.
pub(super) async fn files(
    State(state): State<Arc<AppState>>,
    Query(q): Pairs,
) -> Result<Response, ApiError> {
    let p = Params::new(q, &["limit"])?;
    let limit = p.limit("limit", 200, files::MAX_FILES)?;
    let guard = session_of(&state).await?;
    let list = files::recent(client(&guard)?, limit).await?;
    Ok(crate::serve::json(StatusCode::OK, &list))
}
