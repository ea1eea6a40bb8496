//! The pull request text of a new dataset version: the dataset diff a
//! reviewer needs (see [`crate::diffview`]) and the run that made it.
//!
//! The previous version's contents come from the remote: its `.dir`
//! manifest, and the old bytes of changed tables, downloaded into a scratch
//! folder of the run that is removed afterwards. So do the new bytes when the
//! run's data is not on this machine (a run on a cluster). Object sizes are
//! asked first, so a table over the comparison limit is never downloaded.
//! Nothing here may fail a run that already published: when a comparison
//! cannot be made, the text says less, and the reason is logged.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::diffview::TaskState;
use crate::diffview::{self, DatasetDiff, PullRequestText, PullRequestView, RunView, SourceCommit};
use crate::dvc::{Manifest, Md5, ObjectId, Output};
use crate::remote::Remote;
use crate::store::Store;

/// What the text says about the run besides the diff.
pub(super) struct RunFacts<'a> {
    pub pipeline: &'a str,
    pub dataset: &'a str,
    pub run_id: &'a str,
    pub reason: &'a str,
    pub source_commit: &'a str,
    pub source_url: Option<String>,
    pub run_url: Option<String>,
}

/// The two versions to compare.
pub(super) struct Versions<'a> {
    /// The new version in the workspace; `None` when the run's data is only
    /// on the remote.
    pub data_path: Option<&'a Path>,
    pub old: Option<&'a Output>,
    pub new: &'a Output,
    pub new_manifest: Option<&'a Manifest>,
}

/// Build the title and body. `scratch` is a folder of the run for downloads.
pub(super) async fn pull_request_text(
    facts: &RunFacts<'_>,
    versions: Versions<'_>,
    remote: Arc<dyn Remote>,
    store: &Store,
    scratch: &Path,
) -> PullRequestText {
    let Versions {
        data_path,
        old,
        new,
        new_manifest,
    } = versions;
    let old_manifest = match old.filter(|o| o.id.dir) {
        Some(o) => match crate::dataset::download_manifest(
            remote.as_ref(),
            o.id,
            scratch,
            Path::new(facts.dataset),
        )
        .await
        {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(run = facts.run_id, "previous .dir manifest: {e}");
                None
            }
        },
        None => None,
    };
    let diff = {
        let data_path = data_path.map(Path::to_path_buf);
        let (old, new, new_manifest) = (old.cloned(), new.clone(), new_manifest.cloned());
        let dataset = facts.dataset.to_string();
        let objects = RemoteObjects::new(remote, scratch);
        tokio::task::spawn_blocking(move || {
            if old.as_ref().is_some_and(|o| o.id.dir) && old_manifest.is_none() {
                // Without the old listing every file would read as added.
                return Ok(bare_diff(old.as_ref(), &new));
            }
            let objects = objects?;
            let inputs = diffview::DiffInputs {
                dataset: &dataset,
                workspace: data_path.as_deref(),
                old: old.as_ref(),
                new: &new,
                old_manifest: old_manifest.as_ref(),
                new_manifest: new_manifest.as_ref(),
            };
            diffview::collect(&inputs, &objects, &Default::default())
        })
        .await
    };
    let diff = match diff {
        Ok(Ok(diff)) => diff,
        Ok(Err(e)) => {
            tracing::warn!(run = facts.run_id, "dataset diff: {e}");
            bare_diff(old, new)
        }
        Err(e) => {
            tracing::warn!(run = facts.run_id, "dataset diff: {e}");
            bare_diff(old, new)
        }
    };
    let mut run = RunView::new(
        facts.run_id,
        facts.reason,
        SourceCommit {
            sha: facts.source_commit.to_string(),
            url: facts.source_url.clone(),
        },
    );
    run.url = facts.run_url.clone();
    run.tasks = task_views(store, facts.run_id);
    diffview::pull_request(&PullRequestView {
        pipeline: facts.pipeline.to_string(),
        dataset: facts.dataset.to_string(),
        diff,
        run,
    })
}

/// Objects of the remote, downloaded on demand into a scratch folder that
/// goes away with this value. Used from a blocking thread.
struct RemoteObjects {
    remote: Arc<dyn Remote>,
    runtime: tokio::runtime::Handle,
    downloads: tempfile::TempDir,
}

impl RemoteObjects {
    fn new(remote: Arc<dyn Remote>, scratch: &Path) -> std::io::Result<RemoteObjects> {
        std::fs::create_dir_all(scratch)?;
        Ok(RemoteObjects {
            remote,
            runtime: tokio::runtime::Handle::current(),
            downloads: tempfile::Builder::new()
                .prefix("diff-objects-")
                .tempdir_in(scratch)?,
        })
    }
}

impl diffview::Objects for RemoteObjects {
    fn open(&self, md5: &Md5) -> std::io::Result<Option<Box<dyn std::io::Read>>> {
        let dest = self.downloads.path().join(md5.to_string());
        let id = ObjectId::file(*md5);
        match self.runtime.block_on(self.remote.get_to_file(&id, &dest)) {
            Ok(()) => Ok(Some(Box::new(std::fs::File::open(&dest)?))),
            Err(e) => {
                tracing::warn!("a table's object for the dataset diff ({md5}): {e}");
                Ok(None)
            }
        }
    }

    fn size(&self, md5: &Md5) -> std::io::Result<Option<u64>> {
        let id = ObjectId::file(*md5);
        match self.runtime.block_on(self.remote.size(&id)) {
            Ok(size) => Ok(Some(size)),
            // Unknown; opening it will say what is wrong, and reads are capped.
            Err(e) => {
                tracing::debug!("size of {md5} for the dataset diff: {e}");
                Ok(None)
            }
        }
    }
}

/// Versions only, no file lists: what can always be said.
fn bare_diff(old: Option<&Output>, new: &Output) -> DatasetDiff {
    DatasetDiff {
        old: old.map(Into::into),
        new: new.into(),
        files: None,
        tables: Vec::new(),
        tables_not_compared: 0,
    }
}

/// Each task's outcome and total time over its attempts, from the store.
fn task_views(store: &Store, run_id: &str) -> Vec<diffview::TaskView> {
    let Ok(attempts) = store.attempts(run_id) else {
        return Vec::new();
    };
    let mut tasks: BTreeMap<String, (u32, i64, i64, String)> = BTreeMap::new();
    let mut order = Vec::new();
    for a in &attempts {
        let entry = tasks.entry(a.task.clone()).or_insert_with(|| {
            order.push(a.task.clone());
            (0, 0, a.started_at, String::new())
        });
        entry.0 = entry.0.max(a.attempt);
        entry.1 += a.finished_at.map_or(0, |end| (end - a.started_at).max(0));
        entry.2 = entry.2.min(a.started_at);
        entry.3 = a.state.clone();
    }
    order.sort_by_key(|t| tasks[t].2);
    order
        .into_iter()
        .map(|name| {
            let (attempt, ms, _, state) = &tasks[&name];
            let state = match state.as_str() {
                "succeeded" => TaskState::Succeeded { attempt: *attempt },
                "stopped" => TaskState::Cancelled,
                _ => TaskState::Failed {
                    attempt: *attempt,
                    reason: "failed".to_string(),
                },
            };
            diffview::TaskView {
                name,
                state,
                duration: Some(Duration::from_millis(*ms as u64)),
            }
        })
        .collect()
}
