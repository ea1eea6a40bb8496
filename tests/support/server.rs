//! An in-process S3 server (s3s-fs over a temporary directory, with SigV4
//! authentication) on 127.0.0.1, behind the fault layer, and S3 remotes that
//! talk to it with static test credentials passed explicitly (tests run in
//! parallel threads, so nothing is read from or written to the process
//! environment).
//!
//! s3s-fs keeps a bucket as a directory under its root and an object as a file
//! at `<root>/<bucket>/<key>`, which lets tests look at, and tamper with, what is
//! stored.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cairn::remote::s3::{S3Location, S3Remote, S3Settings, S3Tuning};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use tokio::net::TcpListener;

use super::faults::{FaultPlan, Faults, FaultyService};

/// Access key of the test server.
pub const ACCESS_KEY: &str = "cairn-test-access-key";
/// Secret key of the test server.
pub const SECRET_KEY: &str = "cairn-test-secret-key";
/// The bucket every test server starts with.
pub const BUCKET: &str = "cairn-test";

/// A running server; stops when dropped.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// What the fault layer injects, and its counters.
    pub faults: Arc<Faults>,
    dir: tempfile::TempDir,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl S3Server {
    /// Starts a server with one empty bucket and the given faults.
    pub async fn start(plan: FaultPlan) -> S3Server {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join(BUCKET)).expect("bucket dir");
        let fs = s3s_fs::FileSystem::new(dir.path()).expect("s3s-fs");
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let faults = Arc::new(Faults::new(plan));
        let service = FaultyService::new(builder.build(), faults.clone(), dir.path());

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let accept = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                // Without it, a GET whose body follows its headers in a second
                // segment waits for the client's delayed ACK (about 40 ms).
                let _ = socket.set_nodelay(true);
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        S3Server {
            endpoint: format!("http://{addr}"),
            faults,
            dir,
            accept,
        }
    }

    /// The server's storage root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Where the object `key` of the test bucket is stored.
    pub fn object_path(&self, key: &str) -> PathBuf {
        self.dir.path().join(BUCKET).join(key)
    }

    /// Settings for a remote at `s3://BUCKET/prefix` on this server.
    pub fn settings(&self, prefix: &str, tuning: S3Tuning) -> S3Settings {
        let location = S3Location {
            bucket: BUCKET.into(),
            prefix: prefix.into(),
        };
        S3Settings {
            endpoint: Some(self.endpoint.clone()),
            region: Some("us-east-1".into()),
            tuning,
            ..S3Settings::new(location)
        }
    }

    /// A remote at `s3://BUCKET/prefix` with the test credentials.
    pub fn remote(&self, prefix: &str, tuning: S3Tuning) -> S3Remote {
        S3Remote::with_credentials(self.settings(prefix, tuning), credentials())
    }

    /// Multipart uploads still open: s3s-fs keeps one `.upload-<id>.json` in its
    /// root per upload (and `.upload_id-<id>.part-N` per part) until it is
    /// completed or aborted. (s3s-fs has no ListMultipartUploads.)
    pub fn open_uploads(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.root()) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".upload-") || n.starts_with(".upload_id-"))
            .collect()
    }
}

/// The test server's credentials.
pub fn credentials() -> aws_sdk_s3::config::Credentials {
    aws_sdk_s3::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "cairn-tests")
}

/// Tuning for tests: quick retries, short timeouts, small parts.
pub fn test_tuning() -> S3Tuning {
    S3Tuning {
        multipart_threshold: 8 << 20,
        part_size: 5 << 20,
        part_jobs: 3,
        max_attempts: 10,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(10),
        ..S3Tuning::default()
    }
}
