//! The HTTP side of `cairn serve` (axum): every route, one file per concern,
//! put together in one place ([`app`](fn@app)).
//!
//! Routes:
//! - `POST /webhook`: GitHub deliveries (`webhook.rs`): verified,
//!   deduplicated (`dedup.rs`), parsed, then handed to an [`EventSink`] that
//!   must not block. The handler only enqueues; the service consumes events
//!   in order elsewhere.
//! - `GET /healthz`: the process is alive (always `200 ok`); `GET /readyz`:
//!   [`Readiness::check`], `200` or `503` with the reason (`health.rs`).
//! - `GET /metrics`: [`Metrics::encode`](crate::metrics::Metrics::encode),
//!   Prometheus text format (`metrics.rs`).
//! - `GET /api/v1/runs/{id}`, `GET` and `POST /api/v1/pipelines/{name}/runs`:
//!   the run API (`api.rs`), JSON.
//! - `GET /`, `/pipelines/{name}`, `/runs/{id}`, `/runs/{id}/diff` and the
//!   two assets: the dashboard (`dashboard.rs`; the pages themselves are
//!   built by [`crate::dashboard`]).
//!
//! [`app`](fn@app) builds the router from its [`Parts`]; [`serve`] runs it with
//! graceful shutdown. Handlers hold no logic of the service's: they parse the
//! request, call a plain method, and turn its answer into a response.

mod api;
mod app;
pub mod dashboard;
mod dedup;
mod health;
mod metrics;
mod webhook;

pub use app::{app, serve, Parts};
pub use dedup::{Claim, Dedup, DedupError};
pub use health::Readiness;
pub use webhook::{EventSink, Limits, SinkError};
