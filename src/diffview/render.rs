//! The pull request's title and Markdown body.
//!
//! The body reads top-down from "what changed" to "how it was made":
//! the hidden [`marker`](super::marker), a one-line headline with the counts a
//! reviewer needs, a before/after table, the file lists, the table (CSV/TSV)
//! comparisons, the run, and the full hashes folded in a `<details>` block.
//!
//! Every string that comes from data (paths, column names, cells, task names,
//! trigger reasons) is escaped: Markdown and HTML are shown literally, `@names`
//! notify nobody, bidirectional controls are replaced. The body always stays
//! under [`RenderLimits::body_limit`] (GitHub's 65,536 characters by default):
//! each section gets a share of the room, lists stop early with "and K more",
//! and whatever was left out says so.

use std::time::Duration;

use super::dir::{DirDiff, Total};
use super::markdown::{self as md, BODY_LIMIT, TITLE_LIMIT};
use super::table::{NameList, RowMatch, TableDiff, TableReport, TableResult, CELL_CHARS};
use super::table::{MAX_HEADER_COLUMNS, SAMPLE_COLUMNS};
use super::{DatasetDiff, Version};

/// Everything the pull request shows.
#[derive(Debug, Clone, PartialEq)]
pub struct PullRequestView {
    /// The pipeline's name.
    pub pipeline: String,
    /// The dataset path, as in `pipelines.toml` (e.g. `data/attrition.csv`).
    pub dataset: String,
    /// What changed.
    pub diff: DatasetDiff,
    /// The run that produced the new version.
    pub run: RunView,
}

/// The run that produced a version.
#[derive(Debug, Clone, PartialEq)]
pub struct RunView {
    /// The run id.
    pub id: String,
    /// Why the run started, for humans (e.g. "schedule 0 6 * * *").
    pub trigger: String,
    /// The commit the run's pipeline and scripts came from.
    pub source: SourceCommit,
    /// The tasks in plan order ([`TaskState::Skipped`] indexes into this list).
    pub tasks: Vec<TaskView>,
    /// A page about the run, if there is one.
    pub url: Option<String>,
}

impl RunView {
    /// A run with no tasks listed and no link.
    pub fn new(id: impl Into<String>, trigger: impl Into<String>, source: SourceCommit) -> RunView {
        RunView {
            id: id.into(),
            trigger: trigger.into(),
            source,
            tasks: Vec::new(),
            url: None,
        }
    }
}

/// A commit, and optionally a link to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCommit {
    /// The full commit id.
    pub sha: String,
    /// A page showing the commit.
    pub url: Option<String>,
}

impl SourceCommit {
    /// A commit without a link.
    pub fn new(sha: impl Into<String>) -> SourceCommit {
        SourceCommit {
            sha: sha.into(),
            url: None,
        }
    }
}

/// How a task of the run ended, as the pull request shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    /// Not started.
    Waiting,
    Running {
        attempt: u32,
    },
    Succeeded {
        attempt: u32,
    },
    /// Failed for good after `attempt` attempts.
    Failed {
        attempt: u32,
        reason: String,
    },
    /// Never started because the task at this index did not succeed.
    Skipped {
        because: usize,
    },
    Cancelled,
}

/// One task of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    /// The task's name.
    pub name: String,
    /// How it ended.
    pub state: TaskState,
    /// How long it ran (all attempts), when known.
    pub duration: Option<Duration>,
}

/// How much the body lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderLimits {
    /// Files listed per category (added, removed, changed) before "and K more".
    pub files_per_category: usize,
    /// Tasks listed before "and K more".
    pub tasks: usize,
    /// The body stays strictly shorter than this many bytes (so characters too).
    pub body_limit: usize,
}

impl Default for RenderLimits {
    fn default() -> Self {
        RenderLimits {
            files_per_category: 25,
            tasks: 30,
            body_limit: BODY_LIMIT,
        }
    }
}

/// A pull request's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestText {
    /// At most 255 characters, one line.
    pub title: String,
    /// GitHub Markdown, starting with the [`marker`](super::marker) line.
    pub body: String,
}

