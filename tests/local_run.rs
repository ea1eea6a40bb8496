//! `cairn run` end to end in real git repositories, on the embedded default
//! (local processes, a local directory remote, local git commits).

use crate::common;

use common::*;

#[test]
fn review_then_direct_twice() {
    let s = Scratch::example();
    let head = s.git(&["rev-parse", "HEAD"]);
    let status = s.git(&["status", "--porcelain", "--untracked-files=all"]);

    // review: one pointer commit on cairn/<pipeline>; the checkout untouched.
    let out = s.cairn(&["run", PIPELINE]);
    assert_success(&out, "cairn run (review)");
    assert!(
        stdout(&out).contains("on branch cairn/employee_attrition"),
        "{}",
        stdout(&out)
    );
    assert_eq!(s.git(&["rev-parse", "HEAD"]), head);
    assert_eq!(
        s.git(&["status", "--porcelain", "--untracked-files=all"]),
        status
    );
    assert_eq!(s.git(&["symbolic-ref", "--short", "HEAD"]).trim(), "main");
    assert!(!s.repo.join(format!("{DATASET}.dvc")).exists());
    assert_eq!(s.git(&["rev-parse", "cairn/employee_attrition^"]), head);
    let changed = s.git(&["diff", "--name-only", "HEAD", "cairn/employee_attrition"]);
    assert_eq!(
        changed,
        "datasets/.gitignore\ndatasets/employee_attrition.csv.dvc\n"
    );
    let message = s.git(&["log", "-1", "--format=%B", "cairn/employee_attrition"]);
    assert!(
        message.starts_with("employee_attrition: first dataset version "),
        "{message}"
    );
    assert!(
        message.contains("\nCairn-Run: employee-attrition-"),
        "{message}"
    );
    assert!(
        message.contains(&format!("\nCairn-Source: {}", head.trim())),
        "{message}"
    );
    assert_eq!(
        s.git(&["show", "cairn/employee_attrition:datasets/.gitignore"]),
        "/employee_attrition.csv\n"
    );

    // direct, twice: two commits on main, each holding one more record.
    assert_success(
        &s.cairn(&["run", PIPELINE, "--merge", "direct"]),
        "direct run 1",
    );
    let first = std::fs::read_to_string(s.repo.join(format!("{DATASET}.dvc"))).unwrap();
    assert_success(
        &s.cairn(&["run", PIPELINE, "--merge", "direct"]),
        "direct run 2",
    );
    let second = std::fs::read_to_string(s.repo.join(format!("{DATASET}.dvc"))).unwrap();
    assert_eq!(s.git(&["rev-list", "--count", "HEAD"]).trim(), "3");
    assert_eq!(s.git(&["rev-parse", "HEAD~2"]), head);
    // the checkout moved with the branch and is clean
    assert_eq!(s.git(&["status", "--porcelain"]), "");
    assert_eq!(s.git(&["show", &format!("HEAD:{DATASET}.dvc")]), second);

    let v1 = String::from_utf8(s.remote_object(&pointer_md5(&first))).unwrap();
    let v2 = String::from_utf8(s.remote_object(&pointer_md5(&second))).unwrap();
    assert_eq!(v1.lines().count(), 2, "header + one record:\n{v1}");
    assert!(
        v2.starts_with(&v1),
        "the second version keeps the first's rows:\n{v1}\n---\n{v2}"
    );
    assert_eq!(v2.lines().count(), 3, "{v2}");
    assert!(v2.lines().nth(2).unwrap().starts_with("2,"), "{v2}");

    // The pointer is exactly what `dvc add` writes for a file.
    let size = v2.len();
    assert_eq!(
        second,
        format!(
            "outs:\n- md5: {}\n  size: {size}\n  hash: md5\n  path: employee_attrition.csv\n",
            pointer_md5(&second)
        )
    );

    // The run history has all three.
    let runs = stdout(&s.cairn(&["runs", "--json"]));
    let runs: serde_json::Value = serde_json::from_str(&runs).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 3);
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .all(|r| r["phase"] == "succeeded"),
        "{runs:#}"
    );
    assert_eq!(runs[0]["attempts"][0]["task"], "modify_data");
}

