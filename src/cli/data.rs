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
    let (root, dataset) = locate(&args.repo, &args.dataset)?;
    let pointer_path = root.join(dataset.pointer_path());
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
        "{}: {} from {} ({report:?})",
        dataset.as_str(),
        output.id,
        remote.url()
    );
    Ok(ExitCode::SUCCESS)
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
