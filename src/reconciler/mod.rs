//! The one place that turns a run's decisions into effects.
//!
//! A run goes: record it, lay out a workspace from the source commit, fetch
//! the current dataset version into it, run the tasks, publish the output to
//! the remote, and only then hand the new pointer to the forge. Each step
//! talks to the world through a trait ([`Executor`], [`Remote`], [`Forge`],
//! [`Store`]), so the same sequence serves local runs and the service.
//!
//! A run is two halves: the execute half (steps that end with a published
//! version: local processes in [`run`], pods in [`run_on_kubernetes`]) and
//! the deliver half ([`deliver`], shared), which hands the pointer to the
//! forge only once the published objects are on the remote.
//!
//! [`Remote`]: crate::remote::Remote

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::{MergePolicy, Pipeline};
use crate::dataset::{self, PublishReport};
use crate::dvc::Output;
use crate::executor::Executor;
use crate::forge::{Delivery, FileChange, Forge, Proposal};
use crate::pipeline::{Limits, RunOutcome, TaskPlan};
use crate::store::{NewRun, RunPhase, RunResult, Store};

mod error;
mod kube;
mod message;
mod proposal;
mod source;
mod tasks;

pub use error::RunError;
pub use kube::{run_on_kubernetes, KubeContext};
pub use source::{RepoSource, CONFIG_FILE};
pub use tasks::{run_tasks, PlannedTask, TaskPhase};

/// The dataset diff of a run that made a new version (the Markdown of its
/// pull request), kept in the run's folder for the dashboard.
pub const DIFF_FILE: &str = "dataset-diff.md";

/// Everything a run needs from outside, handed in so tests can swap any part.
pub struct RunContext {
    pub store: Arc<Store>,
    pub executor: Arc<dyn Executor>,
    pub forge: Arc<dyn Forge>,
    pub limits: Limits,
    /// Where per-run workspaces and logs go (`.cairn/runs`).
    pub runs_dir: PathBuf,
    pub progress: dataset::Progress,
    /// Parallel transfers to and from the remote.
    pub jobs: usize,
    /// Keep the workspace of a successful run (failed ones are always kept).
    pub keep_workspace: bool,
    /// Shared by every run of a service: a run is recorded (`queued`) at
    /// once, then waits for a permit before it does any work, so a thousand
    /// schedules ticking together run a few at a time instead of a thousand
    /// processes and git checkouts fighting over two cores. `None`: no limit.
    pub permits: Option<Arc<tokio::sync::Semaphore>>,
}

/// What to run and why.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub pipeline: String,
    /// What started it: `cli`, `push`, `schedule`...
    pub reason: String,
    /// The idempotency key; a fresh id when `None`.
    pub run_id: Option<String>,
    /// Overrides the pipeline's `merge` policy.
    pub merge: Option<MergePolicy>,
    /// A page showing the source commit (the forge's), for the proposal.
    pub source_url: Option<String>,
    /// A page about this run, for the proposal.
    pub run_url: Option<String>,
}

/// How a run ended, for the CLI to report.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub run_id: String,
    pub pipeline: String,
    pub source_commit: String,
    pub dataset: String,
    pub old: Option<Output>,
    pub published: PublishReport,
    /// `None` when the data did not change.
    pub delivery: Option<Delivery>,
    pub logs: PathBuf,
}

/// Run one pipeline of the repository at `source` to its end, with local
/// processes (`ctx.executor`).
pub async fn run(
    source: &RepoSource,
    request: &RunRequest,
    ctx: &RunContext,
    cancel: &CancellationToken,
) -> Result<RunSummary, RunError> {
    let run = prepare(source, request, ctx, false).await?;
    // Held until the run is recorded as ended: at most `max_active_runs`
    // runs of a service work at once.
    let mut held = None;
    let result = async {
        held = permit(ctx, cancel).await?;
        let executed = execute_local(&run, source, ctx, cancel).await?;
        let delivery = deliver(&run, source, request, ctx, &executed).await?;
        Ok((executed, delivery))
    }
    .await;
    let summary = finish(run, ctx, result);
    drop(held);
    let summary = summary?;
    if !ctx.keep_workspace {
        // Logs stay for `cairn runs`; the workspace may be large.
        let _ = std::fs::remove_dir_all(summary.logs.with_file_name("workspace"));
    }
    Ok(summary)
}