#[test]
fn unchanged_data_makes_no_commit() {
    let s = Scratch::with_config(
        r#"
[pipelines.constant]
dataset = "data/out"
[pipelines.constant.tasks.write]
command = ["sh", "-c", "mkdir -p data/out/sub && printf 'a\n' > data/out/a.txt && printf 'b\n' > data/out/sub/b.txt"]
"#,
        &[],
    );
    assert_success(
        &s.cairn(&["run", "constant", "--merge", "direct"]),
        "first run",
    );
    let pointer = std::fs::read_to_string(s.repo.join("data/out.dvc")).unwrap();
    // DESIGN.md's directory vector, written by a real run.
    assert_eq!(
        pointer,
        "outs:\n- md5: 849835d274483dc683eb416d6e4f887d.dir\n  size: 4\n  nfiles: 2\n  hash: md5\n  path: out\n"
    );
    let refs = s.refs();
    let out = s.cairn(&["run", "constant", "--merge", "direct"]);
    assert_success(&out, "second run");
    assert!(stdout(&out).contains("data unchanged"), "{}", stdout(&out));
    assert_eq!(s.refs(), refs);
}

#[test]
fn independent_tasks_run_in_parallel_and_dependents_wait() {
    let s = Scratch::with_config(
        r#"
[pipelines.fan]
dataset = "out"
[pipelines.fan.tasks.left]
command = ["sh", "-c", "mkdir -p out && sleep 1 && echo left > out/left"]
[pipelines.fan.tasks.right]
command = ["sh", "-c", "mkdir -p out && sleep 1 && echo right > out/right"]
[pipelines.fan.tasks.join]
needs = ["left", "right"]
command = ["sh", "-c", "cat out/left out/right > out/joined && echo \"$CAIRN_PIPELINE $CAIRN_TASK\" > out/who"]
"#,
        &[],
    );
    let t0 = std::time::Instant::now();
    let out = s.cairn(&["run", "fan", "--merge", "direct"]);
    assert_success(&out, "fan run");
    // two one-second tasks side by side take about one second, not two
    assert!(
        t0.elapsed() < std::time::Duration::from_millis(1900),
        "{:?}",
        t0.elapsed()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("[join]") || stderr.find("[join]") > stderr.find("[left]"));
    let md5 = pointer_md5(&std::fs::read_to_string(s.repo.join("out.dvc")).unwrap());
    let manifest = String::from_utf8(s.remote_object(&md5)).unwrap();
    for name in ["joined", "left", "right", "who"] {
        assert!(
            manifest.contains(&format!("\"relpath\": \"{name}\"")),
            "{manifest}"
        );
    }
}

#[test]
fn broken_config_is_reported_with_its_place_and_nothing_runs() {
    let s = Scratch::with_config(
        "[pipelines.p]\ndataset = \"d.csv\"\n[pipelines.p.tasks.push]\ncommand = [\"true\"]\nneeds = [\"pul\"]\n",
        &[],
    );
    let refs = s.refs();
    let err = assert_failure(&s.cairn(&["run", "p"]), "run with a broken config");
    assert!(err.contains("pipelines.toml:5:"), "{err}");
    assert!(err.contains("unknown task \"pul\""), "{err}");
    assert_eq!(s.refs(), refs);
    assert!(s.remote_objects().is_empty());

    let err = assert_failure(&s.cairn(&["validate"]), "validate");
    assert!(err.contains("pipelines.toml:5:"), "{err}");
    assert!(
        err.contains("needs = [\"pul\"]"),
        "the offending line is shown: {err}"
    );
}

