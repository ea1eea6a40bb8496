//! The "wire" structs serde reads the payloads into, naming only the
//! fields cairn needs, and their conversion into the [`model`](super::model).

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::model::{
    null_as_default, Actor, ChecksChanged, Commit, IssueComment, PullRequestEvent, Push, RepoRef,
};
use super::values::{AccountType, CommentAction, PullRequestAction};
use super::PUSH_COMMITS_LIMIT;

#[derive(Deserialize)]
pub(super) struct PingWire {
    pub(super) zen: Option<String>,
    pub(super) hook_id: Option<u64>,
}

#[derive(Deserialize)]
struct RepoWire {
    id: u64,
    name: String,
    full_name: String,
    owner: Option<OwnerWire>,
    default_branch: String,
    clone_url: String,
    html_url: String,
}

#[derive(Deserialize)]
struct OwnerWire {
    // Push payloads' repository owner has `name` (and `login` since long ago).
    login: Option<String>,
    name: Option<String>,
}

impl From<RepoWire> for RepoRef {
    fn from(w: RepoWire) -> Self {
        let owner = w.owner.and_then(|o| o.login.or(o.name)).unwrap_or_else(|| {
            match w.full_name.split_once('/') {
                Some((owner, _)) => owner.to_owned(),
                None => String::new(),
            }
        });
        RepoRef {
            owner,
            name: w.name,
            full_name: w.full_name,
            default_branch: w.default_branch,
            clone_url: w.clone_url,
            html_url: w.html_url,
            id: w.id,
        }
    }
}

#[derive(Deserialize)]
struct ActorWire {
    login: String,
    #[serde(rename = "type")]
    kind: AccountType,
}

impl From<ActorWire> for Actor {
    fn from(w: ActorWire) -> Self {
        Actor {
            login: w.login,
            kind: w.kind,
        }
    }
}

#[derive(Deserialize)]
struct InstallationWire {
    id: u64,
}

#[derive(Deserialize, Default)]
struct PusherWire {
    #[serde(default, deserialize_with = "null_as_default")]
    name: String,
}

#[derive(Deserialize)]
pub(super) struct PushWire {
    #[serde(rename = "ref")]
    git_ref: String,
    before: String,
    after: String,
    #[serde(default, deserialize_with = "null_as_default")]
    created: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    deleted: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    forced: bool,
    head_commit: Option<Commit>,
    #[serde(default, deserialize_with = "null_as_default")]
    commits: Vec<Commit>,
    #[serde(default, deserialize_with = "null_as_default")]
    pusher: PusherWire,
    repository: RepoWire,
    sender: ActorWire,
    installation: Option<InstallationWire>,
}

impl From<PushWire> for Push {
    fn from(w: PushWire) -> Self {
        Push {
            repo: w.repository.into(),
            git_ref: w.git_ref,
            before: w.before,
            after: w.after,
            created: w.created,
            deleted: w.deleted,
            forced: w.forced,
            head_commit: w.head_commit,
            commits_may_be_truncated: w.commits.len() >= PUSH_COMMITS_LIMIT,
            commits: w.commits,
            pusher_name: w.pusher.name,
            sender: w.sender.into(),
            installation_id: w.installation.map(|i| i.id),
        }
    }
}

#[derive(Deserialize)]
pub(super) struct IssueCommentWire {
    action: CommentAction,
    repository: RepoWire,
    issue: IssueWire,
    comment: CommentWire,
    installation: Option<InstallationWire>,
}

#[derive(Deserialize)]
struct IssueWire {
    number: u64,
    /// Present (an object of links) exactly when the issue is a pull request.
    pull_request: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct CommentWire {
    id: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    body: String,
    user: ActorWire,
    #[serde(default, deserialize_with = "null_as_default")]
    author_association: String,
}

impl From<IssueCommentWire> for IssueComment {
    fn from(w: IssueCommentWire) -> Self {
        IssueComment {
            action: w.action,
            repo: w.repository.into(),
            issue_number: w.issue.number,
            is_pull_request: w.issue.pull_request.is_some(),
            comment_id: w.comment.id,
            body: w.comment.body,
            author: w.comment.user.into(),
            author_association: w.comment.author_association,
            installation_id: w.installation.map(|i| i.id),
        }
    }
}

#[derive(Deserialize)]
pub(super) struct PullRequestWire {
    action: PullRequestAction,
    number: u64,
    repository: RepoWire,
    pull_request: PullRequestBodyWire,
    installation: Option<InstallationWire>,
}

#[derive(Deserialize)]
struct PullRequestBodyWire {
    #[serde(default, deserialize_with = "null_as_default")]
    merged: bool,
    head: HeadWire,
    base: BaseWire,
}

#[derive(Deserialize)]
struct HeadWire {
    #[serde(rename = "ref")]
    git_ref: String,
    sha: String,
    repo: Option<RepoNameWire>,
}

#[derive(Deserialize)]
struct RepoNameWire {
    full_name: String,
}

#[derive(Deserialize)]
struct BaseWire {
    #[serde(rename = "ref")]
    git_ref: String,
}

impl From<PullRequestWire> for PullRequestEvent {
    fn from(w: PullRequestWire) -> Self {
        let pr = w.pull_request;
        PullRequestEvent {
            action: w.action,
            repo: w.repository.into(),
            number: w.number,
            merged: pr.merged,
            head_ref: pr.head.git_ref,
            head_sha: pr.head.sha,
            head_repo_full_name: pr.head.repo.map(|r| r.full_name),
            base_ref: pr.base.git_ref,
            installation_id: w.installation.map(|i| i.id),
        }
    }
}

#[derive(Deserialize)]
pub(super) struct CheckSuiteWire {
    action: String,
    check_suite: CheckSuiteBodyWire,
    repository: RepoWire,
}

#[derive(Deserialize)]
struct CheckSuiteBodyWire {
    head_sha: String,
    /// `null` when the suite's commit is on no branch (a fork's, say).
    #[serde(default)]
    head_branch: Option<String>,
}

impl From<CheckSuiteWire> for ChecksChanged {
    fn from(w: CheckSuiteWire) -> Self {
        ChecksChanged {
            event: "check_suite",
            repo: w.repository.into(),
            sha: w.check_suite.head_sha,
            branches: w.check_suite.head_branch.into_iter().collect(),
            finished: w.action == "completed",
        }
    }
}

#[derive(Deserialize)]
pub(super) struct StatusWire {
    sha: String,
    state: String,
    #[serde(default, deserialize_with = "null_as_default")]
    branches: Vec<BranchWire>,
    repository: RepoWire,
}

#[derive(Deserialize)]
struct BranchWire {
    name: String,
}

impl From<StatusWire> for ChecksChanged {
    fn from(w: StatusWire) -> Self {
        ChecksChanged {
            event: "status",
            repo: w.repository.into(),
            sha: w.sha,
            branches: w.branches.into_iter().map(|b| b.name).collect(),
            finished: w.state != "pending",
        }
    }
}
