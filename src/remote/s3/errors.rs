//! Turning SDK failures into [`RemoteError`]s that name the remote, the object
//! and what was being done, with the server's error code and message.
//!
//! The SDK has already retried whatever was worth retrying by the time an error
//! gets here, so these are final.

use std::error::Error as StdError;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::byte_stream::error::Error as ByteStreamError;

use crate::dvc::ObjectId;
use crate::remote::RemoteError;

/// The HTTP status of a failed request, if a response arrived.
pub(super) fn status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// Whether the server said the object (or upload) does not exist.
pub(super) fn is_not_found<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    status(err) == Some(404) || matches!(err.code(), Some("NoSuchKey" | "NotFound"))
}

/// The server's error code (`BadDigest`, `SlowDown`, ...), if it sent one.
pub(super) fn code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    err.code()
}

/// A final SDK error as a [`RemoteError::Other`] naming `op` and the object.
pub(super) fn sdk<E>(
    remote: String,
    id: Option<ObjectId>,
    op: &str,
    err: SdkError<E, HttpResponse>,
) -> RemoteError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let explain = match err.code() {
        Some("BadDigest") => {
            " (the server rejected the bytes: they do not match their Content-MD5, so the \
             file changed after it was hashed or was corrupted on the way)"
        }
        Some("SlowDown") => " (the server kept throttling after every retry)",
        Some("AccessDenied") | Some("InvalidAccessKeyId") | Some("SignatureDoesNotMatch") => {
            " (check the AWS credentials: environment, profile, web identity or container role)"
        }
        Some("NoSuchBucket") => " (the bucket does not exist)",
        _ => "",
    };
    RemoteError::Other {
        remote,
        id,
        message: format!("{op} failed: {}{explain}", describe(&err)),
    }
}

/// `Code: message (HTTP status)` for an error answer, else the error chain
/// (timeouts, connection failures, credential problems).
pub(super) fn describe<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    match (err, err.code()) {
        (SdkError::ServiceError(service), Some(code)) => format!(
            "{code}: {} (HTTP {})",
            err.message().unwrap_or("no message"),
            service.raw().status().as_u16()
        ),
        _ => chain(err),
    }
}

/// An error and its sources, `: `-separated (without the SDK's debug dump).
fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// A body that broke off while streaming.
pub(super) fn body(remote: String, id: ObjectId, op: &str, err: ByteStreamError) -> RemoteError {
    RemoteError::Other {
        remote,
        id: Some(id),
        message: format!("{op} failed: {}", chain(&err)),
    }
}