/// One of the service's run permits (see [`RunContext::permits`]), waited
/// for in arrival order; a cancel while waiting ends the run.
async fn permit(
    ctx: &RunContext,
    cancel: &CancellationToken,
) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, RunError> {
    let Some(permits) = &ctx.permits else {
        return Ok(None);
    };
    tokio::select! {
        permit = Arc::clone(permits).acquire_owned() => permit.map(Some).map_err(|_| RunError::Cancelled {
            reason: "the service is stopping".into(),
        }),
        () = cancel.cancelled() => Err(RunError::Cancelled {
            reason: "cancelled while waiting for a free run slot".into(),
        }),
    }
}

/// A run resolved at its source commit and recorded, before any step.
pub(crate) struct Prepared {
    pub run_id: String,
    pub pipeline: Pipeline,
    pub commit: String,
    pub policy: MergePolicy,
    pub remote: Arc<dyn crate::remote::Remote>,
    /// The version the pointer names at the source commit.
    pub old: Option<Output>,
    pub run_dir: PathBuf,
    pub logs: PathBuf,
}

/// What the execute half hands to the deliver half: the published version,
/// wherever the steps ran.
pub(crate) struct Executed {
    pub published: PublishReport,
    /// The new version on disk, for the table diff; `None` when the steps
    /// ran elsewhere (a cluster) and only the remote has it.
    pub data_path: Option<PathBuf>,
}

/// Resolve the pipeline, its remote and the current version at the source
/// commit, and record the run. `attach`: the run may be recorded already,
/// by an earlier process of the service that started it on a cluster.
pub(crate) async fn prepare(
    source: &RepoSource,
    request: &RunRequest,
    ctx: &RunContext,
    attach: bool,
) -> Result<Prepared, RunError> {
    let commit = source.head_commit().to_string();
    let pipeline = source.pipeline(&request.pipeline)?.clone();
    let policy = request.merge.unwrap_or(pipeline.merge);
    if policy == MergePolicy::Direct {
        // Fail before doing any work: direct commits onto the checkout.
        source.require_clean()?;
    }
    let remote: Arc<dyn crate::remote::Remote> = source.remote(&pipeline)?.into();
    let old = source.pointer(&pipeline, &commit)?;

    let run_id = match &request.run_id {
        Some(id) if valid_run_id(id) => id.clone(),
        Some(id) => return Err(RunError::BadRunId { run_id: id.clone() }),
        None => new_run_id(pipeline.name.as_str()),
    };
    let created = ctx.store.create_run(&NewRun {
        id: run_id.clone(),
        pipeline: pipeline.name.as_str().to_string(),
        reason: request.reason.clone(),
        source_commit: commit.clone(),
    })?;
    let attachable = || {
        ctx.store
            .run(&run_id)
            .ok()
            .flatten()
            .is_some_and(|r| !r.phase.is_final())
    };
    // Attaching follows a run an earlier process recorded and left going.
    let ours = created || (attach && attachable());
    if !ours {
        return Err(RunError::Duplicate { run_id });
    }
    crate::failpoint::hit(crate::failpoint::Failpoint::RunRecorded).await;

    let run_dir = ctx.runs_dir.join(&run_id);
    let logs = run_dir.join("logs");
    Ok(Prepared {
        run_id,
        pipeline,
        commit,
        policy,
        remote,
        old,
        run_dir,
        logs,
    })
}

