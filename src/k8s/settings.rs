//! How the Kubernetes executor runs steps: the parts that are the cluster
//! operator's choice rather than the pipeline author's.

use std::time::Duration;

/// Where a run's workspace lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workspace {
    /// An existing claim (ReadWriteMany for steps on different nodes), with a
    /// sub-path `runs/<run>` per run.
    SharedClaim { claim: String },
    /// A claim made for each run from this template and deleted after it.
    PerRun {
        storage_class: Option<String>,
        /// A quantity such as `10Gi`.
        size: String,
        /// `ReadWriteOnce` keeps every step of a run on one node.
        access_mode: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorSettings {
    /// The image of cairn itself, for the fetch and publish steps.
    pub cairn_image: String,
    pub cairn_image_pull_secrets: Vec<String>,
    /// The service account of the fetch and publish steps: the one with
    /// access to the remote (IRSA or EKS Pod Identity).
    pub worker_service_account: String,
    pub workspace: Workspace,
    /// `fsGroup` of every step pod, so a non-root image can write the volume.
    pub fs_group: i64,
    /// How long a pod may stay Pending (unschedulable, pulling) before its
    /// attempt fails. Separate from a task's timeout, which counts running time.
    pub pending_timeout: Duration,
    /// Delay before the first retry; doubled for each further one.
    pub retry_backoff: Duration,
    pub max_backoff: Duration,
    /// Most step pods of one run at the same time.
    pub max_parallel: usize,
    /// Extra attempts of the fetch and publish steps.
    pub step_retries: u32,
    /// Lines of output captured into the run's status before a pod goes.
    pub log_tail_lines: u32,
    /// How long a failed pod is kept for inspection; successful ones are
    /// deleted as soon as their logs are captured.
    pub keep_failed_pods: Duration,
    /// How often the leader looks for pods whose run is gone.
    pub orphan_sweep: Duration,
}

impl Default for ExecutorSettings {
    fn default() -> Self {
        ExecutorSettings {
            cairn_image: "ghcr.io/cairn-dev/cairn:latest".into(),
            cairn_image_pull_secrets: Vec::new(),
            worker_service_account: "cairn-worker".into(),
            workspace: Workspace::SharedClaim {
                claim: "cairn-workspace".into(),
            },
            fs_group: 65532,
            pending_timeout: Duration::from_secs(600),
            retry_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(300),
            max_parallel: 8,
            step_retries: 2,
            log_tail_lines: 40,
            keep_failed_pods: Duration::from_secs(24 * 3600),
            orphan_sweep: Duration::from_secs(600),
        }
    }
}
