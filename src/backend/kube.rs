//! Steps on a cluster: every step a pod, carried out by the controller from
//! a PipelineRun.
//!
//! Git stays on this side. The repository at the source commit goes to the
//! pipeline's remote as a DVC directory object (content-addressed, so an
//! unchanged file is never sent twice) and the PipelineRun names it; the
//! fetch pod restores it into the workspace with the worker service
//! account's own credentials. Then the PipelineRun is followed with a watch,
//! each status of its steps reported to the [`Watch`]. The controller runs
//! the same state machine as a local run, on pods.

use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{failure, BackendError, Deliverer, Executed, RunJob, Watch};
use crate::dataset::{self, PublishReport};
use crate::dvc::{ObjectId, Output};
use crate::k8s::crd::{PipelineRun, SourceTree, StepPhase, FETCH_STEP, PUBLISH_STEP};
use crate::k8s::runs::{run_name, Claim, Runs};
use crate::k8s::RunPhase as KubePhase;
use crate::store::RunPhase;

/// How long a replica waits for another that claimed a run's delivery to
/// say it is done, before it takes the delivery over (the other may have
/// gone for good). A delivery takes seconds; a replica that claimed and
/// restarts resumes its own claim at once.
const TAKE_OVER_AFTER: Duration = Duration::from_secs(600);

pub struct KubeBackend {
    runs: Runs,
    /// The service's shutdown: when it fires, a run is left to the cluster,
    /// not cancelled, and the next process of the service follows it again.
    detach: CancellationToken,
    /// This replica's name (its pod's), stable across restarts of its
    /// container: who claims a run's delivery.
    identity: String,
}

impl KubeBackend {
    pub fn new(runs: Runs, detach: CancellationToken, identity: String) -> KubeBackend {
        KubeBackend {
            runs,
            detach,
            identity,
        }
    }
}

#[async_trait::async_trait]
impl super::RunBackend for KubeBackend {
    async fn execute(
        &self,
        job: &RunJob<'_>,
        watch: &dyn Watch,
        cancel: &CancellationToken,
    ) -> Result<Executed, BackendError> {
        let tree = publish_source(job).await?;
        let mut object = crate::k8s::trigger::pipeline_run(
            &run_name(job.run_id),
            job.pipeline,
            job.commit,
            job.reason,
        )?;
        object.spec.source = Some(tree);
        if cancel.is_cancelled() && !self.detach.is_cancelled() {
            // Replaced or cancelled while the tree was uploading: starting pods
            // only to cancel them would waste the cluster's time. (A stopping
            // service still creates it: the next process follows it.)
            return Err(BackendError::Cancelled {
                reason: "the run was cancelled".into(),
            });
        }
        let created = self.runs.create(job.run_id, object).await?;
        tracing::info!(
            run = %job.run_id,
            namespace = self.runs.namespace(),
            pipelinerun = %run_name(job.run_id),
            "PipelineRun {}",
            match created {
                crate::k8s::trigger::Created::New => "created",
                crate::k8s::trigger::Created::Duplicate => "exists already: following it",
            }
        );

        let follow = self.runs.follow(job.run_id, |seen| report(watch, seen));
        tokio::pin!(follow);
        let mut cancel_sent = false;
        let finished = loop {
            tokio::select! {
                result = &mut follow => break result?,
                _ = cancel.cancelled(), if !cancel_sent => {
                    cancel_sent = true;
                    if self.detach.is_cancelled() {
                        // The service is stopping: the cluster carries on, and
                        // the next process follows the run to its end.
                        return Err(BackendError::Cancelled {
                            reason: "the service stopped; the run goes on in the cluster".into(),
                        });
                    }
                    self.runs.cancel(job.run_id).await?;
                }
            }
        };
        let status = finished.status.clone().unwrap_or_default();
        if status.phase != KubePhase::Succeeded {
            return Err(failure(&status, job.logs));
        }
        let published = published(job, status.result.as_ref()).await?;
        Ok(Executed {
            published,
            data_path: None,
        })
    }

    fn outlives_the_service(&self) -> bool {
        true
    }

    async fn claim_delivery(&self, run_id: &str) -> Result<Deliverer, BackendError> {
        let waited = std::time::Instant::now();
        loop {
            let take_over = waited.elapsed() >= TAKE_OVER_AFTER;
            match self
                .runs
                .claim_delivery(run_id, &self.identity, take_over)
                .await?
            {
                Claim::Ours => return Ok(Deliverer::Us),
                Claim::Delivered { by } => return Ok(Deliverer::Other { by }),
                Claim::Theirs { by } => {
                    tracing::debug!(run = %run_id, deliverer = %by, "another replica delivers this run; waiting for it");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = self.detach.cancelled() => {
                            return Err(BackendError::Cancelled {
                                reason: "the service stopped; the run goes on in the cluster".into(),
                            });
                        }
                    }
                }
            }
        }
    }

    async fn delivered(&self, run_id: &str) -> Result<(), BackendError> {
        Ok(self.runs.mark_delivered(run_id, &self.identity).await?)
    }
}

