//! Pages as HTML: view models in, text out. Pure, so every page is tested
//! without a server or a repository.
//!
//! Each page is a [`Rendered`]: a title and the contents of `<main>`. The
//! routes send either the whole document ([`document`]) or only the
//! contents of `<main>` (the fragment the page's script polls for), so the
//! two can never disagree.

use std::fmt::Write as _;

use super::html::{ago, bytes, duration_ms, esc, join, link_or_text, short, time_utc, url_param};
use super::model::{
    segments, Overview, PipelinePage, PipelineRow, Proposal, RepoOverview, RunPage, TaskRow,
    VersionView,
};
use super::svg::{self, ChartPoint, DagNode, TimelineRow};
use crate::store::{RunPhase, RunRecord};

/// A page: its title and what goes inside `<main>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub title: String,
    pub main: String,
    /// Seconds between refreshes while the page can still change; `None`
    /// when it cannot (a finished run).
    pub poll: Option<u32>,
}

/// Where the stylesheet and the script are served.
pub const STYLE_PATH: &str = "/assets/dashboard.css";
pub const SCRIPT_PATH: &str = "/assets/dashboard.js";

/// The whole document around a page. Without JavaScript it is complete as
/// it stands; with it, `dashboard.js` refreshes `<main>` every `poll`
/// seconds.
pub fn document(page: &Rendered) -> String {
    let poll = match page.poll {
        Some(s) => format!(" data-poll=\"{s}\""),
        None => String::new(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · cairn</title><link rel=\"stylesheet\" href=\"{STYLE_PATH}\">\
         <script src=\"{SCRIPT_PATH}\" defer></script></head>\
         <body><header><a class=\"brand\" href=\"/\">cairn</a><span class=\"tagline\">pipelines and dataset versions</span></header>\
         <main id=\"live\"{poll}>{}</main>\
         <footer>read-only view · <a href=\"/metrics\">metrics</a> · <a href=\"/readyz\">readiness</a></footer></body></html>\n",
        esc(&page.title),
        page.main
    )
}

pub fn pipeline_href(repo: &str, pipeline: &str) -> String {
    format!(
        "/pipelines/{}?repo={}",
        url_param(pipeline),
        url_param(repo)
    )
}

pub fn run_href(repo: &str, run: &str) -> String {
    format!("/runs/{}?repo={}", url_param(run), url_param(repo))
}

pub fn diff_href(repo: &str, run: &str) -> String {
    format!("/runs/{}/diff?repo={}", url_param(run), url_param(repo))
}

fn badge(phase: RunPhase) -> String {
    format!(
        "<span class=\"badge phase-{0}\" data-phase=\"{0}\">{0}</span>",
        phase.as_str()
    )
}

fn version_text(v: &VersionView) -> String {
    let mut parts = vec![format!(
        "<code class=\"md5\" title=\"{0}\">{1}</code>",
        esc(&v.md5),
        esc(&v.md5[..v.md5.len().min(8)])
    )];
    if let Some(size) = v.size {
        parts.push(esc(&bytes(size)));
    }
    if let Some(n) = v.nfiles {
        parts.push(format!("{n} file{}", if n == 1 { "" } else { "s" }));
    }
    join(parts, " · ")
}

fn proposal_text(p: &Proposal) -> String {
    match p {
        Proposal::Pull { number, url } => format!(
            "<span class=\"proposal\">{}</span>",
            link_or_text(url.as_deref(), &format!("pull request #{number}"))
        ),
        Proposal::Branch { name } => format!(
            "<span class=\"proposal\">branch <code>{}</code></span>",
            esc(name)
        ),
    }
}

fn run_duration(run: &RunRecord, now: i64) -> String {
    match run.finished_at {
        Some(end) => duration_ms(end - run.created_at),
        None => format!("{} so far", duration_ms(now - run.created_at)),
    }
}

fn schedule_cells(row: &PipelineRow) -> (String, String) {
    match &row.schedule {
        None => (
            "<span class=\"none\">none</span>".into(),
            "<span class=\"none\">—</span>".into(),
        ),
        Some(s) => {
            let expr = format!(
                "<code>{}</code> <span class=\"tz\">{}</span>",
                esc(&s.expr),
                esc(&s.timezone)
            );
            let next = match (s.next, &s.next_local) {
                (Some(ms), Some(local)) => format!(
                    "<time datetime=\"{}\" title=\"{}\">{}</time>",
                    esc(&time_utc(ms)),
                    esc(&time_utc(ms)),
                    esc(local)
                ),
                (Some(ms), None) => esc(&time_utc(ms)),
                _ => "<span class=\"none\">never</span>".into(),
            };
            (expr, next)
        }
    }
}

fn triggers(row: &PipelineRow) -> String {
    if row.push_branches.is_empty() && row.push_paths.is_empty() {
        return "<span class=\"none\">no push trigger</span>".into();
    }
    let branches = if row.push_branches.is_empty() {
        "the default branch".to_string()
    } else {
        join(
            row.push_branches
                .iter()
                .map(|b| format!("<code>{}</code>", esc(b))),
            ", ",
        )
    };
    let paths = if row.push_paths.is_empty() {
        "any path".to_string()
    } else {
        join(
            row.push_paths
                .iter()
                .map(|p| format!("<code>{}</code>", esc(p))),
            " ",
        )
    };
    format!("push to {branches}: {paths}")
}

fn last_run(repo: &str, row: &PipelineRow, now: i64) -> String {
    match &row.last_run {
        None => "<span class=\"none\">no run yet</span>".into(),
        Some(r) => format!(
            "{} <a href=\"{}\">{}</a> <span class=\"when\" title=\"{}\">{}</span>",
            badge(r.phase),
            esc(&run_href(repo, &r.id)),
            esc(&r.id),
            esc(&time_utc(r.created_at)),
            esc(&ago(r.finished_at.unwrap_or(r.created_at), now)),
        ),
    }
}

/// `/`: every pipeline of every served repository.
pub fn overview(o: &Overview) -> Rendered {
    let mut main = String::new();
    main.push_str("<h1>Pipelines</h1>");
    if o.repos.is_empty() {
        main.push_str("<p class=\"empty\">No repository is served yet.</p>");
    }
    for repo in &o.repos {
        repo_section(&mut main, repo, o.now);
    }
    let _ = write!(
        main,
        "<p class=\"generated\">as of <time>{}</time></p>",
        esc(&time_utc(o.now))
    );
    Rendered {
        title: "Pipelines".into(),
        main,
        poll: Some(10),
    }
}

fn repo_section(out: &mut String, repo: &RepoOverview, now: i64) {
    let _ = write!(
        out,
        "<section class=\"repo\" data-repo=\"{0}\"><h2>{0}</h2>",
        esc(&repo.name)
    );
    if let (Some(branch), Some(tip)) = (&repo.branch, &repo.tip) {
        let _ = write!(
            out,
            "<p class=\"meta\">branch <code>{}</code> at {}</p>",
            esc(branch),
            link_or_text(repo.tip_url.as_deref(), short(tip))
        );
    }
    if let Some(w) = &repo.warning {
        let _ = write!(out, "<p class=\"warning\">{}</p>", esc(w));
    }
    if repo.pipelines.is_empty() {
        out.push_str("<p class=\"empty\">No pipelines.</p></section>");
        return;
    }
    out.push_str(
        "<table class=\"pipelines\"><thead><tr><th>Pipeline</th><th>Schedule</th><th>Next run</th>\
         <th>Triggers</th><th>Last run</th><th>Dataset version</th><th>Proposal</th></tr></thead><tbody>",
    );
    for row in &repo.pipelines {
        let (schedule, next) = schedule_cells(row);
        let version = row
            .version
            .as_ref()
            .map(version_text)
            .unwrap_or_else(|| "<span class=\"none\">no version yet</span>".into());
        let proposal = row
            .proposal
            .as_ref()
            .map(proposal_text)
            .unwrap_or_else(|| "<span class=\"none\">—</span>".into());
        let _ = write!(
            out,
            "<tr class=\"pipeline\" data-pipeline=\"{}\"><td><a href=\"{}\">{}</a><div class=\"dataset\">{}</div></td>\
             <td>{schedule}</td><td>{next}</td><td>{}</td><td>{}</td><td>{version}</td><td>{proposal}</td></tr>",
            esc(&row.name),
            esc(&pipeline_href(&repo.name, &row.name)),
            esc(&row.name),
            esc(&row.dataset),
            triggers(row),
            last_run(&repo.name, row, now),
        );
    }
    out.push_str("</tbody></table></section>");
}

/// A run: its DAG, timeline, attempts and log tails.
pub fn run(p: &RunPage) -> Rendered {
    let run = &p.run;
    let mut m = String::new();
    let _ = write!(
        m,
        "<nav class=\"crumbs\"><a href=\"/\">pipelines</a> › <a href=\"{}\">{}</a> › run</nav>\
         <h1>Run <code>{}</code> {}</h1>",
        esc(&pipeline_href(&p.repo, &run.pipeline)),
        esc(&run.pipeline),
        esc(&run.id),
        badge(run.phase)
    );
    m.push_str("<dl class=\"facts\">");
    let mut fact = |k: &str, v: String| {
        let _ = write!(m, "<dt>{k}</dt><dd>{v}</dd>");
    };
    fact("repository", esc(&p.repo));
    fact("reason", esc(&run.reason));
    fact(
        "started",
        format!(
            "{} ({})",
            esc(&time_utc(run.created_at)),
            esc(&ago(run.created_at, p.now))
        ),
    );
    fact("duration", esc(&run_duration(run, p.now)));
    fact(
        "source commit",
        format!(
            "<span class=\"commit source\">{}</span>",
            link_or_text(p.source_url.as_deref(), short(&run.source_commit))
        ),
    );
    if let Some(commit) = &run.commit {
        let branch = run
            .branch
            .as_ref()
            .map(|b| format!(" on <code>{}</code>", esc(b)))
            .unwrap_or_default();
        fact(
            "pointer commit",
            format!(
                "<span class=\"commit pointer\">{}</span>{branch}",
                link_or_text(p.commit_url.as_deref(), short(commit))
            ),
        );
    }
    if let Some(new) = &run.new_md5 {
        let v = VersionView {
            md5: new.clone(),
            size: run.size,
            nfiles: run.nfiles,
        };
        let old = run
            .old_md5
            .as_ref()
            .map(|o| {
                format!(
                    " (was <code class=\"md5\" title=\"{0}\">{1}</code>)",
                    esc(o),
                    esc(&o[..o.len().min(8)])
                )
            })
            .unwrap_or_default();
        fact("dataset version", format!("{}{old}", version_text(&v)));
    }
    if let Some(prop) = &p.proposal {
        fact("proposal", proposal_text(prop));
    }
    if p.has_diff {
        fact(
            "dataset diff",
            format!(
                "<a class=\"diff\" href=\"{}\">what changed</a>",
                esc(&diff_href(&p.repo, &run.id))
            ),
        );
    }
    m.push_str("</dl>");
    if let Some(error) = &run.error {
        let _ = write!(m, "<pre class=\"error\">{}</pre>", esc(error));
    }

    m.push_str("<h2>Tasks</h2>");
    if p.tasks.is_empty() {
        m.push_str("<p class=\"empty\">No task ran.</p>");
    } else {
        let nodes: Vec<DagNode> = p
            .tasks
            .iter()
            .map(|t| DagNode {
                name: t.name.clone(),
                state: t.state,
            })
            .collect();
        let _ = write!(
            m,
            "<div class=\"figure\">{}</div>",
            svg::dag(&nodes, &p.edges)
        );
        if p.definition.is_none() {
            m.push_str("<p class=\"note\">The pipeline's definition could not be read: tasks are shown from their attempts, without dependencies.</p>");
        }
        m.push_str(LEGEND);
        let end = run.finished_at.unwrap_or(p.now).max(run.created_at);
        let rows: Vec<TimelineRow> = p
            .tasks
            .iter()
            .map(|t| TimelineRow {
                task: t.name.clone(),
                segments: segments(run.created_at, &t.attempts, end),
            })
            .collect();
        let _ = write!(
            m,
            "<h2>Timeline</h2><div class=\"figure\">{}</div>",
            svg::timeline(&rows, run.created_at, end)
        );
        for t in &p.tasks {
            task_section(&mut m, t, p.now);
        }
    }
    Rendered {
        title: format!("Run {}", run.id),
        main: m,
        poll: (!run.phase.is_final()).then_some(3),
    }
}

const LEGEND: &str = "<ul class=\"legend\">\
    <li><span class=\"swatch state-waiting\"></span>waiting / queued</li>\
    <li><span class=\"swatch state-running\"></span>running</li>\
    <li><span class=\"swatch state-succeeded\"></span>succeeded</li>\
    <li><span class=\"swatch state-failed\"></span>failed</li>\
    <li><span class=\"swatch state-stopped\"></span>stopped</li>\
    <li><span class=\"swatch state-skipped\"></span>skipped</li></ul>";

fn task_section(m: &mut String, t: &TaskRow, now: i64) {
    let name = esc(&t.name);
    let state = t.state.as_str();
    let _ = write!(
        m,
        "<section class=\"task\" id=\"task-{name}\" data-task=\"{name}\" data-state=\"{state}\">\
         <h3>{name} <span class=\"badge state-{state}\">{state}</span></h3>"
    );
    if t.attempts.is_empty() {
        m.push_str("<p class=\"empty\">Not started.</p></section>");
        return;
    }
    m.push_str(
        "<table class=\"attempts\"><thead><tr><th>Attempt</th><th>State</th><th>Exit code</th>\
         <th>Started</th><th>Took</th><th>Reason</th></tr></thead><tbody>",
    );
    for a in &t.attempts {
        let took = match a.finished_at {
            Some(end) => duration_ms(end - a.started_at),
            None => format!("{} so far", duration_ms(now - a.started_at)),
        };
        let _ = write!(
            m,
            "<tr class=\"attempt\" data-attempt=\"{}\"><td>{}</td><td>{}</td><td class=\"exit\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            a.attempt,
            a.attempt,
            esc(&a.state),
            a.exit_code.map_or("—".to_string(), |c| c.to_string()),
            esc(&time_utc(a.started_at)),
            esc(&took),
            esc(a.reason.as_deref().unwrap_or("")),
        );
    }
    m.push_str("</tbody></table>");
    if t.log_tail.is_empty() {
        m.push_str("<p class=\"empty\">The log is empty.</p>");
    } else {
        let cut = if t.log_cut {
            "<span class=\"cut\">… earlier lines left out</span>\n"
        } else {
            ""
        };
        let lines = join(t.log_tail.iter().map(|l| esc(l)), "\n");
        let _ = write!(m, "<pre class=\"log\">{cut}{lines}</pre>");
    }
    m.push_str("</section>");
}

/// A pipeline: its triggers, its runs over time, its versions.
pub fn pipeline(p: &PipelinePage) -> Rendered {
    let row = &p.row;
    let mut m = String::new();
    let _ = write!(
        m,
        "<nav class=\"crumbs\"><a href=\"/\">pipelines</a> › {}</nav><h1>Pipeline <code>{}</code></h1><dl class=\"facts\">",
        esc(&row.name),
        esc(&row.name)
    );
    let (schedule, next) = schedule_cells(row);
    let version = row
        .version
        .as_ref()
        .map(version_text)
        .unwrap_or_else(|| "<span class=\"none\">no version yet</span>".into());
    let _ = write!(
        m,
        "<dt>repository</dt><dd>{}</dd><dt>dataset</dt><dd><code>{}</code></dd><dt>merge</dt><dd>{}</dd>\
         <dt>schedule</dt><dd>{schedule}</dd><dt>next run</dt><dd>{next}</dd><dt>triggers</dt><dd>{}</dd>\
         <dt>current version</dt><dd>{version}</dd>",
        esc(&p.repo),
        esc(&row.dataset),
        esc(&row.merge),
        triggers(row)
    );
    if let Some(prop) = &row.proposal {
        let _ = write!(m, "<dt>proposal</dt><dd>{}</dd>", proposal_text(prop));
    }
    m.push_str("</dl><h2>Runs over time</h2>");
    if p.runs.is_empty() {
        m.push_str("<p class=\"empty\">No run yet.</p>");
    } else {
        let points: Vec<ChartPoint> = p
            .runs
            .iter()
            .rev()
            .map(|r| ChartPoint {
                run_id: r.id.clone(),
                href: run_href(&p.repo, &r.id),
                phase: r.phase,
                duration_ms: r.finished_at.map(|f| f - r.created_at),
                size: r.size,
            })
            .collect();
        let _ = write!(
            m,
            "<div class=\"figure\">{}</div>",
            svg::run_charts(&points)
        );
        m.push_str(
            "<table class=\"runs\"><thead><tr><th>Run</th><th>State</th><th>Reason</th><th>Started</th>\
             <th>Took</th><th>Version</th><th>Commit</th></tr></thead><tbody>",
        );
        for r in &p.runs {
            let version = r
                .new_md5
                .as_ref()
                .map(|md5| {
                    version_text(&VersionView {
                        md5: md5.clone(),
                        size: r.size,
                        nfiles: r.nfiles,
                    })
                })
                .unwrap_or_default();
            let _ = write!(
                m,
                "<tr class=\"run\" data-run=\"{}\"><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{version}</td><td>{}</td></tr>",
                esc(&r.id),
                esc(&run_href(&p.repo, &r.id)),
                esc(&r.id),
                badge(r.phase),
                esc(&r.reason),
                esc(&time_utc(r.created_at)),
                esc(&run_duration(r, p.now)),
                r.commit.as_deref().map(|c| format!("<code>{}</code>", esc(short(c)))).unwrap_or_default(),
            );
        }
        m.push_str("</tbody></table>");
    }
    m.push_str("<h2>Versions</h2>");
    if p.versions.is_empty() {
        m.push_str(
            "<p class=\"empty\">The default branch holds no version of this dataset yet.</p>",
        );
    } else {
        m.push_str(
            "<table class=\"versions\"><thead><tr><th>Commit</th><th>When</th><th>Version</th><th>Run</th>\
             <th>Message</th></tr></thead><tbody>",
        );
        for v in &p.versions {
            let version = v
                .version
                .as_ref()
                .map(version_text)
                .unwrap_or_else(|| "<span class=\"none\">pointer removed</span>".into());
            let run = v
                .run_id
                .as_ref()
                .map(|id| {
                    format!(
                        "<a href=\"{}\">{}</a>",
                        esc(&run_href(&p.repo, id)),
                        esc(id)
                    )
                })
                .unwrap_or_default();
            let _ = write!(
                m,
                "<tr class=\"version\" data-commit=\"{}\"><td class=\"commit\">{}</td><td>{}</td><td>{version}</td><td>{run}</td><td>{}</td></tr>",
                esc(&v.commit),
                link_or_text(v.commit_url.as_deref(), short(&v.commit)),
                esc(&time_utc(v.time)),
                esc(&v.summary),
            );
        }
        m.push_str("</tbody></table>");
    }
    Rendered {
        title: format!("Pipeline {}", row.name),
        main: m,
        poll: Some(10),
    }
}

/// A run's dataset diff, the Markdown its pull request carries, shown as
/// text (escaped, never interpreted).
pub fn diff(repo: &str, run_id: &str, pipeline: &str, markdown: &str) -> Rendered {
    let marker = crate::diffview::marker(pipeline);
    let text: Vec<&str> = markdown
        .lines()
        .filter(|l| l.trim() != marker.trim())
        .collect();
    let main = format!(
        "<nav class=\"crumbs\"><a href=\"/\">pipelines</a> › <a href=\"{}\">{}</a> › <a href=\"{}\">run</a> › diff</nav>\
         <h1>Dataset diff of <code>{}</code></h1><pre class=\"diff-text\">{}</pre>",
        esc(&pipeline_href(repo, pipeline)),
        esc(pipeline),
        esc(&run_href(repo, run_id)),
        esc(run_id),
        esc(&text.join("\n")),
    );
    Rendered {
        title: format!("Diff of {run_id}"),
        main,
        poll: None,
    }
}

/// A page for what was asked for and does not exist.
pub fn not_found(what: &str) -> Rendered {
    Rendered {
        title: "Not found".into(),
        main: format!(
            "<h1>Not found</h1><p>{}</p><p><a href=\"/\">All pipelines</a></p>",
            esc(what)
        ),
        poll: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::attempt;
    use super::super::model::{RunBrief, ScheduleView, TaskState, VersionEntry};
    use super::*;

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
}
