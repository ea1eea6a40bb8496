//! Orchestration overhead of a 3-task local pipeline (DESIGN.md: under 50 ms
//! beyond the tasks' own time).
//!
//! A scratch git repository with a local DVC remote holds a pipeline of three
//! chained tasks that do nothing (`true`) over a small committed dataset. The
//! real `cairn run` (the release binary) runs it again and again: each run
//! records itself in SQLite, lays out a workspace from the commit, fetches
//! the dataset, runs the tasks in order, hashes the output, finds it
//! unchanged and proposes nothing. The reference, measured in the same run,
//! is the tasks' own time: the three `true` processes started one after the
//! other. The overhead is the difference of the medians.
//!
//! A plain `main` rather than a bench harness: one figure. Run with
//! `cargo bench --bench orchestration` (or through bench/run.sh).

#[path = "support/rows.rs"]
mod rows;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 21;
const TARGET: Duration = Duration::from_millis(50);

const PIPELINES: &str = r#"[pipelines.three]
dataset = "datasets/d.csv"
merge = "direct"

[pipelines.three.tasks.extract]
command = ["true"]

[pipelines.three.tasks.transform]
command = ["true"]
needs = ["extract"]

[pipelines.three.tasks.load]
command = ["true"]
needs = ["transform"]
"#;

fn run(cmd: &mut Command) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn git(repo: &Path, args: &[&str]) {
    run(Command::new("git").arg("-C").arg(repo).args(args));
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let cairn = env!("CARGO_BIN_EXE_cairn");
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join("datasets")).unwrap();
    std::fs::write(repo.join("pipelines.toml"), PIPELINES).unwrap();
    let mut csv = String::from("id,value\n");
    for i in 0..1000 {
        csv.push_str(&format!("{i},{}\n", i * 7 % 13));
    }
    std::fs::write(repo.join("datasets/d.csv"), csv).unwrap();
    git(&repo, &["init", "--quiet", "--initial-branch=main"]);
    git(&repo, &["config", "user.name", "bench"]);
    git(&repo, &["config", "user.email", "bench@cairn.invalid"]);
    run(Command::new(cairn)
        .arg("init")
        .arg(&repo)
        .arg("--remote")
        .arg(dir.path().join("remote")));
    run(Command::new(cairn)
        .args(["publish", "datasets/d.csv", "--repo"])
        .arg(&repo));
    git(&repo, &["add", "-A"]);
    git(
        &repo,
        &["commit", "--quiet", "-m", "a pipeline of three tasks"],
    );

    let cairn_run = || {
        let start = Instant::now();
        run(Command::new(cairn)
            .args(["run", "three"])
            .current_dir(&repo)
            .env("CAIRN_LOG", "warn"));
        start.elapsed()
    };
    let tasks_alone = || {
        let start = Instant::now();
        for _ in 0..3 {
            run(&mut Command::new("true"));
        }
        start.elapsed()
    };
    // The first run creates the store; it is not what a steady service sees.
    cairn_run();
    tasks_alone();
    let mut runs = Vec::with_capacity(RUNS);
    let mut alone = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        runs.push(cairn_run());
        alone.push(tasks_alone());
    }
    let (run_median, alone_median) = (median(runs), median(alone));
    let overhead = run_median.saturating_sub(alone_median);
    println!(
        "orchestration: `cairn run` of 3 chained tasks over a 1,000-row dataset, median of {RUNS}: \
         {}; the 3 tasks alone: {}; overhead {} (target < {})",
        ms(run_median),
        ms(alone_median),
        ms(overhead),
        ms(TARGET)
    );
    rows::record(rows::Row {
        bench: "orchestration, 3-task local run",
        target: "overhead < 50 ms beyond the tasks' own time",
        measured: format!("{} ({} in all)", ms(overhead), ms(run_median)),
        reference: format!("tasks alone {}", ms(alone_median)),
        ratio: overhead.as_secs_f64() / TARGET.as_secs_f64(),
        met: Some(overhead < TARGET),
    });
}
