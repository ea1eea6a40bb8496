//! Steps on this machine: the tasks as local processes, fetch and publish
//! in this process.
//!
//! The tasks follow the run state machine: this loop shows it the attempts
//! as they stand (running, or how they ended), carries out what it answers
//! (start a process, keep its output's tail, stop it), and looks again when
//! a process ends, when the machine's next deadline comes, or when the run
//! is cancelled.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::process::{self, Ending, LineSink, Tail, TaskSpec};
use super::{failure, log_path, unless_cancelled, BackendError, Executed, RunJob, TaskEnv, Watch};
use crate::pipeline::{self, Action, AttemptState, Limits, Observed, RunPlan, RunStatus, StepPlan};
use crate::store::RunPhase;

pub struct LocalBackend {
    sink: Option<Arc<dyn LineSink>>,
    limits: Limits,
    /// What tasks get of this process's environment.
    env: TaskEnv,
    /// Time between SIGTERM and SIGKILL when an attempt is stopped.
    grace: Duration,
}

impl LocalBackend {
    /// Tasks get PATH and nothing else of this process's environment; see
    /// [`LocalBackend::with_env`].
    pub fn new(sink: Option<Arc<dyn LineSink>>, limits: Limits) -> LocalBackend {
        LocalBackend {
            sink,
            limits,
            env: TaskEnv::new(&[], |name| std::env::var(name).ok())
                .expect("no names, nothing to refuse"),
            grace: Duration::from_secs(5),
        }
    }

    /// What tasks get of this process's environment.
    pub fn with_env(mut self, env: TaskEnv) -> LocalBackend {
        self.env = env;
        self
    }

    pub fn with_grace(mut self, grace: Duration) -> LocalBackend {
        self.grace = grace;
        self
    }
}

#[async_trait::async_trait]
impl super::RunBackend for LocalBackend {
    async fn execute(
        &self,
        job: &RunJob<'_>,
        watch: &dyn Watch,
        cancel: &CancellationToken,
    ) -> Result<Executed, BackendError> {
        let workspace = job.tree;
        let dataset = job.pipeline.dataset.as_str();
        // Never through a link the commit put on the dataset's way.
        let data_path = crate::dataset::dataset_path(workspace, dataset)?;
        if let Some(old) = job.old {
            let fetch = crate::dataset::fetch(old, &data_path, job.remote.as_ref(), &job.transfer);
            unless_cancelled(cancel, fetch).await?;
        }
        crate::dataset::make_parent(workspace, dataset)?;

        watch.phase(RunPhase::Running);
        let status = self.run_tasks(job, watch, cancel).await;
        if status.phase != pipeline::RunPhase::Succeeded {
            return Err(failure(&status, job.logs));
        }

        watch.phase(RunPhase::Publishing);
        let publish =
            crate::dataset::publish(workspace, dataset, job.remote.as_ref(), &job.transfer);
        let published = unless_cancelled(cancel, publish).await?;
        Ok(Executed {
            published,
            data_path: Some(data_path),
        })
    }

    fn outlives_the_service(&self) -> bool {
        false
    }
}

/// One attempt's process, as the loop keeps it.
struct Attempt {
    seen: Observed,
    stop: CancellationToken,
    tail: Tail,
    handle: tokio::task::JoinHandle<()>,
}

/// An attempt's process ended.
struct Ended {
    uid: String,
    ending: Ending,
    at: DateTime<Utc>,
}

