//! The GitHub REST client of cairn's service, on top of octocrab.
//!
//! octocrab carries the requests (HTTP, TLS, base URL, the `Authorization`
//! header, the App's JWT); everything else is here, so that it behaves the same
//! for every call:
//! - requests go through octocrab's raw `build_request`/`execute`, so the
//!   status and headers of every answer are seen; bodies are read with serde
//!   into private wire structs ([`wire`]) naming only the fields used;
//! - octocrab's own retry layer is off; [`retry`] decides: 5xx and transport
//!   errors are retried with backoff and jitter, rate limits are waited out (or
//!   turned into [`GitHubError::RateLimited`] when the wait is too long);
//! - a hook ([`GitHubBuilder::on_call`]) sees every attempt, for metrics;
//! - App installation tokens are minted and cached here, renewed a
//!   configurable time before they expire (5 minutes by default): octocrab's
//!   own cache renews only 30 s before expiry, and its refresh request would
//!   bypass the retry policy and the hook;
//! - credentials are [`Secret`]s: they never reach a `Debug` or `Display`, a
//!   log line or an error; an error body that echoed the token used would have
//!   it replaced by `***`.
//!
//! [`GitHub`] is the shared client (cheap to clone), [`RepoClient`] a handle
//! on one repository. Build the client inside a tokio runtime: octocrab starts
//! a background task.

mod model;
mod readiness;
mod repo;
mod retry;
mod secret;
mod text;
mod wire;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use octocrab::service::middleware::retry::RetryConfig;
use octocrab::Octocrab;
use serde::de::DeserializeOwned;

pub use model::{
    CheckRun, CombinedStatus, Comment, CommitStatus, CreatedPull, Installation, MergeMethod,
    MergeOutcome, MergeableState, Permission, PullRequest, PullState, Reaction, Repository,
    StatusState, UpsertedComment,
};
pub use readiness::MergeReadiness;
pub use repo::RepoClient;
pub use retry::RetryPolicy;
pub use secret::Secret;
pub use text::{pipeline_marker, truncate_chars, STATUS_DESCRIPTION_MAX};

use retry::Verdict;
use wire::{AccessTokenWire, ErrorWire, InstallationRepositoriesWire, InstallationWire};

/// The environment variable the token is read from by convention.
pub const TOKEN_ENV: &str = "CAIRN_GITHUB_TOKEN";

/// github.com's API.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// Pages followed at most for one list (100 items each).
const MAX_PAGES: usize = 1000;

/// Characters of a non-JSON error body kept in an error message.
const BODY_SNIPPET: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    /// GitHub answered with an error status (after any retries).
    #[error("{method} {path}: {status}: {message}")]
    Api {
        method: Method,
        path: String,
        status: StatusCode,
        message: String,
    },
    /// GitHub's rate limit asks to wait longer than cairn is configured to
    /// (or was hit too many times in a row): come back at `retry_at`.
    #[error("{route}: rate limited by GitHub until {}; not waiting that long", rfc3339(.retry_at))]
    RateLimited { route: String, retry_at: SystemTime },
    /// No answer (connection refused, reset, timed out), every attempt.
    #[error("{method} {path}: {reason} (gave up after {attempts} attempts)")]
    Transport {
        method: Method,
        path: String,
        attempts: u32,
        reason: String,
    },
    /// A success status, but a body this client cannot read.
    #[error("{method} {path}: {status}: unexpected response body: {reason}")]
    Decode {
        method: Method,
        path: String,
        status: StatusCode,
        reason: String,
    },
    #[error("GitHub client settings: {0}")]
    Config(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{what} needs GitHub App credentials, but the client has a token")]
    NotAnApp { what: &'static str },
}

impl GitHubError {
    /// The HTTP status of an [`Api`](GitHubError::Api) or
    /// [`Decode`](GitHubError::Decode) error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            GitHubError::Api { status, .. } | GitHubError::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }
}

fn rfc3339(at: &SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(*at).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// One HTTP attempt, as the [`GitHubBuilder::on_call`] hook sees it.
#[derive(Debug, Clone)]
pub struct ApiCall {
    pub method: Method,
    /// The route template, e.g. `/repos/{owner}/{repo}/pulls/{pull_number}`
    /// (few distinct values: fit for a metrics label).
    pub route: &'static str,
    /// The path actually requested, without the query.
    pub path: String,
    /// The HTTP status; 0 when no answer came (transport error).
    pub status: u16,
    pub duration: Duration,
    /// 1 for the first attempt of a call, then 2, 3...
    pub attempt: u32,
}

/// The metrics hook.
pub type CallHook = Arc<dyn Fn(&ApiCall) + Send + Sync>;

/// How the client authenticates.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A personal access token (or any token GitHub accepts as `Bearer`).
    Token(Secret),
    /// A GitHub App: its id and PEM private key (PKCS#1 as GitHub hands it
    /// out, or PKCS#8).
    App { app_id: u64, private_key: Secret },
}

/// Settings of a [`GitHub`] client. Start from [`GitHub::builder`].
pub struct GitHubBuilder {
    api_url: String,
    credentials: Option<Credentials>,
    policy: RetryPolicy,
    on_call: Option<CallHook>,
    renew_before: Duration,
    connect_timeout: Duration,
    read_timeout: Duration,
    bot_login: Option<String>,
}

impl fmt::Debug for GitHubBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubBuilder")
            .field("api_url", &self.api_url)
            .field("credentials", &self.credentials)
            .field("policy", &self.policy)
            .field("renew_before", &self.renew_before)
            .field("bot_login", &self.bot_login)
            .finish_non_exhaustive()
    }
}