/// Room kept free below the limit for the joins between sections.
const SLACK: usize = 64;
/// Most of the body the run section may take.
const RUN_ROOM: usize = 12_000;
/// Room kept per "not listed" line in lists.
const NOTE_ROOM: usize = 240;
/// Column names listed inline (columns added, removed, of a first version).
const INLINE_NAMES: usize = 10;
const SIZE_NOTE: &str = "to keep this description under GitHub's size limit";

/// The title and body with the default [`RenderLimits`].
pub fn pull_request(view: &PullRequestView) -> PullRequestText {
    pull_request_with(view, &RenderLimits::default())
}

/// The title and body.
pub fn pull_request_with(view: &PullRequestView, limits: &RenderLimits) -> PullRequestText {
    let d = &view.diff;
    let limit = limits.body_limit.saturating_sub(1 + SLACK);

    let head = head(view);
    let details = details(view);
    let footer = "<sub>Opened by cairn. The new version's data is already on the DVC remote; \
                  merging this pull request updates its `.dvc` pointer.</sub>\n"
        .to_string();
    let mut room = limit.saturating_sub(head.len() + details.len() + footer.len());

    let run = run_section(&view.run, limits.tasks, room.min(RUN_ROOM));
    room = room.saturating_sub(run.len());

    let single = d.files.is_none() && d.tables.len() == 1;
    let blocks: Vec<(String, String)> = d
        .tables
        .iter()
        .map(|t| (table_block(t, single, false), table_block(t, single, true)))
        .collect();
    let tables_need: usize = blocks.iter().map(|(full, _)| full.len()).sum::<usize>() + NOTE_ROOM;
    let files = match &d.files {
        Some(files) => {
            let share = room.saturating_sub(tables_need.min(room / 2));
            files_section(files, d.old.is_none(), limits.files_per_category, share)
        }
        None => String::new(),
    };
    room = room.saturating_sub(files.len());
    let tables = tables_section(d, &blocks, single, room);

    let mut body = String::with_capacity(limit.min(1 << 16));
    for section in [head, files, tables, run, details, footer] {
        if section.is_empty() {
            continue;
        }
        if !body.is_empty() {
            body.push('\n');
        }
        body.push_str(&section);
    }
    if body.len() > limit {
        // Only reachable with absurd inputs (a huge pipeline name); never split
        // a character, and say what happened.
        let note = "\n\n*This description was cut to stay under GitHub's size limit.*\n";
        let keep = md::cut_bytes(&body, limit.saturating_sub(note.len())).len();
        body.truncate(keep);
        body.push_str(note);
    }
    PullRequestText {
        title: title(&view.pipeline, &view.dataset, d.old.is_none()),
        body,
    }
}

/// `cairn: update DATASET (PIPELINE)`, or `cairn: add ...` for a first version;
/// one line, under [`TITLE_LIMIT`] characters (a long path is cut in the middle).
pub fn title(pipeline: &str, dataset: &str, first: bool) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_control() || md::is_suspicious(c) {
                    ' '
                } else {
                    c
                }
            })
            .collect()
    };
    let pipeline = md::truncate(&clean(pipeline), 64);
    let verb = if first { "add" } else { "update" };
    let fixed = format!("cairn: {verb}  ({pipeline})").chars().count();
    let dataset = md::truncate_middle(&clean(dataset), TITLE_LIMIT - 1 - fixed);
    format!("cairn: {verb} {dataset} ({pipeline})")
}

fn short_md5(v: &Version) -> String {
    format!("`{}`", &v.id.md5.to_hex()[..8])
}

fn size_or_unknown(size: Option<u64>) -> String {
    size.map_or_else(|| "unknown".to_string(), md::size_exact)
}

