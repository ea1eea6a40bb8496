//! `cairn controller`: the Kubernetes controller of PipelineRuns, run by
//! every replica and active only in the holder of the leader Lease.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use cairn::k8s::controller::{self, Context};
use cairn::k8s::lease::LeaderElection;
use cairn::k8s::throttle::Throttle;
use cairn::k8s::{ExecutorSettings, Workspace};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args, Debug)]
pub struct ControllerArgs {
    /// The namespace whose PipelineRuns this controller reconciles.
    #[arg(long, env = "CAIRN_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// This replica's name in the leader Lease (default: the host name).
    #[arg(long, env = "CAIRN_POD_NAME")]
    pub identity: Option<String>,
    /// cairn's own image, for the fetch and publish steps.
    #[arg(long, env = "CAIRN_IMAGE")]
    pub image: String,
    /// The service account of the fetch and publish steps (remote access).
    #[arg(
        long,
        env = "CAIRN_WORKER_SERVICE_ACCOUNT",
        default_value = "cairn-worker"
    )]
    pub worker_service_account: String,
    /// The shared workspace claim; each run uses its own sub-path of it.
    #[arg(long, env = "CAIRN_WORKSPACE_CLAIM", default_value = "cairn-workspace")]
    pub workspace_claim: String,
    /// Instead of the shared claim, a claim of this size per run (e.g. 20Gi),
    /// deleted when the run ends.
    #[arg(long, env = "CAIRN_WORKSPACE_SIZE")]
    pub per_run_workspace: Option<String>,
    /// Storage class of per-run claims (default: the cluster's).
    #[arg(long, env = "CAIRN_WORKSPACE_STORAGE_CLASS")]
    pub storage_class: Option<String>,
    /// How long a pod may stay Pending before its attempt fails.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub pending_timeout: Duration,
    /// How long failed pods are kept for inspection.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub keep_failed_pods: Duration,
    /// Most step pods of one run at once.
    #[arg(long, default_value_t = 8)]
    pub max_parallel: usize,
    /// Average API calls per second of reconciles, and the burst above it.
    #[arg(long, default_value_t = 20.0)]
    pub qps: f64,
    #[arg(long, default_value_t = 40)]
    pub burst: u32,
    /// How long the leader Lease holds without renewal.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub lease_duration: Duration,
}

pub fn controller(args: ControllerArgs) -> anyhow::Result<ExitCode> {
    let identity = match args.identity.clone() {
        Some(id) => id,
        None => std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| format!("cairn-{}", std::process::id())),
    };
    let workspace = match &args.per_run_workspace {
        Some(size) => Workspace::PerRun {
            storage_class: args.storage_class.clone(),
            size: size.clone(),
            access_mode: "ReadWriteOnce".into(),
        },
        None => Workspace::SharedClaim {
            claim: args.workspace_claim.clone(),
        },
    };
    let settings = ExecutorSettings {
        cairn_image: args.image.clone(),
        worker_service_account: args.worker_service_account.clone(),
        workspace,
        pending_timeout: args.pending_timeout,
        keep_failed_pods: args.keep_failed_pods,
        max_parallel: args.max_parallel,
        ..ExecutorSettings::default()
    };
    super::runtime()?.block_on(async move {
        let client = kube::Client::try_default()
            .await
            .context("cannot reach the Kubernetes API (in-cluster config or kubeconfig)")?;
        let ctx = Arc::new(Context {
            client: client.clone(),
            namespace: args.namespace.clone(),
            settings,
            throttle: Throttle::new(args.qps, args.burst),
            identity: identity.clone(),
        });
        let election = LeaderElection::new(
            client,
            &args.namespace,
            "cairn-controller",
            &identity,
            args.lease_duration,
        );
        let stop = CancellationToken::new();
        let on_signal = stop.clone();
        tokio::spawn(async move {
            super::serve::wait_for_signal().await;
            on_signal.cancel();
        });
        tracing::info!("{identity} runs for leader of namespace {}", args.namespace);
        election
            .run(stop, move |token| controller::run(Arc::clone(&ctx), token))
            .await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
