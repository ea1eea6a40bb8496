//! The one place the HTTP app is put together: each concern's routes, each
//! with its own state, merged into one router; and how that router is
//! served.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;

use axum::serve::ListenerExt;
use axum::Router;

use super::health::{self, Readiness};
use super::webhook::{self, EventSink, Intake, Limits, SinkError};
use super::{api, dashboard, metrics, Dedup};
use crate::metrics::Metrics;
use crate::service::{Accepted, ReadModel, Rejected, Service};
use crate::triggers::{DeliveryId, Event, WebhookSecret};

/// What the app is built from. The webhook intake, the probes and
/// `/metrics` are always there; the run API and the dashboard only when
/// given (`cairn serve` gives both; the intake's tests neither).
pub struct Parts {
    secret: Option<WebhookSecret>,
    dedup: Arc<Dedup>,
    sink: Arc<dyn EventSink>,
    ready: Arc<dyn Readiness>,
    metrics: Arc<Metrics>,
    limits: Limits,
    run_api: Option<Router>,
    dashboard: Option<Router>,
}

impl Parts {
    /// `secret` is `None` only when the service was started with
    /// `--insecure-no-signature` (deliveries are then not verified). The
    /// intake gets the default [`Limits`].
    pub fn new(
        secret: Option<WebhookSecret>,
        dedup: Arc<Dedup>,
        sink: Arc<dyn EventSink>,
        ready: Arc<dyn Readiness>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Parts {
            secret,
            dedup,
            sink,
            ready,
            metrics,
            limits: Limits::default(),
            run_api: None,
            dashboard: None,
        }
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The run API, answered by `service`.
    pub fn with_run_api(mut self, service: Arc<Service>) -> Self {
        self.run_api = Some(api::routes(service));
        self
    }

    /// The dashboard's pages, read from `model`.
    pub fn with_dashboard(
        mut self,
        model: Arc<dyn ReadModel>,
        options: dashboard::Options,
    ) -> Self {
        self.dashboard = Some(dashboard::routes(model, options));
        self
    }
}

impl fmt::Debug for Parts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parts")
            .field("secret", &self.secret)
            .field("dedup", &self.dedup)
            .field("limits", &self.limits)
            .field("run_api", &self.run_api.is_some())
            .field("dashboard", &self.dashboard.is_some())
            .finish_non_exhaustive()
    }
}

/// The whole app: every route of the module documentation that `parts`
/// provides, each concern with its own state.
pub fn app(parts: Parts) -> Router {
    let intake = Intake {
        secret: parts.secret,
        dedup: parts.dedup,
        sink: parts.sink,
        metrics: Arc::clone(&parts.metrics),
        limits: parts.limits,
    };
    let mut app = webhook::routes(intake)
        .merge(health::routes(parts.ready))
        .merge(metrics::routes(parts.metrics));
    if let Some(run_api) = parts.run_api {
        app = app.merge(run_api);
    }
    if let Some(dashboard) = parts.dashboard {
        app = app.merge(dashboard);
    }
    app
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

/// The service takes the intake's events: [`Service::accept`] decides, and
/// this only logs and turns a refusal into the intake's terms.
impl EventSink for Service {
    fn submit(&self, delivery: DeliveryId, event: Event) -> Result<(), SinkError> {
        match self.accept(&event) {
            Ok(Accepted::Woken { repo }) => {
                tracing::debug!(delivery = delivery.as_str(), event = event.name(), %repo, "queued");
                Ok(())
            }
            Ok(Accepted::Ignored(why)) => {
                tracing::debug!(
                    delivery = delivery.as_str(),
                    event = event.name(),
                    "ignored: {why}"
                );
                Ok(())
            }
            Err(Rejected::Full { repo }) => {
                tracing::warn!(delivery = delivery.as_str(), %repo, "refused: queue full");
                Err(SinkError::Full)
            }
            Err(Rejected::ShuttingDown) => Err(SinkError::ShuttingDown),
        }
    }
}

impl Readiness for Service {
    fn check(&self) -> Result<(), String> {
        self.ready()
    }
}
