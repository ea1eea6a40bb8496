//! The GitHub forge: pointer commits built in the service's mirror (git2),
//! pushed with the forge's token, and proposed as one pull request per
//! pipeline (REST, [`crate::github`]).
//!
//! - `review`: the commit is force-pushed to `cairn/<pipeline>` (only while
//!   that branch holds no commits of people) and the pipeline's pull request
//!   is found by its head branch and updated in place, or opened.
//! - `auto`: as review, then merged once GitHub says it can be; until then
//!   the bot's comment on the pull request says why, and the service tries
//!   again on every resync.
//! - `direct`: pushed onto the default branch, rebuilt on the new tip and
//!   pushed again when someone pushed meanwhile (a few times).
//!
//! The merged commit keeps cairn's `Cairn-Run:` trailer whatever the merge
//! method, so the push that a merge causes never starts a run (no loops).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::mirror::{self, PushOutcome};
use super::{bot_branch, Delivery, Forge, ForgeError, GitRepo, Proposal};
use crate::config::MergePolicy;
use crate::github::{MergeMethod, MergeOutcome, RepoClient, Repository};
use crate::store::{OpenPull, Store};

/// Rebuild-and-push attempts of a `direct` delivery racing other pushes.
const DIRECT_ATTEMPTS: usize = 5;

/// One GitHub repository and its mirror; shared by the forge and the
/// service's host.
pub struct GitHubRepo {
    pub client: RepoClient,
    pub mirror_dir: PathBuf,
    info: tokio::sync::RwLock<Option<Repository>>,
    /// Held by whatever writes the mirror's refs: the worker's fetch before
    /// a reconcile, a run's fetch before it builds its commit, a push.
    /// libgit2 takes a lock file per ref (and `shallow.lock`) and fails at
    /// once, rather than waiting, when another writer holds it; under a
    /// burst of pushes that failed runs. The guard moves into the blocking
    /// task, so a cancelled run cannot release it while git still works.
    writing: Arc<tokio::sync::Mutex<()>>,
    /// Lock files a killed process left are removed before this process
    /// first writes the mirror.
    unlocked: Arc<std::sync::atomic::AtomicBool>,
}

impl GitHubRepo {
    pub fn new(client: RepoClient, mirror_dir: PathBuf) -> GitHubRepo {
        GitHubRepo {
            client,
            mirror_dir,
            info: tokio::sync::RwLock::new(None),
            writing: Arc::new(tokio::sync::Mutex::new(())),
            unlocked: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// Takes the mirror's write lock; the first time in this process, also
    /// clears the ref locks a killed predecessor left.
    async fn write_lock(&self) -> tokio::sync::OwnedMutexGuard<()> {
        let guard = Arc::clone(&self.writing).lock_owned().await;
        if !self
            .unlocked
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            match mirror::remove_stale_locks(&self.mirror_dir) {
                Ok(0) => {}
                Ok(n) => {
                    tracing::warn!(mirror = %self.mirror_dir.display(), "removed {n} lock file(s) a stopped process left")
                }
                Err(e) => {
                    tracing::warn!(mirror = %self.mirror_dir.display(), "clearing stale lock files: {e}")
                }
            }
        }
        guard
    }

    /// The repository as GitHub describes it now (default branch, clone URL).
    pub async fn refresh(&self) -> Result<Repository, ForgeError> {
        let info = self.client.repository().await?;
        *self.info.write().await = Some(info.clone());
        Ok(info)
    }

    /// The last description, fetched on first use.
    pub async fn info(&self) -> Result<Repository, ForgeError> {
        if let Some(info) = self.info.read().await.clone() {
            return Ok(info);
        }
        self.refresh().await
    }

    /// Bring the mirror up to date (cloning it on first use) and open it.
    pub async fn fetch(&self) -> Result<(), ForgeError> {
        let info = self.info().await?;
        let token = self.client.git_token().await?;
        let dir = self.mirror_dir.clone();
        let writing = self.write_lock().await;
        blocking(move || {
            let _writing = writing;
            let repo = mirror::open_or_clone(&dir, &info.clone_url, Some(token.expose()))?;
            mirror::fetch(&repo, Some(token.expose()))
        })
        .await
    }

    pub fn open(&self) -> Result<GitRepo, ForgeError> {
        GitRepo::open_bare(&self.mirror_dir)
    }

    /// The last description, if one was fetched and no update is under way.
    pub fn info_now(&self) -> Option<Repository> {
        self.info.try_read().ok().and_then(|info| info.clone())
    }
}

pub struct GitHubForge {
    repo: Arc<GitHubRepo>,
    store: Arc<Store>,
    /// How long a delivery waits for GitHub to compute mergeability.
    merge_wait: Duration,
}

impl GitHubForge {
    pub fn new(repo: Arc<GitHubRepo>, store: Arc<Store>, merge_wait: Duration) -> GitHubForge {
        GitHubForge {
            repo,
            store,
            merge_wait,
        }
    }

