//! The overview page: every repository's pipelines, their triggers and
//! their last run, at a glance.

use std::fmt::Write as _;

use super::{
    badge, pipeline_href, proposal_text, run_href, schedule_cells, triggers, version_text, Rendered,
};
use crate::dashboard::html::{ago, esc, link_or_text, short, time_utc};
use crate::dashboard::model::{Overview, PipelineRow, RepoOverview};

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
