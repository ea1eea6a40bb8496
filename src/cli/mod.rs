//! Argument definitions and dispatch. Subcommands print their results on
//! stdout (so they can be piped) and progress, task output and errors on
//! stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cairn::config::MergePolicy;

mod controller;
mod data;
mod init;
mod k8s;
mod plan;
mod run;
mod runs;
mod serve;
mod validate;

#[derive(Parser, Debug)]
#[command(
    name = "cairn",
    version,
    about = "Run the pipelines in pipelines.toml and version their datasets in DVC's format",
    after_help = "Examples:\n  cairn validate\n  cairn plan employee_attrition\n  cairn run employee_attrition --merge direct\n  cairn runs"
)]
pub struct Cli {
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check a pipelines.toml and report every problem with its line and column.
    Validate {
        /// The file to check.
        #[arg(default_value = "pipelines.toml")]
        file: PathBuf,
    },
    /// Show what a run would do, without doing it.
    Plan {
        /// Only this pipeline (default: all).
        pipeline: Option<String>,
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Print the pods a run would create on Kubernetes, as YAML.
        #[arg(long)]
        kubernetes: bool,
    },
    /// Run a pipeline now: fetch, tasks, publish, commit the new pointer.
    Run(run::RunArgs),
    /// List past runs, newest first.
    Runs {
        pipeline: Option<String>,
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Prepare a git repository for cairn (and DVC): .dvc/config with a local
    /// remote, and a starter pipelines.toml.
    Init(init::InitArgs),
    /// Hash a dataset, upload what the remote lacks, write its .dvc pointer.
    Publish(data::PublishArgs),
    /// Download the dataset version a .dvc pointer names, verifying every object.
    Fetch(data::FetchArgs),
    /// Serve GitHub webhooks (or one local repository): run the pipelines a
    /// push concerns and propose each new dataset version.
    Serve(serve::ServeArgs),
    /// Print the PipelineRun CustomResourceDefinition (Kubernetes mode) as YAML.
    Crd,
    /// Reconcile PipelineRuns into pods (Kubernetes mode; one leader at a time).
    Controller(controller::ControllerArgs),
}

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { file } => validate::validate(&file),
        Command::Plan {
            pipeline,
            repo,
            kubernetes: true,
        } => k8s::plan_pods(&repo, pipeline.as_deref()),
        Command::Plan { pipeline, repo, .. } => plan::plan(&repo, pipeline.as_deref()),
        Command::Run(args) => run::run(args),
        Command::Runs {
            pipeline,
            repo,
            limit,
            json,
        } => runs::runs(&repo, pipeline.as_deref(), limit, json),
        Command::Init(args) => init::init(args),
        Command::Publish(args) => data::publish(args),
        Command::Fetch(args) => data::fetch(args),
        Command::Serve(args) => serve::serve(args),
        Command::Crd => k8s::crd(),
        Command::Controller(args) => controller::controller(args),
    }
}

/// The error and its causes on one line each; errors that already carry
/// their own layout (config diagnostics, task failures) print as they are.
pub fn render_error(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,cairn=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Parse `--merge`.
pub fn parse_merge(text: &str) -> Result<MergePolicy, String> {
    text.parse::<MergePolicy>().map_err(|e| e.to_string())
}

/// A runtime for the async parts of a command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// The repository's `.cairn` folder, made on first use. It ignores itself
/// so cairn's state never shows up in `git status`.
pub fn state_dir(workdir: &std::path::Path) -> anyhow::Result<PathBuf> {
    let dir = workdir.join(".cairn");
    std::fs::create_dir_all(&dir)?;
    let ignore = dir.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(&ignore, "# cairn's run state; not versioned\n*\n")?;
    }
    Ok(dir)
}

pub fn open_store(workdir: &std::path::Path) -> anyhow::Result<cairn::store::Store> {
    Ok(cairn::store::Store::open(
        &state_dir(workdir)?.join("cairn.db"),
    )?)
}

/// Whether to draw progress bars: only for a person watching a terminal.
pub fn progress() -> cairn::dataset::Progress {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        cairn::dataset::Progress::bars()
    } else {
        cairn::dataset::Progress::lines()
    }
}
