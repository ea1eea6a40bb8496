//! The dashboard's HTTP edge (its pages are built by `crate::dashboard`):
//! GET routes only, each building its page on a blocking thread (SQLite and
//! git block) and answering HTML with headers that keep it read-only and
//! script-safe.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use serde::Deserialize;

use crate::dashboard::collect;
use crate::dashboard::render::{self, Rendered, SCRIPT_PATH, STYLE_PATH};
use crate::dashboard::{DashboardError, SCRIPT, STYLE};
use crate::github::Secret;
use crate::service::{ReadModel, ServedRepo};

/// Settings of the dashboard.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Values never shown: replaced by `***` wherever they appear in a log
    /// tail (the service's own secrets, which local tasks inherit through
    /// the environment and could print).
    pub redact: Vec<Secret>,
}

struct Dashboard {
    model: Arc<dyn ReadModel>,
    redact: Vec<Secret>,
}

/// Only the dashboard's own files: an injected `<script>` or inline handler
/// would not run even if escaping failed somewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /`, `/pipelines/{name}`, `/runs/{id}`, `/runs/{id}/diff` and the two
/// assets, read from `model`. [`app`](fn@super::app) merges them with the other
/// routes; tests drive them alone.
pub fn routes(model: Arc<dyn ReadModel>, options: Options) -> Router {
    let state = Arc::new(Dashboard {
        model,
        redact: options.redact,
    });
    Router::new()
        .route("/", get(overview))
        .route("/pipelines/{name}", get(pipeline))
        .route("/runs/{id}", get(run))
        .route("/runs/{id}/diff", get(diff))
        .route(STYLE_PATH, get(style))
        .route(SCRIPT_PATH, get(script))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
struct Params {
    /// The repository (`owner/name`, or the local path); optional when the
    /// name or id is found in only one.
    repo: Option<String>,
    /// Only the contents of `<main>` (what the page's script polls).
    fragment: Option<String>,
}

impl Params {
    fn fragment(&self) -> bool {
        self.fragment.as_deref().is_some_and(|f| f != "0")
    }

    /// The repositories to look in: the one named, or all of them.
    fn candidates(&self, all: Vec<ServedRepo>) -> Vec<ServedRepo> {
        match &self.repo {
            Some(name) => all
                .into_iter()
                .filter(|s| s.name().eq_ignore_ascii_case(name))
                .collect(),
            None => all,
        }
    }
}

fn html(status: StatusCode, page: &Rendered, fragment: bool) -> Response {
    let body = if fragment {
        page.main.clone()
    } else {
        render::document(page)
    };
    let poll = page.poll.unwrap_or(0).to_string();
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&poll) {
        h.insert("x-cairn-poll", v);
    }
    response
}

/// Runs `build` on a blocking thread and answers its page, a 404 for
/// `None`, or a 500 naming the error.
async fn page<F>(what: String, fragment: bool, build: F) -> Response
where
    F: FnOnce() -> Result<Option<Rendered>, DashboardError> + Send + 'static,
{
    match tokio::task::spawn_blocking(build).await {
        Ok(Ok(Some(page))) => html(StatusCode::OK, &page, fragment),
        Ok(Ok(None)) => html(StatusCode::NOT_FOUND, &render::not_found(&what), fragment),
        Ok(Err(e)) => {
            tracing::warn!("dashboard: {what}: {e}");
            let page = Rendered {
                title: "Error".into(),
                main: format!(
                    "<h1>Something went wrong</h1><pre class=\"error\">{}</pre>",
                    crate::dashboard::html::esc(&e.to_string())
                ),
                poll: None,
            };
            html(StatusCode::INTERNAL_SERVER_ERROR, &page, fragment)
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn overview(State(d): State<Arc<Dashboard>>, Query(q): Query<Params>) -> Response {
    let fragment = q.fragment();
    page("the overview".into(), fragment, move || {
        let o = collect::overview(&q.candidates(d.model.repositories()), Utc::now());
        Ok(Some(render::overview(&o)))
    })
    .await
}

async fn pipeline(
    State(d): State<Arc<Dashboard>>,
    Path(name): Path<String>,
    Query(q): Query<Params>,
) -> Response {
    let fragment = q.fragment();
    page(format!("No pipeline {name:?} here."), fragment, move || {
        for served in q.candidates(d.model.repositories()) {
            if let Some(p) = collect::pipeline_page(&served, &name, Utc::now())? {
                return Ok(Some(render::pipeline(&p)));
            }
        }
        Ok(None)
    })
    .await
}

async fn run(
    State(d): State<Arc<Dashboard>>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> Response {
    let fragment = q.fragment();
    page(format!("No run {id:?} here."), fragment, move || {
        for served in q.candidates(d.model.repositories()) {
            if let Some(p) = collect::run_page(&served, &id, Utc::now(), &d.redact)? {
                return Ok(Some(render::run(&p)));
            }
        }
        Ok(None)
    })
    .await
}

async fn diff(
    State(d): State<Arc<Dashboard>>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> Response {
    let fragment = q.fragment();
    page(
        format!(
            "Run {id:?} has no dataset diff here (only runs that made a new version have one)."
        ),
        fragment,
        move || {
            for served in q.candidates(d.model.repositories()) {
                if let Some((pipeline, text)) = collect::diff_text(&served, &id)? {
                    return Ok(Some(render::diff(served.name(), &id, &pipeline, &text)));
                }
            }
            Ok(None)
        },
    )
    .await
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}