impl LocalBackend {
    /// The task phase: the machine, fed with the attempts' processes, until
    /// the run's status is final. Every process is gone when it returns.
    async fn run_tasks(
        &self,
        job: &RunJob<'_>,
        watch: &dyn Watch,
        cancel: &CancellationToken,
    ) -> RunStatus {
        // A HOME and TMPDIR of the run's own, beside its workspace.
        let run_dir = job.logs.parent().unwrap_or(job.logs);
        let (home, tmp) = (run_dir.join("home"), run_dir.join("tmp"));
        for dir in [&home, &tmp] {
            if let Err(e) = std::fs::create_dir_all(dir) {
                tracing::warn!(run = %job.run_id, "making {}: {e}", dir.display());
            }
        }
        let (mut plan, specs) = plan(job, self.env.base(&home, &tmp));
        let (ended_tx, mut ended_rx) = mpsc::unbounded_channel::<Ended>();
        let mut attempts: Vec<Attempt> = Vec::new();
        let mut status: Option<RunStatus> = None;
        let mut started = 0u64;
        let final_status = loop {
            let now = Utc::now();
            let observed: Vec<Observed> = attempts.iter().map(|a| a.seen.clone()).collect();
            let decision = pipeline::decide(
                &plan,
                status.as_ref(),
                &observed,
                now,
                &self.limits,
                |step, attempt| format!("{step}#{attempt}"),
            );
            let wake = decision.wake_after(now);
            let mut next = decision.status;
            // A start changes what there is to see: look again at once.
            let mut changed = false;
            for action in decision.actions {
                match action {
                    Action::Start { step, attempt } => {
                        started += 1;
                        let spec = TaskSpec {
                            attempt,
                            log_path: log_path(job.logs, &plan.steps[step].name, attempt),
                            ..specs[step].clone()
                        };
                        attempts.push(self.start(spec, started, now, &ended_tx));
                        changed = true;
                    }
                    Action::Capture { step, worker } => {
                        if let Some(a) = attempts.iter().find(|a| a.seen.name == worker) {
                            next.steps[step].log_tail = process::tail_lines(&a.tail);
                        }
                    }
                    Action::Remove { uid, .. } => {
                        if let Some(i) = attempts.iter().position(|a| a.seen.uid == uid) {
                            if matches!(attempts[i].seen.state, AttemptState::Running) {
                                // Stopped; it leaves the list once it has ended.
                                attempts[i].stop.cancel();
                                attempts[i].seen.deleting = true;
                            } else {
                                attempts.swap_remove(i);
                            }
                        }
                    }
                }
            }
            if status.as_ref() != Some(&next) {
                watch.steps(&next);
            }
            let finished = next.phase.is_finished();
            status = Some(next);
            if finished {
                break status.take().unwrap_or_default();
            }
            if changed {
                continue;
            }

            let sleep = async {
                match wake {
                    Some(after) => tokio::time::sleep(after).await,
                    None => std::future::pending().await,
                }
            };
            let mut seen_end = |ended: Ended| {
                if let Some(i) = attempts.iter().position(|a| a.seen.uid == ended.uid) {
                    if attempts[i].seen.deleting {
                        attempts.swap_remove(i);
                    } else {
                        let a = &mut attempts[i];
                        a.seen.state = observation(ended.ending);
                        a.seen.finished = Some(ended.at);
                    }
                }
            };
            tokio::select! {
                biased;
                () = cancel.cancelled(), if !plan.cancel => plan.cancel = true,
                Some(ended) = ended_rx.recv() => {
                    seen_end(ended);
                    // Everything else that ended meanwhile, in one look.
                    while let Ok(more) = ended_rx.try_recv() {
                        seen_end(more);
                    }
                }
                () = sleep => {}
            }
        };
        // Stopped attempts may still be on their way out: wait for them, so
        // no process of the run outlives it.
        for a in &attempts {
            a.stop.cancel();
        }
        for a in attempts {
            let _ = a.handle.await;
        }
        for dir in [&home, &tmp] {
            let _ = std::fs::remove_dir_all(dir);
        }
        final_status
    }

    fn start(
        &self,
        spec: TaskSpec,
        serial: u64,
        now: DateTime<Utc>,
        ended: &mpsc::UnboundedSender<Ended>,
    ) -> Attempt {
        let uid = format!("{}#{}/{serial}", spec.task, spec.attempt);
        let seen = Observed {
            name: format!("{}#{}", spec.task, spec.attempt),
            uid: uid.clone(),
            step: spec.task.clone(),
            attempt: spec.attempt,
            state: AttemptState::Running,
            created: Some(now),
            started: Some(now),
            finished: None,
            deleting: false,
        };
        let stop = CancellationToken::new();
        let tail = Tail::default();
        let handle = {
            let (sink, stop, tail, grace) = (
                self.sink.clone(),
                stop.clone(),
                Arc::clone(&tail),
                self.grace,
            );
            let ended = ended.clone();
            tokio::spawn(async move {
                let ending = process::run(&spec, sink, stop, grace, &tail).await;
                let _ = ended.send(Ended {
                    uid,
                    ending,
                    at: Utc::now(),
                });
            })
        };
        Attempt {
            seen,
            stop,
            tail,
            handle,
        }
    }
}

/// How a process ended, as the machine reads an attempt.
fn observation(ending: Ending) -> AttemptState {
    match ending {
        Ending::Exited(status) if status.success() => AttemptState::Succeeded { result: None },
        Ending::Exited(status) => AttemptState::Failed {
            reason: "Error".into(),
            message: Ending::describe(status),
            exit_code: status.code(),
            retryable: true,
        },
        Ending::NotStarted(reason) => AttemptState::Failed {
            reason: "NotStarted".into(),
            message: reason,
            exit_code: None,
            retryable: false,
        },
        Ending::Stopped => AttemptState::Failed {
            reason: "Stopped".into(),
            message: "stopped".into(),
            exit_code: None,
            retryable: false,
        },
    }
}

