//! Uploading a file while it is hashed ([`Remote::put_file_hashing`]).
//!
//! An object's key is the md5 of its bytes, so a plain upload can only start
//! once the whole file has been hashed, and the two passes follow one
//! another. For a large file the remote probably lacks, this overlaps them
//! instead:
//!
//! 1. one blocking task reads the file once, in order: each block updates the
//!    md5 and goes on as the body of a PutObject to a staging key
//!    (`<prefix>/tmp/cairn-staging/<uuid>`, outside `files/`, so DVC never
//!    takes it for an object); the reader stays at most a few blocks ahead of
//!    the upload, so memory stays flat;
//! 2. the server answers the PutObject with the ETag of what it stored, which
//!    S3 and the S3-compatible servers make the md5 of the bytes of a
//!    single-request upload: it must equal the md5 of the bytes read, or the
//!    staged copy is not used (this is the integrity check `Content-MD5` is on a
//!    plain upload: the bytes hashed are the bytes sent, and the server proves
//!    it stored exactly those);
//! 3. if the object is not already there, CopyObject copies the staged bytes to
//!    the object's key, on the server (no bytes cross the network again, and
//!    only if the staged object still has that ETag), and the staged copy is
//!    deleted.
//!
//! Whatever happens, nothing but verified bytes lands under an object's key.
//! When the staged upload cannot be used (the server refused it, it broke off
//! — a body read once cannot be retried —, or the ETag is not the md5, as with
//! SSE-KMS), the file has still been hashed: the caller uploads it the usual
//! way, with `Content-MD5` and retries. A failure that will not go away (an
//! ETag that is no md5, CopyObject refused) turns the overlap off for the
//! remote. A staged copy left behind by a failure is deleted, in the
//! background if the caller has gone (as aborts are, see [`Background`]); only
//! a crash can leave one, and a lifecycle rule expiring `tmp/` is the backstop.
//!
//! [`Background`]: super::background::Background

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::Bytes;
use http_body_util::channel::{Channel, Sender};

use super::background::Background;
use super::{check, errors, upload, Shared};
use crate::dvc::Md5Hasher;
use crate::dvc::{Md5, ObjectId};
use crate::remote::{ByteProgress, HashedPut, RemoteError};

/// Bytes read (and hashed) at a time; one block is one frame of the body.
const BLOCK: usize = 1 << 20;
/// Blocks read ahead of the upload.
const WINDOW: usize = 4;

