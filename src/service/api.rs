//! The service's JSON API: runs as commit statuses link to them, and the run
//! trigger for CI and ad-hoc runs.
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

use super::runs::Job;
use super::slots::Submitted;
use super::Service;

/// Longest `reason` kept from a request.
const REASON_MAX: usize = 200;
/// Runs listed per repository by the GET.
const LIST_LIMIT: usize = 50;

pub fn routes(service: Arc<Service>) -> Router {
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
    let listed = tokio::task::spawn_blocking(move || {
        let workers: Vec<_> = service.repos().values().cloned().collect();
        let mut out = Vec::new();
        for worker in workers {
            let runs = worker
                .store
                .runs(Some(name.as_str()), LIST_LIMIT)
                .unwrap_or_default();
            let known = worker
                .current()
                .is_some_and(|l| l.config.pipeline(&name).is_some());
            if runs.is_empty() && !known {
                continue;
            }
            let (active, waiting) = worker.runs.state(&name);
            out.push(json!({
                "repository": worker.host.name(),
                "active": active,
                "waiting": waiting,
                "runs": runs,
            }));
        }
        out
    })
    .await;
    match listed {
        Ok(list) if list.is_empty() => error(StatusCode::NOT_FOUND, "no such pipeline"),
        Ok(list) => Json(json!({ "pipelines": list })).into_response(),
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
    let Some(token) = &service.options.api_token else {
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
    tokio::task::spawn_blocking(move || service.trigger_api(&name, body))
        .await
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

impl Service {
    fn trigger_api(&self, name: &str, body: TriggerBody) -> Response {
        let workers: Vec<_> = self.repos().values().cloned().collect();
        let candidates: Vec<_> = workers
            .into_iter()
            .filter(|w| {
                body.repository
                    .as_deref()
                    .is_none_or(|r| r.eq_ignore_ascii_case(w.host.name()))
            })
            .filter_map(|w| w.current().map(|l| (w, l)))
            .collect();
        let having: Vec<_> = candidates
            .iter()
            .filter(|(_, l)| l.config.pipeline(name).is_some())
            .collect();
        let (worker, loaded) = match having.as_slice() {
            [one] => one,
            [] => {
                let names: Vec<String> = candidates
                    .iter()
                    .flat_map(|(_, l)| l.config.pipelines.keys().map(|k| k.as_str().to_string()))
                    .collect();
                let hint = crate::config::closest(name, names.iter().map(String::as_str))
                    .map(|n| format!(" (did you mean {n:?}?)"))
                    .unwrap_or_default();
                let place = body
                    .repository
                    .as_deref()
                    .map(|r| format!(" in {r}"))
                    .unwrap_or_default();
                return error(
                    StatusCode::NOT_FOUND,
                    &format!("no pipeline {name:?}{place}{hint}"),
                );
            }
            many => {
                let repos: Vec<&str> = many.iter().map(|(w, _)| w.host.name()).collect();
                return error(
                    StatusCode::CONFLICT,
                    &format!(
                        "several repositories have a pipeline {name:?} ({}): name one with \"repository\"",
                        repos.join(", ")
                    ),
                );
            }
        };
        let run_id = crate::reconciler::new_run_id(name);
        let reason = match body.reason.as_deref().map(str::trim) {
            Some(r) if !r.is_empty() => format!(
                "api: {}",
                crate::github::truncate_chars(&r.replace(['\n', '\r'], " "), REASON_MAX)
            ),
            _ => "api".to_string(),
        };
        let job = Job {
            tip: loaded.tip.clone(),
            config: Arc::clone(&loaded.config),
            pipeline: name.to_string(),
            reason,
            attach: false,
        };
        let outcome = self.submit(worker, run_id.clone(), job);
        let (status, state) = match &outcome {
            Submitted::Started => (StatusCode::ACCEPTED, "started"),
            Submitted::Queued { .. } => (StatusCode::ACCEPTED, "queued"),
            Submitted::Replacing { .. } => (StatusCode::ACCEPTED, "replacing"),
            Submitted::Skipped { .. } => (StatusCode::CONFLICT, "skipped"),
        };
        let path = format!("/api/v1/runs/{run_id}");
        (
            status,
            Json(json!({
                "repository": worker.host.name(),
                "pipeline": name,
                "run": run_id,
                "state": state,
                "detail": outcome.to_string(),
                "commit": loaded.tip.commit,
                "url": self.run_url(&run_id).unwrap_or(path),
            })),
        )
            .into_response()
    }
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
