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
//! Layers: `collect.rs` (IO: store, git, log files) builds the values of
//! `model.rs`; `render.rs` and `svg.rs` turn them into HTML (pure);
//! the axum edge is `crate::http`'s `dashboard.rs`. The service is reached only through
//! [`Catalog`], so tests serve any repositories they like.

pub(crate) mod collect;
pub(crate) mod html;
mod model;
pub(crate) mod render;
mod svg;

pub use collect::Served;
pub use model::{
    Overview, PipelinePage, PipelineRow, Proposal, RepoOverview, RunBrief, RunPage, ScheduleView,
    TaskRow, TaskState, VersionEntry, VersionView,
};
pub use render::{document, Rendered};

/// The dashboard's stylesheet and script, served beside its pages.
pub(crate) const STYLE: &str = include_str!("assets/dashboard.css");
pub(crate) const SCRIPT: &str = include_str!("assets/dashboard.js");

/// Why a page could not be built. Shown to the reader as a 500 with this
/// text (which holds no secret: store and git errors name paths and ids).
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    // Boxed: the forge's errors are large, and this one is rare.
    #[error(transparent)]
    Git(Box<crate::forge::ForgeError>),
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

impl From<crate::forge::ForgeError> for DashboardError {
    fn from(e: crate::forge::ForgeError) -> DashboardError {
        DashboardError::Git(Box::new(e))
    }
}

/// The repositories the dashboard shows.
pub trait Catalog: Send + Sync + 'static {
    /// Every served repository, sorted by name.
    fn repositories(&self) -> Vec<Served>;
}

impl Catalog for crate::service::Service {
    fn repositories(&self) -> Vec<Served> {
        self.hosts()
            .into_iter()
            .map(|(host, store)| Served { host, store })
            .collect()
    }
}

/// A fixed list of repositories (tests, and tools that show one store).
impl Catalog for Vec<Served> {
    fn repositories(&self) -> Vec<Served> {
        self.clone()
    }
}
