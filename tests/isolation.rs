//! Task code against the trust boundary (docs/security.md): whoever can push
//! a pipelines.toml writes the tasks, and they run next to cairn's keys.
//! Each test is an attack a task can try; each must find nothing.

use crate::common::{self, assert_failure, assert_success, Scratch};
use crate::support::served::{http, serve_local, wait};

use std::time::{Duration, Instant};

/// Secrets the service (or the person running `cairn run`) holds.
const SECRETS: [(&str, &str); 6] = [
    ("CAIRN_API_TOKEN", "api-token-0f1e2d3c4b5a"),
    ("CAIRN_GITHUB_TOKEN", "ghs_cairn_installation_token_77"),
    ("GITHUB_TOKEN", "ghp_personal_token_of_the_operator_55"),
    ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEISOLATION"),
    (
        "AWS_SECRET_ACCESS_KEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYISOLATION",
    ),
    ("CAIRN_WEBHOOK_SECRET", "webhook-secret-9a8b7c6d"),
];

fn dump_env_pipeline() -> Scratch {
    Scratch::with_config(
        r#"[pipelines.dump]
dataset = "data/env.txt"
merge = "direct"

[pipelines.dump.tasks.env]
command = ["sh", "-c", "env > \"$CAIRN_DATASET\"; env"]
"#,
        &[],
    )
}

fn assert_no_secret(what: &str, text: &str) {
    for (name, value) in SECRETS {
        assert!(!text.contains(value), "{what} holds {name}:\n{text}");
    }
}

/// The dataset the run published and every log of the run.
fn published_and_logs(s: &Scratch) -> String {
    let out = s.cairn(&["fetch", "data/env.txt"]);
    assert_success(&out, "cairn fetch data/env.txt");
    let mut all = std::fs::read_to_string(s.repo.join("data/env.txt")).unwrap();
    let runs = s.repo.join(".cairn/runs");
    for run in std::fs::read_dir(&runs).unwrap() {
        let logs = run.unwrap().path().join("logs");
        for log in std::fs::read_dir(&logs).into_iter().flatten() {
            all.push_str(&std::fs::read_to_string(log.unwrap().path()).unwrap_or_default());
        }
    }
    all
}

