//! `cairn serve` end to end, as a platform team deploys it: the real binary,
//! configured by its documented environment variables, talking to a fake
//! GitHub over HTTP (REST, with octocrab) and to a real bare git repository
//! (the fake's `clone_url`), with a local DVC remote. Webhooks are signed
//! payloads with GitHub's field names, sent over loopback.

use crate::support::fake_github;
use crate::support::served;

use std::path::Path;
use std::time::Duration;

use cairn::triggers::WebhookSecret;
use fake_github::{git, FakeGitHub};
use serde_json::{json, Value};
use served::*;

fn config(merge: &str) -> String {
    table_config(merge, BUILD)
}

/// The md5 a `.dvc` pointer at `rev` names.
fn pointer_md5(world: &World, rev: &str) -> Option<String> {
    pointer_md5_at(&world.origin, rev, "data/table.csv.dvc")
}

/// A person's first change to the ETL input, announced by a push; returns
/// the new commit.
fn add_grace(fake: &FakeGitHub, world: &World, served: &mut Served) -> String {
    push_and_notify(
        fake,
        world,
        served,
        &[("etl/rows.csv", "id,name\n1,ada\n2,grace\n")],
        "Add grace",
    )
}

/// Everything one test needs; the fake GitHub runs on `_runtime`.
struct Setup {
    served: Served,
    world: World,
    fake: FakeGitHub,
    _runtime: tokio::runtime::Runtime,
}

fn setup(merge: &str, extra_env: &[(&str, &str)]) -> Setup {
    let Hosted {
        world,
        fake,
        _runtime: runtime,
    } = Hosted::new(&config(merge));
    let served = serve(&world, &fake, extra_env);
    served.wait_ready();
    Setup {
        served,
        world,
        fake,
        _runtime: runtime,
    }
}

