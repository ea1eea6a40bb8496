//! `GET /metrics`: the service's counters, in Prometheus text format.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::metrics::{Metrics, CONTENT_TYPE};

/// `/metrics`, with `metrics` applied.
pub(super) fn routes(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(encode))
        .with_state(metrics)
}

async fn encode(State(metrics): State<Arc<Metrics>>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.encode()).into_response()
}
