//! A DVC 3 remote in an S3 bucket (AWS S3 or an S3-compatible server), with
//! aws-sdk-s3.
//!
//! Objects live at `<prefix>/files/md5/<2 hex>/<30 hex>[.dir]` under
//! `s3://bucket/prefix`, exactly where `dvc push` puts them, so either tool reads
//! what the other wrote. This is the data path of every run, so it is built for
//! throughput with memory that does not grow with the data:
//!
//! - one client (one connection pool) per remote, created on first use so that
//!   [`crate::remote::open`] stays synchronous (`client.rs`);
//! - uploads stream from the file (a small file, up to one read buffer, is read
//!   in one call and sent from memory); every PutObject carries `Content-MD5`
//!   (the id *is* the md5, so this costs nothing) and no payload signature;
//!   above the multipart threshold a file goes up in parts, each with its own
//!   `Content-MD5`, several at once, checked against the id before completion
//!   and aborted on any failure (`upload.rs`, `multipart.rs`, `abort.rs`);
//! - a large file the remote probably lacks can go up while it is hashed: to a
//!   staging key, checked by its ETag, then copied into place on the server
//!   (`staged.rs`);
//! - [`Remote::missing`] sends a HEAD per object for a few ids and lists for
//!   many, as DVC does (`check.rs`);
//! - downloads stream into the destination file, large objects in concurrent
//!   byte ranges, and resume when a body breaks off (`download.rs`);
//! - the SDK retries 5xx, throttling, timeouts and resets with backoff and
//!   jitter; errors name the remote, the object and the server's error code
//!   (`errors.rs`).
//!
//! See [`S3Settings`] and [`S3Tuning`] for what can be configured.

mod abort;
mod background;
mod check;
mod client;
mod download;
mod errors;
mod multipart;
pub mod settings;
mod staged;
mod upload;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::Client;
use tokio::sync::{OnceCell, Semaphore};

pub use settings::{S3Location, S3Settings, S3Tuning};

use super::{ByteProgress, HashedPut, Remote, RemoteError};
use crate::dvc::{ObjectId, RemoteConfig};
use background::Background;

/// A DVC remote in an S3 bucket. Cheap to clone (clones share the client).
#[derive(Debug, Clone)]
pub struct S3Remote {
    shared: Arc<Shared>,
}

/// What every operation of one remote shares.
#[derive(Debug)]
struct Shared {
    settings: S3Settings,
    display: String,
    client: OnceCell<Client>,
    /// Parts in flight over all multipart uploads of this remote.
    part_slots: Semaphore,
    /// Aborts of uploads whose future was dropped.
    background: Background,
    /// Uploading while hashing failed in a way that will not go away.
    overlap_off: AtomicBool,
}

impl Shared {
    fn new(settings: S3Settings, client: Option<Client>) -> Shared {
        Shared {
            display: settings.display_url(),
            part_slots: Semaphore::new(settings.tuning.part_jobs.max(1)),
            settings,
            client: OnceCell::new_with(client),
            background: Background::default(),
            overlap_off: AtomicBool::new(false),
        }
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| client::from_default_chain(&self.settings))
            .await
    }

    fn bucket(&self) -> &str {
        &self.settings.location.bucket
    }

    fn key(&self, id: &ObjectId) -> String {
        self.settings.location.key(id)
    }

    fn url(&self) -> String {
        self.display.clone()
    }
}

impl S3Remote {
    /// The remote a `.dvc/config` section describes (`url = s3://...`,
    /// `endpointurl`, `region`, `profile`, timeouts), with tuning from the
    /// `CAIRN_S3_*` environment variables and credentials from the AWS chain.
    pub fn from_config(cfg: &RemoteConfig) -> Result<S3Remote, RemoteError> {
        let mut settings = S3Settings::from_remote_config(cfg)?;
        settings.tuning =
            settings
                .tuning
                .from_env()
                .map_err(|reason| RemoteError::Unsupported {
                    url: cfg.url.clone(),
                    reason,
                })?;
        Ok(S3Remote::new(settings))
    }

    /// A remote whose credentials (and, unless set in `settings`, region and
    /// endpoint) come from the standard AWS chain, loaded on first use.
    pub fn new(settings: S3Settings) -> S3Remote {
        S3Remote {
            shared: Arc::new(Shared::new(settings, None)),
        }
    }

    /// A remote with fixed credentials that reads nothing from the environment
    /// (region: the settings' or `us-east-1`).
    pub fn with_credentials(settings: S3Settings, credentials: Credentials) -> S3Remote {
        let client = client::with_credentials(&settings, credentials);
        S3Remote {
            shared: Arc::new(Shared::new(settings, Some(client))),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &S3Settings {
        &self.shared.settings
    }

    /// The key object `id` is stored under.
    pub fn key(&self, id: &ObjectId) -> String {
        self.shared.key(id)
    }

    /// The SDK client (created on first use).
    pub async fn client(&self) -> &Client {
        self.shared.client().await
    }
}

#[async_trait::async_trait]
impl Remote for S3Remote {
    fn url(&self) -> String {
        self.shared.url()
    }

    async fn missing(&self, ids: &[ObjectId]) -> Result<Vec<ObjectId>, RemoteError> {
        check::missing(&self.shared, ids).await
    }

    async fn put_file(&self, id: &ObjectId, src: &Path, size: u64) -> Result<(), RemoteError> {
        upload::put_file(&self.shared, *id, src, size).await
    }

    async fn put_bytes(&self, id: &ObjectId, bytes: Vec<u8>) -> Result<(), RemoteError> {
        upload::put_bytes(&self.shared, *id, bytes).await
    }

    async fn put_file_hashing(
        &self,
        src: &Path,
        size: u64,
        progress: ByteProgress,
    ) -> Result<Option<HashedPut>, RemoteError> {
        staged::put_file_hashing(&self.shared, src, size, progress).await
    }

    async fn get_to_file(&self, id: &ObjectId, dest: &Path) -> Result<(), RemoteError> {
        download::get_to_file(&self.shared, *id, dest).await
    }

    async fn size(&self, id: &ObjectId) -> Result<u64, RemoteError> {
        check::size(&self.shared, *id).await
    }

    /// S3 acknowledges a write only once it is durable; this only waits for the
    /// aborts of uploads that were dropped half-way.
    async fn flush(&self) -> Result<(), RemoteError> {
        self.shared.background.idle().await;
        Ok(())
    }
}
