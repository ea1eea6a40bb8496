//! Shared by the tests that run the real `cairn serve` binary against the
//! fake GitHub: a hosted repository with its DVC remote, the process (killed
//! when dropped, its stderr echoed and kept), signed deliveries over
//! loopback, and GitHub's payload shapes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn::triggers::WebhookSecret;
use serde_json::{json, Value};

use super::fake_github::{self, git, FakeGitHub};

pub const TOKEN: &str = "ghp_serveTestToken0123456789abcdefABCD";
pub const SECRET: &str = "webhook-secret-for-tests";
pub const OWNER: &str = "octo";
pub const NAME: &str = "data";
pub const REPO: &str = "octo/data";

/// The build task of the test pipeline: the dataset is a copy of the ETL
/// input.
pub const BUILD: &str = "mkdir -p data && cat etl/rows.csv > data/table.csv";

/// pipelines.toml with one pipeline `table` (dataset `data/table.csv`, run on
/// pushes under `etl/`) whose one task `build` runs `build` in `sh -c`.
pub fn table_config(merge: &str, build: &str) -> String {
    table_config_of("data/table.csv", merge, build)
}

/// [`table_config`] with another dataset path.
pub fn table_config_of(dataset: &str, merge: &str, build: &str) -> String {
    format!(
        r#"[pipelines.table]
dataset = "{dataset}"
merge = "{merge}"
on_push = {{ paths = ["etl/**"] }}

[pipelines.table.tasks.build]
command = ["sh", "-c", "{build}"]
"#
    )
}

/// The md5 the `.dvc` pointer `path` names at `rev` of the repository
/// `origin`; `None` when there is no such pointer.
pub fn pointer_md5_at(origin: &Path, rev: &str, path: &str) -> Option<String> {
    let text = git::read_file(origin, rev, path)?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("- md5: "))
        .map(str::to_string)
}

/// A hosted repository (bare, behind the fake), its DVC remote, and the
/// service's data directory.
/// A hosted repository behind the fake GitHub, which runs on `_runtime`
/// (dropped last, so the fake outlives the test's use of it).
pub struct Hosted {
    pub world: World,
    pub fake: FakeGitHub,
    pub _runtime: tokio::runtime::Runtime,
}

impl Hosted {
    /// `World::new(pipelines_toml)`, registered with a fresh fake GitHub that
    /// accepts [`TOKEN`].
    pub fn new(pipelines_toml: &str) -> Hosted {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let fake = runtime.block_on(FakeGitHub::start());
        let world = World::new(pipelines_toml);
        fake.add_repo(OWNER, NAME, "main", &world.origin);
        fake.accept_token(TOKEN);
        Hosted {
            world,
            fake,
            _runtime: runtime,
        }
    }
}

pub struct World {
    pub _tmp: tempfile::TempDir,
    pub origin: PathBuf,
    pub remote: PathBuf,
    pub data: PathBuf,
}

impl World {
    /// A repository whose main holds `pipelines_toml`, a DVC config naming
    /// a local remote, `etl/rows.csv` and a README.
    pub fn new(pipelines_toml: &str) -> World {
        let tmp = tempfile::tempdir().unwrap();
        let origin = git::init_bare(&tmp.path().join("origin.git"), "main");
        let remote = tmp.path().join("remote");
        std::fs::create_dir_all(&remote).unwrap();
        let dvc = cairn::dvc::DvcConfig::init_text("local", remote.to_str().unwrap());
        git::commit(
            &origin,
            "main",
            None,
            &[
                ("pipelines.toml", pipelines_toml),
                (".dvc/config", &dvc),
                ("etl/rows.csv", "id,name\n1,ada\n"),
                ("README.md", "data\n"),
            ],
            "Add the table pipeline",
        );
        World {
            data: tmp.path().join("service"),
            _tmp: tmp,
            origin,
            remote,
        }
    }

    pub fn main(&self) -> String {
        git::branch_sha(&self.origin, "main").unwrap()
    }

    /// A commit on main by a person; returns (before, after).
    pub fn push(&self, files: &[(&str, &str)], message: &str) -> (String, String) {
        let before = self.main();
        let after = git::commit(&self.origin, "main", None, files, message);
        (before, after)
    }
}