    async fn push(
        &self,
        branch: &str,
        commit: &str,
        force: bool,
    ) -> Result<PushOutcome, ForgeError> {
        let token = self.repo.client.git_token().await?;
        let dir = self.repo.mirror_dir.clone();
        let (branch, commit) = (branch.to_string(), commit.to_string());
        let writing = self.repo.write_lock().await;
        blocking(move || {
            let _writing = writing;
            let repo = GitRepo::open_bare(&dir)?;
            mirror::push(&repo, Some(token.expose()), &branch, &commit, force)
        })
        .await
    }

    /// The pointer commit on top of the default branch's current tip.
    async fn build(&self, proposal: &Proposal, base_branch: &str) -> Result<Built, ForgeError> {
        self.repo.fetch().await?;
        let dir = self.repo.mirror_dir.clone();
        let (proposal, base_branch) = (proposal.clone(), base_branch.to_string());
        blocking(move || {
            let repo = GitRepo::open_bare(&dir)?;
            let tip = repo
                .branch_tip(&base_branch)?
                .ok_or_else(|| ForgeError::Network {
                    op: "fetch".into(),
                    reason: format!("the default branch {base_branch} does not exist"),
                })?;
            let changes = super::rebase::rebase(&repo, &proposal, &tip, &base_branch)?;
            if changes.is_empty() {
                return Ok(Built {
                    base: tip.clone(),
                    commit: tip,
                    foreign: Vec::new(),
                    landed: true,
                });
            }
            let commit = repo.commit_changes(&tip, &changes, &proposal.message)?;
            let bot = proposal.branch();
            let foreign = match repo.branch_tip(&bot)? {
                Some(bot_tip) => repo.foreign_commits(&bot_tip, &tip)?,
                None => Vec::new(),
            };
            Ok(Built {
                base: tip,
                commit,
                foreign,
                landed: false,
            })
        })
        .await
    }

    async fn deliver_direct(
        &self,
        proposal: &Proposal,
        base_branch: &str,
    ) -> Result<Delivery, ForgeError> {
        let mut last = String::new();
        for _ in 0..DIRECT_ATTEMPTS {
            let built = self.build(proposal, base_branch).await?;
            if built.landed {
                return Ok(landed(base_branch, built));
            }
            match self.push(base_branch, &built.commit, false).await? {
                PushOutcome::Pushed => {
                    return Ok(Delivery::Pushed {
                        branch: base_branch.to_string(),
                        commit: built.commit,
                    })
                }
                // Someone pushed in between: rebuild on the new tip.
                PushOutcome::Rejected(reason) => last = reason,
            }
        }
        Err(ForgeError::PushRejected {
            branch: base_branch.to_string(),
            reason: format!("still moving after {DIRECT_ATTEMPTS} attempts ({last})"),
        })
    }

    async fn deliver_pull(
        &self,
        proposal: &Proposal,
        base_branch: &str,
    ) -> Result<Delivery, ForgeError> {
        let branch = proposal.branch();
        let built = self.build(proposal, base_branch).await?;
        if built.landed {
            return Ok(landed(base_branch, built));
        }
        let client = &self.repo.client;
        let existing = client.find_open_pull(&branch).await?;
        if !built.foreign.is_empty() {
            let error = ForgeError::HumanCommits {
                branch: branch.clone(),
                commits: built.foreign.clone(),
            };
            if let Some(pull) = &existing {
                let note = format!(
                    "cairn did not update this pull request with run `{}`: {error}. \
                     Merge or close it, or delete the branch, and the next run proposes again.",
                    proposal.run_id
                );
                self.note(pull.number, &proposal.pipeline, &note).await;
            }
            return Err(error);
        }
        if let PushOutcome::Rejected(reason) = self.push(&branch, &built.commit, true).await? {
            return Err(ForgeError::PushRejected { branch, reason });
        }
        crate::failpoint::hit(crate::failpoint::Failpoint::PointerPushed).await;
        let pull = match existing {
            Some(pull) => {
                client
                    .update_pull(pull.number, &proposal.title, &proposal.body)
                    .await?
            }
            None => {
                let created = client
                    .create_pull(&proposal.title, &branch, base_branch, &proposal.body)
                    .await?;
                if created.created {
                    created.pull
                } else {
                    // GitHub said one was open already (its listing above
                    // lagged, or an earlier create's answer was lost): that
                    // one still describes whatever it was opened for.
                    client
                        .update_pull(created.pull.number, &proposal.title, &proposal.body)
                        .await?
                }
            }
        };
        let auto = proposal.policy == MergePolicy::Auto;
        self.store
            .set_open_pull(&OpenPull {
                pipeline: proposal.pipeline.clone(),
                number: pull.number,
                head_commit: built.commit.clone(),
                run_id: proposal.run_id.clone(),
                auto_merge: auto,
            })
            .map_err(|e| ForgeError::Store(e.to_string()))?;
        tracing::info!(
            repo = %client.full_name(),
            pull = pull.number,
            base = %built.base,
            commit = %built.commit,
            "proposed"
        );
        crate::failpoint::hit(crate::failpoint::Failpoint::PullOpened).await;
        if !auto {
            return Ok(Delivery::Proposed {
                branch,
                commit: built.commit,
            });
        }
        match self
            .try_merge(
                &proposal.pipeline,
                pull.number,
                &built.commit,
                &proposal.message,
            )
            .await?
        {
            Merge::Done => Ok(Delivery::Merged {
                branch,
                commit: built.commit,
                into: base_branch.to_string(),
            }),
            Merge::NotYet(why) => Ok(Delivery::NotMerged {
                branch,
                commit: built.commit,
                why,
            }),
        }
    }

