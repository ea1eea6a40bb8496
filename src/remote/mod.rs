//! Where dataset objects live: the [`Remote`] trait and its implementations.
//!
//! A remote is a content-addressed store in DVC 3's layout
//! (`<url>/files/md5/<2 hex>/<30 hex>[.dir]`, see [`ObjectId::remote_key`]), so the
//! real `dvc pull` reads what cairn pushes and the other way round.
//!
//! The trait is shaped for object stores as much as for local folders:
//! - async, so many uploads and downloads can be in flight at once;
//! - [`Remote::missing`] asks about a whole batch, so an implementation can choose
//!   one HEAD per object for a few ids or a prefix listing for many (as DVC does);
//! - writes are all-or-nothing under the final name, and an implementation must not
//!   store bytes whose md5 differs from the id (local: hashed while copying; S3:
//!   Content-MD5, or the ETag of a staged upload), because DVC trusts whatever
//!   sits under a name;
//! - [`Remote::put_file_hashing`] lets a remote upload a file while it is
//!   hashed, before its id is known, so the two passes overlap;
//! - [`Remote::flush`] makes everything written so far durable, so callers can
//!   commit a pointer only after every object it references is safe.
//!
//! Implementations: [`local::LocalRemote`] (a directory, `file://` or a plain path)
//! and [`s3::S3Remote`] (`s3://bucket/prefix`, AWS S3 or an S3-compatible server).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::dvc::{Md5, ObjectId, RemoteConfig};

pub mod local;
pub mod s3;

pub use local::LocalRemote;
pub use s3::S3Remote;

/// Why a remote operation failed. Every variant names the remote (its display
/// url) and, where there is one, the object.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The object is not on the remote.
    #[error("object {id} not found on remote {remote}")]
    NotFound {
        /// The remote's display url.
        remote: String,
        /// The object asked for.
        id: ObjectId,
    },
    /// The bytes given for an object do not hash to its id (the source changed,
    /// or the transfer was corrupted); nothing was stored.
    #[error("object {id} for remote {remote}: content has md5 {actual} ({bytes} bytes), not the expected one; nothing was stored")]
    ContentMismatch {
        /// The remote's display url.
        remote: String,
        /// The object being written.
        id: ObjectId,
        /// md5 of the bytes actually read.
        actual: crate::dvc::Md5,
        /// Number of bytes read.
        bytes: u64,
    },
    /// An IO failure while working on an object (or on the remote itself when `id` is None).
    #[error("remote {remote}: {op}{}: {source}", fmt_id(.id))]
    Io {
        /// The remote's display url.
        remote: String,
        /// The object, if the failure concerns one.
        id: Option<ObjectId>,
        /// What was being done (`upload`, `download`, `check`, ...).
        op: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The url names a kind of remote this build cannot talk to.
    #[error("remote {url}: {reason}")]
    Unsupported {
        /// The configured url.
        url: String,
        /// What is missing.
        reason: String,
    },
    /// Any other backend failure.
    #[error("remote {remote}{}: {message}", fmt_id(.id))]
    Other {
        /// The remote's display url.
        remote: String,
        /// The object, if the failure concerns one.
        id: Option<ObjectId>,
        /// What happened.
        message: String,
    },
}

fn fmt_id(id: &Option<ObjectId>) -> String {
    match id {
        Some(id) => format!(" object {id}"),
        None => String::new(),
    }
}

impl RemoteError {
    /// The object the error concerns, if any.
    pub fn object(&self) -> Option<ObjectId> {
        match self {
            RemoteError::NotFound { id, .. } | RemoteError::ContentMismatch { id, .. } => Some(*id),
            RemoteError::Io { id, .. } | RemoteError::Other { id, .. } => *id,
            RemoteError::Unsupported { .. } => None,
        }
    }
}

/// Receives the number of bytes of each block read (from any thread).
pub type ByteProgress = Arc<dyn Fn(u64) + Send + Sync>;

/// What [`Remote::put_file_hashing`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashedPut {
    /// The md5 of the file's bytes: its object id.
    pub md5: Md5,
    /// The file's size.
    pub size: u64,
    /// Whether the object is now on the remote (stored by this call, or found
    /// there). When false the file was only hashed: the caller uploads it the
    /// usual way.
    pub stored: bool,
    /// Whether this call stored the object (false when it was already there).
    pub uploaded: bool,
    /// Bytes sent to the remote.
    pub bytes_sent: u64,
}

/// A DVC 3 object store.
#[async_trait::async_trait]
pub trait Remote: Send + Sync {
    /// For display; never contains secrets.
    fn url(&self) -> String;

    /// The ids among `ids` that the remote does not hold (order unspecified,
    /// no duplicates). Implementations pick HEAD-per-object or listing.
    async fn missing(&self, ids: &[ObjectId]) -> Result<Vec<ObjectId>, RemoteError>;

