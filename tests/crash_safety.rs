//! Crash safety of `cairn serve`: the real binary is killed with SIGKILL at
//! each step boundary of a run (and, in seeded trials, at random moments),
//! then started again on the same data directory. Every time:
//!
//! - the run converges: the data change ends merged on main;
//! - exactly one pointer commit lands on main for the change, and there is
//!   exactly one pull request for the pipeline;
//! - the source commit's `cairn/<pipeline>` status ends `success`;
//! - every pointer on every branch names objects that are on the remote,
//!   checked with the real DVC client (`dvc pull` then `dvc status -c` in a
//!   fresh clone).
//!
//! The same holds in local mode (`cairn serve --repo`, the local forge and
//! a local DVC remote), where "merged" means the checked-out branch was
//! fast-forwarded to the pointer commit and there is no pull request.
//!
//! The boundaries are named failpoints (`CAIRN_TEST_FAILPOINT`, see
//! `src/failpoint.rs`): the process stops exactly there and prints so, and
//! the test kills it while it sits there.

use crate::common;

use crate::support::fake_github;
use crate::support::served;

use std::time::Duration;

use cairn::failpoint::{self, Failpoint};
use fake_github::git;
use served::*;

/// The pointer of the test pipeline; its remote is a local folder.
const DVC_CHECK: DvcCheck = DvcCheck {
    pointer: "data/table.dvc",
    config_local: None,
    env: &[],
};

const PIPELINE: &str = "table";
/// A folder dataset of several files, so an upload can be cut half-way.
const CONFIG: &str = r#"[pipelines.table]
dataset = "data/table"
merge = "auto"
on_push = { paths = ["etl/**"] }

[pipelines.table.tasks.build]
command = ["sh", "-c", "mkdir -p data/table && cp etl/rows.csv data/table/rows.csv && wc -l < etl/rows.csv > data/table/count.txt && cp README.md data/table/readme.md"]
"#;

type Trial = Hosted;

fn trial() -> Trial {
    Hosted::new(CONFIG)
}

/// `cairn serve` on the trial's data directory, resyncing every second so a
/// restarted service picks up at once.
fn start(t: &Trial, failpoint: Option<&str>) -> Served {
    let env = [
        ("CAIRN_RESYNC_INTERVAL", "1s"),
        (failpoint::ENV, failpoint.unwrap_or("")),
    ];
    let served = serve(&t.world, &t.fake, &env);
    served.wait_ready();
    served
}

/// A person's change to the ETL input, announced by a push delivery.
fn change(t: &Trial, served: &mut Served) -> String {
    push_and_notify(
        &t.fake,
        &t.world,
        served,
        &[("etl/rows.csv", "id,name\n1,ada\n2,grace\n")],
        "Add grace",
    )
}

/// Waits for the change to be merged on main by cairn, then checks every
/// invariant.
fn assert_converged(t: &Trial, source: &str, what: &str) {
    wait(
        &format!("{what}: the pointer commit merged on main"),
        Duration::from_secs(120),
        || {
            let pulls = t.fake.pulls(REPO);
            (pulls.iter().any(|p| p.merged)
                && git::read_file(&t.world.origin, "main", "data/table.dvc").is_some())
            .then_some(())
        },
    );
    // One pull request for the pipeline, merged, none left open.
    let pulls = t.fake.pulls(REPO);
    assert_eq!(pulls.len(), 1, "{what}: pull requests {pulls:#?}");
    assert!(pulls[0].merged, "{what}");
    assert_eq!(pulls[0].head, format!("cairn/{PIPELINE}"), "{what}");

    // Exactly one pointer commit on main after the person's change.
    let mut cairn_commits = 0;
    let mut sha = git::branch_sha(&t.world.origin, "main").unwrap();
    while sha != source {
        if git::message(&t.world.origin, &sha).contains("Cairn-Run:") {
            cairn_commits += 1;
        }
        sha = git::parents(&t.world.origin, &sha)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("{what}: {source} is not an ancestor of main"));
    }
    assert_eq!(cairn_commits, 1, "{what}: pointer commits on main");

    // The commit status of the source commit ends green.
    wait(
        &format!("{what}: a success status"),
        Duration::from_secs(60),
        || status(&t.fake, source, &format!("cairn/{PIPELINE}")).filter(|s| s.state == "success"),
    );

    assert_every_pointer_is_on_the_remote(&t.world.origin, t.world._tmp.path(), &DVC_CHECK, what);
}

#[test]
fn killed_at_each_step_boundary_the_run_converges_and_loses_nothing() {
    for point in Failpoint::ALL {
        let what = point.name();
        let t = trial();
        let mut served = start(&t, Some(what));
        let source = change(&t, &mut served);
        served.wait_line(
            &format!("cairn: failpoint {what} reached"),
            Duration::from_secs(90),
        );
        served.kill();

        let _served = start(&t, None);
        assert_converged(&t, &source, what);
    }
}

