//! cairn's GitHub client against the fake GitHub over real HTTP: both kinds of
//! authentication, pull requests on real bare git repositories, statuses,
//! comments, and the retry and rate-limit policy.

use crate::support::fake_github;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use cairn::github::{
    pipeline_marker, ApiCall, GitHub, GitHubError, MergeMethod, MergeOutcome, MergeableState,
    Permission, Reaction, RetryPolicy, Secret, StatusState,
};
use fake_github::{git, FakeGitHub, Fault};

const TOKEN: &str = "ghp_cairnTestToken0123456789abcdefABCD";
const OWNER: &str = "octo";
const REPO: &str = "datasets";
const FULL: &str = "octo/datasets";
const APP_ID: u64 = 4242;
const INSTALLATION: u64 = 77;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/github")
        .join(name)
}

fn read_fixture(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).expect("fixture")
}

/// Tiny delays, so that the tests measure the policy, not wait on it.
fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        secondary_min_wait: Duration::from_millis(300),
        max_wait: Duration::from_secs(5),
        max_rate_limit_waits: 3,
    }
}

/// A fake with repository `octo/datasets` over a bare repository whose `main`
/// has one commit, and the test token accepted.
struct Setup {
    fake: FakeGitHub,
    git_dir: PathBuf,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let fake = FakeGitHub::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let git_dir = git::init_bare(&dir.path().join("origin.git"), "main");
    git::commit(
        &git_dir,
        "main",
        None,
        &[("README.md", "datasets\n"), ("data/.gitignore", "/raw\n")],
        "initial",
    );
    fake.add_repo(OWNER, REPO, "main", &git_dir);
    fake.accept_token(TOKEN);
    Setup {
        fake,
        git_dir,
        _dir: dir,
    }
}

fn token_client(fake: &FakeGitHub) -> GitHub {
    GitHub::builder(&fake.url)
        .token(Secret::new(TOKEN))
        .retry_policy(fast_policy())
        .build()
        .expect("client")
}

/// A client whose every attempt is recorded.
fn recording_client(fake: &FakeGitHub) -> (GitHub, Arc<Mutex<Vec<ApiCall>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let sink = calls.clone();
    let gh = GitHub::builder(&fake.url)
        .token(Secret::new(TOKEN))
        .retry_policy(fast_policy())
        .on_call(Arc::new(move |call: &ApiCall| {
            sink.lock().unwrap().push(call.clone())
        }))
        .build()
        .expect("client");
    (gh, calls)
}

/// A branch with one commit on top of `main`; returns its sha.
fn branch(s: &Setup, name: &str, file: &str, content: &str) -> String {
    git::commit(
        &s.git_dir,
        name,
        Some("main"),
        &[(file, content)],
        &format!("update {file}"),
    )
}

/// Neither the text nor the debug form of `err` holds any of `secrets`.
fn assert_no_secret(err: &GitHubError, secrets: &[&str]) {
    let shown = format!("{err} / {err:?}");
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(!shown.contains(secret), "{shown} leaks a credential");
    }
}

#[tokio::test]
async fn token_auth_reads_the_repository() {
    let s = setup().await;
    let gh = token_client(&s.fake);
    let repo = gh.repo(OWNER, REPO).repository().await.expect("repository");
    assert_eq!(repo.full_name, FULL);
    assert_eq!(repo.owner, OWNER);
    assert_eq!(repo.name, REPO);
    assert_eq!(repo.default_branch, "main");
    assert_eq!(repo.clone_url, git::file_url(&s.git_dir));
    assert!(repo.id > 0);
    assert_eq!(
        gh.repo(OWNER, REPO).git_token().await.unwrap().expose(),
        TOKEN
    );
    let log = s.fake.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].bearer.as_deref(), Some(TOKEN));

    // Another token is refused; the error names the route and status, not the token.
    let wrong = "ghp_notTheRightToken999";
    let bad = GitHub::builder(&s.fake.url)
        .token(Secret::new(wrong))
        .retry_policy(fast_policy())
        .build()
        .unwrap();
    let err = bad.repo(OWNER, REPO).repository().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "GET /repos/octo/datasets: 401 Unauthorized: Bad credentials"
    );
    assert_no_secret(&err, &[wrong, TOKEN]);
    assert!(!format!("{bad:?}").contains(wrong));

    // A missing repository.
    let err = gh.repo(OWNER, "nope").repository().await.unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::NOT_FOUND));
    assert_eq!(
        err.to_string(),
        "GET /repos/octo/nope: 404 Not Found: Not Found"
    );
}

