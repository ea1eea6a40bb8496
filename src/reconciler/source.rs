//! What a run reads from the repository: the commit it starts from, the
//! `pipelines.toml` and `.dvc` pointers *at that commit* (never the working
//! copy, so a run is reproducible from its commit alone), and the DVC remote
//! settings from `.dvc/config` (+ `config.local`, which is never committed).

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::config::{Config, Pipeline};
use crate::dvc::{DvcConfig, Output, PointerFile};
use crate::forge::GitRepo;
use crate::remote::{self, Remote};

use super::RunError;

/// The file cairn reads its pipelines from, at the repository's root.
pub const CONFIG_FILE: &str = "pipelines.toml";

pub struct RepoSource {
    // git2's Repository is Send but not Sync; a mutex makes the source
    // shareable across the tasks of a run. Calls are short and rare.
    repo: Mutex<GitRepo>,
    workdir: std::path::PathBuf,
    head: crate::forge::Head,
    /// Shared: the service hands every run the config it loaded, and a copy
    /// per run (a thousand pipelines, a thousand runs waiting for a slot)
    /// took gigabytes.
    config: Arc<Config>,
    /// A checkout reads `.dvc/config` (+ the uncommitted `config.local`) from
    /// disk; a mirror has only what the commit holds.
    checkout: bool,
}

impl RepoSource {
    /// Open the repository holding `dir` and load `pipelines.toml` from HEAD.
    pub fn open(dir: &Path) -> Result<RepoSource, RunError> {
        let repo = GitRepo::discover(dir)?;
        let head = repo.head()?;
        let text =
            repo.read_file(&head.commit, CONFIG_FILE)?
                .ok_or_else(|| RunError::NoConfig {
                    commit: head.commit.clone(),
                    uncommitted: repo.workdir().join(CONFIG_FILE).exists(),
                })?;
        let text = String::from_utf8(text).map_err(|_| RunError::NotUtf8 {
            path: CONFIG_FILE.into(),
        })?;
        let config = Arc::new(crate::config::parse(&text, CONFIG_FILE)?);
        Ok(RepoSource::checkout(repo, head, config))
    }

    /// [`RepoSource::open`] with `config` given rather than read: the
    /// service passes the one it loaded. Parsing pipelines.toml again for
    /// every run cost tens of milliseconds with a thousand pipelines, on the
    /// async workers, so a tick of many schedules starved every run.
    pub fn open_with_config(dir: &Path, config: Arc<Config>) -> Result<RepoSource, RunError> {
        let repo = GitRepo::discover(dir)?;
        let head = repo.head()?;
        Ok(RepoSource::checkout(repo, head, config))
    }

    /// A source reading the checked-out `head` of `repo`.
    fn checkout(repo: GitRepo, head: crate::forge::Head, config: Arc<Config>) -> RepoSource {
        RepoSource {
            workdir: repo.workdir().to_path_buf(),
            repo: Mutex::new(repo),
            head,
            config,
            checkout: true,
        }
    }

    /// A source at `commit` of a bare mirror, on `branch` (the branch the
    /// run will propose against). `config` is the pipelines.toml to use: the
    /// service passes the one it loaded, which may be the last good one when
    /// the commit's own is broken.
    pub fn at_commit(repo: GitRepo, commit: &str, branch: &str, config: Arc<Config>) -> RepoSource {
        RepoSource {
            workdir: repo.workdir().to_path_buf(),
            repo: Mutex::new(repo),
            head: crate::forge::Head {
                commit: commit.to_string(),
                branch: Some(branch.to_string()),
            },
            config,
            checkout: false,
        }
    }

    /// The same source with another pipelines.toml in force (the service's
    /// last good one).
    pub fn with_config(self, config: Config) -> RepoSource {
        RepoSource {
            config: Arc::new(config),
            ..self
        }
    }

    /// Load and parse pipelines.toml at `commit` of `repo`.
    pub fn load_config(repo: &GitRepo, commit: &str) -> Result<Config, RunError> {
        let text = repo
            .read_file(commit, CONFIG_FILE)?
            .ok_or_else(|| RunError::NoConfig {
                commit: commit.to_string(),
                uncommitted: false,
            })?;
        let text = String::from_utf8(text).map_err(|_| RunError::NotUtf8 {
            path: CONFIG_FILE.into(),
        })?;
        Ok(crate::config::parse(&text, CONFIG_FILE)?)
    }

    fn repo(&self) -> std::sync::MutexGuard<'_, GitRepo> {
        self.repo.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    pub fn head_commit(&self) -> &str {
        &self.head.commit
    }

    pub fn head_branch(&self) -> Option<&str> {
        self.head.branch.as_deref()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn pipeline(&self, name: &str) -> Result<&Pipeline, RunError> {
        self.config.pipeline(name).ok_or_else(|| {
            let known: Vec<&str> = self
                .config
                .pipelines
                .values()
                .map(|p| p.name.as_str())
                .collect();
            RunError::UnknownPipeline {
                name: name.to_string(),
                suggestion: crate::config::closest(name, known.iter().copied()).map(str::to_string),
                known: known.join(", "),
            }
        })
    }

    pub fn require_clean(&self) -> Result<(), RunError> {
        if !self.checkout {
            return Ok(());
        }
        let dirty = self.repo().dirty_paths()?;
        if dirty.is_empty() {
            Ok(())
        } else {
            Err(crate::forge::ForgeError::Dirty { paths: dirty }.into())
        }
    }

    /// The remote a pipeline publishes to: its `remote` setting (a remote
    /// name from `.dvc/config`) or the repository's default remote.
    pub fn remote(&self, pipeline: &Pipeline) -> Result<Box<dyn Remote>, RunError> {
        let dvc = if self.checkout {
            DvcConfig::load(&self.workdir)?
        } else {
            let path = ".dvc/config";
            let text = self.read_text(&self.head.commit, path)?.unwrap_or_default();
            DvcConfig::parse(&text, &self.workdir.join(path))?
        };
        let config = match &pipeline.remote {
            Some(name) => dvc.remote(name).ok_or_else(|| RunError::UnknownRemote {
                name: name.clone(),
                pipeline: pipeline.name.as_str().to_string(),
            })?,
            None => dvc.default_remote()?,
        };
        Ok(remote::open(&config)?)
    }

    /// The dataset version a pipeline's pointer names at `commit`.
    pub fn pointer(&self, pipeline: &Pipeline, commit: &str) -> Result<Option<Output>, RunError> {
        let path = pipeline.dataset.pointer_path();
        let Some(text) = self.read_text(commit, &path)? else {
            return Ok(None);
        };
        let file = PointerFile::parse(&text, &path).map_err(|e| RunError::Pointer {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        match file.outs.as_slice() {
            [one] => Ok(Some(one.clone())),
            outs => Err(RunError::Pointer {
                path,
                reason: format!("expected exactly one output, found {}", outs.len()),
            }),
        }
    }

    pub fn read_text(&self, commit: &str, path: &str) -> Result<Option<String>, RunError> {
        match self.repo().read_file(commit, path)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| RunError::NotUtf8 { path: path.into() }),
        }
    }

    pub fn materialize(&self, commit: &str, dest: &Path) -> Result<(), RunError> {
        Ok(self.repo().materialize(commit, dest)?)
    }
}