impl GitHubBuilder {
    pub fn credentials(mut self, credentials: Credentials) -> GitHubBuilder {
        self.credentials = Some(credentials);
        self
    }

    /// Authenticate with a token (a PAT, `CAIRN_GITHUB_TOKEN`).
    pub fn token(self, token: Secret) -> GitHubBuilder {
        self.credentials(Credentials::Token(token))
    }

    /// Authenticate as a GitHub App.
    pub fn app(self, app_id: u64, private_key_pem: Secret) -> GitHubBuilder {
        self.credentials(Credentials::App {
            app_id,
            private_key: private_key_pem,
        })
    }

    pub fn retry_policy(mut self, policy: RetryPolicy) -> GitHubBuilder {
        self.policy = policy;
        self
    }

    /// Called for every HTTP attempt (each retry too), with its status and duration.
    pub fn on_call(mut self, hook: CallHook) -> GitHubBuilder {
        self.on_call = Some(hook);
        self
    }

    /// How long before its `expires_at` an installation token is replaced
    /// (default 5 minutes; GitHub's tokens live an hour).
    pub fn token_renew_before(mut self, margin: Duration) -> GitHubBuilder {
        self.renew_before = margin;
        self
    }

    /// Connection and read timeouts of one attempt (default 10 s and 30 s).
    pub fn timeouts(mut self, connect: Duration, read: Duration) -> GitHubBuilder {
        self.connect_timeout = connect;
        self.read_timeout = read;
        self
    }

    /// The login cairn comments as (`my-app[bot]`, or the token's user). When
    /// set, [`RepoClient::upsert_comment`] only edits comments by this login;
    /// otherwise any comment carrying the marker.
    pub fn bot_login(mut self, login: impl Into<String>) -> GitHubBuilder {
        self.bot_login = Some(login.into());
        self
    }