#[test]
fn failing_task_stops_dependents_and_commits_nothing() {
    let s = Scratch::with_config(
        r#"
[pipelines.p]
dataset = "out.csv"
[pipelines.p.tasks.make]
command = ["sh", "-c", "echo partial > out.csv; echo 'disk on fire' >&2; exit 7"]
retries = 1
[pipelines.p.tasks.after]
needs = ["make"]
command = ["sh", "-c", "touch after-ran"]
"#,
        &[],
    );
    let refs = s.refs();
    let out = s.cairn(&["run", "p", "--merge", "direct"]);
    let err = assert_failure(&out, "failing run");
    assert!(
        err.contains("task \"make\" failed: exited with status 7"),
        "{err}"
    );
    assert!(err.contains("disk on fire"), "the log tail is shown: {err}");
    assert!(err.contains("[make#2]"), "the retry ran: {err}");
    assert_eq!(s.refs(), refs);
    assert!(s.remote_objects().is_empty(), "{:?}", s.remote_objects());
    let runs: serde_json::Value =
        serde_json::from_str(&stdout(&s.cairn(&["runs", "--json"]))).unwrap();
    assert_eq!(runs[0]["phase"], "failed");
    assert_eq!(runs[0]["attempts"].as_array().unwrap().len(), 2);
    // the dependent never started, so it left no trace anywhere
    assert!(!runs[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["task"] == "after"));
}

#[test]
fn task_timeout_fails_the_run() {
    let s = Scratch::with_config(
        r#"
[pipelines.p]
dataset = "out.csv"
[pipelines.p.tasks.slow]
command = ["sh", "-c", "echo x > out.csv; sleep 30"]
timeout = "1s"
"#,
        &[],
    );
    let refs = s.refs();
    let t0 = std::time::Instant::now();
    let err = assert_failure(&s.cairn(&["run", "p"]), "timed-out run");
    assert!(t0.elapsed() < std::time::Duration::from_secs(20));
    assert!(err.contains("timed out after 1s"), "{err}");
    assert_eq!(s.refs(), refs);
    assert!(s.remote_objects().is_empty());
}

#[test]
fn missing_remote_says_how_to_add_one() {
    let s = Scratch::empty();
    s.write(
        "pipelines.toml",
        "[pipelines.p]\ndataset = \"out.csv\"\n[pipelines.p.tasks.t]\ncommand = [\"sh\", \"-c\", \"echo x > out.csv\"]\n",
    );
    s.git(&["add", "-A"]);
    s.git(&["commit", "--quiet", "-m", "no dvc config"]);
    let refs = s.refs();
    let err = assert_failure(&s.cairn(&["run", "p"]), "run without a remote");
    assert!(err.contains("remote"), "{err}");
    assert!(
        err.contains("dvc remote add") || err.contains("cairn init"),
        "{err}"
    );
    assert_eq!(s.refs(), refs);
}

#[test]
fn dirty_checkout_refuses_direct_before_running_anything() {
    let s = Scratch::example();
    std::fs::write(s.repo.join("etl/modify_data.py"), "# local edit\n").unwrap();
    let refs = s.refs();
    let err = assert_failure(
        &s.cairn(&["run", PIPELINE, "--merge", "direct"]),
        "dirty direct",
    );
    assert!(err.contains("uncommitted changes"), "{err}");
    assert!(err.contains("etl/modify_data.py"), "{err}");
    assert!(!err.contains("[modify_data]"), "no task ran: {err}");
    assert_eq!(s.refs(), refs);
    assert!(s.remote_objects().is_empty());
    // the local edit is untouched
    assert_eq!(
        std::fs::read_to_string(s.repo.join("etl/modify_data.py")).unwrap(),
        "# local edit\n"
    );
}

#[test]
fn unknown_pipeline_gets_a_suggestion() {
    let s = Scratch::example();
    let err = assert_failure(&s.cairn(&["run", "employee_atrition"]), "typo");
    assert!(err.contains("did you mean \"employee_attrition\""), "{err}");
}

#[test]
fn human_commits_on_the_bot_branch_are_kept() {
    let s = Scratch::example();
    assert_success(&s.cairn(&["run", PIPELINE]), "first review run");
    s.git(&["checkout", "--quiet", "cairn/employee_attrition"]);
    s.write("NOTES.md", "a reviewer's note\n");
    s.git(&["add", "NOTES.md"]);
    s.git(&["commit", "--quiet", "-m", "reviewer note"]);
    s.git(&["checkout", "--quiet", "main"]);
    let tip = s.git(&["rev-parse", "cairn/employee_attrition"]);
    let err = assert_failure(&s.cairn(&["run", PIPELINE]), "second review run");
    assert!(err.contains("holds commits not made by cairn"), "{err}");
    assert_eq!(s.git(&["rev-parse", "cairn/employee_attrition"]), tip);
}

