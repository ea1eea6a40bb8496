//! The fetch step: materialise the dataset version a pointer names, verified.
//!
//! `dvc pull` trusts the remote; cairn does not: every object is downloaded into a
//! temporary location next to the destination and its md5 checked (the `.dir`
//! manifest too, against the pointer's id) before anything appears under the final
//! name. A directory is assembled in a hidden staging folder and renamed into place
//! as a whole; on any failure the staging area is removed, so a failed fetch leaves
//! the destination as it was. A missing or corrupt object is an error naming the
//! object id, the file it was for and the dataset.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;

use super::progress::Task;
use super::TransferOptions;
use crate::dvc::{hash_file, HashScheme, Manifest, ManifestError, Md5, ObjectId, Output};
use crate::remote::{Remote, RemoteError};

/// What [`fetch`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchReport {
    /// The output's id.
    pub id: ObjectId,
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Objects downloaded (including the `.dir` manifest).
    pub downloaded: u64,
}

/// The counts, for people: `2 files, 1.5 MiB, 3 objects downloaded` (the id
/// is left to the caller, which shows it next to the dataset).
impl std::fmt::Display for FetchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = |n: u64| if n == 1 { "" } else { "s" };
        write!(
            f,
            "{} file{}, {}, {} object{} downloaded",
            self.files,
            s(self.files),
            super::human_bytes(self.bytes),
            self.downloaded,
            s(self.downloaded)
        )
    }
}

/// Why fetching failed; the destination was left as it was.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// A DVC 2 pointer: its md5 is not over the raw bytes and its objects use the
    /// old remote layout.
    #[error("{}: the pointer was written by DVC 2 (md5-dos2unix); re-add it with DVC 3 (`dvc add`) or publish it with cairn first", dataset.display())]
    LegacyPointer {
        /// The dataset path.
        dataset: PathBuf,
    },
    /// The remote does not have an object.
    #[error("object {id}{} of dataset {} is missing on remote {remote}", fmt_file(.file), .dataset.display())]
    Missing {
        /// The object.
        id: ObjectId,
        /// The file of the dataset it was for (None for the output itself).
        file: Option<String>,
        /// The dataset path.
        dataset: PathBuf,
        /// The remote's display url.
        remote: String,
    },
    /// An object's bytes do not hash to its id.
    #[error("object {id}{} of dataset {} is corrupt on remote {remote}: its content has md5 {actual}", fmt_file(.file), .dataset.display())]
    Corrupt {
        /// The object.
        id: ObjectId,
        /// The file of the dataset it was for (None for the output itself).
        file: Option<String>,
        /// The dataset path.
        dataset: PathBuf,
        /// The remote's display url.
        remote: String,
        /// md5 of what was downloaded.
        actual: Md5,
    },
    /// The `.dir` manifest is not a usable manifest.
    #[error("object {id} (manifest of dataset {}): {source}", dataset.display())]
    Manifest {
        /// The `.dir` object.
        id: ObjectId,
        /// The dataset path.
        dataset: PathBuf,
        /// What is wrong with it.
        source: ManifestError,
    },
    /// Any other remote failure.
    #[error("fetching dataset {}: {source}", dataset.display())]
    Remote {
        /// The dataset path.
        dataset: PathBuf,
        /// The remote's error (names the object).
        source: RemoteError,
    },
    /// A local file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The local path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A source tree's list of executable files names something that is not
    /// one of its files.
    #[error("source tree {tree}: {path:?} cannot be made executable: {reason}")]
    NotExecutable {
        /// The tree's `.dir` object.
        tree: ObjectId,
        /// The path as the list gave it.
        path: String,
        /// Why not.
        reason: &'static str,
    },
    /// A background task failed unexpectedly.
    #[error("internal error while fetching {}: {message}", dataset.display())]
    Internal {
        /// The dataset path.
        dataset: PathBuf,
        /// What happened.
        message: String,
    },
}

