//! What an [`Event`](super::Event) carries: the push, comment, pull request
//! and checks cairn acts on, and who and which repository they are about.

use std::collections::BTreeSet;

use serde::de::Deserializer;
use serde::Deserialize;

use super::values::{AccountType, CommentAction, PullRequestAction};
use super::{CAIRN_BRANCH_REF_PREFIX, CAIRN_RUN_TRAILER};

/// A GitHub account acting in an event (the sender, a comment's author).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub login: String,
    pub kind: AccountType,
}

impl Actor {
    /// A bot account (`type: "Bot"`, or a GitHub App's `name[bot]` login).
    pub fn is_bot(&self) -> bool {
        self.kind == AccountType::Bot || self.login.ends_with("[bot]")
    }
}

/// The repository an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRef {
    /// The owner's login (user or organization).
    pub owner: String,
    pub name: String,
    /// `owner/name`.
    pub full_name: String,
    pub default_branch: String,
    pub clone_url: String,
    pub html_url: String,
    /// GitHub's numeric id: stable across renames and transfers.
    pub id: u64,
}

/// A commit as listed in a push.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Commit {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub message: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub author: CommitAuthor,
    /// Paths added, removed and modified by this commit (GitHub caps these
    /// lists for very large commits).
    #[serde(default, deserialize_with = "null_as_default")]
    pub added: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub removed: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub modified: Vec<String>,
}

impl Commit {
    /// The value of the first `Cairn-Run:` trailer line, if the message has one.
    pub fn cairn_run(&self) -> Option<&str> {
        self.message
            .lines()
            .find_map(|line| line.strip_prefix(CAIRN_RUN_TRAILER))
            .map(str::trim)
    }
}

/// A commit's git author.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CommitAuthor {
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    /// The GitHub login, when GitHub could match the email to an account.
    #[serde(default)]
    pub username: Option<String>,
}

/// A `push` event: a ref was created, moved or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub repo: RepoRef,
    /// The full ref, e.g. `refs/heads/main` or `refs/tags/v1`.
    pub git_ref: String,
    /// Commit id before the push (all zeros when the ref was created).
    pub before: String,
    /// Commit id after the push (all zeros when the ref was deleted).
    pub after: String,
    pub created: bool,
    pub deleted: bool,
    pub forced: bool,
    /// The commit the ref points to after the push (`None` when deleted).
    pub head_commit: Option<Commit>,
    /// The pushed commits, oldest first.
    pub commits: Vec<Commit>,
    /// The list holds [`PUSH_COMMITS_LIMIT`] or more commits, so GitHub may
    /// have left some out: [`Push::changed_paths`] may then be incomplete and
    /// the service should diff `before..after` itself.
    pub commits_may_be_truncated: bool,
    /// The git identity that pushed (`pusher.name`).
    pub pusher_name: String,
    pub sender: Actor,
    /// The GitHub App installation the delivery came through.
    pub installation_id: Option<u64>,
}

impl Push {
    /// The branch name for `refs/heads/...`; `None` for tags and other refs.
    pub fn branch(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/heads/")
    }

    /// The tag name for `refs/tags/...`.
    pub fn tag(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/tags/")
    }

    /// The push moved the repository's default branch.
    pub fn is_default_branch(&self) -> bool {
        self.branch() == Some(self.repo.default_branch.as_str())
    }

    /// Every path added, removed or modified by the listed commits, sorted and
    /// without duplicates. Complete only when the list is (see
    /// [`Push::commits_may_be_truncated`]).
    pub fn changed_paths(&self) -> BTreeSet<&str> {
        self.commits
            .iter()
            .flat_map(|c| c.added.iter().chain(&c.removed).chain(&c.modified))
            .map(String::as_str)
            .collect()
    }

    /// cairn made this push itself, so it must not trigger runs (no loops):
    /// the ref is one of cairn's branches (`refs/heads/cairn/...`), or there is
    /// at least one commit and every commit carries a `Cairn-Run:` trailer
    /// (a pointer commit pushed or squash-merged onto a base branch). The
    /// sender ([`Push::sender`]) is left to the caller, which knows its own
    /// App's login.
    pub fn is_by_cairn(&self) -> bool {
        self.git_ref.starts_with(CAIRN_BRANCH_REF_PREFIX)
            || (!self.commits.is_empty() && self.commits.iter().all(|c| c.cairn_run().is_some()))
    }
}

/// An `issue_comment` event: a comment on an issue or a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueComment {
    pub action: CommentAction,
    pub repo: RepoRef,
    pub issue_number: u64,
    /// The issue is a pull request (`issue.pull_request` is present).
    pub is_pull_request: bool,
    pub comment_id: u64,
    pub body: String,
    pub author: Actor,
    /// `OWNER`, `MEMBER`, `COLLABORATOR`, `CONTRIBUTOR`, `NONE`, ... (empty
    /// when absent). Informational: authorization asks the API.
    pub author_association: String,
    pub installation_id: Option<u64>,
}

/// A `pull_request` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestEvent {
    pub action: PullRequestAction,
    pub repo: RepoRef,
    pub number: u64,
    /// The pull request was merged (meaningful with [`PullRequestAction::Closed`]).
    pub merged: bool,
    pub head_ref: String,
    pub head_sha: String,
    /// `owner/name` of the head repository: differs from the base for forks;
    /// `None` when the fork was deleted.
    pub head_repo_full_name: Option<String>,
    pub base_ref: String,
    pub installation_id: Option<u64>,
}

impl PullRequestEvent {
    /// The head branch lives outside the base repository (or its repository is
    /// gone).
    pub fn is_from_fork(&self) -> bool {
        !self
            .head_repo_full_name
            .as_deref()
            .is_some_and(|head| head.eq_ignore_ascii_case(&self.repo.full_name))
    }
}

/// The checks of a commit moved on: a `check_suite` event or a commit
/// `status`. Once they are finished, an `auto` pull request that waited on
/// them may merge now rather than at the next resync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksChanged {
    /// `check_suite` or `status`.
    pub event: &'static str,
    pub repo: RepoRef,
    pub sha: String,
    /// The branches whose tip the commit is, as far as the payload says (a
    /// suite's head branch; a status's `branches`).
    pub branches: Vec<String>,
    /// A completed suite, or a status that is no longer pending.
    pub finished: bool,
}

impl ChecksChanged {
    /// The commit is the tip of one of cairn's branches (`cairn/<pipeline>`).
    pub fn on_cairn_branch(&self) -> bool {
        self.branches.iter().any(|b| b.starts_with("cairn/"))
    }
}

pub(super) fn null_as_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}
