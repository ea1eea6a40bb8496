//! The run API: runs as commit statuses link to them, and the run trigger
//! for CI and ad-hoc runs. The answers come from plain methods of the
//! service (`crate::service::api`); this file only reads requests, checks
//! the token, and writes JSON.
//!
//! - `GET /api/v1/runs/{id}`: a run, its repository and its task attempts.
//! - `GET /api/v1/pipelines/{name}/runs`: a pipeline's recent runs in every
//!   served repository that has it, with its active and waiting run.
//! - `POST /api/v1/pipelines/{name}/runs`: start a run at the default
//!   branch's tip, through the pipeline's run slot (its `concurrency` policy
//!   applies). Needs `Authorization: Bearer <CAIRN_API_TOKEN>`; without a
//!   configured token the route answers 403. The body is optional JSON:
//!   `{"repository": "owner/name"}` picks the repository when several serve
//!   a pipeline of that name, `"reason"` is recorded with the run.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::service::api::{TriggerError, Triggered};
use crate::service::slots::Submitted;
use crate::service::Service;

/// Runs listed per repository by the GET.
const LIST_LIMIT: usize = 50;

/// The three routes, answered by `service`.
pub(super) fn routes(service: Arc<Service>) -> Router {
    Router::new()
        .route("/api/v1/runs/{id}", get(run))
        .route(
            "/api/v1/pipelines/{name}/runs",
            get(list_runs).post(trigger),
        )
        .with_state(service)
}

async fn run(State(service): State<Arc<Service>>, Path(id): Path<String>) -> Response {
    let found = tokio::task::spawn_blocking(move || service.find_run(&id)).await;
    match found {
        Ok(Some((repository, run, attempts))) => Json(json!({
            "repository": repository,
            "run": run,
            "attempts": attempts,
        }))
        .into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such run"),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

async fn list_runs(State(service): State<Arc<Service>>, Path(name): Path<String>) -> Response {
    let listed =
        tokio::task::spawn_blocking(move || service.pipeline_runs(&name, LIST_LIMIT)).await;
    match listed {
        Ok(list) if list.is_empty() => error(StatusCode::NOT_FOUND, "no such pipeline"),
        Ok(list) => {
            let list: Vec<_> = list
                .into_iter()
                .map(|p| {
                    json!({
                        "repository": p.repository,
                        "active": p.active,
                        "waiting": p.waiting,
                        "runs": p.runs,
                    })
                })
                .collect();
            Json(json!({ "pipelines": list })).into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Compares two secrets in time independent of where they differ: both are
/// hashed first, so lengths do not show either.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The refusal, unless the request carries the configured bearer token.
fn refusal(service: &Service, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = service.api_token() else {
        return Some(error(
            StatusCode::FORBIDDEN,
            "the run API is disabled: start cairn serve with CAIRN_API_TOKEN set",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match given {
        Some(given) if same_secret(given.as_bytes(), token.expose().as_bytes()) => None,
        _ => {
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token (Authorization: Bearer <CAIRN_API_TOKEN>)",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            Some(response)
        }
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TriggerBody {
    repository: Option<String>,
    reason: Option<String>,
}

async fn trigger(
    State(service): State<Arc<Service>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = refusal(&service, &headers) {
        return refused;
    }
    let body: TriggerBody = if body.iter().all(u8::is_ascii_whitespace) {
        TriggerBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("the body is not a JSON object with optional \"repository\" and \"reason\": {e}"),
                )
            }
        }
    };
    tokio::task::spawn_blocking(move || {
        let triggered = service.trigger(&name, body.repository.as_deref(), body.reason.as_deref());
        match triggered {
            Ok(t) => started(t),
            Err(e) => {
                let status = match e {
                    TriggerError::NoSuchPipeline { .. } => StatusCode::NOT_FOUND,
                    TriggerError::Ambiguous { .. } => StatusCode::CONFLICT,
                };
                error(status, &e.to_string())
            }
        }
    })
    .await
    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The answer to an accepted request: 202 unless the pipeline's policy
/// skipped the run (409).
fn started(t: Triggered) -> Response {
    let (status, state) = match &t.outcome {
        Submitted::Started => (StatusCode::ACCEPTED, "started"),
        Submitted::Queued { .. } => (StatusCode::ACCEPTED, "queued"),
        Submitted::Replacing { .. } => (StatusCode::ACCEPTED, "replacing"),
        Submitted::Skipped { .. } => (StatusCode::CONFLICT, "skipped"),
    };
    let path = format!("/api/v1/runs/{}", t.run_id);
    (
        status,
        Json(json!({
            "repository": t.repository,
            "pipeline": t.pipeline,
            "run": t.run_id,
            "state": state,
            "detail": t.outcome.to_string(),
            "commit": t.commit,
            "url": t.url.unwrap_or(path),
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_by_value_only() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"abc"));
    }
}