fn fmt_file(file: &Option<String>) -> String {
    match file {
        Some(f) => format!(" (file {f:?})"),
        None => String::new(),
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Shared context of one fetch.
struct Ctx<'a> {
    remote: &'a dyn Remote,
    dataset: &'a Path,
    task: Task,
}

impl Ctx<'_> {
    /// Downloads `id` to `dest` and checks its md5; returns its size.
    async fn get_verified(
        &self,
        id: ObjectId,
        dest: &Path,
        file: Option<&str>,
    ) -> Result<u64, FetchError> {
        if let Err(e) = self.remote.get_to_file(&id, dest).await {
            let _ = fs::remove_file(dest);
            return Err(match e {
                RemoteError::NotFound { remote, .. } => FetchError::Missing {
                    id,
                    file: file.map(str::to_string),
                    dataset: self.dataset.to_path_buf(),
                    remote,
                },
                source => FetchError::Remote {
                    dataset: self.dataset.to_path_buf(),
                    source,
                },
            });
        }
        let path = dest.to_path_buf();
        let (actual, size) = tokio::task::spawn_blocking(move || hash_file(&path))
            .await
            .map_err(|e| FetchError::Internal {
                dataset: self.dataset.to_path_buf(),
                message: e.to_string(),
            })?
            .map_err(io_err(dest))?;
        if actual != id.md5 {
            let _ = fs::remove_file(dest);
            return Err(FetchError::Corrupt {
                id,
                file: file.map(str::to_string),
                dataset: self.dataset.to_path_buf(),
                remote: self.remote.url(),
                actual,
            });
        }
        self.task.add_bytes(size);
        Ok(size)
    }
}

/// Materialises `pointer` at `dest` (the dataset's path in the workspace) from
/// `remote`, verifying every object before it appears under its final name.
/// An existing file or folder at `dest` is replaced only once the new version is
/// complete.
pub async fn fetch(
    pointer: &Output,
    dest: &Path,
    remote: &dyn Remote,
    opts: &TransferOptions,
) -> Result<FetchReport, FetchError> {
    if pointer.hash != HashScheme::Md5 {
        return Err(FetchError::LegacyPointer {
            dataset: dest.to_path_buf(),
        });
    }
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| FetchError::Io {
            path: dest.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "no file name"),
        })?;
    fs::create_dir_all(parent).map_err(io_err(parent))?;
    let stage = parent.join(format!(
        ".{name}.cairn-fetch-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let ctx = Ctx {
        remote,
        dataset: dest,
        task: opts.progress.task(
            format!("fetching {} from {}", dest.display(), remote.url()),
            pointer.size,
        ),
    };
    let result = if pointer.id.dir {
        fetch_dir(&ctx, pointer.id, &stage, dest, opts.jobs).await
    } else {
        fetch_file(&ctx, pointer, &stage, dest).await
    };
    if result.is_err() {
        let _ = fs::remove_dir_all(&stage);
        let _ = fs::remove_file(&stage);
        let _ = fs::remove_file(manifest_tmp(&stage));
    }
    if let Ok(r) = &result {
        ctx.task.finish(&format!("{} file(s)", r.files));
    }
    result
}

/// Downloads and parses the `.dir` manifest `id` of `dataset`, through a
/// file in `dir` that is removed afterwards. Its md5 is checked like every
/// object's.
pub async fn download_manifest(
    remote: &dyn Remote,
    id: ObjectId,
    dir: &Path,
    dataset: &Path,
) -> Result<Manifest, FetchError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let ctx = Ctx {
        remote,
        dataset,
        task: super::Progress::hidden().task(String::new(), None),
    };
    read_manifest(&ctx, id, &dir.join(format!("manifest-{id}"))).await
}

/// Downloads manifest `id` to `tmp`, verified, and parses it.
async fn read_manifest(ctx: &Ctx<'_>, id: ObjectId, tmp: &Path) -> Result<Manifest, FetchError> {
    ctx.get_verified(id, tmp, None).await?;
    let bytes = fs::read(tmp).map_err(io_err(tmp));
    let _ = fs::remove_file(tmp);
    Manifest::parse(&bytes?).map_err(|source| FetchError::Manifest {
        id,
        dataset: ctx.dataset.to_path_buf(),
        source,
    })
}

fn manifest_tmp(stage: &Path) -> PathBuf {
    let mut s = stage.as_os_str().to_owned();
    s.push(".dir");
    PathBuf::from(s)
}

