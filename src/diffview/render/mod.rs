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

mod files;
mod run;
mod tables;

use std::time::Duration;

use files::files_section;
use run::run_section;
use tables::{table_block, tables_section};

use super::dir::{DirDiff, Total};
use super::markdown::{self as md, BODY_LIMIT, TITLE_LIMIT};
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
