//! A fake GitHub REST API for tests: an axum server on 127.0.0.1 that speaks
//! GitHub's JSON wire format (field names and types as in the REST docs) for
//! the endpoints cairn's client calls, with its state in memory, open to the
//! test. None of this ships.
//!
//! - Repositories are backed by real bare git repositories on disk, given by
//!   the test; their `clone_url` is that directory's `file://` URL, so git
//!   pushes go straight to it. Mergeability and merges are computed with git2
//!   on those repositories.
//! - Authentication: every request needs `Authorization`. Tokens accepted with
//!   [`FakeGitHub::accept_token`]; with [`FakeGitHub::enable_app`], `/app`
//!   endpoints (and `/repos/{o}/{r}/installation`) verify the App's JWT (RS256,
//!   `iss` = the app id, not expired, at most 10 minutes ahead) against the
//!   given public key, and installation tokens are minted with an `expires_at`
//!   of a configurable lifetime; an expired one is refused with 401.
//! - Faults: [`FakeGitHub::inject`] makes the next N matching requests answer
//!   with a given status, headers and body, before authentication.
//! - Every request is logged ([`FakeGitHub::requests`]).
//!
//! Differences from GitHub, on purpose: the `merge` method fast-forwards the
//! base when it can (GitHub always writes a merge commit); `rebase` only
//! fast-forwards; required contexts are set per repository
//! ([`FakeGitHub::require_contexts`]), not by branch protection rules.
//!
//! Include it from a test with `#[path = "support/fake_github.rs"] mod fake_github;`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{MatchedPath, Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use axum::{Extension, Router};
use octocrab::jsonwebtoken::{self, Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

const DOCS: &str = "https://docs.github.com/rest";

/// A running fake; the server stops when it is dropped.
pub struct FakeGitHub {
    /// `http://127.0.0.1:PORT`: the API URL to give the client.
    pub url: String,
    world: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

type Shared = Arc<Mutex<World>>;

/// Everything the fake knows. Tests may read and change it through
/// [`FakeGitHub::world`].
#[derive(Default)]
pub struct World {
    /// `owner/name` (lowercase) -> repository.
    pub repos: BTreeMap<String, FakeRepo>,
    /// Tokens accepted as a user's (PATs).
    pub tokens: BTreeSet<String>,
    /// The login of the tokens' user.
    pub token_user: String,
    pub app: Option<FakeApp>,
    pub installations: BTreeMap<u64, FakeInstallation>,
    /// Installation tokens minted: token -> (installation, expiry).
    pub issued: HashMap<String, IssuedToken>,
    pub faults: Vec<Fault>,
    pub log: Vec<LoggedRequest>,
    base_url: String,
    next_id: u64,
}

impl World {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn repo(&self, full_name: &str) -> Option<&FakeRepo> {
        self.repos.get(&full_name.to_lowercase())
    }

    pub fn repo_mut(&mut self, full_name: &str) -> Option<&mut FakeRepo> {
        self.repos.get_mut(&full_name.to_lowercase())
    }
}

pub struct FakeApp {
    pub id: u64,
    pub slug: String,
    key: DecodingKey,
    /// Lifetime of the installation tokens it mints.
    pub token_lifetime: Duration,
}

#[derive(Debug, Clone)]
pub struct FakeInstallation {
    pub id: u64,
    pub account: String,
    /// Full names of the repositories it covers.
    pub repos: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub installation_id: u64,
    pub expires_at: SystemTime,
}

#[derive(Debug, Clone)]
pub struct FakeRepo {
    pub id: u64,
    pub owner: String,
    pub name: String,
    pub default_branch: String,
    /// The bare git repository behind it.
    pub git_dir: PathBuf,
    pub pulls: BTreeMap<u64, FakePull>,
    /// Plain issues (numbers shared with pull requests).
    pub issues: BTreeSet<u64>,
    /// sha -> statuses, oldest first.
    pub statuses: HashMap<String, Vec<FakeStatus>>,
    /// sha -> check runs.
    pub check_runs: HashMap<String, Vec<FakeCheckRun>>,
    /// Issue and pull request comments, oldest first.
    pub comments: Vec<FakeComment>,
    /// login -> role (`admin`, `maintain`, `write`, `triage`, `read`).
    pub permissions: HashMap<String, String>,
    /// Contexts (statuses or check runs) that must be `success` before a merge.
    pub required_contexts: Vec<String>,
    /// Branch protection's "require branches to be up to date": a head that
    /// does not contain the base is `behind`.
    pub strict: bool,
    next_number: u64,
}

#[derive(Debug, Clone)]
pub struct FakePull {
    pub number: u64,
    pub id: u64,
    pub title: String,
    pub body: Option<String>,
    pub head: String,
    pub base: String,
    pub user: Login,
    /// `open` or `closed`.
    pub state: String,
    pub draft: bool,
    pub merged: bool,
    pub merge_commit_sha: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub closed_at: Option<String>,
    pub merged_at: Option<String>,
    /// The head sha last seen (reported once the branch is gone).
    pub head_sha: String,
    /// Further `GET`s that answer `mergeable: null` ("still computing").
    pub computing: u32,
    /// `owner/name` of the fork the head branch lives in; `None`: this
    /// repository.
    pub head_repo: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FakeStatus {
    pub id: u64,
    pub state: String,
    pub context: String,
    pub description: Option<String>,
    pub target_url: Option<String>,
    pub creator: Login,
    pub created_at: String,
}

#[derive(Debug, Clone)]
pub struct FakeCheckRun {
    pub id: u64,
    pub name: String,
    pub status: String,
    pub conclusion: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FakeComment {
    pub id: u64,
    pub issue: u64,
    pub body: String,
    pub user: Login,
    pub created_at: String,
    pub updated_at: String,
    pub reactions: Vec<FakeReaction>,
}

#[derive(Debug, Clone)]
pub struct FakeReaction {
    pub id: u64,
    pub user: Login,
    pub content: String,
}

/// A user or bot account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub login: String,
    /// `User`, `Bot` or `Organization`.
    pub kind: String,
}

impl Login {
    pub fn user(login: &str) -> Login {
        Login {
            login: login.to_owned(),
            kind: "User".to_owned(),
        }
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub status: u16,
    /// The bearer credential it carried (token or JWT), if any.
    pub bearer: Option<String>,
}

/// An injected answer: the next `times` requests matching `method` and
/// `route` get `status`, `headers` and `body` instead of being served.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: Option<Method>,
    /// A route template (`/repos/{owner}/{repo}/pulls`), an exact path, or a
    /// path prefix ending in `*`; `None`: any request.
    pub route: Option<String>,
    pub times: u32,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Serve the request first, then answer with the fault instead: a write
    /// that happened but whose answer was lost.
    pub after: bool,
}

impl Fault {
    /// One answer with `status` and a GitHub-shaped error body, on any request.
    pub fn status(status: u16) -> Fault {
        let reason = StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error");
        Fault {
            method: None,
            route: None,
            times: 1,
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body:
                json!({"message": reason, "documentation_url": DOCS, "status": status.to_string()})
                    .to_string(),
            after: false,
        }
    }

    /// Serve the request, then answer with this fault (see [`Fault::after`]).
    pub fn after_serving(mut self) -> Fault {
        self.after = true;
        self
    }

    /// A 429 with `Retry-After: secs`.
    pub fn retry_after(secs: u64) -> Fault {
        Fault::status(429)
            .header("retry-after", &secs.to_string())
            .body(json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", "documentation_url": DOCS}))
    }

    /// A 403 secondary rate limit without `Retry-After`.
    pub fn secondary_rate_limit() -> Fault {
        Fault::status(403).body(json!({
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.",
            "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            "status": "403"
        }))
    }

    /// A 403 primary rate limit: no requests left until `reset`.
    pub fn primary_rate_limit(reset: SystemTime) -> Fault {
        let reset = reset
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        Fault::status(403)
            .header("x-ratelimit-limit", "5000")
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-used", "5000")
            .header("x-ratelimit-reset", &reset.to_string())
            .header("x-ratelimit-resource", "core")
            .body(json!({
                "message": "API rate limit exceeded for installation ID 1.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                "status": "403"
            }))
    }

    /// Only requests with this method to this route (see [`Fault::route`]).
    pub fn on(mut self, method: &str, route: &str) -> Fault {
        self.method = Method::from_bytes(method.as_bytes()).ok();
        self.route = Some(route.to_owned());
        self
    }

    pub fn times(mut self, times: u32) -> Fault {
        self.times = times;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Fault {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: Value) -> Fault {
        self.body = body.to_string();
        self
    }

    fn matches(&self, method: &Method, template: Option<&str>, path: &str) -> bool {
        if self.times == 0 || self.method.as_ref().is_some_and(|m| m != method) {
            return false;
        }
        match &self.route {
            None => true,
            Some(route) => match route.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => route == path || Some(route.as_str()) == template,
            },
        }
    }

    fn response(&self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, self.body.clone()).into_response();
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

impl FakeGitHub {
    /// Starts a fake with nothing in it: no repositories, no accepted token.
    pub async fn start() -> FakeGitHub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake GitHub");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let world: Shared = Arc::new(Mutex::new(World {
            token_user: "cairn-bot".to_owned(),
            base_url: url.clone(),
            ..World::default()
        }));
        let app = router(world.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeGitHub { url, world, server }
    }

    /// The state, locked. Do not hold it across an `.await`.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Accepts `token` as the token of user [`World::token_user`].
    pub fn accept_token(&self, token: &str) {
        self.world().tokens.insert(token.to_owned());
    }

    /// Turns on GitHub App authentication: JWTs signed by the private key of
    /// `public_key_pem`, with `iss` = `app_id`. Installation tokens live an hour
    /// unless [`FakeGitHub::set_token_lifetime`] says otherwise.
    pub fn enable_app(&self, app_id: u64, slug: &str, public_key_pem: &[u8]) {
        let key = DecodingKey::from_rsa_pem(public_key_pem).expect("an RSA public key in PEM");
        self.world().app = Some(FakeApp {
            id: app_id,
            slug: slug.to_owned(),
            key,
            token_lifetime: Duration::from_secs(3600),
        });
    }

    pub fn set_token_lifetime(&self, lifetime: Duration) {
        if let Some(app) = self.world().app.as_mut() {
            app.token_lifetime = lifetime;
        }
    }

    /// Adds repository `owner/name` backed by the bare repository `git_dir`.
    pub fn add_repo(&self, owner: &str, name: &str, default_branch: &str, git_dir: &Path) {
        let mut world = self.world();
        let id = world.id();
        world.repos.insert(
            format!("{owner}/{name}").to_lowercase(),
            FakeRepo {
                id,
                owner: owner.to_owned(),
                name: name.to_owned(),
                default_branch: default_branch.to_owned(),
                git_dir: git_dir.to_owned(),
                pulls: BTreeMap::new(),
                issues: BTreeSet::new(),
                statuses: HashMap::new(),
                check_runs: HashMap::new(),
                comments: Vec::new(),
                permissions: HashMap::new(),
                required_contexts: Vec::new(),
                strict: false,
                next_number: 1,
            },
        );
    }

    /// Installs the App on `account` for the repositories `repos` (full names).
    pub fn add_installation(&self, id: u64, account: &str, repos: &[&str]) {
        self.world().installations.insert(
            id,
            FakeInstallation {
                id,
                account: account.to_owned(),
                repos: repos.iter().map(|r| (*r).to_owned()).collect(),
            },
        );
    }

    pub fn require_contexts(&self, repo: &str, contexts: &[&str]) {
        self.with_repo(repo, |r| {
            r.required_contexts = contexts.iter().map(|c| (*c).to_owned()).collect()
        });
    }

    /// Sets (or replaces, by name) a check run on `sha`.
    pub fn set_check_run(
        &self,
        repo: &str,
        sha: &str,
        name: &str,
        status: &str,
        conclusion: Option<&str>,
    ) {
        let mut world = self.world();
        let id = world.id();
        let repo = world.repo_mut(repo).expect("repository");
        let runs = repo.check_runs.entry(sha.to_owned()).or_default();
        runs.retain(|r| r.name != name);
        runs.push(FakeCheckRun {
            id,
            name: name.to_owned(),
            status: status.to_owned(),
            conclusion: conclusion.map(str::to_owned),
        });
    }

    /// Sets a commit status as another integration would.
    pub fn set_status(&self, repo: &str, sha: &str, context: &str, state: &str) {
        let mut world = self.world();
        let id = world.id();
        let repo = world.repo_mut(repo).expect("repository");
        repo.statuses
            .entry(sha.to_owned())
            .or_default()
            .push(FakeStatus {
                id,
                state: state.to_owned(),
                context: context.to_owned(),
                description: None,
                target_url: None,
                creator: Login::user("ci"),
                created_at: now_text(),
            });
    }

    pub fn set_permission(&self, repo: &str, user: &str, role: &str) {
        self.with_repo(repo, |r| {
            r.permissions.insert(user.to_owned(), role.to_owned());
        });
    }

    /// Opens an issue; returns its number.
    pub fn add_issue(&self, repo: &str) -> u64 {
        self.with_repo(repo, |r| {
            let number = r.next_number;
            r.next_number += 1;
            r.issues.insert(number);
            number
        })
    }

    /// A comment by `user` on issue or pull request `issue`; returns its id.
    pub fn add_comment(&self, repo: &str, issue: u64, user: &str, body: &str) -> u64 {
        let mut world = self.world();
        let id = world.id();
        let repo = world.repo_mut(repo).expect("repository");
        repo.comments.push(FakeComment {
            id,
            issue,
            body: body.to_owned(),
            user: Login::user(user),
            created_at: now_text(),
            updated_at: now_text(),
            reactions: Vec::new(),
        });
        id
    }

    /// Opens a pull request by `user` from branch `head` of the fork
    /// `fork` (`owner/name`, which the fake does not host) into `base`;
    /// returns its number. Only its description is served.
    pub fn add_fork_pull(&self, repo: &str, fork: &str, head: &str, base: &str, user: &str) -> u64 {
        let mut world = self.world();
        let id = world.id();
        let r = world.repo_mut(repo).expect("repository");
        let number = r.next_number;
        r.next_number += 1;
        let now = now_text();
        r.pulls.insert(
            number,
            FakePull {
                number,
                id,
                title: format!("Changes from {fork}"),
                body: None,
                head: head.to_owned(),
                base: base.to_owned(),
                user: Login::user(user),
                state: "open".into(),
                draft: false,
                merged: false,
                merge_commit_sha: None,
                created_at: now.clone(),
                updated_at: now,
                closed_at: None,
                merged_at: None,
                head_sha: "0123456789abcdef0123456789abcdef01234567".into(),
                computing: 0,
                head_repo: Some(fork.to_owned()),
            },
        );
        number
    }

    /// The next `gets` reads of pull request `number` answer `mergeable: null`.
    pub fn set_computing(&self, repo: &str, number: u64, gets: u32) {
        self.with_repo(repo, |r| {
            if let Some(pull) = r.pulls.get_mut(&number) {
                pull.computing = gets;
            }
        });
    }

    pub fn inject(&self, fault: Fault) {
        self.world().faults.push(fault);
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.world().log.clone()
    }

    pub fn clear_log(&self) {
        self.world().log.clear();
    }

    pub fn pull(&self, repo: &str, number: u64) -> Option<FakePull> {
        self.world().repo(repo)?.pulls.get(&number).cloned()
    }

    pub fn pulls(&self, repo: &str) -> Vec<FakePull> {
        self.world()
            .repo(repo)
            .map(|r| r.pulls.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Statuses set on `sha`, oldest first.
    pub fn statuses(&self, repo: &str, sha: &str) -> Vec<FakeStatus> {
        self.world()
            .repo(repo)
            .and_then(|r| r.statuses.get(sha).cloned())
            .unwrap_or_default()
    }

    /// Comments on issue or pull request `issue`, oldest first.
    pub fn comments(&self, repo: &str, issue: u64) -> Vec<FakeComment> {
        self.world()
            .repo(repo)
            .map(|r| {
                r.comments
                    .iter()
                    .filter(|c| c.issue == issue)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn with_repo<R>(&self, repo: &str, f: impl FnOnce(&mut FakeRepo) -> R) -> R {
        let mut world = self.world();
        f(world.repo_mut(repo).expect("repository"))
    }
}

/// Git helpers for the bare repositories behind the fake.
pub mod git {
    use std::path::{Path, PathBuf};

    use git2::{Oid, Repository, RepositoryInitOptions, Signature};

    /// A new bare repository at `dir` whose HEAD names `branch`.
    pub fn init_bare(dir: &Path, branch: &str) -> PathBuf {
        let mut opts = RepositoryInitOptions::new();
        opts.bare(true).initial_head(branch);
        Repository::init_opts(dir, &opts).expect("git init --bare");
        dir.to_owned()
    }

    /// `file://` URL of a repository directory.
    pub fn file_url(dir: &Path) -> String {
        format!("file://{}", dir.display())
    }

    /// Commits `files` (path -> content; `/` makes folders) on top of
    /// `branch` (created when missing, from `from` if given), and moves the
    /// branch. Returns the new commit's sha. A file that starts with `#!` is
    /// committed executable, as scripts are.
    pub fn commit(
        git_dir: &Path,
        branch: &str,
        from: Option<&str>,
        files: &[(&str, &str)],
        message: &str,
    ) -> String {
        let repo = Repository::open(git_dir).expect("open repository");
        let parent = match branch_sha(git_dir, branch) {
            Some(sha) => Some(sha),
            None => from.map(|f| branch_sha(git_dir, f).unwrap_or_else(|| f.to_owned())),
        };
        let parent = parent.map(|sha| {
            repo.find_commit(Oid::from_str(&sha).expect("sha"))
                .expect("parent commit")
        });
        let mut tree = parent.as_ref().map(|c| c.tree().expect("tree").id());
        for (path, content) in files {
            let blob = repo.blob(content.as_bytes()).expect("blob");
            let mode = if content.starts_with("#!") {
                0o100755
            } else {
                0o100644
            };
            tree = Some(put(&repo, tree, path, blob, mode));
        }
        let tree = repo
            .find_tree(tree.unwrap_or_else(|| {
                repo.treebuilder(None)
                    .expect("treebuilder")
                    .write()
                    .expect("empty tree")
            }))
            .expect("tree");
        let sig = Signature::now("Test Author", "test@example.com").expect("signature");
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let oid = repo
            .commit(
                Some(&format!("refs/heads/{branch}")),
                &sig,
                &sig,
                message,
                &tree,
                &parents,
            )
            .expect("commit");
        oid.to_string()
    }

    /// Writes `blob` at `path` with `mode` into the tree `base` (none:
    /// empty); returns the new tree.
    fn put(repo: &Repository, base: Option<Oid>, path: &str, blob: Oid, mode: i32) -> Oid {
        let base_tree = base.map(|id| repo.find_tree(id).expect("tree"));
        let mut builder = repo.treebuilder(base_tree.as_ref()).expect("treebuilder");
        match path.split_once('/') {
            None => {
                builder.insert(path, blob, mode).expect("insert blob");
            }
            Some((dir, rest)) => {
                let sub = base_tree
                    .as_ref()
                    .and_then(|t| t.get_name(dir))
                    .filter(|e| e.kind() == Some(git2::ObjectType::Tree))
                    .map(|e| e.id());
                let sub = put(repo, sub, rest, blob, mode);
                builder.insert(dir, sub, 0o040000).expect("insert tree");
            }
        }
        builder.write().expect("write tree")
    }

    /// The commit `branch` points at.
    pub fn branch_sha(git_dir: &Path, branch: &str) -> Option<String> {
        let repo = Repository::open(git_dir).ok()?;
        let reference = repo.find_reference(&format!("refs/heads/{branch}")).ok()?;
        reference.target().map(|oid| oid.to_string())
    }

    /// Whether commit `ancestor` is reachable from `descendant` (or equal).
    pub fn is_ancestor(git_dir: &Path, ancestor: &str, descendant: &str) -> bool {
        let Ok(repo) = Repository::open(git_dir) else {
            return false;
        };
        let (Ok(a), Ok(d)) = (Oid::from_str(ancestor), Oid::from_str(descendant)) else {
            return false;
        };
        a == d || repo.graph_descendant_of(d, a).unwrap_or(false)
    }

    /// The parents of a commit.
    pub fn parents(git_dir: &Path, sha: &str) -> Vec<String> {
        let repo = Repository::open(git_dir).expect("open repository");
        let commit = repo
            .find_commit(Oid::from_str(sha).expect("sha"))
            .expect("commit");
        commit.parent_ids().map(|p| p.to_string()).collect()
    }

    /// The full message of a commit.
    pub fn message(git_dir: &Path, sha: &str) -> String {
        let repo = Repository::open(git_dir).expect("open repository");
        let commit = repo
            .find_commit(Oid::from_str(sha).expect("sha"))
            .expect("commit");
        commit.message().unwrap_or_default().to_owned()
    }

    /// The content of `path` at commit-ish `rev`.
    pub fn read_file(git_dir: &Path, rev: &str, path: &str) -> Option<String> {
        let repo = Repository::open(git_dir).ok()?;
        let commit = repo.revparse_single(rev).ok()?.peel_to_commit().ok()?;
        let entry = commit.tree().ok()?.get_path(Path::new(path)).ok()?;
        let blob = repo.find_blob(entry.id()).ok()?;
        Some(String::from_utf8_lossy(blob.content()).into_owned())
    }
}

// ---------------------------------------------------------------------------
// The server.

/// Who a request authenticated as.
#[derive(Debug, Clone)]
enum Caller {
    /// A user's token.
    User(Login),
    /// The App itself (a JWT).
    App,
    /// An installation token.
    Installation(u64),
}

fn router(world: Shared) -> Router {
    Router::new()
        .route("/app/installations", get(list_installations))
        .route(
            "/app/installations/{installation_id}/access_tokens",
            post(create_access_token),
        )
        .route("/installation/repositories", get(installation_repositories))
        .route("/repos/{owner}/{repo}", get(get_repo))
        .route("/repos/{owner}/{repo}/installation", get(repo_installation))
        .route(
            "/repos/{owner}/{repo}/pulls",
            get(list_pulls).post(create_pull),
        )
        .route(
            "/repos/{owner}/{repo}/pulls/{number}",
            get(get_pull).patch(update_pull),
        )
        .route(
            "/repos/{owner}/{repo}/pulls/{number}/merge",
            put(merge_pull),
        )
        .route("/repos/{owner}/{repo}/statuses/{sha}", post(create_status))
        .route(
            "/repos/{owner}/{repo}/commits/{reference}/status",
            get(combined_status),
        )
        .route(
            "/repos/{owner}/{repo}/commits/{reference}/check-runs",
            get(list_check_runs),
        )
        .route(
            "/repos/{owner}/{repo}/issues/{number}/comments",
            get(list_comments).post(create_comment),
        )
        .route(
            "/repos/{owner}/{repo}/issues/comments/{comment_id}",
            patch(edit_comment),
        )
        .route(
            "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
            post(create_reaction),
        )
        .route(
            "/repos/{owner}/{repo}/collaborators/{username}/permission",
            get(collaborator_permission),
        )
        .route(
            "/repos/{owner}/{repo}/git/refs/{*reference}",
            delete(delete_ref),
        )
        .fallback(|| async { error(StatusCode::NOT_FOUND, "Not Found") })
        .layer(middleware::from_fn_with_state(world.clone(), gatekeeper))
        .with_state(world)
}

fn lock(world: &Shared) -> MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|p| p.into_inner())
}

/// Faults, authentication and the request log, around every request.
async fn gatekeeper(State(world): State<Shared>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
                .unwrap_or(v)
                .to_owned()
        });
    let log = |world: &Shared, status: StatusCode| {
        lock(world).log.push(LoggedRequest {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            status: status.as_u16(),
            bearer: bearer.clone(),
        });
    };

    let fault = {
        let mut w = lock(&world);
        w.faults
            .iter_mut()
            .find(|f| f.matches(&method, template.as_deref(), &path))
            .map(|f| {
                f.times -= 1;
                (f.response(), f.after)
            })
    };
    let after = match fault {
        Some((response, false)) => {
            log(&world, response.status());
            return response;
        }
        Some((response, true)) => Some(response),
        None => None,
    };

    let caller = authenticate(&lock(&world), bearer.as_deref(), &path);
    let response = match caller {
        Err(reject) => reject.into_response(),
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
    };
    match after {
        Some(replacement) => {
            log(&world, replacement.status());
            replacement
        }
        None => {
            log(&world, response.status());
            response
        }
    }
}

fn authenticate(world: &World, bearer: Option<&str>, path: &str) -> Result<Caller, Reject> {
    let Some(bearer) = bearer else {
        return Err(reject(StatusCode::UNAUTHORIZED, "Requires authentication"));
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let needs_jwt = segments.first() == Some(&"app")
        || (segments.len() == 4 && segments[0] == "repos" && segments[3] == "installation");
    if needs_jwt {
        let Some(app) = &world.app else {
            return Err(reject(StatusCode::NOT_FOUND, "Not Found"));
        };
        return verify_jwt(app, bearer).map(|()| Caller::App);
    }
    if world.tokens.contains(bearer) {
        return Ok(Caller::User(Login::user(&world.token_user)));
    }
    let Some(issued) = world.issued.get(bearer) else {
        // A JWT where a token is wanted, or an unknown token.
        let message = if bearer.matches('.').count() == 2 {
            "A JSON web token could not be decoded"
        } else {
            "Bad credentials"
        };
        return Err(reject(StatusCode::UNAUTHORIZED, message));
    };
    if issued.expires_at <= SystemTime::now() {
        return Err(reject(StatusCode::UNAUTHORIZED, "Bad credentials"));
    }
    // An installation reaches only its repositories; others look absent.
    if segments.len() >= 3 && segments[0] == "repos" {
        let full = format!("{}/{}", segments[1], segments[2]);
        let covered = world
            .installations
            .get(&issued.installation_id)
            .is_some_and(|i| i.repos.iter().any(|r| r.eq_ignore_ascii_case(&full)));
        if !covered {
            return Err(reject(StatusCode::NOT_FOUND, "Not Found"));
        }
    }
    Ok(Caller::Installation(issued.installation_id))
}

fn verify_jwt(app: &FakeApp, jwt: &str) -> Result<(), Reject> {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_aud = false;
    validation.leeway = 0;
    // `iss` is checked below: jsonwebtoken only knows it as a string, and
    // GitHub's (and octocrab's) is a number.
    validation.set_required_spec_claims(&["exp", "iat"]);
    let data = jsonwebtoken::decode::<Value>(jwt, &app.key, &validation).map_err(|e| {
        let message = match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
            _ => "A JSON web token could not be decoded",
        };
        reject(StatusCode::UNAUTHORIZED, message)
    })?;
    let iss = match &data.claims["iss"] {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    match iss {
        None => {
            return Err(reject(
                StatusCode::UNAUTHORIZED,
                "'Issuer' claim ('iss') must be an Integer",
            ))
        }
        // Another app: its key would not verify this signature.
        Some(id) if id != app.id => {
            return Err(reject(
                StatusCode::UNAUTHORIZED,
                "A JSON web token could not be decoded",
            ))
        }
        Some(_) => {}
    }
    let exp = data.claims["exp"].as_u64().unwrap_or(0);
    if exp > unix_now() + 600 {
        return Err(reject(
            StatusCode::UNAUTHORIZED,
            "'Expiration time' claim ('exp') is too far in the future",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Wire helpers.

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn time_text(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn now_text() -> String {
    time_text(SystemTime::now())
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "message": message,
            "documentation_url": DOCS,
            "status": status.as_u16().to_string(),
        })),
    )
        .into_response()
}

/// A refusal, made a GitHub error response by `into_response`.
struct Reject {
    status: StatusCode,
    message: &'static str,
}

fn reject(status: StatusCode, message: &'static str) -> Reject {
    Reject { status, message }
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        error(self.status, self.message)
    }
}

/// GitHub's 422 with `errors`.
fn validation_failed(errors: Value) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(json!({
            "message": "Validation Failed",
            "errors": errors,
            "documentation_url": DOCS,
            "status": "422",
        })),
    )
        .into_response()
}

fn respond(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// A request's JSON body (an empty body is `{}`); anything else that is not
/// JSON is answered 400 as GitHub does.
struct JsonBody(Value);

impl<S: Send + Sync> axum::extract::FromRequest<S> for JsonBody {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<JsonBody, Response> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        if body.is_empty() {
            return Ok(JsonBody(json!({})));
        }
        serde_json::from_slice(&body)
            .map(JsonBody)
            .map_err(|_| reject(StatusCode::BAD_REQUEST, "Problems parsing JSON").into_response())
    }
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found")
}

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

fn account_id(login: &str) -> u64 {
    // FNV-1a: a stable id per login.
    login.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    }) % 100_000_000
}

