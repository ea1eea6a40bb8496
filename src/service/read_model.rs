//! The service's read model: what read-only views (the dashboard) may know
//! of the served repositories, answered from what the service already holds:
//! each repository's run store, the config its worker loaded, and its
//! mirror (or, locally, the checkout). Views read through it and never open
//! git themselves.
//!
//! What it reports is what the service acts on: the pipelines.toml at the
//! default branch's tip, or the last good one when the tip's is broken (with
//! a warning saying so), and the dataset version the default branch's
//! pointer names.
//!
//! Blocking (SQLite, git): call it from a blocking thread.

use std::path::PathBuf;
use std::sync::Arc;

use super::runs::Loaded;
use super::{Host, Service};
use crate::config::{Config, Pipeline};
use crate::dvc::{Output, PointerFile};
use crate::forge::{bot_branch, ForgeError, GitRepo, RUN_TRAILER};
use crate::reconciler::{RepoSource, DIFF_FILE};
use crate::store::Store;

/// Commits of the default branch looked through for a pointer's versions.
const HISTORY_SCAN: usize = 5000;

/// The served repositories, as read-only views see them.
pub trait ReadModel: Send + Sync + 'static {
    /// Every served repository, sorted by name.
    fn repositories(&self) -> Vec<ServedRepo>;
}

impl ReadModel for Service {
    fn repositories(&self) -> Vec<ServedRepo> {
        let mut out: Vec<ServedRepo> = self
            .repos()
            .values()
            .map(|w| ServedRepo {
                host: Arc::clone(&w.host),
                store: Arc::clone(&w.store),
                loaded: w.current(),
            })
            .collect();
        out.sort_by(|a, b| a.name().cmp(b.name()));
        out
    }
}

/// A fixed list of repositories (tests, and tools that show one store).
impl ReadModel for Vec<ServedRepo> {
    fn repositories(&self) -> Vec<ServedRepo> {
        self.clone()
    }
}

/// Why something could not be read. Its text holds no secret (git and IO
/// errors name paths and ids), so views may show it.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    // Boxed: the forge's errors are large, and this one is rare.
    #[error(transparent)]
    Git(Box<ForgeError>),
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

impl From<ForgeError> for ReadError {
    fn from(e: ForgeError) -> ReadError {
        ReadError::Git(Box::new(e))
    }
}

/// One served repository, read-only.
#[derive(Clone)]
pub struct ServedRepo {
    host: Arc<dyn Host>,
    store: Arc<Store>,
    /// The config the service has in force and the commit it was read at;
    /// `None` outside the service, or before its first reconcile.
    loaded: Option<Loaded>,
}

/// A commit of the default branch that changed a pipeline's pointer.
#[derive(Debug, Clone, PartialEq)]
pub struct PointerCommit {
    pub commit: String,
    pub message: String,
    /// Commit time, Unix seconds.
    pub time: i64,
    /// The version the pointer names after the commit; `None` when the
    /// commit removed it (or it cannot be read).
    pub version: Option<Output>,
    /// The run that made the commit (its `Cairn-Run:` trailer).
    pub run_id: Option<String>,
}

/// What a repository holds now: read once per page, so a page is
/// consistent with itself.
pub struct Snapshot {
    repo: Option<GitRepo>,
    /// The default branch and its tip.
    pub branch: Option<String>,
    pub tip: Option<String>,
    /// The config in force (see the module documentation).
    pub config: Option<Arc<Config>>,
    /// Why `config` may not be the tip's, or why there is none.
    pub warning: Option<String>,
}

impl ServedRepo {
    /// A repository read from its host and run store alone (no service).
    pub fn new(host: Arc<dyn Host>, store: Arc<Store>) -> ServedRepo {
        ServedRepo {
            host,
            store,
            loaded: None,
        }
    }

    /// `owner/name`, or the local path.
    pub fn name(&self) -> &str {
        self.host.name()
    }