#[test]
fn dataset_committed_to_git_is_refused_with_the_fix() {
    let s = Scratch::with_config(
        "[pipelines.p]\ndataset = \"data.csv\"\n[pipelines.p.tasks.t]\ncommand = [\"sh\", \"-c\", \"echo more >> data.csv\"]\n",
        &[("data.csv", "committed by mistake\n")],
    );
    let refs = s.refs();
    let err = assert_failure(&s.cairn(&["run", "p"]), "run over a git-tracked dataset");
    assert!(err.contains("data.csv is tracked by git"), "{err}");
    assert!(err.contains("git rm -r --cached data.csv"), "{err}");
    assert_eq!(s.refs(), refs);
    assert!(s.remote_objects().is_empty());
}

#[test]
fn auto_merges_the_bot_branch_into_a_clean_checkout_and_not_a_dirty_one() {
    let s = Scratch::example();
    let head = s.git(&["rev-parse", "HEAD"]);
    let out = s.cairn(&["run", PIPELINE, "--merge", "auto"]);
    assert_success(&out, "auto run");
    assert!(
        stdout(&out).contains("merged into main"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        s.git(&["rev-parse", "HEAD"]),
        s.git(&["rev-parse", "cairn/employee_attrition"])
    );
    assert_eq!(s.git(&["rev-parse", "HEAD^"]), head);
    assert_eq!(s.git(&["status", "--porcelain"]), "");
    assert!(s.repo.join(format!("{DATASET}.dvc")).exists());

    // With local edits the proposal stays on its branch and says why.
    std::fs::write(s.repo.join("etl/modify_data.py"), "# local edit\n").unwrap();
    let main_before = s.git(&["rev-parse", "main"]);
    let out = s.cairn(&["run", PIPELINE, "--merge", "auto"]);
    assert_success(&out, "auto run on a dirty checkout");
    assert!(stdout(&out).contains("not merged"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("uncommitted changes"),
        "{}",
        stdout(&out)
    );
    assert_eq!(s.git(&["rev-parse", "main"]), main_before);
    assert_eq!(
        s.git(&["rev-parse", "cairn/employee_attrition^"]),
        main_before
    );
}

#[test]
fn pipeline_timeout_stops_running_tasks() {
    let s = Scratch::with_config(
        r#"
[pipelines.p]
dataset = "out.csv"
timeout = "1s"
[pipelines.p.tasks.slow]
command = ["sh", "-c", "echo x > out.csv; sleep 30"]
"#,
        &[],
    );
    let t0 = std::time::Instant::now();
    let err = assert_failure(&s.cairn(&["run", "p"]), "run past its pipeline timeout");
    assert!(t0.elapsed() < std::time::Duration::from_secs(20));
    assert!(
        err.contains("the pipeline's timeout of 1s expired"),
        "{err}"
    );
    let runs: serde_json::Value =
        serde_json::from_str(&stdout(&s.cairn(&["runs", "--json"]))).unwrap();
    assert_eq!(runs[0]["phase"], "cancelled");
    assert_eq!(runs[0]["attempts"][0]["state"], "stopped");
}

#[test]
fn a_run_id_is_an_idempotency_key() {
    let s = Scratch::example();
    assert_success(
        &s.cairn(&["run", PIPELINE, "--run-id", "nightly-1"]),
        "first",
    );
    let refs = s.refs();
    let err = assert_failure(
        &s.cairn(&["run", PIPELINE, "--run-id", "nightly-1"]),
        "duplicate",
    );
    assert!(
        err.contains("a run with id nightly-1 already exists"),
        "{err}"
    );
    assert_eq!(s.refs(), refs);
}

#[test]
fn a_run_id_cannot_be_a_path() {
    let s = Scratch::example();
    let err = assert_failure(
        &s.cairn(&["run", PIPELINE, "--run-id", "../../escape"]),
        "path id",
    );
    assert!(err.contains("run id \"../../escape\" must be"), "{err}");
    assert!(!s.root.join("escape").exists());
}
