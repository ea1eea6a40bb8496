//! The HTTP side of `cairn serve` (axum): the webhook intake and the probes.
//!
//! Routes ([`router`]):
//! - `POST /webhook`: GitHub deliveries (`intake.rs`): verified, deduplicated,
//!   parsed, then handed to an [`EventSink`] that must not block. The handler
//!   only enqueues; the service consumes events in order elsewhere.
//! - `GET /healthz`: the process is alive (always `200 ok`).
//! - `GET /readyz`: [`Readiness::check`], `200` or `503` with the reason.
//! - `GET /metrics`: [`Metrics::encode`], Prometheus text format.
//!
//! The router is an ordinary `axum::Router` with its state applied, so the
//! service can `merge` its own routes (the dashboard) into it; [`serve`] runs
//! any router with graceful shutdown.

mod dedup;
mod intake;

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;

use crate::metrics::{Metrics, CONTENT_TYPE as METRICS_CONTENT_TYPE};
use crate::settings::WebhookSettings;
use crate::triggers::{DeliveryId, Event, WebhookSecret};

pub use dedup::{Claim, Dedup, DedupError};

/// Where accepted deliveries go. Implemented by the service.
///
/// `submit` is called on the request's task, so it must not block: it hands
/// the event to a queue (or coalesces it with one already queued) and
/// returns. Only `push`, `pull_request` and newly created `issue_comment`
/// events are submitted; the intake answers the rest itself.
pub trait EventSink: Send + Sync + 'static {
    fn submit(&self, delivery: DeliveryId, event: Event) -> Result<(), SinkError>;
}

/// Why a sink refused an event. The delivery is then answered 503 and is not
/// marked seen, so a redelivery is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    #[error("the event queue is full")]
    Full,
    #[error("the service is shutting down")]
    ShuttingDown,
}

/// What `/readyz` reports: `Ok` when the service can do its work (settings
/// loaded, store reachable), `Err(reason)` otherwise. Called on a blocking
/// thread, once per probe; keep it to a quick local check.
pub trait Readiness: Send + Sync + 'static {
    fn check(&self) -> Result<(), String>;
}

/// Limits applied to every delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest body accepted; larger ones get 413 (before reading them when
    /// `Content-Length` says so).
    pub body_limit: usize,
    /// Longest wait for a body to arrive; slower ones get 408.
    pub body_timeout: Duration,
    /// Sent as `Retry-After` with a 503 when the sink is full.
    pub retry_after: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_limit: usize::try_from(crate::settings::DEFAULT_BODY_LIMIT).unwrap_or(usize::MAX),
            body_timeout: crate::settings::DEFAULT_BODY_TIMEOUT,
            retry_after: Duration::from_secs(30),
        }
    }
}

impl From<&WebhookSettings> for Limits {
    fn from(w: &WebhookSettings) -> Self {
        Limits {
            body_limit: usize::try_from(w.body_limit).unwrap_or(usize::MAX),
            body_timeout: w.body_timeout,
            ..Limits::default()
        }
    }
}

/// Everything the routes need.
pub struct AppState {
    /// The webhook secret; `None` only when the service was started with
    /// `--insecure-no-signature` (deliveries are then not verified).
    pub secret: Option<WebhookSecret>,
    pub dedup: Arc<Dedup>,
    pub sink: Arc<dyn EventSink>,
    pub ready: Arc<dyn Readiness>,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
}

impl AppState {
    /// State with the default [`Limits`].
    pub fn new(
        secret: Option<WebhookSecret>,
        dedup: Arc<Dedup>,
        sink: Arc<dyn EventSink>,
        ready: Arc<dyn Readiness>,
        metrics: Arc<Metrics>,
    ) -> Self {
        AppState {
            secret,
            dedup,
            sink,
            ready,
            metrics,
            limits: Limits::default(),
        }
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("secret", &self.secret)
            .field("dedup", &self.dedup)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The routes above, with `state` applied (so the result can be merged with
/// other routers).
pub fn router(state: AppState) -> Router {
    if state.secret.is_none() {
        tracing::warn!(
            "webhook signatures are NOT verified (--insecure-no-signature): anyone who can \
             reach this port can start runs"
        );
    }
    Router::new()
        .route("/webhook", post(intake::webhook))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Arc::new(state))
}

/// Serves `router` on `listener` until `shutdown` completes, then stops
/// accepting connections, lets requests in flight finish, closes idle
/// keep-alive connections, and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // Answers are small and written at once: Nagle's algorithm would only
    // hold them back (by up to a delayed-ACK timeout on keep-alive).
    let listener = listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let ready = Arc::clone(&state.ready);
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

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}
