//! [`RepoClient`]: the calls cairn makes on one repository.

use std::fmt;

use http::{Method, StatusCode};
use serde_json::json;

use super::model::{
    CheckRun, CombinedStatus, Comment, CreatedPull, MergeMethod, MergeOutcome, Permission,
    PullRequest, Reaction, Repository, StatusState, UpsertedComment,
};
use super::readiness::MergeReadiness;
use super::text::{self, segment, truncate_chars, BODY_MAX, STATUS_DESCRIPTION_MAX};
use super::wire::{
    CheckRunsWire, CombinedStatusWire, CommentWire, MergeWire, PermissionWire, PullWire,
    RepositoryWire,
};
use super::{As, AuthMode, GitHub, GitHubError, Request, Secret};

/// GitHub's 422 message when an open pull request from the same head exists.
const PULL_EXISTS: &str = "A pull request already exists";

/// A handle on one repository. Cheap to clone. In App mode, the repository's
/// installation is looked up on first use and remembered by the client.
#[derive(Clone)]
pub struct RepoClient {
    gh: GitHub,
    owner: String,
    name: String,
}

impl fmt::Debug for RepoClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepoClient({}/{})", self.owner, self.name)
    }
}

impl RepoClient {
    pub(crate) fn new(gh: GitHub, owner: String, name: String) -> RepoClient {
        RepoClient { gh, owner, name }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `owner/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// `/repos/{owner}/{repo}`, encoded.
    fn base(&self) -> String {
        format!("/repos/{}/{}", segment(&self.owner), segment(&self.name))
    }

    async fn auth(&self) -> Result<As, GitHubError> {
        if self.gh.is_app() {
            Ok(As::Installation(self.installation_id().await?))
        } else {
            Ok(As::Token)
        }
    }

    async fn request(
        &self,
        method: Method,
        route: &'static str,
        rest: &str,
    ) -> Result<Request, GitHubError> {
        Ok(Request::new(
            method,
            route,
            format!("{}{rest}", self.base()),
            self.auth().await?,
        ))
    }

    /// The App's installation on this repository
    /// (`GET /repos/{owner}/{repo}/installation`). App mode only.
    pub async fn installation_id(&self) -> Result<u64, GitHubError> {
        self.gh.repo_installation(&self.owner, &self.name).await
    }

    /// The token git should use over HTTPS for this repository (as the
    /// password of user `x-access-token`): the configured token, or the
    /// installation's current token.
    pub async fn git_token(&self) -> Result<Secret, GitHubError> {
        match &self.gh.inner.auth {
            AuthMode::Token(token) => Ok(token.clone()),
            AuthMode::App { .. } => {
                let id = self.installation_id().await?;
                self.gh.installation_token(id).await
            }
        }
    }

    /// `GET /repos/{owner}/{repo}`.
    pub async fn repository(&self) -> Result<Repository, GitHubError> {
        let req = self
            .request(Method::GET, "/repos/{owner}/{repo}", "")
            .await?;
        let wire: RepositoryWire = self.gh.send(&req).await?.ok_json()?;
        Ok(wire.into())
    }

    /// The open pull request whose head is `head_branch` of this repository
    /// (`GET .../pulls?state=open&head=OWNER:BRANCH`), if any.
    pub async fn find_open_pull(
        &self,
        head_branch: &str,
    ) -> Result<Option<PullRequest>, GitHubError> {
        let req = self
            .request(Method::GET, "/repos/{owner}/{repo}/pulls", "/pulls")
            .await?
            .query("state", "open")
            .query("head", &format!("{}:{head_branch}", self.owner))
            .query("per_page", "100");
        let pulls: Vec<PullWire> = self.gh.send(&req).await?.ok_json()?;
        Ok(pulls
            .into_iter()
            .map(PullRequest::from)
            .find(|p| p.head_ref == head_branch && p.is_open()))
    }

    /// `GET .../pulls/{number}`, with `mergeable` and `mergeable_state`.
    pub async fn pull(&self, number: u64) -> Result<PullRequest, GitHubError> {
        let req = self
            .request(
                Method::GET,
                "/repos/{owner}/{repo}/pulls/{pull_number}",
                &format!("/pulls/{number}"),
            )
            .await?;
        let wire: PullWire = self.gh.send(&req).await?.ok_json()?;
        Ok(wire.into())
    }

    /// Opens a pull request from `head` (a branch of this repository) into
    /// `base`. When GitHub answers that one from `head` is open already (also
    /// what a retried create sees after a lost answer), that one is returned,
    /// with `created: false`: never a duplicate.
    pub async fn create_pull(
        &self,
        title: &str,
        head: &str,
        base: &str,
        body: &str,
    ) -> Result<CreatedPull, GitHubError> {
        let req = self
            .request(Method::POST, "/repos/{owner}/{repo}/pulls", "/pulls")
            .await?
            .json(json!({
                "title": title,
                "head": head,
                "base": base,
                "body": truncate_chars(body, BODY_MAX),
            }));
        let resp = self.gh.send(&req).await?;
        if resp.is_success() {
            let wire: PullWire = resp.json()?;
            return Ok(CreatedPull {
                pull: wire.into(),
                created: true,
            });
        }
        if resp.status() == StatusCode::UNPROCESSABLE_ENTITY
            && resp
                .error_body()
                .detail_messages()
                .any(|m| m.starts_with(PULL_EXISTS))
        {
            if let Some(pull) = self.find_open_pull(head).await? {
                return Ok(CreatedPull {
                    pull,
                    created: false,
                });
            }
        }
        Err(resp.error())
    }

    /// Sets a pull request's title and body (`PATCH .../pulls/{number}`).
    pub async fn update_pull(
        &self,
        number: u64,
        title: &str,
        body: &str,
    ) -> Result<PullRequest, GitHubError> {
        let req = self
            .request(
                Method::PATCH,
                "/repos/{owner}/{repo}/pulls/{pull_number}",
                &format!("/pulls/{number}"),
            )
            .await?
            .json(json!({ "title": title, "body": truncate_chars(body, BODY_MAX) }));
        let wire: PullWire = self.gh.send(&req).await?.ok_json()?;
        Ok(wire.into())
    }

    /// Merges a pull request if its head is still `expected_head_sha`
    /// (`PUT .../pulls/{number}/merge`), with commit title `commit_title` and,
    /// if given, message `commit_message` (else GitHub's default). GitHub's
    /// refusals (405 not mergeable, 409 head moved) are
    /// [`MergeOutcome::NotMergeable`] with its message.
    pub async fn merge_pull(
        &self,
        number: u64,
        expected_head_sha: &str,
        method: MergeMethod,
        commit_title: &str,
        commit_message: Option<&str>,
    ) -> Result<MergeOutcome, GitHubError> {
        let mut body = json!({
            "commit_title": commit_title,
            "sha": expected_head_sha,
            "merge_method": method.as_str(),
        });
        if let Some(message) = commit_message {
            body["commit_message"] = json!(message);
        }
        let req = self
            .request(
                Method::PUT,
                "/repos/{owner}/{repo}/pulls/{pull_number}/merge",
                &format!("/pulls/{number}/merge"),
            )
            .await?
            .json(body);
        let resp = self.gh.send(&req).await?;
        match resp.status() {
            s if s.is_success() => {
                let wire: MergeWire = resp.json()?;
                Ok(MergeOutcome::Merged { sha: wire.sha })
            }
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::CONFLICT => {
                Ok(MergeOutcome::NotMergeable {
                    status: resp.status().as_u16(),
                    reason: resp.message(),
                })
            }
            _ => Err(resp.error()),
        }
    }

    /// Whether a pull request can be merged now and, if not, why: its
    /// `mergeable_state` with the pending and failing statuses and check runs
    /// of its head (`Display` explains it).
    pub async fn merge_readiness(&self, number: u64) -> Result<MergeReadiness, GitHubError> {
        let pull = self.pull(number).await?;
        if !pull.is_open() || pull.merged {
            let none = CombinedStatus {
                state: StatusState::Success,
                statuses: Vec::new(),
            };
            return Ok(MergeReadiness::new(&pull, &none, &[]));
        }
        let status = self.combined_status(&pull.head_sha).await?;
        let runs = self.check_runs(&pull.head_sha).await?;
        Ok(MergeReadiness::new(&pull, &status, &runs))
    }

    /// The latest status of each context on a commit
    /// (`GET .../commits/{ref}/status`).
    pub async fn combined_status(&self, sha: &str) -> Result<CombinedStatus, GitHubError> {
        let req = self
            .request(
                Method::GET,
                "/repos/{owner}/{repo}/commits/{ref}/status",
                &format!("/commits/{}/status", segment(sha)),
            )
            .await?
            .query("per_page", "100");
        let wire: CombinedStatusWire = self.gh.send(&req).await?.ok_json()?;
        Ok(CombinedStatus {
            state: StatusState::from_wire(&wire.state).unwrap_or(StatusState::Pending),
            statuses: wire
                .statuses
                .into_iter()
                .filter_map(|s| s.into_status())
                .collect(),
        })
    }

    /// The check runs of a commit (`GET .../commits/{ref}/check-runs`, every page).
    pub async fn check_runs(&self, sha: &str) -> Result<Vec<CheckRun>, GitHubError> {
        let req = self
            .request(
                Method::GET,
                "/repos/{owner}/{repo}/commits/{ref}/check-runs",
                &format!("/commits/{}/check-runs", segment(sha)),
            )
            .await?
            .query("per_page", "100");
        self.gh
            .get_pages(req, |page: CheckRunsWire| {
                page.check_runs.into_iter().map(CheckRun::from).collect()
            })
            .await
    }

    /// Sets a commit status (`POST .../statuses/{sha}`). The description is
    /// cut to GitHub's 140 characters.
    pub async fn set_status(
        &self,
        sha: &str,
        state: StatusState,
        context: &str,
        description: &str,
        target_url: Option<&str>,
    ) -> Result<(), GitHubError> {
        let mut body = json!({
            "state": state.as_str(),
            "context": context,
            "description": truncate_chars(description, STATUS_DESCRIPTION_MAX),
        });
        if let Some(url) = target_url {
            body["target_url"] = json!(url);
        }
        let req = self
            .request(
                Method::POST,
                "/repos/{owner}/{repo}/statuses/{sha}",
                &format!("/statuses/{}", segment(sha)),
            )
            .await?
            .json(body);
        self.gh.send(&req).await?.ok()
    }

    /// Every comment of an issue or pull request, oldest first
    /// (`GET .../issues/{number}/comments`, every page).
    pub async fn comments(&self, issue_number: u64) -> Result<Vec<Comment>, GitHubError> {
        let req = self
            .request(
                Method::GET,
                "/repos/{owner}/{repo}/issues/{issue_number}/comments",
                &format!("/issues/{issue_number}/comments"),
            )
            .await?
            .query("per_page", "100");
        self.gh
            .get_pages(req, |page: Vec<CommentWire>| {
                page.into_iter().map(Comment::from).collect()
            })
            .await
    }

    /// Comments on an issue or pull request (`POST .../issues/{number}/comments`).
    pub async fn create_comment(
        &self,
        issue_number: u64,
        body: &str,
    ) -> Result<Comment, GitHubError> {
        let req = self
            .request(
                Method::POST,
                "/repos/{owner}/{repo}/issues/{issue_number}/comments",
                &format!("/issues/{issue_number}/comments"),
            )
            .await?
            .json(json!({ "body": truncate_chars(body, BODY_MAX) }));
        let wire: CommentWire = self.gh.send(&req).await?.ok_json()?;
        Ok(wire.into())
    }

    /// Replaces a comment's body (`PATCH .../issues/comments/{id}`).
    pub async fn edit_comment(&self, comment_id: u64, body: &str) -> Result<Comment, GitHubError> {
        let req = self
            .request(
                Method::PATCH,
                "/repos/{owner}/{repo}/issues/comments/{comment_id}",
                &format!("/issues/comments/{comment_id}"),
            )
            .await?
            .json(json!({ "body": truncate_chars(body, BODY_MAX) }));
        let wire: CommentWire = self.gh.send(&req).await?.ok_json()?;
        Ok(wire.into())
    }

    /// Keeps one comment per `marker` (an HTML comment such as
    /// [`pipeline_marker`](super::pipeline_marker)) on an issue or pull
    /// request: the first comment carrying it (by the bot, when
    /// [`bot_login`](super::GitHubBuilder::bot_login) is set) is edited in
    /// place, or a new one is made. The marker is put on the body's first line
    /// unless the body has it. An unchanged body is not sent again.
    pub async fn upsert_comment(
        &self,
        issue_number: u64,
        marker: &str,
        body: &str,
    ) -> Result<UpsertedComment, GitHubError> {
        if !text::is_valid_marker(marker) {
            return Err(GitHubError::InvalidArgument(format!(
                "comment marker {marker:?} is not one HTML comment (<!-- ... -->)"
            )));
        }
        let full = text::with_marker(body, marker);
        let bot = self.gh.bot_login();
        let existing = self.comments(issue_number).await?.into_iter().find(|c| {
            text::has_marker(&c.body, marker)
                && bot.is_none_or(|login| login.eq_ignore_ascii_case(&c.author))
        });
        match existing {
            Some(comment) if comment.body == full => Ok(UpsertedComment {
                comment,
                created: false,
            }),
            Some(comment) => Ok(UpsertedComment {
                comment: self.edit_comment(comment.id, &full).await?,
                created: false,
            }),
            None => Ok(UpsertedComment {
                comment: self.create_comment(issue_number, &full).await?,
                created: true,
            }),
        }
    }

    /// Reacts to an issue or pull request comment
    /// (`POST .../issues/comments/{id}/reactions`); reacting twice is fine.
    pub async fn add_reaction(
        &self,
        comment_id: u64,
        reaction: Reaction,
    ) -> Result<(), GitHubError> {
        let req = self
            .request(
                Method::POST,
                "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
                &format!("/issues/comments/{comment_id}/reactions"),
            )
            .await?
            .json(json!({ "content": reaction.as_str() }));
        self.gh.send(&req).await?.ok()
    }

    /// A user's role on the repository
    /// (`GET .../collaborators/{username}/permission`).
    pub async fn permission(&self, username: &str) -> Result<Permission, GitHubError> {
        let req = self
            .request(
                Method::GET,
                "/repos/{owner}/{repo}/collaborators/{username}/permission",
                &format!("/collaborators/{}/permission", segment(username)),
            )
            .await?;
        let wire: PermissionWire = self.gh.send(&req).await?.ok_json()?;
        Ok(Permission::from_wire(
            &wire.permission,
            wire.role_name.as_deref(),
        ))
    }

    /// Deletes a branch (`DELETE .../git/refs/heads/{branch}`). Returns false
    /// when it was already gone (GitHub's 422 "Reference does not exist", or 404).
    pub async fn delete_branch(&self, branch: &str) -> Result<bool, GitHubError> {
        let req = self
            .request(
                Method::DELETE,
                "/repos/{owner}/{repo}/git/refs/{ref}",
                &format!("/git/refs/{}", text::ref_path(&format!("heads/{branch}"))),
            )
            .await?;
        let resp = self.gh.send(&req).await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            StatusCode::UNPROCESSABLE_ENTITY
                if resp
                    .error_body()
                    .message
                    .contains("Reference does not exist") =>
            {
                Ok(false)
            }
            _ => Err(resp.error()),
        }
    }
}
