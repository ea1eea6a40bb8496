//! Hashing a workspace output the way `dvc add` (DVC 3) does.
//!
//! - A file's id is the md5 of its raw bytes (no CRLF conversion: that was DVC 2's
//!   `md5-dos2unix`). Files are streamed in 1 MiB blocks, never read whole. (A
//!   separate reader thread was measured: no faster than the kernel's readahead on
//!   cold files, slower on cached ones, so there is none.)
//! - A directory's id is the md5 of its [`Manifest`] bytes (`.dir`). Its files are
//!   hashed in parallel by a bounded set of threads, because datasets of many small
//!   files are common and a single thread would leave the disk and cores idle.
//!
//! What a directory walk includes, matching DVC 3.67 with no `.dvcignore` rules
//! (checked against the real client):
//! - every regular file, including `.gitignore` files; empty folders are left out;
//! - a symlink to a file is followed: the target's bytes are hashed under the
//!   link's path; a symlink to a directory is skipped (DVC does not descend into
//!   it and does not list it); a dangling symlink is an error (DVC fails too);
//! - unlike DVC, a symlink that resolves outside the dataset is an error: a
//!   task must not publish what it can point at (the service's keys, say).
//!   In a source tree such a link is left out instead (a commit may hold one
//!   that points into the machine it is checked out on).
//! - anything named `.git`, and folders named `.hg` or `.dvc`, are skipped (DVC's
//!   built-in ignore rules), and so is a sub-folder that contains a `.dvc` entry
//!   (DVC treats it as a nested repository and ignores it);
//! - a `.dvcignore` inside the dataset is an error, as in DVC;
//! - sockets, FIFOs and devices are errors (DVC would hang or fail on them);
//! - names that are not valid UTF-8 are an error (DVC would write them with
//!   lone-surrogate escapes that no UTF-8 tool can reproduce).
//!
//! `.dvcignore` patterns in the repository are not applied; cairn's publish step
//! hashes every file of the output.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::ids::{Md5, ObjectId};
use super::manifest::{Manifest, ManifestEntry, ManifestError};
use super::md5::Md5Hasher;

const BLOCK: usize = 1 << 20;

/// The hash of a directory output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeHash {
    /// The directory's files.
    pub manifest: Manifest,
    /// The `.dir` object id (md5 of the manifest bytes).
    pub id: ObjectId,
    /// Sum of the files' sizes.
    pub size: u64,
    /// Number of files.
    pub nfiles: u64,
}

