//! Who may read business figures: when the server has a token (`--http-token`, required when
//! it listens beyond loopback), the dashboard, `/files` and `/api/*` answer only requests that
//! carry `Authorization: Bearer <token>`; `/healthz` and `/metrics` stay open for probes and
//! Prometheus. Decides access only; serves nothing itself.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Paths anyone may read, token or not.
const OPEN_PATHS: [&str; 2] = ["/healthz", "/metrics"];

/// The middleware: passes the request on, or answers 401 with a JSON error.
pub async fn require_token(
    State(token): State<Arc<Option<String>>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = token.as_deref() else {
        return next.run(request).await;
    };
    if OPEN_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|given| same(given.trim().as_bytes(), token.as_bytes())) {
        return next.run(request).await;
    }
    let body = serde_json::json!({
        "error": "this server needs `Authorization: Bearer <token>` (the watcher's --http-token)"
    });
    let mut response = super::json(StatusCode::UNAUTHORIZED, &body);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response.into_response()
}

/// Equality whose time does not depend on where the first difference is, so the token cannot
/// be guessed byte by byte from response times.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_compare_whole() {
        assert!(super::same(b"s3cret", b"s3cret"));
        assert!(!super::same(b"s3cret", b"s3cre"));
        assert!(!super::same(b"s3cret", b"s3creT"));
        assert!(!super::same(b"", b"x"));
    }
}
