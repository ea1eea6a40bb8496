//! Where a served repository lives: a git repository on this machine (the
//! embedded default) or a GitHub repository reached through its mirror. The
//! reconcile loop talks to both through [`Host`], so it is written once.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Config;
use crate::forge::{Forge, ForgeError, GitRepo, LocalForge};
use crate::reconciler::{RepoSource, RunError};
use crate::store::Store;

/// The default branch and its tip, as of the last sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tip {
    pub branch: String,
    pub commit: String,
}

/// A commit status, as GitHub models it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: StatusState,
    /// `cairn/config` or `cairn/<pipeline>`.
    pub context: String,
    pub description: String,
    pub target_url: Option<String>,
}

/// The states of a commit status are GitHub's, whatever the host.
pub use crate::github::StatusState;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{repo}: {source}")]
    Git { repo: String, source: ForgeError },
    #[error("{repo}: HEAD is detached; check out the branch cairn should serve")]
    Detached { repo: String },
    #[error("{repo}: {reason}")]
    Api { repo: String, reason: String },
    #[error("{repo}: {what} panicked or was cancelled")]
    Join { repo: String, what: &'static str },
}

#[async_trait::async_trait]
pub trait Host: Send + Sync + 'static {
    /// `owner/name`, or the local path.
    fn name(&self) -> &str;
    /// Where this repository's run store, workspaces and logs live.
    fn state_dir(&self) -> PathBuf;
    /// Bring the local view up to date and report the default branch's tip.
    async fn sync(&self) -> Result<Tip, HostError>;
    /// Where `branch` is now (fetched first when the repository is remote);
    /// `None` when it does not exist.
    async fn branch_tip(&self, branch: &str) -> Result<Option<String>, HostError>;
    /// Open the repository for reading commits (blocking; call from a
    /// blocking thread).
    fn open(&self) -> Result<GitRepo, ForgeError>;
    /// What a run of `tip` reads, with `config` in force.
    fn source(&self, tip: &Tip, config: Arc<Config>) -> Result<RepoSource, RunError>;
    /// The forge runs deliver through; `store` is the repository's run store.
    fn forge(&self, store: Arc<Store>) -> Arc<dyn Forge>;
    /// Report on a commit. Hosts without statuses log it.
    async fn set_status(&self, commit: &str, status: &Status) -> Result<(), HostError>;
    /// A pull request of cairn's was closed: forget it, and delete its
    /// branch when it was merged.
    async fn pull_closed(
        &self,
        store: &Store,
        number: u64,
        merged: bool,
        head_ref: &str,
    ) -> Result<(), HostError>;
    /// Try again to merge the `auto` pull requests still waiting.
    async fn retry_auto_merges(&self, store: Arc<Store>) -> Result<(), HostError>;
    /// A link to a commit, for statuses and messages.
    fn commit_url(&self, commit: &str) -> Option<String>;
    /// A link to a pull request, for the dashboard. Hosts without pull
    /// requests have none.
    fn pull_url(&self, _number: u64) -> Option<String> {
        None
    }
    /// Where `/cairn` comment commands are read and answered: the GitHub
    /// repository. Hosts without comments have none.
    fn chat(&self) -> Option<&crate::github::RepoClient> {
        None
    }
    /// Merge cairn's open pull request `number` now, if the forge allows it
    /// (`/cairn merge`); the answer says what happened.
    async fn merge_now(&self, _store: Arc<Store>, _number: u64) -> Result<String, HostError> {
        Err(HostError::Api {
            repo: self.name().to_string(),
            reason: "this repository has no pull requests to merge".into(),
        })
    }
}

/// A git repository on this machine, served in place: runs read its
/// committed state and the local forge commits into it.
pub struct LocalHost {
    path: PathBuf,
    name: String,
}

impl LocalHost {
    pub fn new(path: PathBuf) -> Result<LocalHost, HostError> {
        let repo = GitRepo::discover(&path).map_err(|source| HostError::Git {
            repo: path.display().to_string(),
            source,
        })?;
        let path = repo.workdir().to_path_buf();
        Ok(LocalHost {
            name: path.display().to_string(),
            path,
        })
    }
}

#[async_trait::async_trait]
impl Host for LocalHost {
    fn name(&self) -> &str {
        &self.name
    }

    fn state_dir(&self) -> PathBuf {
        self.path.join(".cairn")
    }

    async fn sync(&self) -> Result<Tip, HostError> {
        let head = self
            .open()
            .and_then(|repo| repo.head())
            .map_err(|source| HostError::Git {
                repo: self.name.clone(),
                source,
            })?;
        let branch = head.branch.ok_or_else(|| HostError::Detached {
            repo: self.name.clone(),
        })?;
        Ok(Tip {
            branch,
            commit: head.commit,
        })
    }

    async fn branch_tip(&self, branch: &str) -> Result<Option<String>, HostError> {
        self.open()
            .and_then(|repo| repo.branch_tip(branch))
            .map_err(|source| HostError::Git {
                repo: self.name.clone(),
                source,
            })
    }

    fn open(&self) -> Result<GitRepo, ForgeError> {
        GitRepo::discover(&self.path)
    }

    fn source(&self, tip: &Tip, config: Arc<Config>) -> Result<RepoSource, RunError> {
        // The checkout's own `.dvc/config.local` (credentials, local remote
        // overrides) applies, as it does for `cairn run`.
        let head = GitRepo::discover(&self.path)?.head()?;
        if head.commit != tip.commit {
            // HEAD moved since the sync: run what was planned, from the mirror's view.
            return Ok(RepoSource::at_commit(
                self.open()?,
                &tip.commit,
                &tip.branch,
                config,
            ));
        }
        RepoSource::open_with_config(&self.path, config)
    }

    fn forge(&self, _: Arc<Store>) -> Arc<dyn Forge> {
        Arc::new(LocalForge::new(self.path.clone()))
    }

    async fn set_status(&self, commit: &str, status: &Status) -> Result<(), HostError> {
        tracing::info!(
            repo = %self.name,
            commit = %&commit[..commit.len().min(12)],
            context = %status.context,
            state = status.state.as_str(),
            "{}",
            status.description
        );
        Ok(())
    }

    async fn pull_closed(&self, _: &Store, _: u64, _: bool, _: &str) -> Result<(), HostError> {
        // A local repository has no pull requests.
        Ok(())
    }

    async fn retry_auto_merges(&self, _: Arc<Store>) -> Result<(), HostError> {
        // The local forge merges at once or reports why not (a dirty
        // checkout); the next run tries again.
        Ok(())
    }

    fn commit_url(&self, _: &str) -> Option<String> {
        None
    }
}
