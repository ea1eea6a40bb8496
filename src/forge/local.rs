//! The local forge: pointer commits into a git repository on this machine,
//! the embedded default. There is no pull request without a hosting service,
//! so `review` leaves the commit on `cairn/<pipeline>` and `auto` merges it
//! (fast-forward) into the checked-out branch.

use std::path::PathBuf;

use super::{Delivery, Forge, ForgeError, GitRepo, Proposal};
use crate::config::MergePolicy;

pub struct LocalForge {
    repo: PathBuf,
}

impl LocalForge {
    pub fn new(repo: PathBuf) -> LocalForge {
        LocalForge { repo }
    }
}

#[async_trait::async_trait]
impl Forge for LocalForge {
    async fn deliver(&self, proposal: &Proposal) -> Result<Delivery, ForgeError> {
        let repo = self.repo.clone();
        let proposal = proposal.clone();
        // git2 is blocking and its Repository is not Sync: open it on a
        // blocking thread for the duration of one delivery.
        tokio::task::spawn_blocking(move || deliver(&GitRepo::discover(&repo)?, &proposal))
            .await
            .map_err(|e| ForgeError::Io {
                path: "git".into(),
                source: std::io::Error::other(e),
            })?
    }
}

fn deliver(repo: &GitRepo, proposal: &Proposal) -> Result<Delivery, ForgeError> {
    let head = repo.head()?;
    // Build on where the branch is now, not where the run started: a commit
    // that landed meanwhile is kept (see `rebase` for when it conflicts).
    let on = head.branch.clone().unwrap_or_else(|| "HEAD".into());
    let changes = super::rebase::rebase(repo, proposal, &head.commit, &on)?;
    if changes.is_empty() {
        return Ok(Delivery::Landed {
            branch: on,
            commit: head.commit,
        });
    }
    let commit = repo.commit_changes(&head.commit, &changes, &proposal.message)?;
    let branch = proposal.branch();
    match proposal.policy {
        MergePolicy::Review => {
            set_bot_branch(repo, &branch, &head.commit, &commit)?;
            crate::failpoint::hit_blocking(crate::failpoint::Failpoint::PointerPushed);
            Ok(Delivery::Proposed { branch, commit })
        }
        MergePolicy::Direct => {
            let current = fast_forward(repo, &head, &commit, proposal.policy)?;
            Ok(Delivery::Pushed {
                branch: current,
                commit,
            })
        }
        MergePolicy::Auto => {
            set_bot_branch(repo, &branch, &head.commit, &commit)?;
            crate::failpoint::hit_blocking(crate::failpoint::Failpoint::PointerPushed);
            match fast_forward(repo, &head, &commit, proposal.policy) {
                Ok(into) => Ok(Delivery::Merged {
                    branch,
                    commit,
                    into,
                }),
                Err(why @ (ForgeError::Dirty { .. } | ForgeError::Detached { .. })) => {
                    Ok(Delivery::NotMerged {
                        branch,
                        commit,
                        why: why.to_string(),
                    })
                }
                Err(e) => Err(e),
            }
        }
    }
}

/// Point `cairn/<pipeline>` at `commit`, replacing the previous proposal,
/// unless someone added commits of their own to it.
fn set_bot_branch(
    repo: &GitRepo,
    branch: &str,
    base: &str,
    commit: &str,
) -> Result<(), ForgeError> {
    let tip = repo.branch_tip(branch)?;
    if let Some(tip) = &tip {
        let foreign = repo.foreign_commits(tip, base)?;
        if !foreign.is_empty() {
            return Err(ForgeError::HumanCommits {
                branch: branch.to_string(),
                commits: foreign,
            });
        }
    }
    repo.move_branch(branch, tip.as_deref(), commit, "cairn: new dataset version")
}

/// Move the checked-out branch to `commit` (a child of HEAD) and bring the
/// index and working tree along. Returns the branch name.
fn fast_forward(
    repo: &GitRepo,
    head: &super::Head,
    commit: &str,
    policy: MergePolicy,
) -> Result<String, ForgeError> {
    let branch = head.branch.clone().ok_or(ForgeError::Detached { policy })?;
    let dirty = repo.dirty_paths()?;
    if !dirty.is_empty() {
        return Err(ForgeError::Dirty { paths: dirty });
    }
    repo.checkout_clean(commit)?;
    if let Err(e) = repo.move_branch(
        &branch,
        Some(&head.commit),
        commit,
        "cairn: new dataset version",
    ) {
        // Put the working tree back where the branch still is.
        let _ = repo.checkout_back(&head.commit);
        return Err(e);
    }
    Ok(branch)
}
