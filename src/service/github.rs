//! A GitHub repository served through its mirror in the data directory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::host::{Host, HostError, Status, Tip};
use crate::config::Config;
use crate::forge::{Forge, ForgeError, GitHubForge, GitHubRepo, GitRepo, Merge};
use crate::github::RepoClient;
use crate::reconciler::{RepoSource, RunError};
use crate::store::Store;

pub struct GitHubHost {
    repo: Arc<GitHubRepo>,
    name: String,
    state_dir: PathBuf,
    merge_wait: Duration,
}

impl GitHubHost {
    /// Serve `client`'s repository, keeping its mirror and run state under
    /// `<data_dir>/repos/<owner>/<name>/`.
    pub fn new(client: RepoClient, data_dir: &std::path::Path, merge_wait: Duration) -> GitHubHost {
        let name = client.full_name();
        let state_dir = data_dir
            .join("repos")
            .join(client.owner().to_lowercase())
            .join(client.name().to_lowercase());
        GitHubHost {
            repo: Arc::new(GitHubRepo::new(client, state_dir.join("mirror.git"))),
            name,
            state_dir,
            merge_wait,
        }
    }

    fn err(&self, e: ForgeError) -> HostError {
        match e {
            ForgeError::GitHub(e) => HostError::Api {
                repo: self.name.clone(),
                reason: e.to_string(),
            },
            source => HostError::Git {
                repo: self.name.clone(),
                source,
            },
        }
    }

    fn forge_with(&self, store: Arc<Store>) -> GitHubForge {
        GitHubForge::new(Arc::clone(&self.repo), store, self.merge_wait)
    }
}

#[async_trait::async_trait]
impl Host for GitHubHost {
    fn name(&self) -> &str {
        &self.name
    }

    fn state_dir(&self) -> PathBuf {
        self.state_dir.clone()
    }

    async fn sync(&self) -> Result<Tip, HostError> {
        // Ask GitHub each time: the default branch can be renamed.
        let info = self.repo.refresh().await.map_err(|e| self.err(e))?;
        self.repo.fetch().await.map_err(|e| self.err(e))?;
        let commit = self
            .repo
            .open()
            .and_then(|r| r.branch_tip(&info.default_branch))
            .map_err(|e| self.err(e))?
            .ok_or_else(|| HostError::Api {
                repo: self.name.clone(),
                reason: format!("the default branch {} has no commits", info.default_branch),
            })?;
        Ok(Tip {
            branch: info.default_branch,
            commit,
        })
    }

    async fn branch_tip(&self, branch: &str) -> Result<Option<String>, HostError> {
        self.repo.fetch().await.map_err(|e| self.err(e))?;
        self.repo
            .open()
            .and_then(|r| r.branch_tip(branch))
            .map_err(|e| self.err(e))
    }

    fn open(&self) -> Result<GitRepo, ForgeError> {
        self.repo.open()
    }

    fn source(&self, tip: &Tip, config: Arc<Config>) -> Result<RepoSource, RunError> {
        Ok(RepoSource::at_commit(
            self.repo.open()?,
            &tip.commit,
            &tip.branch,
            config,
        ))
    }

    fn forge(&self, store: Arc<Store>) -> Arc<dyn Forge> {
        Arc::new(self.forge_with(store))
    }

    async fn set_status(&self, commit: &str, status: &Status) -> Result<(), HostError> {
        self.repo
            .client
            .set_status(
                commit,
                status.state,
                &status.context,
                &status.description,
                status.target_url.as_deref(),
            )
            .await
            .map_err(|e| self.err(e.into()))
    }

    async fn pull_closed(
        &self,
        store: &Store,
        number: u64,
        merged: bool,
        head_ref: &str,
    ) -> Result<(), HostError> {
        let pipeline = store.forget_pull(number).map_err(|e| HostError::Api {
            repo: self.name.clone(),
            reason: e.to_string(),
        })?;
        tracing::info!(repo = %self.name, pull = number, merged, ?pipeline, "pull request closed");
        if merged {
            self.repo
                .client
                .delete_branch(head_ref)
                .await
                .map_err(|e| self.err(e.into()))?;
        }
        Ok(())
    }

    async fn retry_auto_merges(&self, store: Arc<Store>) -> Result<(), HostError> {
        let pulls = store.open_pulls().map_err(|e| HostError::Api {
            repo: self.name.clone(),
            reason: e.to_string(),
        })?;
        let forge = self.forge_with(Arc::clone(&store));
        for pull in pulls.into_iter().filter(|p| p.auto_merge) {
            let message = self
                .repo
                .open()
                .and_then(|r| r.commit_message(&pull.head_commit))
                .unwrap_or_default();
            match forge
                .try_merge(&pull.pipeline, pull.number, &pull.head_commit, &message)
                .await
            {
                Ok(Merge::Done) => {
                    tracing::info!(repo = %self.name, pull = pull.number, "auto-merged")
                }
                Ok(Merge::NotYet(why)) => {
                    tracing::debug!(repo = %self.name, pull = pull.number, "not mergeable yet: {why}")
                }
                Err(e) => return Err(self.err(e)),
            }
        }
        Ok(())
    }

    fn chat(&self) -> Option<&RepoClient> {
        Some(&self.repo.client)
    }

    async fn merge_now(&self, store: Arc<Store>, number: u64) -> Result<String, HostError> {
        let api = |reason: String| HostError::Api {
            repo: self.name.clone(),
            reason,
        };
        let pull = store
            .open_pulls()
            .map_err(|e| api(e.to_string()))?
            .into_iter()
            .find(|p| p.number == number)
            .ok_or_else(|| {
                api(format!(
                    "#{number} is not a pull request of cairn's that is still open"
                ))
            })?;
        let message = self
            .repo
            .open()
            .and_then(|r| r.commit_message(&pull.head_commit))
            .unwrap_or_default();
        match self
            .forge_with(store)
            .try_merge(&pull.pipeline, number, &pull.head_commit, &message)
            .await
            .map_err(|e| self.err(e))?
        {
            Merge::Done => Ok(format!("merged #{number}")),
            Merge::NotYet(why) => Ok(format!("not merged yet: {why}")),
        }
    }

    fn commit_url(&self, commit: &str) -> Option<String> {
        // The description is cached by every sync; before the first one
        // there is no link, which only costs a link.
        self.repo
            .info_now()
            .map(|i| format!("{}/commit/{commit}", i.html_url))
    }

    fn pull_url(&self, number: u64) -> Option<String> {
        self.repo
            .info_now()
            .map(|i| format!("{}/pull/{number}", i.html_url))
    }
}

/// The repositories to serve: the ones listed (`owner/name`), or, when the
/// list is empty and the client is a GitHub App, every repository of every
/// installation.
pub async fn github_repositories(
    gh: &crate::github::GitHub,
    listed: &[String],
) -> Result<Vec<RepoClient>, crate::github::GitHubError> {
    if !listed.is_empty() {
        return Ok(listed
            .iter()
            .filter_map(|full| full.split_once('/'))
            .map(|(owner, name)| gh.repo(owner, name))
            .collect());
    }
    let mut out = Vec::new();
    for installation in gh.installations().await? {
        for repo in gh.installation_repositories(installation.id).await? {
            out.push(gh.repo(repo.owner, repo.name));
        }
    }
    Ok(out)
}
