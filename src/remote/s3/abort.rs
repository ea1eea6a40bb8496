//! Aborting multipart uploads that will not be completed.
//!
//! An [`AbortGuard`] is armed as soon as an upload is created. A failed upload
//! is aborted before its error is returned; an upload whose future is dropped
//! half-way (publish stops every other transfer on the first failure) is aborted
//! from `Drop`, in the background (see [`Background`]), so its parts do not stay
//! on the server. Aborts run as tasks of their own, so they complete even when
//! their caller goes away.

use aws_sdk_s3::Client;

use super::background::Background;
use super::{errors, Shared};

/// Aborts the upload unless disarmed: inline on failure, in the background when
/// the upload's future is dropped.
pub(super) struct AbortGuard {
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    background: Background,
    armed: bool,
}

impl AbortGuard {
    /// Armed for upload `upload_id` of `key`.
    pub(super) fn new(shared: &Shared, client: &Client, key: &str, upload_id: &str) -> AbortGuard {
        AbortGuard {
            client: client.clone(),
            bucket: shared.bucket().to_string(),
            key: key.to_string(),
            upload_id: upload_id.to_string(),
            background: shared.background.clone(),
            armed: true,
        }
    }

    /// The upload was completed: nothing to abort.
    pub(super) fn disarm(&mut self) {
        self.armed = false;
    }

    /// Aborts now; the abort runs as its own task, so it completes even if the
    /// caller stops waiting for it.
    pub(super) async fn abort(&mut self) {
        self.armed = false;
        let task = abort_upload(
            self.client.clone(),
            self.bucket.clone(),
            self.key.clone(),
            self.upload_id.clone(),
        );
        match self.background.spawn(task) {
            Ok(running) => {
                let _ = running.await;
            }
            Err(task) => task.await,
        }
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let task = abort_upload(
            self.client.clone(),
            std::mem::take(&mut self.bucket),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.upload_id),
        );
        if self.background.spawn(task).is_err() {
            tracing::warn!(
                bucket = %self.bucket,
                "no runtime left to abort an interrupted multipart upload; \
                 a lifecycle rule (AbortIncompleteMultipartUpload) will have to remove it"
            );
        }
    }
}

async fn abort_upload(client: Client, bucket: String, key: String, upload_id: String) {
    let res = client
        .abort_multipart_upload()
        .bucket(&bucket)
        .key(&key)
        .upload_id(&upload_id)
        .send()
        .await;
    if let Err(e) = res {
        if errors::code(&e) != Some("NoSuchUpload") {
            tracing::warn!(
                %bucket, %key, %upload_id,
                "could not abort a failed multipart upload: {}",
                errors::describe(&e)
            );
        }
    }
}
