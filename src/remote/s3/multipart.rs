//! Multipart uploads of large files: parts streamed from disk, several at once,
//! each with its own `Content-MD5`, and the whole file's md5 checked against the
//! object id before the upload is completed.
//!
//! One blocking task reads the file once, in order, hashing each part and the
//! whole file, and hands each hashed part (number, offset, length, md5) to the
//! uploaders; they stream that region of the file again (from the page cache)
//! as the part's body. The reader stays at most a few parts ahead of the
//! uploads, and parts in flight are bounded per remote, so memory does not grow
//! with the file size or the number of files.
//!
//! Nothing partial remains: on any failure the upload is aborted (and if the
//! caller drops the upload half-way, the abort is spawned in the background; see
//! [`abort`]), even when it is dropped while the upload is being created. If
//! the file no longer hashes to its id, the upload is aborted instead of
//! completed. Only an upload whose CreateMultipartUpload answer was lost on the
//! network can escape this; a bucket lifecycle rule
//! (AbortIncompleteMultipartUpload) is the backstop for that.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};

use super::abort;
use super::upload::content_md5;
use super::{errors, Shared};
use crate::dvc::{Md5, Md5Hasher, ObjectId};
use crate::remote::RemoteError;

/// Bytes read from the file at a time while hashing.
const HASH_BLOCK: usize = 1 << 20;

/// One hashed part, ready to upload.
#[derive(Debug, Clone, Copy)]
struct PartPlan {
    number: i32,
    offset: u64,
    len: u64,
    md5: Md5,
}

/// Uploads file `src` (`size` bytes) as `id` in parts.
pub(super) async fn upload(
    shared: &Shared,
    id: ObjectId,
    src: &Path,
    size: u64,
) -> Result<(), RemoteError> {
    let client = shared.client().await;
    let key = shared.key(&id);
    let mut guard = abort::open(shared, client, id, &key).await?;
    let upload = Upload {
        shared,
        client,
        id,
        key: &key,
        upload_id: guard.upload_id(),
        src,
        size,
    };
    let result = match upload.parts().await {
        Ok(parts) => upload.complete(parts).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => guard.disarm(),
        Err(_) => guard.abort().await,
    }
    result
}

/// One multipart upload in progress.
struct Upload<'a> {
    shared: &'a Shared,
    client: &'a Client,
    id: ObjectId,
    key: &'a str,
    upload_id: &'a str,
    src: &'a Path,
    size: u64,
}

