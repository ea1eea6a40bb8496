//! Downloads: GetObject streamed into the destination file, in concurrent
//! byte ranges for large objects.
//!
//! The first request asks for the first `part_size` bytes (`Range: bytes=0-…`),
//! which tells the object's size (`Content-Range`) at no extra cost, as the AWS
//! transfer managers do; a larger object's other ranges are then fetched
//! concurrently (bounded by the remote's part slots) and written at their
//! offsets. A server that ignores `Range` simply sends the whole object, which is
//! streamed; an empty object (where any range is unsatisfiable) is fetched with a
//! plain GET.
//!
//! The SDK retries a request until its response headers arrive; a body that
//! breaks off later (connection reset, stalled stream) is retried here, resuming
//! from the last byte written, with the same backoff and attempt budget. The
//! caller checks the md5 and renames the file into place, so a partial file never
//! becomes a dataset file. Memory per stream is one write buffer.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};

use super::settings::S3Tuning;
use super::{errors, Shared};
use crate::dvc::ObjectId;
use crate::remote::RemoteError;

/// Bytes collected before each write to the destination file.
const WRITE_BUFFER: usize = 1 << 20;

/// Writes object `id` to `dest`.
pub(super) async fn get_to_file(
    shared: &Shared,
    id: ObjectId,
    dest: &Path,
) -> Result<(), RemoteError> {
    let dest_path = dest.to_path_buf();
    let file = blocking(shared, id, "download (create)", move || {
        File::create(&dest_path)
    })
    .await?;
    let get = Get {
        shared,
        id,
        key: shared.key(&id),
        file: Arc::new(file),
    };
    let chunk = shared.settings.tuning.part_size_for(0);
    let total = match get.range(0, Some(chunk - 1)).await? {
        Fetched::Whole(len) => len,
        Fetched::Part { total } => {
            if total > chunk {
                let starts = (chunk..total).step_by(usize::try_from(chunk).unwrap_or(usize::MAX));
                let jobs = shared.settings.tuning.part_jobs.max(1);
                futures::stream::iter(starts)
                    .map(|start| get.slotted_range(start, (start + chunk).min(total) - 1))
                    .buffer_unordered(jobs)
                    .try_collect::<Vec<()>>()
                    .await?;
            }
            total
        }
    };
    let file = get.file.clone();
    blocking(shared, id, "download (write)", move || file.set_len(total)).await
}

/// What a first request fetched.
enum Fetched {
    /// The server sent the whole object (no range support, or an empty object).
    Whole(u64),
    /// The requested range of an object of `total` bytes.
    Part { total: u64 },
}

/// One object being downloaded.
struct Get<'a> {
    shared: &'a Shared,
    id: ObjectId,
    key: String,
    file: Arc<File>,
}