/// The `cairn serve` process; killed when dropped (and if the test dies).
pub struct Served {
    pub child: Child,
    pub addr: SocketAddr,
    pub secret: WebhookSecret,
    pub next_delivery: u32,
    /// Every line it printed on stderr so far.
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve(world: &World, fake: &FakeGitHub, extra_env: &[(&str, &str)]) -> Served {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cairn"));
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", world.data.parent().unwrap())
        .env("CAIRN_WEBHOOK_SECRET", SECRET)
        .env("CAIRN_GITHUB_TOKEN", TOKEN)
        .env("CAIRN_GITHUB_API_URL", &fake.url)
        .env("CAIRN_GITHUB_REPOSITORIES", REPO)
        .env("CAIRN_DATA_DIR", &world.data)
        .env("CAIRN_PUBLIC_URL", "https://cairn.example.com")
        .env("CAIRN_RESYNC_INTERVAL", "1h")
        .env("CAIRN_GITHUB_MERGE_WAIT", "5s")
        .env("CAIRN_LOG", "info,cairn=debug");
    spawn(command, extra_env)
}

/// `cairn serve --repo REPO`, the embedded default: no GitHub, the local
/// forge, the repository's own DVC remote.
pub fn serve_local(repo: &Path, extra_env: &[(&str, &str)]) -> Served {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cairn"));
    command
        .args(["serve", "--repo"])
        .arg(repo)
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(repo)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", repo.parent().unwrap())
        .env("CAIRN_WEBHOOK_SECRET", SECRET)
        .env("CAIRN_LOG", "info,cairn=debug");
    spawn(command, extra_env)
}

/// Starts `command` (a `cairn serve`) with `extra_env` on top (an empty
/// value removes the variable) and waits for the address it listens on.
fn spawn(mut command: Command, extra_env: &[(&str, &str)]) -> Served {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // An empty value removes the variable.
    for (k, v) in extra_env {
        if v.is_empty() {
            command.env_remove(k);
        } else {
            command.env(k, v);
        }
    }
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command.spawn().expect("cairn serve starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&lines);
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[serve] {line}");
            kept.lock().unwrap().push(line.clone());
            if !sent {
                if let Some(addr) = line.strip_prefix("cairn: listening on http://") {
                    let _ = tx.send(addr.trim().to_string());
                    sent = true;
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("cairn serve prints its address")
        .parse()
        .unwrap();
    Served {
        child,
        addr,
        secret: WebhookSecret::new(SECRET).unwrap(),
        next_delivery: 0,
        stderr: lines,
    }
}

pub struct Reply {
    pub status: u16,
    pub body: String,
}

pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Reply { status, body }
}

impl Served {
    pub fn deliver(&mut self, event: &str, payload: &Value) -> Reply {
        self.next_delivery += 1;
        let body = serde_json::to_vec(payload).unwrap();
        let headers = [
            ("Content-Type", "application/json".to_string()),
            ("X-GitHub-Event", event.to_string()),
            (
                "X-GitHub-Delivery",
                format!("00000000-0000-4000-8000-{:012}", self.next_delivery),
            ),
            ("X-Hub-Signature-256", self.secret.sign(&body)),
            ("User-Agent", "GitHub-Hookshot/test".to_string()),
        ];
        http(self.addr, "POST", "/webhook", &headers, &body)
    }

    pub fn get(&self, path: &str) -> Reply {
        http(self.addr, "GET", path, &[], b"")
    }

    /// Waits until it printed a line containing `text`.
    pub fn wait_line(&self, text: &str, limit: Duration) {
        wait(&format!("{text:?} on stderr"), limit, || {
            self.stderr
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(text))
                .then_some(())
        });
    }

    /// SIGKILL, as the kernel's OOM killer or a node failure would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn wait_ready(&self) {
        wait("the service to be ready", Duration::from_secs(60), || {
            (self.get("/readyz").status == 200).then_some(())
        });
    }
}

pub fn repository(fake: &FakeGitHub, origin: &Path) -> Value {
    json!({
        "id": 4242,
        "node_id": "R_kgDOtest",
        "name": NAME,
        "full_name": REPO,
        "private": false,
        "owner": {"login": OWNER, "id": 1, "type": "Organization", "name": OWNER},
        "html_url": format!("https://github.com/{REPO}"),
        "url": format!("{}/repos/{REPO}", fake.url),
        "clone_url": git::file_url(origin),
        "default_branch": "main",
        "master_branch": "main",
    })
}

pub fn commit_json(id: &str, message: &str, paths: &[&str]) -> Value {
    json!({
        "id": id,
        "tree_id": "0000000000000000000000000000000000000000",
        "distinct": true,
        "message": message,
        "timestamp": "2026-11-27T10:00:00Z",
        "url": format!("https://github.com/{REPO}/commit/{id}"),
        "author": {"name": "Ada", "email": "ada@example.com", "username": "ada"},
        "committer": {"name": "Ada", "email": "ada@example.com", "username": "ada"},
        "added": [],
        "removed": [],
        "modified": paths,
    })
}

/// A `push` payload as GitHub sends it for a push to main.
pub fn push_payload(
    fake: &FakeGitHub,
    world: &World,
    before: &str,
    after: &str,
    commits: &[Value],
) -> Value {
    json!({
        "ref": "refs/heads/main",
        "before": before,
        "after": after,
        "created": false,
        "deleted": false,
        "forced": false,
        "base_ref": null,
        "compare": format!("https://github.com/{REPO}/compare/{before}...{after}"),
        "commits": commits,
        "head_commit": commits.last().cloned().unwrap_or(Value::Null),
        "repository": repository(fake, &world.origin),
        "pusher": {"name": "ada", "email": "ada@example.com"},
        "sender": {"login": "ada", "id": 7, "type": "User"},
    })
}

/// A person's push to main, and GitHub's webhook for it (answered 202).
/// Returns the new commit.
pub fn push_and_notify(
    fake: &FakeGitHub,
    world: &World,
    served: &mut Served,
    files: &[(&str, &str)],
    message: &str,
) -> String {
    let (before, after) = world.push(files, message);
    let paths: Vec<&str> = files.iter().map(|(path, _)| *path).collect();
    let reply = served.deliver(
        "push",
        &push_payload(
            fake,
            world,
            &before,
            &after,
            &[commit_json(&after, message, &paths)],
        ),
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
    after
}

pub fn wait<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn open_pulls(fake: &FakeGitHub) -> Vec<fake_github::FakePull> {
    fake.pulls(REPO)
        .into_iter()
        .filter(|p| p.state == "open")
        .collect()
}

pub fn status(fake: &FakeGitHub, sha: &str, context: &str) -> Option<fake_github::FakeStatus> {
    fake.statuses(REPO, sha)
        .into_iter()
        .rev()
        .find(|s| s.context == context)
}

pub fn final_status(fake: &FakeGitHub, sha: &str, context: &str) -> fake_github::FakeStatus {
    wait(
        &format!("a final {context} status"),
        Duration::from_secs(60),
        || status(fake, sha, context).filter(|s| s.state != "pending"),
    )
}

/// xorshift64*: a reproducible sequence from a seed, without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The seed and number of a crash test's random trials: `CAIRN_CRASH_SEED`
/// (to replay a failure) and `CAIRN_CRASH_TRIALS`, else the defaults. The
/// seed is printed, so a failing run can be replayed.
pub fn crash_trials(seed: u64, trials: u64) -> (u64, u64) {
    let var = |name: &str| std::env::var(name).ok().and_then(|s| s.parse().ok());
    let seed = var("CAIRN_CRASH_SEED").unwrap_or(seed);
    let trials = var("CAIRN_CRASH_TRIALS").unwrap_or(trials);
    eprintln!("crash trials: CAIRN_CRASH_SEED={seed} CAIRN_CRASH_TRIALS={trials}");
    (seed, trials)
}

/// What [`assert_every_pointer_is_on_the_remote`] checks, and how DVC
/// reaches the remote.
pub struct DvcCheck<'a> {
    /// The pointer file, relative to the repository.
    pub pointer: &'a str,
    /// Written to `.dvc/config.local` of the clone (credentials a test
    /// server wants, which a commit must not hold).
    pub config_local: Option<&'a str>,
    /// Variables for the dvc process.
    pub env: &'a [(&'a str, &'a str)],
}

/// In a fresh clone, for every branch: `dvc pull` gets every object the
/// pointers name, and `dvc status -c` finds cache and remote in sync.
pub fn assert_every_pointer_is_on_the_remote(
    origin: &Path,
    scratch: &Path,
    check: &DvcCheck<'_>,
    what: &str,
) {
    let dvc = std::env::var("CAIRN_TEST_DVC")
        .expect("CAIRN_TEST_DVC names the dvc binary (scripts/peers.sh sets it)");
    let clone = scratch.join(format!("check-{}", rand_suffix()));
    run(
        Command::new("git")
            .args(["clone", "--quiet"])
            .arg(origin)
            .arg(&clone),
        what,
    );
    let branches = String::from_utf8(
        Command::new("git")
            .args([
                "for-each-ref",
                "--format=%(refname:short)",
                "refs/remotes/origin/",
            ])
            .current_dir(&clone)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let branches: Vec<&str> = branches
        .lines()
        .filter(|b| *b != "origin/HEAD" && *b != "origin")
        .collect();
    assert!(!branches.is_empty(), "{what}: no branches");
    for branch in branches {
        run(
            Command::new("git")
                .args(["checkout", "--quiet", "--detach", branch])
                .current_dir(&clone),
            what,
        );
        if !clone.join(check.pointer).exists() {
            continue;
        }
        if let Some(text) = check.config_local {
            std::fs::write(clone.join(".dvc/config.local"), text).unwrap();
        }
        let pull = dvc_command(&dvc, &clone, check.env, &["pull"]);
        assert!(
            pull.status.success(),
            "{what}: dvc pull on {branch} (missing objects?):\n{}{}",
            String::from_utf8_lossy(&pull.stdout),
            String::from_utf8_lossy(&pull.stderr)
        );
        let status = dvc_command(&dvc, &clone, check.env, &["status", "-c"]);
        let out = String::from_utf8_lossy(&status.stdout);
        assert!(
            status.status.success() && out.contains("are in sync"),
            "{what}: dvc status -c on {branch}:\n{out}{}",
            String::from_utf8_lossy(&status.stderr)
        );
    }
}

fn dvc_command(dvc: &str, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    Command::new(dvc)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .env("DVC_NO_ANALYTICS", "1")
        .env("DVC_SITE_CACHE_DIR", dir.join(".dvc-site-cache"))
        .output()
        .unwrap()
}

fn run(command: &mut Command, what: &str) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn rand_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
