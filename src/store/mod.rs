//! Run history: which runs happened, what each task attempt did, and how the
//! run ended. SQLite on one machine (`.cairn/cairn.db`).
//!
//! The run id doubles as the idempotency key: creating a run that already
//! exists is a no-op that reports `false`, so a duplicate trigger cannot start
//! a second run.

use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

mod service;

pub use service::{Intent, OpenPull, Reconciled};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("run store {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("run store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("run store: unknown run state {0:?}")]
    BadState(String),
}

/// Where a run is. The order is the order of a run's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunPhase {
    Queued,
    Fetching,
    Running,
    Publishing,
    Committing,
    /// A new dataset version was committed.
    Succeeded,
    /// The run finished and the data had not changed: nothing to commit.
    Unchanged,
    Failed,
    Cancelled,
}

impl RunPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            RunPhase::Queued => "queued",
            RunPhase::Fetching => "fetching",
            RunPhase::Running => "running",
            RunPhase::Publishing => "publishing",
            RunPhase::Committing => "committing",
            RunPhase::Succeeded => "succeeded",
            RunPhase::Unchanged => "unchanged",
            RunPhase::Failed => "failed",
            RunPhase::Cancelled => "cancelled",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunPhase::Succeeded | RunPhase::Unchanged | RunPhase::Failed | RunPhase::Cancelled
        )
    }

    fn parse(text: &str) -> Result<RunPhase, StoreError> {
        Ok(match text {
            "queued" => RunPhase::Queued,
            "fetching" => RunPhase::Fetching,
            "running" => RunPhase::Running,
            "publishing" => RunPhase::Publishing,
            "committing" => RunPhase::Committing,
            "succeeded" => RunPhase::Succeeded,
            "unchanged" => RunPhase::Unchanged,
            "failed" => RunPhase::Failed,
            "cancelled" => RunPhase::Cancelled,
            other => return Err(StoreError::BadState(other.to_string())),
        })
    }
}

impl std::fmt::Display for RunPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // pad, not write_str, so tables can align it with `{:<10}`
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct NewRun {
    pub id: String,
    pub pipeline: String,
    /// What started it: `cli`, `push`, `schedule`, `comment`...
    pub reason: String,
    pub source_commit: String,
}

/// How a run ended, written once.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    pub error: Option<String>,
    pub old_md5: Option<String>,
    pub new_md5: Option<String>,
    pub size: Option<u64>,
    pub nfiles: Option<u64>,
    pub commit: Option<String>,
    pub branch: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: String,
    pub pipeline: String,
    pub reason: String,
    pub source_commit: String,
    pub phase: RunPhase,
    /// Unix milliseconds.
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
    pub old_md5: Option<String>,
    pub new_md5: Option<String>,
    pub size: Option<u64>,
    pub nfiles: Option<u64>,
    pub commit: Option<String>,
    pub branch: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    pub run_id: String,
    pub task: String,
    pub attempt: u32,
    /// `running`, `succeeded`, `failed`, `stopped`.
    pub state: String,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub log_path: String,
}