/// See the module documentation.
pub(super) async fn put_file_hashing(
    shared: &Shared,
    src: &Path,
    size: u64,
    progress: ByteProgress,
) -> Result<Option<HashedPut>, RemoteError> {
    let tuning = &shared.settings.tuning;
    if size < tuning.overlap_min
        || size >= tuning.multipart_threshold
        || shared.overlap_off.load(Ordering::Relaxed)
    {
        return Ok(None);
    }
    let client = shared.client().await;
    let staging = shared
        .settings
        .location
        .staging_key(&uuid::Uuid::new_v4().simple().to_string());
    let mut guard = StagedGuard::new(shared, client, &staging);

    let (tx, body) = Channel::<Bytes, io::Error>::new(WINDOW);
    // Stops the reader if this future is dropped (a blocking task cannot be).
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let reader = {
        let (src, stop) = (src.to_path_buf(), stop.0.clone());
        tokio::task::spawn_blocking(move || read_and_hash(&src, size, tx, &*progress, &stop))
    };
    let put = upload::put_request(
        shared,
        client.put_object().bucket(shared.bucket()).key(&staging),
        ByteStream::from_body_1_x(body),
        size,
    );
    let (put, read) = tokio::join!(put, reader);

    let read = read.map_err(|e| RemoteError::Other {
        remote: shared.url(),
        id: None,
        message: format!("upload (read source) failed: worker task failed: {e}"),
    })?;
    let (md5, read_bytes) = read.map_err(|source| RemoteError::Io {
        remote: shared.url(),
        id: None,
        op: "upload (read source)",
        source,
    })?;
    let hashed_only = |bytes_sent| {
        Ok(Some(HashedPut {
            md5,
            size: read_bytes,
            stored: false,
            uploaded: false,
            bytes_sent,
        }))
    };
    let id = ObjectId::file(md5);
    let etag = match put {
        Ok(out) => out.e_tag().map(str::to_string),
        Err(e) => {
            if errors::status(&e).is_some_and(|s| (400..500).contains(&s) && s != 408 && s != 429) {
                shared.overlap_off.store(true, Ordering::Relaxed);
            }
            tracing::debug!(
                remote = %shared.url(), %id,
                "uploading while hashing failed, uploading again: {}",
                errors::describe(&e)
            );
            guard.delete().await;
            return hashed_only(0);
        }
    };
    let Some(etag) = etag.clone().filter(|t| is_md5_of(t, &md5)) else {
        // Not provably the bytes that were hashed: a corrupted transfer, or a
        // server whose ETags are not md5s (then every time).
        tracing::warn!(
            remote = %shared.url(), %id,
            "the staged upload's ETag is not the md5 of the file; uploading again with Content-MD5"
        );
        if !etag_looks_like_md5(etag.as_deref()) {
            shared.overlap_off.store(true, Ordering::Relaxed);
        }
        guard.delete().await;
        return hashed_only(size);
    };

    let present = check::exists(shared, id).await?;
    if !present {
        if let Err(e) = copy_into_place(shared, client, &staging, &etag, id, size).await {
            tracing::warn!(
                remote = %shared.url(), %id,
                "copying the staged upload into place failed, uploading again: {e}"
            );
            shared.overlap_off.store(true, Ordering::Relaxed);
            guard.delete().await;
            return hashed_only(size);
        }
    }
    guard.delete().await;
    Ok(Some(HashedPut {
        md5,
        size: read_bytes,
        stored: true,
        uploaded: !present,
        bytes_sent: size,
    }))
}

/// Copies the staged object (if it still has `etag`) to object `id`'s key.
async fn copy_into_place(
    shared: &Shared,
    client: &Client,
    staging: &str,
    etag: &str,
    id: ObjectId,
    size: u64,
) -> Result<(), RemoteError> {
    let source = format!(
        "{}/{}",
        shared.bucket(),
        percent_encoding::utf8_percent_encode(staging, COPY_SOURCE)
    );
    let request = client
        .copy_object()
        .bucket(shared.bucket())
        .key(shared.key(&id))
        .copy_source(source)
        .copy_source_if_match(etag);
    let sent = match upload::long_request_timeout(&shared.settings.tuning, size) {
        Some(timeouts) => {
            let config = aws_sdk_s3::config::Builder::default().timeout_config(timeouts);
            request.customize().config_override(config).send().await
        }
        None => request.send().await,
    };
    sent.map_err(|e| errors::sdk(shared.url(), Some(id), "upload (CopyObject)", e))?;
    Ok(())
}

/// Characters escaped in `x-amz-copy-source` (everything but unreserved ones
/// and `/`, which separates the key's segments).
const COPY_SOURCE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Whether ETag `tag` (quoted or not) is `md5` in hex.
fn is_md5_of(tag: &str, md5: &Md5) -> bool {
    tag.trim_matches('"').eq_ignore_ascii_case(&md5.to_hex())
}

