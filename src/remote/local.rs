//! A DVC remote in a local (or mounted) directory.
//!
//! Layout and file modes follow `dvc push` to a local remote: objects at
//! `<root>/files/md5/<2 hex>/<30 hex>[.dir]`, written read-only (0444) like DVC's.
//! Read-only objects do not stop DVC (or cairn) from replacing one, because a
//! replacement is a rename, which only needs write access to the directory.
//!
//! Every write goes to `<key>.tmp-<uuid>` in the object's own directory, is hashed
//! while it is copied (bytes that do not hash to the id are never stored: the
//! source may have changed since it was hashed), fsynced, then renamed over the
//! final name, so a reader (or a crash) never sees a partial object under it.
//! [`Remote::flush`] fsyncs the directories written to, making the renames durable.
//! All blocking IO runs on tokio's blocking pool.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{Remote, RemoteError};
use crate::dvc::{Md5Hasher, ObjectId};

/// Ids checked per blocking task in [`Remote::missing`].
const CHECK_CHUNK: usize = 256;
const BLOCK: usize = 1 << 20;

/// A DVC remote rooted at a local directory.
#[derive(Debug, Clone)]
pub struct LocalRemote {
    root: PathBuf,
    touched: Arc<Mutex<BTreeSet<PathBuf>>>,
}

impl LocalRemote {
    /// A remote rooted at `root` (created on first write).
    pub fn new(root: PathBuf) -> LocalRemote {
        LocalRemote {
            root,
            touched: Arc::new(Mutex::new(BTreeSet::new())),
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where object `id` is (or would be) stored.
    pub fn object_path(&self, id: &ObjectId) -> PathBuf {
        self.root.join(id.remote_key())
    }

    fn io(&self, id: Option<ObjectId>, op: &'static str) -> impl FnOnce(io::Error) -> RemoteError {
        let remote = self.url();
        move |source| RemoteError::Io {
            remote,
            id,
            op,
            source,
        }
    }

    fn note_dir(&self, dir: &Path) {
        if let Ok(mut t) = self.touched.lock() {
            t.insert(dir.to_path_buf());
        }
    }

    /// Writes an object through a temporary file, verifying its md5 on the way.
    fn store(&self, id: ObjectId, mut src: impl Read) -> Result<(), RemoteError> {
        let final_path = self.object_path(&id);
        let dir = final_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.clone());
        fs::create_dir_all(&dir).map_err(self.io(Some(id), "upload (create folder)"))?;
        let name = final_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!("{name}.tmp-{}", uuid::Uuid::new_v4().simple()));
        let result = (|| -> Result<(), RemoteError> {
            let mut out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(self.io(Some(id), "upload (create temp file)"))?;
            let mut hasher = Md5Hasher::new();
            let mut buf = vec![0u8; BLOCK];
            let mut bytes = 0u64;
            loop {
                let n = match src.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(self.io(Some(id), "upload (read source)")(e)),
                };
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])
                    .map_err(self.io(Some(id), "upload (write)"))?;
                bytes += n as u64;
            }
            let actual = hasher.finalize();
            if actual != id.md5 {
                return Err(RemoteError::ContentMismatch {
                    remote: self.url(),
                    id,
                    actual,
                    bytes,
                });
            }
            set_read_only(&out).map_err(self.io(Some(id), "upload (chmod)"))?;
            out.sync_all()
                .map_err(self.io(Some(id), "upload (fsync)"))?;
            drop(out);
            fs::rename(&tmp, &final_path).map_err(self.io(Some(id), "upload (rename)"))?;
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        } else {
            self.note_dir(&dir);
        }
        result
    }

    fn check(&self, ids: &[ObjectId]) -> Result<Vec<ObjectId>, RemoteError> {
        let mut missing = Vec::new();
        for id in ids {
            match fs::metadata(self.object_path(id)) {
                Ok(m) if m.is_file() => {}
                Ok(_) => missing.push(*id),
                Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(*id),
                Err(e) if e.kind() == io::ErrorKind::NotADirectory => missing.push(*id),
                Err(e) => return Err(self.io(Some(*id), "check")(e)),
            }
        }
        Ok(missing)
    }
}

