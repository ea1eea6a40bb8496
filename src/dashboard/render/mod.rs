//! Pages as HTML: view models in, text out. Pure, so every page is tested
//! without a server or a repository.
//!
//! Each page is a [`Rendered`]: a title and the contents of `<main>`. The
//! routes send either the whole document ([`document`]) or only the
//! contents of `<main>` (the fragment the page's script polls for), so the
//! two can never disagree.

mod overview_page;
mod pipeline_page;
mod run_page;

use super::html::{bytes, duration_ms, esc, join, link_or_text, time_utc, url_param};
use super::model::{PipelineRow, Proposal, VersionView};
use crate::store::{RunPhase, RunRecord};

pub use overview_page::overview;
pub use pipeline_page::pipeline;
pub use run_page::run;

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

#[cfg(test)]
mod tests;
