//! Runs that do not come from a push replay: schedule ticks, runs a restart
//! cut short (run again locally, followed again on a cluster), and the one
//! submission path every trigger shares.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::slots::Submitted;
use super::{next_run_id, Service, Tip, Worker};
use crate::config::Config;
use crate::store::{Intent, StoreError};
use crate::triggers::ticks;

/// Most missed ticks of one schedule run by `catchup = "all"`.
pub const MAX_BACKFILL: usize = 100;

/// The config in force and the commit it was read at.
#[derive(Clone)]
pub(super) struct Loaded {
    pub tip: Tip,
    pub config: Arc<Config>,
}

/// One run waiting for, or holding, its pipeline's slot.
pub(super) struct Job {
    /// The commit the run reads.
    pub tip: Tip,
    pub config: Arc<Config>,
    pub pipeline: String,
    /// Why it runs, for the run record and the commit status.
    pub reason: String,
    /// The run was started by an earlier process of the service on a
    /// cluster: follow its PipelineRun instead of starting it.
    pub attach: bool,
}

impl Service {
    /// The job as it leaves the queue: a run reads its branch as it is when
    /// it starts, not as it was when it was triggered, since the run before
    /// it may have moved it (a `direct` pointer commit), and a run that
    /// waited behind it must build on that, not fail against it. The config
    /// is read again only when the branch moved. A run followed on a cluster
    /// keeps the commit it started from; a branch that cannot be read, or
    /// whose pipelines.toml is broken now, leaves the job as it was.
    pub(super) async fn leave_queue(&self, worker: &Worker, job: Job) -> Job {
        if job.attach {
            return job;
        }
        let host = &worker.host;
        let commit = match host.branch_tip(&job.tip.branch).await {
            Ok(Some(commit)) if commit != job.tip.commit => commit,
            Ok(_) => return job,
            Err(e) => {
                tracing::warn!(repo = %host.name(), branch = %job.tip.branch, "reading the branch before a run: {e}");
                return job;
            }
        };
        let tip = Tip {
            branch: job.tip.branch.clone(),
            commit,
        };
        let config = match worker.current() {
            Some(loaded) if loaded.tip == tip => Ok(loaded.config),
            _ => {
                let (host, commit) = (Arc::clone(host), tip.commit.clone());
                tokio::task::spawn_blocking(move || {
                    let repo = host.open().map_err(|e| e.to_string())?;
                    crate::reconciler::RepoSource::load_config(&repo, &commit)
                        .map(Arc::new)
                        .map_err(|e| e.to_string())
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
            }
        };
        match config {
            Ok(config) => {
                tracing::info!(
                    repo = %host.name(),
                    pipeline = %job.pipeline,
                    from = %job.tip.commit,
                    to = %tip.commit,
                    "the branch moved while the run waited: it starts from the new tip"
                );
                Job { tip, config, ..job }
            }
            Err(e) => {
                tracing::warn!(repo = %host.name(), commit = %tip.commit, "pipelines.toml at the new tip: {e}; the run keeps its commit");
                job
            }
        }
    }

    /// Offer a run to its pipeline's slot, under the pipeline's policy.
    pub(super) fn submit(&self, worker: &Worker, run_id: String, job: Job) -> Submitted {
        let policy = job
            .config
            .pipeline(&job.pipeline)
            .map(|p| p.concurrency)
            .unwrap_or_default();
        let pipeline = job.pipeline.clone();
        let reason = job.reason.clone();
        // Durable before the slot has it: the caller acknowledges the
        // trigger next (moves the reconciled position, marks the tick), and
        // a process killed after that must still find the run to do.
        let intent = Intent {
            run_id: run_id.clone(),
            pipeline: pipeline.clone(),
            branch: job.tip.branch.clone(),
            source_commit: job.tip.commit.clone(),
            reason: reason.clone(),
        };
        let store = &worker.store;
        let warn = |e: StoreError| tracing::warn!(repo = %worker.host.name(), run = %run_id, "run store: {e}");
        store.add_intent(&intent).unwrap_or_else(warn);
        let outcome = worker.runs.submit(&pipeline, policy, run_id.clone(), job);
        match &outcome {
            Submitted::Skipped { .. } => store.drop_intent(&run_id).unwrap_or_else(warn),
            Submitted::Queued {
                displaced: Some(gone),
            }
            | Submitted::Replacing {
                displaced: Some(gone),
                ..
            } => store.drop_intent(gone).unwrap_or_else(warn),
            _ => {}
        }
        tracing::info!(
            repo = %worker.host.name(),
            %pipeline,
            run = %run_id,
            %reason,
            %policy,
            "run {outcome}"
        );
        outcome
    }

    /// Fire the schedule ticks that are due, and return the next tick of
    /// any schedule (for the worker's timer).
    ///
    /// The last tick acted on is persisted per pipeline, and a tick's run id
    /// is `<pipeline>-<unix time>`, so no tick runs twice, across restarts
    /// or replicas. A schedule seen for the first time (or changed) starts
    /// from now: installing cairn does not backfill history.
    pub(super) fn fire_schedules(&self, worker: &Worker) -> Option<DateTime<Utc>> {
        let loaded = worker.current()?;
        let repo = worker.host.name();
        let now = self.clock.now();
        let mut soonest: Option<DateTime<Utc>> = None;
        let mut scheduled = std::collections::BTreeSet::new();
        // Written in one transaction at the end: one commit per schedule
        // made each wake-up of a worker with many schedules take seconds.
        let mut fired: Vec<(String, String, i64)> = Vec::new();
        for pipeline in loaded.config.pipelines.values() {
            let Some(schedule) = &pipeline.schedule else {
                continue;
            };
            let name = pipeline.name.as_str();
            scheduled.insert(name.to_string());
            let key = format!("{} {}", schedule.expr(), schedule.timezone().name());
            let last = match worker.store.last_fired(name) {
                Ok(Some((k, t))) if k == key => DateTime::from_timestamp(t, 0).unwrap_or(now),
                Ok(_) => {
                    fired.push((name.to_string(), key.clone(), now.timestamp()));
                    now
                }
                Err(e) => {
                    tracing::warn!(%repo, pipeline = %name, "schedule: {e}");
                    continue;
                }
            };
            let due = ticks::due(
                schedule,
                last,
                now,
                pipeline.catchup,
                self.options.catchup_window,
                MAX_BACKFILL,
            );
            if due.skipped > 0 || due.older {
                tracing::info!(
                    %repo,
                    pipeline = %name,
                    skipped = due.skipped,
                    before_window = due.older,
                    catchup = %pipeline.catchup,
                    "missed schedule ticks not run"
                );
            }
            let mut acted_to = if due.ticks.is_empty() {
                Some(now)
            } else {
                None
            };
            let count = due.ticks.len();
            for (i, tick) in due.ticks.iter().enumerate() {
                // A backfill goes one tick at a time: each waits for the
                // slot to be free (every run's end wakes the worker), so the
                // policy only ever judges the newest tick.
                let backfill = i + 1 < count;
                if backfill && !worker.runs.is_idle(name) {
                    break;
                }
                let run_id = ticks::run_id(name, *tick);
                match worker.store.run(&run_id) {
                    Ok(Some(_)) => {
                        tracing::debug!(%repo, run = %run_id, "tick already run");
                    }
                    Ok(None) => {
                        let local = tick.with_timezone(&schedule.timezone());
                        let job = Job {
                            tip: loaded.tip.clone(),
                            config: Arc::clone(&loaded.config),
                            pipeline: name.to_string(),
                            reason: format!(
                                "schedule: {} ({})",
                                local.format("%Y-%m-%d %H:%M %Z"),
                                schedule.expr()
                            ),
                            attach: false,
                        };
                        self.submit(worker, run_id, job);
                    }
                    Err(e) => {
                        tracing::warn!(%repo, pipeline = %name, "schedule: {e}");
                        break;
                    }
                }
                // The newest tick covers everything up to now.
                acted_to = Some(if backfill { *tick } else { now.max(*tick) });
            }
            if let Some(t) = acted_to {
                // Replaces a first sight's entry of this pipeline.
                if fired.last().is_some_and(|(p, _, _)| p == name) {
                    fired.pop();
                }
                fired.push((name.to_string(), key, t.timestamp()));
            }
            // A backfill stopped early goes on when the active run ends
            // (which wakes the worker), not on this timer.
            let next = due.next;
            self.metrics
                .set_next_fire(repo, name, next.map(|t| t.timestamp()));
            soonest = match (soonest, next) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        if let Err(e) = worker.store.set_last_fired_many(&fired) {
            tracing::warn!(%repo, schedules = fired.len(), "schedule: {e}");
        }
        let mut shown = worker.scheduled.lock().unwrap_or_else(|e| e.into_inner());
        for gone in shown.difference(&scheduled) {
            self.metrics.set_next_fire(repo, gone, None);
        }
        *shown = scheduled;
        soonest
    }

    /// Submit again the runs a previous process accepted and did not finish
    /// (it was killed, or stopped with runs active or waiting), once a
    /// config is in force, oldest first. A run that never started keeps its
    /// id; one that was cut short runs under a numbered id (`<id>.2`); one
    /// that finished after all is dropped.
    pub(super) fn resume_interrupted(&self, worker: &Worker) {
        let Some(loaded) = worker.current() else {
            return;
        };
        let intents = std::mem::take(&mut *worker.resume.lock().unwrap_or_else(|e| e.into_inner()));
        let store = &worker.store;
        for intent in intents {
            let warn = |e: StoreError| tracing::warn!(run = %intent.run_id, "not resumed: {e}");
            if loaded.config.pipeline(&intent.pipeline).is_none() {
                tracing::info!(run = %intent.run_id, "not resumed: its pipeline is gone");
                store.drop_intent(&intent.run_id).unwrap_or_else(warn);
                continue;
            }
            let (run_id, attach) = match store.run(&intent.run_id) {
                Ok(None) => (intent.run_id.clone(), false),
                // On a cluster the run went on without us: follow it under
                // its own id (and PipelineRun), never start a second one.
                Ok(Some(run)) if self.backend.outlives_the_service() && !run.phase.is_final() => {
                    (intent.run_id.clone(), true)
                }
                Ok(Some(_)) => match next_run_id(store, base_id(&intent.run_id)) {
                    Ok(id) => {
                        store.drop_intent(&intent.run_id).unwrap_or_else(warn);
                        let Some(id) = id else { continue };
                        (id, false)
                    }
                    Err(e) => {
                        warn(e);
                        continue;
                    }
                },
                Err(e) => {
                    warn(e);
                    continue;
                }
            };
            tracing::info!(run = %run_id, pipeline = %intent.pipeline, "resumed after a restart");
            let job = Job {
                tip: Tip {
                    branch: intent.branch,
                    commit: intent.source_commit,
                },
                config: Arc::clone(&loaded.config),
                pipeline: intent.pipeline,
                reason: intent.reason,
                attach,
            };
            self.submit(worker, run_id, job);
        }
    }
}

/// A run id without its re-run number (`p-abc.2` -> `p-abc`).
fn base_id(id: &str) -> &str {
    match id.rsplit_once('.') {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn re_runs_share_their_base_id() {
        assert_eq!(base_id("p-abc.2"), "p-abc");
        assert_eq!(base_id("p-abc"), "p-abc");
        assert_eq!(base_id("p-1748822400"), "p-1748822400");
        assert_eq!(base_id("p.x"), "p.x");
    }
}