fn app_fake(s: &Setup) {
    s.fake.enable_app(
        APP_ID,
        "cairn",
        read_fixture("app-public-key.pem").as_bytes(),
    );
    s.fake.add_installation(INSTALLATION, OWNER, &[FULL]);
}

fn app_client(fake: &FakeGitHub, app_id: u64, key: &str, renew_before: Duration) -> GitHub {
    GitHub::builder(&fake.url)
        .app(app_id, Secret::new(read_fixture(key)))
        .retry_policy(fast_policy())
        .token_renew_before(renew_before)
        .build()
        .expect("app client")
}

fn minted(fake: &FakeGitHub) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/access_tokens"))
        .count()
}

#[tokio::test]
async fn app_auth_lists_installations_and_renews_tokens_before_expiry() {
    let s = setup().await;
    app_fake(&s);
    // Tokens live 10 s (whole seconds, so 9-10 s); renewed 8 s before expiry.
    s.fake.set_token_lifetime(Duration::from_secs(10));
    let gh = app_client(
        &s.fake,
        APP_ID,
        "app-private-key.pem",
        Duration::from_secs(8),
    );
    assert!(gh.is_app());

    let installations = gh.installations().await.expect("installations");
    assert_eq!(installations.len(), 1);
    assert_eq!(installations[0].id, INSTALLATION);
    assert_eq!(installations[0].account, OWNER);
    let repos = gh
        .installation_repositories(INSTALLATION)
        .await
        .expect("installation repositories");
    assert_eq!(
        repos
            .iter()
            .map(|r| r.full_name.as_str())
            .collect::<Vec<_>>(),
        [FULL]
    );
    assert_eq!(minted(&s.fake), 1);

    let repo = gh.repo(OWNER, REPO);
    assert_eq!(repo.installation_id().await.unwrap(), INSTALLATION);
    let first = repo.git_token().await.unwrap();
    assert!(first.expose().starts_with("ghs_"));
    assert_eq!(format!("{first:?}"), "***");
    assert_eq!(repo.repository().await.unwrap().full_name, FULL);
    assert_eq!(repo.git_token().await.unwrap(), first, "cached");
    assert_eq!(minted(&s.fake), 1);

    // Past the renewal point (1-2 s in), but long before expiry.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(repo.repository().await.unwrap().full_name, FULL);
    let second = repo.git_token().await.unwrap();
    assert_ne!(second, first, "renewed");
    assert_eq!(minted(&s.fake), 2);
    let issued_first = s.fake.world().issued[first.expose()].expires_at;
    assert!(issued_first > SystemTime::now(), "renewed before expiry");

    let log = s.fake.requests();
    // The repository's installation was looked up once, with the JWT.
    let lookups: Vec<_> = log
        .iter()
        .filter(|r| r.path == "/repos/octo/datasets/installation")
        .collect();
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0].bearer.as_ref().unwrap().matches('.').count(), 2);
    // Repository calls carried installation tokens, the new one last.
    let repo_calls: Vec<_> = log
        .iter()
        .filter(|r| r.path == "/repos/octo/datasets")
        .collect();
    assert_eq!(repo_calls.len(), 2);
    assert_eq!(repo_calls[0].bearer.as_deref(), Some(first.expose()));
    assert_eq!(repo_calls[1].bearer.as_deref(), Some(second.expose()));
    assert!(log.iter().all(|r| r.status < 400), "{log:?}");
}

#[tokio::test]
async fn a_revoked_installation_token_is_replaced_once() {
    let s = setup().await;
    app_fake(&s);
    let gh = app_client(
        &s.fake,
        APP_ID,
        "app-private-key.pem",
        Duration::from_secs(300),
    );
    let repo = gh.repo(OWNER, REPO);
    let first = repo.git_token().await.unwrap();
    s.fake.world().issued.remove(first.expose());
    assert_eq!(repo.repository().await.unwrap().full_name, FULL);
    let second = repo.git_token().await.unwrap();
    assert_ne!(first, second);
    let statuses: Vec<u16> = s
        .fake
        .requests()
        .iter()
        .filter(|r| r.path == "/repos/octo/datasets")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [401, 200]);
}

