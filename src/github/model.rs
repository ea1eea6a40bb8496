//! What the client returns: small owned values with just what cairn uses, made
//! from the private wire structs in [`wire`](super::wire).

use std::fmt;

/// A repository (`GET /repos/{owner}/{repo}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub id: u64,
    pub owner: String,
    pub name: String,
    /// `owner/name`.
    pub full_name: String,
    pub default_branch: String,
    /// The HTTPS URL git clones from.
    pub clone_url: String,
    pub html_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullState {
    Open,
    Closed,
}

/// GitHub's `mergeable_state` of a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeableState {
    /// Mergeable, and every check passed.
    Clean,
    /// Mergeable, but a non-required check failed.
    Unstable,
    /// Mergeable; the repository has pre-receive hooks.
    HasHooks,
    /// Branch protection blocks it: a required check or review is missing.
    Blocked,
    /// The head is behind the base and branch protection wants it up to date.
    Behind,
    /// Merge conflicts.
    Dirty,
    Draft,
    /// GitHub has not computed it yet (`unknown`, or no value at all): ask again shortly.
    Unknown,
    /// A value this client does not know.
    Other(String),
}

impl MergeableState {
    pub(crate) fn from_wire(value: Option<&str>) -> MergeableState {
        match value {
            None | Some("unknown") => MergeableState::Unknown,
            Some("clean") => MergeableState::Clean,
            Some("unstable") => MergeableState::Unstable,
            Some("has_hooks") => MergeableState::HasHooks,
            Some("blocked") => MergeableState::Blocked,
            Some("behind") => MergeableState::Behind,
            Some("dirty") => MergeableState::Dirty,
            Some("draft") => MergeableState::Draft,
            Some(other) => MergeableState::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            MergeableState::Clean => "clean",
            MergeableState::Unstable => "unstable",
            MergeableState::HasHooks => "has_hooks",
            MergeableState::Blocked => "blocked",
            MergeableState::Behind => "behind",
            MergeableState::Dirty => "dirty",
            MergeableState::Draft => "draft",
            MergeableState::Unknown => "unknown",
            MergeableState::Other(other) => other,
        }
    }
}

impl fmt::Display for MergeableState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A pull request. `mergeable`, `mergeable_state` and `merged` are only
/// reported by `GET .../pulls/{number}` ([`RepoClient::pull`](super::RepoClient::pull));
/// in a list they read `None`, `Unknown` and whether `merged_at` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub number: u64,
    pub state: PullState,
    pub title: String,
    pub body: Option<String>,
    pub html_url: String,
    pub head_ref: String,
    pub head_sha: String,
    /// `owner/name` of the head branch's repository: another repository's
    /// for a pull request from a fork; `None` when that fork was deleted.
    pub head_repo: Option<String>,
    pub base_ref: String,
    pub draft: bool,
    pub merged: bool,
    pub mergeable: Option<bool>,
    pub mergeable_state: MergeableState,
    pub merge_commit_sha: Option<String>,
}

impl PullRequest {
    pub fn is_open(&self) -> bool {
        self.state == PullState::Open
    }
}

/// The pull request of [`RepoClient::create_pull`](super::RepoClient::create_pull).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedPull {
    pub pull: PullRequest,
    /// False when an open pull request from the same head already existed and
    /// is returned instead.
    pub created: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeMethod {
    Merge,
    Squash,
    Rebase,
}

impl MergeMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            MergeMethod::Merge => "merge",
            MergeMethod::Squash => "squash",
            MergeMethod::Rebase => "rebase",
        }
    }
}

/// What `PUT .../pulls/{number}/merge` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// `sha` is the new commit on the base branch.
    Merged { sha: String },
    /// GitHub refused (405 not mergeable, 409 head moved); `reason` is its message.
    NotMergeable { status: u16, reason: String },
}

/// A commit status state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusState {
    Pending,
    Success,
    Failure,
    Error,
}

impl StatusState {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Pending => "pending",
            StatusState::Success => "success",
            StatusState::Failure => "failure",
            StatusState::Error => "error",
        }
    }

    pub(crate) fn from_wire(value: &str) -> Option<StatusState> {
        Some(match value {
            "pending" => StatusState::Pending,
            "success" => StatusState::Success,
            "failure" => StatusState::Failure,
            "error" => StatusState::Error,
            _ => return None,
        })
    }
}