    /// Builds the client. Must run inside a tokio runtime.
    pub fn build(self) -> Result<GitHub, GitHubError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(GitHubError::Config(
                "the GitHub client must be built inside a tokio runtime".into(),
            ));
        }
        let api_url = self.api_url.trim_end_matches('/').to_owned();
        let builder = Octocrab::builder()
            .base_uri(api_url.as_str())
            .map_err(|e| GitHubError::Config(format!("invalid GitHub API URL {api_url:?}: {e}")))?
            .add_retry_config(RetryConfig::None)
            .set_connect_timeout(Some(self.connect_timeout))
            .set_read_timeout(Some(self.read_timeout));
        let (builder, auth) = match self.credentials {
            None => {
                return Err(GitHubError::Config(
                    "no credentials: give a token or GitHub App credentials".into(),
                ))
            }
            Some(Credentials::Token(token)) => {
                if token.is_empty() {
                    return Err(GitHubError::Config("the GitHub token is empty".into()));
                }
                (
                    builder.personal_token(token.expose().to_owned()),
                    AuthMode::Token(token),
                )
            }
            Some(Credentials::App {
                app_id,
                private_key,
            }) => {
                // jsonwebtoken's errors describe the key's format, never its content.
                let key = octocrab::EncodingKey::from_rsa_pem(private_key.expose().as_bytes())
                    .map_err(|e| {
                        GitHubError::Config(format!(
                            "the private key of GitHub App {app_id} is not an RSA PEM key: {e}"
                        ))
                    })?;
                (
                    builder.app(octocrab::models::AppId(app_id), key),
                    AuthMode::App {
                        app_id,
                        tokens: tokio::sync::Mutex::new(HashMap::new()),
                        repo_installations: Mutex::new(HashMap::new()),
                    },
                )
            }
        };
        let crab = builder
            .build()
            .map_err(|e| GitHubError::Config(format!("cannot set up the HTTP client: {e}")))?;
        Ok(GitHub {
            inner: Arc::new(Inner {
                api_url,
                crab,
                auth,
                policy: self.policy,
                on_call: self.on_call,
                renew_before: self.renew_before,
                bot_login: self.bot_login,
            }),
        })
    }
}

/// The GitHub client. Clones share connections and caches.
#[derive(Clone)]
pub struct GitHub {
    inner: Arc<Inner>,
}

struct Inner {
    api_url: String,
    crab: Octocrab,
    auth: AuthMode,
    policy: RetryPolicy,
    on_call: Option<CallHook>,
    renew_before: Duration,
    bot_login: Option<String>,
}

enum AuthMode {
    Token(Secret),
    App {
        app_id: u64,
        /// Installation id -> its current token. An async mutex: one mint at a time.
        tokens: tokio::sync::Mutex<HashMap<u64, CachedToken>>,
        /// `owner/name` (lowercase) -> installation id.
        repo_installations: Mutex<HashMap<String, u64>>,
    },
}

struct CachedToken {
    token: Secret,
    expires_at: SystemTime,
}

impl fmt::Debug for GitHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("GitHub");
        s.field("api_url", &self.inner.api_url);
        match &self.inner.auth {
            AuthMode::Token(token) => s.field("token", token),
            AuthMode::App { app_id, .. } => s.field("app_id", app_id),
        };
        s.finish_non_exhaustive()
    }
}

/// Whose credentials a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum As {
    /// The configured token (token mode).
    Token,
    /// The App itself (its JWT): the `/app` endpoints.
    App,
    /// An installation's token.
    Installation(u64),
}

/// One API call, before it is sent.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    method: Method,
    route: &'static str,
    /// The path, for errors and the hook.
    path: String,
    /// Path and encoded query, as sent.
    target: String,
    body: Option<serde_json::Value>,
    auth: As,
}

impl Request {
    /// `path` must already have its segments encoded ([`text::segment`]).
    pub(crate) fn new(method: Method, route: &'static str, path: String, auth: As) -> Request {
        Request {
            method,
            route,
            target: path.clone(),
            path,
            body: None,
            auth,
        }
    }

    pub(crate) fn get(route: &'static str, path: String, auth: As) -> Request {
        Request::new(Method::GET, route, path, auth)
    }

    /// Appends `name=value` to the query, the value percent-encoded.
    pub(crate) fn query(mut self, name: &str, value: &str) -> Request {
        let sep = if self.target.contains('?') { '&' } else { '?' };
        self.target = format!("{}{sep}{name}={}", self.target, text::query_value(value));
        self
    }

    pub(crate) fn json(mut self, body: serde_json::Value) -> Request {
        self.body = Some(body);
        self
    }
}

/// A whole answer.
pub(crate) struct Response {
    method: Method,
    path: String,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    /// The credential the request carried, to scrub from error messages.
    secret: Option<Secret>,
}

impl Response {
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// GitHub's error body (empty when it is not one).
    pub(crate) fn error_body(&self) -> ErrorWire {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }

