//! The watcher's HTTP server (axum): `/` the live dashboard, `/metrics` Prometheus text,
//! `/healthz` Postgres and Kafka reachability and the watcher's lock waits as JSON, `/files` and `/files.json` the per-file
//! lifecycle, `/api/*` the JSON query API ([`api`]), behind a bearer token when one is set
//! ([`access`]). Read-only towards the pipeline: it has its own Postgres connection, made lazily,
//! so it serves (and says what is down) even while Postgres is away.

mod access;
mod alerts;
mod api;
mod dashboard;
mod data;
mod files;
mod health;
mod search_panel;
mod streams_panel;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::{watch, Mutex, MutexGuard};
use tokio_postgres::Client;
use tracing::{info, warn};

use crate::status::WatchStatus;

pub use data::{snapshot, Snapshot};
pub use files::FileLifecycle;
pub use health::{Check, Health};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// How long the server waits for a Postgres connection before answering "down".
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// For the server's own session. Its one connection is shared by every page, so a query stuck
/// behind a lock (a `LOCK TABLE` in someone's open transaction, a long `ALTER TABLE`) would hang
/// the dashboard, `/files` and `/metrics` alike: a lock is waited for 1 s, a statement runs at
/// most 3 s, and then the page answers with the error, quickly.
const SESSION_SETTINGS: &str = "SET statement_timeout = 3000; SET lock_timeout = 1000";

/// How long `/metrics` waits for the mirror backlog count; after that it serves the last value
/// (stale rather than late: a scrape has its own timeout, 10 s by default in Prometheus).
const METRICS_DB_BUDGET: Duration = Duration::from_secs(2);

struct AppState {
    database_url: String,
    prometheus: PrometheusHandle,
    kafka: health::KafkaProbe,
    pg: Mutex<Option<Client>>,
    status: WatchStatus,
}

/// Binds `addr` and serves until `shutdown` turns true. Returns the bound address (useful with
/// port 0) once listening; the server runs on its own task. `status` is the watcher's, for
/// `/healthz`. With a `token`, every page but `/healthz` and `/metrics` needs it as a bearer
/// token.
///
/// # Errors
/// The address cannot be bound (in use, not local).
pub async fn spawn(
    addr: SocketAddr,
    database_url: String,
    kafka_brokers: Option<&str>,
    token: Option<String>,
    prometheus: PrometheusHandle,
    status: WatchStatus,
    mut shutdown: watch::Receiver<bool>,
) -> Result<SocketAddr, ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    let state = Arc::new(AppState {
        database_url,
        prometheus,
        kafka: health::KafkaProbe::new(kafka_brokers),
        pg: Mutex::new(None),
        status,
    });
    let app = router(state).layer(axum::middleware::from_fn_with_state(
        Arc::new(token),
        access::require_token,
    ));
    tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            warn!(error = %e, "The HTTP server stopped.");
        }
    });
    info!(address = %bound, "Serving the dashboard, /metrics, /healthz, /files and /api.");
    Ok(bound)
}

/// The watcher's entry point: installs the metrics recorder and, when `settings.http_addr` is
/// set, starts the server. Failures are logged, never fatal: ingesting matters more.
pub async fn start(
    settings: &crate::config::WatchSettings,
    status: WatchStatus,
    shutdown: watch::Receiver<bool>,
) -> Option<SocketAddr> {
    let addr = settings.http_addr?;
    let prometheus = match crate::metrics::install() {
        Ok(handle) => handle,
        Err(e) => {
            warn!(error = %e, "Cannot install the metrics recorder; the HTTP server stays off.");
            return None;
        }
    };
    let brokers = settings.kafka_brokers.as_deref();
    match spawn(
        addr,
        settings.database_url.clone(),
        brokers,
        settings.http_token.clone(),
        prometheus,
        status,
        shutdown,
    )
    .await
    {
        Ok(bound) => Some(bound),
        Err(e) => {
            warn!(error = %e, "The HTTP server stays off; ingesting goes on.");
            None
        }
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(dashboard_page))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .route("/files", get(files_page))
        .route("/files.json", get(files_json))
        .nest("/api", api::routes())
        .with_state(state)
}