/// The execute half of a local run: lay out the workspace from the source
/// commit, fetch the current version, run the tasks as local processes,
/// publish the output.
async fn execute_local(
    run: &Prepared,
    source: &RepoSource,
    ctx: &RunContext,
    cancel: &CancellationToken,
) -> Result<Executed, RunError> {
    let Prepared {
        run_id,
        pipeline,
        commit,
        remote,
        old,
        run_dir,
        logs,
        ..
    } = run;
    let workspace = run_dir.join("workspace");
    let transfer = dataset::TransferOptions {
        jobs: ctx.jobs,
        progress: ctx.progress,
    };
    ctx.store.set_phase(run_id, RunPhase::Fetching)?;
    std::fs::create_dir_all(&workspace).map_err(|e| RunError::io(&workspace, e))?;
    source.materialize(commit, &workspace)?;
    let data_path = workspace.join(pipeline.dataset.as_str());
    if data_path.symlink_metadata().is_ok() {
        // The commit itself holds the dataset: DVC would refuse to track
        // it, and publishing would hide the conflict.
        return Err(RunError::TrackedByGit {
            dataset: pipeline.dataset.as_str().to_string(),
        });
    }
    if let Some(old) = old {
        let fetch = dataset::fetch(old, &data_path, remote.as_ref(), &transfer);
        unless_cancelled(cancel, fetch).await?;
    }

    ctx.store.set_phase(run_id, RunPhase::Running)?;
    let planned = plan_tasks(pipeline, run_id, &workspace, &data_path, logs);
    let phase = run_tasks(
        planned,
        Arc::clone(&ctx.executor),
        &ctx.store,
        ctx.limits,
        pipeline.timeout,
        cancel,
    )
    .await;
    match phase.outcome {
        RunOutcome::Succeeded => {}
        RunOutcome::Failed { tasks } => {
            let reasons = tasks
                .iter()
                .map(|task| error::describe_failure(task, phase.reports.get(task), logs))
                .collect();
            return Err(RunError::TasksFailed { reasons });
        }
        RunOutcome::Cancelled { reason } => return Err(RunError::Cancelled { reason }),
    }

    ctx.store.set_phase(run_id, RunPhase::Publishing)?;
    let publish = dataset::publish(
        &workspace,
        pipeline.dataset.as_str(),
        remote.as_ref(),
        &transfer,
    );
    let published = unless_cancelled(cancel, publish).await?;
    crate::failpoint::hit(crate::failpoint::Failpoint::UploadDone).await;
    Ok(Executed {
        published,
        data_path: Some(data_path),
    })
}

/// Runs a transfer step unless the run is cancelled first (a `replace`, a
/// `/cairn cancel`, shutdown): a large dataset would otherwise hold the slot
/// until it is done. Stopping half-way is safe: a fetch writes temporary
/// files inside the run's workspace, which goes; a publish uploads the
/// `.dir` manifest last and aborts its open multipart uploads, so the remote
/// only gains content-addressed objects no pointer names yet. (Delivery is
/// not cancellable: once the pointer is being committed, it finishes.)
async fn unless_cancelled<T, E>(
    cancel: &CancellationToken,
    step: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, RunError>
where
    RunError: From<E>,
{
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(RunError::Cancelled {
            reason: "the run was cancelled".into(),
        }),
        result = step => Ok(result?),
    }
}

