//! The command line as a script sees it: JSON output, completions, help,
//! and exit codes.

use crate::common;

use common::{assert_success, stdout, Scratch, DATASET, PIPELINE};

#[test]
fn plan_prints_json_for_scripts() {
    let s = Scratch::example();
    let out = s.cairn(&["plan", "--output", "json"]);
    assert_success(&out, "cairn plan --output json");
    let plan: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let head = s.git(&["rev-parse", "HEAD"]);
    assert_eq!(plan["commit"], head.trim());
    assert_eq!(plan["branch"], "main");
    let p = &plan["pipelines"][0];
    assert_eq!(p["name"], PIPELINE);
    assert_eq!(p["dataset"], common::DATASET);
    assert_eq!(p["pointer"], format!("{}.dvc", common::DATASET));
    assert_eq!(
        p["current"],
        serde_json::Value::Null,
        "no version before the first run"
    );
    assert_eq!(p["merge"], "review");
    assert_eq!(p["schedule"]["cron"], "0 2 * * *");
    assert!(p["schedule"]["next"].as_str().unwrap().ends_with("+00:00"));
    assert_eq!(p["on_push"]["paths"][0], "etl/**");
    assert_eq!(p["tasks"][0]["name"], "modify_data");
    assert_eq!(p["tasks"][0]["retries"], 2);
    assert_eq!(p["tasks"][0]["timeout_seconds"], 600);
    assert_eq!(p["tasks"][0]["command"][0], "python3");
    assert!(p["remote"].as_str().is_some(), "{p}");

    // The text output says the same things.
    let text = stdout(&s.cairn(&["plan"]));
    assert!(text.contains("pipeline employee_attrition"), "{text}");
    assert!(text.contains("schedule  0 2 * * * (UTC), next "), "{text}");
    assert!(text.contains("on push   to main: etl/**"), "{text}");
}

#[test]
fn runs_prints_json_with_output_json_and_with_json() {
    let s = Scratch::example();
    for args in [&["runs", "--output", "json"][..], &["runs", "--json"][..]] {
        let out = s.cairn(args);
        assert_success(&out, "cairn runs");
        let runs: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(runs, serde_json::json!([]));
    }
}

#[test]
fn completions_are_printed_for_each_shell() {
    let s = Scratch::empty();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef cairn"),
        ("fish", "complete -c cairn"),
    ] {
        let out = s.cairn(&["completions", shell]);
        assert_success(&out, shell);
        let script = stdout(&out);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("validate"), "{shell} completes subcommands");
    }
    let out = s.cairn(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is bad usage");
}

#[test]
fn fetch_says_what_it_fetched_in_words() {
    let s = Scratch::example();
    assert_success(&s.cairn(&["run", PIPELINE, "--merge", "direct"]), "run");
    let pointer = std::fs::read_to_string(s.repo.join(format!("{DATASET}.dvc"))).unwrap();
    let md5 = common::pointer_md5(&pointer);
    // The run published from its own workspace: the checkout has only the pointer.
    assert!(!s.repo.join(DATASET).exists());

    let out = s.cairn(&["fetch", DATASET]);
    assert_success(&out, "cairn fetch");
    let bytes = std::fs::metadata(s.repo.join(DATASET)).unwrap().len();
    assert_eq!(
        stdout(&out),
        format!(
            "{DATASET}: {md5} from {} (1 file, {}, 1 object downloaded)\n",
            s.remote.display(),
            cairn::dataset::human_bytes(bytes)
        )
    );
}

#[test]
fn help_shows_examples_and_exit_codes_and_usage_errors_exit_2() {
    let s = Scratch::empty();
    let out = s.cairn(&["--help"]);
    assert_success(&out, "cairn --help");
    let help = stdout(&out);
    assert!(help.contains("Examples:"), "{help}");
    assert!(help.contains("Exit status:"), "{help}");
    for cmd in [
        "validate",
        "plan",
        "run",
        "runs",
        "init",
        "publish",
        "fetch",
        "serve",
        "completions",
    ] {
        let out = s.cairn(&[cmd, "--help"]);
        assert_success(&out, cmd);
        let help = stdout(&out);
        assert!(help.contains("Examples:"), "cairn {cmd} --help: {help}");
        assert!(help.contains("Exit status"), "cairn {cmd} --help: {help}");
    }
    assert_eq!(s.cairn(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        s.cairn(&["plan", "--output", "yaml"]).status.code(),
        Some(2)
    );
    // An error of the command itself is 1, printed once with the prefix.
    let out = s.cairn(&["validate", "missing.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("cairn: error: "));
}
