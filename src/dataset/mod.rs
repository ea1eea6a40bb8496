//! cairn's built-in steps, on top of [`crate::dvc`] and [`crate::remote`]:
//!
//! - [`publish`]: hash a workspace output as `dvc add` does, upload what the remote
//!   lacks as `dvc push` does (files first, `.dir` manifest last), flush, and
//!   report the [`Output`](crate::dvc::Output) to record; [`write_pointer`] then
//!   writes the `.dvc` file and `.gitignore` entry.
//! - [`fetch`]: materialise what a pointer names, verifying every object's md5
//!   before anything appears under its final name (unlike `dvc pull`).
//!
//! - [`restore_tree`]: the repository at a run's source commit, published
//!   as a directory object by the side that has git, restored into a
//!   workspace that has none (a Kubernetes fetch pod).
//!
//! These are the only places that move dataset bytes between a workspace and a
//! remote; worker pods never touch the remote themselves.

mod fetch;
mod links;
mod progress;
mod publish;
mod source;

#[cfg(test)]
mod tests;

pub use fetch::{download_manifest, fetch, FetchError, FetchReport};
pub use links::{dataset_path, LinkError};
pub use progress::{human_bytes, Progress, Task};
pub use publish::{publish, publish_tree, write_pointer, PublishError, PublishReport};
pub use source::{executables, restore_tree};

/// Concurrency and progress reporting for [`publish`] and [`fetch`].
#[derive(Debug, Clone)]
pub struct TransferOptions {
    /// Objects transferred at once (at least 1).
    pub jobs: usize,
    /// Where progress goes (hidden by default).
    pub progress: Progress,
}

/// Options of [`publish`].
pub type PublishOptions = TransferOptions;
/// Options of [`fetch`].
pub type FetchOptions = TransferOptions;

impl Default for TransferOptions {
    fn default() -> TransferOptions {
        TransferOptions {
            jobs: default_jobs(),
            progress: Progress::hidden(),
        }
    }
}

/// Creates the folder `dataset` (a path relative to `workspace`) goes in,
/// so a task can write `data/out.csv` without making `data` first. Never
/// through a link ([`dataset_path`]).
pub fn make_parent(workspace: &std::path::Path, dataset: &str) -> Result<(), LinkError> {
    let path = dataset_path(workspace, dataset)?;
    match path.parent() {
        Some(parent) if parent != workspace => {
            std::fs::create_dir_all(parent).map_err(|source| LinkError::Io {
                path: parent.to_path_buf(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// Default concurrency: 8 per core, between 16 and 64. Transfers of small
/// objects are bound by request latency, not bandwidth (DVC uses 4 per core).
pub fn default_jobs() -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    (cores * 8).clamp(16, 64)
}
