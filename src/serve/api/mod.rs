//! The JSON query API under `/api/` (README: JSON API; `/api/openapi.json` describes it):
//! KPIs, top products and categories, a session, a user's events, stock, searches and brands,
//! alerts and the file ledger.
//! Read-only, on the server's own Postgres session (its statement and lock timeouts); every
//! query is a fixed text with bound parameters, never built from input.

mod endpoints;
mod json;
mod params;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::AppState;

/// Why an API request was not answered with data.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A query parameter or path segment is wrong: HTTP 400 naming it.
    #[error("{parameter}: {message}")]
    BadParameter { parameter: String, message: String },
    /// The thing asked for does not exist: HTTP 404.
    #[error("{parameter}: {message}")]
    NotFound { parameter: String, message: String },
    /// Postgres is away, slow (statement timeout) or not migrated: HTTP 503.
    #[error("{0}")]
    Unavailable(String),
    /// A bug: HTTP 500.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad(parameter: &str, message: impl Into<String>) -> ApiError {
        ApiError::BadParameter {
            parameter: parameter.to_string(),
            message: message.into(),
        }
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> ApiError {
        ApiError::Unavailable(crate::load::describe(&e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, body) = match self {
            ApiError::BadParameter { parameter, message } => (
                StatusCode::BAD_REQUEST,
                serde_json::json!({ "error": message, "parameter": parameter }),
            ),
            ApiError::NotFound { parameter, message } => (
                StatusCode::NOT_FOUND,
                serde_json::json!({ "error": message, "parameter": parameter }),
            ),
            ApiError::Unavailable(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({ "error": e }),
            ),
            ApiError::Internal(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({ "error": e }),
            ),
        };
        super::json(code, &body)
    }
}

/// The OpenAPI 3 description of every route below.
const OPENAPI: &str = include_str!("openapi.json");

/// The routes, to be nested under `/api`.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/kpis", get(endpoints::kpis))
        .route("/products/top", get(endpoints::top_products))
        .route("/categories/top", get(endpoints::top_categories))
        .route("/sessions/{session_id}", get(endpoints::session))
        .route("/users/{user_id}/events", get(endpoints::user_events))
        .route("/stock/{product_id}", get(endpoints::stock))
        .route("/searches/top", get(endpoints::top_searches))
        .route("/brands/top", get(endpoints::top_brands))
        .route("/alerts", get(endpoints::alerts))
        .route("/files", get(endpoints::files))
        .route("/openapi.json", get(openapi))
        .fallback(|| async {
            ApiError::NotFound {
                parameter: "path".into(),
                message: "no such endpoint; see /api/openapi.json".into(),
            }
        })
}

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_openapi_document_is_json_and_describes_every_route() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        assert_eq!(doc["openapi"].as_str().unwrap().chars().next(), Some('3'));
        for path in [
            "/api/kpis",
            "/api/products/top",
            "/api/categories/top",
            "/api/sessions/{session_id}",
            "/api/users/{user_id}/events",
            "/api/alerts",
            "/api/files",
            "/api/searches/top",
            "/api/brands/top",
            "/api/openapi.json",
        ] {
            assert!(
                doc["paths"][path]["get"].is_object(),
                "{path} not described"
            );
        }
    }
}
