//! What each page shows, as plain values: built from the service's read
//! model by `collect.rs`, turned into HTML by `render.rs`. Tests build these
//! by hand, so rendering is tested without a repository.
//!
//! The derivations that are more than copying (a task's state from its
//! attempts, the timeline's segments) are pure functions here.

use crate::store::{AttemptRecord, RunPhase, RunRecord};

/// `/`: every served repository and its pipelines.
#[derive(Debug, Clone, PartialEq)]
pub struct Overview {
    /// Unix milliseconds when the page was built.
    pub now: i64,
    pub repos: Vec<RepoOverview>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RepoOverview {
    /// `owner/name`, or the local checkout's path.
    pub name: String,
    /// The default branch and its tip, as of the service's last look.
    pub branch: Option<String>,
    pub tip: Option<String>,
    pub tip_url: Option<String>,
    /// Why the pipelines shown may not be the tip's (a broken
    /// pipelines.toml), or why none are shown.
    pub warning: Option<String>,
    pub pipelines: Vec<PipelineRow>,
}

/// One pipeline's line on `/` (and the head of its own page).
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineRow {
    pub name: String,
    pub dataset: String,
    pub merge: String,
    pub schedule: Option<ScheduleView>,
    /// `on_push` branches and paths, as written.
    pub push_branches: Vec<String>,
    pub push_paths: Vec<String>,
    pub last_run: Option<RunBrief>,
    /// The version the default branch's pointer names.
    pub version: Option<VersionView>,
    pub proposal: Option<Proposal>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleView {
    pub expr: String,
    pub timezone: String,
    /// Unix milliseconds of the next firing.
    pub next: Option<i64>,
    /// The same instant in the schedule's timezone, for reading.
    pub next_local: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunBrief {
    pub id: String,
    pub phase: RunPhase,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

impl From<&RunRecord> for RunBrief {
    fn from(r: &RunRecord) -> RunBrief {
        RunBrief {
            id: r.id.clone(),
            phase: r.phase,
            created_at: r.created_at,
            finished_at: r.finished_at,
        }
    }
}

/// A dataset version, as its `.dvc` pointer records it.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionView {
    pub md5: String,
    pub size: Option<u64>,
    pub nfiles: Option<u64>,
}

/// Where a proposed version waits for review.
#[derive(Debug, Clone, PartialEq)]
pub enum Proposal {
    /// A pull request (GitHub).
    Pull { number: u64, url: Option<String> },
    /// A `cairn/<pipeline>` branch not merged yet (a local repository).
    Branch { name: String },
}

/// A run's page.
// Not PartialEq: the store's records are not.
#[derive(Debug, Clone)]
pub struct RunPage {
    pub repo: String,
    pub now: i64,
    pub run: RunRecord,
    /// In the order of the pipeline's DAG (dependencies first).
    pub tasks: Vec<TaskRow>,
    /// `(need, task)` as indices into `tasks`.
    pub edges: Vec<(usize, usize)>,
    /// The run's source commit and the pointer commit it made.
    pub source_url: Option<String>,
    pub commit_url: Option<String>,
    pub proposal: Option<Proposal>,
    /// The run wrote a dataset diff (`/runs/{id}/diff`).
    pub has_diff: bool,
    /// The DAG is drawn from this pipelines.toml; `None` when no definition
    /// could be read and tasks come from the attempts alone.
    pub definition: Option<String>,
}

// Not PartialEq: the store's records are not.
#[derive(Debug, Clone)]
pub struct TaskRow {
    pub name: String,
    pub state: TaskState,
    pub attempts: Vec<AttemptRecord>,
    /// The last lines of the newest attempt's log.
    pub log_tail: Vec<String>,
    /// Lines before `log_tail` were left out.
    pub log_cut: bool,
}

/// A task's state within a run, as the DAG colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Not started; the run is still going.
    Waiting,
    Running,
    Succeeded,
    Failed,
    /// Stopped by a timeout or a cancellation.
    Stopped,
    /// Never started, and the run is over (a dependency failed).
    Skipped,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Waiting => "waiting",
            TaskState::Running => "running",
            TaskState::Succeeded => "succeeded",
            TaskState::Failed => "failed",
            TaskState::Stopped => "stopped",
            TaskState::Skipped => "skipped",
        }
    }

    /// The state a task's attempts (oldest first) put it in.
    pub fn of(attempts: &[AttemptRecord], run: RunPhase) -> TaskState {
        let Some(last) = attempts.iter().max_by_key(|a| a.attempt) else {
            return if run.is_final() {
                TaskState::Skipped
            } else {
                TaskState::Waiting
            };
        };
        match last.state.as_str() {
            "succeeded" => TaskState::Succeeded,
            "failed" => TaskState::Failed,
            "stopped" => TaskState::Stopped,
            // An attempt left "running" by a run that ended (a crash) did
            // not finish.
            _ if run.is_final() => TaskState::Stopped,
            _ => TaskState::Running,
        }
    }
}