#[tokio::test]
async fn jwts_the_fake_rejects() {
    let s = setup().await;
    app_fake(&s);
    // Signed with a key GitHub does not know.
    let stranger = app_client(
        &s.fake,
        APP_ID,
        "other-private-key.pem",
        Duration::from_secs(300),
    );
    let err = stranger.installations().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "GET /app/installations: 401 Unauthorized: A JSON web token could not be decoded"
    );
    let jwt = s.fake.requests()[0].bearer.clone().unwrap();
    assert_no_secret(&err, &[&jwt, "PRIVATE KEY"]);
    // A repository call fails at the installation lookup, same reason.
    let err = stranger.repo(OWNER, REPO).repository().await.unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::UNAUTHORIZED));
    assert!(err
        .to_string()
        .starts_with("GET /repos/octo/datasets/installation: 401"));

    // The right key, but another app's id.
    let impostor = app_client(
        &s.fake,
        APP_ID + 1,
        "app-private-key.pem",
        Duration::from_secs(300),
    );
    let err = impostor.installations().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "GET /app/installations: 401 Unauthorized: A JSON web token could not be decoded"
    );

    // Not a key at all: a settings error that does not quote it.
    let err = GitHub::builder(&s.fake.url)
        .app(
            APP_ID,
            Secret::new("-----BEGIN RSA PRIVATE KEY-----\nsecretstuff\n"),
        )
        .build()
        .unwrap_err();
    assert!(matches!(err, GitHubError::Config(_)));
    assert_no_secret(&err, &["secretstuff"]);

    // App-only calls in token mode.
    let err = token_client(&s.fake).installations().await.unwrap_err();
    assert!(matches!(err, GitHubError::NotAnApp { .. }), "{err}");
}

#[tokio::test]
async fn creating_a_pull_twice_returns_the_same_one_then_updates_it() {
    let s = setup().await;
    let gh = token_client(&s.fake);
    let repo = gh.repo(OWNER, REPO);
    let head_sha = branch(&s, "cairn/daily", "data/daily.dvc", "md5: 1\n");

    let first = repo
        .create_pull("daily: new version", "cairn/daily", "main", "v1")
        .await
        .expect("create");
    assert!(first.created);
    assert_eq!(first.pull.head_ref, "cairn/daily");
    assert_eq!(first.pull.head_sha, head_sha);
    assert_eq!(first.pull.base_ref, "main");
    assert!(first.pull.is_open());

    let again = repo
        .create_pull("daily: new version", "cairn/daily", "main", "v1")
        .await
        .expect("second create");
    assert!(!again.created);
    assert_eq!(again.pull.number, first.pull.number);
    assert_eq!(s.fake.pulls(FULL).len(), 1, "no duplicate");

    let updated = repo
        .update_pull(first.pull.number, "daily: newer version", "v2")
        .await
        .expect("update");
    assert_eq!(updated.number, first.pull.number);
    assert_eq!(updated.title, "daily: newer version");
    assert_eq!(updated.body.as_deref(), Some("v2"));
    let stored = s.fake.pull(FULL, first.pull.number).unwrap();
    assert_eq!(stored.title, "daily: newer version");
    assert_eq!(stored.body.as_deref(), Some("v2"));

    // Other 422s stay errors: a head branch that does not exist.
    let err = repo
        .create_pull("x", "no-such-branch", "main", "")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "POST /repos/octo/datasets/pulls: 422 Unprocessable Entity: Validation Failed (PullRequest.head: invalid)"
    );
}

#[tokio::test]
async fn a_lost_create_answer_does_not_make_a_duplicate() {
    let s = setup().await;
    let gh = token_client(&s.fake);
    let repo = gh.repo(OWNER, REPO);
    branch(&s, "cairn/daily", "data/daily.dvc", "md5: 1\n");
    // The pull request is created, but the answer is a 502: the retry gets
    // "already exists", and the client returns the one that was made.
    s.fake.inject(
        Fault::status(502)
            .on("POST", "/repos/{owner}/{repo}/pulls")
            .after_serving(),
    );
    let created = repo
        .create_pull("t", "cairn/daily", "main", "")
        .await
        .expect("create");
    assert!(!created.created);
    let pulls = s.fake.pulls(FULL);
    assert_eq!(pulls.len(), 1, "no duplicate");
    assert_eq!(created.pull.number, pulls[0].number);
    let posts: Vec<u16> = s
        .fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.status)
        .collect();
    assert_eq!(posts, [502, 422]);
}

