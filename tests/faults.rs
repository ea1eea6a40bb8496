//! Faults from peers, end to end: the real `cairn serve` against the fake
//! GitHub (faults injected per route) and, for storage, the in-process S3
//! server (s3s-fs) behind the fault layer.
//!
//! What is covered elsewhere is not repeated here: the GitHub client's retry
//! and rate-limit policy request by request (tests/github_client.rs), the S3
//! remote under 5xx, resets, slow and hung requests and corruption
//! (tests/s3_remote.rs), SIGKILL at every step of a run (tests/crash_safety.rs).
//! This file checks what those cannot: that a whole run, as the service runs
//! it, converges or fails with a clear commit status, and never leaves a
//! pointer to data the remote does not hold.
//!
//! Each case of a table gets its own repository, fake and service.

use crate::support;
use crate::support::fake_github;
use crate::support::served;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use fake_github::{git, FakeGitHub, Fault};
use served::*;
use support::S3Server;

const POINTER: &str = "data/table.csv.dvc";

fn config(merge: &str, task_seconds: f32) -> String {
    table_config(merge, &format!("sleep {task_seconds} && {BUILD}"))
}

/// The md5 the pointer of table.csv at `rev` names.
fn pointer_md5(origin: &Path, rev: &str) -> Option<String> {
    pointer_md5_at(origin, rev, POINTER)
}

/// Every branch of `origin` whose pointer `path` names an object `exists`
/// denies.
fn dangling_pointers(origin: &Path, path: &str, exists: impl Fn(&str) -> bool) -> Vec<String> {
    let repo = git2::Repository::open(origin).unwrap();
    let mut dangling = Vec::new();
    for branch in repo.branches(Some(git2::BranchType::Local)).unwrap() {
        let name = branch.unwrap().0.name().unwrap().unwrap().to_string();
        if let Some(md5) = pointer_md5_at(origin, &name, path) {
            let key = format!("files/md5/{}/{}", &md5[..2], &md5[2..]);
            if !exists(&key) {
                dangling.push(format!("{name}: {key}"));
            }
        }
    }
    dangling
}

/// The whole setup of one case.
struct Case {
    hosted: Hosted,
    served: Served,
}

impl Case {
    fn start(merge: &str, task_seconds: f32, env: &[(&str, &str)]) -> Case {
        let hosted = Hosted::new(&config(merge, task_seconds));
        let served = serve(&hosted.world, &hosted.fake, env);
        served.wait_ready();
        Case { hosted, served }
    }

    fn fake(&self) -> &FakeGitHub {
        &self.hosted.fake
    }

    fn origin(&self) -> &Path {
        &self.hosted.world.origin
    }

    /// A person's change of the pipeline's input, announced by a delivery.
    fn change(&mut self, rows: &str) -> String {
        push_and_notify(
            &self.hosted.fake,
            &self.hosted.world,
            &mut self.served,
            &[("etl/rows.csv", rows)],
            "Change the rows",
        )
    }

    /// Nothing on any branch points at data missing from the local remote.
    fn assert_no_dangling_pointer(&self, case: &str) {
        let remote = self.hosted.world.remote.clone();
        let dangling = dangling_pointers(self.origin(), POINTER, |key| remote.join(key).exists());
        assert!(dangling.is_empty(), "{case}: {dangling:?}");
    }

    /// (status, count) of the requests to `method path` the fake saw.
    fn answers(&self, method: &str, path: &str) -> Vec<u16> {
        self.fake()
            .requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .map(|r| r.status)
            .collect()
    }
}

const PULLS: &str = "/repos/{owner}/{repo}/pulls";

