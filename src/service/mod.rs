//! `cairn serve`'s engine: one worker per served repository, woken by
//! webhooks and by a periodic resync, that brings the repository's datasets
//! up to date with its default branch.
//!
//! The design choice that makes it robust: a push delivery carries no work of
//! its own, it only wakes the repository's worker. The worker replays the
//! commits between the last one it reconciled (persisted) and the branch tip
//! from its own mirror, and decides from those commits what to run. So a
//! delivery that was lost, duplicated or truncated (GitHub lists at most 20
//! commits) changes nothing but the delay, and a burst of pushes collapses
//! into one reconcile of the newest tip (a [`Notify`] holds one wake-up).
//!
//! A reconcile, in order: sync the mirror; load pipelines.toml at the tip
//! (broken: a failing `cairn/config` status, the last good config stays in
//! force); pick the pipelines whose `on_push` matches what people changed
//! ([`plan`]); hand each to its pipeline's run slot ([`slots`]), which runs
//! it through [`crate::reconciler::run`] with a commit status; then record
//! the tip as reconciled.
//!
//! Besides pushes, runs come from the clock (each pipeline's `schedule`,
//! fired by a timer of the worker at the next tick: `runs.rs`), from
//! `/cairn` comment commands (`commands.rs`) and from the API (`api.rs`).
//! Every trigger goes through the same per-pipeline slot, so the pipeline's
//! `concurrency` policy holds whatever started the run.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backend::RunBackend;
use crate::commands::AccessPolicy;
use crate::config::{Config, Diagnostics};
use crate::github::Secret;
use crate::metrics::Metrics;
use crate::reconciler::{self, RunContext, RunError, RunRequest, RunSummary};
use crate::store::{Reconciled, RunPhase, Store, StoreError};
use crate::triggers::Event;

pub mod api;
mod clock;
mod commands;
mod github;
mod host;
pub mod plan;
mod read_model;
mod runs;
pub mod slots;

pub use clock::{Clock, ManualClock, SystemClock};
pub use github::{github_repositories, GitHubHost};
pub use host::{Host, HostError, LocalHost, Status, StatusState, Tip};
pub use read_model::{PointerCommit, ReadError, ReadModel, ServedRepo, Snapshot};

/// Marks runs a restart interrupted; such a run is tried again.
const INTERRUPTED: &str = "interrupted: the service stopped during the run";
/// Most attempts at one (pipeline, commit): the first and two re-runs after
/// interruptions.
const MAX_RUNS_PER_COMMIT: usize = 3;
/// `pull_request` events waiting per repository; beyond this the delivery
/// is refused (the resync does not recover these, so they are not dropped
/// silently).
const PULL_EVENTS_CAPACITY: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    // Boxed: the forge's errors are large, and this error is rare.
    #[error(transparent)]
    Host(Box<HostError>),
    #[error("{repo}: {source}")]
    Store { repo: String, source: StoreError },
    #[error("{repo}: {path}: {source}")]
    Io {
        repo: String,
        path: String,
        source: std::io::Error,
    },
}

impl From<HostError> for ServiceError {
    fn from(e: HostError) -> ServiceError {
        ServiceError::Host(Box::new(e))
    }
}

/// Why an event could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("too many pull request events are waiting for {repo}")]
    Full { repo: String },
    #[error("the service is shutting down")]
    ShuttingDown,
}

/// What the service did with an event, for the intake's answer and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// The repository's worker will reconcile.
    Woken { repo: String },
    /// Nothing to do, and why.
    Ignored(String),
}

/// Settings of the service's behaviour (the CLI builds them from the
/// service settings).
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Base URL of this service, for links in commit statuses.
    pub public_url: Option<String>,
    /// How often each repository is reconciled without a webhook.
    pub resync_interval: Duration,
    /// Parallel transfers to and from remotes.
    pub jobs: usize,
    /// The login cairn's own pushes come from (`name[bot]` for an App):
    /// its pushes never start runs.
    pub bot_login: Option<String>,
    /// How far back schedules look for ticks missed during downtime.
    pub catchup_window: Duration,
    /// Who may use `/cairn` comment commands.
    pub access: AccessPolicy,
    /// The bearer token of the run API; `None` disables it.
    pub api_token: Option<Secret>,
    /// Runs doing work at once, over every pipeline and repository (at
    /// least 1); more are recorded as `queued` and wait their turn in
    /// arrival order. [`default_max_active_runs`] suits a machine that runs
    /// the tasks itself.
    pub max_active_runs: usize,
}

/// Twice the cores, at least 4: tasks run on this machine, and a run also
/// spends time in git and on the network, not only on the CPU.
pub fn default_max_active_runs() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (2 * cores).max(4)
}