/// The deliver half, the same for every executor: when the data changed,
/// hand the new pointer to the forge (a pull request, a merge or a direct
/// commit per the policy). Every object the pointer names is on the remote
/// already: the execute half published it before returning.
pub(crate) async fn deliver(
    run: &Prepared,
    source: &RepoSource,
    request: &RunRequest,
    ctx: &RunContext,
    executed: &Executed,
) -> Result<Option<Delivery>, RunError> {
    let Prepared {
        run_id,
        pipeline,
        commit,
        policy,
        remote,
        old,
        run_dir,
        ..
    } = run;
    let published = &executed.published;
    let unchanged = old.as_ref().is_some_and(|o| o.id == published.output.id);
    if unchanged {
        return Ok(None);
    }
    ctx.store.set_phase(run_id, RunPhase::Committing)?;
    let facts = proposal::RunFacts {
        pipeline: pipeline.name.as_str(),
        dataset: pipeline.dataset.as_str(),
        run_id,
        reason: &request.reason,
        source_commit: commit,
        source_url: request.source_url.clone(),
        run_url: request.run_url.clone(),
    };
    // Without the data on this side (a cluster run), the tables to compare
    // are read from the remote.
    let versions = proposal::Versions {
        data_path: executed.data_path.as_deref(),
        old: old.as_ref(),
        new: &published.output,
        new_manifest: published.manifest.as_ref(),
    };
    let text =
        proposal::pull_request_text(&facts, versions, Arc::clone(remote), &ctx.store, run_dir)
            .await;
    // Kept for the dashboard even when no pull request carries it (a
    // local repository); losing it only costs that page.
    let diff_path = run_dir.join(DIFF_FILE);
    if let Err(e) =
        std::fs::create_dir_all(run_dir).and_then(|()| std::fs::write(&diff_path, &text.body))
    {
        tracing::warn!(run = %run_id, "keeping the dataset diff in {}: {e}", diff_path.display());
    }
    let proposal = Proposal {
        title: text.title,
        body: text.body,
        pipeline: pipeline.name.as_str().to_string(),
        run_id: run_id.clone(),
        base: commit.clone(),
        changes: pointer_changes(source, pipeline, commit, &published.output)?,
        message: message::commit_message(pipeline, old.as_ref(), &published.output, run_id, commit),
        policy: *policy,
    };
    Ok(Some(ctx.forge.deliver(&proposal).await?))
}

/// Record how the run ended, and summarise it.
pub(crate) fn finish(
    run: Prepared,
    ctx: &RunContext,
    result: Result<(Executed, Option<Delivery>), RunError>,
) -> Result<RunSummary, RunError> {
    let (phase, record) = match &result {
        Ok((executed, delivery)) => (
            if delivery.is_some() {
                RunPhase::Succeeded
            } else {
                RunPhase::Unchanged
            },
            RunResult {
                error: None,
                old_md5: run.old.as_ref().map(|o| o.id.to_string()),
                new_md5: Some(executed.published.output.id.to_string()),
                size: executed.published.output.size,
                nfiles: executed.published.output.nfiles,
                commit: delivery.as_ref().map(|d| d.commit().to_string()),
                branch: delivery.as_ref().map(|d| d.branch().to_string()),
            },
        ),
        Err(e) => (
            if matches!(e, RunError::Cancelled { .. }) {
                RunPhase::Cancelled
            } else {
                RunPhase::Failed
            },
            RunResult {
                error: Some(e.to_string()),
                old_md5: run.old.as_ref().map(|o| o.id.to_string()),
                ..RunResult::default()
            },
        ),
    };
    ctx.store.finish_run(&run.run_id, phase, &record)?;
    let (executed, delivery) = result?;
    Ok(RunSummary {
        run_id: run.run_id,
        pipeline: run.pipeline.name.as_str().to_string(),
        source_commit: run.commit,
        dataset: run.pipeline.dataset.as_str().to_string(),
        old: run.old,
        published: executed.published,
        delivery,
        logs: run.logs,
    })
}

/// `<pipeline>-<UTC time>-<random>`: sortable, unique, and a valid
/// Kubernetes name fragment.
pub fn new_run_id(pipeline: &str) -> String {
    let now = chrono::Utc::now().format("%Y%m%dt%H%M%S");
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "{}-{now}-{}",
        pipeline.to_ascii_lowercase().replace('_', "-"),
        &random[..6]
    )
}

