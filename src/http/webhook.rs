//! `POST /webhook`: one GitHub delivery in, one answer out.
//!
//! Steps, in this order (each refusal ends the delivery with a short reason
//! in a JSON body, never an empty one, since GitHub's delivery log shows it):
//!
//! 1. body limit: a `Content-Length` over the limit gets 413 before anything
//!    is read; a body that grows past it while being read, too;
//! 2. the raw bytes are read (408 if they do not arrive in time);
//! 3. `X-Hub-Signature-256` is verified over those bytes, before anything
//!    else looks at the request: 401 when missing, malformed or wrong (a
//!    delivery signed only with SHA-1 counts as unsigned);
//! 4. `Content-Type` must be `application/json`: GitHub's other choice,
//!    `application/x-www-form-urlencoded` (the JSON in a `payload=` field),
//!    is a webhook configuration mistake and gets a 400 saying which setting
//!    to change; any other type gets 415;
//! 5. `X-GitHub-Delivery` is validated (400);
//! 6. the delivery id is claimed in the [`Dedup`]: a replay is
//!    answered `200 duplicate` and goes no further;
//! 7. the payload is parsed ([`parse_event`]; 400 with the reason);
//! 8. `ping` is answered `200 pong`; events cairn does not act on, and
//!    comments that were edited or deleted, `200 ignored`; `push`,
//!    `pull_request` and created `issue_comment` events go to the sink:
//!    `202 queued`.
//!
//! A well-signed delivery never gets a 5xx, with one exception: when the sink
//! refuses the event (its queue is full, or the service is stopping) the
//! answer is 503 with `Retry-After`, and the id is not marked seen. Answering
//! 2xx would tell GitHub's delivery log that an event was taken when it was
//! dropped; a 503 shows the failure there, where it can be redelivered by hand
//! or through the API (GitHub does not retry on its own), and the periodic
//! resync recovers the push meanwhile. Each such refusal is counted
//! (`result="queue_full"`), so a queue that is too small shows up.
//!
//! A delivery is marked seen only once accepted (ignored events included),
//! so a refused one does not poison its id for the redelivery that fixes it.
//!
//! Every delivery is logged once, with its id (when it had a valid one), the
//! event, the result and the status; never the body, nor a header value other
//! than those two (themselves bounded: the id is validated, the event is
//! reduced to a known name or `other`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::Dedup;
use crate::metrics::{event_label, DeliveryResult, Metrics};
use crate::settings::WebhookSettings;
use crate::triggers::{
    parse_event, verify_signature, CommentAction, DeliveryId, DeliveryIdError, Event,
    SignatureError, WebhookSecret, DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER,
};

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

/// What the intake needs for every delivery.
pub(super) struct Intake {
    /// The webhook secret; `None` only when the service was started with
    /// `--insecure-no-signature` (deliveries are then not verified).
    pub secret: Option<WebhookSecret>,
    pub dedup: Arc<Dedup>,
    pub sink: Arc<dyn EventSink>,
    /// Counts every delivery by event and result.
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
}

/// `POST /webhook`, with `intake` applied.
pub(super) fn routes(intake: Intake) -> Router {
    if intake.secret.is_none() {
        tracing::warn!(
            "webhook signatures are NOT verified (--insecure-no-signature): anyone who can \
             reach this port can start runs"
        );
    }
    Router::new()
        .route("/webhook", post(webhook))
        .with_state(Arc::new(intake))
}

/// The legacy SHA-1 signature header, only looked at to explain a refusal.
const SHA1_SIGNATURE_HEADER: &str = "X-Hub-Signature";

/// How one delivery ended.
struct Outcome {
    status: StatusCode,
    result: DeliveryResult,
    /// Why, for the body and the log (`None` for a plain success).
    reason: Option<String>,
    delivery: Option<DeliveryId>,
    retry_after: bool,
}

impl Outcome {
    fn new(status: StatusCode, result: DeliveryResult, reason: impl Into<String>) -> Self {
        Outcome {
            status,
            result,
            reason: Some(reason.into()),
            delivery: None,
            retry_after: false,
        }
    }

    fn plain(status: StatusCode, result: DeliveryResult) -> Self {
        Outcome {
            reason: None,
            ..Outcome::new(status, result, "")
        }
    }

