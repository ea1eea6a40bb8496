//! The publish step: hash a workspace output like `dvc add`, upload what the remote
//! lacks like `dvc push`, and report the pointer to commit.
//!
//! Order matters for correctness, because DVC trusts a `.dir` object on a remote to
//! mean that every file it lists is there too: a directory's files are uploaded
//! first, the `.dir` manifest last and only if every file upload succeeded. Then
//! the remote is flushed; an output is reported only once every object it
//! references was found on the remote or acknowledged as stored by it, so the
//! caller can commit the pointer knowing all of them are durable there. Since
//! the manifest is the last object written, finding it means the whole
//! directory is there, and unchanged data costs one existence check.
//!
//! [`publish`] writes nothing in the workspace; [`write_pointer`] writes the
//! `.dvc` file and `.gitignore` entry as `dvc add` would, for the CLI.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;

use super::progress::Task;
use super::TransferOptions;
use crate::dvc::{
    gitignore_add, hash, hash_tree_as, HashError, Manifest, Md5, ObjectId, Output, PointerFile,
    TreeHash, Walk,
};
use crate::remote::{HashedPut, Remote, RemoteError};

/// What [`publish`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishReport {
    /// The output to record in `<dataset>.dvc` (`path` is the dataset's file name).
    pub output: Output,
    /// Objects uploaded (files and the `.dir` manifest).
    pub uploaded: u64,
    /// Objects the remote already had.
    pub skipped: u64,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
    /// The `.dir` manifest of a directory dataset.
    pub manifest: Option<Manifest>,
}

impl serde::Serialize for PublishReport {
    /// `{"md5","size","nfiles","uploaded","skipped","bytes_uploaded"}`; `nfiles` is
    /// null for a single file.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("PublishReport", 6)?;
        st.serialize_field("md5", &self.output.id)?;
        st.serialize_field("size", &self.output.size)?;
        st.serialize_field("nfiles", &self.output.nfiles)?;
        st.serialize_field("uploaded", &self.uploaded)?;
        st.serialize_field("skipped", &self.skipped)?;
        st.serialize_field("bytes_uploaded", &self.bytes_uploaded)?;
        st.end()
    }
}

/// Why publishing failed. Nothing referencing a failed upload was reported.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The dataset path is not a clean relative path.
    #[error("dataset path {dataset:?}: {reason}")]
    InvalidDataset {
        /// The path as given.
        dataset: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The output does not exist in the workspace.
    #[error("{}: the dataset output does not exist (did the tasks write it?)", path.display())]
    Missing {
        /// Where it was expected.
        path: PathBuf,
    },
    /// Hashing failed.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// The dataset's path goes through a link.
    #[error(transparent)]
    Link(#[from] super::LinkError),
    /// An object could not be uploaded; the `.dir` manifest was not uploaded.
    #[error("uploading {what} of dataset {dataset:?} failed: {source}")]
    Upload {
        /// The dataset.
        dataset: String,
        /// Which file (or `the .dir manifest`).
        what: String,
        /// The remote's error (names the object).
        source: RemoteError,
    },
    /// Asking the remote which objects it has failed.
    #[error("checking remote for dataset {dataset:?}: {source}")]
    Remote {
        /// The dataset.
        dataset: String,
        /// The remote's error.
        source: RemoteError,
    },
    /// A background task failed unexpectedly.
    #[error("internal error while publishing {dataset:?}: {message}")]
    Internal {
        /// The dataset.
        dataset: String,
        /// What happened.
        message: String,
    },
}

/// Checks that `dataset` is a relative path without `..`, and returns its file name.
pub(crate) fn dataset_name(dataset: &str) -> Result<String, PublishError> {
    let bad = |reason| PublishError::InvalidDataset {
        dataset: dataset.to_string(),
        reason,
    };
    let trimmed = dataset.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(bad("empty"));
    }
    let mut name = None;
    for c in Path::new(trimmed).components() {
        match c {
            Component::Normal(n) => name = Some(n),
            Component::CurDir => {}
            Component::ParentDir => return Err(bad("must not contain `..`")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(bad("must be relative to the repository"))
            }
        }
    }
    name.map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| bad("names no file or folder"))
}

/// What hashing found.
enum Hashed {
    File { md5: Md5, size: u64, isexec: bool },
    Dir(TreeHash),
}

