//! Every page, rendered from view models: what it shows and that it escapes.

use super::*;
use crate::dashboard::model::tests::attempt;
use crate::dashboard::model::{
    Overview, PipelinePage, PipelineRow, Proposal, RepoOverview, RunBrief, RunPage, ScheduleView,
    TaskRow, TaskState, VersionEntry, VersionView,
};
use crate::store::{RunPhase, RunRecord};

const EVIL: &str = "<img src=x onerror=alert(1)>";

fn record(id: &str, phase: RunPhase) -> RunRecord {
    RunRecord {
        id: id.into(),
        pipeline: "employee_attrition".into(),
        reason: "push: etl/modify_data.py".into(),
        source_commit: "a".repeat(40),
        phase,
        created_at: 1_000_000,
        finished_at: phase.is_final().then_some(1_004_200),
        error: None,
        old_md5: Some("d1a0b622cd467ce72b35413f361b44b6".into()),
        new_md5: Some("5f3c9a01e2b47d6c8a90b1c2d3e4f506".into()),
        size: Some(13420),
        nfiles: None,
        commit: Some("b".repeat(40)),
        branch: Some("cairn/employee_attrition".into()),
    }
}

fn row(name: &str) -> PipelineRow {
    PipelineRow {
        name: name.into(),
        dataset: "datasets/employee_attrition.csv".into(),
        merge: "review".into(),
        schedule: Some(ScheduleView {
            expr: "0 2 * * *".into(),
            timezone: "UTC".into(),
            next: Some(1_800_000_000_000),
            next_local: Some("2027-01-15 08:00 UTC".into()),
        }),
        push_branches: vec!["main".into()],
        push_paths: vec!["etl/**".into()],
        last_run: Some(RunBrief {
            id: "employee_attrition-abc".into(),
            phase: RunPhase::Failed,
            created_at: 1_000_000,
            finished_at: Some(1_002_000),
        }),
        version: Some(VersionView {
            md5: "d1a0b622cd467ce72b35413f361b44b6".into(),
            size: Some(13420),
            nfiles: None,
        }),
        proposal: Some(Proposal::Pull {
            number: 7,
            url: Some("https://github.com/acme/data/pull/7".into()),
        }),
    }
}

#[test]
fn the_overview_lists_what_a_pipeline_needs_at_a_glance() {
    let o = Overview {
        now: 1_100_000,
        repos: vec![RepoOverview {
            name: "acme/data".into(),
            branch: Some("main".into()),
            tip: Some("c".repeat(40)),
            tip_url: None,
            warning: None,
            pipelines: vec![row("employee_attrition")],
        }],
    };
    let page = overview(&o);
    let m = &page.main;
    assert!(m.contains("<code>0 2 * * *</code>"), "{m}");
    assert!(m.contains("2027-01-15 08:00 UTC"));
    assert!(m.contains("<code>etl/**</code>"));
    assert!(m.contains("data-phase=\"failed\""));
    assert!(m.contains("href=\"/runs/employee_attrition-abc?repo=acme%2Fdata\""));
    assert!(m.contains("title=\"d1a0b622cd467ce72b35413f361b44b6\">d1a0b622</code> · 13.1 KiB"));
    assert!(m.contains("<a href=\"https://github.com/acme/data/pull/7\">pull request #7</a>"));
    assert!(m.contains("1 min ago"), "{m}");
    assert_eq!(page.poll, Some(10));
    let doc = document(&page);
    assert!(doc.starts_with("<!DOCTYPE html>"));
    assert!(doc.contains("<main id=\"live\" data-poll=\"10\">"));
}

#[test]
fn every_user_value_is_escaped_on_every_page() {
    let mut r = row(EVIL);
    r.dataset = EVIL.into();
    r.push_paths = vec![EVIL.into()];
    r.schedule.as_mut().unwrap().expr = EVIL.into();
    let o = Overview {
        now: 0,
        repos: vec![RepoOverview {
            name: EVIL.into(),
            branch: Some(EVIL.into()),
            tip: Some(EVIL.into()),
            tip_url: Some("javascript:alert(1)".into()),
            warning: Some(EVIL.into()),
            pipelines: vec![r.clone()],
        }],
    };
    let mut run = record(EVIL, RunPhase::Failed);
    run.pipeline = EVIL.into();
    run.reason = EVIL.into();
    run.error = Some(EVIL.into());
    run.branch = Some(EVIL.into());
    let mut a = attempt(EVIL, 1, "failed", 1_000_100, Some(1_000_900));
    a.reason = Some(EVIL.into());
    let page = RunPage {
        repo: EVIL.into(),
        now: 0,
        run: run.clone(),
        tasks: vec![TaskRow {
            name: EVIL.into(),
            state: TaskState::Failed,
            attempts: vec![a],
            log_tail: vec![EVIL.into()],
            log_cut: false,
        }],
        edges: vec![],
        source_url: Some("javascript:alert(1)".into()),
        commit_url: None,
        proposal: Some(Proposal::Branch { name: EVIL.into() }),
        has_diff: true,
        definition: None,
    };
    let pp = PipelinePage {
        repo: EVIL.into(),
        now: 0,
        row: r,
        runs: vec![run],
        versions: vec![VersionEntry {
            commit: EVIL.into(),
            commit_url: None,
            summary: EVIL.into(),
            time: 0,
            version: None,
            run_id: Some(EVIL.into()),
        }],
    };
    for html in [
        document(&overview(&o)),
        document(&super::run(&page)),
        document(&pipeline(&pp)),
        document(&diff(EVIL, EVIL, EVIL, EVIL)),
        document(&not_found(EVIL)),
    ] {
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    }
}

