//! The service's read-only JSON API: what commit statuses link to.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::Service;

/// `GET /api/v1/runs/{id}`: a run, its repository and its task attempts.
pub fn routes(service: Arc<Service>) -> Router {
    Router::new()
        .route("/api/v1/runs/{id}", get(run))
        .with_state(service)
}

async fn run(State(service): State<Arc<Service>>, Path(id): Path<String>) -> Response {
    let found = tokio::task::spawn_blocking(move || service.find_run(&id)).await;
    match found {
        Ok(Some((repository, run, attempts))) => Json(serde_json::json!({
            "repository": repository,
            "run": run,
            "attempts": attempts,
        }))
        .into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "no such run"})),
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
