//! Service settings for `cairn serve`: a TOML file, overlaid by environment
//! variables, overlaid by command-line flags -> a validated [`Settings`].
//!
//! Layers, each overriding the one before:
//! 1. defaults (below, and in `config/cairn.toml`, the documented example);
//! 2. the settings file named by `--config` or `CAIRN_CONFIG`; with neither,
//!    there is no file and the defaults stand (a named file that cannot be
//!    read is an error: a typo must not silently mean "defaults");
//! 3. environment variables: `CAIRN_<KEY>` for a top-level key,
//!    `CAIRN_<TABLE>_<KEY>` for a key of a table such as `[webhook]` (so
//!    `[webhook] body_limit` is `CAIRN_WEBHOOK_BODY_LIMIT`); an empty
//!    variable counts as unset, except `CAIRN_WEBHOOK_SECRET` and
//!    `CAIRN_GITHUB_TOKEN`, where an empty value is an error (it is always a
//!    mistake, and would otherwise silently fall back to another source);
//! 4. [`Flags`]: the one setting only a flag can give, `--insecure-no-signature`.
//!
//! Secrets never come from the settings file, which is meant to be committed
//! and shared: the webhook secret from `CAIRN_WEBHOOK_SECRET` or a file named
//! by `CAIRN_WEBHOOK_SECRET_FILE` (or `[webhook] secret_file`), a GitHub token
//! likewise (`CAIRN_GITHUB_TOKEN`, `..._FILE`, `[github] token_file`), the
//! GitHub App's private key from the PEM file `[github] app_key_file`. A
//! secret-looking key in the file is an error that says where to put it.
//! Loaded secrets are held in types whose `Debug` and `Display` hide them
//! ([`Secret`], [`WebhookSecret`]), so `{:?}` of [`Settings`] is safe to log.
//!
//! The environment is a parameter ([`Env`]), never read behind the caller's
//! back, so tests can give any environment without touching the process's.
//! Problems in the file are all reported at once, each at `file:line:col`;
//! a bad environment variable is named.
//!
//! Files: `layer.rs` holds the keys and how each value is parsed (the same
//! code for the file and the environment); `file.rs` walks the TOML;
//! `env.rs` the environment snapshot; `credentials.rs` where each secret
//! comes from; `secret.rs` the secret type; `logging.rs` installs the log
//! subscriber.

mod credentials;
mod env;
mod file;
mod layer;
mod logging;
mod secret;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use credentials::{api_token, github_auth, webhook_secret, Place};
use layer::{Layer, Origin, Raw, Set, KEYS};

use crate::config::Diagnostics;
use crate::github::Permission;
use crate::triggers::WebhookSecret;

pub use env::Env;
pub use logging::init_tracing;
pub use secret::Secret;

/// The environment variable naming the settings file (`--config` wins).
pub const CONFIG_ENV: &str = "CAIRN_CONFIG";
/// The webhook secret itself.
pub const WEBHOOK_SECRET_ENV: &str = "CAIRN_WEBHOOK_SECRET";
/// A GitHub token itself (instead of a GitHub App).
pub const GITHUB_TOKEN_ENV: &str = "CAIRN_GITHUB_TOKEN";
/// The log filter (`tracing` directives, e.g. `info,cairn=debug`).
pub const LOG_FILTER_ENV: &str = "CAIRN_LOG";

/// Defaults, also written out in `config/cairn.toml`.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
pub const DEFAULT_DATA_DIR: &str = ".cairn";
pub const DEFAULT_RESYNC_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// GitHub caps webhook payloads at 25 MB; 25 MiB leaves room.
pub const DEFAULT_BODY_LIMIT: u64 = 25 << 20;
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_DEDUP_CAPACITY: usize = 100_000;
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";
pub const DEFAULT_MERGE_WAIT: Duration = Duration::from_secs(10 * 60);
pub const DEFAULT_CATCHUP_WINDOW: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_MIN_PERMISSION: Permission = Permission::Write;
/// The bearer token of `POST /api/v1/pipelines/{name}/runs`.
pub const API_TOKEN_ENV: &str = "CAIRN_API_TOKEN";

/// Every settings key as `(table, key, environment variable)`; `table` is
/// `None` for the top level. For the reference (docs/configuration.md) and
/// its test.
pub fn keys() -> impl Iterator<Item = (Option<&'static str>, &'static str, &'static str)> {
    KEYS.iter().map(|k| (k.section, k.name, k.env))
}

/// Variables read from the environment only, never from the settings file.
pub const ENV_ONLY: &[&str] = &[
    CONFIG_ENV,
    WEBHOOK_SECRET_ENV,
    GITHUB_TOKEN_ENV,
    LOG_FILTER_ENV,
];