impl fmt::Display for StatusState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The latest status of one context on a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    pub context: String,
    pub state: StatusState,
    pub description: Option<String>,
    pub target_url: Option<String>,
}

/// `GET .../commits/{sha}/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CombinedStatus {
    /// `pending`, `success` or `failure`.
    pub state: StatusState,
    pub statuses: Vec<CommitStatus>,
}

/// One check run (GitHub Actions and other Checks API apps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRun {
    pub name: String,
    /// `queued`, `in_progress`, `completed`, `waiting`, `requested`, `pending`.
    pub status: String,
    /// Set once completed: `success`, `failure`, `neutral`, `cancelled`,
    /// `skipped`, `timed_out`, `action_required`, `stale`...
    pub conclusion: Option<String>,
}

/// An issue or pull request comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: u64,
    pub body: String,
    /// The login of its author (`cairn[bot]` for an App).
    pub author: String,
    pub html_url: String,
}

/// The comment of [`RepoClient::upsert_comment`](super::RepoClient::upsert_comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpsertedComment {
    pub comment: Comment,
    /// False when an existing comment was edited in place.
    pub created: bool,
}

/// A reaction on a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction {
    PlusOne,
    MinusOne,
    Laugh,
    Confused,
    Heart,
    Hooray,
    Rocket,
    Eyes,
}

impl Reaction {
    pub fn as_str(self) -> &'static str {
        match self {
            Reaction::PlusOne => "+1",
            Reaction::MinusOne => "-1",
            Reaction::Laugh => "laugh",
            Reaction::Confused => "confused",
            Reaction::Heart => "heart",
            Reaction::Hooray => "hooray",
            Reaction::Rocket => "rocket",
            Reaction::Eyes => "eyes",
        }
    }
}

/// A user's role on a repository, weakest first (so `>=` compares them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    None,
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

impl Permission {
    /// From `GET .../collaborators/{user}/permission`: `role_name` carries the
    /// five roles; the older `permission` field folds maintain into write and
    /// triage into read, so it is only the fallback. A custom role name falls
    /// back to `permission` too.
    pub(crate) fn from_wire(permission: &str, role_name: Option<&str>) -> Permission {
        let parse = |value: &str| match value {
            "admin" => Some(Permission::Admin),
            "maintain" => Some(Permission::Maintain),
            "write" | "push" => Some(Permission::Write),
            "triage" => Some(Permission::Triage),
            "read" | "pull" => Some(Permission::Read),
            "none" => Some(Permission::None),
            _ => None,
        };
        role_name
            .and_then(parse)
            .or_else(|| parse(permission))
            .unwrap_or(Permission::None)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::None => "none",
            Permission::Read => "read",
            Permission::Triage => "triage",
            Permission::Write => "write",
            Permission::Maintain => "maintain",
            Permission::Admin => "admin",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An installation of the GitHub App.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    pub id: u64,
    /// The user or organisation it is installed on.
    pub account: String,
    /// `all` or `selected`.
    pub repository_selection: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_prefers_role_name() {
        assert_eq!(
            Permission::from_wire("write", Some("maintain")),
            Permission::Maintain
        );
        assert_eq!(
            Permission::from_wire("read", Some("triage")),
            Permission::Triage
        );
        assert_eq!(
            Permission::from_wire("write", Some("custom-deployer")),
            Permission::Write
        );
        assert_eq!(Permission::from_wire("admin", None), Permission::Admin);
        assert_eq!(Permission::from_wire("odd", None), Permission::None);
        assert!(Permission::Maintain >= Permission::Write);
        assert!(Permission::Triage < Permission::Write);
    }

    #[test]
    fn mergeable_state_from_wire() {
        assert_eq!(MergeableState::from_wire(None), MergeableState::Unknown);
        assert_eq!(
            MergeableState::from_wire(Some("unknown")),
            MergeableState::Unknown
        );
        assert_eq!(
            MergeableState::from_wire(Some("blocked")),
            MergeableState::Blocked
        );
        assert_eq!(
            MergeableState::from_wire(Some("new_one")),
            MergeableState::Other("new_one".into())
        );
        assert_eq!(
            MergeableState::from_wire(Some("has_hooks")).as_str(),
            "has_hooks"
        );
    }
}
