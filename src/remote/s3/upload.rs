//! Single-request uploads (PutObject), and the choice between those and
//! multipart uploads.
//!
//! A file is streamed from disk (the SDK re-opens it for a retry), never read
//! into memory whole, except a small one (up to one read buffer, 256 KiB by
//! default), which is read in one call and sent from memory: for the thousands
//! of small files of a typical directory dataset that saves a trip through the
//! blocking thread pool and a buffer per file. Every PutObject carries
//! `Content-MD5`, the base64 of the object id, so a server that checks it (S3,
//! Garage, MinIO, moto) stores nothing when the bytes differ from what was
//! hashed. Streamed bodies are sent with `UNSIGNED-PAYLOAD` by the SDK (no
//! SHA-256 pass over the data); `Content-MD5` is the integrity check.

use std::io;
use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
use aws_sdk_s3::operation::put_object::{PutObjectError, PutObjectOutput};
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
    let tuning = &shared.settings.tuning;
    if size >= tuning.multipart_threshold {
        return multipart::upload(shared, id, src, size).await;
    }
    if size <= tuning.read_buffer as u64 {
        // One read buffer's worth: read it here, in one system call, and send
        // it from memory. A streamed body would cost a trip through the
        // blocking thread pool to open and read the file, and a buffer of
        // `read_buffer` bytes, for each of what are often thousands of small
        // files; the file was just hashed, so its pages are in memory.
        let bytes = read_small(src, size).map_err(|source| RemoteError::Io {
            remote: shared.url(),
            id: Some(id),
            op: "upload (read source)",
            source,
        })?;
        return put(shared, id, ByteStream::from(bytes), size).await;
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

/// The `size` bytes of a small file. A file of another length changed after
/// it was hashed: that is an error here, as a mismatch with `Content-MD5`
/// would be on the server.
fn read_small(src: &Path, size: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let len = usize::try_from(size).map_err(io::Error::other)?;
    let mut bytes = Vec::with_capacity(len);
    // One byte more than expected, to notice a file that grew.
    std::fs::File::open(src)?
        .take(size + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "the file has {} bytes, not the {size} it had when hashed (it changed)",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
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
        .content_md5(content_md5(&id.md5));
    put_request(shared, request, body, size)
        .await
        .map_err(|e| errors::sdk(shared.url(), Some(id), "upload (PutObject)", e))?;
    Ok(())
}

/// Sends PutObject `request` with `body` (`size` bytes), with a read timeout
/// long enough for the size. The SDK signs a body in memory (a small file: a
/// SHA-256 pass over a few KiB, cheaper per request than the per-request
/// plugin that would turn it off) and sends a streamed one unsigned, where
/// `Content-MD5` (or, for a staged upload, the ETag check) protects it.
pub(super) async fn put_request(
    shared: &Shared,
    request: PutObjectFluentBuilder,
    body: ByteStream,
    size: u64,
) -> Result<PutObjectOutput, SdkError<PutObjectError, HttpResponse>> {
    let request = request
        .content_length(i64::try_from(size).unwrap_or(i64::MAX))
        .body(body);
    match long_request_timeout(&shared.settings.tuning, size) {
        Some(timeouts) => {
            let config = aws_sdk_s3::config::Builder::default().timeout_config(timeouts);
            request.customize().config_override(config).send().await
        }
        None => request.send().await,
    }
}

/// Slowest upload rate a request's timeout allows for (1 MiB/s).
const MIN_UPLOAD_RATE: u64 = 1 << 20;

/// The SDK's read timeout runs from sending a request to its answer, the body
/// included, so a large single PUT gets one long enough for [`MIN_UPLOAD_RATE`]:
/// a power of two seconds (few distinct values, since the SDK keeps a connection
/// pool per timeout setting). None when the configured one suffices.
pub(super) fn long_request_timeout(tuning: &S3Tuning, size: u64) -> Option<TimeoutConfig> {
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