impl AppState {
    /// The server's own connection, (re)made on demand within [`CONNECT_TIMEOUT`].
    async fn client(&self) -> Result<MutexGuard<'_, Option<Client>>, String> {
        let mut guard = self.pg.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            let connect = crate::load::connect(&self.database_url);
            match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
                Ok(Ok(client)) => {
                    client
                        .batch_execute(SESSION_SETTINGS)
                        .await
                        .map_err(|e| e.to_string())?;
                    *guard = Some(client);
                }
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Err("Postgres did not answer in time".into()),
            }
        }
        Ok(guard)
    }
}

async fn dashboard_page(State(state): State<Arc<AppState>>) -> Html<String> {
    let read = match state.client().await {
        Ok(guard) => match guard.as_ref() {
            Some(client) => data::snapshot(client)
                .await
                .map_err(|e| crate::load::describe(&e)),
            None => Err("no Postgres connection".into()),
        },
        Err(e) => Err(e),
    };
    Html(match read {
        Ok(snap) => dashboard::page(&snap, None),
        Err(e) => dashboard::page(
            &Snapshot::default(),
            Some(&format!("Cannot read from Postgres: {e}")),
        ),
    })
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    let backlog = async {
        if let Ok(guard) = state.client().await {
            if let Some(client) = guard.as_ref() {
                match crate::mirror::outbox::unmirrored(client).await {
                    Ok(files) => crate::metrics::set_unmirrored(files.len() as i64),
                    Err(e) => {
                        let error = crate::load::describe(&e);
                        warn!(%error, "Cannot count the mirror backlog for /metrics.");
                    }
                }
                if let Err(e) = alerts::count_for_metrics(client).await {
                    let error = crate::load::describe(&e);
                    warn!(%error, "Cannot count the open alerts for /metrics.");
                }
            }
        }
    };
    if tokio::time::timeout(METRICS_DB_BUDGET, backlog)
        .await
        .is_err()
    {
        warn!("Postgres did not count the mirror backlog in time; /metrics shows the last count.");
    }
    state.prometheus.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.prometheus.render(),
    )
        .into_response()
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let postgres = async {
        let guard = state.client().await.map_err(Check::down)?;
        let Some(client) = guard.as_ref() else {
            return Err(Check::down("no Postgres connection"));
        };
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| Check::down(crate::load::describe(&e)))?;
        Ok(Check::ok())
    };
    // Bounded as a whole: another page may hold the server's connection for a while.
    let postgres = async {
        match tokio::time::timeout(health::CHECK_TIMEOUT, postgres).await {
            Ok(checked) => checked.unwrap_or_else(|c| c),
            Err(_) => Check::down("Postgres did not answer in time"),
        }
    };
    let (postgres, kafka) = tokio::join!(postgres, state.kafka.check());
    let health = Health::new(postgres, kafka, Check::watcher(&state.status));
    let code = if health.status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(code, &health)
}

#[derive(serde::Deserialize)]
struct FilesQuery {
    limit: Option<i64>,
}

async fn read_files(state: &AppState, limit: Option<i64>) -> Result<Vec<FileLifecycle>, String> {
    let guard = state.client().await?;
    let client = guard.as_ref().ok_or("no Postgres connection")?;
    files::recent(client, limit.unwrap_or(200))
        .await
        .map_err(|e| crate::load::describe(&e))
}

async fn files_page(
    State(state): State<Arc<AppState>>,
    Query(q): Query<FilesQuery>,
) -> Html<String> {
    Html(match read_files(&state, q.limit).await {
        Ok(list) => files::page(&list, None),
        Err(e) => files::page(&[], Some(&format!("Cannot read the ledger: {e}"))),
    })
}

async fn files_json(State(state): State<Arc<AppState>>, Query(q): Query<FilesQuery>) -> Response {
    match read_files(&state, q.limit).await {
        Ok(list) => json(StatusCode::OK, &list),
        Err(e) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({ "error": e }),
        ),
    }
}

fn json(code: StatusCode, body: &impl serde::Serialize) -> Response {
    match serde_json::to_string(body) {
        Ok(text) => (code, [(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