/// One object to upload.
struct Upload {
    id: ObjectId,
    src: PathBuf,
    size: u64,
    relpath: String,
}

/// Hashes `<workspace_root>/<dataset>` (a file or a directory), uploads the
/// objects `remote` lacks (files first, the `.dir` manifest last and only if all
/// files succeeded), flushes the remote and reports the output to record.
pub async fn publish(
    workspace_root: &Path,
    dataset: &str,
    remote: &dyn Remote,
    opts: &TransferOptions,
) -> Result<PublishReport, PublishError> {
    publish_as(workspace_root, dataset, remote, opts, Walk::Dataset).await
}

/// [`publish`] of a repository's source tree: every file the commit holds
/// (`.dvc/config` and `.dvcignore` included), not only what `dvc add` takes.
pub async fn publish_tree(
    root: &Path,
    tree: &str,
    remote: &dyn Remote,
    opts: &TransferOptions,
) -> Result<PublishReport, PublishError> {
    publish_as(root, tree, remote, opts, Walk::Source).await
}

async fn publish_as(
    workspace_root: &Path,
    dataset: &str,
    remote: &dyn Remote,
    opts: &TransferOptions,
    walk: Walk,
) -> Result<PublishReport, PublishError> {
    let name = dataset_name(dataset)?;
    let path = match walk {
        // Never through a link on the dataset's way (see `links`).
        Walk::Dataset => super::dataset_path(workspace_root, dataset)?,
        Walk::Source => workspace_root.join(dataset.trim_end_matches('/')),
    };
    // A run's source tree is uploaded by the service before the run's steps
    // (Kubernetes mode): not the boundary the crash tests mean.
    let boundary = matches!(walk, Walk::Dataset);
    let internal = |e: tokio::task::JoinError| PublishError::Internal {
        dataset: dataset.to_string(),
        message: e.to_string(),
    };

    let hash_task = opts.progress.task(format!("hashing {dataset}"), None);
    let meta = output_metadata(&path)?;
    // A file the remote probably lacks goes up while it is hashed, if the
    // remote can do that for its size: the two passes over it then overlap
    // instead of following one another. A file recorded in the pointer at the
    // same size is probably unchanged, and is hashed first: uploading it would
    // be wasted.
    let mut early: Option<HashedPut> = None;
    if meta.is_file() && !recorded_at_size(workspace_root, dataset, meta.len()) {
        let task = hash_task.clone();
        early = remote
            .put_file_hashing(&path, meta.len(), Arc::new(move |n| task.add_bytes(n)))
            .await
            .map_err(|source| PublishError::Upload {
                dataset: dataset.to_string(),
                what: format!("file {name:?}"),
                source,
            })?;
    }
    if let Some(done) = early.filter(|h| h.stored) {
        hash_task.finish("1 file, uploaded while hashing");
        remote
            .flush()
            .await
            .map_err(|source| PublishError::Remote {
                dataset: dataset.to_string(),
                source,
            })?;
        let id = ObjectId::file(done.md5);
        return Ok(PublishReport {
            output: Output::file(id, done.size, hash::is_exec(&meta), name),
            uploaded: u64::from(done.uploaded),
            skipped: u64::from(!done.uploaded),
            bytes_uploaded: done.bytes_sent,
            manifest: None,
        });
    }
    let hashed = match early {
        Some(h) => Hashed::File {
            md5: h.md5,
            size: h.size,
            isexec: hash::is_exec(&meta),
        },
        None => {
            let (path, task) = (path.clone(), hash_task.clone());
            tokio::task::spawn_blocking(move || hash_output(&path, &meta, &task, walk))
                .await
                .map_err(internal)??
        }
    };

    let mut listing: Option<Manifest> = None;
    let (output, uploads, manifest) = match hashed {
        Hashed::File { md5, size, isexec } => {
            hash_task.finish("1 file");
            let id = ObjectId::file(md5);
            let up = Upload {
                id,
                src: path.clone(),
                size,
                relpath: name.clone(),
            };
            (Output::file(id, size, isexec, name), vec![up], None)
        }
        Hashed::Dir(tree) => {
            hash_task.finish(&format!("{} files", tree.nfiles));
            let mut by_md5: BTreeMap<Md5, Upload> = BTreeMap::new();
            for e in tree.manifest.entries() {
                by_md5.entry(e.md5).or_insert_with(|| Upload {
                    id: ObjectId::file(e.md5),
                    src: path.join(&e.relpath),
                    size: e.size.unwrap_or(0),
                    relpath: e.relpath.clone(),
                });
            }
            let output = Output::dir(tree.id, tree.size, tree.nfiles, name);
            let bytes = tree.manifest.to_bytes();
            listing = Some(tree.manifest.clone());
            (
                output,
                by_md5.into_values().collect(),
                Some((tree.id, bytes)),
            )
        }
    };

    let mut all_ids: Vec<ObjectId> = uploads.iter().map(|u| u.id).collect();
    if let Some((id, _)) = &manifest {
        all_ids.push(*id);
    }
    let remote_err = |source| PublishError::Remote {
        dataset: dataset.to_string(),
        source,
    };
    // The `.dir` manifest is the commit marker of a directory: cairn uploads
    // it last, and only after every file of it is on the remote (DVC's push
    // does the same). Finding it therefore means the whole version is there,
    // and unchanged data costs one existence check instead of a listing of
    // every file.
    if let Some((id, _)) = &manifest {
        if remote
            .missing(std::slice::from_ref(id))
            .await
            .map_err(remote_err)?
            .is_empty()
        {
            return Ok(PublishReport {
                output,
                uploaded: 0,
                skipped: all_ids.len() as u64,
                bytes_uploaded: 0,
                manifest: listing,
            });
        }
    }
    let missing: HashSet<ObjectId> = remote
        .missing(&all_ids)
        .await
        .map_err(remote_err)?
        .into_iter()
        .collect();

    let todo: Vec<Upload> = uploads
        .into_iter()
        .filter(|u| missing.contains(&u.id))
        .collect();
    let total: u64 = todo.iter().map(|u| u.size).sum::<u64>()
        + manifest
            .as_ref()
            .filter(|(id, _)| missing.contains(id))
            .map_or(0, |(_, b)| b.len() as u64);
    let upload_task = opts.progress.task(
        format!("uploading {dataset} to {}", remote.url()),
        Some(total),
    );
    let (mut uploaded, sent) =
        upload_files(remote, dataset, todo, opts.jobs, boundary, &upload_task).await?;
    // What a failed upload while hashing sent counts too.
    let mut bytes_uploaded = early.map_or(0, |h| h.bytes_sent) + sent;

    if let Some((id, bytes)) = manifest {
        if missing.contains(&id) {
            let len = bytes.len() as u64;
            remote
                .put_bytes(&id, bytes)
                .await
                .map_err(|source| PublishError::Upload {
                    dataset: dataset.to_string(),
                    what: "the .dir manifest".into(),
                    source,
                })?;
            upload_task.add_bytes(len);
            uploaded += 1;
            bytes_uploaded += len;
        }
    }
    upload_task.finish(&format!("{uploaded} object(s) uploaded"));

    // A successful upload means the object is stored (S3 answers a write only
    // once it is durable; a local remote renames a verified copy into place),
    // so asking the remote again would only repeat a listing of everything
    // that was sent. Flushing makes the local remote's renames durable.
    remote.flush().await.map_err(remote_err)?;
    Ok(PublishReport {
        output,
        uploaded,
        skipped: all_ids.len() as u64 - uploaded,
        bytes_uploaded,
        manifest: listing,
    })
}