#[tokio::test]
async fn find_open_pull_by_a_branch_with_slashes() {
    let s = setup().await;
    let gh = token_client(&s.fake);
    let repo = gh.repo(OWNER, REPO);
    branch(&s, "cairn/team/daily", "a.txt", "a\n");
    assert_eq!(repo.find_open_pull("cairn/team/daily").await.unwrap(), None);
    let pull = repo
        .create_pull("t", "cairn/team/daily", "main", "")
        .await
        .unwrap()
        .pull;
    let found = repo
        .find_open_pull("cairn/team/daily")
        .await
        .unwrap()
        .expect("found");
    assert_eq!(found.number, pull.number);
    assert_eq!(found.head_ref, "cairn/team/daily");
    assert_eq!(repo.find_open_pull("cairn/team").await.unwrap(), None);
    let queries: Vec<String> = s
        .fake
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/repos/octo/datasets/pulls")
        .filter_map(|r| r.query.clone())
        .collect();
    assert!(
        queries
            .iter()
            .any(|q| q.contains("head=octo%3Acairn%2Fteam%2Fdaily")),
        "{queries:?}"
    );
}

#[tokio::test]
async fn merging_a_clean_pull_advances_the_base() {
    let s = setup().await;
    let gh = token_client(&s.fake);
    let repo = gh.repo(OWNER, REPO);
    let head = branch(&s, "cairn/daily", "data/daily.dvc", "md5: 1\n");
    let number = repo
        .create_pull("t", "cairn/daily", "main", "")
        .await
        .unwrap()
        .pull
        .number;

    let ready = repo.merge_readiness(number).await.unwrap();
    assert!(ready.can_merge(), "{ready}");
    assert_eq!(ready.state, MergeableState::Clean);
    assert_eq!(ready.to_string(), format!("#{number} can be merged"));

    // A stale head sha is refused with GitHub's message.
    let stale = "0".repeat(40);
    assert_eq!(
        repo.merge_pull(number, &stale, MergeMethod::Merge, "merge", None)
            .await
            .unwrap(),
        MergeOutcome::NotMergeable {
            status: 409,
            reason: "Head branch was modified. Review and try the merge again.".into()
        }
    );

    let outcome = repo
        .merge_pull(number, &head, MergeMethod::Merge, "daily: merge", None)
        .await
        .unwrap();
    // main was an ancestor of the head: the fake fast-forwards.
    assert_eq!(outcome, MergeOutcome::Merged { sha: head.clone() });
    assert_eq!(git::branch_sha(&s.git_dir, "main").unwrap(), head);
    let pull = repo.pull(number).await.unwrap();
    assert!(pull.merged);
    assert!(!pull.is_open());
    let after = repo.merge_readiness(number).await.unwrap();
    assert_eq!(after.to_string(), format!("#{number} is already merged"));
}

#[tokio::test]
async fn merging_a_diverged_pull_writes_a_merge_commit() {
    let s = setup().await;
    let gh = token_client(&s.fake);
    let repo = gh.repo(OWNER, REPO);
    let head = branch(&s, "cairn/daily", "data/daily.dvc", "md5: 1\n");
    let old_main = git::commit(&s.git_dir, "main", None, &[("NOTES.md", "n\n")], "notes");
    let number = repo
        .create_pull("t", "cairn/daily", "main", "")
        .await
        .unwrap()
        .pull
        .number;
    let outcome = repo
        .merge_pull(number, &head, MergeMethod::Merge, "daily: merge", None)
        .await
        .unwrap();
    let MergeOutcome::Merged { sha } = outcome else {
        panic!("not merged: {outcome:?}")
    };
    assert_eq!(git::branch_sha(&s.git_dir, "main").unwrap(), sha);
    assert_eq!(git::parents(&s.git_dir, &sha), [old_main, head]);
    assert_eq!(
        git::read_file(&s.git_dir, "main", "data/daily.dvc").as_deref(),
        Some("md5: 1\n")
    );
    assert_eq!(
        git::read_file(&s.git_dir, "main", "NOTES.md").as_deref(),
        Some("n\n")
    );
}