    /// GitHub's message: the `message` and `errors` of its error body, or the
    /// start of a body of another kind (a proxy's HTML page).
    pub(crate) fn message(&self) -> String {
        let summary = self.error_body().summary();
        let text = if !summary.is_empty() {
            summary
        } else if self.body.is_empty() {
            "(no body)".to_owned()
        } else {
            let lossy = String::from_utf8_lossy(&self.body);
            truncate_chars(lossy.trim(), BODY_SNIPPET)
        };
        match &self.secret {
            Some(secret) if !secret.is_empty() => text.replace(secret.expose(), "***"),
            _ => text,
        }
    }

    pub(crate) fn error(&self) -> GitHubError {
        GitHubError::Api {
            method: self.method.clone(),
            path: self.path.clone(),
            status: self.status,
            message: self.message(),
        }
    }

    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, GitHubError> {
        serde_json::from_slice(&self.body).map_err(|e| GitHubError::Decode {
            method: self.method.clone(),
            path: self.path.clone(),
            status: self.status,
            reason: e.to_string(),
        })
    }

    /// The body of a success, or the error.
    pub(crate) fn ok_json<T: DeserializeOwned>(&self) -> Result<T, GitHubError> {
        if !self.is_success() {
            return Err(self.error());
        }
        self.json()
    }