#[cfg(unix)]
fn set_read_only(f: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(fs::Permissions::from_mode(0o444))
}

#[cfg(not(unix))]
fn set_read_only(f: &File) -> io::Result<()> {
    let mut p = f.metadata()?.permissions();
    p.set_readonly(true);
    f.set_permissions(p)
}

async fn blocking<T: Send + 'static>(
    remote: &LocalRemote,
    id: Option<ObjectId>,
    f: impl FnOnce() -> Result<T, RemoteError> + Send + 'static,
) -> Result<T, RemoteError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RemoteError::Other {
            remote: remote.url(),
            id,
            message: format!("worker task failed: {e}"),
        })?
}

#[async_trait::async_trait]
impl Remote for LocalRemote {
    fn url(&self) -> String {
        self.root.display().to_string()
    }

    async fn missing(&self, ids: &[ObjectId]) -> Result<Vec<ObjectId>, RemoteError> {
        let unique: Vec<ObjectId> = ids
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let tasks = unique.chunks(CHECK_CHUNK).map(|chunk| {
            let me = self.clone();
            let chunk = chunk.to_vec();
            async move {
                let me2 = me.clone();
                blocking(&me, None, move || me2.check(&chunk)).await
            }
        });
        let results = futures::future::try_join_all(tasks).await?;
        Ok(results.into_iter().flatten().collect())
    }

    async fn put_file(&self, id: &ObjectId, src: &Path, _size: u64) -> Result<(), RemoteError> {
        let (me, id, src) = (self.clone(), *id, src.to_path_buf());
        blocking(self, Some(id), move || {
            let file = File::open(&src).map_err(me.io(Some(id), "upload (open source)"))?;
            me.store(id, file)
        })
        .await
    }

    async fn put_bytes(&self, id: &ObjectId, bytes: Vec<u8>) -> Result<(), RemoteError> {
        let (me, id) = (self.clone(), *id);
        blocking(self, Some(id), move || me.store(id, &bytes[..])).await
    }