/// Whether an ETag has the shape of an md5 (32 hex digits).
fn etag_looks_like_md5(tag: Option<&str>) -> bool {
    tag.map(|t| t.trim_matches('"'))
        .is_some_and(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The reader: hashes `src` block by block and sends each block into the
/// body while the upload takes it. Keeps hashing after the upload stopped
/// listening. A file that is not `size` bytes long changed after publishing
/// started: an error, and the body fails.
fn read_and_hash(
    src: &Path,
    size: u64,
    mut tx: Sender<Bytes, io::Error>,
    progress: &(dyn Fn(u64) + Send + Sync),
    stop: &AtomicBool,
) -> io::Result<(Md5, u64)> {
    let changed = |total: u64| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the file has {total} bytes or more, not the {size} it had when publishing started (it changed)"),
        )
    };
    let mut file = match File::open(src) {
        Ok(f) => f,
        Err(e) => {
            tx.abort(io::Error::new(e.kind(), e.to_string()));
            return Err(e);
        }
    };
    let mut md5 = Md5Hasher::new();
    let mut total = 0u64;
    let mut sending = true;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "the upload was abandoned",
            ));
        }
        let mut block = Vec::with_capacity(BLOCK);
        let n = match (&mut file).take(BLOCK as u64).read_to_end(&mut block) {
            Ok(n) => n,
            Err(e) => {
                if sending {
                    tx.abort(io::Error::new(e.kind(), e.to_string()));
                }
                return Err(e);
            }
        };
        if n == 0 {
            break;
        }
        md5.update(&block);
        total += n as u64;
        progress(n as u64);
        if total > size {
            if sending {
                tx.abort(changed(total));
            }
            return Err(changed(total));
        }
        if sending {
            sending = futures::executor::block_on(tx.send_data(Bytes::from(block))).is_ok();
        }
    }
    if total != size {
        if sending {
            tx.abort(changed(total));
        }
        return Err(changed(total));
    }
    Ok((md5.finalize(), total))
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Deletes the staged object unless that was done: inline with
/// [`StagedGuard::delete`], in the background when the upload's future is
/// dropped half-way.
struct StagedGuard {
    client: Client,
    bucket: String,
    key: String,
    remote: String,
    background: Background,
    armed: bool,
}

impl StagedGuard {
    fn new(shared: &Shared, client: &Client, key: &str) -> StagedGuard {
        StagedGuard {
            client: client.clone(),
            bucket: shared.bucket().to_string(),
            key: key.to_string(),
            remote: shared.url(),
            background: shared.background.clone(),
            armed: true,
        }
    }

    /// Deletes the staged object now (as a task of its own, which completes
    /// even if the caller stops waiting). A failure is only logged.
    async fn delete(&mut self) {
        self.armed = false;
        let task = delete_staged(
            self.client.clone(),
            self.bucket.clone(),
            self.key.clone(),
            self.remote.clone(),
        );
        match self.background.spawn(task) {
            Ok(running) => {
                let _ = running.await;
            }
            Err(task) => task.await,
        }
    }
}

impl Drop for StagedGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let task = delete_staged(
            self.client.clone(),
            std::mem::take(&mut self.bucket),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.remote),
        );
        if self.background.spawn(task).is_err() {
            tracing::warn!(
                "no runtime left to delete a staged upload; a lifecycle rule expiring tmp/ \
                 will have to remove it"
            );
        }
    }
}

async fn delete_staged(client: Client, bucket: String, key: String, remote: String) {
    let res = client
        .delete_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await;
    if let Err(e) = res {
        tracing::warn!(
            %remote, %key,
            "could not delete a staged upload: {}",
            errors::describe(&e)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_and_copy_sources() {
        let md5 = Md5::of_bytes(b"foo");
        assert!(is_md5_of("\"acbd18db4cc2f85cedef654fccc4a4d8\"", &md5));
        assert!(is_md5_of("ACBD18DB4CC2F85CEDEF654FCCC4A4D8", &md5));
        assert!(!is_md5_of("\"acbd18db4cc2f85cedef654fccc4a4d8-2\"", &md5));
        assert!(etag_looks_like_md5(Some(
            "\"0123456789abcdef0123456789abcdef\""
        )));
        assert!(!etag_looks_like_md5(Some(
            "\"0123456789abcdef0123456789abcdef-3\""
        )));
        assert!(!etag_looks_like_md5(None));
        let encoded = percent_encoding::utf8_percent_encode("a b/tmp/x+y", COPY_SOURCE);
        assert_eq!(encoded.to_string(), "a%20b/tmp/x%2By");
    }
}