    /// Merge pull request `number` if GitHub says it can be merged, waiting
    /// up to `merge_wait` while GitHub computes that. Otherwise say why on
    /// the pull request and leave it for the next attempt.
    pub async fn try_merge(
        &self,
        pipeline: &str,
        number: u64,
        head: &str,
        message: &str,
    ) -> Result<Merge, ForgeError> {
        let client = &self.repo.client;
        let deadline = Instant::now() + self.merge_wait;
        let mut delay = Duration::from_millis(200);
        let readiness = loop {
            let readiness = client.merge_readiness(number).await?;
            if !readiness.is_computing() || Instant::now() + delay > deadline {
                break readiness;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        };
        if readiness.merged {
            self.forget(number);
            return Ok(Merge::Done);
        }
        if !readiness.can_merge() {
            let why = readiness.to_string();
            self.note(
                number,
                pipeline,
                &format!(
                    "cairn will merge this pull request (merge policy `auto`) once it can: {why}"
                ),
            )
            .await;
            return Ok(Merge::NotYet(why));
        }
        let (title, body) = message.split_once('\n').unwrap_or((message, ""));
        let outcome = client
            .merge_pull(
                number,
                head,
                MergeMethod::Squash,
                title.trim(),
                Some(body.trim()),
            )
            .await?;
        match outcome {
            MergeOutcome::Merged { sha } => {
                tracing::info!(repo = %client.full_name(), pull = number, %sha, "merged");
                self.forget(number);
                if let Err(e) = client.delete_branch(&bot_branch(pipeline)).await {
                    tracing::warn!(repo = %client.full_name(), "deleting the merged branch: {e}");
                }
                Ok(Merge::Done)
            }
            MergeOutcome::NotMergeable { reason, .. } => {
                let why = format!("GitHub refused the merge: {reason}");
                self.note(number, pipeline, &format!("cairn could not merge: {why}"))
                    .await;
                Ok(Merge::NotYet(why))
            }
        }
    }

    fn forget(&self, number: u64) {
        if let Err(e) = self.store.forget_pull(number) {
            tracing::warn!(pull = number, "run store: {e}");
        }
    }

    /// The bot's one comment on a pull request, edited in place.
    async fn note(&self, number: u64, pipeline: &str, text: &str) {
        let marker = crate::github::pipeline_marker(pipeline);
        if let Err(e) = self.repo.client.upsert_comment(number, &marker, text).await {
            tracing::warn!(pull = number, "commenting: {e}");
        }
    }
}

#[async_trait::async_trait]
impl Forge for GitHubForge {
    async fn deliver(&self, proposal: &Proposal) -> Result<Delivery, ForgeError> {
        let base_branch = self.repo.info().await?.default_branch;
        match proposal.policy {
            MergePolicy::Direct => self.deliver_direct(proposal, &base_branch).await,
            MergePolicy::Review | MergePolicy::Auto => {
                self.deliver_pull(proposal, &base_branch).await
            }
        }
    }
}

/// How a merge attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merge {
    Done,
    NotYet(String),
}

struct Built {
    base: String,
    commit: String,
    /// Commits of people on the bot branch, which cairn must keep.
    foreign: Vec<String>,
    /// The base already holds this version (`commit` is then the base).
    landed: bool,
}

fn landed(base_branch: &str, built: Built) -> Delivery {
    tracing::info!(branch = %base_branch, commit = %built.base, "this version is already on the base branch");
    Delivery::Landed {
        branch: base_branch.to_string(),
        commit: built.base,
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ForgeError> + Send + 'static,
) -> Result<T, ForgeError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ForgeError::Io {
            path: "git".into(),
            source: std::io::Error::other(e),
        })?
}