fn user_json(base: &str, who: &Login) -> Value {
    let id = account_id(&who.login);
    json!({
        "login": who.login,
        "id": id,
        "node_id": format!("U_{id}"),
        "avatar_url": format!("{base}/avatars/{}", who.login),
        "url": format!("{base}/users/{}", who.login),
        "html_url": format!("{base}/{}", who.login),
        "type": who.kind,
        "site_admin": false,
    })
}

fn repo_json(base: &str, r: &FakeRepo) -> Value {
    let full = format!("{}/{}", r.owner, r.name);
    json!({
        "id": r.id,
        "node_id": format!("R_{}", r.id),
        "name": r.name,
        "full_name": full,
        "private": false,
        "owner": user_json(base, &Login { login: r.owner.clone(), kind: "Organization".into() }),
        "html_url": format!("{base}/{full}"),
        "description": null,
        "fork": false,
        "url": format!("{base}/repos/{full}"),
        "clone_url": git::file_url(&r.git_dir),
        "default_branch": r.default_branch,
        "visibility": "public",
        "archived": false,
        "disabled": false,
    })
}

fn installation_json(base: &str, i: &FakeInstallation, app: &FakeApp) -> Value {
    json!({
        "id": i.id,
        "account": user_json(base, &Login { login: i.account.clone(), kind: "Organization".into() }),
        "repository_selection": "selected",
        "access_tokens_url": format!("{base}/app/installations/{}/access_tokens", i.id),
        "repositories_url": format!("{base}/installation/repositories"),
        "html_url": format!("{base}/organizations/{}/settings/installations/{}", i.account, i.id),
        "app_id": app.id,
        "app_slug": app.slug,
        "target_id": account_id(&i.account),
        "target_type": "Organization",
        "permissions": {"contents": "write", "pull_requests": "write", "statuses": "write", "issues": "write", "metadata": "read"},
        "events": ["push", "pull_request", "issue_comment"],
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "single_file_name": null,
        "suspended_at": null,
    })
}

