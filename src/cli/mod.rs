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

/// What every command's exit status means: shown by `cairn --help` and
/// documented in docs/cli.md (a test checks that both say the same).
macro_rules! exit_codes {
    () => {
        "Exit status:
  0  success (for `validate`: the file is valid; for `run`: the run finished, whether or not the
     data changed)
  1  failure: a run that failed or was cancelled, an invalid pipelines.toml, or any other error
     (printed once on stderr as `cairn: error: ...`)
  2  bad command-line usage (unknown command or flag, missing or invalid argument)"
    };
}

#[cfg(test)]
const EXIT_CODES: &str = exit_codes!();

#[derive(Parser, Debug)]
#[command(
    name = "cairn",
    version,
    about = "Run the pipelines in pipelines.toml and version their datasets in DVC's format",
    after_help = concat!(
        "Examples:
  cairn init                        # .dvc/config with a local remote, a starter pipelines.toml
  cairn validate                    # every problem, with FILE:LINE:COL
  cairn plan employee_attrition     # what a run would do
  cairn run employee_attrition --merge direct
  cairn runs --output json          # run history, for scripts
  cairn serve --repo .              # webhooks and the dashboard for one local repository
  cairn completions bash > /etc/bash_completion.d/cairn

",
        exit_codes!()
    )
)]
pub struct Cli {
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// How a listing command prints its result.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Output {
    /// Aligned text for people.
    #[default]
    Text,
    /// One JSON document on stdout, for scripts.
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check a pipelines.toml and report every problem with its line and column.
    #[command(after_help = "Examples:
  cairn validate                       # ./pipelines.toml
  cairn validate path/to/pipelines.toml

Exit status: 0 when the file is valid, 1 when it is not (every problem is printed on stderr as
FILE:LINE:COL with the line), 2 for bad usage.")]
    Validate {
        /// The file to check.
        #[arg(default_value = "pipelines.toml")]
        file: PathBuf,
    },
    /// Show what a run would do, without doing it.
    #[command(
        after_help = "Reads pipelines.toml and the .dvc pointers as committed at HEAD.

Examples:
  cairn plan                           # every pipeline
  cairn plan employee_attrition --repo ../data-repo
  cairn plan --output json | jq '.pipelines[].tasks[].name'

Exit status: 0 on success, 1 on an error (no pipelines.toml, unknown pipeline), 2 for bad usage."
    )]
    Plan {
        /// Only this pipeline (default: all).
        pipeline: Option<String>,
        /// The git repository (any folder inside it).
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Text for people, or JSON for scripts.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Print the pods a run would create on Kubernetes, as YAML.
        #[arg(long)]
        kubernetes: bool,
    },
    /// Run a pipeline now: fetch, tasks, publish, commit the new pointer.
    #[command(after_help = "Examples:
  cairn run employee_attrition                   # pointer commit on cairn/employee_attrition
  cairn run employee_attrition --merge direct    # commit onto the current branch
  cairn run employee_attrition --run-id nightly-2026-11-27   # idempotent: a repeat does nothing

Exit status: 0 when the run finished (a new version, or data unchanged), 1 when it failed or was
cancelled (Ctrl-C) or could not start, 2 for bad usage.")]
    Run(run::RunArgs),
    /// List past runs, newest first.
    #[command(after_help = "Examples:
  cairn runs
  cairn runs employee_attrition --limit 5
  cairn runs --output json | jq '.[0].attempts'

Exit status: 0 on success, 1 on an error (not a git repository), 2 for bad usage.")]
    Runs {
        /// Only this pipeline's runs.
        pipeline: Option<String>,
        /// The git repository (any folder inside it).
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// How many runs to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Text for people, or JSON (with each run's attempts) for scripts.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// The same as `--output json`.
        #[arg(long, conflicts_with = "output")]
        json: bool,
    },
    /// Prepare a git repository for cairn (and DVC): .dvc/config with a local
    /// remote, and a starter pipelines.toml.
    #[command(after_help = "Examples:
  cairn init                                   # this folder; remote in ../<name>-dvc-remote
  cairn init data-repo --remote /srv/dvc-store
  cairn init --remote s3://bucket/prefix

Exit status: 0 on success, 1 on an error, 2 for bad usage.")]
    Init(init::InitArgs),
    /// Hash a dataset, upload what the remote lacks, write its .dvc pointer.
    #[command(
        after_help = "`dvc add && dvc push` in one step; the remote comes from .dvc/config.

