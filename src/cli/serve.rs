//! `cairn serve`: the webhook service. With `--repo`, the embedded default
//! (one local git repository, local processes, its own DVC remote); without
//! it, the GitHub repositories of the settings.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use tokio_util::sync::CancellationToken;

use cairn::backend::{KubeBackend, LocalBackend, RunBackend, TaskEnv};
use cairn::github::{GitHub, Secret};
use cairn::http::{self, Dedup, Parts};
use cairn::metrics::Metrics;
use cairn::service::{self, GitHubHost, Host, LocalHost, Service, ServiceOptions};
use cairn::settings::{self, Env, Flags, GithubAuth, Settings};

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  CAIRN_WEBHOOK_SECRET=... cairn serve --repo .          # one local repository, no GitHub
  CAIRN_WEBHOOK_SECRET=... CAIRN_GITHUB_TOKEN=... cairn serve --config config/cairn.toml

Environment: CAIRN_WEBHOOK_SECRET(_FILE), CAIRN_GITHUB_TOKEN(_FILE), CAIRN_GITHUB_APP_ID,
CAIRN_GITHUB_APP_KEY_FILE, CAIRN_GITHUB_API_URL, CAIRN_LISTEN, CAIRN_DATA_DIR, CAIRN_CONFIG,
CAIRN_LOG_FORMAT (text|json), CAIRN_LOG (log filter), CAIRN_API_TOKEN (the run API),
CAIRN_CATCHUP_WINDOW, CAIRN_COMMANDS_MIN_PERMISSION, CAIRN_COMMANDS_ALLOW_FORKS, CAIRN_EXECUTOR (local|kubernetes),
CAIRN_KUBERNETES_NAMESPACE.

Pages: GET / (the dashboard: pipelines, runs, versions), /healthz, /readyz, /metrics,
/api/v1/runs/ID (JSON), /api/v1/pipelines/NAME/runs (GET, and POST with the API token).
Deliveries: POST /webhook.

Exit status: 0 after a clean shutdown (SIGTERM or Ctrl-C), 1 when it cannot start (settings,
listen address, GitHub credentials), 2 for bad usage.")]
pub struct ServeArgs {
    /// Address to listen on (default from the settings, 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Serve this local git repository instead of GitHub repositories.
    #[arg(long)]
    repo: Option<PathBuf>,
    /// The settings file (default: $CAIRN_CONFIG, else built-in defaults).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Accept webhook deliveries without a signature when no secret is set.
    /// Anyone who can reach the port can then start runs: local experiments only.
    #[arg(long)]
    insecure_no_signature: bool,
    /// Parallel transfers to and from remotes.
    #[arg(long, default_value_t = cairn::dataset::default_jobs())]
    jobs: usize,
}

pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let env = Env::from_process();
    let flags = Flags {
        config: args.config.clone(),
        insecure_no_signature: args.insecure_no_signature,
    };
    let mut settings = Settings::load(&flags, &env)?;
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    settings::init_tracing(settings.log_format, &env, "info")?;
    let redact = secrets_to_hide(&settings, &env);
    let runtime = super::runtime()?;
    runtime.block_on(run(args, settings, redact))
}

/// The service's secrets as values, so the dashboard can hide them in the
/// log tails it shows: local tasks inherit the service's environment, and a
/// task that prints it must not publish them.
fn secrets_to_hide(settings: &Settings, env: &Env) -> Vec<Secret> {
    let mut out: Vec<Secret> = [settings::WEBHOOK_SECRET_ENV, settings::GITHUB_TOKEN_ENV]
        .into_iter()
        .filter_map(|var| env.get(var))
        .map(Secret::new)
        .collect();
    if let Some(GithubAuth::Token(token)) = &settings.github.auth {
        out.push(token.clone());
    }
    out
}

