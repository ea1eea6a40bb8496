//! What the service remembers about a repository between reconciles: how far
//! down its default branch it has reconciled, which commit's pipelines.toml
//! is in force (the last good one), the pull request open per pipeline, and
//! the last schedule tick acted on per pipeline.

use rusqlite::{params, OptionalExtension};

use super::{unix_ms, RunPhase, RunRecord, Store, StoreError};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS reconciled (
    branch TEXT PRIMARY KEY,
    commit_sha TEXT NOT NULL,
    config_commit TEXT,
    seen_commit TEXT,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS schedules (
    pipeline TEXT PRIMARY KEY,
    schedule TEXT NOT NULL,
    last_fired INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pulls (
    pipeline TEXT PRIMARY KEY,
    number INTEGER NOT NULL,
    head_commit TEXT NOT NULL,
    run_id TEXT NOT NULL,
    auto_merge INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS statuses_reported (
    run_id TEXT PRIMARY KEY,
    reported_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS status_commits (
    run_id TEXT PRIMARY KEY,
    commit_sha TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS intents (
    run_id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    branch TEXT NOT NULL,
    source_commit TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
";

/// A run the service accepted (started or waiting in its pipeline's slot)
/// and has not finished. It is written before the trigger is acknowledged
/// (the reconciled position moves on, a tick is marked fired), so a process
/// killed in between loses no run: the next one submits every intent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub run_id: String,
    pub pipeline: String,
    pub branch: String,
    pub source_commit: String,
    pub reason: String,
}

/// The service's position on a branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// The changes of every commit up to this one have been acted on.
    pub commit: String,
    /// The commit whose pipelines.toml is in force (`None`: none was valid yet).
    pub config_commit: Option<String>,
    /// The newest tip looked at. It is ahead of `commit` while the tip's
    /// pipelines.toml is broken: those commits' changes wait for a valid one.
    pub seen: Option<String>,
}

/// The pull request cairn keeps open for a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenPull {
    pub pipeline: String,
    pub number: u64,
    /// The proposal commit the PR head holds.
    pub head_commit: String,
    pub run_id: String,
    /// The pipeline's policy is `auto` and the PR is still waiting to merge.
    pub auto_merge: bool,
}

impl Reconciled {
    /// Everything up to `commit` acted on, with its pipelines.toml in force.
    pub fn all_of(commit: &str) -> Reconciled {
        Reconciled {
            commit: commit.to_string(),
            config_commit: Some(commit.to_string()),
            seen: Some(commit.to_string()),
        }
    }
}

impl Store {
    pub fn reconciled(&self, branch: &str) -> Result<Option<Reconciled>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT commit_sha, config_commit, seen_commit FROM reconciled WHERE branch = ?1",
                params![branch],
                |r| {
                    Ok(Reconciled {
                        commit: r.get(0)?,
                        config_commit: r.get(1)?,
                        seen: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Every branch position, the most recently updated first (a served
    /// repository has one: its default branch, unless it was renamed).
    pub fn positions(&self) -> Result<Vec<(String, Reconciled)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT branch, commit_sha, config_commit, seen_commit FROM reconciled
             ORDER BY updated_at DESC, branch",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get(0)?,
                Reconciled {
                    commit: r.get(1)?,
                    config_commit: r.get(2)?,
                    seen: r.get(3)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn set_reconciled(&self, branch: &str, state: &Reconciled) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO reconciled (branch, commit_sha, config_commit, seen_commit, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (branch) DO UPDATE SET commit_sha = excluded.commit_sha,
                 config_commit = excluded.config_commit, seen_commit = excluded.seen_commit,
                 updated_at = excluded.updated_at",
            params![
                branch,
                state.commit,
                state.config_commit,
                state.seen,
                unix_ms(std::time::SystemTime::now())
            ],
        )?;
        Ok(())
    }

    pub fn open_pull(&self, pipeline: &str) -> Result<Option<OpenPull>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT pipeline, number, head_commit, run_id, auto_merge FROM pulls WHERE pipeline = ?1",
                params![pipeline],
                pull_row,
            )
            .optional()?)
    }

    pub fn open_pulls(&self) -> Result<Vec<OpenPull>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT pipeline, number, head_commit, run_id, auto_merge FROM pulls ORDER BY pipeline",
        )?;
        let rows = stmt.query_map([], pull_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn set_open_pull(&self, pull: &OpenPull) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO pulls (pipeline, number, head_commit, run_id, auto_merge, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (pipeline) DO UPDATE SET number = excluded.number,
                 head_commit = excluded.head_commit, run_id = excluded.run_id,
                 auto_merge = excluded.auto_merge, updated_at = excluded.updated_at",
            params![
                pull.pipeline,
                pull.number as i64,
                pull.head_commit,
                pull.run_id,
                pull.auto_merge,
                unix_ms(std::time::SystemTime::now())
            ],
        )?;
        Ok(())
    }

    /// Forget the pull request numbered `number` (closed or merged). Returns
    /// the pipeline it belonged to.
    pub fn forget_pull(&self, number: u64) -> Result<Option<String>, StoreError> {
        let conn = self.conn();
        let pipeline: Option<String> = conn
            .query_row(
                "SELECT pipeline FROM pulls WHERE number = ?1",
                params![number as i64],
                |r| r.get(0),
            )
            .optional()?;
        conn.execute(
            "DELETE FROM pulls WHERE number = ?1",
            params![number as i64],
        )?;
        Ok(pipeline)
    }

    /// Records that the final commit status of `run_id` reached the forge.
    /// The commit a run's commit status goes on, when it is not the commit
    /// the run read: the commit that triggered a run which started later,
    /// from a branch that had moved on (see the service's queue).
    pub fn set_status_commit(&self, run_id: &str, commit: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO status_commits (run_id, commit_sha) VALUES (?1, ?2)",
            params![run_id, commit],
        )?;
        Ok(())
    }

    /// The commit `run_id`'s status goes on, if [`Store::set_status_commit`]
    /// named one.
    pub fn status_commit(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT commit_sha FROM status_commits WHERE run_id = ?1",
                params![run_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn mark_status_reported(&self, run_id: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR IGNORE INTO statuses_reported (run_id, reported_at) VALUES (?1, ?2)",
            params![run_id, unix_ms(std::time::SystemTime::now())],
        )?;
        Ok(())
    }

    /// The last tick of `pipeline`'s schedule that was acted on (run, queued
    /// or skipped), in unix seconds, with the schedule it belonged to (the
    /// expression and timezone as one string): a changed schedule starts
    /// afresh.
    pub fn last_fired(&self, pipeline: &str) -> Result<Option<(String, i64)>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT schedule, last_fired FROM schedules WHERE pipeline = ?1",
                params![pipeline],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Record that `pipeline`'s schedule has been acted on up to `tick`.
    pub fn set_last_fired(
        &self,
        pipeline: &str,
        schedule: &str,
        tick: i64,
    ) -> Result<(), StoreError> {
        self.set_last_fired_many(&[(pipeline.to_string(), schedule.to_string(), tick)])
    }

    /// [`Store::set_last_fired`] for many pipelines `(pipeline, schedule,
    /// tick)` in one transaction: the worker evaluates every schedule on
    /// each wake-up, and one commit (one fsync) per pipeline made that take
    /// seconds with a thousand schedules.
    pub fn set_last_fired_many(&self, entries: &[(String, String, i64)]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO schedules (pipeline, schedule, last_fired, updated_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (pipeline) DO UPDATE SET schedule = excluded.schedule,
                     last_fired = excluded.last_fired, updated_at = excluded.updated_at",
            )?;
            let now = unix_ms(std::time::SystemTime::now());
            for (pipeline, schedule, tick) in entries {
                stmt.execute(params![pipeline, schedule, tick, now])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Finished runs, oldest first, whose final commit status never reached
    /// the forge (the process died between finishing the run and reporting
    /// it, or the forge refused), finished after `since` (Unix ms), leaving
    /// out runs that failed with `skip_error` (interrupted runs, which run
    /// again and report then).
    pub fn unreported_runs(
        &self,
        since: i64,
        skip_error: &str,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let ids: Vec<String> = {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT id FROM runs WHERE finished_at IS NOT NULL AND finished_at >= ?1
                   AND (error IS NULL OR error != ?2)
                   AND id NOT IN (SELECT run_id FROM statuses_reported)
                 ORDER BY finished_at, id LIMIT 100",
            )?;
            let rows = stmt.query_map(params![since, skip_error], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(run) = self.run(&id)? {
                if run.phase.is_final() {
                    out.push(run);
                }
            }
        }
        Ok(out)
    }

    /// Remembers an accepted run until [`Store::drop_intent`].
    pub fn add_intent(&self, intent: &Intent) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO intents (run_id, pipeline, branch, source_commit, reason, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                intent.run_id,
                intent.pipeline,
                intent.branch,
                intent.source_commit,
                intent.reason,
                unix_ms(std::time::SystemTime::now())
            ],
        )?;
        Ok(())
    }

    /// The run ended, or will never start (skipped, displaced, cancelled).
    pub fn drop_intent(&self, run_id: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM intents WHERE run_id = ?1", params![run_id])?;
        Ok(())
    }

    /// Every intent, oldest first: the order the triggers came in, so that
    /// submitting them again leaves the newest waiting.
    pub fn intents(&self) -> Result<Vec<Intent>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT run_id, pipeline, branch, source_commit, reason FROM intents
             ORDER BY created_at, rowid",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Intent {
                run_id: r.get(0)?,
                pipeline: r.get(1)?,
                branch: r.get(2)?,
                source_commit: r.get(3)?,
                reason: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Runs a previous process left unfinished, oldest first, unchanged.
    /// On Kubernetes such a run goes on in the cluster without the service,
    /// so the next process follows it again instead of failing it.
    pub fn unfinished_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let ids = unfinished_ids(&self.conn())?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(run) = self.run(&id)? {
                out.push(run);
            }
        }
        Ok(out)
    }

    /// Mark runs a previous process left unfinished (it crashed or was
    /// killed) as failed, so nothing waits on them. Returns their ids.
    pub fn fail_interrupted(&self, reason: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let ids = unfinished_ids(&conn)?;
        let now = unix_ms(std::time::SystemTime::now());
        for id in &ids {
            conn.execute(
                "UPDATE runs SET phase = ?2, finished_at = ?3, error = ?4 WHERE id = ?1",
                params![id, RunPhase::Failed.as_str(), now, reason],
            )?;
        }
        Ok(ids)
    }
}

/// The ids of runs in no final phase, oldest first.
fn unfinished_ids(conn: &rusqlite::Connection) -> Result<Vec<String>, StoreError> {
    let finals = [
        RunPhase::Succeeded,
        RunPhase::Unchanged,
        RunPhase::Failed,
        RunPhase::Cancelled,
    ]
    .map(RunPhase::as_str);
    let mut stmt = conn
        .prepare("SELECT id FROM runs WHERE phase NOT IN (?1, ?2, ?3, ?4) ORDER BY created_at")?;
    let ids = stmt
        .query_map(params![finals[0], finals[1], finals[2], finals[3]], |r| {
            r.get(0)
        })?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

fn pull_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OpenPull> {
    Ok(OpenPull {
        pipeline: r.get(0)?,
        number: r.get::<_, i64>(1)? as u64,
        head_commit: r.get(2)?,
        run_id: r.get(3)?,
        auto_merge: r.get(4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewRun;

    #[test]
    fn reconciled_position_and_pulls_round_trip() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.reconciled("main").unwrap(), None);
        let state = Reconciled {
            commit: "a".repeat(40),
            config_commit: None,
            seen: None,
        };
        store.set_reconciled("main", &state).unwrap();
        let state = Reconciled {
            config_commit: Some("a".repeat(40)),
            seen: Some("b".repeat(40)),
            ..state
        };
        store.set_reconciled("main", &state).unwrap();
        assert_eq!(store.reconciled("main").unwrap(), Some(state.clone()));
        assert_eq!(
            store.positions().unwrap(),
            vec![("main".to_string(), state)]
        );

        let pull = OpenPull {
            pipeline: "p".into(),
            number: 7,
            head_commit: "b".repeat(40),
            run_id: "p-1".into(),
            auto_merge: true,
        };
        store.set_open_pull(&pull).unwrap();
        store
            .set_open_pull(&OpenPull {
                auto_merge: false,
                ..pull.clone()
            })
            .unwrap();
        assert!(!store.open_pull("p").unwrap().unwrap().auto_merge);
        assert_eq!(store.open_pulls().unwrap().len(), 1);
        assert_eq!(store.forget_pull(7).unwrap(), Some("p".into()));
        assert_eq!(store.forget_pull(7).unwrap(), None);
        assert!(store.open_pulls().unwrap().is_empty());
    }

    #[test]
    fn last_fired_ticks_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.db");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.last_fired("p").unwrap(), None);
        store.set_last_fired("p", "@daily UTC", 100).unwrap();
        store.set_last_fired("p", "@daily UTC", 200).unwrap();
        store
            .set_last_fired_many(&[
                ("q".into(), "@hourly UTC".into(), 300),
                ("r".into(), "@hourly UTC".into(), 400),
            ])
            .unwrap();
        assert_eq!(
            store.last_fired("r").unwrap(),
            Some(("@hourly UTC".to_string(), 400))
        );
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.last_fired("p").unwrap(),
            Some(("@daily UTC".into(), 200))
        );
    }

    #[test]
    fn intents_survive_a_reopen_in_the_order_they_came() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.db");
        let store = Store::open(&path).unwrap();
        let intent = |id: &str| Intent {
            run_id: id.into(),
            pipeline: "p".into(),
            branch: "main".into(),
            source_commit: "c".repeat(40),
            reason: "push".into(),
        };
        for id in ["p-1", "p-2", "p-3"] {
            store.add_intent(&intent(id)).unwrap();
        }
        store.drop_intent("p-2").unwrap();
        store.drop_intent("p-9").unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.intents().unwrap(), vec![intent("p-1"), intent("p-3")]);
    }

    /// Runs `a` (succeeded) and `b` (in `b_phase`).
    fn one_finished_one_in(b_phase: RunPhase) -> Store {
        let store = Store::open_in_memory().unwrap();
        for id in ["a", "b"] {
            store
                .create_run(&NewRun {
                    id: id.into(),
                    pipeline: "p".into(),
                    reason: "push".into(),
                    source_commit: "c".into(),
                })
                .unwrap();
        }
        store
            .finish_run("a", RunPhase::Succeeded, &Default::default())
            .unwrap();
        store.set_phase("b", b_phase).unwrap();
        store
    }

    #[test]
    fn unfinished_runs_are_failed_on_restart() {
        let store = one_finished_one_in(RunPhase::Publishing);
        assert_eq!(store.fail_interrupted("restart").unwrap(), vec!["b"]);
        let b = store.run("b").unwrap().unwrap();
        assert_eq!(b.phase, RunPhase::Failed);
        assert_eq!(b.error.as_deref(), Some("restart"));
        assert!(store.fail_interrupted("restart").unwrap().is_empty());
    }

    #[test]
    fn unfinished_runs_are_listed_without_being_failed() {
        let store = one_finished_one_in(RunPhase::Running);
        let ids: Vec<String> = store
            .unfinished_runs()
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["b"]);
        assert_eq!(store.run("b").unwrap().unwrap().phase, RunPhase::Running);
    }
}
