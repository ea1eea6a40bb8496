//! The probes: `GET /healthz` (the process answers) and `GET /readyz` (the
//! service can do its work).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// What `/readyz` reports: `Ok` when the service can do its work (settings
/// loaded, store reachable), `Err(reason)` otherwise. Called on a blocking
/// thread, once per probe; keep it to a quick local check.
pub trait Readiness: Send + Sync + 'static {
    fn check(&self) -> Result<(), String>;
}

/// `/healthz` and `/readyz`, with `ready` applied.
pub(super) fn routes(ready: Arc<dyn Readiness>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(ready)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(ready): State<Arc<dyn Readiness>>) -> Response {
    match tokio::task::spawn_blocking(move || ready.check()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(reason)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}"),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the readiness check panicked",
        )
            .into_response(),
    }
}
