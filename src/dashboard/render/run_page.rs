//! A run's page: its DAG, timeline, attempts and logs, task by task.

use std::fmt::Write as _;

use super::{badge, diff_href, pipeline_href, proposal_text, run_duration, version_text, Rendered};
use crate::dashboard::html::{ago, duration_ms, esc, join, link_or_text, short, time_utc};
use crate::dashboard::model::{segments, RunPage, TaskRow, VersionView};
use crate::dashboard::svg::{self, DagNode, TimelineRow};

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
