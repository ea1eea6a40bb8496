//! The IO edge of the dashboard: reads the run store, the repository (the
//! checkout or the service's mirror) and log files into the view models of
//! `model.rs`. Blocking; the routes call it on a blocking thread.
//!
//! What the dashboard shows is what the service acts on: the pipelines.toml
//! at the default branch's tip, or the last good one when the tip's is
//! broken (with a warning saying so), and the dataset version the default
//! branch's pointer names.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::model::{
    Overview, PipelinePage, PipelineRow, Proposal, RepoOverview, RunBrief, RunPage, ScheduleView,
    TaskRow, TaskState, VersionEntry, VersionView,
};
use super::DashboardError;
use crate::config::{Config, Pipeline};
use crate::dvc::PointerFile;
use crate::forge::{bot_branch, GitRepo};
use crate::github::Secret;
use crate::reconciler::{RepoSource, DIFF_FILE};
use crate::service::Host;
use crate::store::{AttemptRecord, Store};

/// Runs shown on a pipeline's page (and in its charts).
pub const RUNS_SHOWN: usize = 40;
/// Versions listed on a pipeline's page.
pub const VERSIONS_SHOWN: usize = 25;
/// Commits of the default branch looked through for those versions.
const HISTORY_SCAN: usize = 5000;
/// Lines of each task's log on a run's page, and the most bytes read for them.
pub const LOG_LINES: usize = 40;
const LOG_BYTES: u64 = 32 * 1024;

/// A served repository, as the dashboard reads it.
#[derive(Clone)]
pub struct Served {
    pub host: Arc<dyn Host>,
    pub store: Arc<Store>,
}

impl Served {
    pub fn name(&self) -> &str {
        self.host.name()
    }
}