impl Get<'_> {
    /// A range other than the first: waits for a part slot.
    async fn slotted_range(&self, first: u64, last: u64) -> Result<(), RemoteError> {
        let _slot = self.shared.part_slots.acquire().await.ok();
        match self.range(first, Some(last)).await? {
            Fetched::Part { .. } => Ok(()),
            Fetched::Whole(_) => Err(self.other(format!(
                "download failed: the server ignored the range {first}-{last}"
            ))),
        }
    }

    /// Fetches bytes `first..=last` (to the end if `last` is None) into the file,
    /// resuming after broken bodies.
    async fn range(&self, first: u64, last: Option<u64>) -> Result<Fetched, RemoteError> {
        let tuning = &self.shared.settings.tuning;
        let client = self.shared.client().await;
        let mut pos = first;
        let mut breaks = 0u32;
        let mut ranged = true;
        loop {
            let mut request = client
                .get_object()
                .bucket(self.shared.bucket())
                .key(&self.key);
            if ranged {
                let end = last.map(|l| l.to_string()).unwrap_or_default();
                request = request.range(format!("bytes={pos}-{end}"));
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) if errors::is_not_found(&e) => {
                    return Err(RemoteError::NotFound {
                        remote: self.shared.url(),
                        id: self.id,
                    })
                }
                // An empty object has no satisfiable range.
                Err(e) if ranged && pos == 0 && errors::status(&e) == Some(416) => {
                    ranged = false;
                    continue;
                }
                Err(e) => {
                    return Err(errors::sdk(
                        self.shared.url(),
                        Some(self.id),
                        "download (GetObject)",
                        e,
                    ))
                }
            };
            let got_range = response.content_range().and_then(parse_content_range);
            let (end, total) = match got_range {
                Some((start, end, total)) if start == pos => (end, Some(total)),
                Some(_) => {
                    return Err(self
                        .other("download failed: the server sent another range than asked".into()))
                }
                // A whole object: the server ignores ranges, or we did not ask.
                None if pos == first && first == 0 => {
                    ranged = false;
                    let len = response
                        .content_length()
                        .and_then(|n| u64::try_from(n).ok())
                        .unwrap_or(0);
                    (len.saturating_sub(1), None)
                }
                None => {
                    return Err(
                        self.other("download failed: the server ignored a range request".into())
                    )
                }
            };
            let stop = match last {
                Some(l) => l.min(end),
                None => end,
            };
            let broken = self.stream_body(response.body, &mut pos).await?;
            let complete = pos > stop || (total.is_none() && broken.is_none());
            if complete {
                return Ok(match total {
                    Some(total) => Fetched::Part { total },
                    None => Fetched::Whole(pos),
                });
            }
            breaks += 1;
            if breaks >= tuning.max_attempts.max(1) {
                let message = match broken {
                    Some(err) => {
                        return Err(errors::body(
                            self.shared.url(),
                            self.id,
                            "download (body)",
                            err,
                        ))
                    }
                    None => format!(
                        "download failed: the body ended at byte {pos} of {}",
                        stop + 1
                    ),
                };
                return Err(self.other(message));
            }
            if !ranged {
                pos = 0; // no ranges: start over
            }
            tracing::debug!(key = %self.key, pos, "download broke off, resuming");
            tokio::time::sleep(backoff(tuning, breaks)).await;
        }
    }

    /// Writes the body at `*pos` onwards; returns the error that broke it, if any.
    async fn stream_body(
        &self,
        mut body: aws_sdk_s3::primitives::ByteStream,
        pos: &mut u64,
    ) -> Result<Option<aws_sdk_s3::primitives::ByteStreamError>, RemoteError> {
        let mut buf: Vec<u8> = Vec::with_capacity(WRITE_BUFFER);
        let mut buf_at = *pos;
        let broken = loop {
            match body.next().await {
                None => break None,
                Some(Ok(bytes)) => {
                    buf.extend_from_slice(&bytes);
                    if buf.len() >= WRITE_BUFFER {
                        buf = self.write_at(buf, buf_at).await?;
                        buf_at = *pos + bytes.len() as u64;
                    }
                    *pos += bytes.len() as u64;
                }
                Some(Err(e)) => break Some(e),
            }
        };
        if !buf.is_empty() {
            self.write_at(buf, buf_at).await?;
        }
        Ok(broken)
    }

    /// Writes `buf` at `offset`; returns the emptied buffer for reuse.
    async fn write_at(&self, buf: Vec<u8>, offset: u64) -> Result<Vec<u8>, RemoteError> {
        let file = self.file.clone();
        blocking(self.shared, self.id, "download (write)", move || {
            write_all_at(&file, &buf, offset)?;
            let mut buf = buf;
            buf.clear();
            Ok(buf)
        })
        .await
    }

    fn other(&self, message: String) -> RemoteError {
        RemoteError::Other {
            remote: self.shared.url(),
            id: Some(self.id),
            message,
        }
    }
}

#[cfg(unix)]
fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

#[cfg(not(unix))]
fn write_all_at(mut file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(buf)
}

/// Runs blocking file IO off the async threads; IO errors name the object.
async fn blocking<T: Send + 'static>(
    shared: &Shared,
    id: ObjectId,
    op: &'static str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, RemoteError> {
    let io_err = |source| RemoteError::Io {
        remote: shared.url(),
        id: Some(id),
        op,
        source,
    };
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io_err(io::Error::other(e)))?
        .map_err(io_err)
}

/// `bytes FIRST-LAST/TOTAL` -> (first, last, total).
fn parse_content_range(header: &str) -> Option<(u64, u64, u64)> {
    let spec = header.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = spec.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    Some((
        first.trim().parse().ok()?,
        last.trim().parse().ok()?,
        total.trim().parse().ok()?,
    ))
}

/// Full-jitter exponential backoff before retry number `attempt` (1-based),
/// the shape of the SDK's own retries.
pub(super) fn backoff(tuning: &S3Tuning, attempt: u32) -> Duration {
    crate::backoff::Backoff {
        base: tuning.initial_backoff,
        cap: tuning.max_backoff,
        jitter: crate::backoff::Jitter::Full,
    }
    .delay(attempt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parsing() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, 199, 200))
        );
        assert_eq!(parse_content_range("bytes 0-0/1"), Some((0, 0, 1)));
        assert_eq!(parse_content_range("bytes */200"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[test]
    fn backoff_is_capped() {
        let t = S3Tuning::default();
        for attempt in 1..40 {
            assert!(backoff(&t, attempt) <= t.max_backoff);
        }
        assert!(backoff(&t, 1) <= t.initial_backoff);
    }
}