async fn run(args: ServeArgs, settings: Settings, redact: Vec<Secret>) -> anyhow::Result<ExitCode> {
    let shutdown = CancellationToken::new();
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down: finishing requests, stopping runs");
            shutdown.cancel();
        });
    }
    let metrics = Arc::new(Metrics::new());
    let options = ServiceOptions {
        public_url: settings.public_url.clone(),
        resync_interval: settings.resync_interval,
        jobs: args.jobs.max(1),
        bot_login: None,
        catchup_window: settings.catchup_window,
        access: cairn::commands::AccessPolicy {
            min_permission: settings.commands.min_permission,
            allow_forks: settings.commands.allow_forks,
        },
        api_token: settings.api.token.clone(),
        max_active_runs: settings
            .max_active_runs
            .unwrap_or_else(service::default_max_active_runs),
    };
    // Where the steps of every run execute: chosen once, here.
    let backend: Arc<dyn RunBackend> = match settings.executor {
        settings::ExecutorKind::Kubernetes => {
            let client = kube::Client::try_default()
                .await
                .context("executor = \"kubernetes\": cannot reach the Kubernetes API (in-cluster config or kubeconfig)")?;
            let namespace = &settings.kubernetes.namespace;
            tracing::info!(%namespace, "runs go to Kubernetes as PipelineRuns");
            Arc::new(KubeBackend::new(
                cairn::k8s::runs::Runs::new(client, namespace),
                shutdown.clone(),
                replica_name(),
            ))
        }
        settings::ExecutorKind::Local => {
            let env =
                TaskEnv::from_process(&settings.tasks.pass_env).context("[tasks] pass_env")?;
            Arc::new(LocalBackend::new(None, cairn::pipeline::Limits::default()).with_env(env))
        }
    };
    let service = Service::new(options, Arc::clone(&metrics), backend, shutdown.clone());
    // Orphans of tasks are re-parented to cairn (a child subreaper), and
    // in a container cairn is PID 1, which every orphan reaches: reap them.
    cairn::backend::tree::only_tasks_are_children();
    tokio::spawn(cairn::backend::tree::reap_until(shutdown.clone()));

    let data_dir = match &args.repo {
        Some(repo) => {
            let host = LocalHost::new(repo.clone())?;
            let dir = host.state_dir();
            service.serve(Arc::new(host))?;
            dir
        }
        None => {
            let gh = github_client(&settings, &metrics)?;
            let repos = service::github_repositories(&gh, &settings.github.repositories)
                .await
                .context("listing the repositories to serve")?;
            if repos.is_empty() {
                bail!(
                    "no repository to serve: list them in `[github] repositories` of the \
                     settings file, or install the GitHub App on some"
                );
            }
            for client in repos {
                let host = GitHubHost::new(client, &settings.data_dir, settings.github.merge_wait);
                service.serve(Arc::new(host))?;
            }
            if settings.github.repositories.is_empty() {
                // An App gains repositories while it runs: look again on
                // every resync.
                tokio::spawn(discover(
                    gh,
                    Arc::clone(&service),
                    settings.clone(),
                    shutdown.clone(),
                ));
            }
            settings.data_dir.clone()
        }
    };
    tracing::info!(repositories = ?service.served(), "serving");

    let dedup = Arc::new(
        Dedup::open(&data_dir, settings.webhook.dedup_capacity)
            .with_context(|| format!("opening the delivery log in {}", data_dir.display()))?,
    );
    let app = http::app(
        Parts::new(
            settings.webhook.secret.clone(),
            Arc::clone(&dedup),
            Arc::clone(&service) as Arc<dyn http::EventSink>,
            Arc::clone(&service) as Arc<dyn http::Readiness>,
            Arc::clone(&metrics),
        )
        .with_limits((&settings.webhook).into())
        .with_run_api(Arc::clone(&service))
        .with_dashboard(
            Arc::clone(&service) as Arc<dyn service::ReadModel>,
            http::dashboard::Options { redact },
        ),
    );
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    // Tests and scripts read the bound address (the port may be 0).
    eprintln!("cairn: listening on http://{}", listener.local_addr()?);
    http::serve(listener, app, shutdown.clone().cancelled_owned()).await?;
    shutdown.cancel();
    service.stopped().await;
    dedup.close();
    Ok(ExitCode::SUCCESS)
}

async fn discover(
    gh: GitHub,
    service: Arc<Service>,
    settings: Settings,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(settings.resync_interval) => {}
            _ = shutdown.cancelled() => return,
        }
        match service::github_repositories(&gh, &[]).await {
            Ok(repos) => {
                for client in repos {
                    let host =
                        GitHubHost::new(client, &settings.data_dir, settings.github.merge_wait);
                    if let Err(e) = service.serve(Arc::new(host)) {
                        tracing::warn!("serving a newly installed repository: {e}");
                    }
                }
            }
            Err(e) => tracing::warn!("listing the App's repositories: {e}"),
        }
    }
}

fn github_client(settings: &Settings, metrics: &Arc<Metrics>) -> anyhow::Result<GitHub> {
    let builder = GitHub::builder(settings.github.api_url.clone());
    let builder = match &settings.github.auth {
        Some(GithubAuth::Token(token)) => builder.token(token.clone()),
        Some(GithubAuth::App {
            app_id,
            private_key,
            ..
        }) => builder.app(*app_id, private_key.clone()),
        None => bail!(
            "no GitHub credentials: set CAIRN_GITHUB_TOKEN (or CAIRN_GITHUB_TOKEN_FILE), or \
             CAIRN_GITHUB_APP_ID with CAIRN_GITHUB_APP_KEY_FILE; or serve a local repository \
             with --repo"
        ),
    };
    let metrics = Arc::clone(metrics);
    Ok(builder
        .on_call(Arc::new(move |call: &cairn::github::ApiCall| {
            metrics.github_call(call.status)
        }))
        .build()?)
}

pub(super) async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// This replica's name: its pod's (`HOSTNAME`, which Kubernetes sets to the
/// pod name and keeps across container restarts), else the machine's.
fn replica_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("cairn-{}", std::process::id()))
}