pub struct Service {
    options: ServiceOptions,
    clock: Arc<dyn Clock>,
    /// Itself, for tasks spawned from `&self` (comment commands).
    me: std::sync::Weak<Service>,
    comments_in_flight: std::sync::atomic::AtomicUsize,
    metrics: Arc<Metrics>,
    /// Where every run's steps execute, chosen when the program started.
    backend: Arc<dyn RunBackend>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    /// The `max_active_runs` permits every run takes before it works.
    run_permits: Arc<tokio::sync::Semaphore>,
    /// By lower-cased `owner/name` (GitHub names are case-insensitive).
    repos: RwLock<HashMap<String, Arc<Worker>>>,
}

struct Worker {
    host: Arc<dyn Host>,
    store: Arc<Store>,
    runs_dir: PathBuf,
    wake: Notify,
    pulls: Mutex<VecDeque<PullClosed>>,
    health: Mutex<Health>,
    /// One slot per pipeline: every trigger's runs go through it.
    runs: Arc<slots::Dispatcher<runs::Job>>,
    /// The config in force and the commit it applies to, once loaded:
    /// schedules, commands and the API start runs from it.
    current: Mutex<Option<runs::Loaded>>,
    /// Runs a previous process left unfinished, to run again once the
    /// config is loaded.
    resume: Mutex<Vec<crate::store::Intent>>,
    /// Pipelines with a next-fire gauge on /metrics.
    scheduled: Mutex<BTreeSet<String>>,
}

#[derive(Debug, Clone)]
struct PullClosed {
    number: u64,
    merged: bool,
    head_ref: String,
}

#[derive(Debug, Clone, Default)]
struct Health {
    /// A pipelines.toml has been loaded (valid) at least once.
    config_loaded: bool,
    last_error: Option<String>,
}

impl Service {
    pub fn new(
        options: ServiceOptions,
        metrics: Arc<Metrics>,
        backend: Arc<dyn RunBackend>,
        shutdown: CancellationToken,
    ) -> Arc<Service> {
        Self::with_clock(options, metrics, backend, shutdown, Arc::new(SystemClock))
    }

    /// [`Service::new`] with the clock schedules read (tests set the time).
    pub fn with_clock(
        options: ServiceOptions,
        metrics: Arc<Metrics>,
        backend: Arc<dyn RunBackend>,
        shutdown: CancellationToken,
        clock: Arc<dyn Clock>,
    ) -> Arc<Service> {
        let run_permits = Arc::new(tokio::sync::Semaphore::new(options.max_active_runs.max(1)));
        Arc::new_cyclic(|me| Service {
            run_permits,
            options,
            clock,
            me: me.clone(),
            comments_in_flight: std::sync::atomic::AtomicUsize::new(0),
            metrics,
            backend,
            shutdown,
            tasks: TaskTracker::new(),
            repos: RwLock::new(HashMap::new()),
        })
    }

    /// Start serving a repository: open its store, fail the runs a previous
    /// process left unfinished, and start its worker (which reconciles at
    /// once). Serving a repository twice is a no-op.
    pub fn serve(self: &Arc<Self>, host: Arc<dyn Host>) -> Result<(), ServiceError> {
        let key = host.name().to_lowercase();
        if self.repos().contains_key(&key) {
            return Ok(());
        }
        let repo = host.name().to_string();
        let state_dir = host.state_dir();
        std::fs::create_dir_all(&state_dir).map_err(|source| ServiceError::Io {
            repo: repo.clone(),
            path: state_dir.display().to_string(),
            source,
        })?;
        let ignore = state_dir.join(".gitignore");
        if !ignore.exists() {
            // In local mode the state lives inside the served checkout.
            let _ = std::fs::write(&ignore, "# cairn's run state; not versioned\n*\n");
        }
        let store =
            Store::open(&state_dir.join("cairn.db")).map_err(|source| ServiceError::Store {
                repo: repo.clone(),
                source,
            })?;
        let store_err = |source| ServiceError::Store {
            repo: repo.clone(),
            source,
        };
        if self.backend.outlives_the_service() {
            // The cluster kept running them: each is followed to its end
            // (from its intent, below), never failed or started twice.
            let unfinished = store.unfinished_runs().map_err(store_err)?;
            if !unfinished.is_empty() {
                let ids: Vec<&str> = unfinished.iter().map(|r| r.id.as_str()).collect();
                tracing::info!(%repo, runs = ?ids, "following the cluster's runs a restart left");
            }
        } else {
            let interrupted = store.fail_interrupted(INTERRUPTED).map_err(store_err)?;
            if !interrupted.is_empty() {
                tracing::warn!(%repo, runs = ?interrupted, "runs interrupted by a restart will run again");
            }
        }
        // Every run accepted and not finished: the interrupted (or, on a
        // cluster, still running) ones, and those that were waiting or not
        // yet recorded when the process died.
        let resume = store.intents().map_err(store_err)?;
        let service = Arc::downgrade(self);
        let worker = Arc::new_cyclic(|me: &std::sync::Weak<Worker>| {
            let me = me.clone();
            let runner: slots::Runner<runs::Job> = Arc::new(
                move |id: String, job: runs::Job, cancel: CancellationToken| {
                    let (service, worker) = (service.clone(), me.clone());
                    let run: slots::BoxFuture = Box::pin(async move {
                        let (Some(service), Some(worker)) = (service.upgrade(), worker.upgrade())
                        else {
                            return;
                        };
                        service.execute(&worker, id, job, cancel).await;
                        // A schedule backfill waiting for the slot goes on.
                        worker.wake.notify_one();
                    });
                    run
                },
            );
            Worker {
                host,
                store: Arc::new(store),
                runs_dir: state_dir.join("runs"),
                wake: Notify::new(),
                pulls: Mutex::new(VecDeque::new()),
                health: Mutex::new(Health::default()),
                runs: slots::Dispatcher::new(runner, self.tasks.clone(), self.shutdown.clone()),
                current: Mutex::new(None),
                resume: Mutex::new(resume),
                scheduled: Mutex::new(BTreeSet::new()),
            }
        });
        self.repos_mut().insert(key, Arc::clone(&worker));
        let service = Arc::clone(self);
        self.tasks.spawn(async move { service.work(worker).await });
        Ok(())
    }

