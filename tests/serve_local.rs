//! `cairn serve --repo DIR`, the embedded default: no GitHub, no cluster. The
//! service watches the checked-out branch of a local repository (its resync),
//! runs the pipelines a commit concerns with local processes, publishes to
//! the repository's own DVC remote and commits the pointer with the local
//! forge.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{Scratch, PIPELINE};

struct Served {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Served {
    fn drop(&mut self) {
        // SIGTERM first: the service shuts down cleanly.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(scratch: &Scratch) -> Served {
    serve_with(scratch, &[])
}

fn serve_with(scratch: &Scratch, env: &[(&str, &str)]) -> Served {
    let mut command = common::cairn_command(
        &scratch.repo,
        &["serve", "--repo", ".", "--listen", "127.0.0.1:0"],
    );
    command.envs(env.iter().copied());
    command
        .env("CAIRN_WEBHOOK_SECRET", "local-secret")
        .env("CAIRN_RESYNC_INTERVAL", "1s")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
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
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[serve] {line}");
            if let Some(addr) = line.strip_prefix("cairn: listening on http://") {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("cairn serve prints its address")
        .parse()
        .unwrap();
    Served { child, addr }
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    request(addr, "GET", path, "")
}

fn request(addr: SocketAddr, method: &str, path: &str, headers: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let status = raw[9..12].parse().unwrap();
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn wait<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_commit_to_the_served_branch_yields_a_proposed_version() {
    let scratch = Scratch::example();
    let served = serve(&scratch);
    wait("readiness", || {
        (get(served.addr, "/readyz").0 == 200).then_some(())
    });
    let branch = format!("refs/heads/cairn/{PIPELINE}");
    assert!(
        !scratch.refs().contains(&branch),
        "the first reconcile is a baseline: nothing runs"
    );

    // A commit that touches the pipeline's on_push paths (etl/**).
    let script = std::fs::read_to_string(scratch.repo.join("etl/modify_data.py")).unwrap();
    scratch.write("etl/modify_data.py", &format!("{script}\n# tweak\n"));
    scratch.git(&["commit", "--quiet", "-am", "Tweak the ETL"]);
    let source = scratch.git(&["rev-parse", "HEAD"]);

    let proposal = wait("the proposal", || {
        scratch
            .refs()
            .lines()
            .find(|l| l.starts_with(&branch))
            .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
    });
    assert_eq!(scratch.git(&["rev-parse", &format!("{proposal}^")]), source);
    let message = scratch.git(&["log", "-1", "--format=%B", &proposal]);
    assert!(message.contains("Cairn-Run: "), "{message}");
    assert_eq!(
        scratch.git(&["rev-parse", "HEAD"]),
        source,
        "review leaves the checkout alone"
    );

    // The run is recorded and counted (just after the commit lands).
    wait("the run on /metrics", || {
        let (status, metrics) = get(served.addr, "/metrics");
        assert_eq!(status, 200);
        metrics
            .lines()
            .any(|l| l.starts_with("cairn_runs_total{") && l.contains("outcome=\"succeeded\""))
            .then_some(())
    });
    let run = scratch.cairn(&["runs", "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(runs[0]["phase"], "succeeded");
    assert!(runs[0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("push: etl/"));

    // No second run for the same commit, however often the resync looks.
    std::thread::sleep(Duration::from_millis(2500));
    let runs = scratch.cairn(&["runs", "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1);
}

/// A run that waited behind another (`concurrency = "queue"`) starts from
/// the branch as it is when it leaves the queue: with `merge = "direct"` it
/// builds on the pointer commit of the run before it, instead of failing
/// because "the pointer changed on main while the run was going".
#[test]
fn queued_direct_runs_each_build_on_the_version_before() {
    const TOKEN: &str = "queue-test-token";
    let scratch = Scratch::with_config(
        r#"[pipelines.log]
dataset = "data/log.csv"
merge = "direct"
concurrency = "queue"

[pipelines.log.tasks.append]
command = ["sh", "-c", "echo \"$CAIRN_RUN_ID\" >> \"$CAIRN_DATASET\"; sleep 1"]
"#,
        &[],
    );
    let served = serve_with(&scratch, &[("CAIRN_API_TOKEN", TOKEN)]);
    wait("readiness", || {
        (get(served.addr, "/readyz").0 == 200).then_some(())
    });
    let start = scratch.git(&["rev-parse", "HEAD"]).trim().to_string();
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    for _ in 0..5 {
        let (status, body) = request(served.addr, "POST", "/api/v1/pipelines/log/runs", &auth);
        assert_eq!(status, 202, "{body}");
    }
    // Done when no run is unfinished and nothing is waiting.
    let runs = wait("every run to end", || {
        let out = scratch.cairn(&["runs", "--json"]);
        let runs: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let runs = runs.as_array()?.clone();
        let (_, body) = request(served.addr, "GET", "/api/v1/pipelines/log/runs", &auth);
        let listing: serde_json::Value = serde_json::from_str(&body).ok()?;
        let slot = &listing["pipelines"][0];
        let idle = slot.is_object() && slot["active"].is_null() && slot["waiting"].is_null();
        let settled = runs.iter().all(|r| {
            ["succeeded", "unchanged", "failed", "cancelled"]
                .contains(&r["phase"].as_str().unwrap_or(""))
        });
        (idle && settled && runs.len() >= 2).then_some(runs)
    });
    for run in &runs {
        assert_eq!(run["phase"], "succeeded", "{run:#}");
    }
    // One pointer commit per run, each on top of the one before.
    let commits = scratch.git(&["rev-list", &format!("{start}..HEAD")]);
    assert_eq!(commits.lines().count(), runs.len(), "{commits}");
    // And every run appended to the version the run before it made.
    let fetched = scratch.cairn(&["fetch", "data/log.csv"]);
    common::assert_success(&fetched, "cairn fetch data/log.csv");
    let rows = std::fs::read_to_string(scratch.repo.join("data/log.csv")).unwrap();
    assert_eq!(rows.lines().count(), runs.len(), "{rows}");
}
