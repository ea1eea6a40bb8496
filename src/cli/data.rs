//! `cairn publish` and `cairn fetch`: the built-in steps on their own, as
//! the Kubernetes pods of a run (and people at a terminal) call them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use cairn::config::DatasetPath;
use cairn::dvc::{DvcConfig, PointerFile};

#[derive(clap::Args, Debug)]
pub struct PublishArgs {
    /// The file or directory to version, relative to the repository.
    pub dataset: PathBuf,
    /// The repository (any folder inside it).
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// A remote named in .dvc/config, or a URL (default: the default remote).
    #[arg(long)]
    pub remote: Option<String>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON result to this file (on Kubernetes, the
    /// container's termination log, which is how the controller reads it).
    #[arg(long)]
    pub result_file: Option<PathBuf>,
    /// Parallel uploads.
    #[arg(long, default_value_t = cairn::dataset::default_jobs())]
    pub jobs: usize,
}

#[derive(clap::Args, Debug)]
pub struct FetchArgs {
    /// The dataset whose `<dataset>.dvc` pointer names the version to fetch.
    pub dataset: PathBuf,
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    #[arg(long)]
    pub remote: Option<String>,
    /// Restore the repository's tree from this `.dir` object first (a
    /// Kubernetes fetch step: the workspace starts empty, and no git
    /// credentials enter the pod). A dataset with no pointer in the tree
    /// has no version yet: nothing more to fetch.
    #[arg(long)]
    pub source_tree: Option<String>,
    /// The committed `.dvc/config` text that says where the tree's remote
    /// is (the controller sets it from the PipelineRun).
    #[arg(long, env = cairn::k8s::pods::SOURCE_DVC_CONFIG_ENV, hide_env_values = true)]
    pub source_dvc_config: Option<String>,
    /// The source tree's executable files, as a JSON array of relative
    /// paths (the controller sets it from the PipelineRun).
    #[arg(long, env = cairn::k8s::pods::SOURCE_EXECUTABLES_ENV, value_parser = path_list)]
    pub source_executables: Option<PathList>,
    /// Parallel downloads.
    #[arg(long, default_value_t = cairn::dataset::default_jobs())]
    pub jobs: usize,
}

pub fn publish(args: PublishArgs) -> anyhow::Result<ExitCode> {
    let (root, dataset) = locate(&args.repo, &args.dataset)?;
    let remote = open_remote(&root, args.remote.as_deref())?;
    let options = cairn::dataset::PublishOptions {
        jobs: args.jobs.max(1),
        progress: super::progress(),
    };
    let report = super::runtime()?.block_on(cairn::dataset::publish(
        &root,
        dataset.as_str(),
        remote.as_ref(),
        &options,
    ))?;
    cairn::dataset::write_pointer(&root, dataset.as_str(), &report.output)
        .with_context(|| format!("cannot write {}", dataset.pointer_path()))?;
    if let Some(path) = &args.result_file {
        std::fs::write(path, serde_json::to_string(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{}: {} ({} uploaded, {} already on {}, {} bytes sent); wrote {}",
            dataset.as_str(),
            report.output.id,
            report.uploaded,
            report.skipped,
            remote.url(),
            report.bytes_uploaded,
            dataset.pointer_path()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn fetch(args: FetchArgs) -> anyhow::Result<ExitCode> {
    match (&args.source_tree, &args.source_dvc_config) {
        (Some(tree), Some(config)) => restore_source(&args, tree, config)?,
        (Some(_), None) => anyhow::bail!(
            "--source-tree needs the source's .dvc/config: --source-dvc-config or {}",
            cairn::k8s::pods::SOURCE_DVC_CONFIG_ENV
        ),
        _ => {}
    }
    let (root, dataset) = locate(&args.repo, &args.dataset)?;
    cairn::dataset::dataset_path(&root, dataset.as_str())?;
    if args.source_tree.is_some() {
        // A run's fetch step: its tasks may write the dataset straight
        // away, into a folder that exists, as on this machine.
        cairn::dataset::make_parent(&root, dataset.as_str())
            .with_context(|| format!("cannot create the folder of {}", dataset.as_str()))?;
    }
    let pointer_path = root.join(dataset.pointer_path());
    if args.source_tree.is_some() && !pointer_path.exists() {
        println!(
            "{}: no {} at the source commit, so no version yet; nothing to fetch",
            dataset.as_str(),
            dataset.pointer_path()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let text = std::fs::read_to_string(&pointer_path)
        .with_context(|| format!("cannot read {}", pointer_path.display()))?;
    let pointer = PointerFile::parse(&text, &dataset.pointer_path())?;
    let [output] = pointer.outs.as_slice() else {
        anyhow::bail!("{}: expected exactly one output", dataset.pointer_path());
    };
    let remote = open_remote(&root, args.remote.as_deref())?;
    let options = cairn::dataset::FetchOptions {
        jobs: args.jobs.max(1),
        progress: super::progress(),
    };
    let report = super::runtime()?.block_on(cairn::dataset::fetch(
        output,
        &root.join(dataset.as_str()),
        remote.as_ref(),
        &options,
    ))?;
    println!(
        "{}: {} from {} ({report})",
        dataset.as_str(),
        output.id,
        remote.url()
    );
    Ok(ExitCode::SUCCESS)
}

/// `--source-executables`: a JSON array of relative paths.
#[derive(Debug, Clone)]
pub struct PathList(Vec<String>);

fn path_list(text: &str) -> Result<PathList, String> {
    serde_json::from_str(text)
        .map(PathList)
        .map_err(|e| format!("expected a JSON array of paths: {e}"))
}

/// Restores the source tree `tree` into `--repo`, from the remote that
/// `config` (the committed `.dvc/config`) names.
fn restore_source(args: &FetchArgs, tree: &str, config: &str) -> anyhow::Result<()> {
    let id: cairn::dvc::ObjectId = tree
        .parse()
        .with_context(|| format!("--source-tree {tree:?}"))?;
    if !id.dir {
        anyhow::bail!("--source-tree {tree:?}: expected a directory object (`<md5>.dir`)");
    }
    let dvc = DvcConfig::parse(config, Path::new("CAIRN_SOURCE_DVC_CONFIG"))?;
    let remote_config = match &args.remote {
        Some(name) => dvc.remote(name).with_context(|| {
            format!("--remote {name:?}: the source's .dvc/config defines no such remote")
        })?,
        None => dvc.default_remote()?,
    };
    let remote = cairn::remote::open(&remote_config)?;
    let output = cairn::dvc::Output::dir(id, 0, 0, "source");
    let options = cairn::dataset::FetchOptions {
        jobs: args.jobs.max(1),
        progress: super::progress(),
    };
    std::fs::create_dir_all(&args.repo)
        .with_context(|| format!("cannot create {}", args.repo.display()))?;
    let executables = args
        .source_executables
        .as_ref()
        .map_or(&[][..], |list| list.0.as_slice());
    let report = super::runtime()?.block_on(cairn::dataset::restore_tree(
        &output,
        &args.repo,
        executables,
        remote.as_ref(),
        &options,
    ))?;
    println!(
        "source tree {id}: {} file(s) from {} into {}",
        report.files,
        remote.url(),
        args.repo.display()
    );
    Ok(())
}

/// The DVC repository root (the folder holding `.dvc/`) at or above `repo`,
/// and the dataset as a path relative to it.
fn locate(repo: &Path, dataset: &Path) -> anyhow::Result<(PathBuf, DatasetPath)> {
    let start = repo
        .canonicalize()
        .with_context(|| format!("cannot open {}", repo.display()))?;
    let root = start
        .ancestors()
        .find(|dir| dir.join(".dvc").is_dir())
        .with_context(|| {
            format!(
                "{} is not inside a DVC repository (no .dvc folder); run `cairn init` or `dvc init`",
                start.display()
            )
        })?
        .to_path_buf();
    let absolute = if dataset.is_absolute() {
        dataset.to_path_buf()
    } else {
        start.join(dataset)
    };
    let relative = absolute.strip_prefix(&root).with_context(|| {
        format!(
            "{} is outside the repository {}",
            dataset.display(),
            root.display()
        )
    })?;
    let text = relative
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", relative.display()))?;
    let dataset =
        DatasetPath::new(text).map_err(|e| anyhow::anyhow!("{}: {e}", dataset.display()))?;
    Ok((root, dataset))
}

fn open_remote(
    root: &Path,
    remote: Option<&str>,
) -> anyhow::Result<Box<dyn cairn::remote::Remote>> {
    let config = DvcConfig::load(root)?;
    let remote_config = match remote {
        None => config.default_remote()?,
        Some(name) => match config.remote(name) {
            Some(found) => found,
            None => cairn::dvc::RemoteConfig {
                name: name.to_string(),
                url: absolute_url(name)?,
                options: Default::default(),
            },
        },
    };
    Ok(cairn::remote::open(&remote_config)?)
}

/// A remote given on the command line: URLs as they are, local paths made
/// absolute (relative to the current directory, as a person typing means).
fn absolute_url(url: &str) -> anyhow::Result<String> {
    if url.contains("://") {
        return Ok(url.to_string());
    }
    Ok(std::env::current_dir()?.join(url).display().to_string())
}
