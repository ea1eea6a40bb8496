//! `cairn init`: what `dvc init` + `dvc remote add -d` would leave, plus a
//! starter pipelines.toml, so a plain git repository is ready for `cairn run`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// The repository (created with `git init` when it is not one yet).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The DVC remote: a local folder (default: `<dir>-dvc-remote` beside the repository).
    #[arg(long)]
    pub remote: Option<String>,
    /// The remote's name in .dvc/config.
    #[arg(long, default_value = "storage")]
    pub remote_name: String,
}

const STARTER: &str = r#"# cairn pipelines: each one produces a dataset that cairn versions in
# DVC's format. `cairn validate` checks this file; `cairn plan` shows a run.

[defaults]
merge = "review"        # review | auto | direct

[pipelines.example]
dataset = "data/example.csv"

[pipelines.example.tasks.generate]
command = ["sh", "-c", "mkdir -p data && date -u +%Y-%m-%dT%H:%M:%SZ >> data/example.csv"]
"#;

pub fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let dir = args.dir.canonicalize()?;
    let repo = match git2::Repository::discover(&dir) {
        Ok(repo) => repo,
        Err(_) => {
            let mut options = git2::RepositoryInitOptions::new();
            options.initial_head("main");
            eprintln!("initialised an empty git repository in {}", dir.display());
            git2::Repository::init_opts(&dir, &options)?
        }
    };
    let root = repo
        .workdir()
        .context("a bare repository has no working tree for cairn")?
        .to_path_buf();

    let remote = match &args.remote {
        Some(url) => url.clone(),
        None => default_remote(&root)?.display().to_string(),
    };
    let mut written = Vec::new();
    let dvc_dir = root.join(".dvc");
    std::fs::create_dir_all(&dvc_dir)?;
    let config = dvc_dir.join("config");
    if config.exists() {
        eprintln!(".dvc/config exists; left as it is");
    } else {
        std::fs::write(
            &config,
            cairn::dvc::DvcConfig::init_text(&args.remote_name, &remote),
        )?;
        written.push(".dvc/config");
    }
    for (path, content) in [
        (".dvc/.gitignore", cairn::dvc::DVC_DIR_GITIGNORE),
        (".dvcignore", cairn::dvc::DVCIGNORE),
        (cairn::reconciler::CONFIG_FILE, STARTER),
    ] {
        if !root.join(path).exists() {
            std::fs::write(root.join(path), content)?;
            written.push(path);
        }
    }
    if !remote.contains("://") {
        std::fs::create_dir_all(&remote)
            .with_context(|| format!("cannot create the remote folder {remote}"))?;
    }

    // Stage what was written, as `dvc init` does, so the next commit has it.
    let mut index = repo.index()?;
    for path in &written {
        index.add_path(Path::new(path))?;
    }
    index.write()?;

    for path in &written {
        println!("wrote {path}");
    }
    println!("remote {:?} -> {remote}", args.remote_name);
    println!("next: git commit -m 'Set up cairn', then `cairn run <pipeline>`");
    Ok(ExitCode::SUCCESS)
}

/// `<repo>-dvc-remote` beside the repository: outside the working tree so
/// the data never ends up in git.
fn default_remote(root: &Path) -> anyhow::Result<PathBuf> {
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "repo".into());
    let parent = root
        .parent()
        .context("the repository has no parent folder")?;
    Ok(parent.join(format!("{name}-dvc-remote")))
}