pub struct Store {
    // rusqlite's Connection is not Sync; every statement here is short, so a
    // plain mutex held for one statement is simpler than a connection pool.
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    reason TEXT NOT NULL,
    source_commit TEXT NOT NULL,
    phase TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    finished_at INTEGER,
    error TEXT,
    old_md5 TEXT,
    new_md5 TEXT,
    size INTEGER,
    nfiles INTEGER,
    commit_sha TEXT,
    branch TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_pipeline ON runs (pipeline, created_at);
CREATE TABLE IF NOT EXISTS attempts (
    run_id TEXT NOT NULL REFERENCES runs (id),
    task TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    state TEXT NOT NULL,
    exit_code INTEGER,
    reason TEXT,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    log_path TEXT NOT NULL,
    PRIMARY KEY (run_id, task, attempt)
);
";

pub fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        // WAL lets `cairn runs` read while a run writes; the busy timeout
        // covers two cairn processes on one repository.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        // In WAL mode NORMAL syncs at checkpoints, not at every commit: a
        // killed process loses nothing (the WAL is in the OS's hands), and
        // a power cut can only lose the newest commits, in order, so the
        // store stays consistent; a run they described is done again, and
        // every effect of a run is idempotent (pointer commits, pull
        // requests). A run records a dozen small commits; syncing each one
        // was most of a short run's overhead.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        conn.execute_batch(service::SCHEMA).map_err(open_err)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    pub fn open_in_memory() -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(service::SCHEMA)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent
        // (each statement is atomic), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record a new run. `false` means a run with this id already exists.
    pub fn create_run(&self, run: &NewRun) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO runs (id, pipeline, reason, source_commit, phase, created_at)
             VALUES (?1, ?2, ?3, ?4, 'queued', ?5)",
            params![
                run.id,
                run.pipeline,
                run.reason,
                run.source_commit,
                unix_ms(SystemTime::now())
            ],
        )?;
        Ok(n == 1)
    }

    pub fn set_phase(&self, id: &str, phase: RunPhase) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE runs SET phase = ?2 WHERE id = ?1",
            params![id, phase.as_str()],
        )?;
        Ok(())
    }

    pub fn finish_run(
        &self,
        id: &str,
        phase: RunPhase,
        result: &RunResult,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE runs SET phase = ?2, finished_at = ?3, error = ?4, old_md5 = ?5, new_md5 = ?6,
                 size = ?7, nfiles = ?8, commit_sha = ?9, branch = ?10
             WHERE id = ?1",
            params![
                id,
                phase.as_str(),
                unix_ms(SystemTime::now()),
                result.error,
                result.old_md5,
                result.new_md5,
                result.size.map(|v| v as i64),
                result.nfiles.map(|v| v as i64),
                result.commit,
                result.branch,
            ],
        )?;
        Ok(())
    }

    /// Insert or update one attempt (it is written when it starts and again
    /// when it ends).
    pub fn record_attempt(&self, a: &AttemptRecord) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO attempts (run_id, task, attempt, state, exit_code, reason, started_at, finished_at, log_path)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (run_id, task, attempt) DO UPDATE SET
                 state = excluded.state, exit_code = excluded.exit_code, reason = excluded.reason,
                 finished_at = excluded.finished_at",
            params![
                a.run_id,
                a.task,
                a.attempt,
                a.state,
                a.exit_code,
                a.reason,
                a.started_at,
                a.finished_at,
                a.log_path
            ],
        )?;
        Ok(())
    }

    pub fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("{RUN_SELECT} WHERE id = ?1"))?;
        let row = stmt.query_row(params![id], run_row).optional()?;
        row.map(finish_record).transpose()
    }

    /// The newest runs first, optionally of one pipeline.
    pub fn runs(&self, pipeline: Option<&str>, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "{RUN_SELECT} WHERE (?1 IS NULL OR pipeline = ?1) ORDER BY created_at DESC, id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![pipeline, limit as i64], run_row)?;
        rows.map(|r| finish_record(r?)).collect()
    }

    pub fn attempts(&self, run_id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT run_id, task, attempt, state, exit_code, reason, started_at, finished_at, log_path
             FROM attempts WHERE run_id = ?1 ORDER BY started_at, task, attempt",
        )?;
        let rows = stmt.query_map(params![run_id], |r| {
            Ok(AttemptRecord {
                run_id: r.get(0)?,
                task: r.get(1)?,
                attempt: r.get(2)?,
                state: r.get(3)?,
                exit_code: r.get(4)?,
                reason: r.get(5)?,
                started_at: r.get(6)?,
                finished_at: r.get(7)?,
                log_path: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

const RUN_SELECT: &str =
    "SELECT id, pipeline, reason, source_commit, phase, created_at, finished_at, error,
    old_md5, new_md5, size, nfiles, commit_sha, branch FROM runs";

type RawRun = (RunRecord, String);

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRun> {
    let size: Option<i64> = r.get(10)?;
    let nfiles: Option<i64> = r.get(11)?;
    Ok((
        RunRecord {
            id: r.get(0)?,
            pipeline: r.get(1)?,
            reason: r.get(2)?,
            source_commit: r.get(3)?,
            phase: RunPhase::Queued,
            created_at: r.get(5)?,
            finished_at: r.get(6)?,
            error: r.get(7)?,
            old_md5: r.get(8)?,
            new_md5: r.get(9)?,
            size: size.map(|v| v as u64),
            nfiles: nfiles.map(|v| v as u64),
            commit: r.get(12)?,
            branch: r.get(13)?,
        },
        r.get(4)?,
    ))
}

fn finish_record((mut record, phase): RawRun) -> Result<RunRecord, StoreError> {
    record.phase = RunPhase::parse(&phase)?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_run(id: &str, pipeline: &str) -> NewRun {
        NewRun {
            id: id.into(),
            pipeline: pipeline.into(),
            reason: "cli".into(),
            source_commit: "abc".into(),
        }
    }

    #[test]
    fn duplicate_run_is_a_no_op() {
        let store = Store::open_in_memory().unwrap();
        assert!(store.create_run(&new_run("r1", "p")).unwrap());
        assert!(!store.create_run(&new_run("r1", "p")).unwrap());
        assert_eq!(store.runs(None, 10).unwrap().len(), 1);
    }

    #[test]
    fn run_life_is_recorded_and_listed_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("cairn.db")).unwrap();
        store.create_run(&new_run("r1", "p")).unwrap();
        store.create_run(&new_run("r2", "q")).unwrap();
        store.set_phase("r1", RunPhase::Running).unwrap();
        store
            .record_attempt(&AttemptRecord {
                run_id: "r1".into(),
                task: "t".into(),
                attempt: 1,
                state: "running".into(),
                exit_code: None,
                reason: None,
                started_at: 1,
                finished_at: None,
                log_path: "logs/t.1.log".into(),
            })
            .unwrap();
        store
            .record_attempt(&AttemptRecord {
                run_id: "r1".into(),
                task: "t".into(),
                attempt: 1,
                state: "succeeded".into(),
                exit_code: Some(0),
                reason: None,
                started_at: 1,
                finished_at: Some(2),
                log_path: "logs/t.1.log".into(),
            })
            .unwrap();
        store
            .finish_run(
                "r1",
                RunPhase::Succeeded,
                &RunResult {
                    new_md5: Some("d1a0b622cd467ce72b35413f361b44b6".into()),
                    size: Some(13420),
                    ..RunResult::default()
                },
            )
            .unwrap();
        drop(store);

        let store = Store::open(&dir.path().join("cairn.db")).unwrap();
        let r1 = store.run("r1").unwrap().unwrap();
        assert_eq!(r1.phase, RunPhase::Succeeded);
        assert_eq!(r1.size, Some(13420));
        assert!(r1.finished_at.is_some());
        let attempts = store.attempts("r1").unwrap();
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].state, "succeeded");
        assert_eq!(store.runs(Some("q"), 10).unwrap()[0].id, "r2");
        assert!(store.run("nope").unwrap().is_none());
    }
}
