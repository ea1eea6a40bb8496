//! `cairn run`: one run of one pipeline in a local repository.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use cairn::backend::{LocalBackend, StderrSink, TaskEnv};
use cairn::config::MergePolicy;
use cairn::forge::{Delivery, LocalForge};
use cairn::pipeline::Limits;
use cairn::reconciler::{self, RepoSource, RunContext, RunRequest};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The pipeline to run, as named in pipelines.toml.
    pub pipeline: String,
    /// The git repository (default: the current directory).
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Override the pipeline's merge policy.
    #[arg(long, value_parser = super::parse_merge)]
    pub merge: Option<MergePolicy>,
    /// Parallel transfers to and from the remote.
    #[arg(long, default_value_t = cairn::dataset::default_jobs())]
    pub jobs: usize,
    /// Most tasks running at once.
    #[arg(long)]
    pub parallel: Option<usize>,
    /// Keep the run's workspace after a successful run.
    #[arg(long)]
    pub keep_workspace: bool,
    /// Use this run id (an idempotency key: a second run with it does nothing).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Pass this variable of your shell to the tasks (repeatable). Tasks
    /// start from a clean environment otherwise: PATH, a HOME and TMPDIR of
    /// the run's own, a UTF-8 locale, UTC, and the pipeline's `env`.
    #[arg(long = "pass-env", value_name = "NAME")]
    pub pass_env: Vec<String>,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    // This process starts no child but the run's tasks.
    cairn::backend::tree::only_tasks_are_children();
    let source = RepoSource::open(&args.repo)?;
    let workdir = source.workdir().to_path_buf();
    let state = super::state_dir(&workdir)?;
    let mut limits = Limits::default();
    if let Some(parallel) = args.parallel {
        limits.max_parallel = parallel.max(1);
    }
    let ctx = RunContext {
        store: Arc::new(super::open_store(&workdir)?),
        backend: Arc::new(
            LocalBackend::new(Some(Arc::new(StderrSink)), limits)
                .with_env(TaskEnv::from_process(&args.pass_env)?),
        ),
        forge: Arc::new(LocalForge::new(workdir.clone())),
        runs_dir: state.join("runs"),
        progress: super::progress(),
        jobs: args.jobs.max(1),
        keep_workspace: args.keep_workspace,
        permits: None,
    };
    let request = RunRequest {
        pipeline: args.pipeline.clone(),
        reason: "cli".into(),
        run_id: args.run_id.clone(),
        merge: args.merge,
        source_url: None,
        run_url: None,
        attach: false,
    };
    let runtime = super::runtime()?;
    let summary = runtime.block_on(async {
        let cancel = CancellationToken::new();
        let on_signal = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("cairn: interrupted; stopping tasks");
                on_signal.cancel();
            }
        });
        reconciler::run(&source, &request, &ctx, &cancel).await
    })?;

    let new = &summary.published.output;
    let size = new.size.map(|s| format!("{s} bytes")).unwrap_or_default();
    let files = new
        .nfiles
        .map(|n| format!(", {n} files"))
        .unwrap_or_default();
    eprintln!(
        "{}: run {} published {} ({size}{files}): {} object(s) uploaded, {} already on the remote",
        summary.pipeline,
        summary.run_id,
        new.id,
        summary.published.uploaded,
        summary.published.skipped
    );
    match &summary.delivery {
        None => println!(
            "{}: data unchanged ({}); no commit",
            summary.pipeline, new.id
        ),
        Some(Delivery::Proposed { branch, commit }) => println!(
            "{}: pointer commit {commit} on branch {branch} (merge it when ready)",
            summary.pipeline
        ),
        Some(Delivery::Merged {
            branch,
            commit,
            into,
        }) => println!(
            "{}: pointer commit {commit} on {branch}, merged into {into}",
            summary.pipeline
        ),
        Some(Delivery::NotMerged {
            branch,
            commit,
            why,
        }) => println!(
            "{}: pointer commit {commit} on {branch}; not merged: {why}",
            summary.pipeline
        ),
        Some(Delivery::Pushed { branch, commit }) => {
            println!("{}: pointer commit {commit} on {branch}", summary.pipeline)
        }
        Some(Delivery::Landed { branch, commit }) => println!(
            "{}: {branch} already holds this version (at {commit}); no commit",
            summary.pipeline
        ),
    }
    Ok(ExitCode::SUCCESS)
}