    /// The run history.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn commit_url(&self, commit: &str) -> Option<String> {
        self.host.commit_url(commit)
    }

    pub fn pull_url(&self, number: u64) -> Option<String> {
        self.host.pull_url(number)
    }

    /// The default branch, its tip and the config in force.
    pub fn read(&self) -> Snapshot {
        let mut snapshot = Snapshot {
            repo: None,
            branch: None,
            tip: None,
            config: None,
            warning: None,
        };
        let repo = match self.host.open() {
            Ok(repo) => repo,
            Err(e) => {
                // A GitHub repository before its first sync has no mirror yet.
                snapshot.warning = Some(format!("the repository cannot be read yet: {e}"));
                return snapshot;
            }
        };
        let position = self
            .store
            .positions()
            .ok()
            .and_then(|p| p.into_iter().next());
        snapshot.branch = position
            .as_ref()
            .map(|(branch, _)| branch.clone())
            .or_else(|| repo.head().ok().and_then(|h| h.branch));
        snapshot.tip = snapshot
            .branch
            .as_deref()
            .and_then(|b| repo.branch_tip(b).ok().flatten());
        let Some(tip) = snapshot.tip.clone() else {
            snapshot.warning = Some("the default branch has no commits yet".into());
            snapshot.repo = Some(repo);
            return snapshot;
        };
        match self.config_in(&repo, &tip) {
            Ok(config) => snapshot.config = Some(config),
            Err(e) => {
                let last_good = position
                    .and_then(|(_, p)| p.config_commit)
                    .filter(|c| *c != tip)
                    .and_then(|c| self.config_in(&repo, &c).ok());
                let message = e.to_string();
                let first_line = message.lines().next().unwrap_or("");
                snapshot.warning = Some(match &last_good {
                    Some(_) => format!(
                        "pipelines.toml at the tip is broken ({first_line}); the last good one is in force and shown"
                    ),
                    None => format!("no valid pipelines.toml: {first_line}"),
                });
                snapshot.config = last_good;
            }
        }
        snapshot.repo = Some(repo);
        snapshot
    }

    /// pipelines.toml as `commit` has it, when it is valid.
    pub fn config_at(&self, commit: &str) -> Option<Arc<Config>> {
        let repo = self.host.open().ok()?;
        self.config_in(&repo, commit).ok()
    }

    /// The config the service loaded when it is `commit`'s (no need to parse
    /// it again), else `commit`'s pipelines.toml read from `repo`.
    fn config_in(
        &self,
        repo: &GitRepo,
        commit: &str,
    ) -> Result<Arc<Config>, crate::reconciler::RunError> {
        match &self.loaded {
            Some(loaded) if loaded.tip.commit == commit => Ok(Arc::clone(&loaded.config)),
            _ => RepoSource::load_config(repo, commit).map(Arc::new),
        }
    }

    /// The run wrote a dataset diff.
    pub fn has_diff(&self, run_id: &str) -> bool {
        self.diff_path(run_id).is_file()
    }

    /// The dataset diff a run wrote (markdown), if it wrote one.
    pub fn diff(&self, run_id: &str) -> Result<Option<String>, ReadError> {
        let path = self.diff_path(run_id);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ReadError::Read {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    fn diff_path(&self, run_id: &str) -> PathBuf {
        // Run ids are checked by the reconciler (no `/`, no `..`) before a
        // folder is made for them, and callers take the id from the store.
        self.host
            .state_dir()
            .join("runs")
            .join(run_id)
            .join(DIFF_FILE)
    }
}

impl Snapshot {
    /// The version `pipeline`'s pointer names at the tip.
    pub fn version(&self, pipeline: &Pipeline) -> Option<Output> {
        pointer_at(self.repo.as_ref()?, self.tip.as_deref()?, pipeline)
    }

    /// cairn's own branch for `pipeline` (`cairn/<pipeline>`) and the
    /// version its pointer names there, when the branch exists.
    pub fn proposed(&self, pipeline: &Pipeline) -> Option<(String, Output)> {
        let repo = self.repo.as_ref()?;
        let branch = bot_branch(pipeline.name.as_str());
        let head = repo.branch_tip(&branch).ok()??;
        let version = pointer_at(repo, &head, pipeline)?;
        Some((branch, version))
    }

    /// The newest `limit` commits of the default branch (first parents)
    /// that changed `pipeline`'s pointer, newest first.
    pub fn history(
        &self,
        pipeline: &Pipeline,
        limit: usize,
    ) -> Result<Vec<PointerCommit>, ReadError> {
        let (Some(repo), Some(tip)) = (&self.repo, &self.tip) else {
            return Ok(Vec::new());
        };
        let commits =
            repo.file_history(tip, &pipeline.dataset.pointer_path(), limit, HISTORY_SCAN)?;
        Ok(commits
            .into_iter()
            .map(|c| PointerCommit {
                version: if c.removed {
                    None
                } else {
                    pointer_at(repo, &c.id, pipeline)
                },
                run_id: run_trailer(&c.message),
                commit: c.id,
                message: c.message,
                time: c.time,
            })
            .collect())
    }
}

/// The first output of `pipeline`'s pointer at `commit`.
fn pointer_at(repo: &GitRepo, commit: &str, pipeline: &Pipeline) -> Option<Output> {
    let path = pipeline.dataset.pointer_path();
    let bytes = repo.read_file(commit, &path).ok()??;
    let text = String::from_utf8(bytes).ok()?;
    let file = PointerFile::parse(&text, &path).ok()?;
    file.outs.into_iter().next()
}

/// The commit's `Cairn-Run:` trailer, if any.
fn run_trailer(message: &str) -> Option<String> {
    message.lines().rev().find_map(|line| {
        line.strip_prefix(RUN_TRAILER)
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_string)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_trailer_is_read_from_the_message() {
        let message = "Update dataset\n\nCairn-Run: p-abc\nCairn-Source: 123\n";
        assert_eq!(run_trailer(message).as_deref(), Some("p-abc"));
        assert_eq!(run_trailer("A person's commit"), None);
    }
}