/// The marker, the headline and the before/after table.
fn head(view: &PullRequestView) -> String {
    let d = &view.diff;
    let who = format!("**{}**", md::text(&md::truncate(&view.pipeline, 100)));
    let what = md::code(&md::truncate_middle(&view.dataset, 200), false);
    let sizes = match (d.old.as_ref().and_then(|o| o.size), d.new.size) {
        (Some(o), Some(n)) if o != n => Some(format!(
            "{} → {} ({})",
            md::size(o),
            md::size(n),
            md::size_delta(o, n)
        )),
        (Some(_), Some(n)) => Some(format!("{}, same size", md::size(n))),
        (None, Some(n)) => Some(md::size(n)),
        _ => None,
    };
    let headline = match &d.old {
        Some(_) if d.is_unchanged() => format!("{who} produced {what} again, unchanged."),
        Some(_) => {
            let mut facts = Vec::new();
            if let Some(files) = &d.files {
                facts.push(file_counts(files));
            }
            facts.extend(sizes);
            format!(
                "{who} produced a new version of {what}: {}.",
                facts.join("; ")
            )
        }
        None => {
            let mut facts = Vec::new();
            if let Some(files) = &d.files {
                facts.push(md::count(files.added.len() as u64, "file", "files"));
            }
            facts.extend(sizes);
            if facts.is_empty() {
                format!("{who} produced the first version of {what}.")
            } else {
                format!(
                    "{who} produced the first version of {what}: {}.",
                    facts.join(", ")
                )
            }
        }
    };

    let mut s = super::marker(&view.pipeline);
    s.push('\n');
    s.push_str(&headline);
    s.push_str("\n\n");
    if let Some(old) = &d.old {
        if old.id.dir != d.new.id.dir {
            s.push_str(if d.new.id.dir {
                "The dataset was a single file; it is now a directory.\n\n"
            } else {
                "The dataset was a directory; it is now a single file.\n\n"
            });
        }
    }
    let old = d.old.as_ref();
    let before = |f: &dyn Fn(&Version) -> String| old.map_or_else(|| "—".to_string(), f);
    s.push_str("|  | before | after |\n| --- | --- | --- |\n");
    s.push_str(&format!(
        "| md5 | {} | {} |\n",
        before(&short_md5),
        short_md5(&d.new)
    ));
    s.push_str(&format!(
        "| size | {} | {} |\n",
        before(&|v| size_or_unknown(v.size)),
        size_or_unknown(d.new.size)
    ));
    if d.new.nfiles.is_some() || old.is_some_and(|o| o.nfiles.is_some()) {
        let files = |v: &Version| match (v.id.dir, v.nfiles) {
            (true, Some(n)) => md::thousands(n),
            (true, None) => "unknown".to_string(),
            (false, _) => "1 (single file)".to_string(),
        };
        s.push_str(&format!(
            "| files | {} | {} |\n",
            before(&files),
            files(&d.new)
        ));
    }
    if !d.new.id.dir && old.is_some_and(|o| !o.id.dir && o.isexec != d.new.isexec) {
        let yes_no = |v: &Version| if v.isexec { "yes" } else { "no" }.to_string();
        s.push_str(&format!(
            "| executable | {} | {} |\n",
            before(&yes_no),
            yes_no(&d.new)
        ));
    }
    s
}