#[test]
fn a_task_dumping_its_environment_under_cairn_serve_finds_no_secret() {
    let s = dump_env_pipeline();
    let served = serve_local(&s.repo, &SECRETS);
    served.wait_ready();
    let token = format!("Bearer {}", SECRETS[0].1);
    let reply = http(
        served.addr,
        "POST",
        "/api/v1/pipelines/dump/runs",
        &[("Authorization", token.clone())],
        b"",
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
    let run: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let path = format!("/api/v1/runs/{}", run["run"].as_str().unwrap());
    wait("the run to end", Duration::from_secs(60), || {
        let reply = http(
            served.addr,
            "GET",
            &path,
            &[("Authorization", token.clone())],
            b"",
        );
        let json: serde_json::Value = serde_json::from_str(&reply.body).ok()?;
        (json["run"]["phase"] == "succeeded").then_some(())
    });
    let seen = published_and_logs(&s);
    assert!(seen.contains("CAIRN_RUN_ID="), "the task ran: {seen}");
    assert_no_secret("the run of cairn serve", &seen);
}

#[test]
fn a_task_dumping_its_environment_under_cairn_run_finds_no_secret() {
    let s = dump_env_pipeline();
    let out = common::cairn_command(&s.repo, &["run", "dump", "--pass-env", "SHARED_SETTING"])
        .envs(SECRETS)
        .env("SHARED_SETTING", "passed on purpose")
        .output()
        .unwrap();
    assert_success(&out, "cairn run dump");
    let seen = published_and_logs(&s);
    assert!(seen.contains("SHARED_SETTING=passed on purpose"), "{seen}");
    // A clean, fixed base: a HOME and TMPDIR of the run's own, UTC, UTF-8.
    for line in ["TZ=UTC", "LANG=C.UTF-8", "LC_ALL=C.UTF-8"] {
        assert!(seen.lines().any(|l| l == line), "{line} in {seen}");
    }
    for name in ["HOME", "TMPDIR"] {
        let value = seen
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {seen}"));
        assert!(value.contains("/.cairn/runs/"), "{name}={value}");
    }
    assert_no_secret("the run of cairn run", &seen);

    // Naming one of cairn's own secrets is refused before anything runs.
    let out = common::cairn_command(&s.repo, &["run", "dump", "--pass-env", "CAIRN_API_TOKEN"])
        .envs(SECRETS)
        .output()
        .unwrap();
    let err = assert_failure(&out, "passing cairn's own secret");
    assert!(err.contains("CAIRN_API_TOKEN"), "{err}");
}

#[test]
fn a_link_out_of_the_dataset_uploads_nothing() {
    let s = Scratch::with_config(
        r#"[pipelines.leak]
dataset = "data/out"
merge = "direct"

[pipelines.leak.tasks.link]
command = ["sh", "-c", "mkdir -p \"$CAIRN_DATASET\" && echo ok > \"$CAIRN_DATASET/a.csv\" && ln -s \"$SECRET_FILE\" \"$CAIRN_DATASET/leak.txt\""]
"#,
        &[],
    );
    let secret = s.root.join("operator-secret.txt");
    std::fs::write(&secret, "the operator's private key\n").unwrap();
    let out = common::cairn_command(&s.repo, &["run", "leak", "--pass-env", "SECRET_FILE"])
        .env("SECRET_FILE", &secret)
        .output()
        .unwrap();
    let err = assert_failure(&out, "publishing a link out of the dataset");
    assert!(
        err.contains("leak.txt") && err.contains(secret.to_str().unwrap()),
        "the error names the link and its target: {err}"
    );
    assert!(s.remote_objects().is_empty(), "{:?}", s.remote_objects());
}

#[test]
fn a_committed_link_cannot_make_the_fetch_write_outside_the_workspace() {
    // `data` is a committed link to a folder outside the repository: the
    // run's fetch of the current version would write through it.
    let s = Scratch::with_config(
        r#"[pipelines.p]
dataset = "data/out.csv"
merge = "direct"

[pipelines.p.tasks.t]
command = ["sh", "-c", "echo id > \"$CAIRN_DATASET\""]
"#,
        &[],
    );
    assert_success(&s.cairn(&["run", "p"]), "first version");
    let elsewhere = s.root.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::rename(s.repo.join("data"), s.root.join("old-data")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, s.repo.join("data")).unwrap();
    std::fs::copy(
        s.root.join("old-data/out.csv.dvc"),
        elsewhere.join("out.csv.dvc"),
    )
    .unwrap();
    s.git(&["add", "-A"]);
    s.git(&["commit", "--quiet", "-m", "Point data elsewhere"]);
    let err = assert_failure(&s.cairn(&["run", "p"]), "a run through a committed link");
    assert!(err.contains("data"), "{err}");
    assert!(
        !elsewhere.join("out.csv").exists(),
        "the fetch wrote through the link"
    );
}

#[test]
fn a_timed_out_task_leaves_no_process_behind() {
    // A child that leaves the task's process group (setsid) and keeps the
    // output pipe open.
    let s = Scratch::with_config(
        r#"[pipelines.p]
dataset = "out.csv"

[pipelines.p.tasks.t]
command = ["sh", "-c", "setsid sleep 300.25 & sleep 300.5"]
timeout = "2s"
"#,
        &[],
    );
    let started = Instant::now();
    let err = assert_failure(&s.cairn(&["run", "p"]), "a timed-out run");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the run ended: {:?}",
        started.elapsed()
    );
    assert!(err.contains("timed out after 2s"), "{err}");
    std::thread::sleep(Duration::from_millis(500));
    let left = sleepers(&["300.25", "300.5"]);
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

/// Processes whose command line holds one of `marks`.
fn sleepers(marks: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if marks.iter().any(|m| text.contains(m)) {
            found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

#[test]
fn a_200_mb_line_keeps_the_service_small() {
    let s = Scratch::with_config(
        r#"[pipelines.flood]
dataset = "data/out.csv"
merge = "direct"

[pipelines.flood.tasks.t]
command = ["sh", "-c", "head -c 200000000 /dev/zero | tr '\\0' a; echo; echo id > \"$CAIRN_DATASET\""]
"#,
        &[],
    );
    let token = "flood-token";
    let served = serve_local(&s.repo, &[("CAIRN_API_TOKEN", token)]);
    served.wait_ready();
    let auth = [("Authorization", format!("Bearer {token}"))];
    let reply = http(
        served.addr,
        "POST",
        "/api/v1/pipelines/flood/runs",
        &auth,
        b"",
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
    let run: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let path = format!("/api/v1/runs/{}", run["run"].as_str().unwrap());
    let done = wait("the run to end", Duration::from_secs(120), || {
        let reply = http(served.addr, "GET", &path, &auth, b"");
        let json: serde_json::Value = serde_json::from_str(&reply.body).ok()?;
        (json["run"]["phase"] == "succeeded").then_some(reply.body)
    });
    let status = std::fs::read_to_string(format!("/proc/{}/status", served.child.id())).unwrap();
    let peak_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(peak_kb < 256 * 1024, "peak RSS {peak_kb} kB");
    assert!(
        done.len() < 1 << 20,
        "the run's record is {} bytes",
        done.len()
    );
    // The log keeps a head and a tail, and says how much it dropped.
    let json: serde_json::Value = serde_json::from_str(&done).unwrap();
    let log = json["attempts"][0]["log_path"].as_str().unwrap();
    let size = std::fs::metadata(log).unwrap().len();
    assert!(size < 16 << 20, "the log is {size} bytes");
    let text = std::fs::read_to_string(log).unwrap();
    assert!(
        text.contains("bytes of output dropped"),
        "{}",
        &text[text.len() - 300..]
    );
}