    fn with_delivery(mut self, delivery: &DeliveryId) -> Self {
        self.delivery = Some(delivery.clone());
        self
    }
}

async fn webhook(State(state): State<Arc<Intake>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let event_name = text_header(&parts.headers, EVENT_HEADER)
        .and_then(Result::ok)
        .unwrap_or("");
    let outcome = handle(&state, &parts.headers, event_name, body).await;
    respond(&state, &parts.headers, event_name, outcome)
}

/// Steps 1 to 8 of the module documentation.
async fn handle(state: &Intake, headers: &HeaderMap, event_name: &str, body: Body) -> Outcome {
    let body = match read_body(state, headers, body).await {
        Ok(body) => body,
        Err(outcome) => return outcome,
    };
    if let Some(secret) = &state.secret {
        // A header that is not visible ASCII cannot be a valid signature.
        let signature = text_header(headers, SIGNATURE_HEADER).map(|v| v.unwrap_or(""));
        if let Err(e) = verify_signature(secret, &body, signature) {
            let mut reason = e.to_string();
            if e == SignatureError::Missing && headers.contains_key(SHA1_SIGNATURE_HEADER) {
                reason.push_str(" (X-Hub-Signature, SHA-1, is not accepted)");
            }
            return Outcome::new(
                StatusCode::UNAUTHORIZED,
                DeliveryResult::Unauthorized,
                reason,
            );
        }
    }
    if let Err(outcome) = check_content_type(headers) {
        return outcome;
    }
    let delivery = match text_header(headers, DELIVERY_HEADER) {
        None => DeliveryId::from_header(None),
        Some(Ok(value)) => DeliveryId::parse(value),
        Some(Err(())) => Err(DeliveryIdError::InvalidCharacter),
    };
    let delivery = match delivery {
        Ok(id) => id,
        Err(e) => {
            return Outcome::new(
                StatusCode::BAD_REQUEST,
                DeliveryResult::BadRequest,
                e.to_string(),
            )
        }
    };
    let Some(claim) = state.dedup.claim(&delivery) else {
        return Outcome::plain(StatusCode::OK, DeliveryResult::Duplicate).with_delivery(&delivery);
    };
    let event = match parse_event(event_name, &body) {
        Ok(event) => event,
        Err(e) => {
            return Outcome::new(
                StatusCode::BAD_REQUEST,
                DeliveryResult::BadRequest,
                e.to_string(),
            )
            .with_delivery(&delivery)
        }
    };
    let outcome = match &event {
        Event::Ping { .. } => Some(Outcome::plain(StatusCode::OK, DeliveryResult::Pong)),
        Event::Other { name } => Some(Outcome::new(
            StatusCode::OK,
            DeliveryResult::Ignored,
            format!("cairn does not act on {name} events"),
        )),
        Event::IssueComment(c) if c.action != CommentAction::Created => Some(Outcome::new(
            StatusCode::OK,
            DeliveryResult::Ignored,
            format!("comment {}: only new comments carry commands", c.action),
        )),
        Event::ChecksChanged(c) if !c.finished => Some(Outcome::new(
            StatusCode::OK,
            DeliveryResult::Ignored,
            format!("{}: the checks are not finished", c.event),
        )),
        Event::ChecksChanged(c) if !c.on_cairn_branch() => Some(Outcome::new(
            StatusCode::OK,
            DeliveryResult::Ignored,
            format!("{}: not on a branch of cairn's", c.event),
        )),
        Event::Push(_)
        | Event::PullRequest(_)
        | Event::IssueComment(_)
        | Event::ChecksChanged(_) => None,
    };
    if let Some(outcome) = outcome {
        claim.accept();
        return outcome.with_delivery(&delivery);
    }
    match state.sink.submit(delivery.clone(), event) {
        Ok(()) => {
            claim.accept();
            Outcome::plain(StatusCode::ACCEPTED, DeliveryResult::Queued)
        }
        Err(e) => {
            // The claim is dropped unaccepted: a redelivery will be handled.
            let result = match e {
                SinkError::Full => DeliveryResult::QueueFull,
                SinkError::ShuttingDown => DeliveryResult::ShuttingDown,
            };
            Outcome {
                retry_after: true,
                ..Outcome::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    result,
                    format!("{e}; retry later"),
                )
            }
        }
    }
    .with_delivery(&delivery)
}