/// What the repository holds now, read once per page.
struct RepoState {
    repo: Option<GitRepo>,
    branch: Option<String>,
    tip: Option<String>,
    config: Option<Config>,
    warning: Option<String>,
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

fn load(served: &Served) -> RepoState {
    let mut state = RepoState {
        repo: None,
        branch: None,
        tip: None,
        config: None,
        warning: None,
    };
    let repo = match served.host.open() {
        Ok(repo) => repo,
        Err(e) => {
            // A GitHub repository before its first sync has no mirror yet.
            state.warning = Some(format!("the repository cannot be read yet: {e}"));
            return state;
        }
    };
    let position = served
        .store
        .positions()
        .ok()
        .and_then(|p| p.into_iter().next());
    state.branch = position
        .as_ref()
        .map(|(branch, _)| branch.clone())
        .or_else(|| repo.head().ok().and_then(|h| h.branch));
    state.tip = state
        .branch
        .as_deref()
        .and_then(|b| repo.branch_tip(b).ok().flatten());
    let Some(tip) = state.tip.clone() else {
        state.warning = Some("the default branch has no commits yet".into());
        state.repo = Some(repo);
        return state;
    };
    match RepoSource::load_config(&repo, &tip) {
        Ok(config) => state.config = Some(config),
        Err(e) => {
            let last_good = position
                .and_then(|(_, p)| p.config_commit)
                .filter(|c| *c != tip)
                .and_then(|c| RepoSource::load_config(&repo, &c).ok());
            let message = e.to_string();
            state.warning = Some(match &last_good {
                Some(_) => format!(
                    "pipelines.toml at the tip is broken ({}); the last good one is in force and shown",
                    first_line(&message)
                ),
                None => format!("no valid pipelines.toml: {}", first_line(&message)),
            });
            state.config = last_good;
        }
    }
    state.repo = Some(repo);
    state
}

fn pointer_at(repo: &GitRepo, commit: &str, pipeline: &Pipeline) -> Option<VersionView> {
    let path = pipeline.dataset.pointer_path();
    let bytes = repo.read_file(commit, &path).ok()??;
    let text = String::from_utf8(bytes).ok()?;
    let file = PointerFile::parse(&text, &path).ok()?;
    let out = file.outs.first()?;
    Some(VersionView {
        md5: out.id.to_string(),
        size: out.size,
        nfiles: out.nfiles,
    })
}

fn schedule_view(pipeline: &Pipeline, now: DateTime<Utc>) -> Option<ScheduleView> {
    let s = pipeline.schedule.as_ref()?;
    let next = s.next_after(now);
    Some(ScheduleView {
        expr: s.expr().to_string(),
        timezone: s.timezone().name().to_string(),
        next: next.map(|t| t.timestamp_millis()),
        next_local: next.map(|t| {
            t.with_timezone(&s.timezone())
                .format("%Y-%m-%d %H:%M %Z")
                .to_string()
        }),
    })
}

/// The pull request cairn keeps open for the pipeline or, with none (a
/// local repository), its `cairn/<pipeline>` branch when that proposes a
/// version the default branch does not have.
fn proposal(
    served: &Served,
    state: &RepoState,
    pipeline: &Pipeline,
    current: Option<&VersionView>,
) -> Option<Proposal> {
    let name = pipeline.name.as_str();
    if let Ok(Some(pull)) = served.store.open_pull(name) {
        return Some(Proposal::Pull {
            number: pull.number,
            url: served.host.pull_url(pull.number),
        });
    }
    let repo = state.repo.as_ref()?;
    let branch = bot_branch(name);
    let head = repo.branch_tip(&branch).ok()??;
    let proposed = pointer_at(repo, &head, pipeline)?;
    (Some(&proposed) != current).then_some(Proposal::Branch { name: branch })
}

fn pipeline_row(
    served: &Served,
    state: &RepoState,
    pipeline: &Pipeline,
    now: DateTime<Utc>,
) -> PipelineRow {
    let name = pipeline.name.as_str();
    let version = match (&state.repo, &state.tip) {
        (Some(repo), Some(tip)) => pointer_at(repo, tip, pipeline),
        _ => None,
    };
    let last_run = served
        .store
        .runs(Some(name), 1)
        .ok()
        .and_then(|r| r.first().map(RunBrief::from));
    let (push_branches, push_paths) = match &pipeline.on_push {
        Some(p) => (
            p.branches().into_iter().map(str::to_string).collect(),
            p.paths().into_iter().map(str::to_string).collect(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    PipelineRow {
        name: name.to_string(),
        dataset: pipeline.dataset.as_str().to_string(),
        merge: pipeline.merge.as_str().to_string(),
        schedule: schedule_view(pipeline, now),
        push_branches,
        push_paths,
        last_run,
        proposal: proposal(served, state, pipeline, version.as_ref()),
        version,
    }
}

/// `/`.
pub fn overview(served: &[Served], now: DateTime<Utc>) -> Overview {
    let repos = served
        .iter()
        .map(|s| {
            let state = load(s);
            let pipelines = state
                .config
                .as_ref()
                .map(|c| {
                    c.pipelines
                        .values()
                        .map(|p| pipeline_row(s, &state, p, now))
                        .collect()
                })
                .unwrap_or_default();
            RepoOverview {
                name: s.name().to_string(),
                tip_url: state.tip.as_deref().and_then(|t| s.host.commit_url(t)),
                branch: state.branch.clone(),
                tip: state.tip.clone(),
                warning: state.warning.clone(),
                pipelines,
            }
        })
        .collect();
    Overview {
        now: now.timestamp_millis(),
        repos,
    }
}

/// A pipeline's page; `None` when the repository neither defines it nor
/// has runs of it.
pub fn pipeline_page(
    served: &Served,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Option<PipelinePage>, DashboardError> {
    let state = load(served);
    let runs = served.store.runs(Some(name), RUNS_SHOWN)?;
    let pipeline = state.config.as_ref().and_then(|c| c.pipeline(name));
    let row = match pipeline {
        Some(p) => pipeline_row(served, &state, p, now),
        None if runs.is_empty() => return Ok(None),
        // Runs of a pipeline since removed from pipelines.toml: their
        // history is still worth showing.
        None => PipelineRow {
            name: name.to_string(),
            dataset: "(no longer in pipelines.toml)".into(),
            merge: "—".into(),
            schedule: None,
            push_branches: Vec::new(),
            push_paths: Vec::new(),
            last_run: runs.first().map(RunBrief::from),
            version: None,
            proposal: None,
        },
    };
    let versions = match (pipeline, &state.repo, &state.tip) {
        (Some(p), Some(repo), Some(tip)) => repo
            .file_history(tip, &p.dataset.pointer_path(), VERSIONS_SHOWN, HISTORY_SCAN)?
            .into_iter()
            .map(|c| VersionEntry {
                commit_url: served.host.commit_url(&c.id),
                summary: first_line(&c.message).to_string(),
                time: c.time.saturating_mul(1000),
                version: if c.removed {
                    None
                } else {
                    pointer_at(repo, &c.id, p)
                },
                run_id: super::model::run_trailer(&c.message),
                commit: c.id,
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(Some(PipelinePage {
        repo: served.name().to_string(),
        now: now.timestamp_millis(),
        row,
        runs,
        versions,
    }))
}

/// A run's page; `None` when this repository has no such run.
pub fn run_page(
    served: &Served,
    id: &str,
    now: DateTime<Utc>,
    redact: &[Secret],
) -> Result<Option<RunPage>, DashboardError> {
    let Some(run) = served.store.run(id)? else {
        return Ok(None);
    };
    let attempts = served.store.attempts(id)?;
    let repo = served.host.open().ok();
    // The DAG as the run's own commit defined it; else today's definition;
    // else only the tasks that have attempts, without edges.
    let definition = repo.as_ref().and_then(|repo| {
        let at_source = RepoSource::load_config(repo, &run.source_commit)
            .ok()
            .filter(|c| c.pipeline(&run.pipeline).is_some())
            .map(|c| (c, run.source_commit.clone()));
        at_source.or_else(|| {
            let state = load(served);
            let tip = state.tip?;
            state
                .config
                .filter(|c| c.pipeline(&run.pipeline).is_some())
                .map(|c| (c, tip))
        })
    });
    let mut names: Vec<String> = Vec::new();
    let mut needs: Vec<Vec<String>> = Vec::new();
    if let Some(p) = definition
        .as_ref()
        .and_then(|(c, _)| c.pipeline(&run.pipeline))
    {
        for task in p.tasks.iter() {
            names.push(task.name.as_str().to_string());
            needs.push(task.needs.iter().map(|n| n.as_str().to_string()).collect());
        }
    }
    for a in &attempts {
        if !names.contains(&a.task) {
            names.push(a.task.clone());
            needs.push(Vec::new());
        }
    }
    let mut edges = Vec::new();
    for (i, task_needs) in needs.iter().enumerate() {
        for need in task_needs {
            if let Some(j) = names.iter().position(|n| n == need) {
                edges.push((j, i));
            }
        }
    }
    let tasks = names
        .into_iter()
        .map(|name| {
            let mine: Vec<AttemptRecord> = attempts
                .iter()
                .filter(|a| a.task == name)
                .cloned()
                .collect();
            let (log_tail, log_cut) = mine
                .iter()
                .max_by_key(|a| a.attempt)
                .map(|a| log_tail(Path::new(&a.log_path), redact))
                .unwrap_or_default();
            TaskRow {
                state: TaskState::of(&mine, run.phase),
                name,
                attempts: mine,
                log_tail,
                log_cut,
            }
        })
        .collect();
    let proposal = served
        .store
        .open_pull(&run.pipeline)?
        .filter(|p| p.run_id == run.id)
        .map(|p| Proposal::Pull {
            number: p.number,
            url: served.host.pull_url(p.number),
        });
    let has_diff = run_dir(served, &run.id).join(DIFF_FILE).is_file();
    Ok(Some(RunPage {
        repo: served.name().to_string(),
        now: now.timestamp_millis(),
        source_url: served.host.commit_url(&run.source_commit),
        commit_url: run
            .commit
            .as_deref()
            .and_then(|c| served.host.commit_url(c)),
        proposal,
        has_diff,
        definition: definition.map(|(_, commit)| commit),
        tasks,
        edges,
        run,
    }))
}

/// A run's dataset diff: `(pipeline, markdown)`, when the run wrote one.
pub fn diff_text(served: &Served, id: &str) -> Result<Option<(String, String)>, DashboardError> {
    let Some(run) = served.store.run(id)? else {
        return Ok(None);
    };
    let path = run_dir(served, id).join(DIFF_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some((run.pipeline, text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DashboardError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

fn run_dir(served: &Served, id: &str) -> std::path::PathBuf {
    // Run ids are checked by the reconciler (no `/`, no `..`) before a
    // folder is made for them, and the id here comes from the store.
    served.host.state_dir().join("runs").join(id)
}

/// The last [`LOG_LINES`] lines of a log (reading at most its last
/// [`LOG_BYTES`]), with terminal colour codes removed and every secret
/// replaced by `***`; `true` when earlier lines were left out.
pub fn log_tail(path: &Path, redact: &[Secret]) -> (Vec<String>, bool) {
    let Ok(mut file) = std::fs::File::open(path) else {
        return (Vec::new(), false);
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(LOG_BYTES);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return (Vec::new(), false);
    }
    let mut bytes = Vec::new();
    if file.take(LOG_BYTES).read_to_end(&mut bytes).is_err() {
        return (Vec::new(), false);
    }
    tail_lines(&bytes, start > 0, redact)
}

/// The pure part of [`log_tail`]: `bytes` is the end of a log, `partial`
/// when it starts mid-file (its first line is then cut and dropped).
pub fn tail_lines(bytes: &[u8], partial: bool, redact: &[Secret]) -> (Vec<String>, bool) {
    let text = String::from_utf8_lossy(bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    let mut cut = false;
    if partial && !lines.is_empty() {
        lines.remove(0);
        cut = true;
    }
    if lines.len() > LOG_LINES {
        lines.drain(..lines.len() - LOG_LINES);
        cut = true;
    }
    let lines = lines
        .into_iter()
        .map(|l| {
            let mut l = strip_ansi(l);
            for secret in redact {
                let s = secret.expose();
                if !s.is_empty() && l.contains(s) {
                    l = l.replace(s, "***");
                }
            }
            l
        })
        .collect();
    (lines, cut)
}

/// Removes terminal escape sequences (`ESC [ ... letter`), which tools
/// print for colour and a page would show as noise.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        // A carriage return redraws the line (progress bars): keep the end.
        if c == '\r' {
            out.clear();
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_lines_and_hides_secrets() {
        let log: String = (1..=100).map(|i| format!("line {i}\n")).collect();
        let (lines, cut) = tail_lines(log.as_bytes(), false, &[]);
        assert!(cut);
        assert_eq!(lines.len(), LOG_LINES);
        assert_eq!(lines.last().unwrap(), "line 100");
        let (lines, cut) = tail_lines(b"half a line\nwhole\n", true, &[]);
        assert_eq!(lines, ["whole"]);
        assert!(cut);
        let secret = Secret::new("ghp_s3cr3t");
        let (lines, cut) = tail_lines(
            b"token=ghp_s3cr3t and ghp_s3cr3t\n\x1b[31mred\x1b[0m\n10%\r50%\r100%\n",
            false,
            &[secret],
        );
        assert!(!cut);
        assert_eq!(lines, ["token=*** and ***", "red", "100%"]);
    }

    #[test]
    fn a_missing_log_is_an_empty_tail() {
        assert_eq!(
            log_tail(Path::new("/nonexistent/cairn/log"), &[]),
            (Vec::new(), false)
        );
    }

    #[test]
    fn a_long_log_is_read_from_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.1.log");
        let log: String = (1..=20_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, log).unwrap();
        let (lines, cut) = log_tail(&path, &[]);
        assert!(cut);
        assert_eq!(lines.len(), LOG_LINES);
        assert_eq!(lines.last().unwrap(), "line 20000");
    }
}
