//! Single-request uploads (PutObject), and the choice between those and
//! multipart uploads.
//!
//! A file is streamed from disk (the SDK re-opens it for a retry), never read
//! into memory. Every PutObject carries `Content-MD5`, the base64 of the object
//! id, so a server that checks it (S3, Garage, MinIO, moto) stores nothing when
//! the bytes differ from what was hashed. Streamed bodies are sent with
//! `UNSIGNED-PAYLOAD` by the SDK (no SHA-256 pass over the data); `Content-MD5`
//! is the integrity check.

use std::io;
use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::primitives::{ByteStream, Length};

use super::settings::S3Tuning;
use super::{errors, multipart, Shared};
use crate::dvc::{Md5, ObjectId};
use crate::remote::RemoteError;

/// `Content-MD5` header value for `md5`.
pub(super) fn content_md5(md5: &Md5) -> String {
    aws_smithy_types::base64::encode(md5.0)
}

/// Uploads file `src` (`size` bytes) as `id`: in one request below the multipart
/// threshold, in parts above it.
pub(super) async fn put_file(
    shared: &Shared,
    id: ObjectId,
    src: &Path,
    size: u64,
) -> Result<(), RemoteError> {
    if size >= shared.settings.tuning.multipart_threshold {
        return multipart::upload(shared, id, src, size).await;
    }
    let body = ByteStream::read_from()
        .path(src)
        .length(Length::Exact(size))
        .buffer_size(shared.settings.tuning.read_buffer)
        .build()
        .await
        .map_err(|e| RemoteError::Io {
            remote: shared.url(),
            id: Some(id),
            op: "upload (open source)",
            source: io::Error::other(e),
        })?;
    put(shared, id, body, size).await
}

/// Uploads `bytes` as `id`, after checking locally that they hash to it.
pub(super) async fn put_bytes(
    shared: &Shared,
    id: ObjectId,
    bytes: Vec<u8>,
) -> Result<(), RemoteError> {
    let actual = Md5::of_bytes(&bytes);
    if actual != id.md5 {
        return Err(RemoteError::ContentMismatch {
            remote: shared.url(),
            id,
            actual,
            bytes: bytes.len() as u64,
        });
    }
    let size = bytes.len() as u64;
    put(shared, id, ByteStream::from(bytes), size).await
}

async fn put(
    shared: &Shared,
    id: ObjectId,
    body: ByteStream,
    size: u64,
) -> Result<(), RemoteError> {
    let client = shared.client().await;
    let request = client
        .put_object()
        .bucket(shared.bucket())
        .key(shared.key(&id))
        .content_md5(content_md5(&id.md5))
        .content_length(i64::try_from(size).unwrap_or(i64::MAX))
        .body(body);
    let sent = match long_request_timeout(&shared.settings.tuning, size) {
        Some(timeouts) => {
            let config = aws_sdk_s3::config::Builder::default().timeout_config(timeouts);
            request.customize().config_override(config).send().await
        }
        None => request.send().await,
    };
    sent.map_err(|e| errors::sdk(shared.url(), Some(id), "upload (PutObject)", e))?;
    Ok(())
}

/// Slowest upload rate a request's timeout allows for (1 MiB/s).
const MIN_UPLOAD_RATE: u64 = 1 << 20;

/// The SDK's read timeout runs from sending a request to its answer, the body
/// included, so a large single PUT gets one long enough for [`MIN_UPLOAD_RATE`]:
/// a power of two seconds (few distinct values, since the SDK keeps a connection
/// pool per timeout setting). None when the configured one suffices.
fn long_request_timeout(tuning: &S3Tuning, size: u64) -> Option<TimeoutConfig> {
    let needed = size.div_ceil(MIN_UPLOAD_RATE).max(1).next_power_of_two();
    let needed = Duration::from_secs(needed);
    (needed > tuning.read_timeout).then(|| {
        TimeoutConfig::builder()
            .connect_timeout(tuning.connect_timeout)
            .read_timeout(needed)
            .build()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_puts_get_longer_timeouts() {
        let t = S3Tuning::default();
        assert!(long_request_timeout(&t, 64 << 20).is_none());
        let long = long_request_timeout(&t, 1 << 30).and_then(|c| c.read_timeout());
        assert_eq!(long, Some(Duration::from_secs(1024)));
        assert_eq!(content_md5(&Md5::of_bytes(b"")), "1B2M2Y8AsgTpgAmY7PhCfg==");
    }
}
