//! The IO edge of the dashboard: reads the service's read model
//! ([`ReadModel`](crate::service::ReadModel): run store, config in force,
//! pointers) and log files into the view models of `model.rs`. Blocking;
//! the routes call it on a blocking thread.

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
use crate::dvc::Output;
use crate::github::Secret;
use crate::service::{ServedRepo, Snapshot};
use crate::store::AttemptRecord;

/// Runs shown on a pipeline's page (and in its charts).
pub const RUNS_SHOWN: usize = 40;
/// Versions listed on a pipeline's page.
pub const VERSIONS_SHOWN: usize = 25;
/// Lines of each task's log on a run's page, and the most bytes read for them.
pub const LOG_LINES: usize = 40;
const LOG_BYTES: u64 = 32 * 1024;

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

impl From<Output> for VersionView {
    fn from(out: Output) -> VersionView {
        VersionView {
            md5: out.id.to_string(),
            size: out.size,
            nfiles: out.nfiles,
        }
    }
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
    served: &ServedRepo,
    snapshot: &Snapshot,
    pipeline: &Pipeline,
    current: Option<&VersionView>,
) -> Option<Proposal> {
    let name = pipeline.name.as_str();
    if let Ok(Some(pull)) = served.store().open_pull(name) {
        return Some(Proposal::Pull {
            number: pull.number,
            url: served.pull_url(pull.number),
        });
    }
    let (branch, proposed) = snapshot.proposed(pipeline)?;
    (Some(&VersionView::from(proposed)) != current).then_some(Proposal::Branch { name: branch })
}

fn pipeline_row(
    served: &ServedRepo,
    snapshot: &Snapshot,
    pipeline: &Pipeline,
    now: DateTime<Utc>,
) -> PipelineRow {
    let name = pipeline.name.as_str();
    let version = snapshot.version(pipeline).map(VersionView::from);
    let last_run = served
        .store()
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
        proposal: proposal(served, snapshot, pipeline, version.as_ref()),
        version,
    }
}

/// `/`.
pub fn overview(served: &[ServedRepo], now: DateTime<Utc>) -> Overview {
    let repos = served
        .iter()
        .map(|s| {
            let snapshot = s.read();
            let pipelines = snapshot
                .config
                .as_ref()
                .map(|c| {
                    c.pipelines
                        .values()
                        .map(|p| pipeline_row(s, &snapshot, p, now))
                        .collect()
                })
                .unwrap_or_default();
            RepoOverview {
                name: s.name().to_string(),
                tip_url: snapshot.tip.as_deref().and_then(|t| s.commit_url(t)),
                branch: snapshot.branch.clone(),
                tip: snapshot.tip.clone(),
                warning: snapshot.warning.clone(),
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
    served: &ServedRepo,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Option<PipelinePage>, DashboardError> {
    let snapshot = served.read();
    let runs = served.store().runs(Some(name), RUNS_SHOWN)?;
    let pipeline = snapshot.config.as_ref().and_then(|c| c.pipeline(name));
    let row = match pipeline {
        Some(p) => pipeline_row(served, &snapshot, p, now),
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
    let versions = match pipeline {
        Some(p) => snapshot
            .history(p, VERSIONS_SHOWN)?
            .into_iter()
            .map(|c| VersionEntry {
                commit_url: served.commit_url(&c.commit),
                summary: first_line(&c.message).to_string(),
                time: c.time.saturating_mul(1000),
                version: c.version.map(VersionView::from),
                run_id: c.run_id,
                commit: c.commit,
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(Some(PipelinePage {
        repo: served.name().to_string(),
        now: now.timestamp_millis(),
        row,
        runs,
        versions,
    }))
}

/// The pipelines.toml a run's DAG is drawn from, and its commit: the run's
/// own commit's; else today's; else none (tasks then come from the
/// attempts alone, without edges).
fn definition(served: &ServedRepo, pipeline: &str, source: &str) -> Option<(Arc<Config>, String)> {
    let defines = |c: &Arc<Config>| c.pipeline(pipeline).is_some();
    let at_source = served
        .config_at(source)
        .filter(defines)
        .map(|c| (c, source.to_string()));
    at_source.or_else(|| {
        let snapshot = served.read();
        let tip = snapshot.tip?;
        snapshot.config.filter(defines).map(|c| (c, tip))
    })
}

/// A run's page; `None` when this repository has no such run.
pub fn run_page(
    served: &ServedRepo,
    id: &str,
    now: DateTime<Utc>,
    redact: &[Secret],
) -> Result<Option<RunPage>, DashboardError> {
    let Some(run) = served.store().run(id)? else {
        return Ok(None);
    };
    let attempts = served.store().attempts(id)?;
    let definition = definition(served, &run.pipeline, &run.source_commit);
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
        .store()
        .open_pull(&run.pipeline)?
        .filter(|p| p.run_id == run.id)
        .map(|p| Proposal::Pull {
            number: p.number,
            url: served.pull_url(p.number),
        });
    Ok(Some(RunPage {
        repo: served.name().to_string(),
        now: now.timestamp_millis(),
        source_url: served.commit_url(&run.source_commit),
        commit_url: run.commit.as_deref().and_then(|c| served.commit_url(c)),
        proposal,
        has_diff: served.has_diff(&run.id),
        definition: definition.map(|(_, commit)| commit),
        tasks,
        edges,
        run,
    }))
}

/// A run's dataset diff: `(pipeline, markdown)`, when the run wrote one.
pub fn diff_text(
    served: &ServedRepo,
    id: &str,
) -> Result<Option<(String, String)>, DashboardError> {
    let Some(run) = served.store().run(id)? else {
        return Ok(None);
    };
    Ok(served.diff(id)?.map(|text| (run.pipeline, text)))
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