    /// Names of the served repositories.
    pub fn served(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .repos()
            .values()
            .map(|w| w.host.name().to_string())
            .collect();
        names.sort();
        names
    }

    /// Ask a repository's worker to reconcile now (coalesced).
    pub fn wake(&self, repo: &str) -> bool {
        match self.repos().get(&repo.to_lowercase()) {
            Some(worker) => {
                worker.wake.notify_one();
                true
            }
            None => false,
        }
    }

    /// Take one webhook event. Never blocks: it only wakes a worker or
    /// queues a small record.
    pub fn accept(&self, event: &Event) -> Result<Accepted, Rejected> {
        if self.shutdown.is_cancelled() {
            return Err(Rejected::ShuttingDown);
        }
        let ignored = |why: String| Ok(Accepted::Ignored(why));
        match event {
            Event::Push(push) => {
                let repo = &push.repo.full_name;
                if push.is_by_cairn() {
                    return ignored("a push by cairn itself".into());
                }
                if self
                    .options
                    .bot_login
                    .as_deref()
                    .is_some_and(|bot| bot.eq_ignore_ascii_case(&push.sender.login))
                {
                    return ignored(format!("a push by {}", push.sender.login));
                }
                if !push.is_default_branch() {
                    return ignored(format!("{} is not the default branch", push.git_ref));
                }
                if self.wake(repo) {
                    Ok(Accepted::Woken { repo: repo.clone() })
                } else {
                    ignored(format!("{repo} is not served here"))
                }
            }
            Event::PullRequest(pr) => {
                use crate::triggers::PullRequestAction;
                if pr.action != PullRequestAction::Closed {
                    return ignored(format!("pull_request {}", pr.action.as_str()));
                }
                if !pr.head_ref.starts_with("cairn/") || pr.is_from_fork() {
                    return ignored("not a pull request of cairn's".into());
                }
                let repos = self.repos();
                let Some(worker) = repos.get(&pr.repo.full_name.to_lowercase()) else {
                    return ignored(format!("{} is not served here", pr.repo.full_name));
                };
                {
                    let mut queue = worker.pulls.lock().unwrap_or_else(|e| e.into_inner());
                    if queue.len() >= PULL_EVENTS_CAPACITY {
                        return Err(Rejected::Full {
                            repo: pr.repo.full_name.clone(),
                        });
                    }
                    queue.push_back(PullClosed {
                        number: pr.number,
                        merged: pr.merged,
                        head_ref: pr.head_ref.clone(),
                    });
                }
                worker.wake.notify_one();
                Ok(Accepted::Woken {
                    repo: pr.repo.full_name.clone(),
                })
            }
            Event::IssueComment(comment) => self.accept_comment(comment),
            // A pull request of cairn's may wait on these checks to merge
            // (`auto`): the worker tries its merges on every wake-up.
            Event::ChecksChanged(checks) if checks.finished && checks.on_cairn_branch() => {
                let repo = &checks.repo.full_name;
                if self.wake(repo) {
                    Ok(Accepted::Woken { repo: repo.clone() })
                } else {
                    ignored(format!("{repo} is not served here"))
                }
            }
            Event::ChecksChanged(checks) => ignored(format!("{} changes nothing", checks.event)),
            Event::Ping { .. } => ignored("ping".into()),
            Event::Other { name } => ignored(format!("{name} events are not used")),
        }
    }