    /// Stores the file `src` (`size` bytes) as `id`: atomically (never a partial
    /// object under the final name) and only if its bytes hash to `id`.
    async fn put_file(&self, id: &ObjectId, src: &Path, size: u64) -> Result<(), RemoteError>;

    /// Stores `bytes` as `id`, with the same guarantees as [`Remote::put_file`].
    async fn put_bytes(&self, id: &ObjectId, bytes: Vec<u8>) -> Result<(), RemoteError>;

    /// Hashes the file `src` (`size` bytes) as DVC does and stores it under the
    /// id that gives, uploading while it hashes, for a file whose id is not
    /// known yet and that the remote probably lacks: the hashing and the
    /// upload then overlap instead of following one another. The guarantees
    /// are those of [`Remote::put_file`]; `progress` receives the bytes hashed.
    ///
    /// `Ok(None)`: this remote does not do that for a file of this size; hash
    /// the file, then [`Remote::put_file`] it. `Ok(Some(h))` with `h.stored`
    /// false: the file was hashed but not stored (the remote could not take
    /// it this way); upload it the usual way. The default does nothing.
    async fn put_file_hashing(
        &self,
        src: &Path,
        size: u64,
        progress: ByteProgress,
    ) -> Result<Option<HashedPut>, RemoteError> {
        let _ = (src, size, progress);
        Ok(None)
    }

    /// Writes object `id` to `dest` (the caller picks a temporary path, verifies the
    /// content and renames it into place). [`RemoteError::NotFound`] if absent.
    async fn get_to_file(&self, id: &ObjectId, dest: &Path) -> Result<(), RemoteError>;

    /// The stored size of object `id`, without reading it (DVC 3 manifests do
    /// not record sizes; this is how a caller bounds what it downloads).
    /// [`RemoteError::NotFound`] if absent.
    async fn size(&self, id: &ObjectId) -> Result<u64, RemoteError>;

    /// Makes every object written so far durable (local: fsync of directories).
    async fn flush(&self) -> Result<(), RemoteError> {
        Ok(())
    }
}

/// Opens the remote a [`RemoteConfig`] describes: local paths, `file://` urls and
/// `s3://bucket/prefix` (see [`S3Remote::from_config`]). Nothing is contacted
/// here: an S3 remote loads its AWS configuration and credentials on first use,
/// so this needs no async runtime.
pub fn open(cfg: &RemoteConfig) -> Result<Box<dyn Remote>, RemoteError> {
    let url = cfg.url.as_str();
    if let Some(path) = url.strip_prefix("file://") {
        // `%XX` escapes decoded; an invalid one is kept as is.
        let path = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
        if !path.starts_with('/') {
            return Err(RemoteError::Unsupported {
                url: url.to_string(),
                reason: "file:// urls must be absolute (file:///path)".into(),
            });
        }
        return Ok(Box::new(LocalRemote::new(PathBuf::from(path.into_owned()))));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        if scheme.eq_ignore_ascii_case("s3") {
            return Ok(Box::new(S3Remote::from_config(cfg)?));
        }
        return Err(RemoteError::Unsupported {
            url: url.to_string(),
            reason: format!(
                "{scheme}:// remotes are not supported (use a local path, file:// or s3://)"
            ),
        });
    }
    let path = Path::new(url);
    if !path.is_absolute() {
        return Err(RemoteError::Unsupported {
            url: url.to_string(),
            reason: "a local remote path must be absolute (DvcConfig resolves relative ones)"
                .into(),
        });
    }
    Ok(Box::new(LocalRemote::new(path.to_path_buf())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn cfg(url: &str) -> RemoteConfig {
        RemoteConfig {
            name: "storage".into(),
            url: url.into(),
            options: BTreeMap::new(),
        }
    }

    #[test]
    fn open_picks_the_backend() {
        assert_eq!(open(&cfg("/srv/store")).unwrap().url(), "/srv/store");
        assert_eq!(
            open(&cfg("file:///srv/my%20store")).unwrap().url(),
            "/srv/my store"
        );
        // An invalid escape stays as it is.
        assert_eq!(
            open(&cfg("file:///srv/100%zz")).unwrap().url(),
            "/srv/100%zz"
        );
        assert_eq!(open(&cfg("s3://bucket/x/")).unwrap().url(), "s3://bucket/x");
        let mut with_endpoint = cfg("s3://bucket");
        with_endpoint
            .options
            .insert("endpointurl".into(), "http://127.0.0.1:9000".into());
        assert_eq!(
            open(&with_endpoint).unwrap().url(),
            "s3://bucket at http://127.0.0.1:9000"
        );
        assert!(open(&cfg("s3:///x")).is_err());
        assert!(open(&cfg("gs://b")).is_err());
        assert!(open(&cfg("relative/path")).is_err());
        assert!(open(&cfg("file://relative")).is_err());
    }
}