#[test]
fn push_opens_a_pull_request_and_the_next_push_updates_it_in_place() {
    let Setup {
        fake,
        world,
        mut served,
        _runtime,
    } = setup("review", &[]);
    let baseline = world.main();
    assert_eq!(
        status(&fake, &baseline, "cairn/config").map(|s| s.state),
        Some("success".to_string()),
        "the first reconcile checks the config"
    );
    assert!(open_pulls(&fake).is_empty(), "the baseline runs nothing");

    let after = add_grace(&fake, &world, &mut served);

    let done = final_status(&fake, &after, "cairn/table");
    assert_eq!(done.state, "success", "{:?}", done.description);
    assert!(done
        .target_url
        .as_deref()
        .unwrap()
        .starts_with("https://cairn.example.com/api/v1/runs/table-"));
    let pulls = open_pulls(&fake);
    assert_eq!(pulls.len(), 1);
    let pull = &pulls[0];
    assert_eq!(
        (pull.head.as_str(), pull.base.as_str()),
        ("cairn/table", "main")
    );
    let head = git::branch_sha(&world.origin, "cairn/table").unwrap();
    assert_eq!(git::parents(&world.origin, &head), vec![after.clone()]);
    assert!(git::message(&world.origin, &head).contains("Cairn-Run: table-"));
    let first_md5 = pointer_md5(&world, &head).unwrap();
    let body = pull.body.clone().unwrap();
    assert!(body.contains("<!-- cairn:pipeline=table -->"), "{body}");
    assert!(
        body.contains(&first_md5),
        "the body names the new version: {body}"
    );
    assert!(
        body.contains("grace"),
        "the body shows the added row: {body}"
    );
    // The object the pointer names is on the remote.
    assert!(world
        .remote
        .join("files/md5")
        .join(&first_md5[..2])
        .join(&first_md5[2..])
        .exists());
    // The run is visible through the API the status links to.
    let run_id = done
        .target_url
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let run = served.get(&format!("/api/v1/runs/{run_id}"));
    assert_eq!(run.status, 200);
    let run: Value = serde_json::from_str(&run.body).unwrap();
    assert_eq!(run["run"]["phase"], "succeeded");
    assert_eq!(run["run"]["new_md5"], first_md5);

    // A second push: the same pull request, updated in place.
    let after2 = push_and_notify(
        &fake,
        &world,
        &mut served,
        &[("etl/rows.csv", "id,name\n1,ada\n2,grace\n3,alan\n")],
        "Add alan",
    );
    assert_eq!(final_status(&fake, &after2, "cairn/table").state, "success");
    let pulls = open_pulls(&fake);
    assert_eq!(pulls.len(), 1, "never a second pull request");
    assert_eq!(pulls[0].number, pull.number);
    let head2 = git::branch_sha(&world.origin, "cairn/table").unwrap();
    assert_eq!(
        git::parents(&world.origin, &head2),
        vec![after2.clone()],
        "rebuilt on the new base: one commit"
    );
    let second_md5 = pointer_md5(&world, &head2).unwrap();
    assert_ne!(first_md5, second_md5);
    let body = pulls[0].body.clone().unwrap();
    assert!(
        body.contains(&second_md5) && body.contains("alan"),
        "{body}"
    );
    assert_eq!(world.main(), after2, "review never touches main");

    // A push that touches no path of the pipeline runs nothing.
    let after3 = push_and_notify(
        &fake,
        &world,
        &mut served,
        &[("README.md", "more\n")],
        "Docs",
    );
    wait(
        "the config status of the docs commit",
        Duration::from_secs(30),
        || status(&fake, &after3, "cairn/config"),
    );
    assert!(status(&fake, &after3, "cairn/table").is_none());

    // The pull request is merged by a person: cairn forgets it and deletes the branch.
    let merged_pull = pulls[0].number;
    {
        let mut w = fake.world();
        let repo = w.repo_mut(REPO).unwrap();
        let p = repo.pulls.get_mut(&merged_pull).unwrap();
        p.state = "closed".into();
        p.merged = true;
    }
    let reply = served.deliver(
        "pull_request",
        &json!({
            "action": "closed",
            "number": merged_pull,
            "pull_request": {
                "number": merged_pull,
                "state": "closed",
                "merged": true,
                "head": {"ref": "cairn/table", "sha": head2, "repo": {"full_name": REPO}},
                "base": {"ref": "main", "sha": after2, "repo": {"full_name": REPO}},
            },
            "repository": repository(&fake, &world.origin),
            "sender": {"login": "ada", "id": 7, "type": "User"},
        }),
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
    wait(
        "the merged branch to be deleted",
        Duration::from_secs(30),
        || {
            git::branch_sha(&world.origin, "cairn/table")
                .is_none()
                .then_some(())
        },
    );
}

#[test]
fn auto_merges_and_direct_pushes_and_cairns_own_pushes_start_nothing() {
    let Setup {
        fake,
        world,
        mut served,
        _runtime,
    } = setup("auto", &[]);
    let after = add_grace(&fake, &world, &mut served);
    let done = final_status(&fake, &after, "cairn/table");
    assert_eq!(done.state, "success", "{:?}", done.description);
    assert!(
        done.description
            .as_deref()
            .unwrap()
            .contains("merged into main"),
        "{done:?}"
    );
    let merged = world.main();
    assert_ne!(merged, after);
    assert!(git::is_ancestor(&world.origin, &after, &merged));
    let message = git::message(&world.origin, &merged);
    assert!(
        message.contains("Cairn-Run: table-"),
        "the merge keeps the trailer: {message}"
    );
    assert!(pointer_md5(&world, "main").is_some());
    let pulls = fake.pulls(REPO);
    assert_eq!(pulls.len(), 1);
    assert!(pulls[0].merged);
    assert!(
        git::branch_sha(&world.origin, "cairn/table").is_none(),
        "merged branch deleted"
    );

    // GitHub then sends the push of the merge: cairn's own, so nothing runs.
    let reply = served.deliver(
        "push",
        &push_payload(
            &fake,
            &world,
            &after,
            &merged,
            &[commit_json(&merged, &message, &["data/table.csv.dvc"])],
        ),
    );
    assert_eq!(reply.status, 202);

    // Switch to direct: the pointer lands on main itself.
    let after2 = push_and_notify(
        &fake,
        &world,
        &mut served,
        &[
            ("pipelines.toml", &config("direct")),
            ("etl/rows.csv", "id,name\n1,ada\n2,grace\n3,alan\n"),
        ],
        "Go direct",
    );
    let done = final_status(&fake, &after2, "cairn/table");
    assert_eq!(done.state, "success", "{:?}", done.description);
    let tip = world.main();
    assert_eq!(git::parents(&world.origin, &tip), vec![after2.clone()]);
    assert!(git::message(&world.origin, &tip).contains("Cairn-Run:"));
    assert_eq!(fake.pulls(REPO).len(), 1, "direct opens no pull request");
    // Exactly one run per change: the merge commit started none.
    assert!(status(&fake, &merged, "cairn/table").is_none());
}

/// `auto` with a required check: the merge waits for it, and GitHub's
/// `status` webhook for the pull request's head merges it at once (the
/// resync is an hour away in these tests).
#[test]
fn an_auto_pull_request_waiting_on_checks_merges_when_they_finish() {
    let Setup {
        fake,
        world,
        mut served,
        _runtime,
    } = setup("auto", &[]);
    fake.require_contexts(REPO, &["ci/build"]);
    let after = add_grace(&fake, &world, &mut served);
    let done = final_status(&fake, &after, "cairn/table");
    assert_eq!(done.state, "success", "{:?}", done.description);
    let pull = open_pulls(&fake).pop().expect("an open pull request");
    assert!(!pull.merged, "the required check has not run");

    // The CI of the proposal branch finishes, and GitHub says so; first a
    // pending status and one on another branch, which change nothing.
    let head = pull.head_sha.clone();
    let status = |state: &str, branch: &str| {
        serde_json::json!({
            "id": 1, "sha": head, "state": state, "context": "ci/build",
            "branches": [{"name": branch, "commit": {"sha": head}}],
            "repository": repository(&fake, &world.origin),
            "sender": {"login": "ci-bot", "id": 9, "type": "Bot"},
        })
    };
    let reply = served.deliver("status", &status("pending", "cairn/table"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.contains("not finished"), "{}", reply.body);
    let reply = served.deliver("status", &status("success", "feature"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    fake.set_status(REPO, &head, "ci/build", "success");
    let reply = served.deliver("status", &status("success", "cairn/table"));
    assert_eq!(reply.status, 202, "{}", reply.body);
    let merged = wait("the pull request to merge", Duration::from_secs(30), || {
        fake.pulls(REPO).into_iter().find(|p| p.merged)
    });
    assert_eq!(merged.number, pull.number);
    assert!(pointer_md5(&world, "main").is_some());
}

#[test]
fn a_broken_config_fails_its_status_and_the_last_good_one_stays() {
    let Setup {
        fake,
        world,
        mut served,
        _runtime,
    } = setup("review", &[]);
    let broken = config("review").replace(
        "[pipelines.table.tasks.build]",
        "[pipelines.table.tasks.build]\nneeds = [\"pul\"]",
    );
    let bad = push_and_notify(
        &fake,
        &world,
        &mut served,
        &[("pipelines.toml", &broken), ("etl/rows.csv", "id\n9\n")],
        "Break it",
    );
    let config_status = wait("the config status", Duration::from_secs(30), || {
        status(&fake, &bad, "cairn/config")
    });
    assert_eq!(config_status.state, "failure");
    let description = config_status.description.unwrap();
    assert_eq!(
        description,
        "pipelines.toml:7:10: task \"build\" needs unknown task \"pul\""
    );
    assert!(
        status(&fake, &bad, "cairn/table").is_none(),
        "nothing runs on a broken config"
    );
    assert_eq!(
        served.get("/readyz").status,
        200,
        "the last good config stays in force"
    );

    // Fixed: the pipeline's own change since the last good config runs it.
    let fixed = push_and_notify(
        &fake,
        &world,
        &mut served,
        &[("pipelines.toml", &config("review"))],
        "Fix it",
    );
    assert_eq!(final_status(&fake, &fixed, "cairn/config").state, "success");
    assert_eq!(final_status(&fake, &fixed, "cairn/table").state, "success");
    assert_eq!(open_pulls(&fake).len(), 1);
}

#[test]
fn a_lost_delivery_is_recovered_by_the_resync() {
    let Setup {
        fake,
        world,
        served: _served,
        _runtime,
    } = setup("review", &[("CAIRN_RESYNC_INTERVAL", "1s")]);
    // No webhook at all for this push.
    let (_, after) = world.push(
        &[("etl/rows.csv", "id,name\n1,ada\n2,grace\n")],
        "Add grace",
    );
    assert_eq!(final_status(&fake, &after, "cairn/table").state, "success");
    assert_eq!(open_pulls(&fake).len(), 1);
}

#[test]
fn bad_deliveries_start_nothing() {
    let Setup {
        fake,
        world,
        mut served,
        _runtime,
    } = setup("review", &[]);
    let (before, after) = world.push(&[("etl/rows.csv", "id\n1\n")], "Rows");
    let payload = push_payload(
        &fake,
        &world,
        &before,
        &after,
        &[commit_json(&after, "Rows", &["etl/rows.csv"])],
    );
    let body = serde_json::to_vec(&payload).unwrap();
    let base = |sig: Option<String>| {
        let mut h = vec![
            ("Content-Type", "application/json".to_string()),
            ("X-GitHub-Event", "push".to_string()),
            (
                "X-GitHub-Delivery",
                "11111111-1111-4111-8111-111111111111".to_string(),
            ),
        ];
        if let Some(sig) = sig {
            h.push(("X-Hub-Signature-256", sig));
        }
        h
    };
    let wrong = WebhookSecret::new("not-the-secret").unwrap().sign(&body);
    for (headers, expect) in [(base(None), 401), (base(Some(wrong)), 401)] {
        let reply = http(served.addr, "POST", "/webhook", &headers, &body);
        assert_eq!(reply.status, expect, "{}", reply.body);
        assert!(!reply.body.is_empty());
    }
    // The same delivery id, now correctly signed, is processed.
    let mut headers = base(Some(served.secret.sign(&body)));
    let reply = http(served.addr, "POST", "/webhook", &headers, &body);
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(final_status(&fake, &after, "cairn/table").state, "success");
    // A replay is answered but not run twice.
    headers.retain(|(k, _)| *k != "Content-Length");
    let reply = http(served.addr, "POST", "/webhook", &headers, &body);
    assert_eq!(reply.status, 200, "{}", reply.body);
    served.next_delivery += 1;
    let runs = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/pulls"))
        .count();
    assert_eq!(runs, 1, "one pull request created");
}

#[test]
fn as_a_github_app_it_serves_every_installed_repository() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fake = runtime.block_on(FakeGitHub::start());
    let world = World::new(&config("review"));
    fake.add_repo(OWNER, NAME, "main", &world.origin);
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github");
    fake.enable_app(
        31337,
        "cairn-test",
        &std::fs::read(keys.join("app-public-key.pem")).unwrap(),
    );
    fake.add_installation(77, OWNER, &[REPO]);
    let key_file = keys.join("app-private-key.pem");
    let mut served = serve(
        &world,
        &fake,
        &[
            ("CAIRN_GITHUB_TOKEN", ""),
            ("CAIRN_GITHUB_REPOSITORIES", ""),
            ("CAIRN_GITHUB_APP_ID", "31337"),
            ("CAIRN_GITHUB_APP_KEY_FILE", key_file.to_str().unwrap()),
        ],
    );
    served.wait_ready();
    let after = add_grace(&fake, &world, &mut served);
    assert_eq!(final_status(&fake, &after, "cairn/table").state, "success");
    assert_eq!(open_pulls(&fake).len(), 1);
    // Everything on the repository was done with installation tokens, never the JWT.
    let requests = fake.requests();
    assert!(requests
        .iter()
        .any(|r| r.path == "/app/installations/77/access_tokens"));
    assert!(requests
        .iter()
        .filter(|r| r.path.starts_with("/repos/"))
        .all(
            |r| r.bearer.as_deref().is_some_and(|b| b.starts_with("ghs_"))
                || r.path.ends_with("/installation")
        ));
}

// ---- comment commands and the run API --------------------------------------

/// An `issue_comment` webhook, as GitHub sends it, for comment `id`.
#[allow(clippy::too_many_arguments)]
fn comment_payload(
    fake: &FakeGitHub,
    world: &World,
    issue: u64,
    is_pull: bool,
    id: u64,
    (user, kind): (&str, &str),
    body: &str,
    action: &str,
) -> Value {
    let mut issue_json = json!({"number": issue, "title": "Data", "state": "open"});
    if is_pull {
        issue_json["pull_request"] =
            json!({"url": format!("{}/repos/{REPO}/pulls/{issue}", fake.url)});
    }
    json!({
        "action": action,
        "issue": issue_json,
        "comment": {
            "id": id,
            "body": body,
            "user": {"login": user, "id": 900, "type": kind},
            "author_association": "MEMBER",
        },
        "repository": repository(fake, &world.origin),
        "sender": {"login": user, "id": 900, "type": kind},
    })
}

/// `user` comments `body` on `issue` (GitHub stores it and sends the
/// webhook); returns the comment's id.
fn comment(
    fake: &FakeGitHub,
    world: &World,
    served: &mut Served,
    (issue, is_pull): (u64, bool),
    (user, kind): (&str, &str),
    body: &str,
) -> u64 {
    let id = fake.add_comment(REPO, issue, user, body);
    let payload = comment_payload(
        fake,
        world,
        issue,
        is_pull,
        id,
        (user, kind),
        body,
        "created",
    );
    let reply = served.deliver("issue_comment", &payload);
    assert!(
        reply.status == 202 || reply.status == 200,
        "{}: {}",
        reply.status,
        reply.body
    );
    id
}

/// cairn's answer to comment `id`, once it is there.
fn answer(fake: &FakeGitHub, issue: u64, id: u64) -> String {
    let marker = format!("<!-- cairn:reply={id} -->");
    wait(
        &format!("the answer to comment {id}"),
        Duration::from_secs(30),
        || {
            fake.comments(REPO, issue)
                .into_iter()
                .find(|c| c.body.contains(&marker))
                .map(|c| c.body)
        },
    )
}

fn reactions(fake: &FakeGitHub, issue: u64, id: u64) -> Vec<String> {
    fake.comments(REPO, issue)
        .into_iter()
        .find(|c| c.id == id)
        .map(|c| c.reactions.into_iter().map(|r| r.content).collect())
        .unwrap_or_default()
}

/// A run's phase, once it has ended.
fn final_phase(served: &Served, run: &str) -> String {
    wait(
        &format!("run {run} to end"),
        Duration::from_secs(60),
        || {
            let reply = served.get(&format!("/api/v1/runs/{run}"));
            if reply.status != 200 {
                return None;
            }
            let v: Value = serde_json::from_str(&reply.body).ok()?;
            let phase = v["run"]["phase"].as_str()?.to_string();
            ["succeeded", "unchanged", "failed", "cancelled"]
                .contains(&phase.as_str())
                .then_some(phase)
        },
    )
}

/// The authorization matrix of `/cairn run`, end to end: the role comes
/// from GitHub's permission API; forks and bots start nothing.
#[test]
fn comment_commands_follow_the_role_github_reports() {
    let Setup {
        fake,
        world,
        mut served,
        _runtime,
    } = setup("review", &[]);
    fake.set_permission(REPO, "root", "admin");
    fake.set_permission(REPO, "wanda", "write");
    fake.set_permission(REPO, "reed", "read");
    fake.set_permission(REPO, "ci-bot[bot]", "admin");
    let issue = fake.add_issue(REPO);
    let fork_pull = fake.add_fork_pull(REPO, "mallory/data", "patch-1", "main", "mallory");

    let user = |login| (login, "User");
    let by_admin = comment(
        &fake,
        &world,
        &mut served,
        (issue, false),
        user("root"),
        "Please refresh.\n/cairn run table",
    );
    let by_writer = comment(
        &fake,
        &world,
        &mut served,
        (issue, false),
        user("wanda"),
        "/cairn run table",
    );
    let by_reader = comment(
        &fake,
        &world,
        &mut served,
        (issue, false),
        user("reed"),
        "/cairn run table",
    );
    let by_nobody = comment(
        &fake,
        &world,
        &mut served,
        (issue, false),
        user("nobody"),
        "/cairn run table",
    );
    let on_fork = comment(
        &fake,
        &world,
        &mut served,
        (fork_pull, true),
        user("root"),
        "/cairn run table",
    );
    let by_bot = comment(
        &fake,
        &world,
        &mut served,
        (issue, false),
        ("ci-bot[bot]", "Bot"),
        "/cairn run table",
    );

    for id in [by_admin, by_writer] {
        let text = answer(&fake, issue, id);
        let run = format!("table-c{id}");
        assert!(text.contains(&run), "{text}");
        assert!(!text.contains("sorry"), "{text}");
        assert_eq!(final_phase(&served, &run), "succeeded");
    }
    let text = answer(&fake, issue, by_reader);
    assert!(
        text.contains("sorry @reed, this needs write access to the repository (you have read)"),
        "{text}"
    );
    let text = answer(&fake, issue, by_nobody);
    assert!(text.contains("(you have none)"), "{text}");
    let text = answer(&fake, fork_pull, on_fork);
    assert!(text.contains("forks cannot start runs"), "{text}");
    for (issue, id) in [
        (issue, by_admin),
        (issue, by_writer),
        (issue, by_reader),
        (issue, by_nobody),
        (fork_pull, on_fork),
    ] {
        assert_eq!(reactions(&fake, issue, id), ["eyes"], "comment {id}");
    }
    // Refused commands started nothing.
    for id in [by_reader, by_nobody, on_fork] {
        assert_eq!(served.get(&format!("/api/v1/runs/table-c{id}")).status, 404);
    }
    // The bot is ignored: no reaction, no answer, no run (the others have
    // long been answered, so it had its chance).
    assert!(reactions(&fake, issue, by_bot).is_empty());
    assert!(!fake
        .comments(REPO, issue)
        .iter()
        .any(|c| c.body.contains(&format!("cairn:reply={by_bot}"))));
    assert_eq!(
        served.get(&format!("/api/v1/runs/table-c{by_bot}")).status,
        404
    );

    // Several commands in one comment, typos answered with a suggestion,
    // quoted and fenced commands ignored, an edited comment ignored.
    let body = "> /cairn run table\n```\n/cairn cancel\n```\n/cairn run tabel\n/cairn stauts\n/cairn status\n/cairn help";
    let id = comment(
        &fake,
        &world,
        &mut served,
        (issue, false),
        user("wanda"),
        body,
    );
    let text = answer(&fake, issue, id);
    assert!(
        text.contains("unknown pipeline `tabel` (did you mean `table`?)"),
        "{text}"
    );
    assert!(text.contains("(did you mean `/cairn status`?)"), "{text}");
    assert!(text.contains("- `table`: last run `table-c"), "{text}");
    assert!(text.contains("/cairn run PIPELINE"), "{text}");
    assert!(!text.contains("cancelling"), "{text}");
    let edited = fake.add_comment(REPO, issue, "wanda", "/cairn run table");
    let payload = comment_payload(
        &fake,
        &world,
        issue,
        false,
        edited,
        user("wanda"),
        "/cairn run table",
        "edited",
    );
    assert_eq!(served.deliver("issue_comment", &payload).status, 200);

    // Without CAIRN_API_TOKEN the run API is closed.
    let reply = http(
        served.addr,
        "POST",
        "/api/v1/pipelines/table/runs",
        &[],
        b"",
    );
    assert_eq!(reply.status, 403, "{}", reply.body);
    std::thread::sleep(Duration::from_millis(500));
    assert!(reactions(&fake, issue, edited).is_empty());
}

#[test]
fn the_run_api_needs_the_bearer_token_and_names_the_run() {
    const API_TOKEN: &str = "api-token-for-tests-0123456789";
    let Setup {
        fake,
        world,
        mut served,
        _runtime,
    } = setup("review", &[("CAIRN_API_TOKEN", API_TOKEN)]);
    let post = |auth: Option<&str>, path: &str, body: &[u8]| {
        let mut headers = vec![("Content-Type", "application/json".to_string())];
        if let Some(auth) = auth {
            headers.push(("Authorization", auth.to_string()));
        }
        http(served.addr, "POST", path, &headers, body)
    };
    let path = "/api/v1/pipelines/table/runs";
    for auth in [None, Some("Bearer wrong"), Some(API_TOKEN)] {
        let reply = post(auth, path, b"");
        assert_eq!(reply.status, 401, "{auth:?}: {}", reply.body);
        assert!(!reply.body.contains(API_TOKEN));
    }
    let bearer = format!("Bearer {API_TOKEN}");
    let reply = post(Some(&bearer), "/api/v1/pipelines/tabel/runs", b"");
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert!(
        reply.body.contains("did you mean \\\"table\\\""),
        "{}",
        reply.body
    );
    let reply = post(Some(&bearer), path, b"{\"colour\": 1}");
    assert_eq!(reply.status, 400, "{}", reply.body);

    let reply = post(Some(&bearer), path, br#"{"reason": "nightly CI"}"#);
    assert_eq!(reply.status, 202, "{}", reply.body);
    let started: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(started["state"], "started");
    assert_eq!(started["repository"], REPO);
    assert_eq!(started["commit"], world.main());
    let run = started["run"].as_str().unwrap().to_string();
    assert!(run.starts_with("table-"), "{run}");
    assert_eq!(final_phase(&served, &run), "succeeded");
    let reply = served.get(path);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let listed: Value = serde_json::from_str(&reply.body).unwrap();
    let runs = &listed["pipelines"][0]["runs"];
    assert_eq!(runs[0]["id"], run.as_str());
    assert_eq!(runs[0]["reason"], "api: nightly CI");
    let pulls = open_pulls(&fake);
    assert_eq!(pulls.len(), 1);

    // `/cairn merge` on cairn's pull request merges it now.
    fake.set_permission(REPO, "root", "admin");
    let merge = comment(
        &fake,
        &world,
        &mut served,
        (pulls[0].number, true),
        ("root", "User"),
        "/cairn merge",
    );
    let text = answer(&fake, pulls[0].number, merge);
    assert!(
        text.contains(&format!("merged #{}", pulls[0].number)),
        "{text}"
    );
    assert!(fake.pull(REPO, pulls[0].number).unwrap().merged);

    // A schedule shows its next fire time on /metrics.
    let scheduled = config("review").replace(
        "merge = \"review\"\n",
        "merge = \"review\"\nschedule = \"0 3 * * *\"\ntimezone = \"Europe/Paris\"\n",
    );
    push_and_notify(
        &fake,
        &world,
        &mut served,
        &[("pipelines.toml", &scheduled)],
        "Nightly",
    );
    wait(
        "the next fire time on /metrics",
        Duration::from_secs(30),
        || {
            served
            .get("/metrics")
            .body
            .lines()
            .any(|l| {
                l.starts_with(
                    "cairn_schedule_next_fire_timestamp_seconds{repository=\"octo/data\",pipeline=\"table\"} ",
                )
            })
            .then_some(())
        },
    );
}
