//! Where a run's steps execute: the seam between the one run path
//! ([`crate::reconciler`]) and the two places steps can run.
//!
//! - [`LocalBackend`]: tasks as local processes, fetch and publish in this
//!   process (the embedded default, `cairn run`, `cairn serve --repo`);
//! - [`KubeBackend`]: every step as a pod, carried out by the controller
//!   from a `PipelineRun` (`cairn serve` with a cluster).
//!
//! One is chosen when the program starts. Both drive the same run state
//! machine ([`crate::pipeline`]), so retries, timeouts and cancel are the
//! machine's rules on both; the reconciler holds the rest of a run (its
//! record, the run permit, the workspace's source tree, delivery) above
//! this seam. A backend reports each new status of the steps through a
//! [`Watch`], which is how the run store and the dashboard see a run the
//! same way wherever it ran.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::Pipeline;
use crate::dataset::{PublishReport, TransferOptions};
use crate::dvc::Output;
use crate::pipeline::{RunStatus, StepPhase, StepStatus};
use crate::remote::Remote;

mod env;
mod kube;
mod local;
pub mod process;
pub mod tree;

pub use env::{TaskEnv, TaskEnvError};
pub use kube::KubeBackend;
pub use local::LocalBackend;
pub use process::{LineSink, StderrSink};

/// One run, resolved at its source commit, as a backend carries it out.
pub struct RunJob<'a> {
    pub run_id: &'a str,
    pub pipeline: &'a Pipeline,
    pub commit: &'a str,
    /// What started it: `push`, `schedule`, `cli`...
    pub reason: &'a str,
    pub remote: &'a Arc<dyn Remote>,
    /// The version the pointer names at the source commit.
    pub old: Option<&'a Output>,
    /// The repository at the source commit, laid out by the reconciler
    /// (`<run>/workspace`): the workspace of local tasks, the source tree a
    /// cluster's fetch step restores.
    pub tree: &'a Path,
    /// Where each attempt's log goes (`<run>/logs`).
    pub logs: &'a Path,
    pub transfer: TransferOptions,
}

/// What the steps produced: the published version, wherever they ran.
pub struct Executed {
    pub published: PublishReport,
    /// The new version on disk, for the table diff; `None` when the steps
    /// ran elsewhere (a cluster) and only the remote has it.
    pub data_path: Option<PathBuf>,
}

/// Where a run is, as a backend reports it. The reconciler records it.
pub trait Watch: Send + Sync {
    /// The run moved to `phase` (fetching, running tasks, publishing).
    fn phase(&self, phase: crate::store::RunPhase);
    /// The steps' status changed.
    fn steps(&self, status: &RunStatus);
}

#[async_trait::async_trait]
pub trait RunBackend: Send + Sync {
    /// Carries `job`'s steps to their end: fetch the current version, run
    /// the tasks, publish the output. `cancel` stops the run.
    async fn execute(
        &self,
        job: &RunJob<'_>,
        watch: &dyn Watch,
        cancel: &CancellationToken,
    ) -> Result<Executed, BackendError>;

    /// Whether a run goes on without the process that started it (a
    /// cluster's does: a restarted service follows it again), rather than
    /// dying with it (a local run is run again).
    fn outlives_the_service(&self) -> bool;

    /// Who delivers run `run_id`, whose steps are done. Several processes
    /// may follow one run (replicas of the service on one cluster), and
    /// exactly one may hand its pointer to the forge. A local run has only
    /// the process that ran it.
    async fn claim_delivery(&self, _run_id: &str) -> Result<Deliverer, BackendError> {
        Ok(Deliverer::Us)
    }

    /// Says that this process delivered run `run_id`.
    async fn delivered(&self, _run_id: &str) -> Result<(), BackendError> {
        Ok(())
    }
}

/// Who hands a finished run's pointer to the forge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deliverer {
    Us,
    /// Another replica of the service (by its name) delivers or delivered it.
    Other {
        by: String,
    },
}