impl Upload<'_> {
    /// Hashes and uploads every part; returns them in order.
    async fn parts(&self) -> Result<Vec<CompletedPart>, RemoteError> {
        let tuning = &self.shared.settings.tuning;
        let part_size = tuning.part_size_for(self.size);
        let window = tuning.part_jobs.max(1);
        let (tx, plans) = mpsc::channel::<PartPlan>(window);
        let (src, size) = (self.src.to_path_buf(), self.size);
        let reader = tokio::task::spawn_blocking(move || hash_parts(&src, size, part_size, tx));

        let mut parts = Vec::new();
        let mut uploads = plans.map(|plan| self.part(plan)).buffer_unordered(window);
        while let Some(part) = uploads.next().await {
            // On error the reader sees the channel close and stops.
            parts.push(part?);
        }
        drop(uploads);

        let read = reader.await.map_err(|e| RemoteError::Other {
            remote: self.shared.url(),
            id: Some(self.id),
            message: format!("upload (read source) failed: worker task failed: {e}"),
        })?;
        let (actual, bytes) = match read {
            Ok(Some(done)) => done,
            Ok(None) => {
                return Err(RemoteError::Other {
                    remote: self.shared.url(),
                    id: Some(self.id),
                    message: "upload (read source) failed: the reader stopped early".into(),
                })
            }
            Err(source) => {
                return Err(RemoteError::Io {
                    remote: self.shared.url(),
                    id: Some(self.id),
                    op: "upload (read source)",
                    source,
                })
            }
        };
        if actual != self.id.md5 {
            return Err(RemoteError::ContentMismatch {
                remote: self.shared.url(),
                id: self.id,
                actual,
                bytes,
            });
        }
        parts.sort_by_key(|p| p.part_number());
        Ok(parts)
    }

    /// Uploads one part, streamed from its region of the file.
    async fn part(&self, plan: PartPlan) -> Result<CompletedPart, RemoteError> {
        let _slot = self.shared.part_slots.acquire().await.ok();
        let op = format!("upload (UploadPart {})", plan.number);
        let body = ByteStream::read_from()
            .path(self.src)
            .offset(plan.offset)
            .length(Length::Exact(plan.len))
            .buffer_size(self.shared.settings.tuning.read_buffer)
            .build()
            .await
            .map_err(|e| RemoteError::Io {
                remote: self.shared.url(),
                id: Some(self.id),
                op: "upload (open source)",
                source: io::Error::other(e),
            })?;
        let out = self
            .client
            .upload_part()
            .bucket(self.shared.bucket())
            .key(self.key)
            .upload_id(self.upload_id)
            .part_number(plan.number)
            .content_md5(content_md5(&plan.md5))
            .content_length(i64::try_from(plan.len).unwrap_or(i64::MAX))
            .body(body)
            .send()
            .await
            .map_err(|e| errors::sdk(self.shared.url(), Some(self.id), &op, e))?;
        let e_tag = out.e_tag().ok_or_else(|| RemoteError::Other {
            remote: self.shared.url(),
            id: Some(self.id),
            message: format!("{op} failed: the answer has no ETag"),
        })?;
        Ok(CompletedPart::builder()
            .part_number(plan.number)
            .e_tag(e_tag)
            .build())
    }

    /// Completes the upload. When a Complete's answer is lost, its retry is
    /// refused (S3 says `NoSuchUpload`, s3s-fs `AccessDenied`) although the object
    /// was written: a failed Complete therefore succeeded if the object is there at
    /// full size (content-addressed, so the key names its content).
    async fn complete(&self, parts: Vec<CompletedPart>) -> Result<(), RemoteError> {
        let done = self
            .client
            .complete_multipart_upload()
            .bucket(self.shared.bucket())
            .key(self.key)
            .upload_id(self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        let err = match done {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        if self.object_is_complete().await {
            return Ok(());
        }
        Err(errors::sdk(
            self.shared.url(),
            Some(self.id),
            "upload (CompleteMultipartUpload)",
            err,
        ))
    }

    async fn object_is_complete(&self) -> bool {
        let head = self
            .client
            .head_object()
            .bucket(self.shared.bucket())
            .key(self.key)
            .send()
            .await;
        matches!(head, Ok(h) if h.content_length() == i64::try_from(self.size).ok())
    }
}

/// The reader side: hashes `size` bytes of `src` part by part and sends each
/// part's plan. Returns the whole md5 and byte count, or None if the uploads
/// stopped listening (they failed).
fn hash_parts(
    src: &Path,
    size: u64,
    part_size: u64,
    mut tx: mpsc::Sender<PartPlan>,
) -> io::Result<Option<(Md5, u64)>> {
    let mut file = File::open(src)?;
    let mut whole = Md5Hasher::new();
    let mut buf = vec![0u8; HASH_BLOCK];
    let (mut offset, mut number) = (0u64, 1i32);
    while offset < size {
        let len = part_size.min(size - offset);
        let mut part = Md5Hasher::new();
        let mut left = len;
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
            let n = match file.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the file is shorter than {size} bytes (it changed after hashing)"),
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            part.update(&buf[..n]);
            whole.update(&buf[..n]);
            left -= n as u64;
        }
        let plan = PartPlan {
            number,
            offset,
            len,
            md5: part.finalize(),
        };
        if futures::executor::block_on(tx.send(plan)).is_err() {
            return Ok(None);
        }
        offset += len;
        number += 1;
    }
    Ok(Some((whole.finalize(), offset)))
}
