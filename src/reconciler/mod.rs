//! The one place that turns a run's decisions into effects.
//!
//! Every run takes the same path, whatever executes its steps: record it,
//! wait for a run permit, lay out the repository at the source commit, let
//! the backend ([`crate::backend`]: local processes or Kubernetes pods)
//! fetch the current version, run the tasks and publish the output, and
//! only then hand the new pointer to the forge. Each step talks to the
//! world through a trait ([`RunBackend`], [`Remote`], [`Forge`], [`Store`]),
//! and what the backend reports of the steps is mirrored into the run
//! store here, once for both backends.
//!
//! [`Remote`]: crate::remote::Remote

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::backend::{Deliverer, Executed, RunBackend, RunJob};
use crate::config::{MergePolicy, Pipeline};
use crate::dataset::{self, PublishReport};
use crate::dvc::Output;
use crate::forge::{Delivery, FileChange, Forge, Proposal};
use crate::store::{NewRun, RunPhase, RunResult, Store};

mod error;
mod message;
mod mirror;
mod proposal;
mod source;

pub use error::RunError;
pub use source::{RepoSource, CONFIG_FILE};

/// The dataset diff of a run that made a new version (the Markdown of its
/// pull request), kept in the run's folder for the dashboard.
pub const DIFF_FILE: &str = "dataset-diff.md";

/// Everything a run needs from outside, handed in so tests can swap any part.
pub struct RunContext {
    pub store: Arc<Store>,
    /// Where the steps execute: chosen once, when the program starts.
    pub backend: Arc<dyn RunBackend>,
    pub forge: Arc<dyn Forge>,
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
    /// The run may be recorded already, by an earlier process of the
    /// service that started it on a cluster: follow it rather than refuse
    /// it as a duplicate.
    pub attach: bool,
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

/// Run one pipeline of the repository at `source` to its end.
pub async fn run(
    source: &RepoSource,
    request: &RunRequest,
    ctx: &RunContext,
    cancel: &CancellationToken,
) -> Result<RunSummary, RunError> {
    let run = prepare(source, request, ctx).await?;
    // Held until the run is recorded as ended: at most `max_active_runs`
    // runs of a service work at once.
    let mut held = None;
    let result = async {
        held = permit(ctx, cancel).await?;
        let executed = execute(&run, source, request, ctx, cancel).await?;
        if let Deliverer::Other { by } = ctx.backend.claim_delivery(&run.run_id).await? {
            return Err(RunError::DeliveredElsewhere { by });
        }
        let delivery = deliver(&run, source, request, ctx, &executed).await?;
        if let Err(e) = ctx.backend.delivered(&run.run_id).await {
            // Only costs another replica a wait: it would find this
            // delivery landed when it takes the claim over.
            tracing::warn!(run = %run.run_id, "recording the delivery: {e}");
        }
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
struct Prepared {
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

/// Resolve the pipeline, its remote and the current version at the source
/// commit, and record the run.
async fn prepare(
    source: &RepoSource,
    request: &RunRequest,
    ctx: &RunContext,
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
    let ours = created || (request.attach && attachable());
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

/// Lay out the repository at the source commit, then let the backend fetch,
/// run the tasks and publish; what it reports goes into the run store.
async fn execute(
    run: &Prepared,
    source: &RepoSource,
    request: &RunRequest,
    ctx: &RunContext,
    cancel: &CancellationToken,
) -> Result<Executed, RunError> {
    ctx.store.set_phase(&run.run_id, RunPhase::Fetching)?;
    let tree = run.run_dir.join("workspace");
    std::fs::create_dir_all(&tree).map_err(|e| RunError::io(&tree, e))?;
    source.materialize(&run.commit, &tree)?;
    let dataset = run.pipeline.dataset.as_str();
    if tree.join(dataset).symlink_metadata().is_ok() {
        // The commit itself holds the dataset: DVC would refuse to track
        // it, and publishing would hide the conflict.
        return Err(RunError::TrackedByGit {
            dataset: dataset.to_string(),
        });
    }
    let job = RunJob {
        run_id: &run.run_id,
        pipeline: &run.pipeline,
        commit: &run.commit,
        reason: &request.reason,
        remote: &run.remote,
        old: run.old.as_ref(),
        tree: &tree,
        logs: &run.logs,
        transfer: dataset::TransferOptions {
            jobs: ctx.jobs,
            progress: ctx.progress,
        },
    };
    let watch = mirror::Mirror::new(&ctx.store, &run.run_id, &run.logs);
    let executed = ctx.backend.execute(&job, &watch, cancel).await?;
    crate::failpoint::hit(crate::failpoint::Failpoint::UploadDone).await;
    Ok(executed)
}

/// When the data changed, hand the new pointer to the forge (a pull
/// request, a merge or a direct commit per the policy). Every object the
/// pointer names is on the remote already: the backend published it before
/// returning.
async fn deliver(
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
fn finish(
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
            match e {
                RunError::Cancelled { .. } => RunPhase::Cancelled,
                // This replica's record of a run another one delivers.
                RunError::DeliveredElsewhere { .. } => RunPhase::Succeeded,
                _ => RunPhase::Failed,
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