/// How log lines are written (`log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Where runs execute (`executor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutorKind {
    /// Local processes on the service's machine.
    #[default]
    Local,
    /// PipelineRuns on the Kubernetes cluster the service runs in (or its
    /// kubeconfig's), carried out by `cairn controller`.
    Kubernetes,
}

/// `[kubernetes]`: runs as PipelineRuns (`executor = "kubernetes"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesSettings {
    /// The namespace PipelineRuns are created in (`namespace`); the
    /// controller of that namespace runs them.
    pub namespace: String,
}

/// The namespace of PipelineRuns when none is set.
pub const DEFAULT_KUBERNETES_NAMESPACE: &str = "cairn";

/// Everything `cairn serve` needs to start, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address the HTTP server binds (`listen`).
    pub listen: SocketAddr,
    /// Where the service keeps its state (`data_dir`): the run store and the
    /// webhook dedup log.
    pub data_dir: PathBuf,
    /// The service's public base URL, without a trailing slash (`public_url`):
    /// links in commit statuses point under it. `None`: no links.
    pub public_url: Option<String>,
    pub log_format: LogFormat,
    /// How often every watched repository is reconciled even without a
    /// webhook (`resync_interval`): this recovers pushes whose delivery was
    /// lost.
    pub resync_interval: Duration,
    /// How far back a schedule looks for ticks missed while the service was
    /// down (`catchup_window`); older ones are skipped whatever the policy.
    pub catchup_window: Duration,
    pub webhook: WebhookSettings,
    pub github: GithubSettings,
    pub commands: CommandSettings,
    pub api: ApiSettings,
    pub tasks: TaskSettings,
    /// Where runs execute.
    pub executor: ExecutorKind,
    /// Runs doing work at once, over every pipeline (`max_active_runs`);
    /// `None`: the service picks from the machine's cores.
    pub max_active_runs: Option<usize>,
    pub kubernetes: KubernetesSettings,
    /// The settings file that was read, if any.
    pub file: Option<PathBuf>,
}

/// `[webhook]`: the intake of GitHub deliveries.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The secret shared with GitHub. `None` only when `--insecure-no-signature`
    /// was given and no secret was configured.
    pub secret: Option<WebhookSecret>,
    /// Largest body accepted (`body_limit`); larger deliveries get 413.
    pub body_limit: u64,
    /// Longest wait for a delivery's body (`body_timeout`).
    pub body_timeout: Duration,
    /// How many recent delivery ids are remembered (`dedup_capacity`).
    pub dedup_capacity: usize,
    /// How many accepted events may wait for the service (`queue_capacity`).
    pub queue_capacity: usize,
}

/// `[github]`: talking to GitHub.
#[derive(Debug, Clone)]
pub struct GithubSettings {
    /// REST API base URL without a trailing slash (`api_url`); GitHub
    /// Enterprise Server is `https://HOST/api/v3`.
    pub api_url: String,
    /// How cairn authenticates; `None` when nothing was configured.
    pub auth: Option<GithubAuth>,
    /// `owner/name` of the repositories to act on (`repositories`); empty:
    /// every repository the App is installed on.
    pub repositories: Vec<String>,
    /// How long auto-merge waits for required checks (`merge_wait`).
    pub merge_wait: Duration,
}

/// `[commands]`: who may use `/cairn` comment commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSettings {
    /// The weakest role on the repository that may use them
    /// (`min_permission`); `/cairn help` is open to everyone.
    pub min_permission: Permission,
    /// Whether comments on pull requests from forks may start runs
    /// (`allow_forks`).
    pub allow_forks: bool,
}

/// `[api]`: the run-trigger API.
#[derive(Debug, Clone, Default)]
pub struct ApiSettings {
    /// The bearer token `POST /api/v1/pipelines/{name}/runs` requires;
    /// `None`: the route is disabled.
    pub token: Option<Secret>,
}

/// `[tasks]`: what local tasks get from the service.
#[derive(Debug, Clone, Default)]
pub struct TaskSettings {
    /// Variables of the service's environment passed to every task
    /// (`pass_env`); tasks get nothing else of it but PATH. Names of
    /// cairn's own secrets are refused when the service starts.
    pub pass_env: Vec<String>,
}

/// GitHub credentials.
#[derive(Debug, Clone)]
pub enum GithubAuth {
    /// A personal access or installation token.
    Token(Secret),
    /// A GitHub App: its id and private key (PEM).
    App {
        app_id: u64,
        key_file: PathBuf,
        private_key: Secret,
    },
}

/// Settings that only a command-line flag can give.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--config`: the settings file (else `CAIRN_CONFIG`, else none).
    pub config: Option<PathBuf>,
    /// `--insecure-no-signature`: accept deliveries without checking their
    /// signature when no webhook secret is configured. Only for local
    /// experiments: anyone who can reach the port can then start runs.
    pub insecure_no_signature: bool,
}

