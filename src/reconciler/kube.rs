//! The execute half of a run on Kubernetes: the same run as [`super::run`],
//! with the steps in pods that the controller makes of a PipelineRun.
//!
//! Git stays on this side. The repository at the source commit goes to the
//! pipeline's remote as a DVC directory object (content-addressed, so an
//! unchanged file is never sent twice) and the PipelineRun names it; the
//! fetch pod restores it into the workspace with the worker service
//! account's own credentials. Then the PipelineRun is followed with a watch;
//! each change of its steps is mirrored into the run store, so the
//! dashboard and `/cairn status` show a cluster run as they show a local
//! one. At the end the publish step's result goes through the same deliver
//! half as a local run's.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::{deliver, finish, prepare, Executed, Prepared, RunContext, RunError, RunRequest};
use super::{RepoSource, RunSummary};
use crate::dataset::{self, PublishReport};
use crate::dvc::{ObjectId, Output};
use crate::k8s::crd::{PipelineRun, SourceTree, StepPhase, StepStatus, FETCH_STEP, PUBLISH_STEP};
use crate::k8s::runs::{run_name, Runs};
use crate::k8s::RunPhase as KubePhase;
use crate::store::{unix_ms, AttemptRecord, RunPhase};

/// How the service reaches the cluster.
#[derive(Clone)]
pub struct KubeContext {
    pub runs: Runs,
    /// The service's shutdown: when it fires, a run is left to the cluster,
    /// not cancelled, and the next process of the service follows it again.
    pub detach: CancellationToken,
}

/// Run one pipeline on the cluster to its end. `attach`: the run may have
/// been started by an earlier process of the service; it is followed, not
/// started again (its PipelineRun's name is the run id).
pub async fn run_on_kubernetes(
    source: &RepoSource,
    request: &RunRequest,
    ctx: &RunContext,
    kube: &KubeContext,
    attach: bool,
    cancel: &CancellationToken,
) -> Result<RunSummary, RunError> {
    let run = prepare(source, request, ctx, attach).await?;
    let result = async {
        let executed = execute(&run, source, request, ctx, kube, cancel).await?;
        let delivery = deliver(&run, source, request, ctx, &executed).await?;
        Ok((executed, delivery))
    }
    .await;
    let summary = finish(run, ctx, result)?;
    let _ = std::fs::remove_dir_all(summary.logs.with_file_name("source"));
    Ok(summary)
}