    /// `/readyz`: every served repository has a store and a loaded config.
    pub fn ready(&self) -> Result<(), String> {
        let repos = self.repos();
        if repos.is_empty() {
            return Err("no repository is served yet".into());
        }
        let mut problems = Vec::new();
        for worker in repos.values() {
            if let Err(e) = worker.store.runs(None, 1) {
                problems.push(format!("{}: {e}", worker.host.name()));
                continue;
            }
            let health = worker.health.lock().unwrap_or_else(|e| e.into_inner());
            if !health.config_loaded {
                problems.push(format!(
                    "{}: no valid pipelines.toml loaded yet{}",
                    worker.host.name(),
                    health
                        .last_error
                        .as_ref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// The run store of a served repository.
    pub fn store(&self, repo: &str) -> Option<Arc<Store>> {
        self.repos()
            .get(&repo.to_lowercase())
            .map(|w| Arc::clone(&w.store))
    }

    /// Wait for every worker to stop (after the shutdown token fired).
    pub async fn stopped(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }

    fn repos(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Worker>>> {
        self.repos.read().unwrap_or_else(|e| e.into_inner())
    }

    fn repos_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Worker>>> {
        self.repos.write().unwrap_or_else(|e| e.into_inner())
    }

    async fn work(self: Arc<Self>, worker: Arc<Worker>) {
        let repo = worker.host.name().to_string();
        loop {
            let closed: Vec<PullClosed> = worker
                .pulls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain(..)
                .collect();
            for pull in closed {
                if let Err(e) = worker
                    .host
                    .pull_closed(&worker.store, pull.number, pull.merged, &pull.head_ref)
                    .await
                {
                    tracing::warn!(%repo, pull = pull.number, "closing: {e}");
                }
            }
            let result = self.reconcile(&worker).await;
            if let Err(e) = &result {
                tracing::warn!(%repo, "reconcile: {e}");
            }
            worker
                .health
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .last_error = result.err().map(|e| e.to_string());
            self.resume_interrupted(&worker);
            let next_tick = self.fire_schedules(&worker);
            if let Err(e) = worker
                .host
                .retry_auto_merges(Arc::clone(&worker.store))
                .await
            {
                tracing::warn!(%repo, "auto-merge: {e}");
            }
            // One timer per worker, set to the next tick of any of its
            // schedules (re-read from the clock after every wake-up).
            let until_tick = next_tick
                .and_then(|t| t.signed_duration_since(self.clock.now()).to_std().ok())
                .unwrap_or(self.options.resync_interval);
            tokio::select! {
                _ = worker.wake.notified() => {}
                _ = tokio::time::sleep(self.options.resync_interval) => {}
                _ = tokio::time::sleep(until_tick) => {}
                // Waiting runs need nothing: their intents are kept, and
                // the next process submits them again.
                _ = self.shutdown.cancelled() => return,
            }
        }
    }

    async fn reconcile(&self, worker: &Arc<Worker>) -> Result<(), ServiceError> {
        let host = &worker.host;
        let repo = host.name().to_string();
        let store_err = |source| ServiceError::Store {
            repo: repo.clone(),
            source,
        };
        let tip = host.sync().await?;
        self.report_unreported(worker).await;
        let position = worker.store.reconciled(&tip.branch).map_err(store_err)?;
        let seen =
            |p: &Reconciled| p.commit == tip.commit || p.seen.as_deref() == Some(&tip.commit);
        let loaded = if position.as_ref().is_some_and(seen) {
            if worker.health().config_loaded {
                return Ok(());
            }
            // Up to date, but this process has not looked at the config yet.
            None
        } else {
            Some(())
        };

        let replay = {
            let host = Arc::clone(host);
            let tip = tip.clone();
            let position = position.clone();
            tokio::task::spawn_blocking(move || replay(host.as_ref(), position.as_ref(), &tip))
                .await
                .map_err(|_| HostError::Join {
                    repo: repo.clone(),
                    what: "reading the mirror",
                })??
        };

        let config = match replay.config {
            Ok(config) => {
                worker.health_mut().config_loaded = true;
                worker.set_current(&tip, &config);
                let status = Status {
                    state: StatusState::Success,
                    context: "cairn/config".into(),
                    description: format!(
                        "pipelines.toml is valid: {} pipeline{}",
                        config.pipelines.len(),
                        if config.pipelines.len() == 1 { "" } else { "s" }
                    ),
                    target_url: None,
                };
                self.status(host.as_ref(), &tip.commit, &status).await;
                config
            }
            Err(error) => {
                let status = Status {
                    state: StatusState::Failure,
                    context: "cairn/config".into(),
                    description: error.clone(),
                    target_url: None,
                };
                self.status(host.as_ref(), &tip.commit, &status).await;
                tracing::warn!(%repo, commit = %tip.commit, "pipelines.toml: {error}; the last good one stays in force");
                // The changes since the last valid tip stay pending: they
                // are acted on once pipelines.toml is valid again.
                let kept = match position {
                    Some(p) => Reconciled {
                        seen: Some(tip.commit.clone()),
                        ..p
                    },
                    None => Reconciled {
                        commit: tip.commit.clone(),
                        config_commit: None,
                        seen: Some(tip.commit.clone()),
                    },
                };
                worker
                    .store
                    .set_reconciled(&tip.branch, &kept)
                    .map_err(store_err)?;
                if let (Some(previous), Some(commit)) =
                    (&replay.previous, kept.config_commit.as_deref())
                {
                    if worker.current().is_none() {
                        // After a restart onto a broken tip: the last good
                        // config, at its own commit, is what is in force.
                        let good = Tip {
                            branch: tip.branch.clone(),
                            commit: commit.to_string(),
                        };
                        worker.set_current(&good, previous);
                    }
                }
                let mut health = worker.health_mut();
                health.last_error = Some(format!("pipelines.toml: {error}"));
                // The last good config stays in force, so the service is ready.
                health.config_loaded |= replay.previous.is_some();
                return Ok(());
            }
        };

        let Some(()) = loaded else {
            return Ok(());
        };
        let Some(position) = position else {
            // First sight of this repository: this is the baseline. Running
            // every pipeline because cairn was just installed would surprise.
            tracing::info!(%repo, commit = %tip.commit, "first reconcile: baseline recorded, nothing run");
            return worker
                .store
                .set_reconciled(&tip.branch, &Reconciled::all_of(&tip.commit))
                .map_err(store_err);
        };

        let changed = plan::human_changes(&replay.commits);
        let runs = plan::pipelines_to_run(
            replay.previous.as_ref(),
            &config,
            &tip.branch,
            &tip.branch,
            &changed,
        );
        tracing::info!(
            %repo,
            from = %position.commit,
            to = %tip.commit,
            commits = replay.commits.len(),
            changed = changed.len(),
            runs = ?runs.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            "reconcile"
        );
        let config = Arc::new(config);
        for (pipeline, why) in runs {
            if self.shutdown.is_cancelled() {
                // Leave the tip unreconciled: the next process replays it.
                return Ok(());
            }
            self.submit_push(worker, &tip, &config, &pipeline, &why);
        }
        worker
            .store
            .set_reconciled(&tip.branch, &Reconciled::all_of(&tip.commit))
            .map_err(store_err)
    }

    /// Hand a push's run of `pipeline` at `tip` to its slot. Its id is
    /// `<pipeline>-<commit>`, so a push already run is not run again.
    fn submit_push(
        &self,
        worker: &Arc<Worker>,
        tip: &Tip,
        config: &Arc<Config>,
        pipeline: &str,
        why: &plan::Why,
    ) {
        let repo = worker.host.name();
        let base = format!("{pipeline}-{}", &tip.commit[..tip.commit.len().min(12)]);
        let run_id = match next_run_id(&worker.store, &base) {
            Ok(Some(id)) => id,
            Ok(None) => {
                tracing::debug!(%repo, %pipeline, commit = %tip.commit, "already ran");
                return;
            }
            Err(e) => {
                tracing::warn!(%repo, %pipeline, "run store: {e}");
                return;
            }
        };
        let job = runs::Job {
            tip: tip.clone(),
            config: Arc::clone(config),
            pipeline: pipeline.to_string(),
            reason: format!("push: {why}"),
            attach: false,
        };
        self.submit(worker, run_id, job);
    }

    /// Run one pipeline (a job its slot started), with a commit status on
    /// its source commit before and after. Failures are reported (status,
    /// log, store); they do not stop other runs.
    async fn execute(
        &self,
        worker: &Worker,
        run_id: String,
        job: runs::Job,
        cancel: CancellationToken,
    ) {
        // The commit status stays on the commit that triggered the run, even
        // when the run reads a newer tip (which holds that commit).
        let trigger = job.tip.commit.clone();
        let job = self.leave_queue(worker, job).await;
        let host = worker.host.as_ref();
        let pipeline = job.pipeline.as_str();
        let tip = &job.tip;
        if tip.commit != trigger {
            if let Err(e) = worker.store.set_status_commit(&run_id, &trigger) {
                tracing::warn!(repo = %host.name(), run = %run_id, "run store: {e}");
            }
        }
        let context = format!("cairn/{pipeline}");
        let target_url = self.run_url(&run_id);
        let pending = Status {
            state: StatusState::Pending,
            context: context.clone(),
            description: format!("running because {}", job.reason),
            target_url: target_url.clone(),
        };
        self.status(host, &trigger, &pending).await;

        let started = Instant::now();
        let result = match host.source(tip, Arc::clone(&job.config)) {
            Ok(source) => {
                let ctx = RunContext {
                    store: Arc::clone(&worker.store),
                    backend: Arc::clone(&self.backend),
                    forge: host.forge(Arc::clone(&worker.store)),
                    runs_dir: worker.runs_dir.clone(),
                    progress: crate::dataset::Progress::hidden(),
                    jobs: self.options.jobs,
                    keep_workspace: false,
                    permits: Some(Arc::clone(&self.run_permits)),
                };
                let request = RunRequest {
                    pipeline: pipeline.to_string(),
                    reason: job.reason.clone(),
                    run_id: Some(run_id.clone()),
                    merge: None,
                    source_url: host.commit_url(&tip.commit),
                    run_url: target_url.clone(),
                    attach: job.attach,
                };
                // The token is cancelled by a newer run (`replace`), by
                // `/cairn cancel`, or by shutdown (a child of it); a run cut
                // short by shutdown runs again after the restart (locally)
                // or is followed again (on a cluster, where it went on).
                reconciler::run(&source, &request, &ctx, &cancel).await
            }
            Err(e) => Err(e),
        };
        if matches!(result, Err(RunError::Cancelled { .. })) && self.shutdown.is_cancelled() {
            // Left unfinished on purpose: the next process marks it
            // interrupted and runs it again from its intent (its status
            // stays pending).
            if let Err(e) = worker.store.set_phase(&run_id, RunPhase::Queued) {
                tracing::warn!(repo = %host.name(), run = %run_id, "run store: {e}");
            }
            return;
        }
        if let Err(e) = worker.store.drop_intent(&run_id) {
            tracing::warn!(repo = %host.name(), run = %run_id, "run store: {e}");
        }
        if let Err(e @ (RunError::Duplicate { .. } | RunError::DeliveredElsewhere { .. })) = &result
        {
            // Another replica or an earlier process has it: not ours to report.
            tracing::info!(repo = %host.name(), %pipeline, run = %run_id, "{e}");
            if matches!(e, RunError::DeliveredElsewhere { .. }) {
                // Its deliverer reports the status, not this record.
                if let Err(e) = worker.store.mark_status_reported(&run_id) {
                    tracing::warn!(repo = %host.name(), run = %run_id, "run store: {e}");
                }
            }
            return;
        }
        self.record(worker, pipeline, &run_id, started.elapsed(), &result);
        crate::failpoint::hit(crate::failpoint::Failpoint::RunFinished).await;
        let done = finished_status(&context, target_url, &result);
        if self.status(host, &trigger, &done).await {
            if let Err(e) = worker.store.mark_status_reported(&run_id) {
                tracing::warn!(repo = %host.name(), run = %run_id, "run store: {e}");
            }
        }
    }

    /// Sends the final commit status of every recent run whose status never
    /// reached the forge: the process was killed between finishing a run and
    /// reporting it, or the forge refused. Without this a commit could show
    /// `pending` for ever.
    async fn report_unreported(&self, worker: &Worker) {
        let host = worker.host.as_ref();
        let since = crate::store::unix_ms(std::time::SystemTime::now()) - 24 * 3600 * 1000;
        let runs = match worker.store.unreported_runs(since, INTERRUPTED) {
            Ok(runs) => runs,
            Err(e) => {
                tracing::warn!(repo = %host.name(), "run store: {e}");
                return;
            }
        };
        for run in runs {
            let status = recorded_status(&run, self.run_url(&run.id));
            let commit = match worker.store.status_commit(&run.id) {
                Ok(Some(commit)) => commit,
                _ => run.source_commit.clone(),
            };
            if self.status(host, &commit, &status).await {
                tracing::info!(repo = %host.name(), run = %run.id, "reported a run's final status late");
                if let Err(e) = worker.store.mark_status_reported(&run.id) {
                    tracing::warn!(repo = %host.name(), "run store: {e}");
                }
            }
        }
    }

    /// The API page of a run, when the service knows its public URL.
    fn run_url(&self, run_id: &str) -> Option<String> {
        self.options
            .public_url
            .as_ref()
            .map(|base| format!("{}/api/v1/runs/{run_id}", base.trim_end_matches('/')))
    }

    fn record(
        &self,
        worker: &Worker,
        pipeline: &str,
        run_id: &str,
        took: Duration,
        result: &Result<RunSummary, RunError>,
    ) {
        let outcome = match result {
            Ok(summary) if summary.delivery.is_some() => "succeeded",
            Ok(_) => "unchanged",
            Err(RunError::Cancelled { .. }) => "cancelled",
            Err(_) => "failed",
        };
        self.metrics.run_finished(pipeline, outcome, took);
        if let Ok(summary) = result {
            self.metrics
                .bytes_uploaded(pipeline, summary.published.bytes_uploaded);
        }
        if let Ok(attempts) = worker.store.attempts(run_id) {
            for a in attempts {
                if let Some(end) = a.finished_at {
                    let ms = (end - a.started_at).max(0) as u64;
                    self.metrics
                        .task_finished(pipeline, &a.task, Duration::from_millis(ms));
                }
            }
        }
        match result {
            Ok(summary) => tracing::info!(
                repo = %worker.host.name(),
                %pipeline,
                run = %run_id,
                md5 = %summary.published.output.id,
                changed = summary.delivery.is_some(),
                "run finished"
            ),
            Err(e) => {
                tracing::warn!(repo = %worker.host.name(), %pipeline, run = %run_id, "run failed: {e}")
            }
        }
    }

    /// Sets a commit status; false (and a warning) when the forge refused.
    async fn status(&self, host: &dyn Host, commit: &str, status: &Status) -> bool {
        match host.set_status(commit, status).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(repo = %host.name(), context = %status.context, "commit status: {e}");
                false
            }
        }
    }
}

impl Service {
    /// A run by id, from whichever served repository has it, with its
    /// attempts.
    pub fn find_run(
        &self,
        id: &str,
    ) -> Option<(
        String,
        crate::store::RunRecord,
        Vec<crate::store::AttemptRecord>,
    )> {
        let repos = self.repos();
        repos.values().find_map(|worker| {
            let run = worker.store.run(id).ok()??;
            let attempts = worker.store.attempts(id).unwrap_or_default();
            Some((worker.host.name().to_string(), run, attempts))
        })
    }
}

impl Worker {
    fn health(&self) -> Health {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn health_mut(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The config in force and its commit, once one was loaded.
    fn current(&self) -> Option<runs::Loaded> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_current(&self, tip: &Tip, config: &Config) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(runs::Loaded {
            tip: tip.clone(),
            config: Arc::new(config.clone()),
        });
    }
}

/// What the mirror says about the range to reconcile.
struct Replay {
    commits: Vec<plan::ChangedCommit>,
    /// pipelines.toml at the tip, or its first error as one line.
    config: Result<Config, String>,
    /// The config in force before (at the last good commit).
    previous: Option<Config>,
}

fn replay(host: &dyn Host, position: Option<&Reconciled>, tip: &Tip) -> Result<Replay, HostError> {
    let git = |source| HostError::Git {
        repo: host.name().to_string(),
        source,
    };
    let repo = host.open().map_err(git)?;
    let from = position.map(|p| p.commit.as_str());
    // A force-push can leave the old position unreachable: then replay only
    // the tip, as on a first sighting.
    let from = match from {
        Some(from) if repo.is_ancestor(from, &tip.commit).unwrap_or(false) => Some(from),
        _ => None,
    };
    let mut commits = Vec::new();
    if position.is_some() {
        for (id, message) in repo.commits_between(from, &tip.commit).map_err(git)? {
            let paths = repo.changed_paths(&id).map_err(git)?;
            commits.push(plan::ChangedCommit { id, message, paths });
        }
    }
    let config =
        crate::reconciler::RepoSource::load_config(&repo, &tip.commit).map_err(|e| first_error(&e));
    let previous = position
        .and_then(|p| p.config_commit.as_deref())
        .and_then(|c| crate::reconciler::RepoSource::load_config(&repo, c).ok());
    Ok(Replay {
        commits,
        config,
        previous,
    })
}

/// The first problem of a broken pipelines.toml, as one line
/// (`pipelines.toml:LINE:COL: ...`), for a commit status.
fn first_error(error: &RunError) -> String {
    match error {
        RunError::Config(diagnostics) => first_diagnostic(diagnostics),
        other => other.to_string(),
    }
}

fn first_diagnostic(diagnostics: &Diagnostics) -> String {
    let mut line = diagnostics
        .iter()
        .next()
        .map(|d| d.headline())
        .unwrap_or_default();
    if diagnostics.len() > 1 {
        line.push_str(&format!(" (and {} more)", diagnostics.len() - 1));
    }
    line
}

/// The id of the next run of `base` (`<pipeline>-<commit>`): `None` when it
/// already ran to an end; a numbered re-run when the last attempt was cut
/// short by a restart or shutdown.
fn next_run_id(store: &Store, base: &str) -> Result<Option<String>, StoreError> {
    for n in 1..=MAX_RUNS_PER_COMMIT {
        let id = if n == 1 {
            base.to_string()
        } else {
            format!("{base}.{n}")
        };
        match store.run(&id)? {
            None => return Ok(Some(id)),
            Some(run)
                if run.phase == RunPhase::Cancelled
                    || run.error.as_deref() == Some(INTERRUPTED) =>
            {
                continue
            }
            Some(_) => return Ok(None),
        }
    }
    Ok(None)
}

fn finished_status(
    context: &str,
    target_url: Option<String>,
    result: &Result<RunSummary, RunError>,
) -> Status {
    let (state, description) = match result {
        Ok(summary) => match &summary.delivery {
            Some(delivery) => (
                StatusState::Success,
                format!(
                    "new version {} ({})",
                    &summary.published.output.id.to_string()[..8],
                    describe(delivery)
                ),
            ),
            None => (
                StatusState::Success,
                format!(
                    "dataset unchanged ({})",
                    &summary.published.output.id.to_string()[..8]
                ),
            ),
        },
        Err(e) => (
            StatusState::Failure,
            e.to_string().lines().next().unwrap_or("failed").to_string(),
        ),
    };
    Status {
        state,
        context: context.to_string(),
        description,
        target_url,
    }
}

/// The final status of a finished run, from its record (when the result
/// itself is gone with the process that ran it).
fn recorded_status(run: &crate::store::RunRecord, target_url: Option<String>) -> Status {
    let short = |md5: &Option<String>| {
        md5.as_deref()
            .map(|m| m.chars().take(8).collect::<String>())
            .unwrap_or_default()
    };
    let (state, description) = match run.phase {
        RunPhase::Succeeded => (
            StatusState::Success,
            format!("new version {}", short(&run.new_md5)),
        ),
        RunPhase::Unchanged => (
            StatusState::Success,
            format!("dataset unchanged ({})", short(&run.new_md5)),
        ),
        _ => (
            StatusState::Failure,
            run.error
                .as_deref()
                .and_then(|e| e.lines().next())
                .unwrap_or("failed")
                .to_string(),
        ),
    };
    Status {
        state,
        context: format!("cairn/{}", run.pipeline),
        description,
        target_url,
    }
}

fn describe(delivery: &crate::forge::Delivery) -> String {
    use crate::forge::Delivery;
    match delivery {
        Delivery::Proposed { branch, .. } => format!("proposed on {branch}"),
        Delivery::Merged { into, .. } => format!("merged into {into}"),
        Delivery::NotMerged { branch, .. } => format!("proposed on {branch}, not merged yet"),
        Delivery::Pushed { branch, .. } => format!("committed to {branch}"),
        Delivery::Landed { branch, .. } => format!("already on {branch}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewRun;

    #[test]
    fn a_run_cut_short_runs_again_under_a_numbered_id() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(
            next_run_id(&store, "p-abc").unwrap().as_deref(),
            Some("p-abc")
        );
        let new = |id: &str| NewRun {
            id: id.into(),
            pipeline: "p".into(),
            reason: "push".into(),
            source_commit: "abc".into(),
        };
        store.create_run(&new("p-abc")).unwrap();
        store.fail_interrupted(INTERRUPTED).unwrap();
        assert_eq!(
            next_run_id(&store, "p-abc").unwrap().as_deref(),
            Some("p-abc.2")
        );
        store.create_run(&new("p-abc.2")).unwrap();
        store
            .finish_run("p-abc.2", RunPhase::Failed, &Default::default())
            .unwrap();
        // A real failure is an answer: no re-run.
        assert_eq!(next_run_id(&store, "p-abc").unwrap(), None);
    }

    #[test]
    fn a_broken_config_is_summarised_on_one_line_with_its_place() {
        let diags = crate::config::parse(
            "[pipelines.p]\ndataset = 1\nfoo = 2\n[pipelines.p.tasks.t]\ncommand=[\"x\"]\n",
            "pipelines.toml",
        )
        .unwrap_err();
        let line = first_diagnostic(&diags);
        assert!(line.starts_with("pipelines.toml:2:"), "{line}");
        assert!(line.ends_with("more)"), "{line}");
        assert!(!line.contains('\n'));
    }
}