/// Kills at random moments after the push, once or twice per trial. The
/// seed is printed, and `CAIRN_CRASH_SEED` replays a failing sequence.
#[test]
fn killed_at_random_moments_the_run_converges_and_loses_nothing() {
    let (seed, trials) = crash_trials(0x5eed_ca1e, 12);
    let mut rng = Rng(seed | 1);
    for trial_no in 0..trials {
        let t = trial();
        let mut served = start(&t, None);
        let source = change(&t, &mut served);
        let kills = 1 + rng.next() % 2;
        for kill in 0..kills {
            // From the push to the merge takes about half a second here, so
            // most kills land inside the run, at a different step each time.
            let delay = Duration::from_millis(rng.next() % 700);
            std::thread::sleep(delay);
            eprintln!("trial {trial_no}: kill {kill} after {delay:?}");
            served.kill();
            served = start(&t, None);
        }
        assert_converged(&t, &source, &format!("seed {seed} trial {trial_no}"));
        drop(served);
    }
}

/// A repository served by `cairn serve --repo`, with the same pipeline.
fn local_trial() -> common::Scratch {
    common::Scratch::with_config(
        CONFIG,
        &[
            ("etl/rows.csv", "id,name\n1,ada\n"),
            ("README.md", "rows of people\n"),
        ],
    )
}

fn start_local(t: &common::Scratch, failpoint: Option<&str>) -> Served {
    let env = [
        ("CAIRN_RESYNC_INTERVAL", "1s"),
        (failpoint::ENV, failpoint.unwrap_or("")),
    ];
    let served = serve_local(&t.repo, &env);
    served.wait_ready();
    served
}

/// A person's commit to the ETL input on the checked-out branch, which the
/// service's resync notices by itself.
fn change_local(t: &common::Scratch) -> String {
    t.write("etl/rows.csv", "id,name\n1,ada\n2,grace\n");
    t.git(&["commit", "--quiet", "-am", "Add grace"]);
    t.git(&["rev-parse", "HEAD"]).trim().to_string()
}

/// Waits for main to carry the pointer for the change, then checks every
/// invariant of local mode.
fn assert_converged_local(t: &common::Scratch, source: &str, what: &str) {
    let repo = &t.repo;
    wait(
        &format!("{what}: the pointer commit fast-forwarded on main"),
        Duration::from_secs(120),
        || git::read_file(repo, "main", "data/table.dvc").map(|_| ()),
    );
    // Exactly one pointer commit on main after the person's change, and it
    // is what the proposal branch holds.
    let main = git::branch_sha(repo, "main").unwrap();
    let mut cairn_commits = 0;
    let mut sha = main.clone();
    while sha != source {
        assert!(
            git::message(repo, &sha).contains("Cairn-Run:"),
            "{what}: a commit other than cairn's on main: {sha}"
        );
        cairn_commits += 1;
        sha = git::parents(repo, &sha)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("{what}: {source} is not an ancestor of main"));
    }
    assert_eq!(cairn_commits, 1, "{what}: pointer commits on main");
    assert_eq!(
        git::branch_sha(repo, &format!("cairn/{PIPELINE}")).as_deref(),
        Some(main.as_str()),
        "{what}: the proposal branch"
    );
    // The working tree follows main: nothing left half-checked-out.
    let dirty = t.git(&["status", "--porcelain", "--untracked-files=no"]);
    assert_eq!(dirty.trim(), "", "{what}: the working tree");
    assert_every_pointer_is_on_the_remote(repo, &t.root, &DVC_CHECK, what);
}

#[test]
fn local_mode_killed_at_each_step_boundary_converges_and_loses_nothing() {
    // No pull request exists locally, so nothing stops at `pull-opened`.
    for point in Failpoint::ALL
        .into_iter()
        .filter(|p| *p != Failpoint::PullOpened)
    {
        let what = &format!("local {}", point.name());
        let t = local_trial();
        let served = start_local(&t, Some(point.name()));
        let source = change_local(&t);
        served.wait_line(
            &format!("cairn: failpoint {} reached", point.name()),
            Duration::from_secs(90),
        );
        served.kill();

        let _served = start_local(&t, None);
        assert_converged_local(&t, &source, what);
    }
}

#[test]
fn local_mode_killed_at_random_moments_converges_and_loses_nothing() {
    let (seed, trials) = crash_trials(0x10ca1, 8);
    let mut rng = Rng(seed | 1);
    for trial_no in 0..trials {
        let t = local_trial();
        let mut served = start_local(&t, None);
        let source = change_local(&t);
        for kill in 0..1 + rng.next() % 2 {
            // The resync notices the commit within a second; the run takes
            // about half a second after that.
            let delay = Duration::from_millis(rng.next() % 1500);
            std::thread::sleep(delay);
            eprintln!("local trial {trial_no}: kill {kill} after {delay:?}");
            served.kill();
            served = start_local(&t, None);
        }
        assert_converged_local(&t, &source, &format!("local seed {seed} trial {trial_no}"));
        drop(served);
    }
}