/// GitHub limiting or failing the call that opens the pull request: the run
/// waits as GitHub says, retries, and ends with one pull request; or, when
/// the wait is beyond reason, fails saying until when.
#[test]
fn github_rate_limits_and_server_errors_on_opening_the_pull_request() {
    struct Row {
        name: &'static str,
        fault: fn() -> Fault,
        /// The answers to `POST /pulls`, in order.
        answers: &'static [u16],
        /// Least time the run must have waited for GitHub.
        waited: Duration,
        /// `None`: success; else a text the failure status holds.
        fails_with: Option<&'static str>,
    }
    let table = [
        Row {
            name: "429 with Retry-After",
            fault: || Fault::retry_after(1).on("POST", PULLS),
            answers: &[429, 201],
            waited: Duration::from_secs(1),
            fails_with: None,
        },
        Row {
            name: "secondary rate limit: 403 with Retry-After",
            fault: || {
                Fault::secondary_rate_limit()
                    .header("retry-after", "1")
                    .on("POST", PULLS)
            },
            answers: &[403, 201],
            waited: Duration::from_secs(1),
            fails_with: None,
        },
        Row {
            name: "primary rate limit: remaining 0 until the reset",
            fault: || {
                Fault::primary_rate_limit(SystemTime::now() + Duration::from_secs(2))
                    .on("POST", PULLS)
            },
            answers: &[403, 201],
            waited: Duration::from_secs(1),
            fails_with: None,
        },
        Row {
            name: "primary rate limit with the reset an hour away",
            fault: || {
                Fault::primary_rate_limit(SystemTime::now() + Duration::from_secs(3600))
                    .on("POST", PULLS)
            },
            answers: &[403],
            waited: Duration::ZERO,
            fails_with: Some("rate limited by GitHub until "),
        },
        Row {
            name: "502 twice",
            fault: || Fault::status(502).on("POST", PULLS).times(2),
            answers: &[502, 502, 201],
            waited: Duration::ZERO,
            fails_with: None,
        },
        Row {
            name: "created, but the answer lost in a 502",
            fault: || Fault::status(502).on("POST", PULLS).after_serving(),
            answers: &[502, 422],
            waited: Duration::ZERO,
            fails_with: None,
        },
    ];
    for row in table {
        let mut case = Case::start("review", 0.0, &[]);
        let pulls_path = format!("/repos/{REPO}/pulls");
        case.fake().inject((row.fault)());
        let started = Instant::now();
        let after = case.change("id,name\n1,ada\n2,grace\n");
        let done = final_status(case.fake(), &after, "cairn/table");
        let took = started.elapsed();
        let description = done.description.clone().unwrap_or_default();
        eprintln!("{}: {} after {took:?}: {description}", row.name, done.state);
        assert_eq!(
            case.answers("POST", &pulls_path),
            row.answers,
            "{}",
            row.name
        );
        assert!(took >= row.waited, "{}: waited only {took:?}", row.name);
        match row.fails_with {
            None => {
                assert_eq!(done.state, "success", "{}: {description}", row.name);
                let open = open_pulls(case.fake());
                assert_eq!(open.len(), 1, "{}: one pull request", row.name);
                let head = git::branch_sha(case.origin(), "cairn/table").unwrap();
                assert_eq!(open[0].head_sha, head, "{}", row.name);
            }
            Some(text) => {
                assert_eq!(done.state, "failure", "{}", row.name);
                assert!(description.contains(text), "{}: {description}", row.name);
                assert!(open_pulls(case.fake()).is_empty(), "{}", row.name);
            }
        }
        case.assert_no_dangling_pointer(row.name);
    }
}

/// GitHub answers "A pull request already exists" to a create, because its
/// listing missed the open one (GitHub's lists lag behind its writes): cairn
/// takes that pull request, and it must then describe the new version, not
/// the one it was opened for.
#[test]
fn a_pull_request_that_already_exists_is_updated_to_the_new_version() {
    let mut case = Case::start("review", 0.0, &[]);
    let first = case.change("id,name\n1,ada\n2,grace\n");
    assert_eq!(
        final_status(case.fake(), &first, "cairn/table").state,
        "success"
    );
    let number = open_pulls(case.fake())[0].number;

    // The listing answers "none open" once; the create then meets the 422.
    case.fake().inject(
        Fault::status(200)
            .body(serde_json::json!([]))
            .on("GET", PULLS),
    );
    let second = case.change("id,name\n1,ada\n2,grace\n3,alan\n");
    let done = final_status(case.fake(), &second, "cairn/table");
    assert_eq!(done.state, "success", "{:?}", done.description);
    assert_eq!(
        case.answers("POST", &format!("/repos/{REPO}/pulls")),
        [201, 422]
    );
    let open = open_pulls(case.fake());
    assert_eq!(open.len(), 1, "never a second pull request");
    assert_eq!(open[0].number, number);
    let head = git::branch_sha(case.origin(), "cairn/table").unwrap();
    assert_eq!(open[0].head_sha, head);
    let md5 = pointer_md5(case.origin(), &head).unwrap();
    let body = open[0].body.clone().unwrap_or_default();
    assert!(
        body.contains(&md5) && body.contains("alan"),
        "the pull request still describes the old version: {body}"
    );
    case.assert_no_dangling_pointer("422");
}

