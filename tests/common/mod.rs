//! Shared helpers for the integration tests: real git repositories made with
//! the real `git`, the real `cairn` binary, and (where a test needs it) the
//! real DVC client.

pub mod s3peers;
pub mod trees;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub const PIPELINE: &str = "employee_attrition";
pub const DATASET: &str = "datasets/employee_attrition.csv";

/// A scratch folder holding a git repository and a local DVC remote.
pub struct Scratch {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub repo: PathBuf,
    pub remote: PathBuf,
}

impl Scratch {
    /// An empty git repository (branch `main`) with one commit-less checkout.
    pub fn empty() -> Scratch {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let repo = root.join("repo");
        let remote = root.join("remote");
        std::fs::create_dir_all(&repo).unwrap();
        git(&repo, &["init", "--quiet", "--initial-branch=main"]);
        git(&repo, &["config", "user.name", "Test User"]);
        git(&repo, &["config", "user.email", "test@example.invalid"]);
        Scratch {
            _dir: dir,
            root,
            repo,
            remote,
        }
    }

    /// The project's example pipeline, initialised and committed.
    pub fn example() -> Scratch {
        let scratch = Scratch::empty();
        let project = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::copy(
            project.join("pipelines.toml"),
            scratch.repo.join("pipelines.toml"),
        )
        .unwrap();
        std::fs::create_dir_all(scratch.repo.join("etl")).unwrap();
        std::fs::copy(
            project.join("etl/modify_data.py"),
            scratch.repo.join("etl/modify_data.py"),
        )
        .unwrap();
        scratch.init_and_commit("Add the example pipeline");
        scratch
    }

    /// A repository whose pipelines.toml is `toml` (plus any `files`).
    pub fn with_config(toml: &str, files: &[(&str, &str)]) -> Scratch {
        let scratch = Scratch::empty();
        scratch.write("pipelines.toml", toml);
        for (path, content) in files {
            scratch.write(path, content);
        }
        scratch.init_and_commit("Add pipelines");
        scratch
    }

    pub fn init_and_commit(&self, message: &str) {
        let out = cairn(
            &self.repo,
            &["init", ".", "--remote", self.remote.to_str().unwrap()],
        );
        assert_success(&out, "cairn init");
        git(&self.repo, &["add", "-A"]);
        git(&self.repo, &["commit", "--quiet", "-m", message]);
    }

    pub fn write(&self, path: &str, content: &str) {
        let full = self.repo.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }

    pub fn cairn(&self, args: &[&str]) -> Output {
        cairn(&self.repo, args)
    }

    pub fn git(&self, args: &[&str]) -> String {
        git(&self.repo, args)
    }

    /// Every ref and what it points at: equal before and after means no
    /// commit was made anywhere.
    pub fn refs(&self) -> String {
        self.git(&["for-each-ref", "--format=%(refname) %(objectname)"])
    }

    /// Every object file on the remote, relative to it.
    pub fn remote_objects(&self) -> Vec<String> {
        let mut found = Vec::new();
        if self.remote.exists() {
            walk(&self.remote, &self.remote, &mut found);
        }
        found.sort();
        found
    }

    /// The bytes of the object with this md5 on the local remote.
    pub fn remote_object(&self, md5: &str) -> Vec<u8> {
        let path = self
            .remote
            .join("files/md5")
            .join(&md5[..2])
            .join(&md5[2..]);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

fn walk(base: &Path, dir: &Path, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(base, &path, found);
        } else {
            found.push(path.strip_prefix(base).unwrap().display().to_string());
        }
    }
}

pub fn cairn(dir: &Path, args: &[&str]) -> Output {
    cairn_command(dir, args).output().expect("run cairn")
}

pub fn cairn_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cairn"));
    command.args(args).current_dir(dir).env_remove("CAIRN_LOG");
    command
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run git");
    assert_success(&out, &format!("git {}", args.join(" ")));
    String::from_utf8(out.stdout).unwrap()
}

pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn assert_failure(out: &Output, what: &str) -> String {
    assert!(
        !out.status.success(),
        "{what} should have failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The md5 field of a pointer file's text.
pub fn pointer_md5(text: &str) -> String {
    text.lines()
        .find_map(|l| l.trim_start_matches("- ").trim().strip_prefix("md5: "))
        .unwrap_or_else(|| panic!("no md5 in pointer:\n{text}"))
        .to_string()
}

/// The real DVC client. The tests that need it fail (never skip) without it:
/// scripts/test.sh installs it and sets CAIRN_TEST_DVC.
pub fn dvc() -> PathBuf {
    if let Ok(path) = std::env::var("CAIRN_TEST_DVC") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("dvc"))
            .find(|p| p.is_file())
    });
    found.expect(
        "the DVC client is needed for this test: run scripts/test.sh, which installs it, \
         or set CAIRN_TEST_DVC=/path/to/dvc",
    )
}

pub fn run_dvc(dir: &Path, args: &[&str]) -> Output {
    dvc_command(dir, args).output().expect("run dvc")
}

pub fn dvc_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(dvc());
    command
        .args(args)
        .current_dir(dir)
        .env("DVC_NO_ANALYTICS", "1");
    command
}

/// The service `cairn serve --repo` runs, in this process, on `repo`, with
/// the clock in the test's hands and everything else at its default. The
/// token stops it.
pub fn local_service(
    repo: &Path,
    clock: Arc<dyn cairn::service::Clock>,
    catchup_window: Duration,
) -> (Arc<cairn::service::Service>, CancellationToken) {
    let stop = CancellationToken::new();
    let options = cairn::service::ServiceOptions {
        public_url: None,
        resync_interval: Duration::from_secs(3600),
        jobs: 1,
        bot_login: None,
        catchup_window,
        access: cairn::commands::AccessPolicy::default(),
        api_token: None,
        max_active_runs: cairn::service::default_max_active_runs(),
    };
    let service = cairn::service::Service::with_clock(
        options,
        Arc::new(cairn::metrics::Metrics::new()),
        Arc::new(cairn::backend::LocalBackend::new(
            None,
            cairn::pipeline::Limits::default(),
        )),
        stop.clone(),
        clock,
    );
    service
        .serve(Arc::new(
            cairn::service::LocalHost::new(repo.to_path_buf()).unwrap(),
        ))
        .unwrap();
    (service, stop)
}