/// Steps 1 and 2: the raw body, within the size and time limits.
async fn read_body(state: &Intake, headers: &HeaderMap, body: Body) -> Result<Bytes, Outcome> {
    let limit = state.limits.body_limit;
    let too_large = || {
        Outcome::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            DeliveryResult::TooLarge,
            format!("body larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let read = tokio::time::timeout(
        state.limits.body_timeout,
        Limited::new(body, limit).collect(),
    );
    match read.await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(_)) => Err(Outcome::new(
            StatusCode::BAD_REQUEST,
            DeliveryResult::BadRequest,
            "the body could not be read in full",
        )),
        Err(_) => Err(Outcome::new(
            StatusCode::REQUEST_TIMEOUT,
            DeliveryResult::Timeout,
            "the body did not arrive in time",
        )),
    }
}

/// Step 4.
fn check_content_type(headers: &HeaderMap) -> Result<(), Outcome> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim());
    match media_type {
        Some(t) if t.eq_ignore_ascii_case("application/json") => Ok(()),
        Some(t) if t.eq_ignore_ascii_case("application/x-www-form-urlencoded") => {
            Err(Outcome::new(
                StatusCode::BAD_REQUEST,
                DeliveryResult::BadContentType,
                "form-encoded deliveries are not supported: set the webhook's content type to \
                 application/json",
            ))
        }
        _ => Err(Outcome::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            DeliveryResult::BadContentType,
            "Content-Type must be application/json",
        )),
    }
}

/// A header's value as text: `None` when absent, `Err` when not visible ASCII.
fn text_header<'h>(headers: &'h HeaderMap, name: &str) -> Option<Result<&'h str, ()>> {
    headers.get(name).map(|v| v.to_str().map_err(|_| ()))
}

/// Counts, logs and renders `outcome`.
fn respond(state: &Intake, headers: &HeaderMap, event_name: &str, outcome: Outcome) -> Response {
    state.metrics.delivery(event_name, outcome.result);
    // Before the signature is checked, the delivery id in the outcome is
    // unset; log the header's value anyway when it is a valid id, since that
    // is what the operator will look for in GitHub's delivery log.
    let header_id;
    let delivery = match &outcome.delivery {
        Some(id) => id.as_str(),
        None => {
            header_id = text_header(headers, DELIVERY_HEADER)
                .and_then(Result::ok)
                .and_then(|v| DeliveryId::parse(v).ok());
            header_id.as_ref().map_or("-", DeliveryId::as_str)
        }
    };
    let event = event_label(event_name);
    let result = outcome.result.as_str();
    let status = outcome.status.as_u16();
    let reason = outcome.reason.as_deref().unwrap_or("");
    match outcome.result {
        DeliveryResult::Ignored | DeliveryResult::Pong | DeliveryResult::Duplicate => {
            tracing::debug!(delivery, event, result, status, reason, "webhook delivery")
        }
        DeliveryResult::QueueFull | DeliveryResult::ShuttingDown => {
            tracing::warn!(delivery, event, result, status, reason, "webhook delivery")
        }
        _ => tracing::info!(delivery, event, result, status, reason, "webhook delivery"),
    }
    let body = match &outcome.reason {
        None => Bytes::from(format!(
            "{{\"status\":\"{}\"}}",
            status_word(outcome.result)
        )),
        Some(reason) => {
            let json = serde_json::json!({"status": status_word(outcome.result), "reason": reason});
            Bytes::from(json.to_string())
        }
    };
    let mut response = (
        outcome.status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    if outcome.retry_after {
        let secs = state.limits.retry_after.as_secs().max(1);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// The `status` field of an answer: what happened, in one word.
fn status_word(result: DeliveryResult) -> &'static str {
    match result {
        DeliveryResult::Queued => "queued",
        DeliveryResult::Ignored => "ignored",
        DeliveryResult::Pong => "pong",
        DeliveryResult::Duplicate => "duplicate",
        DeliveryResult::QueueFull | DeliveryResult::ShuttingDown => "unavailable",
        DeliveryResult::Unauthorized
        | DeliveryResult::TooLarge
        | DeliveryResult::BadContentType
        | DeliveryResult::BadRequest
        | DeliveryResult::Timeout => "rejected",
    }
}