/// Why settings could not be loaded. `Display` is the whole message for the
/// user; none includes a secret.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read the settings file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Every problem of the settings file, each at `file:line:col`.
    #[error("{0}")]
    File(Diagnostics),
    #[error("{var}: {message}")]
    Env { var: &'static str, message: String },
    #[error("cannot read {what} from {} ({via}): {source}", path.display())]
    SecretFile {
        what: &'static str,
        via: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "no webhook secret: set CAIRN_WEBHOOK_SECRET, or CAIRN_WEBHOOK_SECRET_FILE (or \
         `[webhook] secret_file`) to a file holding it, with the secret configured on the \
         GitHub webhook; to accept unsigned deliveries for a local experiment, pass \
         --insecure-no-signature"
    )]
    MissingWebhookSecret,
    #[error("cannot set up logging: {0}")]
    Logging(String),
}

impl Settings {
    /// Reads the settings file named by `flags.config` or `CAIRN_CONFIG` (if
    /// any), then applies `env` and `flags`.
    pub fn load(flags: &Flags, env: &Env) -> Result<Settings, SettingsError> {
        let path = flags
            .config
            .clone()
            .or_else(|| env.get(CONFIG_ENV).map(PathBuf::from));
        let Some(path) = path else {
            return Self::build(None, flags, env);
        };
        let text = std::fs::read_to_string(&path).map_err(|source| SettingsError::Read {
            path: path.clone(),
            source,
        })?;
        Self::build(Some((&text, &path)), flags, env)
    }

    /// Like [`Settings::load`] with the file's text already read; `path`
    /// labels messages and is the base of relative paths in the file.
    pub fn from_toml(
        text: &str,
        path: &Path,
        flags: &Flags,
        env: &Env,
    ) -> Result<Settings, SettingsError> {
        Self::build(Some((text, path)), flags, env)
    }

    fn build(
        file: Option<(&str, &Path)>,
        flags: &Flags,
        env: &Env,
    ) -> Result<Settings, SettingsError> {
        let mut layer = Layer::default();
        if let Some((text, path)) = file {
            let base = path.parent().filter(|p| !p.as_os_str().is_empty());
            file::walk(text, &path.display().to_string(), base, &mut layer)
                .map_err(SettingsError::File)?;
        }
        for key in KEYS {
            if let Some(value) = env.get(key.env) {
                layer
                    .set(key, Raw::Str(value), Origin::Env(key.env), None)
                    .map_err(|message| SettingsError::Env {
                        var: key.env,
                        message,
                    })?;
            }
        }
        let at = Place { file };
        let webhook_secret = webhook_secret(&layer, env, flags, &at)?;
        let auth = github_auth(&layer, env, &at)?;
        let api_token = api_token(&layer, env, &at)?;
        fn value<T>(set: Option<Set<T>>) -> Option<T> {
            set.map(|s| s.value)
        }
        Ok(Settings {
            listen: value(layer.listen).unwrap_or(DEFAULT_LISTEN),
            data_dir: value(layer.data_dir).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            public_url: value(layer.public_url),
            log_format: value(layer.log_format).unwrap_or_default(),
            resync_interval: value(layer.resync_interval).unwrap_or(DEFAULT_RESYNC_INTERVAL),
            catchup_window: value(layer.catchup_window).unwrap_or(DEFAULT_CATCHUP_WINDOW),
            webhook: WebhookSettings {
                secret: webhook_secret,
                body_limit: value(layer.body_limit).unwrap_or(DEFAULT_BODY_LIMIT),
                body_timeout: value(layer.body_timeout).unwrap_or(DEFAULT_BODY_TIMEOUT),
                dedup_capacity: value(layer.dedup_capacity).unwrap_or(DEFAULT_DEDUP_CAPACITY),
                queue_capacity: value(layer.queue_capacity).unwrap_or(DEFAULT_QUEUE_CAPACITY),
            },
            github: GithubSettings {
                api_url: value(layer.api_url).unwrap_or_else(|| DEFAULT_GITHUB_API_URL.to_owned()),
                auth,
                repositories: value(layer.repositories).unwrap_or_default(),
                merge_wait: value(layer.merge_wait).unwrap_or(DEFAULT_MERGE_WAIT),
            },
            commands: CommandSettings {
                min_permission: value(layer.min_permission).unwrap_or(DEFAULT_MIN_PERMISSION),
                allow_forks: value(layer.allow_forks).unwrap_or(false),
            },
            api: ApiSettings { token: api_token },
            tasks: TaskSettings {
                pass_env: value(layer.pass_env).unwrap_or_default(),
            },
            executor: value(layer.executor).unwrap_or_default(),
            max_active_runs: value(layer.max_active_runs),
            kubernetes: KubernetesSettings {
                namespace: value(layer.namespace)
                    .unwrap_or_else(|| DEFAULT_KUBERNETES_NAMESPACE.to_owned()),
            },
            file: file.map(|(_, p)| p.to_path_buf()),
        })
    }
}