Examples:
  cairn publish datasets/employee_attrition.csv
  cairn publish data/images --remote backup --json

Exit status: 0 on success, 1 on an error (nothing is half-written: the pointer is written only
after every object is on the remote), 2 for bad usage."
    )]
    Publish(data::PublishArgs),
    /// Download the dataset version a .dvc pointer names, verifying every object.
    #[command(
        after_help = "`dvc pull` for one dataset, with every object's md5 checked.

Examples:
  cairn fetch datasets/employee_attrition.csv
  cairn fetch data/images --jobs 16

Exit status: 0 on success, 1 on an error (a missing or corrupt object), 2 for bad usage."
    )]
    Fetch(data::FetchArgs),
    /// Serve GitHub webhooks (or one local repository): run the pipelines a
    /// push concerns, propose each new dataset version, and show the dashboard.
    Serve(serve::ServeArgs),
    /// Print a shell completion script.
    #[command(after_help = "Examples:
  cairn completions bash > ~/.local/share/bash-completion/completions/cairn
  cairn completions zsh > \"${fpath[1]}/_cairn\"
  cairn completions fish > ~/.config/fish/completions/cairn.fish

Exit status: 0 on success, 2 for an unknown shell.")]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the PipelineRun CustomResourceDefinition (Kubernetes mode) as YAML.
    #[command(after_help = "Examples:
  cairn crd > deploy/crd.yaml
  cairn crd | kubectl apply -f -

Exit status: 0 on success, 2 for bad usage.")]
    Crd,
    /// Reconcile PipelineRuns into pods (Kubernetes mode; one leader at a time).
    #[command(after_help = "Examples:
  cairn controller                      # in the cluster, with its service account
  cairn controller --namespace cairn

Exit status: 0 after a clean shutdown, 1 when it cannot start, 2 for bad usage.")]
    Controller(controller::ControllerArgs),
}

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { file } => validate::validate(&file),
        Command::Plan {
            pipeline,
            repo,
            kubernetes: true,
            ..
        } => k8s::plan_pods(&repo, pipeline.as_deref()),
        Command::Plan {
            pipeline,
            repo,
            output,
            ..
        } => plan::plan(&repo, pipeline.as_deref(), output),
        Command::Run(args) => run::run(args),
        Command::Runs {
            pipeline,
            repo,
            limit,
            output,
            json,
        } => {
            let output = if json { Output::Json } else { output };
            runs::runs(&repo, pipeline.as_deref(), limit, output)
        }
        Command::Init(args) => init::init(args),
        Command::Publish(args) => data::publish(args),
        Command::Fetch(args) => data::fetch(args),
        Command::Serve(args) => serve::serve(args),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "cairn", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_examples_and_its_exit_status_in_its_help() {
        let cli = Cli::command();
        for sub in cli.get_subcommands() {
            let help = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                help.contains("Examples:"),
                "cairn {} --help",
                sub.get_name()
            );
            assert!(
                help.contains("Exit status"),
                "cairn {} --help",
                sub.get_name()
            );
        }
        let top = cli.get_after_help().unwrap().to_string();
        assert!(top.contains(EXIT_CODES), "{top}");
    }

    #[test]
    fn the_cli_page_documents_every_command_and_the_exit_codes() {
        let page = include_str!("../../docs/cli.md");
        for sub in Cli::command().get_subcommands() {
            assert!(
                page.contains(&format!("## cairn {}", sub.get_name())),
                "docs/cli.md has no section for `cairn {}`",
                sub.get_name()
            );
        }
        let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            squash(page).contains(&squash(EXIT_CODES.trim_start_matches("Exit status:"))),
            "docs/cli.md must carry the exit codes of `cairn --help` word for word"
        );
    }

    #[test]
    fn runs_takes_json_both_ways() {
        for args in [
            &["cairn", "runs", "--json"][..],
            &["cairn", "runs", "--output", "json"][..],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            let Command::Runs { output, json, .. } = cli.command else {
                panic!("not runs")
            };
            assert!(json || output == Output::Json);
        }
        assert!(Cli::try_parse_from(["cairn", "runs", "--json", "--output", "text"]).is_err());
        let cli = Cli::try_parse_from(["cairn", "plan", "--output", "json"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Plan {
                output: Output::Json,
                ..
            }
        ));
    }
}
