//! The dashboard of `cairn serve`: server-rendered, read-only HTML pages of
//! the pipelines, their runs and their dataset versions.
//!
//! - `/`: every pipeline with its schedule and next firing, its push
//!   triggers, its last run, the current dataset version and the proposal
//!   waiting for review.
//! - `/pipelines/{name}?repo=R`: runs over time (duration and dataset size
//!   charts), the run list, and the versions on the default branch with
//!   their commits.
//! - `/runs/{id}?repo=R`: the task DAG coloured by state, a timeline bar per
//!   task, attempts with exit codes and reasons, each task's log tail, links
//!   to the commits, the pull request and the dataset diff
//!   (`/runs/{id}/diff?repo=R`).
//!
//! Every page is complete without JavaScript. With it, a small script
//! (`assets/dashboard.js`, no framework) fetches the page's `<main>` again
//! (`?fragment=1`) every few seconds while it can still change. Pages are
//! sent with a Content-Security-Policy that allows only the dashboard's own
//! script and stylesheet, so even an escaping bug could not run a script.
//!
//! Layers: `collect.rs` (IO: the service's read model, log files) builds
//! the values of `model.rs`; `render.rs` and `svg.rs` turn them into HTML
//! (pure); the HTTP edge is `crate::http::dashboard`. The service is reached
//! only through its read model ([`ReadModel`](crate::service::ReadModel)), which never lets git through,
//! so tests serve any repositories they like.

pub(crate) mod collect;
pub(crate) mod html;
mod model;
pub(crate) mod render;
mod svg;

pub use model::{
    Overview, PipelinePage, PipelineRow, Proposal, RepoOverview, RunBrief, RunPage, ScheduleView,
    TaskRow, TaskState, VersionEntry, VersionView,
};
pub use render::{document, Rendered};

/// The dashboard's stylesheet and script, served beside its pages.
pub(crate) const STYLE: &str = include_str!("assets/dashboard.css");
pub(crate) const SCRIPT: &str = include_str!("assets/dashboard.js");

/// Why a page could not be built. Shown to the reader as a 500 with this
/// text (which holds no secret: store, git and file errors name paths and
/// ids).
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Read(#[from] crate::service::ReadError),
}
