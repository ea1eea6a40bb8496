//! Everything that can stop a run, each saying what and where.

use std::path::Path;

use crate::backend::BackendError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "no {} at commit {}{}",
        super::CONFIG_FILE,
        short(.commit),
        if *.uncommitted { " (the working copy has one: commit it first; cairn runs what is committed)" } else { "" }
    )]
    NoConfig { commit: String, uncommitted: bool },
    #[error("{0}")]
    Config(#[from] crate::config::Diagnostics),
    #[error(
        "no pipeline named {name:?} in {}{}; known: {known}",
        super::CONFIG_FILE,
        .suggestion.as_ref().map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default()
    )]
    UnknownPipeline {
        name: String,
        suggestion: Option<String>,
        known: String,
    },
    #[error("pipeline {pipeline:?} names remote {name:?}, which .dvc/config does not define")]
    UnknownRemote { name: String, pipeline: String },
    #[error("{path}: {reason}")]
    Pointer { path: String, reason: String },
    #[error("{path} is not valid UTF-8")]
    NotUtf8 { path: String },
    #[error(
        "{dataset} is tracked by git at the source commit; DVC tracks it through {dataset}.dvc instead: \
         run `git rm -r --cached {dataset}` and commit"
    )]
    TrackedByGit { dataset: String },
    #[error(
        "run id {run_id:?} must be 1-128 letters, digits, '-', '_' or '.', not starting with '.'"
    )]
    BadRunId { run_id: String },
    #[error("a run with id {run_id} already exists; nothing to do")]
    Duplicate { run_id: String },
    /// Several replicas followed the run; another one delivers it.
    #[error("the run's steps are done; replica {by} delivers it")]
    DeliveredElsewhere { by: String },
    #[error("{}", .reasons.join("\n"))]
    TasksFailed { reasons: Vec<String> },
    #[error("{reason}")]
    Cancelled { reason: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    DvcConfig(#[from] crate::dvc::ConfigError),
    #[error(transparent)]
    Remote(#[from] crate::remote::RemoteError),
    #[error("fetch: {0}")]
    Fetch(#[from] crate::dataset::FetchError),
    #[error("publish: {0}")]
    Publish(#[from] crate::dataset::PublishError),
    #[error(transparent)]
    Forge(#[from] crate::forge::ForgeError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Kube(#[from] crate::k8s::Error),
    /// A step could not be carried out (a transfer, a file, the cluster).
    #[error(transparent)]
    Backend(BackendError),
}

impl From<BackendError> for RunError {
    /// A failed or cancelled run stays one: the service and the CLI tell
    /// those apart from the errors of a step's machinery.
    fn from(e: BackendError) -> RunError {
        match e {
            BackendError::StepsFailed { reasons } => RunError::TasksFailed { reasons },
            BackendError::Cancelled { reason } => RunError::Cancelled { reason },
            other => RunError::Backend(other),
        }
    }
}

/// The first 12 hex digits of a commit id, as people quote them.
pub(crate) fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

impl RunError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> RunError {
        RunError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