#[test]
fn a_run_page_draws_the_dag_the_timeline_the_attempts_and_the_logs() {
    let run = record("employee_attrition-abc", RunPhase::Failed);
    let mut failing = attempt("train", 1, "failed", 1_001_000, Some(1_002_000));
    failing.reason = Some("exit code 3".into());
    failing.exit_code = Some(3);
    let page = RunPage {
        repo: "acme/data".into(),
        now: 1_010_000,
        run,
        tasks: vec![
            TaskRow {
                name: "prepare".into(),
                state: TaskState::Succeeded,
                attempts: vec![attempt(
                    "prepare",
                    1,
                    "succeeded",
                    1_000_100,
                    Some(1_000_900),
                )],
                log_tail: vec!["prepared 42 rows".into()],
                log_cut: true,
            },
            TaskRow {
                name: "train".into(),
                state: TaskState::Failed,
                attempts: vec![failing],
                log_tail: vec!["Traceback: boom".into()],
                log_cut: false,
            },
            TaskRow {
                name: "report".into(),
                state: TaskState::Skipped,
                attempts: vec![],
                log_tail: vec![],
                log_cut: false,
            },
        ],
        edges: vec![(0, 1), (1, 2)],
        source_url: Some("https://github.com/acme/data/commit/aaa".into()),
        commit_url: None,
        proposal: None,
        has_diff: true,
        definition: Some("a".repeat(40)),
    };
    let r = super::run(&page);
    let m = &r.main;
    assert_eq!(r.poll, None, "a finished run does not poll");
    for (task, state) in [
        ("prepare", "succeeded"),
        ("train", "failed"),
        ("report", "skipped"),
    ] {
        assert!(
            m.contains(&format!(
                "class=\"node\" data-task=\"{task}\" data-state=\"{state}\""
            )),
            "{task}"
        );
        assert!(
            m.contains(&format!(
                "id=\"task-{task}\" data-task=\"{task}\" data-state=\"{state}\""
            )),
            "{task}"
        );
    }
    assert_eq!(m.matches("class=\"edge\"").count(), 2);
    assert!(m.contains("<td class=\"exit\">3</td>"));
    assert!(m.contains("exit code 3"));
    assert!(m.contains("Traceback: boom"));
    assert!(m.contains("earlier lines left out"));
    assert!(m.contains("class=\"timeline\""));
    assert!(m.contains("href=\"https://github.com/acme/data/commit/aaa\""));
    assert!(m.contains("href=\"/runs/employee_attrition-abc/diff?repo=acme%2Fdata\""));
    assert!(m.contains("on <code>cairn/employee_attrition</code>"));

    let mut live = page.clone();
    live.run.phase = RunPhase::Running;
    live.run.finished_at = None;
    assert_eq!(super::run(&live).poll, Some(3), "a run still going polls");
    assert!(super::run(&live).main.contains("so far"));
}

#[test]
fn a_pipeline_page_charts_its_runs_and_lists_its_versions() {
    let p = PipelinePage {
        repo: "acme/data".into(),
        now: 2_000_000,
        row: row("employee_attrition"),
        runs: vec![
            record("r2", RunPhase::Succeeded),
            record("r1", RunPhase::Failed),
        ],
        versions: vec![VersionEntry {
            commit: "e".repeat(40),
            commit_url: Some("https://github.com/acme/data/commit/eee".into()),
            summary: "Update employee_attrition".into(),
            time: 1_000_000,
            version: Some(VersionView {
                md5: "5f3c9a01e2b47d6c8a90b1c2d3e4f506".into(),
                size: Some(14336),
                nfiles: None,
            }),
            run_id: Some("r2".into()),
        }],
    };
    let m = pipeline(&p).main;
    assert!(m.contains("class=\"chart\""));
    assert_eq!(m.matches("class=\"bar\"").count(), 2);
    assert!(m.contains("data-run=\"r2\""));
    assert!(m.contains("<a href=\"https://github.com/acme/data/commit/eee\">eeeeeeeeeeee</a>"));
    assert!(m.contains("14.0 KiB"));
    assert!(m.contains("Update employee_attrition"));
    // The chart puts the oldest run on the left.
    assert!(m.find("data-run=\"r1\" x=").unwrap() < m.find("data-run=\"r2\" x=").unwrap());
}

#[test]
fn the_diff_is_shown_as_text_without_the_bots_marker() {
    let body = format!("{}\n## Dataset\n| a | b |\n", crate::diffview::marker("p"));
    let m = diff("acme/data", "p-1", "p", &body).main;
    assert!(m.contains("## Dataset\n| a | b |"));
    assert!(!m.contains("cairn:"), "{m}");
}