/// The machine's plan of the pipeline's tasks (fetch and publish are not
/// steps here: they run in this process, around the tasks), and each
/// task's process.
fn plan(job: &RunJob<'_>, base: BTreeMap<String, String>) -> (RunPlan, Vec<TaskSpec>) {
    let pipeline = job.pipeline;
    let order = pipeline.tasks.order();
    let index_of = |name: &crate::config::TaskName| order.iter().position(|n| n == name);
    let data_path = job.tree.join(pipeline.dataset.as_str());
    let mut steps = Vec::new();
    let mut specs = Vec::new();
    for name in order {
        let task = pipeline.tasks.get(name);
        let mut env = base.clone();
        env.extend(task.env.clone());
        for (key, value) in [
            ("CAIRN_WORKSPACE", job.tree.display().to_string()),
            ("CAIRN_DATASET", data_path.display().to_string()),
            ("CAIRN_RUN_ID", job.run_id.to_string()),
            ("CAIRN_PIPELINE", pipeline.name.as_str().to_string()),
            ("CAIRN_TASK", name.as_str().to_string()),
        ] {
            env.insert(key.to_string(), value);
        }
        steps.push(StepPlan {
            name: name.as_str().to_string(),
            needs: task.needs.iter().filter_map(index_of).collect(),
            max_attempts: task.retries.saturating_add(1),
            timeout: task.timeout,
            reports_result: false,
        });
        specs.push(TaskSpec {
            task: name.as_str().to_string(),
            attempt: 1,
            command: task.command.clone(),
            env,
            workdir: match &task.workdir {
                Some(dir) => job.tree.join(dir),
                None => job.tree.to_path_buf(),
            },
            log_path: log_path(job.logs, name.as_str(), 1),
        });
    }
    let plan = RunPlan {
        steps,
        timeout: pipeline.timeout,
        cancel: false,
    };
    (plan, specs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::local::LocalRemote;

    struct Quiet;

    impl Watch for Quiet {
        fn phase(&self, _: RunPhase) {}
        fn steps(&self, _: &RunStatus) {}
    }

    fn pipeline(tasks: &str) -> crate::config::Pipeline {
        let text = format!("[pipelines.p]\ndataset = \"data/out.csv\"\n{tasks}");
        let config = crate::config::parse(&text, "pipelines.toml").unwrap();
        config.pipeline("p").unwrap().clone()
    }

    /// The cancel and the attempt endings it causes are ready together; the
    /// run is cancelled every time, never failed by a task that "did not
    /// finish", and no process outlives it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_run_is_cancelled_whichever_wakes_first() {
        let dir = tempfile::tempdir().unwrap();
        let pipeline = pipeline(
            "[pipelines.p.tasks.a]\ncommand = [\"sleep\", \"30\"]\n\
             [pipelines.p.tasks.b]\ncommand = [\"sleep\", \"30\"]\nneeds = [\"a\"]\n",
        );
        let remote: Arc<dyn crate::remote::Remote> =
            Arc::new(LocalRemote::new(dir.path().join("remote")));
        let backend = LocalBackend::new(None, Limits::default()).with_grace(Duration::ZERO);
        for round in 0..20 {
            let logs = dir.path().join(format!("logs{round}"));
            let job = RunJob {
                run_id: "r",
                pipeline: &pipeline,
                commit: "c0ffee",
                reason: "test",
                remote: &remote,
                old: None,
                tree: dir.path(),
                logs: &logs,
                transfer: Default::default(),
            };
            let cancel = CancellationToken::new();
            let trigger = cancel.clone();
            let canceller = async {
                tokio::time::sleep(Duration::from_millis(round)).await;
                trigger.cancel();
            };
            let (status, ()) = tokio::join!(backend.run_tasks(&job, &Quiet, &cancel), canceller);
            assert_eq!(status.phase, pipeline::RunPhase::Cancelled, "{status:?}");
            assert_eq!(status.message.as_deref(), Some("the run was cancelled"));
        }
    }

    #[tokio::test]
    async fn the_dataset_folder_exists_before_the_tasks_start() {
        let dir = tempfile::tempdir().unwrap();
        let pipeline = pipeline(
            "[pipelines.p.tasks.write]\ncommand = [\"sh\", \"-c\", \"echo a > \\\"$CAIRN_DATASET\\\"\"]\n",
        );
        let remote: Arc<dyn crate::remote::Remote> =
            Arc::new(LocalRemote::new(dir.path().join("remote")));
        let tree = dir.path().join("workspace");
        std::fs::create_dir_all(&tree).unwrap();
        let logs = dir.path().join("logs");
        let job = RunJob {
            run_id: "r",
            pipeline: &pipeline,
            commit: "c0ffee",
            reason: "test",
            remote: &remote,
            old: None,
            tree: &tree,
            logs: &logs,
            transfer: Default::default(),
        };
        let backend = LocalBackend::new(None, Limits::default());
        let executed =
            super::super::RunBackend::execute(&backend, &job, &Quiet, &CancellationToken::new())
                .await
                .unwrap();
        assert_eq!(executed.published.output.size, Some(2));
        assert_eq!(std::fs::read(tree.join("data/out.csv")).unwrap(), b"a\n");
    }
}
