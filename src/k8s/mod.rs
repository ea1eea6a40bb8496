//! Kubernetes mode: runs as `PipelineRun` resources, steps as pods.
//!
//! Triggers only create PipelineRuns ([`trigger`]), under deterministic
//! names so a duplicate trigger is a no-op. The leader replica ([`lease`])
//! runs a kube-runtime controller ([`controller`]) that reconciles each run
//! into one pod per step: cairn's fetch step, the user's tasks, cairn's
//! publish step. The decisions are pure ([`decide`], [`pods`]); only the
//! controller and the lease talk to the API server.
//!
//! Files: `crd.rs` the resource and its status; `pods.rs` pod specs;
//! `decide.rs` the reconcile decision; `controller.rs` the IO around it;
//! `events.rs` Kubernetes Events from status changes; `lease.rs` leader
//! election; `throttle.rs` the client-side rate limit;
//! `trigger.rs` PipelineRuns from pipelines.toml; `runs.rs` the service's
//! side of a run (create, follow with a watch, cancel); `settings.rs` the
//! operator's choices.

pub mod controller;
pub mod crd;
pub mod decide;
pub mod events;
pub mod lease;
pub mod pods;
pub mod runs;
pub mod settings;
pub mod throttle;
pub mod trigger;

pub use crd::{PipelineRun, PipelineRunSpec, PipelineRunStatus, RunPhase, StepPhase};
pub use settings::{ExecutorSettings, Workspace};

/// Everything that goes wrong talking to Kubernetes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("cannot encode a Kubernetes object: {0}")]
    Json(#[from] serde_json::Error),
    #[error("a PipelineRun without a name or uid")]
    Unnamed,
    #[error("PipelineRun {name} was deleted before it finished")]
    RunDeleted { name: String },
    #[error("pipeline {pipeline:?}: task {task:?} has no image (set `image` on it, on the pipeline or in [defaults])")]
    NoImage { pipeline: String, task: String },
}

impl Error {
    /// A 409 from the API server: our view was stale, or someone else won.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Kube(kube::Error::Api(e)) if e.code == 409)
    }
}