/// Someone pushes to the default branch while a run is in its task: the
/// pointer commit is built on the branch as it is at delivery time, in every
/// merge mode; a push that changed the pointer itself is a conflict, and the
/// run says which file.
#[test]
fn the_base_branch_moving_during_a_run() {
    struct Row {
        merge: &'static str,
        /// What the person pushes while the task runs.
        meanwhile: (&'static str, &'static str),
        /// `None`: success; else a text the failure status holds.
        fails_with: Option<&'static str>,
    }
    let table = [
        Row {
            merge: "review",
            meanwhile: ("README.md", "moved on\n"),
            fails_with: None,
        },
        Row {
            merge: "direct",
            meanwhile: ("README.md", "moved on\n"),
            fails_with: None,
        },
        Row {
            merge: "auto",
            meanwhile: ("README.md", "moved on\n"),
            fails_with: None,
        },
        Row {
            merge: "review",
            meanwhile: (POINTER, "outs:\n- md5: 0123456789abcdef0123456789abcdef\n  size: 1\n  hash: md5\n  path: table.csv\n"),
            fails_with: Some(POINTER),
        },
    ];
    for row in table {
        let name = format!("{} with {} changed", row.merge, row.meanwhile.0);
        let mut case = Case::start(row.merge, 2.0, &[]);
        let after = case.change("id,name\n1,ada\n2,grace\n");
        wait("the run to start", Duration::from_secs(30), || {
            status(case.fake(), &after, "cairn/table").filter(|s| s.state == "pending")
        });
        let (_, moved) = case
            .hosted
            .world
            .push(&[row.meanwhile], "A person's change meanwhile");
        let done = final_status(case.fake(), &after, "cairn/table");
        let description = done.description.clone().unwrap_or_default();
        eprintln!("{name}: {} {description}", done.state);
        match row.fails_with {
            None => {
                assert_eq!(done.state, "success", "{name}: {description}");
                let delivered = match row.merge {
                    "review" => git::branch_sha(case.origin(), "cairn/table").unwrap(),
                    _ => case.hosted.world.main(),
                };
                assert!(
                    git::is_ancestor(case.origin(), &moved, &delivered),
                    "{name}: the pointer commit is not on top of the moved branch"
                );
                assert_eq!(
                    git::read_file(case.origin(), &delivered, "README.md").as_deref(),
                    Some("moved on\n"),
                    "{name}: the person's change is kept"
                );
                assert!(pointer_md5(case.origin(), &delivered).is_some(), "{name}");
            }
            Some(text) => {
                assert_eq!(done.state, "failure", "{name}");
                assert!(description.contains(text), "{name}: {description}");
                assert!(open_pulls(case.fake()).is_empty(), "{name}");
                assert_eq!(case.hosted.world.main(), moved, "{name}: main untouched");
            }
        }
        if row.fails_with.is_none() {
            case.assert_no_dangling_pointer(&name);
        }
    }
}

/// A repository whose DVC remote is `s3://BUCKET/store` on `s3`.
fn use_s3(case_world: &World, s3: &S3Server) {
    let dvc = format!(
        "[core]\n    remote = storage\n['remote \"storage\"']\n    url = s3://{}/store\n    endpointurl = {}\n    region = us-east-1\n",
        support::server::BUCKET,
        s3.endpoint
    );
    git::commit(
        &case_world.origin,
        "main",
        None,
        &[(".dvc/config", &dvc)],
        "Store datasets on S3",
    );
}