/// Uploads `todo`, `jobs` at a time; returns the objects and bytes sent.
/// `boundary`: the crash tests' upload-in-progress failpoint is here.
async fn upload_files(
    remote: &dyn Remote,
    dataset: &str,
    todo: Vec<Upload>,
    jobs: usize,
    boundary: bool,
    task: &Task,
) -> Result<(u64, u64), PublishError> {
    let (mut uploaded, mut bytes_uploaded) = (0u64, 0u64);
    let total = todo.len();
    let mut stream = futures::stream::iter(todo)
        .map(|u| async move {
            match remote.put_file(&u.id, &u.src, u.size).await {
                Ok(()) => Ok(u.size),
                Err(source) => Err(PublishError::Upload {
                    dataset: dataset.to_string(),
                    what: format!("file {:?}", u.relpath),
                    source,
                }),
            }
        })
        .buffer_unordered(jobs.max(1));
    while let Some(res) = stream.next().await {
        // On the first failure the stream is dropped: nothing more starts, and
        // the manifest is never uploaded.
        let size = res?;
        task.add_bytes(size);
        uploaded += 1;
        bytes_uploaded += size;
        if boundary && uploaded == 1 && total > 1 {
            // Not polling the stream meanwhile freezes the other uploads too.
            crate::failpoint::hit(crate::failpoint::Failpoint::UploadInProgress).await;
        }
    }
    Ok((uploaded, bytes_uploaded))
}