async fn execute(
    run: &Prepared,
    source: &RepoSource,
    request: &RunRequest,
    ctx: &RunContext,
    kube: &KubeContext,
    cancel: &CancellationToken,
) -> Result<Executed, RunError> {
    ctx.store.set_phase(&run.run_id, RunPhase::Fetching)?;
    let tree = publish_source(run, source, ctx).await?;
    let mut object = crate::k8s::trigger::pipeline_run(
        &run_name(&run.run_id),
        &run.pipeline,
        &run.commit,
        &request.reason,
    )?;
    object.spec.source = Some(tree);
    if cancel.is_cancelled() && !kube.detach.is_cancelled() {
        // Replaced or cancelled while the tree was uploading: starting pods
        // only to cancel them would waste the cluster's time. (A stopping
        // service still creates it: the next process follows it.)
        return Err(RunError::Cancelled {
            reason: "the run was cancelled".into(),
        });
    }
    let created = kube.runs.create(&run.run_id, object).await?;
    tracing::info!(
        run = %run.run_id,
        namespace = kube.runs.namespace(),
        pipelinerun = %run_name(&run.run_id),
        "PipelineRun {}",
        match created {
            crate::k8s::trigger::Created::New => "created",
            crate::k8s::trigger::Created::Duplicate => "exists already: following it",
        }
    );

    let follow = kube.runs.follow(&run.run_id, |seen| mirror(ctx, run, seen));
    tokio::pin!(follow);
    let mut cancel_sent = false;
    let finished = loop {
        tokio::select! {
            result = &mut follow => break result?,
            _ = cancel.cancelled(), if !cancel_sent => {
                cancel_sent = true;
                if kube.detach.is_cancelled() {
                    // The service is stopping: the cluster carries on, and
                    // the next process follows the run to its end.
                    return Err(RunError::Cancelled {
                        reason: "the service stopped; the run goes on in the cluster".into(),
                    });
                }
                kube.runs.cancel(&run.run_id).await?;
            }
        }
    };
    let status = finished.status.clone().unwrap_or_default();
    match status.phase {
        KubePhase::Succeeded => {}
        KubePhase::Cancelled => {
            return Err(RunError::Cancelled {
                reason: "the run was cancelled".into(),
            })
        }
        _ => {
            let mut reasons: Vec<String> = status
                .steps
                .iter()
                .filter(|s| s.phase == StepPhase::Failed)
                .map(describe_failure)
                .collect();
            if reasons.is_empty() {
                reasons.push(
                    status
                        .message
                        .unwrap_or_else(|| "the PipelineRun failed".to_string()),
                );
            }
            return Err(RunError::TasksFailed { reasons });
        }
    }
    let result = status.result.ok_or_else(|| RunError::Pointer {
        path: run.pipeline.dataset.pointer_path(),
        reason: format!(
            "PipelineRun {} succeeded without a publish result",
            run_name(&run.run_id)
        ),
    })?;
    let bad_result = |reason: String| RunError::Pointer {
        path: run.pipeline.dataset.pointer_path(),
        reason: format!("the publish step reported {reason}"),
    };
    let id: ObjectId = result
        .md5
        .parse()
        .map_err(|e| bad_result(format!("{:?}: {e}", result.md5)))?;
    let name = run.pipeline.dataset.file_name();
    let size = result.size.unwrap_or(0);
    let (output, manifest) = if id.dir {
        // The manifest, for the pull request's file list; the publish step
        // uploaded it last, so it is there.
        let pointer = run.pipeline.dataset.pointer_path();
        let manifest =
            super::proposal::download_manifest(run.remote.as_ref(), &id, &run.run_dir, &pointer)
                .await?;
        let nfiles = result.nfiles.unwrap_or(manifest.len() as u64);
        (Output::dir(id, size, nfiles, name), Some(manifest))
    } else {
        (Output::file(id, size, false, name), None)
    };
    crate::failpoint::hit(crate::failpoint::Failpoint::UploadDone).await;
    Ok(Executed {
        published: PublishReport {
            output,
            // Counted by the publish pod, which reported only the version.
            uploaded: 0,
            skipped: 0,
            bytes_uploaded: 0,
            manifest,
        },
        data_path: None,
    })
}

/// Publishes the repository at the source commit as a directory object on
/// the pipeline's remote, and says where it is.
async fn publish_source(
    run: &Prepared,
    source: &RepoSource,
    ctx: &RunContext,
) -> Result<SourceTree, RunError> {
    let stage = run.run_dir.join("source");
    let tree = stage.join("tree");
    if stage.exists() {
        std::fs::remove_dir_all(&stage).map_err(|e| RunError::io(&stage, e))?;
    }
    std::fs::create_dir_all(&tree).map_err(|e| RunError::io(&tree, e))?;
    source.materialize(&run.commit, &tree)?;
    if tree
        .join(run.pipeline.dataset.as_str())
        .symlink_metadata()
        .is_ok()
    {
        return Err(RunError::TrackedByGit {
            dataset: run.pipeline.dataset.as_str().to_string(),
        });
    }
    let executables = dataset::executables(&tree).map_err(|e| RunError::io(&tree, e))?;
    let transfer = dataset::TransferOptions {
        jobs: ctx.jobs,
        progress: ctx.progress,
    };
    let published = dataset::publish_tree(&stage, "tree", run.remote.as_ref(), &transfer).await?;
    let _ = std::fs::remove_dir_all(&stage);
    tracing::info!(
        run = %run.run_id,
        tree = %published.output.id,
        uploaded = published.uploaded,
        skipped = published.skipped,
        "source tree on the remote"
    );
    Ok(SourceTree {
        md5: published.output.id.to_string(),
        size: published.output.size,
        nfiles: published.output.nfiles,
        dvc_config: remote_locator(run, source)?,
        remote: run.pipeline.remote.clone(),
        executables,
    })
}

/// Where the pipeline's remote is, as a `.dvc/config` text for the fetch
/// pod: from the committed file only (`config.local` is never part of a
/// commit), and of that only the remote's location, no credential.
fn remote_locator(run: &Prepared, source: &RepoSource) -> Result<String, RunError> {
    const PATH: &str = ".dvc/config";
    let text = source.read_text(&run.commit, PATH)?.unwrap_or_default();
    let committed = crate::dvc::DvcConfig::parse(&text, Path::new(PATH))?;
    let remote = match &run.pipeline.remote {
        Some(name) => committed
            .remote(name)
            .ok_or_else(|| RunError::UnknownRemote {
                name: name.clone(),
                pipeline: run.pipeline.name.as_str().to_string(),
            })?,
        None => committed.default_remote()?,
    };
    Ok(remote.locator_text())
}