#[tokio::test]
async fn a_squash_merge_writes_one_commit_with_the_message() {
    let s = setup().await;
    let gh = token_client(&s.fake);
    let repo = gh.repo(OWNER, REPO);
    let head = branch(&s, "cairn/daily", "data/daily.dvc", "md5: 2\n");
    let old_main = git::commit(&s.git_dir, "main", None, &[("NOTES.md", "n\n")], "notes");
    let number = repo
        .create_pull("t", "cairn/daily", "main", "")
        .await
        .unwrap()
        .pull
        .number;
    let outcome = repo
        .merge_pull(
            number,
            &head,
            MergeMethod::Squash,
            "daily: version 2",
            Some("Cairn-Run: run-1"),
        )
        .await
        .unwrap();
    let MergeOutcome::Merged { sha } = outcome else {
        panic!("not merged: {outcome:?}")
    };
    assert_eq!(git::branch_sha(&s.git_dir, "main").unwrap(), sha);
    assert_eq!(git::parents(&s.git_dir, &sha), [old_main]);
    assert_eq!(
        git::message(&s.git_dir, &sha),
        "daily: version 2\n\nCairn-Run: run-1"
    );
    assert_eq!(
        git::read_file(&s.git_dir, "main", "data/daily.dvc").as_deref(),
        Some("md5: 2\n")
    );
}

#[tokio::test]
async fn conflicts_are_explained_and_refused() {
    let s = setup().await;
    let gh = token_client(&s.fake);
    let repo = gh.repo(OWNER, REPO);
    let head = branch(&s, "cairn/daily", "README.md", "ours\n");
    git::commit(
        &s.git_dir,
        "main",
        None,
        &[("README.md", "theirs\n")],
        "edit",
    );
    let number = repo
        .create_pull("t", "cairn/daily", "main", "")
        .await
        .unwrap()
        .pull
        .number;
    let ready = repo.merge_readiness(number).await.unwrap();
    assert_eq!(ready.state, MergeableState::Dirty);
    assert_eq!(
        ready.to_string(),
        format!("#{number} has merge conflicts with main")
    );
    let outcome = repo
        .merge_pull(number, &head, MergeMethod::Squash, "t", None)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        MergeOutcome::NotMergeable {
            status: 405,
            reason: "Pull Request is not mergeable".into()
        }
    );
}

#[tokio::test]
async fn a_pending_required_status_blocks_the_merge_and_is_named() {
    let s = setup().await;
    s.fake.require_contexts(FULL, &["ci/build"]);
    let gh = token_client(&s.fake);
    let repo = gh.repo(OWNER, REPO);
    let head = branch(&s, "cairn/daily", "data/daily.dvc", "md5: 1\n");
    let number = repo
        .create_pull("t", "cairn/daily", "main", "")
        .await
        .unwrap()
        .pull
        .number;
    repo.set_status(&head, StatusState::Pending, "ci/build", "building", None)
        .await
        .unwrap();
    s.fake
        .set_check_run(FULL, &head, "lint", "completed", Some("failure"));

    let ready = repo.merge_readiness(number).await.unwrap();
    assert_eq!(ready.state, MergeableState::Blocked);
    assert!(!ready.can_merge());
    assert_eq!(ready.pending, ["ci/build"]);
    assert_eq!(ready.failing, ["lint"]);
    assert_eq!(
        ready.to_string(),
        format!("#{number} is blocked: waiting for ci/build; failing: lint")
    );
    let outcome = repo
        .merge_pull(number, &head, MergeMethod::Merge, "t", None)
        .await
        .unwrap();
    match outcome {
        MergeOutcome::NotMergeable { status, reason } => {
            assert_eq!(status, 405);
            assert!(
                reason.contains("Required status check \"ci/build\" is expected"),
                "{reason}"
            );
        }
        other => panic!("merged despite a pending required status: {other:?}"),
    }
    assert_ne!(git::branch_sha(&s.git_dir, "main").unwrap(), head);

    // Once green, it merges (lint is not required: unstable, still mergeable).
    repo.set_status(&head, StatusState::Success, "ci/build", "built", None)
        .await
        .unwrap();
    let ready = repo.merge_readiness(number).await.unwrap();
    assert_eq!(ready.state, MergeableState::Unstable);
    assert!(ready.can_merge(), "{ready}");
    assert!(matches!(
        repo.merge_pull(number, &head, MergeMethod::Merge, "t", None)
            .await
            .unwrap(),
        MergeOutcome::Merged { .. }
    ));
}