/// Hashing failed; the path says where.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// A symbolic link in a dataset that resolves outside it.
    #[error(
        "{}: a symbolic link to {}, outside the dataset; cairn does not publish what a link points to outside the dataset",
        link.display(),
        target.display()
    )]
    LinkOutside {
        /// The link.
        link: PathBuf,
        /// Where it resolves to.
        target: PathBuf,
    },
    /// Reading a file or folder failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A name DVC could not record faithfully.
    #[error("{}: file name is not valid UTF-8; DVC cannot record it portably, rename it", path.display())]
    NonUtf8Name {
        /// The offending path.
        path: PathBuf,
    },
    /// A FIFO, socket or device file.
    #[error("{}: not a regular file, folder or symlink; DVC cannot version it", path.display())]
    Unsupported {
        /// The offending path.
        path: PathBuf,
    },
    /// A `.dvcignore` file inside the dataset directory.
    #[error("{}: a .dvcignore file must not be inside a dataset directory (DVC refuses it too)", path.display())]
    DvcIgnoreInside {
        /// The `.dvcignore` file.
        path: PathBuf,
    },
    /// The dataset directory itself is a DVC repository, which DVC would ignore entirely.
    #[error("{}: the dataset directory contains a .dvc folder (a nested DVC repository); DVC would ignore all of it", path.display())]
    NestedRepository {
        /// The dataset directory.
        path: PathBuf,
    },
    /// The file list could not form a manifest.
    #[error("{}: {source}", path.display())]
    Manifest {
        /// The dataset directory.
        path: PathBuf,
        /// The underlying error.
        source: ManifestError,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> HashError + '_ {
    move |source| HashError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// md5 and size of a file's bytes (symlinks are followed).
pub fn hash_file(path: &Path) -> io::Result<(Md5, u64)> {
    hash_file_with_progress(path, &|_| {})
}

/// Like [`hash_file`], reporting each hashed block's length to `progress`.
pub fn hash_file_with_progress(
    path: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<(Md5, u64)> {
    hash_reader(&mut File::open(path)?, progress)
}

/// md5 and length of everything `reader` yields, in 1 MiB blocks.
pub fn hash_reader(
    reader: &mut dyn Read,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<(Md5, u64)> {
    hash_reader_with(reader, &mut vec![0u8; BLOCK], progress)
}

/// [`hash_reader`] reading through `buf`, so that a thread hashing many files
/// allocates (and zeroes) its buffer once, not once per file.
fn hash_reader_with(
    reader: &mut dyn Read,
    buf: &mut [u8],
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<(Md5, u64)> {
    let mut hasher = Md5Hasher::new();
    let mut total = 0u64;
    loop {
        let n = match reader.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
        progress(n as u64);
    }
    Ok((hasher.finalize(), total))
}

/// True when `mode` has any execute bit, as DVC's `is_exec`.
#[cfg(unix)]
pub fn is_exec(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

/// True when `mode` has any execute bit, as DVC's `is_exec`.
#[cfg(not(unix))]
pub fn is_exec(_meta: &fs::Metadata) -> bool {
    false
}

/// One file found by the walk: its relpath and the path to read.
struct Found {
    relpath: String,
    path: PathBuf,
}

/// Which files of a directory a tree holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// A dataset, as `dvc add` sees it: no `.dvc` folders, no `.dvcignore`,
    /// nested DVC repositories left out, the whole refused if it is one.
    Dataset,
    /// A repository's source tree (what a commit holds): every file but
    /// `.git`, including `.dvc/config`, `.dvcignore` and nested projects,
    /// since a task may need any of them.
    Source,
}

/// Hashes a directory as `dvc add` would; `progress` receives hashed byte counts
/// (from several threads).
pub fn hash_tree(dir: &Path, progress: &(dyn Fn(u64) + Sync)) -> Result<TreeHash, HashError> {
    hash_tree_as(dir, Walk::Dataset, progress)
}

/// [`hash_tree`] with the file selection of `kind`.
pub fn hash_tree_as(
    dir: &Path,
    kind: Walk,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<TreeHash, HashError> {
    let files = walk(dir, kind)?;
    let results = hash_all(&files, progress)?;
    let mut size = 0u64;
    let entries: Vec<ManifestEntry> = files
        .into_iter()
        .zip(results)
        .map(|(f, (md5, len))| {
            size += len;
            ManifestEntry {
                relpath: f.relpath,
                md5,
                size: Some(len),
            }
        })
        .collect();
    let nfiles = entries.len() as u64;
    let manifest = Manifest::new(entries).map_err(|source| HashError::Manifest {
        path: dir.to_path_buf(),
        source,
    })?;
    let id = manifest.id();
    Ok(TreeHash {
        manifest,
        id,
        size,
        nfiles,
    })
}

/// Lists the files DVC would version under `root` (or, for [`Walk::Source`],
/// every file but `.git`).
fn walk(root: &Path, kind: Walk) -> Result<Vec<Found>, HashError> {
    let dataset = kind == Walk::Dataset;
    let meta = fs::metadata(root).map_err(io_err(root))?;
    if !meta.is_dir() {
        return Err(HashError::Io {
            path: root.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a directory"),
        });
    }
    if dataset && fs::symlink_metadata(root.join(".dvc")).is_ok() {
        return Err(HashError::NestedRepository {
            path: root.to_path_buf(),
        });
    }
    let inside = fs::canonicalize(root).map_err(io_err(root))?;
    let mut out = Vec::new();
    let mut stack: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let path = entry.path();
            let name = entry
                .file_name()
                .into_string()
                .map_err(|_| HashError::NonUtf8Name { path: path.clone() })?;
            let ftype = entry.file_type().map_err(io_err(&path))?;
            if name == ".git" {
                continue;
            }
            let relpath = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            if ftype.is_dir() {
                if dataset && (name == ".hg" || name == ".dvc") {
                    continue;
                }
                if dataset && fs::symlink_metadata(path.join(".dvc")).is_ok() {
                    continue; // a nested DVC repository: DVC ignores it
                }
                stack.push((path, relpath));
            } else if ftype.is_file() {
                if dataset && name == ".dvcignore" {
                    return Err(HashError::DvcIgnoreInside { path });
                }
                out.push(Found { relpath, path });
            } else if ftype.is_symlink() {
                let target = fs::metadata(&path).map_err(io_err(&path))?;
                if target.is_dir() {
                    continue; // DVC neither follows nor lists directory symlinks
                }
                // Only a file link is read through: it must stay inside.
                let resolved = fs::canonicalize(&path).map_err(io_err(&path))?;
                if !resolved.starts_with(&inside) {
                    if dataset {
                        return Err(HashError::LinkOutside {
                            link: path,
                            target: resolved,
                        });
                    }
                    tracing::warn!(link = %path.display(), target = %resolved.display(), "a link out of the source tree is left out");
                    continue;
                }
                if !target.is_file() {
                    return Err(HashError::Unsupported { path });
                }
                if dataset && name == ".dvcignore" {
                    return Err(HashError::DvcIgnoreInside { path });
                }
                out.push(Found { relpath, path });
            } else {
                return Err(HashError::Unsupported { path });
            }
        }
    }
    Ok(out)
}

/// (index into the file list, md5, size) of the files one worker hashed.
type Hashed = Vec<(usize, Md5, u64)>;

/// Hashes `files` on a bounded set of threads; results are in input order.
fn hash_all(
    files: &[Found],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<(Md5, u64)>, HashError> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 16)
        .min(files.len().max(1));
    let next = AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let mut results: Vec<Option<(Md5, u64)>> = vec![None; files.len()];
    let per_worker: Vec<Result<Hashed, HashError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    let mut buf = vec![0u8; BLOCK];
                    loop {
                        if failed.load(Ordering::Relaxed) {
                            break;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(f) = files.get(i) else { break };
                        let hashed = File::open(&f.path)
                            .and_then(|mut file| hash_reader_with(&mut file, &mut buf, progress));
                        match hashed {
                            Ok((md5, len)) => done.push((i, md5, len)),
                            Err(source) => {
                                failed.store(true, Ordering::Relaxed);
                                return Err(HashError::Io {
                                    path: f.path.clone(),
                                    source,
                                });
                            }
                        }
                    }
                    Ok(done)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(HashError::Io {
                        path: PathBuf::new(),
                        source: io::Error::other("a hashing thread panicked"),
                    })
                })
            })
            .collect()
    });
    for r in per_worker {
        for (i, md5, len) in r? {
            results[i] = Some((md5, len));
        }
    }
    results
        .into_iter()
        .zip(files)
        .map(|(r, f)| {
            r.ok_or_else(|| HashError::Io {
                path: f.path.clone(),
                source: io::Error::other("file was not hashed"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, bytes: &[u8]) {
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(p, bytes).unwrap();
    }

    #[test]
    fn streaming_hash_of_a_multi_block_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        let data: Vec<u8> = (0..(3 * BLOCK + 12345))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        fs::write(&p, &data).unwrap();
        let seen = AtomicUsize::new(0);
        let (a, n) = hash_file_with_progress(&p, &|b| {
            seen.fetch_add(b as usize, Ordering::Relaxed);
        })
        .unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(seen.load(Ordering::Relaxed), data.len());
        assert_eq!(a, Md5::of_bytes(&data));
        let (b, _) = hash_reader(&mut &data[..], &|_| {}).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn walk_follows_dvc_rules() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("d");
        write(&d.join("a.txt"), b"a\n");
        write(&d.join(".gitignore"), b"x\n");
        write(&d.join(".git/HEAD"), b"g");
        write(&d.join("x/.git"), b"gitfile");
        write(&d.join(".hg/f"), b"h");
        write(&d.join("sub/.dvc/config"), b"");
        write(&d.join("sub/inner"), b"skipped: nested repo");
        write(&d.join(".hgfile"), b"kept");
        fs::create_dir_all(d.join("empty")).unwrap();
        write(&dir.path().join("real/r.txt"), b"r");
        write(&dir.path().join("target.txt"), b"foo");
        #[cfg(unix)]
        {
            // A file link inside the dataset (to a file DVC itself skips).
            std::os::unix::fs::symlink(".hg/f", d.join("link.txt")).unwrap();
            std::os::unix::fs::symlink("../real", d.join("dirlink")).unwrap();
        }
        let t = hash_tree(&d, &|_| {}).unwrap();
        let names: Vec<&str> = t
            .manifest
            .entries()
            .iter()
            .map(|e| e.relpath.as_str())
            .collect();
        #[cfg(unix)]
        assert_eq!(names, [".gitignore", ".hgfile", "a.txt", "link.txt"]);
        #[cfg(unix)]
        assert_eq!(t.manifest.entries()[3].md5, Md5::of_bytes(b"h"));
    }

    /// The attack: a task links a file it may not publish into its output.
    #[cfg(unix)]
    #[test]
    fn a_file_link_out_of_the_dataset_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("d");
        write(&d.join("a.txt"), b"a\n");
        write(&dir.path().join("key.pem"), b"secret");
        std::os::unix::fs::symlink("../key.pem", d.join("leak")).unwrap();
        match hash_tree(&d, &|_| {}) {
            Err(HashError::LinkOutside { link, target }) => {
                assert_eq!(link, d.join("leak"));
                assert_eq!(target, dir.path().canonicalize().unwrap().join("key.pem"));
            }
            other => panic!("{:?}", other.map(|t| t.manifest.entries().len())),
        }
    }

    #[test]
    fn walk_errors() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("d");
        write(&d.join("sub/.dvcignore"), b"");
        assert!(matches!(
            hash_tree(&d, &|_| {}),
            Err(HashError::DvcIgnoreInside { .. })
        ));
        let e = dir.path().join("e");
        write(&e.join(".dvc/config"), b"");
        assert!(matches!(
            hash_tree(&e, &|_| {}),
            Err(HashError::NestedRepository { .. })
        ));
        #[cfg(unix)]
        {
            let b = dir.path().join("b");
            fs::create_dir_all(&b).unwrap();
            std::os::unix::fs::symlink("nowhere", b.join("dangling")).unwrap();
            let err = hash_tree(&b, &|_| {}).unwrap_err();
            assert!(err.to_string().contains("dangling"), "{err}");
        }
        assert!(hash_tree(&dir.path().join("missing"), &|_| {}).is_err());
    }
}
