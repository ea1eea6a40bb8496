//! GitHub webhook payloads -> [`Event`], reading only what cairn acts on.
//!
//! The event type comes from the `X-GitHub-Event` header, not from the body.
//! Six types are understood (`ping`, `push`, `issue_comment`, `pull_request`,
//! and `check_suite` and `status`, whose completion may let an `auto` pull
//! request merge); every other one becomes [`Event::Other`], which the service
//! answers with "ignored", after checking that the body is at least
//! well-formed JSON.
//!
//! Parsing is serde straight from the raw bytes into small private "wire"
//! structs that name only the needed fields; serde skips the rest (GitHub's
//! payloads carry hundreds of fields, and add more over time: unknown fields
//! never fail). Fields GitHub may omit or send as `null` are `Option` or
//! defaulted; the ones cairn cannot act without are required, and their absence
//! is an [`EventError::Invalid`] naming the event and the JSON path. The path is
//! worked out by parsing a second time, only on that error path, so the common
//! path pays nothing for it.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny};
use serde::Deserialize;

/// The header that names the event type.
pub const EVENT_HEADER: &str = "X-GitHub-Event";

/// The commit trailer cairn writes into its own pointer commits
/// (`Cairn-Run: <run id>`), by which [`Push::is_by_cairn`] recognises them.
pub const CAIRN_RUN_TRAILER: &str = "Cairn-Run:";

/// The ref prefix of cairn's own branches (`cairn/<pipeline>`).
pub const CAIRN_BRANCH_REF_PREFIX: &str = "refs/heads/cairn/";

/// A push lists at most this many commits in some GitHub contexts; a push
/// listing this many or more may be missing some, see
/// [`Push::commits_may_be_truncated`].
pub const PUSH_COMMITS_LIMIT: usize = 20;

/// One webhook delivery, as far as cairn cares.
// A push is a few hundred bytes inline; an event is built once per delivery
// and consumed at once, so boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Sent once when a hook is created.
    Ping {
        zen: String,
        hook_id: Option<u64>,
    },
    Push(Push),
    IssueComment(IssueComment),
    PullRequest(PullRequestEvent),
    ChecksChanged(ChecksChanged),
    /// Any other event type: nothing to do.
    Other {
        name: String,
    },
}

impl Event {
    /// The `X-GitHub-Event` name this event was parsed from.
    pub fn name(&self) -> &str {
        match self {
            Event::Ping { .. } => "ping",
            Event::Push(_) => "push",
            Event::IssueComment(_) => "issue_comment",
            Event::PullRequest(_) => "pull_request",
            Event::ChecksChanged(c) => c.event,
            Event::Other { name } => name,
        }
    }
}

/// Why a payload could not be parsed. `Display` fits a 400 body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("missing X-GitHub-Event")]
    MissingEventName,
    /// The body is not one well-formed JSON value.
    #[error("{event} payload is not valid JSON: {reason}")]
    Malformed { event: String, reason: String },
    /// Valid JSON, but a field cairn needs is missing or has the wrong type.
    /// `path` is the JSON path of the offending value (`.` for the top level).
    #[error("invalid {event} payload at {path}: {reason}")]
    Invalid {
        event: String,
        path: String,
        reason: String,
    },
}

/// Parses one delivery's body, given its `X-GitHub-Event` header.
///
/// Call only after [`verify_signature`](super::verify_signature) accepted the
/// same bytes.
pub fn parse_event(event_name: &str, body: &[u8]) -> Result<Event, EventError> {
    match event_name {
        "" => Err(EventError::MissingEventName),
        "ping" => {
            let w: PingWire = decode(event_name, body)?;
            Ok(Event::Ping {
                zen: w.zen.unwrap_or_default(),
                hook_id: w.hook_id,
            })
        }
        "push" => decode::<PushWire>(event_name, body).map(|w| Event::Push(w.into())),
        "issue_comment" => {
            decode::<IssueCommentWire>(event_name, body).map(|w| Event::IssueComment(w.into()))
        }
        "pull_request" => {
            decode::<PullRequestWire>(event_name, body).map(|w| Event::PullRequest(w.into()))
        }
        "check_suite" => {
            decode::<CheckSuiteWire>(event_name, body).map(|w| Event::ChecksChanged(w.into()))
        }
        "status" => decode::<StatusWire>(event_name, body).map(|w| Event::ChecksChanged(w.into())),
        other => {
            decode::<IgnoredAny>(other, body)?;
            Ok(Event::Other {
                name: other.to_owned(),
            })
        }
    }
}

fn decode<'de, T: Deserialize<'de>>(event: &str, body: &'de [u8]) -> Result<T, EventError> {
    let err = match serde_json::from_slice(body) {
        Ok(value) => return Ok(value),
        Err(err) => err,
    };
    // Error path only. serde stops at the first problem, so a shape error can
    // hide a syntax error further on (`{} trailing`): check the syntax first.
    let malformed = |err: serde_json::Error| EventError::Malformed {
        event: event.to_owned(),
        reason: err.to_string(),
    };
    if !err.is_data() {
        return Err(malformed(err));
    }
    if let Err(syntax) = serde_json::from_slice::<IgnoredAny>(body) {
        return Err(malformed(syntax));
    }
    // Well-formed JSON of the wrong shape: parse again, tracking the path.
    let mut de = serde_json::Deserializer::from_slice(body);
    let (path, reason) = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) => (e.path().to_string(), e.into_inner().to_string()),
        Ok(_) => (".".to_owned(), err.to_string()),
    };
    Err(EventError::Invalid {
        event: event.to_owned(),
        path,
        reason,
    })
}

/// Defines a string-valued enum that keeps unknown values in `Other`.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this version of cairn does not act on, kept verbatim.
            /// (Build values with `From<&str>`, which never puts a known one here.)
            Other(String),
        }

        impl $name {
            /// The value as GitHub spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(text) => text,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $($text => Self::$variant,)+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a string")
                    }
                    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<$name, E> {
                        Ok($name::from(text))
                    }
                }
                de.deserialize_str(Visitor)
            }
        }
    };
}

open_enum! {
    /// The `type` of a GitHub account.
    AccountType {
        User = "User",
        Bot = "Bot",
        Organization = "Organization",
    }
}

open_enum! {
    /// `action` of an `issue_comment` event.
    CommentAction {
        Created = "created",
        Edited = "edited",
        Deleted = "deleted",
    }
}

open_enum! {
    /// `action` of a `pull_request` event.
    PullRequestAction {
        Opened = "opened",
        Closed = "closed",
        Reopened = "reopened",
        /// New commits on the head branch.
        Synchronize = "synchronize",
        Edited = "edited",
    }
}

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

// ---- wire shapes: only the fields read above --------------------------------

fn null_as_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

#[derive(Deserialize)]
struct PingWire {
    zen: Option<String>,
    hook_id: Option<u64>,
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
struct PushWire {
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
struct IssueCommentWire {
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
struct PullRequestWire {
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
struct CheckSuiteWire {
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
struct StatusWire {
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

#[cfg(test)]
mod tests;
