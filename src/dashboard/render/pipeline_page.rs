//! A pipeline's page: its runs charted and listed, and its dataset versions.

use std::fmt::Write as _;

use super::{
    badge, proposal_text, run_duration, run_href, schedule_cells, triggers, version_text, Rendered,
};
use crate::dashboard::html::{esc, link_or_text, short, time_utc};
use crate::dashboard::model::{PipelinePage, VersionView};
use crate::dashboard::svg::{self, ChartPoint};

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