async fn fetch_file(
    ctx: &Ctx<'_>,
    pointer: &Output,
    stage: &Path,
    dest: &Path,
) -> Result<FetchReport, FetchError> {
    let size = ctx.get_verified(pointer.id, stage, None).await?;
    if pointer.isexec {
        set_executable(stage).map_err(io_err(stage))?;
    }
    if dest.is_dir() {
        replace_with(stage, dest)?; // a folder version is being replaced by a file
    } else {
        fs::rename(stage, dest).map_err(io_err(dest))?; // atomic over an old file
    }
    Ok(FetchReport {
        id: pointer.id,
        files: 1,
        bytes: size,
        downloaded: 1,
    })
}

async fn fetch_dir(
    ctx: &Ctx<'_>,
    id: ObjectId,
    stage: &Path,
    dest: &Path,
    jobs: usize,
) -> Result<FetchReport, FetchError> {
    let manifest = read_manifest(ctx, id, &manifest_tmp(stage)).await?;

    fs::create_dir(stage).map_err(io_err(stage))?;
    // Owned paths: a stream of futures borrowing them would not be provably
    // Send (a higher-ranked lifetime rustc cannot see through), and the
    // service runs fetches on spawned tasks.
    let mut groups: BTreeMap<Md5, Vec<String>> = BTreeMap::new();
    for e in manifest.entries() {
        if let Some((dir, _)) = e.relpath.rsplit_once('/') {
            let d = stage.join(dir);
            fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        groups.entry(e.md5).or_default().push(e.relpath.clone());
    }

    // After a failure nothing new starts, but the transfers in flight run to
    // their end before the error is returned: dropping them would leave
    // blocking copies writing into the staging area while it is removed.
    let failed = AtomicBool::new(false);
    let failed = &failed;
    let mut stream = futures::stream::iter(groups)
        .map(|(md5, paths)| async move {
            if failed.load(Ordering::Relaxed) {
                return Ok(None);
            }
            let first = stage.join(&paths[0]);
            let size = ctx
                .get_verified(ObjectId::file(md5), &first, Some(&paths[0]))
                .await?;
            for other in &paths[1..] {
                let p = stage.join(other);
                fs::copy(&first, &p).map_err(io_err(&p))?;
                ctx.task.add_bytes(size);
            }
            Ok::<_, FetchError>(Some((size, paths.len() as u64)))
        })
        .buffer_unordered(jobs.max(1));
    let (mut files, mut total, mut downloaded) = (0u64, 0u64, 1u64);
    let mut first_error = None;
    while let Some(res) = stream.next().await {
        match res {
            Ok(Some((size, n))) => {
                files += n;
                total += size * n;
                downloaded += 1;
            }
            Ok(None) => {}
            Err(e) => {
                failed.store(true, Ordering::Relaxed);
                first_error.get_or_insert(e);
            }
        }
    }
    drop(stream);
    if let Some(e) = first_error {
        return Err(e);
    }
    replace_with(stage, dest)?;
    Ok(FetchReport {
        id,
        files,
        bytes: total,
        downloaded,
    })
}

/// Moves the complete `stage` to `dest`, replacing whatever was there: the old
/// version is renamed aside, the new one renamed in, then the old one removed.
fn replace_with(stage: &Path, dest: &Path) -> Result<(), FetchError> {
    match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::rename(stage, dest).map_err(io_err(dest))
        }
        Err(e) => Err(io_err(dest)(e)),
        Ok(meta) => {
            let mut old = stage.as_os_str().to_owned();
            old.push(".old");
            let old = PathBuf::from(old);
            fs::rename(dest, &old).map_err(io_err(dest))?;
            if let Err(e) = fs::rename(stage, dest) {
                let _ = fs::rename(&old, dest);
                return Err(io_err(dest)(e));
            }
            let _ = if meta.is_dir() {
                fs::remove_dir_all(&old)
            } else {
                fs::remove_file(&old)
            };
            Ok(())
        }
    }
}

#[cfg(unix)]
fn set_executable(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)?.permissions().mode();
    fs::set_permissions(
        path,
        fs::Permissions::from_mode(mode | ((mode & 0o444) >> 2)),
    )
}

#[cfg(not(unix))]
fn set_executable(_path: &Path) -> io::Result<()> {
    Ok(())
}