#[tokio::test]
async fn still_computing_is_reported_as_such() {
    let s = setup().await;
    let gh = token_client(&s.fake);
    let repo = gh.repo(OWNER, REPO);
    branch(&s, "cairn/daily", "a.txt", "a\n");
    let number = repo
        .create_pull("t", "cairn/daily", "main", "")
        .await
        .unwrap()
        .pull
        .number;
    s.fake.set_computing(FULL, number, 1);
    let ready = repo.merge_readiness(number).await.unwrap();
    assert!(ready.is_computing() && !ready.can_merge());
    assert!(ready.to_string().contains("still computing"), "{ready}");
    assert!(repo.merge_readiness(number).await.unwrap().can_merge());
}

#[tokio::test]
async fn long_status_descriptions_are_cut_to_140_chars() {
    let s = setup().await;
    let gh = token_client(&s.fake);
    let repo = gh.repo(OWNER, REPO);
    let sha = git::branch_sha(&s.git_dir, "main").unwrap();
    let long = "é".repeat(300);
    repo.set_status(
        &sha,
        StatusState::Failure,
        "cairn/daily",
        &long,
        Some("https://cairn.example/runs/1"),
    )
    .await
    .expect("set status");
    let stored = s.fake.statuses(FULL, &sha);
    assert_eq!(stored.len(), 1);
    let description = stored[0].description.clone().unwrap();
    assert_eq!(description.chars().count(), 140);
    assert!(description.ends_with('…'));
    assert_eq!(stored[0].state, "failure");
    assert_eq!(
        stored[0].target_url.as_deref(),
        Some("https://cairn.example/runs/1")
    );
    let combined = repo.combined_status(&sha).await.unwrap();
    assert_eq!(combined.state, StatusState::Failure);
    assert_eq!(combined.statuses.len(), 1);
    assert_eq!(combined.statuses[0].context, "cairn/daily");
}