/// What stops a run's steps.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Steps failed for good; one line (and its last output) per step.
    #[error("{}", .reasons.join("\n"))]
    StepsFailed { reasons: Vec<String> },
    #[error("{reason}")]
    Cancelled { reason: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("fetch: {0}")]
    Fetch(#[from] crate::dataset::FetchError),
    #[error(transparent)]
    Link(#[from] crate::dataset::LinkError),
    #[error("publish: {0}")]
    Publish(#[from] crate::dataset::PublishError),
    #[error(transparent)]
    Remote(#[from] crate::remote::RemoteError),
    #[error(transparent)]
    DvcConfig(#[from] crate::dvc::ConfigError),
    #[error(transparent)]
    Kube(#[from] crate::k8s::Error),
    /// The publish step reported a version that cannot be used.
    #[error("{pointer}: {reason}")]
    BadResult { pointer: String, reason: String },
}

impl BackendError {
    fn io(path: &Path, source: std::io::Error) -> BackendError {
        BackendError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// The error of a finished run whose steps did not all succeed: one line
/// per failed step, `task "x" failed: exited with status 1 (log: ...)`
/// plus the last lines it printed, so the reason is on screen without
/// opening a file.
pub(crate) fn failure(status: &RunStatus, logs: &Path) -> BackendError {
    if status.phase == crate::pipeline::RunPhase::Cancelled {
        return BackendError::Cancelled {
            reason: status
                .message
                .clone()
                .unwrap_or_else(|| "the run was cancelled".into()),
        };
    }
    let mut reasons: Vec<String> = status
        .steps
        .iter()
        .filter(|s| s.phase == StepPhase::Failed)
        .map(|s| describe_failure(s, logs))
        .collect();
    if reasons.is_empty() {
        reasons.push(
            status
                .message
                .clone()
                .unwrap_or_else(|| "the run failed".to_string()),
        );
    }
    BackendError::StepsFailed { reasons }
}

fn describe_failure(step: &StepStatus, logs: &Path) -> String {
    let what = if step.name.starts_with("cairn.") {
        format!("step {}", step.name)
    } else {
        format!("task {:?}", step.name)
    };
    let why = step
        .message
        .as_deref()
        .filter(|m| !m.is_empty())
        .or(step.reason.as_deref())
        .unwrap_or("failed");
    let mut text = format!(
        "{what} failed: {why} (attempt {}; log: {})",
        step.attempt,
        log_path(logs, &step.name, step.attempt).display()
    );
    let tail: Vec<&String> = step.log_tail.iter().rev().take(5).collect();
    for line in tail.into_iter().rev() {
        text.push_str("\n    | ");
        text.push_str(line);
    }
    text
}

/// `logs/<step>.<attempt>.log`: where an attempt's output is kept.
pub fn log_path(logs: &Path, step: &str, attempt: u32) -> PathBuf {
    logs.join(format!("{step}.{attempt}.log"))
}

/// Runs a transfer step unless the run is cancelled first (a `replace`, a
/// `/cairn cancel`, shutdown): a large dataset would otherwise hold the slot
/// until it is done. Stopping half-way is safe: a fetch writes temporary
/// files inside the run's workspace, which goes; a publish uploads the
/// `.dir` manifest last and aborts its open multipart uploads, so the remote
/// only gains content-addressed objects no pointer names yet.
pub(crate) async fn unless_cancelled<T, E>(
    cancel: &CancellationToken,
    step: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, BackendError>
where
    BackendError: From<E>,
{
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(BackendError::Cancelled {
            reason: "the run was cancelled".into(),
        }),
        result = step => Ok(result?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset;
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
            matches!(result, Err(BackendError::Cancelled { .. })),
            "{:?}",
            result.map(|r| r.output.id)
        );
        remote.flush().await.unwrap();
        assert_eq!(remote.missing(&[manifest]).await.unwrap(), [manifest]);

        // Cancelled before it starts: it does not start.
        let started = std::sync::atomic::AtomicBool::new(false);
        let step = async {
            started.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok::<(), BackendError>(())
        };
        assert!(unless_cancelled(&cancel, step).await.is_err());
        assert!(!started.load(std::sync::atomic::Ordering::SeqCst));
    }
}