    pub(crate) fn ok(&self) -> Result<(), GitHubError> {
        if self.is_success() {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// The `rel="next"` page of a list, as a path and query.
    fn next_page(&self) -> Option<String> {
        next_link(&self.headers)
    }
}

/// The `rel="next"` target of a `Link` header
/// (`<https://api.github.com/...?page=2>; rel="next", <...>; rel="last"`),
/// as a path and query: a relative target keeps octocrab sending it to the
/// configured API with the credentials (it only sends them to that host).
fn next_link(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(http::header::LINK) {
        let Ok(value) = value.to_str() else { continue };
        for part in value.split(',') {
            let mut pieces = part.split(';');
            let Some(url) = pieces.next() else { continue };
            let is_next = pieces.any(|p| {
                let p = p.trim();
                p == "rel=\"next\"" || p == "rel=next"
            });
            if !is_next {
                continue;
            }
            let url = url.trim().trim_start_matches('<').trim_end_matches('>');
            let uri: http::Uri = url.parse().ok()?;
            return uri.path_and_query().map(|pq| pq.as_str().to_owned());
        }
    }
    None
}

impl GitHub {
    /// A builder for the API at `api_url` (`https://api.github.com`, or
    /// `https://HOST/api/v3` for GitHub Enterprise Server).
    pub fn builder(api_url: impl Into<String>) -> GitHubBuilder {
        GitHubBuilder {
            api_url: api_url.into(),
            credentials: None,
            policy: RetryPolicy::default(),
            on_call: None,
            renew_before: Duration::from_secs(5 * 60),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            bot_login: None,
        }
    }

    pub fn api_url(&self) -> &str {
        &self.inner.api_url
    }

    /// Whether the client authenticates as a GitHub App.
    pub fn is_app(&self) -> bool {
        matches!(self.inner.auth, AuthMode::App { .. })
    }

    /// A handle on one repository.
    pub fn repo(&self, owner: impl Into<String>, name: impl Into<String>) -> RepoClient {
        RepoClient::new(self.clone(), owner.into(), name.into())
    }

    pub(crate) fn bot_login(&self) -> Option<&str> {
        self.inner.bot_login.as_deref()
    }

    /// The installations of the App (`GET /app/installations`, every page).
    pub async fn installations(&self) -> Result<Vec<Installation>, GitHubError> {
        self.require_app("listing installations")?;
        let req = Request::get("/app/installations", "/app/installations".into(), As::App)
            .query("per_page", "100");
        self.get_pages(req, |page: Vec<InstallationWire>| {
            page.into_iter().map(Installation::from).collect()
        })
        .await
    }

    /// The repositories an installation can reach
    /// (`GET /installation/repositories`, every page).
    pub async fn installation_repositories(
        &self,
        installation_id: u64,
    ) -> Result<Vec<Repository>, GitHubError> {
        self.require_app("listing an installation's repositories")?;
        let req = Request::get(
            "/installation/repositories",
            "/installation/repositories".into(),
            As::Installation(installation_id),
        )
        .query("per_page", "100");
        self.get_pages(req, |page: InstallationRepositoriesWire| {
            page.repositories
                .into_iter()
                .map(Repository::from)
                .collect()
        })
        .await
    }

    /// The current token of an installation, minted
    /// (`POST /app/installations/{id}/access_tokens`) when there is none or it
    /// expires within the renewal margin.
    pub async fn installation_token(&self, installation_id: u64) -> Result<Secret, GitHubError> {
        let AuthMode::App { tokens, .. } = &self.inner.auth else {
            return Err(GitHubError::NotAnApp {
                what: "an installation token",
            });
        };
        let mut tokens = tokens.lock().await;
        if let Some(cached) = tokens.get(&installation_id) {
            if cached.expires_at > SystemTime::now() + self.inner.renew_before {
                return Ok(cached.token.clone());
            }
        }
        let path = format!("/app/installations/{installation_id}/access_tokens");
        let req = Request::new(
            Method::POST,
            "/app/installations/{installation_id}/access_tokens",
            path,
            As::App,
        )
        .json(serde_json::json!({}));
        // As the App, without going through `client_for` (which comes here).
        let app = || async { Ok((self.inner.crab.clone(), None)) };
        let resp = self.run(&req, app).await?;
        let wire: AccessTokenWire = resp.ok_json()?;
        let expires_at = chrono::DateTime::parse_from_rfc3339(&wire.expires_at)
            .map(SystemTime::from)
            .map_err(|e| GitHubError::Decode {
                method: req.method.clone(),
                path: req.path.clone(),
                status: resp.status(),
                reason: format!("expires_at {:?}: {e}", wire.expires_at),
            })?;
        let token = Secret::new(wire.token);
        tracing::debug!(
            installation_id,
            expires_at = %rfc3339(&expires_at),
            "minted a GitHub installation token"
        );
        tokens.insert(
            installation_id,
            CachedToken {
                token: token.clone(),
                expires_at,
            },
        );
        Ok(token)
    }

    /// Drops a cached installation token GitHub refused, unless another task
    /// has replaced it already.
    async fn forget_token(&self, installation_id: u64, refused: Option<&Secret>) {
        if let AuthMode::App { tokens, .. } = &self.inner.auth {
            let mut tokens = tokens.lock().await;
            if tokens
                .get(&installation_id)
                .is_some_and(|c| Some(&c.token) == refused)
            {
                tokens.remove(&installation_id);
            }
        }
    }

    fn require_app(&self, what: &'static str) -> Result<(), GitHubError> {
        if self.is_app() {
            Ok(())
        } else {
            Err(GitHubError::NotAnApp { what })
        }
    }

    /// The installation of the App on `owner/name`
    /// (`GET /repos/{owner}/{repo}/installation`), cached.
    pub(crate) async fn repo_installation(
        &self,
        owner: &str,
        name: &str,
    ) -> Result<u64, GitHubError> {
        let AuthMode::App {
            repo_installations, ..
        } = &self.inner.auth
        else {
            return Err(GitHubError::NotAnApp {
                what: "finding a repository's installation",
            });
        };
        let key = format!("{owner}/{name}").to_lowercase();
        if let Some(id) = lock(repo_installations).get(&key) {
            return Ok(*id);
        }
        let path = format!(
            "/repos/{}/{}/installation",
            text::segment(owner),
            text::segment(name)
        );
        let req = Request::get("/repos/{owner}/{repo}/installation", path, As::App);
        let installation: InstallationWire = self.send(&req).await?.ok_json()?;
        lock(repo_installations).insert(key, installation.id);
        Ok(installation.id)
    }

    /// The client and credential for one attempt.
    async fn client_for(&self, auth: As) -> Result<(Octocrab, Option<Secret>), GitHubError> {
        match (&self.inner.auth, auth) {
            (AuthMode::Token(token), As::Token) => {
                Ok((self.inner.crab.clone(), Some(token.clone())))
            }
            (AuthMode::Token(_), _) => Err(GitHubError::NotAnApp {
                what: "an App or installation request",
            }),
            (AuthMode::App { .. }, As::App) => Ok((self.inner.crab.clone(), None)),
            (AuthMode::App { .. }, As::Installation(id)) => {
                let token = self.installation_token(id).await?;
                let crab = self
                    .inner
                    .crab
                    .user_access_token(token.expose().to_owned())
                    .map_err(|e| GitHubError::Config(format!("installation client: {e}")))?;
                Ok((crab, Some(token)))
            }
            (AuthMode::App { .. }, As::Token) => Err(GitHubError::Config(
                "a repository request needs an installation in App mode".into(),
            )),
        }
    }

    /// Sends `req` under the retry policy; returns the final answer, whatever
    /// its status. Callers turn an error status into [`GitHubError::Api`].
    pub(crate) async fn send(&self, req: &Request) -> Result<Response, GitHubError> {
        self.run(req, || self.client_for(req.auth)).await
    }

    /// The retry loop of [`send`](GitHub::send), taking the client and
    /// credential of each attempt from `client`.
    async fn run<C, F>(&self, req: &Request, client: C) -> Result<Response, GitHubError>
    where
        C: Fn() -> F,
        F: Future<Output = Result<(Octocrab, Option<Secret>), GitHubError>>,
    {
        let policy = &self.inner.policy;
        let max_attempts = policy.max_attempts.max(1);
        let mut attempt = 0u32;
        let mut failures = 0u32;
        let mut waits = 0u32;
        let mut reauthenticated = false;
        loop {
            attempt += 1;
            let (crab, secret) = client().await?;
            let started = Instant::now();
            let outcome = attempt_once(&crab, req).await;
            let duration = started.elapsed();
            let status = match &outcome {
                Ok((status, _, _)) => status.as_u16(),
                Err(_) => 0,
            };
            tracing::debug!(method = %req.method, path = %req.path, status, attempt, ?duration, "GitHub API call");
            if let Some(hook) = &self.inner.on_call {
                hook(&ApiCall {
                    method: req.method.clone(),
                    route: req.route,
                    path: req.path.clone(),
                    status,
                    duration,
                    attempt,
                });
            }
            let (status, headers, body) = match outcome {
                Ok(answer) => answer,
                Err(AttemptError::Invalid(reason)) => {
                    return Err(GitHubError::InvalidArgument(format!(
                        "{} {}: {reason}",
                        req.method, req.path
                    )))
                }
                Err(AttemptError::Transport(reason)) => {
                    failures += 1;
                    if failures >= max_attempts {
                        return Err(GitHubError::Transport {
                            method: req.method.clone(),
                            path: req.path.clone(),
                            attempts: attempt,
                            reason,
                        });
                    }
                    let delay = policy.backoff(failures);
                    tracing::warn!(method = %req.method, path = %req.path, %reason, ?delay, "GitHub unreachable; retrying");
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            let response = Response {
                method: req.method.clone(),
                path: req.path.clone(),
                status,
                headers,
                body,
                secret,
            };
            if status == StatusCode::UNAUTHORIZED && !reauthenticated {
                if let As::Installation(id) = req.auth {
                    // Revoked or expired early: mint a new token, once.
                    reauthenticated = true;
                    self.forget_token(id, response.secret.as_ref()).await;
                    continue;
                }
            }
            match retry::classify(
                status,
                &response.headers,
                &response.body,
                SystemTime::now(),
                policy,
            ) {
                Verdict::Final => return Ok(response),
                Verdict::ServerError => {
                    failures += 1;
                    if failures >= max_attempts {
                        return Ok(response);
                    }
                    let delay = policy.backoff(failures);
                    tracing::warn!(method = %req.method, path = %req.path, %status, ?delay, "GitHub server error; retrying");
                    tokio::time::sleep(delay).await;
                }
                Verdict::RateLimited { wait, retry_at } => {
                    if wait > policy.max_wait || waits >= policy.max_rate_limit_waits {
                        return Err(GitHubError::RateLimited {
                            route: format!("{} {}", req.method, req.path),
                            retry_at,
                        });
                    }
                    waits += 1;
                    tracing::warn!(method = %req.method, path = %req.path, %status, ?wait, "GitHub rate limit; waiting");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Every item of a paginated list, following `Link: rel="next"`.
    pub(crate) async fn get_pages<W, T>(
        &self,
        mut req: Request,
        mut items: impl FnMut(W) -> Vec<T>,
    ) -> Result<Vec<T>, GitHubError>
    where
        W: DeserializeOwned,
    {
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let resp = self.send(&req).await?;
            out.extend(items(resp.ok_json::<W>()?));
            match resp.next_page() {
                Some(next) => req.target = next,
                None => return Ok(out),
            }
        }
        tracing::warn!(path = %req.path, pages = MAX_PAGES, "stopped following a long GitHub list");
        Ok(out)
    }
}

enum AttemptError {
    /// No answer: worth another attempt.
    Transport(String),
    /// The request could not even be built: a bug or a bad argument.
    Invalid(String),
}

/// One HTTP exchange through octocrab, body read in full.
async fn attempt_once(
    crab: &Octocrab,
    req: &Request,
) -> Result<(StatusCode, HeaderMap, Bytes), AttemptError> {
    let builder = http::Request::builder()
        .method(req.method.clone())
        .uri(req.target.as_str())
        .header(http::header::ACCEPT, "application/vnd.github+json");
    let request = crab
        .build_request(builder, req.body.as_ref())
        .map_err(|e| AttemptError::Invalid(describe(&e)))?;
    let response = crab
        .execute(request)
        .await
        .map_err(|e| AttemptError::Transport(describe(&e)))?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| AttemptError::Transport(format!("reading the body: {}", describe(&e))))?
        .to_bytes();
    Ok((parts.status, parts.headers, body))
}

/// An error and its causes, on one line.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock leaves a plain map behind: still usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_is_made_relative() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::LINK,
            r#"<https://api.github.com/repositories/1/issues/3/comments?per_page=100&page=2>; rel="next", <https://api.github.com/repositories/1/issues/3/comments?per_page=100&page=5>; rel="last""#
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("/repositories/1/issues/3/comments?per_page=100&page=2")
        );
        let mut last_page = HeaderMap::new();
        last_page.insert(
            http::header::LINK,
            r#"<http://127.0.0.1:9/x?page=1>; rel="first", <http://127.0.0.1:9/x?page=1>; rel="prev""#
                .parse()
                .unwrap(),
        );
        assert_eq!(next_link(&last_page), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn request_query_is_encoded() {
        let req = Request::get(
            "/repos/{owner}/{repo}/pulls",
            "/repos/o/r/pulls".into(),
            As::Token,
        )
        .query("state", "open")
        .query("head", "o:cairn/daily");
        assert_eq!(
            req.target,
            "/repos/o/r/pulls?state=open&head=o%3Acairn%2Fdaily"
        );
        assert_eq!(req.path, "/repos/o/r/pulls");
    }

    #[test]
    fn error_messages_scrub_the_token() {
        let resp = Response {
            method: Method::GET,
            path: "/repos/o/r".into(),
            status: StatusCode::UNAUTHORIZED,
            headers: HeaderMap::new(),
            body: Bytes::from_static(br#"{"message":"Bad credentials for ghp_abc"}"#),
            secret: Some(Secret::new("ghp_abc")),
        };
        assert_eq!(
            resp.error().to_string(),
            "GET /repos/o/r: 401 Unauthorized: Bad credentials for ***"
        );
        let html = Response {
            body: Bytes::from_static(b"<html>bad gateway</html>"),
            status: StatusCode::BAD_GATEWAY,
            secret: None,
            ..resp
        };
        assert_eq!(
            html.error().to_string(),
            "GET /repos/o/r: 502 Bad Gateway: <html>bad gateway</html>"
        );
    }

    #[test]
    fn rate_limited_names_the_route_and_time() {
        let err = GitHubError::RateLimited {
            route: "GET /repos/o/r/pulls".into(),
            retry_at: std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        };
        assert_eq!(
            err.to_string(),
            "GET /repos/o/r/pulls: rate limited by GitHub until 2023-11-14T22:13:20Z; not waiting that long"
        );
    }
}