/// A pipeline's page.
// Not PartialEq: the store's records are not.
#[derive(Debug, Clone)]
pub struct PipelinePage {
    pub repo: String,
    pub now: i64,
    pub row: PipelineRow,
    /// Newest first.
    pub runs: Vec<RunRecord>,
    /// Versions on the default branch, newest first.
    pub versions: Vec<VersionEntry>,
}

/// A commit of the default branch that changed the pipeline's pointer.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionEntry {
    pub commit: String,
    pub commit_url: Option<String>,
    /// The first line of the commit message.
    pub summary: String,
    /// Unix milliseconds (commit time).
    pub time: i64,
    /// `None` when the commit removed the pointer.
    pub version: Option<VersionView>,
    /// The run named by the commit's `Cairn-Run:` trailer.
    pub run_id: Option<String>,
}

/// One stretch of a task's life on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub kind: SegmentKind,
    /// Unix milliseconds.
    pub start: i64,
    pub end: i64,
    /// The attempt, for attempt segments.
    pub attempt: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// Waiting for dependencies, a free slot, or a retry's backoff.
    Queued,
    Running,
    Succeeded,
    Failed,
    Stopped,
}

impl SegmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentKind::Queued => "queued",
            SegmentKind::Running => "running",
            SegmentKind::Succeeded => "succeeded",
            SegmentKind::Failed => "failed",
            SegmentKind::Stopped => "stopped",
        }
    }
}

/// A task's timeline from the run's start: queued until its first attempt,
/// each attempt in the colour of how it ended, and the gaps between attempts
/// (backoff) queued again. `end` closes what is still open (now, or the
/// run's end).
pub fn segments(run_start: i64, attempts: &[AttemptRecord], end: i64) -> Vec<Segment> {
    let mut sorted: Vec<&AttemptRecord> = attempts.iter().collect();
    sorted.sort_by_key(|a| (a.attempt, a.started_at));
    let mut out = Vec::with_capacity(sorted.len() * 2);
    let mut cursor = run_start;
    for a in sorted {
        let start = a.started_at.max(cursor);
        if start > cursor {
            out.push(Segment {
                kind: SegmentKind::Queued,
                start: cursor,
                end: start,
                attempt: None,
            });
        }
        let finish = a.finished_at.unwrap_or(end).max(start);
        let kind = match a.state.as_str() {
            "succeeded" => SegmentKind::Succeeded,
            "failed" => SegmentKind::Failed,
            "stopped" => SegmentKind::Stopped,
            _ => SegmentKind::Running,
        };
        out.push(Segment {
            kind,
            start,
            end: finish,
            attempt: Some(a.attempt),
        });
        cursor = finish;
    }
    if out.is_empty() && end > run_start {
        out.push(Segment {
            kind: SegmentKind::Queued,
            start: run_start,
            end,
            attempt: None,
        });
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn attempt(
        task: &str,
        n: u32,
        state: &str,
        start: i64,
        end: Option<i64>,
    ) -> AttemptRecord {
        AttemptRecord {
            run_id: "r".into(),
            task: task.into(),
            attempt: n,
            state: state.into(),
            exit_code: match state {
                "succeeded" => Some(0),
                "failed" => Some(1),
                _ => None,
            },
            reason: None,
            started_at: start,
            finished_at: end,
            log_path: String::new(),
        }
    }

    #[test]
    fn a_task_state_follows_its_newest_attempt_and_the_run() {
        let failed_then_ok = [
            attempt("t", 1, "failed", 10, Some(20)),
            attempt("t", 2, "succeeded", 30, Some(40)),
        ];
        assert_eq!(
            TaskState::of(&failed_then_ok, RunPhase::Succeeded),
            TaskState::Succeeded
        );
        assert_eq!(TaskState::of(&[], RunPhase::Running), TaskState::Waiting);
        assert_eq!(TaskState::of(&[], RunPhase::Failed), TaskState::Skipped);
        let open = [attempt("t", 1, "running", 10, None)];
        assert_eq!(TaskState::of(&open, RunPhase::Running), TaskState::Running);
        assert_eq!(TaskState::of(&open, RunPhase::Failed), TaskState::Stopped);
    }

    #[test]
    fn the_timeline_shows_the_wait_each_attempt_and_the_backoff() {
        let attempts = [
            attempt("t", 2, "succeeded", 500, Some(900)),
            attempt("t", 1, "failed", 100, Some(300)),
        ];
        let s = segments(0, &attempts, 1000);
        let kinds: Vec<_> = s.iter().map(|s| (s.kind, s.start, s.end)).collect();
        assert_eq!(
            kinds,
            vec![
                (SegmentKind::Queued, 0, 100),
                (SegmentKind::Failed, 100, 300),
                (SegmentKind::Queued, 300, 500),
                (SegmentKind::Succeeded, 500, 900),
            ]
        );
        // A running attempt runs until now; a task not started is all queue.
        let s = segments(0, &[attempt("t", 1, "running", 200, None)], 700);
        assert_eq!(s[1].kind, SegmentKind::Running);
        assert_eq!(s[1].end, 700);
        assert_eq!(
            segments(0, &[], 50),
            vec![Segment {
                kind: SegmentKind::Queued,
                start: 0,
                end: 50,
                attempt: None
            }]
        );
    }
}