/// The S3 server's disk fills up: the run fails with a status that names
/// the upload, no pointer is written anywhere, and a run after space came
/// back succeeds. Twice: full from the first write, and full after the
/// folder's files went up but before its `.dir` manifest.
#[test]
fn a_full_disk_on_the_s3_server_fails_the_run_and_writes_no_pointer() {
    const API_TOKEN: &str = "api-token-for-fault-tests-0123456789";
    struct Row {
        name: &'static str,
        dataset: &'static str,
        command: &'static str,
        writes_before_full: u32,
    }
    let table = [
        Row {
            name: "full from the start",
            dataset: "data/table.csv",
            command: "mkdir -p data && cat etl/rows.csv > data/table.csv",
            writes_before_full: 0,
        },
        Row {
            name: "full before the folder's manifest",
            dataset: "data/table",
            command: "mkdir -p data/table && cp etl/rows.csv data/table/rows.csv && echo x > data/table/x.txt",
            writes_before_full: 2,
        },
    ];
    for row in table {
        let toml = table_config_of(row.dataset, "review", row.command);
        let hosted = Hosted::new(&toml);
        let s3 = hosted
            ._runtime
            .block_on(S3Server::start(support::FaultPlan::none()));
        use_s3(&hosted.world, &s3);
        let mut served = serve(
            &hosted.world,
            &hosted.fake,
            &[
                ("AWS_ACCESS_KEY_ID", support::server::ACCESS_KEY),
                ("AWS_SECRET_ACCESS_KEY", support::server::SECRET_KEY),
                ("AWS_EC2_METADATA_DISABLED", "true"),
                ("CAIRN_S3_MAX_ATTEMPTS", "3"),
                ("CAIRN_API_TOKEN", API_TOKEN),
            ],
        );
        served.wait_ready();
        let stored = |key: &str| s3.object_path(&format!("store/{key}")).exists();

        s3.faults.fill_disk_after(row.writes_before_full);
        let after = push_and_notify(
            &hosted.fake,
            &hosted.world,
            &mut served,
            &[("etl/rows.csv", "id,name\n1,ada\n2,grace\n")],
            "Add grace",
        );
        let done = final_status(&hosted.fake, &after, "cairn/table");
        let description = done.description.clone().unwrap_or_default();
        eprintln!("{}: {} {description}", row.name, done.state);
        assert_eq!(done.state, "failure", "{}", row.name);
        // GitHub keeps 140 characters of a status: enough to say which
        // upload failed (the server's answer is on the run's page).
        assert!(
            description.starts_with("publish: uploading ")
                && description.contains(&format!("of dataset \"{}\" failed", row.dataset)),
            "{}: the status does not name the upload: {description}",
            row.name
        );
        assert!(
            git::branch_sha(&hosted.world.origin, "cairn/table").is_none(),
            "{}: a pointer was pushed",
            row.name
        );
        assert!(open_pulls(&hosted.fake).is_empty(), "{}", row.name);
        let pointer = format!("{}.dvc", row.dataset);
        assert!(
            dangling_pointers(&hosted.world.origin, &pointer, stored).is_empty(),
            "{}",
            row.name
        );
        // No manifest without its files: DVC would trust it.
        let manifests: Vec<_> = walk(&s3.object_path("store/files"))
            .into_iter()
            .filter(|p| p.ends_with(".dir"))
            .collect();
        assert!(manifests.is_empty(), "{}: {manifests:?}", row.name);

        // Space is back; the run is asked for again, and succeeds.
        s3.faults.free_disk();
        let reply = http(
            served.addr,
            "POST",
            "/api/v1/pipelines/table/runs",
            &[
                ("Authorization", format!("Bearer {API_TOKEN}")),
                ("Content-Type", "application/json".to_string()),
            ],
            br#"{"reason": "disk space is back"}"#,
        );
        assert_eq!(reply.status, 202, "{}: {}", row.name, reply.body);
        let run: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        let run = run["run"].as_str().unwrap().to_string();
        let phase = wait("the retry to end", Duration::from_secs(60), || {
            let reply = served.get(&format!("/api/v1/runs/{run}"));
            let v: serde_json::Value = serde_json::from_str(&reply.body).ok()?;
            let phase = v["run"]["phase"].as_str()?.to_string();
            ["succeeded", "unchanged", "failed", "cancelled"]
                .contains(&phase.as_str())
                .then_some(phase)
        });
        assert_eq!(phase, "succeeded", "{}", row.name);
        let head = git::branch_sha(&hosted.world.origin, "cairn/table").unwrap();
        let md5 = pointer_md5_at(&hosted.world.origin, &head, &pointer).unwrap();
        assert!(
            stored(&format!("files/md5/{}/{}", &md5[..2], &md5[2..])),
            "{}: the pointer names {md5}, which is not stored",
            row.name
        );
        assert_eq!(open_pulls(&hosted.fake).len(), 1, "{}", row.name);
    }
}

/// Every file under `dir`, as strings.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

/// The service fetches its mirror before every reconcile while runs fetch
/// it to build their pointer commit and push to it: under a burst of pushes
/// these overlap, and libgit2 refuses a second fetch into the same
/// repository ("failed to lock file .../shallow.lock"), which failed runs.
/// Concurrent fetches of one mirror must all succeed.
#[test]
fn concurrent_fetches_of_one_mirror_all_succeed() {
    let hosted = Hosted::new(&config("review", 0.0));
    let runtime = &hosted._runtime;
    let _in_runtime = runtime.enter();
    let client = cairn::github::GitHub::builder(&hosted.fake.url)
        .token(cairn::github::Secret::new(TOKEN))
        .build()
        .unwrap()
        .repo(OWNER, NAME);
    let mirror_dir = hosted.world.data.join("mirror.git");
    let repo = Arc::new(cairn::forge::GitHubRepo::new(client, mirror_dir.clone()));
    runtime.block_on(repo.fetch()).unwrap();
    let base = hosted.world.main();
    // People keep pushing meanwhile, so the fetches have work.
    let origin = hosted.world.origin.clone();
    let pushes = std::thread::spawn(move || {
        for i in 0..24 {
            git::commit(&origin, "main", None, &[("n.txt", &i.to_string())], "n");
        }
    });
    let results = runtime.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..24 {
            let repo = repo.clone();
            tasks.push(tokio::spawn(async move {
                repo.fetch().await.map_err(|e| e.to_string())
            }));
        }
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.unwrap());
        }
        out
    });
    pushes.join().unwrap();
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(git::branch_sha(&mirror_dir, "main").is_some());
    assert_ne!(git::branch_sha(&mirror_dir, "main").unwrap(), base);
}