/// One page of `items`, with GitHub's `Link` header (`first`, `prev`, `next`,
/// `last`) built from the request's own query.
fn paginate(
    base: &str,
    path: &str,
    query: &HashMap<String, String>,
    items: Vec<Value>,
) -> (HeaderMap, Vec<Value>) {
    let per_page = query
        .get("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = query
        .get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let last = items.len().div_ceil(per_page).max(1);
    let mut rest: Vec<(&String, &String)> = query
        .iter()
        .filter(|(k, _)| k.as_str() != "page" && k.as_str() != "per_page")
        .collect();
    rest.sort();
    let link = |n: usize, rel: &str| {
        let mut q: Vec<String> = rest
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        q.push(format!("per_page={per_page}"));
        q.push(format!("page={n}"));
        format!("<{base}{path}?{}>; rel=\"{rel}\"", q.join("&"))
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(link(page - 1, "prev"));
        links.push(link(1, "first"));
    }
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    let mut headers = HeaderMap::new();
    if !links.is_empty() {
        if let Ok(value) = HeaderValue::from_str(&links.join(", ")) {
            headers.insert(header::LINK, value);
        }
    }
    let items = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    (headers, items)
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn caller_login(world: &World, caller: &Caller) -> Login {
    match caller {
        Caller::User(login) => login.clone(),
        Caller::App | Caller::Installation(_) => Login {
            login: format!(
                "{}[bot]",
                world.app.as_ref().map(|a| a.slug.as_str()).unwrap_or("app")
            ),
            kind: "Bot".into(),
        },
    }
}

// ---------------------------------------------------------------------------
// App endpoints.

async fn list_installations(
    State(world): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let w = lock(&world);
    let Some(app) = &w.app else {
        return not_found();
    };
    let items = w
        .installations
        .values()
        .map(|i| installation_json(&w.base_url, i, app))
        .collect();
    let (headers, page) = paginate(&w.base_url, "/app/installations", &query, items);
    (headers, axum::Json(Value::Array(page))).into_response()
}

async fn create_access_token(
    State(world): State<Shared>,
    UrlPath(installation_id): UrlPath<u64>,
) -> Response {
    let mut w = lock(&world);
    let Some(app) = &w.app else {
        return not_found();
    };
    if !w.installations.contains_key(&installation_id) {
        return not_found();
    }
    // GitHub's expires_at has whole seconds; the fake enforces what it says.
    let expires_at = UNIX_EPOCH
        + Duration::from_secs(
            (SystemTime::now() + app.token_lifetime)
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
        );
    let token = format!(
        "ghs_fake{:012x}{:06}",
        unix_now(),
        NEXT_TOKEN.fetch_add(1, Ordering::Relaxed)
    );
    w.issued.insert(
        token.clone(),
        IssuedToken {
            installation_id,
            expires_at,
        },
    );
    respond(
        StatusCode::CREATED,
        json!({
            "token": token,
            "expires_at": time_text(expires_at),
            "permissions": {"contents": "write", "pull_requests": "write", "statuses": "write", "issues": "write", "metadata": "read"},
            "repository_selection": "selected",
        }),
    )
}

async fn installation_repositories(
    State(world): State<Shared>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let w = lock(&world);
    let Caller::Installation(id) = caller else {
        return error(
            StatusCode::FORBIDDEN,
            "You must authenticate with an installation access token in order to list repositories for an installation.",
        );
    };
    let Some(installation) = w.installations.get(&id) else {
        return not_found();
    };
    let items: Vec<Value> = installation
        .repos
        .iter()
        .filter_map(|full| w.repo(full))
        .map(|r| repo_json(&w.base_url, r))
        .collect();
    let total = items.len();
    let (headers, page) = paginate(&w.base_url, "/installation/repositories", &query, items);
    (
        headers,
        axum::Json(json!({
            "total_count": total,
            "repository_selection": "selected",
            "repositories": page,
        })),
    )
        .into_response()
}

async fn repo_installation(
    State(world): State<Shared>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
) -> Response {
    let w = lock(&world);
    let Some(app) = &w.app else {
        return not_found();
    };
    let full = format!("{owner}/{repo}");
    match w
        .installations
        .values()
        .find(|i| i.repos.iter().any(|r| r.eq_ignore_ascii_case(&full)))
    {
        Some(i) => respond(StatusCode::OK, installation_json(&w.base_url, i, app)),
        None => not_found(),
    }
}

// ---------------------------------------------------------------------------
// Repositories and pull requests.

async fn get_repo(
    State(world): State<Shared>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
) -> Response {
    let w = lock(&world);
    match w.repo(&format!("{owner}/{repo}")) {
        Some(r) => respond(StatusCode::OK, repo_json(&w.base_url, r)),
        None => not_found(),
    }
}

/// What git says about a pull request.
struct Mergeability {
    mergeable: Option<bool>,
    state: String,
    /// The first required context not `success`, and its state (`expected`
    /// when pending or missing, `failing` otherwise).
    missing: Option<(String, &'static str)>,
}

/// The latest state of `context` on `sha`: its last status, or its check run
/// (`success` for a completed run that succeeded, was neutral or skipped).
fn context_state(repo: &FakeRepo, sha: &str, context: &str) -> Option<String> {
    let status = repo
        .statuses
        .get(sha)
        .and_then(|list| list.iter().rev().find(|s| s.context == context))
        .map(|s| s.state.clone());
    let run = repo
        .check_runs
        .get(sha)
        .and_then(|runs| runs.iter().find(|r| r.name == context))
        .map(|r| match (r.status.as_str(), r.conclusion.as_deref()) {
            ("completed", Some("success" | "neutral" | "skipped")) => "success".to_owned(),
            ("completed", _) => "failure".to_owned(),
            _ => "pending".to_owned(),
        });
    status.or(run)
}

fn mergeability(repo: &FakeRepo, pull: &FakePull) -> Mergeability {
    let unknown = Mergeability {
        mergeable: None,
        state: "unknown".into(),
        missing: None,
    };
    if pull.state != "open" {
        return unknown;
    }
    let dirty = Mergeability {
        mergeable: Some(false),
        state: "dirty".into(),
        missing: None,
    };
    let (Some(head), Some(base)) = (
        git::branch_sha(&repo.git_dir, &pull.head),
        git::branch_sha(&repo.git_dir, &pull.base),
    ) else {
        return dirty;
    };
    let up_to_date = git::is_ancestor(&repo.git_dir, &base, &head);
    if !up_to_date && merge_tree(&repo.git_dir, &base, &head).is_none() {
        return dirty;
    }
    let missing = repo.required_contexts.iter().find_map(|context| {
        match context_state(repo, &head, context).as_deref() {
            Some("success") => None,
            Some("failure" | "error") => Some((context.clone(), "failing")),
            _ => Some((context.clone(), "expected")),
        }
    });
    let state = if pull.draft {
        "draft"
    } else if missing.is_some() {
        "blocked"
    } else if repo.strict && !up_to_date {
        "behind"
    } else if any_failing(repo, &head) {
        "unstable"
    } else {
        "clean"
    };
    Mergeability {
        mergeable: Some(true),
        state: state.into(),
        missing,
    }
}

fn any_failing(repo: &FakeRepo, sha: &str) -> bool {
    let mut contexts: BTreeSet<&str> = BTreeSet::new();
    if let Some(list) = repo.statuses.get(sha) {
        contexts.extend(list.iter().map(|s| s.context.as_str()));
    }
    if let Some(runs) = repo.check_runs.get(sha) {
        contexts.extend(runs.iter().map(|r| r.name.as_str()));
    }
    contexts.into_iter().any(|c| {
        matches!(
            context_state(repo, sha, c).as_deref(),
            Some("failure" | "error")
        )
    })
}

/// The tree of merging `head` into `base`, if it has no conflicts.
fn merge_tree(git_dir: &Path, base: &str, head: &str) -> Option<git2::Oid> {
    let repo = git2::Repository::open(git_dir).ok()?;
    let ours = repo.find_commit(git2::Oid::from_str(base).ok()?).ok()?;
    let theirs = repo.find_commit(git2::Oid::from_str(head).ok()?).ok()?;
    let mut index = repo.merge_commits(&ours, &theirs, None).ok()?;
    if index.has_conflicts() {
        return None;
    }
    index.write_tree_to(&repo).ok()
}

/// A pull request's `head`: in this repository, or in a fork.
fn head_json(base: &str, repo: &FakeRepo, pull: &FakePull, sha: &str, owner: &Login) -> Value {
    match &pull.head_repo {
        None => json!({
            "label": format!("{}:{}", repo.owner, pull.head),
            "ref": pull.head,
            "sha": sha,
            "user": user_json(base, owner),
            "repo": repo_json(base, repo),
        }),
        Some(fork) => {
            let fork_owner = fork.split('/').next().unwrap_or(fork);
            let mut fork_repo = repo_json(base, repo);
            fork_repo["full_name"] = json!(fork);
            fork_repo["name"] = json!(fork.split('/').nth(1).unwrap_or(fork));
            fork_repo["fork"] = json!(true);
            fork_repo["owner"] = user_json(base, &Login::user(fork_owner));
            json!({
                "label": format!("{fork_owner}:{}", pull.head),
                "ref": pull.head,
                "sha": pull.head_sha,
                "user": user_json(base, &Login::user(fork_owner)),
                "repo": fork_repo,
            })
        }
    }
}

fn pull_json(base: &str, repo: &FakeRepo, pull: &FakePull, detail: Option<&Mergeability>) -> Value {
    let full = format!("{}/{}", repo.owner, repo.name);
    let owner = Login {
        login: repo.owner.clone(),
        kind: "Organization".into(),
    };
    let head_sha =
        git::branch_sha(&repo.git_dir, &pull.head).unwrap_or_else(|| pull.head_sha.clone());
    let base_sha = git::branch_sha(&repo.git_dir, &pull.base).unwrap_or_default();
    let mut value = json!({
        "url": format!("{base}/repos/{full}/pulls/{}", pull.number),
        "id": pull.id,
        "node_id": format!("PR_{}", pull.id),
        "html_url": format!("{base}/{full}/pull/{}", pull.number),
        "issue_url": format!("{base}/repos/{full}/issues/{}", pull.number),
        "number": pull.number,
        "state": pull.state,
        "locked": false,
        "title": pull.title,
        "user": user_json(base, &pull.user),
        "body": pull.body,
        "labels": [],
        "created_at": pull.created_at,
        "updated_at": pull.updated_at,
        "closed_at": pull.closed_at,
        "merged_at": pull.merged_at,
        "merge_commit_sha": pull.merge_commit_sha,
        "draft": pull.draft,
        "head": head_json(base, repo, pull, &head_sha, &owner),
        "base": {
            "label": format!("{}:{}", repo.owner, pull.base),
            "ref": pull.base,
            "sha": base_sha,
            "user": user_json(base, &owner),
            "repo": repo_json(base, repo),
        },
        "author_association": "NONE",
    });
    if let Some(m) = detail {
        value["merged"] = json!(pull.merged);
        value["mergeable"] = json!(m.mergeable);
        value["rebaseable"] = json!(m.mergeable);
        value["mergeable_state"] = json!(m.state);
        value["merged_by"] = Value::Null;
        value["comments"] = json!(repo
            .comments
            .iter()
            .filter(|c| c.issue == pull.number)
            .count());
        value["maintainer_can_modify"] = json!(false);
    }
    value
}

/// The pull request's JSON with mergeability, counting down `computing`.
fn pull_detail(base: &str, repo: &mut FakeRepo, number: u64) -> Option<Value> {
    let pull = repo.pulls.get_mut(&number)?;
    if let Some(sha) = git::branch_sha(&repo.git_dir, &pull.head) {
        pull.head_sha = sha;
    }
    let computing = pull.computing > 0;
    if computing {
        pull.computing -= 1;
    }
    let pull = repo.pulls.get(&number)?;
    let m = if computing {
        Mergeability {
            mergeable: None,
            state: "unknown".into(),
            missing: None,
        }
    } else {
        mergeability(repo, pull)
    };
    Some(pull_json(base, repo, pull, Some(&m)))
}

async fn list_pulls(
    State(world): State<Shared>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let w = lock(&world);
    let Some(r) = w.repo(&format!("{owner}/{repo}")) else {
        return not_found();
    };
    let state = query.get("state").map(String::as_str).unwrap_or("open");
    // `head` is `user:ref`; GitHub matches the branch of that user's fork.
    let head = query.get("head").map(|h| match h.split_once(':') {
        Some((user, branch)) => (Some(user.to_owned()), branch.to_owned()),
        None => (None, h.clone()),
    });
    let items: Vec<Value> = r
        .pulls
        .values()
        .rev() // newest first, GitHub's default order
        .filter(|p| state == "all" || p.state == state)
        .filter(|p| match &head {
            None => true,
            Some((user, branch)) => {
                &p.head == branch
                    && user
                        .as_ref()
                        .is_none_or(|u| u.eq_ignore_ascii_case(&r.owner))
            }
        })
        .filter(|p| query.get("base").is_none_or(|b| &p.base == b))
        .map(|p| pull_json(&w.base_url, r, p, None))
        .collect();
    let (headers, page) = paginate(
        &w.base_url,
        &format!("/repos/{owner}/{repo}/pulls"),
        &query,
        items,
    );
    (headers, axum::Json(Value::Array(page))).into_response()
}

async fn create_pull(
    State(world): State<Shared>,
    Extension(caller): Extension<Caller>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    JsonBody(body): JsonBody,
) -> Response {
    let mut w = lock(&world);
    let user = caller_login(&w, &caller);
    let id = w.id();
    let base_url = w.base_url.clone();
    let Some(r) = w.repo_mut(&format!("{owner}/{repo}")) else {
        return not_found();
    };
    for field in ["title", "head", "base"] {
        if !body[field].is_string() {
            return validation_failed(
                json!([{"resource": "PullRequest", "field": field, "code": "missing_field"}]),
            );
        }
    }
    let title = body["title"].as_str().unwrap_or_default().to_owned();
    let base = body["base"].as_str().unwrap_or_default().to_owned();
    let head_label = body["head"].as_str().unwrap_or_default();
    let head = match head_label.split_once(':') {
        Some((user, branch)) if user.eq_ignore_ascii_case(&r.owner) => branch.to_owned(),
        Some(_) => {
            return validation_failed(
                json!([{"resource": "PullRequest", "field": "head", "code": "invalid"}]),
            )
        }
        None => head_label.to_owned(),
    };
    let Some(head_sha) = git::branch_sha(&r.git_dir, &head) else {
        return validation_failed(
            json!([{"resource": "PullRequest", "field": "head", "code": "invalid"}]),
        );
    };
    let Some(base_sha) = git::branch_sha(&r.git_dir, &base) else {
        return validation_failed(
            json!([{"resource": "PullRequest", "field": "base", "code": "invalid"}]),
        );
    };
    if r.pulls
        .values()
        .any(|p| p.state == "open" && p.head == head && p.base == base)
    {
        return validation_failed(json!([{
            "resource": "PullRequest",
            "code": "custom",
            "message": format!("A pull request already exists for {}:{head}.", r.owner),
        }]));
    }
    if git::is_ancestor(&r.git_dir, &head_sha, &base_sha) {
        return validation_failed(json!([{
            "resource": "PullRequest",
            "code": "custom",
            "message": format!("No commits between {base} and {head}"),
        }]));
    }
    let number = r.next_number;
    r.next_number += 1;
    let now = now_text();
    r.pulls.insert(
        number,
        FakePull {
            number,
            id,
            title,
            body: body["body"].as_str().map(str::to_owned),
            head,
            base,
            user,
            state: "open".into(),
            draft: body["draft"].as_bool().unwrap_or(false),
            merged: false,
            merge_commit_sha: None,
            created_at: now.clone(),
            updated_at: now,
            closed_at: None,
            merged_at: None,
            head_sha,
            computing: 0,
            head_repo: None,
        },
    );
    // Right after creation GitHub has not computed mergeability yet.
    let pull = &r.pulls[&number];
    let pending = Mergeability {
        mergeable: None,
        state: "unknown".into(),
        missing: None,
    };
    let value = pull_json(&base_url, r, pull, Some(&pending));
    let mut response = respond(StatusCode::CREATED, value);
    if let Ok(location) = HeaderValue::from_str(&format!(
        "{base_url}/repos/{}/{}/pulls/{number}",
        r.owner, r.name
    )) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

async fn get_pull(
    State(world): State<Shared>,
    UrlPath((owner, repo, number)): UrlPath<(String, String, u64)>,
) -> Response {
    let mut w = lock(&world);
    let base_url = w.base_url.clone();
    let Some(r) = w.repo_mut(&format!("{owner}/{repo}")) else {
        return not_found();
    };
    match pull_detail(&base_url, r, number) {
        Some(value) => respond(StatusCode::OK, value),
        None => not_found(),
    }
}

async fn update_pull(
    State(world): State<Shared>,
    UrlPath((owner, repo, number)): UrlPath<(String, String, u64)>,
    JsonBody(body): JsonBody,
) -> Response {
    let mut w = lock(&world);
    let base_url = w.base_url.clone();
    let Some(r) = w.repo_mut(&format!("{owner}/{repo}")) else {
        return not_found();
    };
    let Some(pull) = r.pulls.get_mut(&number) else {
        return not_found();
    };
    if let Some(title) = body["title"].as_str() {
        pull.title = title.to_owned();
    }
    if body.get("body").is_some() {
        pull.body = body["body"].as_str().map(str::to_owned);
    }
    if let Some(base) = body["base"].as_str() {
        pull.base = base.to_owned();
    }
    match body["state"].as_str() {
        Some("closed") if pull.state == "open" => {
            pull.state = "closed".into();
            pull.closed_at = Some(now_text());
        }
        Some("open") if pull.state == "closed" && !pull.merged => {
            pull.state = "open".into();
            pull.closed_at = None;
        }
        _ => {}
    }
    pull.updated_at = now_text();
    match pull_detail(&base_url, r, number) {
        Some(value) => respond(StatusCode::OK, value),
        None => not_found(),
    }
}

async fn merge_pull(
    State(world): State<Shared>,
    UrlPath((owner, repo, number)): UrlPath<(String, String, u64)>,
    JsonBody(body): JsonBody,
) -> Response {
    let mut w = lock(&world);
    let Some(r) = w.repo_mut(&format!("{owner}/{repo}")) else {
        return not_found();
    };
    let Some(pull) = r.pulls.get(&number).cloned() else {
        return not_found();
    };
    let not_mergeable = |message: &str| error(StatusCode::METHOD_NOT_ALLOWED, message);
    if pull.state != "open" {
        return not_mergeable("Pull Request is not mergeable");
    }
    let method = body["merge_method"].as_str().unwrap_or("merge");
    if !["merge", "squash", "rebase"].contains(&method) {
        return validation_failed(json!([{
            "resource": "PullRequest", "field": "merge_method", "code": "invalid",
        }]));
    }
    let (Some(head), Some(base)) = (
        git::branch_sha(&r.git_dir, &pull.head),
        git::branch_sha(&r.git_dir, &pull.base),
    ) else {
        return not_mergeable("Pull Request is not mergeable");
    };
    if let Some(expected) = body["sha"].as_str() {
        if expected != head {
            return error(
                StatusCode::CONFLICT,
                "Head branch was modified. Review and try the merge again.",
            );
        }
    }
    let m = mergeability(r, &pull);
    match m.state.as_str() {
        "dirty" => return not_mergeable("Pull Request is not mergeable"),
        "draft" => return not_mergeable("Pull Request is still a draft"),
        "behind" => {
            return not_mergeable("Head branch is out of date. Review and try the merge again.")
        }
        "blocked" => {
            let (context, how) = m.missing.unwrap_or_default();
            return not_mergeable(&format!(
                "Repository rule violations found\n\nRequired status check \"{context}\" is {how}.\n\n"
            ));
        }
        _ => {}
    }
    let title = body["commit_title"].as_str().map(str::to_owned);
    let message = body["commit_message"]
        .as_str()
        .unwrap_or(&pull.title)
        .to_owned();
    let merged = match method {
        "squash" => {
            let title = title.unwrap_or_else(|| format!("{} (#{number})", pull.title));
            write_merge(
                &r.git_dir,
                &base,
                &head,
                &format!("{title}\n\n{message}"),
                false,
            )
        }
        "rebase" if !git::is_ancestor(&r.git_dir, &base, &head) => {
            return not_mergeable("This branch can't be rebased");
        }
        _ if git::is_ancestor(&r.git_dir, &base, &head) => Ok(head.clone()),
        _ => {
            let title = title.unwrap_or_else(|| {
                format!(
                    "Merge pull request #{number} from {}/{}",
                    r.owner, pull.head
                )
            });
            write_merge(
                &r.git_dir,
                &base,
                &head,
                &format!("{title}\n\n{message}"),
                true,
            )
        }
    };
    let new_sha = match merged {
        Ok(sha) => sha,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("merge failed: {e}"),
            )
        }
    };
    if let Err(e) = move_branch(&r.git_dir, &pull.base, &base, &new_sha) {
        return error(
            StatusCode::CONFLICT,
            &format!("Base branch was modified. Review and try the merge again. ({e})"),
        );
    }
    let now = now_text();
    if let Some(p) = r.pulls.get_mut(&number) {
        p.state = "closed".into();
        p.merged = true;
        p.merged_at = Some(now.clone());
        p.closed_at = Some(now.clone());
        p.updated_at = now;
        p.merge_commit_sha = Some(new_sha.clone());
        p.head_sha = head;
    }
    respond(
        StatusCode::OK,
        json!({"sha": new_sha, "merged": true, "message": "Pull Request successfully merged"}),
    )
}

/// Writes the commit of merging `head` into `base`: a merge commit (parents
/// base and head), or a squash commit (parent base only).
fn write_merge(
    git_dir: &Path,
    base: &str,
    head: &str,
    message: &str,
    two_parents: bool,
) -> Result<String, git2::Error> {
    let repo = git2::Repository::open(git_dir)?;
    let tree_id =
        merge_tree(git_dir, base, head).ok_or_else(|| git2::Error::from_str("merge conflicts"))?;
    let tree = repo.find_tree(tree_id)?;
    let base_commit = repo.find_commit(git2::Oid::from_str(base)?)?;
    let head_commit = repo.find_commit(git2::Oid::from_str(head)?)?;
    let sig = git2::Signature::now("GitHub", "noreply@github.com")?;
    let parents: Vec<&git2::Commit> = if two_parents {
        vec![&base_commit, &head_commit]
    } else {
        vec![&base_commit]
    };
    let oid = repo.commit(None, &sig, &sig, message, &tree, &parents)?;
    Ok(oid.to_string())
}

/// Moves `branch` from `from` to `to`, failing if it moved meanwhile.
fn move_branch(git_dir: &Path, branch: &str, from: &str, to: &str) -> Result<(), git2::Error> {
    let repo = git2::Repository::open(git_dir)?;
    repo.reference_matching(
        &format!("refs/heads/{branch}"),
        git2::Oid::from_str(to)?,
        true,
        git2::Oid::from_str(from)?,
        "merge pull request",
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Statuses and checks.

fn status_json(base: &str, repo: &FakeRepo, sha: &str, s: &FakeStatus) -> Value {
    json!({
        "url": format!("{base}/repos/{}/{}/statuses/{sha}", repo.owner, repo.name),
        "avatar_url": null,
        "id": s.id,
        "node_id": format!("SC_{}", s.id),
        "state": s.state,
        "description": s.description,
        "target_url": s.target_url,
        "context": s.context,
        "created_at": s.created_at,
        "updated_at": s.created_at,
        "creator": user_json(base, &s.creator),
    })
}

/// A commit sha, or the tip of a branch.
fn resolve(repo: &FakeRepo, reference: &str) -> Option<String> {
    if let Some(sha) = git::branch_sha(&repo.git_dir, reference) {
        return Some(sha);
    }
    let git = git2::Repository::open(&repo.git_dir).ok()?;
    let commit = git.revparse_single(reference).ok()?.peel_to_commit().ok()?;
    Some(commit.id().to_string())
}

async fn create_status(
    State(world): State<Shared>,
    Extension(caller): Extension<Caller>,
    UrlPath((owner, repo, sha)): UrlPath<(String, String, String)>,
    JsonBody(body): JsonBody,
) -> Response {
    let mut w = lock(&world);
    let creator = caller_login(&w, &caller);
    let id = w.id();
    let base_url = w.base_url.clone();
    let Some(r) = w.repo_mut(&format!("{owner}/{repo}")) else {
        return not_found();
    };
    let state = body["state"].as_str().unwrap_or_default();
    if !["error", "failure", "pending", "success"].contains(&state) {
        return validation_failed(json!([{
            "resource": "Status", "code": "custom", "field": "state",
            "message": "state is not included in the list",
        }]));
    }
    let description = body["description"].as_str().map(str::to_owned);
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 140)
    {
        return validation_failed(json!([{
            "resource": "Status", "code": "custom", "field": "description",
            "message": "description is too long (maximum is 140 characters)",
        }]));
    }
    let full_sha = match resolve(r, &sha) {
        Some(full) if full == sha => full,
        _ => {
            return validation_failed(json!([{
                "resource": "Status", "code": "custom", "field": "sha",
                "message": format!("No commit found for SHA: {sha}"),
            }]))
        }
    };
    let status = FakeStatus {
        id,
        state: state.to_owned(),
        context: body["context"].as_str().unwrap_or("default").to_owned(),
        description,
        target_url: body["target_url"].as_str().map(str::to_owned),
        creator,
        created_at: now_text(),
    };
    let value = status_json(&base_url, r, &full_sha, &status);
    r.statuses.entry(full_sha).or_default().push(status);
    respond(StatusCode::CREATED, value)
}

async fn combined_status(
    State(world): State<Shared>,
    UrlPath((owner, repo, reference)): UrlPath<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let w = lock(&world);
    let Some(r) = w.repo(&format!("{owner}/{repo}")) else {
        return not_found();
    };
    let Some(sha) = resolve(r, &reference) else {
        return validation_failed(
            json!([{"resource": "Commit", "code": "invalid", "field": "ref"}]),
        );
    };
    // The latest status of each context, newest first.
    let mut latest: Vec<&FakeStatus> = Vec::new();
    if let Some(list) = r.statuses.get(&sha) {
        for s in list.iter().rev() {
            if !latest.iter().any(|l| l.context == s.context) {
                latest.push(s);
            }
        }
    }
    let state = if latest.is_empty() {
        "pending"
    } else if latest
        .iter()
        .any(|s| s.state == "failure" || s.state == "error")
    {
        "failure"
    } else if latest.iter().any(|s| s.state == "pending") {
        "pending"
    } else {
        "success"
    };
    let items: Vec<Value> = latest
        .iter()
        .map(|s| status_json(&w.base_url, r, &sha, s))
        .collect();
    let total = items.len();
    let (_, page) = paginate(&w.base_url, "", &query, items);
    respond(
        StatusCode::OK,
        json!({
            "state": state,
            "statuses": page,
            "sha": sha,
            "total_count": total,
            "repository": repo_json(&w.base_url, r),
            "commit_url": format!("{}/repos/{}/{}/commits/{sha}", w.base_url, r.owner, r.name),
            "url": format!("{}/repos/{}/{}/commits/{sha}/status", w.base_url, r.owner, r.name),
        }),
    )
}

async fn list_check_runs(
    State(world): State<Shared>,
    UrlPath((owner, repo, reference)): UrlPath<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let w = lock(&world);
    let Some(r) = w.repo(&format!("{owner}/{repo}")) else {
        return not_found();
    };
    let Some(sha) = resolve(r, &reference) else {
        return validation_failed(
            json!([{"resource": "Commit", "code": "invalid", "field": "ref"}]),
        );
    };
    let items: Vec<Value> = r
        .check_runs
        .get(&sha)
        .map(|runs| {
            runs.iter()
                .map(|run| {
                    json!({
                        "id": run.id,
                        "node_id": format!("CR_{}", run.id),
                        "head_sha": sha,
                        "external_id": "",
                        "url": format!("{}/repos/{}/{}/check-runs/{}", w.base_url, r.owner, r.name, run.id),
                        "html_url": format!("{}/{}/{}/runs/{}", w.base_url, r.owner, r.name, run.id),
                        "details_url": null,
                        "status": run.status,
                        "conclusion": run.conclusion,
                        "started_at": "2024-01-01T00:00:00Z",
                        "completed_at": if run.status == "completed" { json!("2024-01-01T00:01:00Z") } else { Value::Null },
                        "name": run.name,
                        "output": {"title": null, "summary": null, "text": null, "annotations_count": 0},
                        "pull_requests": [],
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let total = items.len();
    let (headers, page) = paginate(
        &w.base_url,
        &format!("/repos/{owner}/{repo}/commits/{reference}/check-runs"),
        &query,
        items,
    );
    (
        headers,
        axum::Json(json!({"total_count": total, "check_runs": page})),
    )
        .into_response()
}

// ---------------------------------------------------------------------------
// Comments, reactions, permissions, refs.

fn comment_json(base: &str, repo: &FakeRepo, c: &FakeComment) -> Value {
    let full = format!("{}/{}", repo.owner, repo.name);
    let kind = if repo.pulls.contains_key(&c.issue) {
        "pull"
    } else {
        "issues"
    };
    json!({
        "id": c.id,
        "node_id": format!("IC_{}", c.id),
        "url": format!("{base}/repos/{full}/issues/comments/{}", c.id),
        "html_url": format!("{base}/{full}/{kind}/{}#issuecomment-{}", c.issue, c.id),
        "issue_url": format!("{base}/repos/{full}/issues/{}", c.issue),
        "body": c.body,
        "user": user_json(base, &c.user),
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "author_association": "NONE",
        "reactions": {
            "url": format!("{base}/repos/{full}/issues/comments/{}/reactions", c.id),
            "total_count": c.reactions.len(),
        },
    })
}

fn issue_exists(repo: &FakeRepo, number: u64) -> bool {
    repo.pulls.contains_key(&number) || repo.issues.contains(&number)
}

async fn list_comments(
    State(world): State<Shared>,
    UrlPath((owner, repo, number)): UrlPath<(String, String, u64)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let w = lock(&world);
    let Some(r) = w.repo(&format!("{owner}/{repo}")) else {
        return not_found();
    };
    if !issue_exists(r, number) {
        return not_found();
    }
    let items: Vec<Value> = r
        .comments
        .iter()
        .filter(|c| c.issue == number)
        .map(|c| comment_json(&w.base_url, r, c))
        .collect();
    let (headers, page) = paginate(
        &w.base_url,
        &format!("/repos/{owner}/{repo}/issues/{number}/comments"),
        &query,
        items,
    );
    (headers, axum::Json(Value::Array(page))).into_response()
}

async fn create_comment(
    State(world): State<Shared>,
    Extension(caller): Extension<Caller>,
    UrlPath((owner, repo, number)): UrlPath<(String, String, u64)>,
    JsonBody(body): JsonBody,
) -> Response {
    let mut w = lock(&world);
    let user = caller_login(&w, &caller);
    let id = w.id();
    let base_url = w.base_url.clone();
    let Some(r) = w.repo_mut(&format!("{owner}/{repo}")) else {
        return not_found();
    };
    if !issue_exists(r, number) {
        return not_found();
    }
    let Some(text) = body["body"].as_str() else {
        return validation_failed(
            json!([{"resource": "IssueComment", "field": "body", "code": "missing_field"}]),
        );
    };
    if text.chars().count() > 65_536 {
        return validation_failed(json!([{
            "resource": "IssueComment", "code": "custom", "field": "body",
            "message": "body is too long (maximum is 65536 characters)",
        }]));
    }
    let now = now_text();
    let comment = FakeComment {
        id,
        issue: number,
        body: text.to_owned(),
        user,
        created_at: now.clone(),
        updated_at: now,
        reactions: Vec::new(),
    };
    let value = comment_json(&base_url, r, &comment);
    r.comments.push(comment);
    respond(StatusCode::CREATED, value)
}

async fn edit_comment(
    State(world): State<Shared>,
    Extension(caller): Extension<Caller>,
    UrlPath((owner, repo, comment_id)): UrlPath<(String, String, u64)>,
    JsonBody(body): JsonBody,
) -> Response {
    let mut w = lock(&world);
    let user = caller_login(&w, &caller);
    let base_url = w.base_url.clone();
    let Some(r) = w.repo_mut(&format!("{owner}/{repo}")) else {
        return not_found();
    };
    let Some(text) = body["body"].as_str() else {
        return validation_failed(
            json!([{"resource": "IssueComment", "field": "body", "code": "missing_field"}]),
        );
    };
    let Some(index) = r.comments.iter().position(|c| c.id == comment_id) else {
        return not_found();
    };
    // Only its author may edit a comment (admins aside, which the fake has none of).
    if r.comments[index].user.login != user.login {
        return error(
            StatusCode::FORBIDDEN,
            "Resource not accessible by integration",
        );
    }
    r.comments[index].body = text.to_owned();
    r.comments[index].updated_at = now_text();
    let value = comment_json(&base_url, r, &r.comments[index]);
    respond(StatusCode::OK, value)
}

async fn create_reaction(
    State(world): State<Shared>,
    Extension(caller): Extension<Caller>,
    UrlPath((owner, repo, comment_id)): UrlPath<(String, String, u64)>,
    JsonBody(body): JsonBody,
) -> Response {
    let mut w = lock(&world);
    let user = caller_login(&w, &caller);
    let id = w.id();
    let base_url = w.base_url.clone();
    let Some(r) = w.repo_mut(&format!("{owner}/{repo}")) else {
        return not_found();
    };
    let content = body["content"].as_str().unwrap_or_default().to_owned();
    const CONTENTS: [&str; 8] = [
        "+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes",
    ];
    if !CONTENTS.contains(&content.as_str()) {
        return validation_failed(json!([{
            "resource": "Reaction", "code": "invalid", "field": "content",
        }]));
    }
    let Some(comment) = r.comments.iter_mut().find(|c| c.id == comment_id) else {
        return not_found();
    };
    let reaction_json = |reaction: &FakeReaction| {
        json!({
            "id": reaction.id,
            "node_id": format!("REA_{}", reaction.id),
            "user": user_json(&base_url, &reaction.user),
            "content": reaction.content,
            "created_at": now_text(),
        })
    };
    if let Some(existing) = comment
        .reactions
        .iter()
        .find(|x| x.user == user && x.content == content)
    {
        return respond(StatusCode::OK, reaction_json(existing));
    }
    let reaction = FakeReaction { id, user, content };
    let value = reaction_json(&reaction);
    comment.reactions.push(reaction);
    respond(StatusCode::CREATED, value)
}

async fn collaborator_permission(
    State(world): State<Shared>,
    UrlPath((owner, repo, username)): UrlPath<(String, String, String)>,
) -> Response {
    let w = lock(&world);
    let Some(r) = w.repo(&format!("{owner}/{repo}")) else {
        return not_found();
    };
    let role = r
        .permissions
        .get(&username)
        .cloned()
        .unwrap_or_else(|| "none".to_owned());
    // The older `permission` field folds maintain into write and triage into read.
    let permission = match role.as_str() {
        "admin" => "admin",
        "maintain" | "write" => "write",
        "triage" | "read" => "read",
        _ => "none",
    };
    let mut user = user_json(&w.base_url, &Login::user(&username));
    user["permissions"] = json!({
        "admin": role == "admin",
        "maintain": matches!(role.as_str(), "admin" | "maintain"),
        "push": matches!(role.as_str(), "admin" | "maintain" | "write"),
        "triage": matches!(role.as_str(), "admin" | "maintain" | "write" | "triage"),
        "pull": permission != "none",
    });
    user["role_name"] = json!(role);
    respond(
        StatusCode::OK,
        json!({"permission": permission, "role_name": role, "user": user}),
    )
}

async fn delete_ref(
    State(world): State<Shared>,
    UrlPath((owner, repo, reference)): UrlPath<(String, String, String)>,
) -> Response {
    let mut w = lock(&world);
    let Some(r) = w.repo_mut(&format!("{owner}/{repo}")) else {
        return not_found();
    };
    let gone = || error(StatusCode::UNPROCESSABLE_ENTITY, "Reference does not exist");
    let Ok(git) = git2::Repository::open(&r.git_dir) else {
        return gone();
    };
    let Ok(mut found) = git.find_reference(&format!("refs/{reference}")) else {
        return gone();
    };
    if let Err(e) = found.delete() {
        return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
    }
    // GitHub closes the open pull requests of a deleted head branch.
    if let Some(branch) = reference.strip_prefix("heads/") {
        let now = now_text();
        for pull in r.pulls.values_mut() {
            if pull.state == "open" && pull.head == branch {
                pull.state = "closed".into();
                pull.closed_at = Some(now.clone());
            }
        }
    }
    StatusCode::NO_CONTENT.into_response()
}
