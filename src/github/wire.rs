//! GitHub's JSON, as far as cairn reads it: private structs naming only the
//! fields used; serde skips the rest. Fields GitHub may omit or send as `null`
//! are `Option` or defaulted.

use serde::Deserialize;

use super::model::{
    CheckRun, Comment, CommitStatus, Installation, MergeableState, PullRequest, PullState,
    Repository,
};

#[derive(Debug, Deserialize)]
pub(crate) struct AccountWire {
    pub login: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RepositoryWire {
    pub id: u64,
    pub name: String,
    pub full_name: String,
    pub owner: AccountWire,
    #[serde(default)]
    pub default_branch: Option<String>,
    pub clone_url: String,
    pub html_url: String,
}

impl From<RepositoryWire> for Repository {
    fn from(w: RepositoryWire) -> Repository {
        Repository {
            id: w.id,
            owner: w.owner.login,
            name: w.name,
            full_name: w.full_name,
            // An empty repository has no default branch yet; GitHub names "main".
            default_branch: w.default_branch.unwrap_or_else(|| "main".to_owned()),
            clone_url: w.clone_url,
            html_url: w.html_url,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct BranchWire {
    #[serde(rename = "ref")]
    pub ref_name: String,
    pub sha: String,
    /// `null` when the head repository (a fork) was deleted.
    #[serde(default)]
    pub repo: Option<BranchRepoWire>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct BranchRepoWire {
    pub full_name: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PullWire {
    pub number: u64,
    pub state: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    pub html_url: String,
    pub head: BranchWire,
    pub base: BranchWire,
    #[serde(default)]
    pub draft: Option<bool>,
    #[serde(default)]
    pub merged: Option<bool>,
    #[serde(default)]
    pub merged_at: Option<String>,
    #[serde(default)]
    pub mergeable: Option<bool>,
    #[serde(default)]
    pub mergeable_state: Option<String>,
    #[serde(default)]
    pub merge_commit_sha: Option<String>,
}

impl From<PullWire> for PullRequest {
    fn from(w: PullWire) -> PullRequest {
        PullRequest {
            number: w.number,
            state: if w.state == "open" {
                PullState::Open
            } else {
                PullState::Closed
            },
            title: w.title,
            body: w.body,
            html_url: w.html_url,
            head_ref: w.head.ref_name,
            head_sha: w.head.sha,
            head_repo: w.head.repo.map(|r| r.full_name),
            base_ref: w.base.ref_name,
            draft: w.draft.unwrap_or(false),
            merged: w.merged.unwrap_or(w.merged_at.is_some()),
            mergeable: w.mergeable,
            mergeable_state: MergeableState::from_wire(w.mergeable_state.as_deref()),
            merge_commit_sha: w.merge_commit_sha,
        }
    }
}

/// `PUT .../merge` on success.
#[derive(Debug, Deserialize)]
pub(crate) struct MergeWire {
    pub sha: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct StatusWire {
    pub state: String,
    #[serde(default)]
    pub context: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub target_url: Option<String>,
}

impl StatusWire {
    pub fn into_status(self) -> Option<CommitStatus> {
        Some(CommitStatus {
            state: super::model::StatusState::from_wire(&self.state)?,
            context: self.context,
            description: self.description,
            target_url: self.target_url,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CombinedStatusWire {
    pub state: String,
    #[serde(default)]
    pub statuses: Vec<StatusWire>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CheckRunWire {
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub conclusion: Option<String>,
}

impl From<CheckRunWire> for CheckRun {
    fn from(w: CheckRunWire) -> CheckRun {
        CheckRun {
            name: w.name,
            status: w.status,
            conclusion: w.conclusion,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CheckRunsWire {
    #[serde(default)]
    pub check_runs: Vec<CheckRunWire>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CommentWire {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub user: Option<AccountWire>,
    pub html_url: String,
}

impl From<CommentWire> for Comment {
    fn from(w: CommentWire) -> Comment {
        Comment {
            id: w.id,
            body: w.body.unwrap_or_default(),
            author: w.user.map(|u| u.login).unwrap_or_default(),
            html_url: w.html_url,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct PermissionWire {
    pub permission: String,
    #[serde(default)]
    pub role_name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct InstallationWire {
    pub id: u64,
    #[serde(default)]
    pub account: Option<AccountWire>,
    #[serde(default)]
    pub repository_selection: Option<String>,
}

impl From<InstallationWire> for Installation {
    fn from(w: InstallationWire) -> Installation {
        Installation {
            id: w.id,
            account: w.account.map(|a| a.login).unwrap_or_default(),
            repository_selection: w.repository_selection.unwrap_or_default(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct InstallationRepositoriesWire {
    #[serde(default)]
    pub repositories: Vec<RepositoryWire>,
}

/// `POST /app/installations/{id}/access_tokens`. Not `Debug`: it holds a token.
#[derive(Deserialize)]
pub(crate) struct AccessTokenWire {
    pub token: String,
    pub expires_at: String,
}

/// GitHub's error body: `{"message": ..., "errors": [...], "documentation_url": ...}`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorWire {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub errors: Vec<ErrorDetailWire>,
}

/// One entry of `errors`: an object (`{"resource", "field", "code", "message"}`)
/// or, on some endpoints, a bare string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ErrorDetailWire {
    Text(String),
    Detail {
        #[serde(default)]
        resource: Option<String>,
        #[serde(default)]
        field: Option<String>,
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        message: Option<String>,
    },
}

impl ErrorWire {
    /// `Validation Failed (PullRequest: A pull request already exists for o:b.)`.
    pub fn summary(&self) -> String {
        let details: Vec<String> = self
            .errors
            .iter()
            .map(|d| match d {
                ErrorDetailWire::Text(text) => text.clone(),
                ErrorDetailWire::Detail {
                    resource,
                    field,
                    code,
                    message,
                } => {
                    let what = match (resource, field) {
                        (Some(r), Some(f)) => format!("{r}.{f}"),
                        (Some(r), None) => r.clone(),
                        (None, Some(f)) => f.clone(),
                        (None, None) => String::new(),
                    };
                    let text = message.clone().or_else(|| code.clone()).unwrap_or_default();
                    if what.is_empty() {
                        text
                    } else {
                        format!("{what}: {text}")
                    }
                }
            })
            .filter(|d| !d.is_empty())
            .collect();
        match (self.message.is_empty(), details.is_empty()) {
            (_, true) => self.message.clone(),
            (true, false) => details.join("; "),
            (false, false) => format!("{} ({})", self.message, details.join("; ")),
        }
    }

    /// The messages of `errors`, to look for a known one.
    pub fn detail_messages(&self) -> impl Iterator<Item = &str> {
        self.errors.iter().filter_map(|d| match d {
            ErrorDetailWire::Text(text) => Some(text.as_str()),
            ErrorDetailWire::Detail { message, .. } => message.as_deref(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_summary() {
        let body = r#"{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom","message":"A pull request already exists for octo:cairn/daily."}],"documentation_url":"https://docs.github.com/rest/pulls/pulls#create-a-pull-request","status":"422"}"#;
        let e: ErrorWire = serde_json::from_str(body).unwrap();
        assert_eq!(
            e.summary(),
            "Validation Failed (PullRequest: A pull request already exists for octo:cairn/daily.)"
        );
        assert_eq!(
            e.detail_messages().collect::<Vec<_>>(),
            ["A pull request already exists for octo:cairn/daily."]
        );
        let e: ErrorWire = serde_json::from_str(
            r#"{"message":"Validation Failed","errors":[{"resource":"PullRequest","field":"head","code":"invalid"}, "plain"]}"#,
        )
        .unwrap();
        assert_eq!(
            e.summary(),
            "Validation Failed (PullRequest.head: invalid; plain)"
        );
        let e: ErrorWire = serde_json::from_str(r#"{"message":"Not Found"}"#).unwrap();
        assert_eq!(e.summary(), "Not Found");
    }

    #[test]
    fn list_pull_without_merge_fields() {
        let body = r#"{"number":3,"state":"open","title":"t","body":null,"html_url":"h",
            "head":{"ref":"cairn/x","sha":"abc","label":"o:cairn/x"},
            "base":{"ref":"main","sha":"def"},"draft":false,"merged_at":null}"#;
        let pull: PullRequest = serde_json::from_str::<PullWire>(body).unwrap().into();
        assert_eq!(pull.mergeable, None);
        assert_eq!(pull.mergeable_state, MergeableState::Unknown);
        assert!(!pull.merged);
        assert!(pull.is_open());
        assert_eq!(pull.head_ref, "cairn/x");
    }
}