    async fn size(&self, id: &ObjectId) -> Result<u64, RemoteError> {
        let (me, id) = (self.clone(), *id);
        blocking(self, Some(id), move || {
            match std::fs::metadata(me.object_path(&id)) {
                Ok(m) => Ok(m.len()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Err(RemoteError::NotFound {
                    remote: me.url(),
                    id,
                }),
                Err(e) => Err(me.io(Some(id), "size (stat)")(e)),
            }
        })
        .await
    }

    async fn get_to_file(&self, id: &ObjectId, dest: &Path) -> Result<(), RemoteError> {
        let (me, id, dest) = (self.clone(), *id, dest.to_path_buf());
        blocking(self, Some(id), move || {
            let mut src = match File::open(me.object_path(&id)) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(RemoteError::NotFound {
                        remote: me.url(),
                        id,
                    })
                }
                Err(e) => return Err(me.io(Some(id), "download (open)")(e)),
            };
            let mut out = File::create(&dest).map_err(me.io(Some(id), "download (create)"))?;
            io::copy(&mut src, &mut out).map_err(me.io(Some(id), "download (copy)"))?;
            Ok(())
        })
        .await
    }

    async fn flush(&self) -> Result<(), RemoteError> {
        let dirs: Vec<PathBuf> = match self.touched.lock() {
            Ok(mut t) => std::mem::take(&mut *t).into_iter().collect(),
            Err(_) => Vec::new(),
        };
        if dirs.is_empty() {
            return Ok(());
        }
        let me = self.clone();
        blocking(self, None, move || {
            let md5_dir = me.root.join("files").join("md5");
            let parents = [md5_dir.clone(), me.root.join("files"), me.root.clone()];
            for dir in dirs.iter().chain(parents.iter()) {
                sync_dir(dir).map_err(me.io(None, "flush (fsync folder)"))?;
            }
            Ok(())
        })
        .await
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir) {
        Ok(f) => f.sync_all(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dvc::Md5;

    #[tokio::test]
    async fn put_get_missing_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let r = LocalRemote::new(dir.path().join("remote"));
        let foo = ObjectId::file(Md5::of_bytes(b"foo"));
        let bar = ObjectId::file(Md5::of_bytes(b"bar"));
        assert_eq!(r.missing(&[foo, bar, foo]).await.unwrap().len(), 2);
        let src = dir.path().join("foo");
        fs::write(&src, b"foo").unwrap();
        r.put_file(&foo, &src, 3).await.unwrap();
        r.put_bytes(&bar, b"bar".to_vec()).await.unwrap();
        r.flush().await.unwrap();
        assert!(r.missing(&[foo, bar]).await.unwrap().is_empty());
        let p = dir
            .path()
            .join("remote/files/md5/ac/bd18db4cc2f85cedef654fccc4a4d8");
        assert_eq!(fs::read(&p).unwrap(), b"foo");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o444
            );
        }
        // Overwriting a read-only object works (rename), as DVC needs.
        r.put_bytes(&foo, b"foo".to_vec()).await.unwrap();
        let out = dir.path().join("out");
        r.get_to_file(&foo, &out).await.unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"foo");
        let none = ObjectId::file(Md5::of_bytes(b"none"));
        let err = r.get_to_file(&none, &out).await.unwrap_err();
        assert!(matches!(err, RemoteError::NotFound { .. }));
        assert!(err.to_string().contains(&none.to_string()), "{err}");
    }

    #[tokio::test]
    async fn wrong_content_is_never_stored() {
        let dir = tempfile::tempdir().unwrap();
        let r = LocalRemote::new(dir.path().join("remote"));
        let foo = ObjectId::file(Md5::of_bytes(b"foo"));
        let err = r.put_bytes(&foo, b"changed".to_vec()).await.unwrap_err();
        assert!(matches!(err, RemoteError::ContentMismatch { .. }), "{err}");
        assert!(err.to_string().contains(&foo.to_string()));
        assert_eq!(r.missing(&[foo]).await.unwrap(), [foo]);
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("remote/files/md5/ac"))
            .unwrap()
            .collect();
        assert!(leftovers.is_empty(), "temp file left behind");
    }

    #[tokio::test]
    async fn size_of_an_object_and_of_an_absent_one() {
        let dir = tempfile::tempdir().unwrap();
        let r = LocalRemote::new(dir.path().to_path_buf());
        let id = ObjectId::file(Md5::of_bytes(b"twelve bytes"));
        r.put_bytes(&id, b"twelve bytes".to_vec()).await.unwrap();
        assert_eq!(r.size(&id).await.unwrap(), 12);
        let absent = ObjectId::file(Md5::of_bytes(b"absent"));
        assert!(matches!(
            r.size(&absent).await,
            Err(RemoteError::NotFound { id, .. }) if id == absent
        ));
    }

    #[tokio::test]
    async fn missing_handles_many_ids() {
        let dir = tempfile::tempdir().unwrap();
        let r = LocalRemote::new(dir.path().to_path_buf());
        let ids: Vec<ObjectId> = (0..1000u32)
            .map(|i| ObjectId::file(Md5::of_bytes(&i.to_le_bytes())))
            .collect();
        // Content that does not match its id is refused and leaves nothing behind.
        for id in ids.iter().step_by(3) {
            assert!(r.put_bytes(id, Vec::new()).await.is_err());
        }
        let present: Vec<ObjectId> = ids.iter().copied().step_by(7).collect();
        for (i, id) in ids.iter().enumerate().step_by(7) {
            r.put_bytes(id, (i as u32).to_le_bytes().to_vec())
                .await
                .unwrap();
        }
        let missing = r.missing(&ids).await.unwrap();
        assert_eq!(missing.len(), ids.len() - present.len());
        assert!(missing.iter().all(|m| !present.contains(m)));
    }
}