/// Mirrors what the cluster says about the run into the run store: the
/// run's phase and each step's attempts, with the log tail the controller
/// captured as the step's log file.
fn mirror(ctx: &RunContext, run: &Prepared, seen: &PipelineRun) {
    let Some(status) = &seen.status else {
        return;
    };
    let active = |s: &StepStatus| matches!(s.phase, StepPhase::Pending | StepPhase::Running);
    let phase = if status
        .steps
        .iter()
        .any(|s| s.name == PUBLISH_STEP && active(s))
    {
        Some(RunPhase::Publishing)
    } else if status
        .steps
        .iter()
        .any(|s| s.name != FETCH_STEP && s.name != PUBLISH_STEP && s.attempt > 0)
    {
        Some(RunPhase::Running)
    } else {
        None
    };
    if let Some(phase) = phase {
        if let Err(e) = ctx.store.set_phase(&run.run_id, phase) {
            tracing::warn!(run = %run.run_id, "run store: {e}");
        }
    }
    for step in status
        .steps
        .iter()
        .filter(|s| s.phase == StepPhase::Running)
    {
        // The service's view of the cluster's step boundaries (crash tests).
        use crate::failpoint::{hit_blocking, Failpoint};
        match step.name.as_str() {
            FETCH_STEP => {}
            PUBLISH_STEP => hit_blocking(Failpoint::UploadInProgress),
            _ => hit_blocking(Failpoint::TaskRunning),
        }
    }
    for step in status.steps.iter().filter(|s| s.attempt > 0) {
        let log_path = run.logs.join(format!("{}.log", step.name));
        if step.phase.is_finished() && !step.log_tail.is_empty() {
            write_log(&log_path, &step.log_tail);
        }
        let Some(record) = attempt_record(&run.run_id, step, &log_path) else {
            continue;
        };
        if let Err(e) = ctx.store.record_attempt(&record) {
            tracing::warn!(run = %run.run_id, "run store: {e}");
        }
    }
}

/// A step's current attempt as the store keeps attempts; `None` before it
/// has a pod.
pub(crate) fn attempt_record(
    run_id: &str,
    step: &StepStatus,
    log_path: &Path,
) -> Option<AttemptRecord> {
    let state = match step.phase {
        StepPhase::Waiting | StepPhase::Skipped => return None,
        StepPhase::Pending | StepPhase::Running => "running",
        StepPhase::Succeeded => "succeeded",
        StepPhase::Failed | StepPhase::Retrying => "failed",
        StepPhase::Cancelled => "stopped",
    };
    let time = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis())
    };
    let started = time(&step.started_at)
        .or_else(|| time(&step.created_at))
        .unwrap_or_else(|| unix_ms(std::time::SystemTime::now()));
    let finished = if state == "running" {
        None
    } else {
        Some(time(&step.finished_at).unwrap_or(started))
    };
    Some(AttemptRecord {
        run_id: run_id.to_string(),
        task: step.name.clone(),
        attempt: step.attempt,
        state: state.to_string(),
        exit_code: step.exit_code,
        reason: step.reason.clone().or_else(|| step.message.clone()),
        started_at: started,
        finished_at: finished,
        log_path: log_path.display().to_string(),
    })
}

fn write_log(path: &Path, lines: &[String]) {
    let result = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(path, lines.join("\n") + "\n"));
    if let Err(e) = result {
        tracing::warn!("keeping a step's log tail in {}: {e}", path.display());
    }
}

/// One line for a step that failed for good, with the end of its output.
fn describe_failure(step: &StepStatus) -> String {
    let mut why = match (&step.reason, step.exit_code) {
        (Some(reason), Some(code)) => format!("{reason}, exit code {code}"),
        (Some(reason), None) => reason.clone(),
        (None, Some(code)) => format!("exit code {code}"),
        (None, None) => "failed".to_string(),
    };
    if let Some(message) = step.message.as_deref().filter(|m| !m.is_empty()) {
        why.push_str(&format!(": {message}"));
    }
    let mut line = format!(
        "step {} failed on attempt {} ({why})",
        step.name, step.attempt
    );
    if let Some(last) = step.log_tail.last() {
        line.push_str(&format!("; last output: {last}"));
    }
    line
}
