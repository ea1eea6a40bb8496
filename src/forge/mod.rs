//! Forges: where a new dataset version is proposed or merged.
//!
//! A run ends by handing the forge a [`Proposal`]: the files to change (the
//! `.dvc` pointer, maybe a `.gitignore`), on top of the commit the run started
//! from, and the pipeline's merge policy. The local forge commits into a git
//! repository on this machine; the GitHub forge (later) opens pull requests.
//!
//! The forge is only ever called after the publish step has made every object
//! the pointer names durable on the remote: that ordering is what keeps a
//! pointer from naming data that does not exist.

use crate::config::MergePolicy;

mod git;
mod github;
mod local;
pub mod mirror;
mod rebase;

pub use git::{FileChange, GitRepo, Head, PathCommit, RUN_TRAILER};
pub use github::{GitHubForge, GitHubRepo, Merge};
pub use local::LocalForge;
pub use rebase::PIPELINE_TRAILER;

#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    #[error("{path} is not in a git repository ({reason}); run `git init` first")]
    NotARepo { path: String, reason: String },
    #[error("the repository has no commits yet; commit pipelines.toml first")]
    NoCommits,
    #[error(
        "the checkout has uncommitted changes ({}); commit or stash them, or use --merge review",
        .paths.join(", ")
    )]
    Dirty { paths: Vec<String> },
    #[error("HEAD is detached; check out a branch for --merge {policy}")]
    Detached { policy: MergePolicy },
    #[error(
        "branch {branch} holds commits not made by cairn ({}); cairn leaves it as it is",
        .commits.iter().map(|c| &c[..c.len().min(12)]).collect::<Vec<_>>().join(", ")
    )]
    HumanCommits {
        branch: String,
        commits: Vec<String>,
    },
    #[error("{path} changed on {branch} while the run was going; run again on the new commit")]
    Conflict { path: String, branch: String },
    #[error("branch {branch} moved while cairn was updating it; run again")]
    RefMoved { branch: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("git {op}: {reason}")]
    Network { op: String, reason: String },
    #[error("pushing {branch} was refused: {reason}")]
    PushRejected { branch: String, reason: String },
    #[error("GitHub: {0}")]
    GitHub(#[from] crate::github::GitHubError),
    #[error("{0}")]
    Store(String),
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

/// What a run asks the forge to do.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub pipeline: String,
    pub run_id: String,
    /// The commit the run's workspace came from.
    pub base: String,
    pub changes: Vec<FileChange>,
    /// The commit message (title, blank line, body, trailers).
    pub message: String,
    /// The pull request's title and Markdown body (forges with pull requests).
    pub title: String,
    pub body: String,
    pub policy: MergePolicy,
}

impl Proposal {
    /// The branch every version of this pipeline is proposed on.
    pub fn branch(&self) -> String {
        bot_branch(&self.pipeline)
    }
}

pub fn bot_branch(pipeline: &str) -> String {
    format!("cairn/{pipeline}")
}

/// What the forge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// `review`: the commit waits on the pipeline's branch.
    Proposed { branch: String, commit: String },
    /// `auto`: proposed and merged into `into`.
    Merged {
        branch: String,
        commit: String,
        into: String,
    },
    /// `auto`, but merging was not possible; the proposal stays on `branch`.
    NotMerged {
        branch: String,
        commit: String,
        why: String,
    },
    /// `direct`: committed straight onto `branch`.
    Pushed { branch: String, commit: String },
    /// Nothing to deliver: `branch` already holds this version, at `commit`
    /// (an earlier delivery of it landed, as when a run is repeated after a
    /// crash that came after its pull request was merged).
    Landed { branch: String, commit: String },
}

impl Delivery {
    pub fn commit(&self) -> &str {
        match self {
            Delivery::Proposed { commit, .. }
            | Delivery::Merged { commit, .. }
            | Delivery::NotMerged { commit, .. }
            | Delivery::Pushed { commit, .. }
            | Delivery::Landed { commit, .. } => commit,
        }
    }

    pub fn branch(&self) -> &str {
        match self {
            Delivery::Proposed { branch, .. }
            | Delivery::Merged { branch, .. }
            | Delivery::NotMerged { branch, .. }
            | Delivery::Pushed { branch, .. }
            | Delivery::Landed { branch, .. } => branch,
        }
    }
}

#[async_trait::async_trait]
pub trait Forge: Send + Sync {
    async fn deliver(&self, proposal: &Proposal) -> Result<Delivery, ForgeError>;
}
