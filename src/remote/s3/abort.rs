//! Opening and aborting multipart uploads, so none is left open on the server.
//!
//! [`open`] sends CreateMultipartUpload from a task of its own and hands back an
//! armed [`AbortGuard`]. The task matters: publish stops every other transfer
//! on the first failure, and a caller dropped while the create request is in
//! flight would otherwise never learn the upload id the server just issued. The
//! guard travels back through a channel, so whichever side is left holding it
//! (the task, when the caller is gone; the channel, when the caller went away
//! before reading it; the caller) aborts the upload when it is dropped armed.
//!
//! A failed upload is aborted before its error is returned; an upload whose
//! future is dropped half-way is aborted from `Drop`, in the background (see
//! [`Background`]). Aborts run as tasks of their own, so they complete even
//! when their caller goes away.

use aws_sdk_s3::Client;
use tokio::sync::oneshot;

use super::background::Background;
use super::{errors, Shared};
use crate::dvc::ObjectId;
use crate::remote::RemoteError;

/// Opens a multipart upload of `id` at `key` and returns its armed guard.
pub(super) async fn open(
    shared: &Shared,
    client: &Client,
    id: ObjectId,
    key: &str,
) -> Result<AbortGuard, RemoteError> {
    let request = client
        .create_multipart_upload()
        .bucket(shared.bucket())
        .key(key);
    let remote = shared.url();
    let target = Target {
        client: client.clone(),
        bucket: shared.bucket().to_string(),
        key: key.to_string(),
        background: shared.background.clone(),
    };
    let (tx, rx) = oneshot::channel();
    let create = async move {
        let op = "upload (CreateMultipartUpload)";
        let result = match request.send().await {
            Err(e) => Err(errors::sdk(remote, Some(id), op, e)),
            Ok(created) => match created.upload_id() {
                Some(upload_id) => Ok(target.armed(upload_id.to_string())),
                None => Err(RemoteError::Other {
                    remote,
                    id: Some(id),
                    message: format!("{op} failed: the answer has no upload id"),
                }),
            },
        };
        // With the caller gone the guard comes back here and, dropped armed,
        // aborts the upload.
        let _ = tx.send(result);
    };
    if let Err(create) = shared.background.spawn(create) {
        create.await;
    }
    match rx.await {
        Ok(result) => result,
        // The task cannot end without sending unless it panicked.
        Err(_) => Err(RemoteError::Other {
            remote: shared.url(),
            id: Some(id),
            message: "upload (CreateMultipartUpload) failed: the request task panicked".into(),
        }),
    }
}

/// Where an upload lives, and how to reach it to abort it.
struct Target {
    client: Client,
    bucket: String,
    key: String,
    background: Background,
}

impl Target {
    fn armed(self, upload_id: String) -> AbortGuard {
        AbortGuard {
            target: self,
            upload_id,
            armed: true,
        }
    }
}

/// Aborts the upload unless disarmed: inline on failure, in the background when
/// the upload's future is dropped.
pub(super) struct AbortGuard {
    target: Target,
    upload_id: String,
    armed: bool,
}

impl AbortGuard {
    /// The id the server gave the upload.
    pub(super) fn upload_id(&self) -> &str {
        &self.upload_id
    }

    /// The upload was completed: nothing to abort.
    pub(super) fn disarm(&mut self) {
        self.armed = false;
    }

    /// Aborts now; the abort runs as its own task, so it completes even if the
    /// caller stops waiting for it.
    pub(super) async fn abort(&mut self) {
        self.armed = false;
        let task = self.abort_task();
        match self.target.background.spawn(task) {
            Ok(running) => {
                let _ = running.await;
            }
            Err(task) => task.await,
        }
    }

    fn abort_task(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        abort_upload(
            self.target.client.clone(),
            self.target.bucket.clone(),
            self.target.key.clone(),
            self.upload_id.clone(),
        )
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let task = self.abort_task();
        if self.target.background.spawn(task).is_err() {
            tracing::warn!(
                bucket = %self.target.bucket,
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