/// The output's metadata (symlinks followed), or why it cannot be published.
fn output_metadata(path: &Path) -> Result<std::fs::Metadata, PublishError> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(PublishError::Missing {
            path: path.to_path_buf(),
        }),
        Err(source) => Err(HashError::Io {
            path: path.to_path_buf(),
            source,
        }
        .into()),
    }
}

/// Whether `<dataset>.dvc` records a single file of `size` bytes as the
/// dataset: then the file is probably unchanged.
fn recorded_at_size(workspace_root: &Path, dataset: &str, size: u64) -> bool {
    let label = format!("{}.dvc", dataset.trim_end_matches('/'));
    let Ok(text) = std::fs::read_to_string(workspace_root.join(&label)) else {
        return false;
    };
    PointerFile::parse(&text, &label).is_ok_and(
        |p| matches!(p.outs.as_slice(), [out] if out.nfiles.is_none() && out.size == Some(size)),
    )
}

fn hash_output(
    path: &Path,
    meta: &std::fs::Metadata,
    task: &Task,
    walk: Walk,
) -> Result<Hashed, PublishError> {
    if meta.is_dir() {
        return Ok(Hashed::Dir(hash_tree_as(path, walk, &|n| {
            task.add_bytes(n)
        })?));
    }
    if !meta.is_file() {
        return Err(HashError::Unsupported {
            path: path.to_path_buf(),
        }
        .into());
    }
    let (md5, size) =
        hash::hash_file_with_progress(path, &|n| task.add_bytes(n)).map_err(|source| {
            HashError::Io {
                path: path.to_path_buf(),
                source,
            }
        })?;
    Ok(Hashed::File {
        md5,
        size,
        isexec: hash::is_exec(meta),
    })
}

/// Writes `<repo_root>/<dataset>.dvc` for `output` and adds the dataset to the
/// `.gitignore` of its parent folder, as `dvc add` does; each file is replaced
/// atomically. Keys of an existing pointer that cairn does not manage (`desc`,
/// `meta`, an output's `remote`, ...) are kept.
pub fn write_pointer(repo_root: &Path, dataset: &str, output: &Output) -> io::Result<()> {
    let invalid = |e: PublishError| io::Error::new(io::ErrorKind::InvalidInput, e.to_string());
    let name = dataset_name(dataset).map_err(invalid)?;
    let dataset = dataset.trim_end_matches('/');
    let data_path = repo_root.join(dataset);
    let pointer_path = repo_root.join(format!("{dataset}.dvc"));
    let file_label = format!("{dataset}.dvc");

    let mut pointer = PointerFile::single(output.clone());
    if let Ok(text) = std::fs::read_to_string(&pointer_path) {
        if let Ok(old) = PointerFile::parse(&text, &file_label) {
            pointer.extra = old.extra;
            if let (Some(old_out), Some(new_out)) = (old.outs.first(), pointer.outs.first_mut()) {
                if new_out.extra.is_empty() && old.outs.len() == 1 {
                    new_out.extra = old_out.extra.clone();
                }
            }
        }
    }
    let text = pointer
        .to_yaml(&file_label)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;

    let parent = data_path.parent().unwrap_or(repo_root);
    std::fs::create_dir_all(parent)?;
    let gitignore = parent.join(".gitignore");
    let existing = match std::fs::read_to_string(&gitignore) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    if let Some(updated) = gitignore_add(&existing, &name) {
        write_atomic(&gitignore, updated.as_bytes())?;
    }
    write_atomic(&pointer_path, text.as_bytes())
}

/// Writes `bytes` to `path` through a temporary file in the same folder + rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", uuid::Uuid::new_v4().simple()));
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}