#[tokio::test]
async fn upsert_comment_edits_in_place_across_pages() {
    let s = setup().await;
    let gh = GitHub::builder(&s.fake.url)
        .token(Secret::new(TOKEN))
        .retry_policy(fast_policy())
        .bot_login("cairn-bot")
        .build()
        .unwrap();
    let repo = gh.repo(OWNER, REPO);
    let issue = s.fake.add_issue(FULL);
    let marker = pipeline_marker("daily");
    // A human quoting the marker, and another pipeline's comment, come first.
    s.fake
        .add_comment(FULL, issue, "alice", &format!("> {marker}\n> quoted"));
    s.fake.add_comment(
        FULL,
        issue,
        "cairn-bot",
        &format!("{}\nother pipeline", pipeline_marker("daily-eu")),
    );
    for i in 0..150 {
        s.fake
            .add_comment(FULL, issue, "bob", &format!("chatter {i}"));
    }

    let first = repo
        .upsert_comment(issue, &marker, "**daily**: run 1 published")
        .await
        .expect("upsert");
    assert!(first.created);
    assert_eq!(
        first.comment.body,
        format!("{marker}\n**daily**: run 1 published")
    );
    assert_eq!(first.comment.author, "cairn-bot");

    s.fake.clear_log();
    let second = repo
        .upsert_comment(issue, &marker, "**daily**: run 2 published")
        .await
        .expect("upsert again");
    assert!(!second.created);
    assert_eq!(second.comment.id, first.comment.id);
    let comments = s.fake.comments(FULL, issue);
    assert_eq!(comments.len(), 153);
    let ours = comments.iter().find(|c| c.id == first.comment.id).unwrap();
    assert_eq!(ours.body, format!("{marker}\n**daily**: run 2 published"));
    assert!(
        comments[0].body.contains("quoted"),
        "the human's is untouched"
    );
    // It read two pages, then edited.
    let log = s.fake.requests();
    let listed: Vec<_> = log.iter().filter(|r| r.method == "GET").collect();
    assert_eq!(listed.len(), 2, "{log:?}");
    assert!(listed[1].query.as_deref().unwrap().contains("page=2"));
    assert!(log.iter().any(|r| r.method == "PATCH"
        && r.path == format!("/repos/octo/datasets/issues/comments/{}", first.comment.id)));

    // The same body again: nothing to send.
    s.fake.clear_log();
    let third = repo
        .upsert_comment(issue, &marker, "**daily**: run 2 published")
        .await
        .unwrap();
    assert_eq!(third.comment.id, first.comment.id);
    assert!(s.fake.requests().iter().all(|r| r.method == "GET"));

    assert!(matches!(
        repo.upsert_comment(issue, "cairn:pipeline=daily", "x")
            .await,
        Err(GitHubError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn comments_reactions_and_permissions() {
    let s = setup().await;
    let gh = token_client(&s.fake);
    let repo = gh.repo(OWNER, REPO);
    let issue = s.fake.add_issue(FULL);
    let asked = s.fake.add_comment(FULL, issue, "alice", "/cairn run daily");
    repo.add_reaction(asked, Reaction::Eyes).await.unwrap();
    repo.add_reaction(asked, Reaction::Eyes).await.unwrap();
    repo.add_reaction(asked, Reaction::PlusOne).await.unwrap();
    let reactions: Vec<String> = s.fake.comments(FULL, issue)[0]
        .reactions
        .iter()
        .map(|r| r.content.clone())
        .collect();
    assert_eq!(reactions, ["eyes", "+1"]);

    let reply = repo.create_comment(issue, "on it").await.unwrap();
    assert_eq!(reply.body, "on it");
    assert_eq!(repo.comments(issue).await.unwrap().len(), 2);

    s.fake.set_permission(FULL, "alice", "maintain");
    s.fake.set_permission(FULL, "carol", "triage");
    assert_eq!(
        repo.permission("alice").await.unwrap(),
        Permission::Maintain
    );
    assert_eq!(repo.permission("carol").await.unwrap(), Permission::Triage);
    assert_eq!(repo.permission("mallory").await.unwrap(), Permission::None);
    assert!(repo.permission("alice").await.unwrap() >= Permission::Write);
}

#[tokio::test]
async fn delete_branch_is_idempotent() {
    let s = setup().await;
    let gh = token_client(&s.fake);
    let repo = gh.repo(OWNER, REPO);
    branch(&s, "cairn/team/daily", "a.txt", "a\n");
    assert!(repo.delete_branch("cairn/team/daily").await.unwrap());
    assert_eq!(git::branch_sha(&s.git_dir, "cairn/team/daily"), None);
    assert!(!repo.delete_branch("cairn/team/daily").await.unwrap());
    assert!(git::branch_sha(&s.git_dir, "main").is_some());
    let paths: Vec<String> = s.fake.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/repos/octo/datasets/git/refs/heads/cairn/team/daily",
            "/repos/octo/datasets/git/refs/heads/cairn/team/daily"
        ]
    );
}

#[tokio::test]
async fn server_errors_are_retried_and_every_attempt_is_reported() {
    let s = setup().await;
    let (gh, calls) = recording_client(&s.fake);
    s.fake.inject(
        Fault::status(502)
            .on("GET", "/repos/{owner}/{repo}")
            .times(2),
    );
    let repo = gh.repo(OWNER, REPO).repository().await.expect("third time");
    assert_eq!(repo.full_name, FULL);
    let seen: Vec<(u16, u32)> = calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| (c.status, c.attempt))
        .collect();
    assert_eq!(seen, [(502, 1), (502, 2), (200, 3)]);
    for call in calls.lock().unwrap().iter() {
        assert_eq!(call.method, http::Method::GET);
        assert_eq!(call.route, "/repos/{owner}/{repo}");
        assert_eq!(call.path, "/repos/octo/datasets");
        assert!(call.duration > Duration::ZERO);
    }
    assert_eq!(s.fake.requests().len(), 3);

    // Failing every time: the last answer is the error, after max_attempts.
    calls.lock().unwrap().clear();
    s.fake.inject(Fault::status(503).times(100));
    let err = gh.repo(OWNER, REPO).repository().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "GET /repos/octo/datasets: 503 Service Unavailable: Service Unavailable"
    );
    assert_eq!(calls.lock().unwrap().len(), 4);
    assert_no_secret(&err, &[TOKEN]);
}

#[tokio::test]
async fn transport_errors_are_retried_then_reported() {
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let calls = Arc::new(Mutex::new(Vec::new()));
    let sink = calls.clone();
    let gh = GitHub::builder(&url)
        .token(Secret::new(TOKEN))
        .retry_policy(fast_policy())
        .on_call(Arc::new(move |c: &ApiCall| {
            sink.lock().unwrap().push(c.status)
        }))
        .build()
        .unwrap();
    let err = gh.repo(OWNER, REPO).repository().await.unwrap_err();
    assert!(
        matches!(err, GitHubError::Transport { attempts: 4, .. }),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("GET /repos/octo/datasets: "));
    assert_eq!(*calls.lock().unwrap(), [0, 0, 0, 0]);
    assert_no_secret(&err, &[TOKEN]);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let s = setup().await;
    let (gh, calls) = recording_client(&s.fake);
    s.fake
        .inject(Fault::retry_after(1).on("GET", "/repos/octo/datasets"));
    let started = Instant::now();
    gh.repo(OWNER, REPO)
        .repository()
        .await
        .expect("after waiting");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(1), "waited only {waited:?}");
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
    let statuses: Vec<u16> = calls.lock().unwrap().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 200]);
}

