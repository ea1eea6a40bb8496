//! What changed in a dataset version, rendered for the pull request that proposes it.
//!
//! Pure: the diff is computed from values (`.dvc` outputs, `.dir` manifests) and
//! from `std::io::Read` values the caller opens; nothing here touches the network
//! or git. The one function that opens files, [`collect`], takes the old
//! version's contents (and the new one's, when the run's data is elsewhere)
//! through [`Objects`], which the reconciler implements by downloading
//! objects from the remote.
//!
//! - [`DirDiff`]: files added, removed and changed between two `.dir` manifests.
//! - [`table_diff`]: a streaming CSV/TSV comparison with bounded memory
//!   ([`TableDiff`]: row counts, columns added and removed, the first new rows).
//! - [`DatasetDiff`]: both of the above for one dataset version.
//! - [`pull_request`]: the title and Markdown body of the pull request, always
//!   under GitHub's 65,536-character limit, with the hidden [`marker`] line the
//!   bot finds its pull request by.
//!
//! ```
//! use cairn::diffview::{self, DatasetDiff, PullRequestView, RunView, SourceCommit};
//! use cairn::dvc::{ObjectId, Output};
//!
//! let old = Output::file("d1a0b622cd467ce72b35413f361b44b6".parse().unwrap(), 13420, false, "attrition.csv");
//! let new = Output::file("5f3c9a01e2b47d6c8a90b1c2d3e4f506".parse().unwrap(), 14336, false, "attrition.csv");
//! let mut diff = DatasetDiff::new(Some(&old), &new, None, None).unwrap();
//! let table = diffview::table_diff(
//!     Some(&mut &b"id,age\n1,30\n"[..]),
//!     &mut &b"id,age\n1,30\n2,41\n"[..],
//!     &diffview::TableOptions::default(),
//! ).unwrap();
//! diff.tables.push(diffview::TableReport::diff("data/attrition.csv", table));
//! let view = PullRequestView {
//!     pipeline: "employee_attrition".into(),
//!     dataset: "data/attrition.csv".into(),
//!     diff,
//!     run: RunView::new("r-1", "schedule `0 6 * * *`", SourceCommit::new("a1b2c3d4e5f6")),
//! };
//! let pr = diffview::pull_request(&view);
//! assert_eq!(pr.title, "cairn: update data/attrition.csv (employee_attrition)");
//! assert!(pr.body.starts_with(&diffview::marker("employee_attrition")));
//! ```

mod collect;
mod dir;
mod markdown;
mod render;
mod table;
mod tokenizer;

#[cfg(test)]
mod tests;

use crate::dvc::{Manifest, ObjectId, Output};

pub use collect::{collect, CollectOptions, DiffInputs, Objects};
pub use dir::{ChangedFile, DirDiff, FileEntry, Total};
pub use markdown::{marker, pipeline_from_marker, BODY_LIMIT, TITLE_LIMIT};
pub use render::{
    pull_request, pull_request_with, title, PullRequestText, PullRequestView, RenderLimits,
    RunView, SourceCommit, TaskState, TaskView,
};
pub use table::{
    table_diff, table_options_for, NameList, RowMatch, TableDiff, TableOptions, TableReport,
    TableResult, CELL_CHARS, MAX_HEADER_COLUMNS, SAMPLE_COLUMNS,
};

/// Why a diff could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// Reading a table failed.
    #[error("reading table data: {0}")]
    Io(#[from] std::io::Error),
    /// A directory output came without the manifest needed to list its files.
    #[error("the {which} version is a directory ({id}) but its .dir manifest was not provided")]
    MissingManifest {
        /// `"old"` or `"new"`.
        which: &'static str,
        /// The directory's object id.
        id: ObjectId,
    },
}

/// One version of a dataset, as its `.dvc` pointer records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The object id (`.dir` for a directory).
    pub id: ObjectId,
    /// Total size in bytes, when recorded.
    pub size: Option<u64>,
    /// Number of files (directories only).
    pub nfiles: Option<u64>,
    /// The single file is executable.
    pub isexec: bool,
}

impl From<&Output> for Version {
    fn from(o: &Output) -> Version {
        Version {
            id: o.id,
            size: o.size,
            nfiles: o.nfiles,
            isexec: o.isexec,
        }
    }
}

/// A new dataset version compared with the previous one.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetDiff {
    /// The previous version; `None` for the first one.
    pub old: Option<Version>,
    /// The version being proposed.
    pub new: Version,
    /// The file-level diff, when the new version is a directory.
    pub files: Option<DirDiff>,
    /// Table (CSV/TSV) comparisons, in path order.
    pub tables: Vec<TableReport>,
    /// Changed or added tables that were not compared because of the count limit.
    pub tables_not_compared: u64,
}

impl DatasetDiff {
    /// The diff of two versions without table comparisons (push [`TableReport`]s
    /// to [`DatasetDiff::tables`], or use [`collect`]).
    ///
    /// A directory version needs its manifest; an old version that was a single
    /// file (or no old version) makes every file of a new directory "added".
    pub fn new(
        old: Option<&Output>,
        new: &Output,
        old_manifest: Option<&Manifest>,
        new_manifest: Option<&Manifest>,
    ) -> Result<DatasetDiff, DiffError> {
        let files = if new.id.dir {
            let new_m = new_manifest.ok_or(DiffError::MissingManifest {
                which: "new",
                id: new.id,
            })?;
            let old_m = match old {
                Some(o) if o.id.dir => Some(old_manifest.ok_or(DiffError::MissingManifest {
                    which: "old",
                    id: o.id,
                })?),
                _ => None,
            };
            Some(DirDiff::between(old_m, new_m))
        } else {
            None
        };
        Ok(DatasetDiff {
            old: old.map(Version::from),
            new: Version::from(new),
            files,
            tables: Vec::new(),
            tables_not_compared: 0,
        })
    }

    /// True when the new version is the same object as the old one.
    pub fn is_unchanged(&self) -> bool {
        self.old.as_ref().is_some_and(|o| o.id == self.new.id)
    }
}