/// Run ids name folders and (later) Kubernetes objects: keep them to
/// characters that are safe in both, and never a path.
fn valid_run_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn plan_tasks(
    pipeline: &Pipeline,
    run_id: &str,
    workspace: &Path,
    data_path: &Path,
    logs: &Path,
) -> Vec<PlannedTask> {
    let order = pipeline.tasks.order();
    let index_of = |name: &crate::config::TaskName| order.iter().position(|n| n == name);
    order
        .iter()
        .map(|name| {
            let task = pipeline.tasks.get(name);
            let mut env = task.env.clone();
            for (key, value) in [
                ("CAIRN_WORKSPACE", workspace.display().to_string()),
                ("CAIRN_DATASET", data_path.display().to_string()),
                ("CAIRN_RUN_ID", run_id.to_string()),
                ("CAIRN_PIPELINE", pipeline.name.as_str().to_string()),
                ("CAIRN_TASK", name.as_str().to_string()),
            ] {
                env.insert(key.to_string(), value);
            }
            let workdir = match &task.workdir {
                Some(dir) => workspace.join(dir),
                None => workspace.to_path_buf(),
            };
            PlannedTask {
                plan: TaskPlan {
                    name: name.as_str().to_string(),
                    needs: task.needs.iter().filter_map(index_of).collect(),
                    max_attempts: task.retries.saturating_add(1),
                },
                spec: crate::executor::TaskSpec {
                    run_id: run_id.to_string(),
                    pipeline: pipeline.name.as_str().to_string(),
                    task: name.as_str().to_string(),
                    attempt: 1,
                    command: task.command.clone(),
                    env,
                    workdir,
                    timeout: task.timeout,
                    log_path: logs.join(format!("{}.log", name.as_str())),
                },
            }
        })
        .collect()
}

/// The pointer file, plus the `.gitignore` entry `dvc add` would add.
fn pointer_changes(
    source: &RepoSource,
    pipeline: &Pipeline,
    commit: &str,
    output: &Output,
) -> Result<Vec<FileChange>, RunError> {
    let pointer_path = pipeline.dataset.pointer_path();
    let pointer = crate::dvc::PointerFile::single(output.clone())
        .to_yaml(&pointer_path)
        .map_err(|e| RunError::Pointer {
            path: pointer_path.clone(),
            reason: e.to_string(),
        })?;
    let mut changes = vec![FileChange {
        path: pointer_path,
        content: Some(pointer.into_bytes()),
    }];
    let parent = pipeline.dataset.parent();
    let gitignore = if parent.is_empty() {
        ".gitignore".to_string()
    } else {
        format!("{parent}/.gitignore")
    };
    let existing = source.read_text(commit, &gitignore)?.unwrap_or_default();
    if let Some(updated) = crate::dvc::gitignore_add(&existing, pipeline.dataset.file_name()) {
        changes.push(FileChange {
            path: gitignore,
            content: Some(updated.into_bytes()),
        });
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::local::LocalRemote;
    use crate::remote::Remote;

    /// A publish cancelled half-way leaves no version on the remote: the
    /// `.dir` manifest, which is what makes a version, never goes up.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_publish_leaves_no_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("ws/data");
        std::fs::create_dir_all(&data).unwrap();
        for i in 0..300 {
            std::fs::write(data.join(format!("{i}.csv")), format!("id\n{i}\n")).unwrap();
        }
        let opts = dataset::TransferOptions::default();
        // The version's manifest id, from a publish elsewhere.
        let elsewhere = LocalRemote::new(dir.path().join("elsewhere"));
        let whole = dataset::publish(&dir.path().join("ws"), "data", &elsewhere, &opts)
            .await
            .unwrap();
        let manifest = whole.output.id;
        assert!(manifest.dir);

        let remote = LocalRemote::new(dir.path().join("remote"));
        let cancel = CancellationToken::new();
        let canceller = {
            let cancel = cancel.clone();
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                cancel.cancel();
            }
        };
        let ws = dir.path().join("ws");
        let publish = dataset::publish(&ws, "data", &remote, &opts);
        let (result, ()) = tokio::join!(unless_cancelled(&cancel, publish), canceller);
        assert!(
            matches!(result, Err(RunError::Cancelled { .. })),
            "{:?}",
            result.map(|r| r.output.id)
        );
        remote.flush().await.unwrap();
        assert_eq!(remote.missing(&[manifest]).await.unwrap(), [manifest]);

        // Cancelled before it starts: it does not start.
        let started = std::sync::atomic::AtomicBool::new(false);
        let step = async {
            started.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok::<(), RunError>(())
        };
        assert!(unless_cancelled(&cancel, step).await.is_err());
        assert!(!started.load(std::sync::atomic::Ordering::SeqCst));
    }
}