#[tokio::test]
async fn a_secondary_rate_limit_waits_the_minimum() {
    let s = setup().await;
    let gh = token_client(&s.fake);
    s.fake.inject(Fault::secondary_rate_limit());
    let started = Instant::now();
    gh.repo(OWNER, REPO)
        .repository()
        .await
        .expect("after waiting");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "waited only {waited:?}"
    );
    let statuses: Vec<u16> = s.fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [403, 200]);

    // A 403 that is not a rate limit is not retried.
    s.fake.clear_log();
    s.fake.inject(Fault::status(403).body(serde_json::json!({
        "message": "Resource not accessible by integration",
        "documentation_url": "https://docs.github.com/rest"
    })));
    let err = gh.repo(OWNER, REPO).repository().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "GET /repos/octo/datasets: 403 Forbidden: Resource not accessible by integration"
    );
    assert_eq!(s.fake.requests().len(), 1);
}

#[tokio::test]
async fn the_primary_rate_limit_waits_for_the_reset_or_gives_up() {
    let s = setup().await;
    let gh = token_client(&s.fake);

    // Reset in about a second: waited for.
    s.fake.inject(Fault::primary_rate_limit(
        SystemTime::now() + Duration::from_secs(1),
    ));
    let started = Instant::now();
    gh.repo(OWNER, REPO)
        .repository()
        .await
        .expect("after the reset");
    assert!(started.elapsed() >= Duration::from_secs(1));

    // Reset in an hour, beyond the 5 s maximum: an error at once.
    s.fake.clear_log();
    let reset = SystemTime::now() + Duration::from_secs(3600);
    s.fake.inject(Fault::primary_rate_limit(reset));
    let started = Instant::now();
    let err = gh.repo(OWNER, REPO).pull(1).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    match &err {
        GitHubError::RateLimited { route, retry_at } => {
            assert_eq!(route, "GET /repos/octo/datasets/pulls/1");
            let ahead = retry_at.duration_since(SystemTime::now()).unwrap();
            assert!(ahead > Duration::from_secs(3590) && ahead <= Duration::from_secs(3602));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert!(err
        .to_string()
        .starts_with("GET /repos/octo/datasets/pulls/1: rate limited by GitHub until "));
    assert_eq!(s.fake.requests().len(), 1);
    assert_no_secret(&err, &[TOKEN]);
}

#[tokio::test]
async fn no_credential_appears_in_errors() {
    let s = setup().await;
    app_fake(&s);
    let gh = app_client(
        &s.fake,
        APP_ID,
        "app-private-key.pem",
        Duration::from_secs(300),
    );
    let repo = gh.repo(OWNER, REPO);
    let token = repo.git_token().await.unwrap();
    let mut errors = Vec::new();
    errors.push(repo.pull(99).await.unwrap_err());
    s.fake.inject(Fault::status(500).times(4));
    errors.push(repo.repository().await.unwrap_err());
    s.fake.inject(Fault::primary_rate_limit(
        SystemTime::now() + Duration::from_secs(999),
    ));
    errors.push(repo.repository().await.unwrap_err());
    // An error body that echoes the credential is scrubbed.
    s.fake.inject(Fault::status(400).body(serde_json::json!({
        "message": format!("bad token {}", token.expose())
    })));
    let echoed = repo.repository().await.unwrap_err();
    assert_eq!(
        echoed.to_string(),
        "GET /repos/octo/datasets: 400 Bad Request: bad token ***"
    );
    errors.push(echoed);

    let mut secrets: Vec<String> = s
        .fake
        .requests()
        .iter()
        .filter_map(|r| r.bearer.clone())
        .collect();
    secrets.push(token.expose().to_owned());
    secrets.push(
        read_fixture("app-private-key.pem")
            .lines()
            .nth(1)
            .unwrap()
            .to_owned(),
    );
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    for err in &errors {
        assert_no_secret(err, &secrets);
    }
    for shown in [format!("{gh:?}"), format!("{repo:?}"), format!("{token:?}")] {
        for secret in &secrets {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