/// The version the publish step reported, as the deliver half needs it.
async fn published(
    job: &RunJob<'_>,
    result: Option<&crate::pipeline::PublishResult>,
) -> Result<PublishReport, BackendError> {
    let pointer = job.pipeline.dataset.pointer_path();
    let bad = |reason: String| BackendError::BadResult {
        pointer: pointer.clone(),
        reason,
    };
    let result = result.ok_or_else(|| {
        bad(format!(
            "PipelineRun {} succeeded without a publish result",
            run_name(job.run_id)
        ))
    })?;
    let id: ObjectId = result
        .md5
        .parse()
        .map_err(|e| bad(format!("the publish step reported {:?}: {e}", result.md5)))?;
    let name = job.pipeline.dataset.file_name();
    let size = result.size.unwrap_or(0);
    let (output, manifest) = if id.dir {
        // The manifest, for the pull request's file list; the publish step
        // uploaded it last, so it is there.
        let run_dir = job.logs.parent().unwrap_or(job.logs);
        let manifest = dataset::download_manifest(
            job.remote.as_ref(),
            id,
            run_dir,
            Path::new(job.pipeline.dataset.as_str()),
        )
        .await?;
        let nfiles = result.nfiles.unwrap_or(manifest.len() as u64);
        (Output::dir(id, size, nfiles, name), Some(manifest))
    } else {
        (Output::file(id, size, false, name), None)
    };
    Ok(PublishReport {
        output,
        // Counted by the publish pod, which reported only the version.
        uploaded: 0,
        skipped: 0,
        bytes_uploaded: 0,
        manifest,
    })
}

/// Publishes the repository at the source commit as a directory object on
/// the pipeline's remote, and says where it is. The laid-out tree is not
/// needed here afterwards.
async fn publish_source(job: &RunJob<'_>) -> Result<SourceTree, BackendError> {
    let tree = job.tree;
    let executables = dataset::executables(tree).map_err(|e| BackendError::io(tree, e))?;
    let dvc_config = remote_locator(job)?;
    let (stage, name) = match (tree.parent(), tree.file_name().and_then(|n| n.to_str())) {
        (Some(stage), Some(name)) => (stage, name),
        _ => {
            return Err(BackendError::io(
                tree,
                std::io::Error::other("the source tree needs a named folder"),
            ))
        }
    };
    let published = dataset::publish_tree(stage, name, job.remote.as_ref(), &job.transfer).await?;
    let _ = std::fs::remove_dir_all(tree);
    tracing::info!(
        run = %job.run_id,
        tree = %published.output.id,
        uploaded = published.uploaded,
        skipped = published.skipped,
        "source tree on the remote"
    );
    Ok(SourceTree {
        md5: published.output.id.to_string(),
        size: published.output.size,
        nfiles: published.output.nfiles,
        dvc_config,
        remote: job.pipeline.remote.clone(),
        executables,
    })
}

/// Where the pipeline's remote is, as a `.dvc/config` text for the fetch
/// pod: from the committed file only (the tree holds what the commit holds;
/// `config.local` is never part of a commit), and of that only the remote's
/// location, no credential.
fn remote_locator(job: &RunJob<'_>) -> Result<String, BackendError> {
    let path = job.tree.join(".dvc/config");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(BackendError::io(&path, e)),
    };
    let committed = crate::dvc::DvcConfig::parse(&text, Path::new(".dvc/config"))?;
    let remote = match &job.pipeline.remote {
        Some(name) => committed
            .remote(name)
            .ok_or_else(|| BackendError::BadResult {
                pointer: ".dvc/config".into(),
                reason: format!(
                    "pipeline {:?} names remote {name:?}, which .dvc/config does not define",
                    job.pipeline.name.as_str()
                ),
            })?,
        None => committed.default_remote()?,
    };
    Ok(remote.locator_text())
}

/// Reports what the cluster says about the run: its phase and its steps.
fn report(watch: &dyn Watch, seen: &PipelineRun) {
    let Some(status) = &seen.status else {
        return;
    };
    let active = |s: &crate::pipeline::StepStatus| {
        matches!(s.phase, StepPhase::Pending | StepPhase::Running)
    };
    let publishing = status
        .steps
        .iter()
        .any(|s| s.name == PUBLISH_STEP && active(s));
    let tasks_started = status
        .steps
        .iter()
        .any(|s| s.name != FETCH_STEP && s.name != PUBLISH_STEP && s.attempt > 0);
    if publishing {
        watch.phase(RunPhase::Publishing);
    } else if tasks_started {
        watch.phase(RunPhase::Running);
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
    watch.steps(status);
}