/// `2 files added, 1 removed, 3 changed`.
fn file_counts(f: &DirDiff) -> String {
    let parts: Vec<(usize, &str)> = [
        (f.added.len(), "added"),
        (f.removed.len(), "removed"),
        (f.changed.len(), "changed"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .collect();
    if parts.is_empty() {
        return "no file added, removed or changed".to_string();
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, (n, verb))| {
            if i == 0 {
                format!("{} {verb}", md::count(*n as u64, "file", "files"))
            } else {
                format!("{} {verb}", md::thousands(*n as u64))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn path(p: &str) -> String {
    md::code(&md::truncate_middle(p, 200), false)
}

fn total_text(t: Total) -> String {
    let files = md::count(t.files, "file", "files");
    match t.exact_bytes() {
        Some(b) => format!("{files}, {}", md::size(b)),
        None => files,
    }
}

fn files_section(f: &DirDiff, first: bool, per_category: usize, budget: usize) -> String {
    let mut out = String::from("### Files\n");
    if f.is_empty() {
        out.push_str(if first {
            "\nThe directory is empty.\n"
        } else {
            "\nNo file was added, removed or changed.\n"
        });
        return out;
    }
    type Item<'a> = Box<dyn Fn(usize) -> String + 'a>;
    let sized = |p: &str, size: Option<u64>| match size {
        Some(s) => format!("- {} ({})\n", path(p), md::size(s)),
        None => format!("- {}\n", path(p)),
    };
    let categories: [(&str, usize, Total, Item); 3] = [
        (
            "Added",
            f.added.len(),
            f.added_total(),
            Box::new(|i| sized(&f.added[i].path, f.added[i].size)),
        ),
        (
            "Removed",
            f.removed.len(),
            f.removed_total(),
            Box::new(|i| sized(&f.removed[i].path, f.removed[i].size)),
        ),
        (
            "Changed",
            f.changed.len(),
            Total {
                files: f.changed.len() as u64,
                bytes: 0,
                unknown_sizes: 1,
            },
            Box::new(|i| {
                let c = &f.changed[i];
                let sizes = match (c.old_size, c.new_size) {
                    (Some(o), Some(n)) if o == n => format!(" ({}, same size)", md::size(n)),
                    (Some(o), Some(n)) => format!(" ({} → {})", md::size(o), md::size(n)),
                    (None, Some(n)) => format!(" (now {})", md::size(n)),
                    (Some(o), None) => format!(" (was {})", md::size(o)),
                    (None, None) => String::new(),
                };
                format!("- {}{sizes}\n", path(&c.path))
            }),
        ),
    ];
    let reserve = 3 * NOTE_ROOM;
    let mut full = false;
    for (label, n, total, item) in categories {
        if n == 0 {
            continue;
        }
        let label = if first && label == "Added" {
            "Files"
        } else {
            label
        };
        let heading = format!("\n**{label}** ({})\n\n", total_text(total));
        if full || out.len() + heading.len() + reserve > budget {
            full = true;
            out.push_str(&format!(
                "\n**{label}** ({}): not listed, {SIZE_NOTE}.\n",
                total_text(total)
            ));
            continue;
        }
        out.push_str(&heading);
        let mut shown = 0;
        for i in 0..n.min(per_category) {
            let line = item(i);
            if out.len() + line.len() + reserve > budget {
                full = true;
                break;
            }
            out.push_str(&line);
            shown += 1;
        }
        if shown < n {
            let more = md::thousands((n - shown) as u64);
            if full {
                out.push_str(&format!("- … and {more} more, not listed {SIZE_NOTE}\n"));
            } else {
                out.push_str(&format!("- … and {more} more\n"));
            }
        }
    }
    if f.unchanged > 0 {
        out.push_str(&format!(
            "\n{} unchanged.\n",
            md::count(f.unchanged, "other file", "other files")
        ));
    }
    out
}

fn tables_section(
    d: &DatasetDiff,
    blocks: &[(String, String)],
    single: bool,
    budget: usize,
) -> String {
    if blocks.is_empty() && d.tables_not_compared == 0 {
        return String::new();
    }
    let mut out = String::from(if single {
        "### Table\n"
    } else {
        "### Tables\n"
    });
    let mut shrunk = false;
    let mut omitted = 0u64;
    for (full, short) in blocks {
        if !shrunk && out.len() + full.len() + NOTE_ROOM <= budget {
            out.push_str(full);
            continue;
        }
        shrunk = true;
        if omitted == 0 && out.len() + short.len() + NOTE_ROOM <= budget {
            out.push_str(short);
        } else {
            omitted += 1;
        }
    }
    if shrunk {
        out.push_str(&format!(
            "\nSome rows and tables are not shown, {SIZE_NOTE}"
        ));
        if omitted > 0 {
            out.push_str(&format!(
                " ({} left out)",
                md::count(omitted, "table", "tables")
            ));
        }
        out.push_str(".\n");
    }
    if d.tables_not_compared > 0 {
        out.push_str(&format!(
            "\n{} not compared: only the first {} are.\n",
            md::count(
                d.tables_not_compared,
                "more changed table was",
                "more changed tables were"
            ),
            md::thousands(blocks.len() as u64),
        ));
    }
    out
}

/// One table's comparison; `short` leaves out the sample rows.
fn table_block(t: &TableReport, single: bool, short: bool) -> String {
    let mut out = String::new();
    if !single {
        out.push_str(&format!("\n#### {}\n", path(&t.path)));
    }
    let d = match &t.result {
        TableResult::Skipped(reason) => {
            out.push_str(&format!(
                "\nNot compared: {}.\n",
                md::text(&md::truncate(reason, 300))
            ));
            return out;
        }
        TableResult::Diff(d) => d,
    };
    out.push('\n');
    out.push_str(&rows_line(d));
    if d.old_rows.is_none() {
        out.push_str(&format!(
            "- **Columns ({}):** {}\n",
            md::thousands(d.columns.total as u64),
            names(&d.columns)
        ));
    }
    if !d.columns_added.names.is_empty() {
        out.push_str(&format!(
            "- **Columns added ({}):** {}\n",
            md::thousands(d.columns_added.total as u64),
            names(&d.columns_added)
        ));
    }
    if !d.columns_removed.names.is_empty() {
        out.push_str(&format!(
            "- **Columns removed ({}):** {}\n",
            md::thousands(d.columns_removed.total as u64),
            names(&d.columns_removed)
        ));
    }
    let compared = d.old_rows.is_some_and(|n| n > 0) && d.new_rows > 0;
    if d.header_too_wide && d.old_rows.is_some() {
        out.push_str(&format!(
            "- Over {} columns: columns are not compared by name, rows are compared by position.\n",
            md::thousands(MAX_HEADER_COLUMNS as u64)
        ));
    } else if compared {
        match d.matched {
            RowMatch::SameColumns => {}
            RowMatch::SharedColumns(n) => out.push_str(&format!(
                "- Rows are compared on the {} both versions share.\n",
                md::count(n as u64, "column", "columns")
            )),
            RowMatch::ByPosition => {
                out.push_str("- The headers share no column name: rows are compared by position.\n")
            }
        }
    }
    if !short {
        out.push_str(&sample(d));
    }
    out
}

fn rows_line(d: &TableDiff) -> String {
    let new = md::thousands(d.new_rows);
    let Some(old_rows) = d.old_rows else {
        return format!("- **Rows:** {new}\n");
    };
    let old = md::thousands(old_rows);
    if let Some(limit) = d.old_rows_over_limit {
        return format!(
            "- **Rows:** {old} → {new} (not compared row by row: the previous version has over {})\n",
            md::count(limit, "row", "rows")
        );
    }
    match (d.rows_added, d.rows_removed) {
        (Some(0), Some(0)) => {
            format!(
                "- **Rows:** {old} → {new}, none added or removed (order or formatting changed)\n"
            )
        }
        (Some(a), Some(r)) => format!(
            "- **Rows:** {old} → {new}: {} added, {} removed\n",
            md::thousands(a),
            md::thousands(r)
        ),
        _ => format!("- **Rows:** {old} → {new}\n"),
    }
}

/// `` `a`, `b` and 3 more ``.
fn names(l: &NameList) -> String {
    if l.total == 0 {
        return "none".to_string();
    }
    let shown: Vec<String> = l
        .names
        .iter()
        .take(INLINE_NAMES)
        .map(|n| md::code(&md::truncate(n, CELL_CHARS + 1), false))
        .collect();
    let mut s = shown.join(", ");
    if l.total > shown.len() {
        s.push_str(&format!(
            " and {} more",
            md::thousands((l.total - shown.len()) as u64)
        ));
    }
    s
}

/// The caption and Markdown table of the sample rows.
fn sample(d: &TableDiff) -> String {
    let n = d.sample.len();
    let widest = d.sample.iter().map(Vec::len).max().unwrap_or(0);
    let ncols = d.columns.names.len().max(widest).min(SAMPLE_COLUMNS);
    if n == 0 || ncols == 0 {
        return String::new();
    }
    let caption = match (d.old_rows, d.rows_added) {
        (None, _) if n as u64 == d.new_rows => {
            if n == 1 {
                "The only row:".to_string()
            } else {
                format!("All {n} rows:")
            }
        }
        (None, _) => format!("First {n} rows:"),
        (Some(_), Some(a)) if a == n as u64 => {
            if n == 1 {
                "The added row:".to_string()
            } else {
                format!("The {n} added rows:")
            }
        }
        (Some(_), Some(a)) => format!("First {n} of {} added rows:", md::thousands(a)),
        (Some(_), None) => format!("First {n} added rows:"),
    };
    let hidden = d.columns.total.saturating_sub(ncols);
    let cell = |s: &str| md::cell(&md::truncate(s, CELL_CHARS + 1));
    let mut out = format!("\n{caption}\n\n|");
    for i in 0..ncols {
        let name = d.columns.names.get(i).map_or("", String::as_str);
        out.push_str(&format!(" {} |", cell(name)));
    }
    if hidden > 0 {
        out.push_str(&format!(" … {} more |", md::thousands(hidden as u64)));
    }
    out.push_str("\n|");
    for _ in 0..ncols + usize::from(hidden > 0) {
        out.push_str(" --- |");
    }
    out.push('\n');
    for row in &d.sample {
        out.push('|');
        for i in 0..ncols {
            out.push_str(&format!(
                " {} |",
                cell(row.get(i).map_or("", String::as_str))
            ));
        }
        if hidden > 0 {
            out.push_str(" … |");
        }
        out.push('\n');
    }
    out
}

fn short_sha(sha: &str) -> String {
    if sha.len() >= 7 && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        format!("`{}`", &sha[..7])
    } else {
        md::code(&md::truncate(sha, 64), false)
    }
}

fn run_section(run: &RunView, max_tasks: usize, budget: usize) -> String {
    let mut out = String::from("### Run\n\n");
    let id = md::code(&md::truncate(&run.id, 100), false);
    out.push_str(&format!(
        "- **Run:** {}\n",
        match &run.url {
            Some(url) => format!("{id} ({})", md::link("run page", Some(url))),
            None => id,
        }
    ));
    out.push_str(&format!(
        "- **Triggered by:** {}\n",
        md::text(&md::truncate(&run.trigger, 200))
    ));
    out.push_str(&format!(
        "- **Source commit:** {}\n",
        md::link(&short_sha(&run.source.sha), run.source.url.as_deref())
    ));
    if run.tasks.is_empty() {
        return out;
    }
    out.push_str("\n| task | result | duration |\n| --- | --- | --- |\n");
    let mut shown = 0;
    for t in run.tasks.iter().take(max_tasks) {
        let row = format!(
            "| {} | {} | {} |\n",
            md::code(&md::truncate(&t.name, 80), true),
            state_text(&t.state, &run.tasks),
            t.duration.map_or_else(|| "—".to_string(), md::duration)
        );
        if out.len() + row.len() + NOTE_ROOM > budget {
            break;
        }
        out.push_str(&row);
        shown += 1;
    }
    if shown < run.tasks.len() {
        let more = (run.tasks.len() - shown) as u64;
        let noun = if more == 1 { "task" } else { "tasks" };
        out.push_str(&format!("\n… and {} more {noun}.\n", md::thousands(more)));
    }
    out
}

fn state_text(state: &TaskState, tasks: &[TaskView]) -> String {
    match state {
        TaskState::Waiting => "not started".to_string(),
        TaskState::Running { .. } => "running".to_string(),
        TaskState::Succeeded { attempt } if *attempt <= 1 => "succeeded".to_string(),
        TaskState::Succeeded { attempt } => format!("succeeded on attempt {attempt}"),
        TaskState::Failed { attempt, reason } => format!(
            "failed after {}: {}",
            md::count(u64::from(*attempt), "attempt", "attempts"),
            md::cell(&md::truncate(reason, 120))
        ),
        TaskState::Skipped { because } => match tasks.get(*because) {
            Some(t) => format!(
                "skipped: {} did not succeed",
                md::code(&md::truncate(&t.name, 80), true)
            ),
            None => "skipped".to_string(),
        },
        TaskState::Cancelled => "cancelled".to_string(),
    }
}

/// The full hashes, folded.
fn details(view: &PullRequestView) -> String {
    let d = &view.diff;
    let sha: String = view
        .run
        .source
        .sha
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(64)
        .collect();
    let mut lines = Vec::new();
    if let Some(old) = &d.old {
        lines.push(format!("before  {}", old.id));
    }
    lines.push(format!("after   {}", d.new.id));
    if !sha.is_empty() {
        lines.push(format!("source  {sha}"));
    }
    format!(
        "<details>\n<summary>Full hashes</summary>\n\n```text\n{}\n```\n\n</details>\n",
        lines.join("\n")
    )
}
