//! A fault-injecting layer in front of the in-process S3 server.
//!
//! Each request draws from a seeded generator and is, by the shares in its
//! [`FaultPlan`], answered with a 500 InternalError or 503 SlowDown (proper S3
//! XML error bodies, after reading the request body as S3 does), dropped without
//! an answer (before or after the server processed it — the latter loses the
//! answer of a write that happened), delayed, or passed through untouched. A plan
//! can also fail every request of one method, to test failure paths, and flip a
//! byte of the body of PUTs to some keys, to test integrity checks.
//! [`FaultStats`] counts what was injected, so a test can check that faults
//! really happened.
//!
//! A full disk on the server is switched on and off at run time
//! ([`Faults::fill_disk_after`], [`Faults::free_disk`]): every request that
//! would write (PUT, and the POSTs that create or complete a multipart upload)
//! is then answered the way s3s-fs answers when its filesystem says ENOSPC:
//! `500 InternalError` with no message (s3s-fs hides the io error's text).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use s3s::service::S3Service;

use super::folder_keys::{self, error_response};

/// Which faults to inject, as shares of all requests (0.0 to 1.0, summed at most 1).
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// Seed of the generator (the same seed gives the same sequence of draws).
    pub seed: u64,
    /// Answered `500 InternalError`.
    pub internal_error: f64,
    /// Answered `503 SlowDown`.
    pub slow_down: f64,
    /// Connection closed without an answer, request not processed.
    pub drop_before: f64,
    /// Request processed, then the connection closed without an answer.
    pub drop_after: f64,
    /// Processed after a delay of up to `max_delay`.
    pub delay: f64,
    /// Longest injected delay.
    pub max_delay: Duration,
    /// Every request with this method is answered `500 InternalError`.
    pub fail_method: Option<Method>,
    /// Every request with this method is held this long before it is processed.
    pub slow_method: Option<(Method, Duration)>,
    /// Every request with this method is processed at once and its answer
    /// held this long (the client may give up on a request that took effect).
    pub late_answer: Option<(Method, Duration)>,
    /// Every PUT whose path contains this has one byte of its body flipped on
    /// the way to the server (a transfer corrupted past TCP's checksum).
    pub corrupt_puts_to: Option<&'static str>,
}

impl FaultPlan {
    /// No faults.
    pub fn none() -> FaultPlan {
        FaultPlan::default()
    }

    /// About `share` of all requests disturbed, spread over every kind of fault.
    pub fn mixed(seed: u64, share: f64) -> FaultPlan {
        FaultPlan {
            seed,
            internal_error: share * 0.25,
            slow_down: share * 0.25,
            drop_before: share * 0.15,
            drop_after: share * 0.15,
            delay: share * 0.20,
            max_delay: Duration::from_millis(300),
            ..FaultPlan::default()
        }
    }

    /// Every request with `method` fails with a 500.
    pub fn fail_every(method: Method) -> FaultPlan {
        FaultPlan {
            fail_method: Some(method),
            ..FaultPlan::default()
        }
    }
}

/// What was injected so far.
#[derive(Debug, Default)]
pub struct FaultStats {
    /// Requests seen.
    pub requests: AtomicU64,
    /// Error answers injected.
    pub errors: AtomicU64,
    /// Connections dropped.
    pub drops: AtomicU64,
    /// Requests delayed.
    pub delays: AtomicU64,
    /// Request bodies corrupted.
    pub corruptions: AtomicU64,
}

impl FaultStats {
    /// Faults of any kind injected.
    pub fn injected(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
            + self.drops.load(Ordering::Relaxed)
            + self.delays.load(Ordering::Relaxed)
            + self.corruptions.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    Error(StatusCode, &'static str, &'static str),
    DropBefore,
    DropAfter,
    Delay(Duration),
    LateAnswer(Duration),
    Corrupt,
    /// What s3s-fs answers when a write meets ENOSPC.
    DiskFull,
}

/// The plan, its generator and its counters.
#[derive(Debug)]
pub struct Faults {
    plan: FaultPlan,
    state: Mutex<u64>,
    /// What was injected.
    pub stats: FaultStats,
    /// Writes the disk still takes before it is full; negative: no limit.
    writes_left: AtomicI64,
}

impl Faults {
    /// Faults drawn from `plan`.
    pub fn new(plan: FaultPlan) -> Faults {
        let seed = plan.seed ^ 0x9e37_79b9_7f4a_7c15;
        Faults {
            plan,
            state: Mutex::new(seed),
            stats: FaultStats::default(),
            writes_left: AtomicI64::new(-1),
        }
    }

    /// The server's disk fills up after `writes` more writing requests.
    pub fn fill_disk_after(&self, writes: u32) {
        self.writes_left.store(i64::from(writes), Ordering::SeqCst);
    }

    /// Space is back: writes succeed again.
    pub fn free_disk(&self) {
        self.writes_left.store(-1, Ordering::SeqCst);
    }

    /// Whether a request writes to the disk (a DeleteObjects POST frees space).
    fn writes(method: &Method, query: Option<&str>) -> bool {
        *method == Method::PUT
            || (*method == Method::POST && !query.is_some_and(|q| q.starts_with("delete")))
    }

    /// Takes one write from the disk's remaining space; false once it is full.
    fn disk_takes_write(&self) -> bool {
        self.writes_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| match left {
                0 => None,
                n if n < 0 => Some(n),
                n => Some(n - 1),
            })
            .is_ok()
    }

    /// splitmix64: a uniform draw in [0, 1).
    fn draw(&self) -> f64 {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        *s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn decide(&self, method: &Method, path: &str, query: Option<&str>) -> Fault {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        if Self::writes(method, query) && !self.disk_takes_write() {
            return Fault::DiskFull;
        }
        let p = &self.plan;
        if method == Method::PUT && p.corrupt_puts_to.is_some_and(|part| path.contains(part)) {
            return Fault::Corrupt;
        }
        if p.fail_method.as_ref() == Some(method) {
            return Fault::Error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "injected: every request of this method fails",
            );
        }
        if let Some((slow, delay)) = &p.slow_method {
            if slow == method {
                return Fault::Delay(*delay);
            }
        }
        if let Some((late, delay)) = &p.late_answer {
            if late == method {
                return Fault::LateAnswer(*delay);
            }
        }
        let mut x = self.draw();
        let mut pick = |share: f64| {
            let hit = x < share;
            x -= share;
            hit
        };
        if pick(p.internal_error) {
            Fault::Error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "We encountered an internal error. Please try again.",
            )
        } else if pick(p.slow_down) {
            Fault::Error(
                StatusCode::SERVICE_UNAVAILABLE,
                "SlowDown",
                "Please reduce your request rate.",
            )
        } else if pick(p.drop_before) {
            Fault::DropBefore
        } else if pick(p.drop_after) {
            Fault::DropAfter
        } else if pick(p.delay) {
            Fault::Delay(p.max_delay.mul_f64(self.draw()))
        } else {
            Fault::None
        }
    }
}

/// An injected failure, which makes hyper close the connection without an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected: connection dropped")
    }
}

impl std::error::Error for Dropped {}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The S3 service behind the fault layer.
#[derive(Clone)]
pub struct FaultyService {
    inner: S3Service,
    faults: Arc<Faults>,
    /// s3s-fs's storage root.
    root: std::path::PathBuf,
}

impl FaultyService {
    /// `inner` (s3s-fs storing under `root`) with `faults` in front.
    pub fn new(inner: S3Service, faults: Arc<Faults>, root: &std::path::Path) -> FaultyService {
        FaultyService {
            inner,
            faults,
            root: root.to_path_buf(),
        }
    }
}

impl hyper::service::Service<Request<Incoming>> for FaultyService {
    type Response = Response<s3s::Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        if folder_keys::is_folder_key(&self.root, &req) {
            return Box::pin(async { Ok(folder_keys::no_such_key()) });
        }
        let fault = self
            .faults
            .decide(req.method(), req.uri().path(), req.uri().query());
        let (inner, faults) = (self.inner.clone(), self.faults.clone());
        Box::pin(async move {
            let stats = &faults.stats;
            let dropped = || -> BoxError { Box::new(Dropped) };
            match fault {
                Fault::None => Ok(inner
                    .call(req.map(s3s::Body::from))
                    .await
                    .map_err(BoxError::from)?),
                Fault::Error(status, code, message) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    drain(req.into_body()).await;
                    Ok(error_response(status, code, Some(message)))
                }
                Fault::DiskFull => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    drain(req.into_body()).await;
                    Ok(error_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "InternalError",
                        None,
                    ))
                }
                Fault::DropBefore => {
                    stats.drops.fetch_add(1, Ordering::Relaxed);
                    Err(dropped())
                }
                Fault::DropAfter => {
                    stats.drops.fetch_add(1, Ordering::Relaxed);
                    let _ = inner.call(req.map(s3s::Body::from)).await;
                    Err(dropped())
                }
                Fault::LateAnswer(d) => {
                    stats.delays.fetch_add(1, Ordering::Relaxed);
                    let answer = inner.call(req.map(s3s::Body::from)).await;
                    tokio::time::sleep(d).await;
                    Ok(answer.map_err(BoxError::from)?)
                }
                Fault::Corrupt => {
                    stats.corruptions.fetch_add(1, Ordering::Relaxed);
                    let (parts, body) = req.into_parts();
                    let mut bytes = body.collect().await?.to_bytes().to_vec();
                    let middle = bytes.len() / 2;
                    if let Some(b) = bytes.get_mut(middle) {
                        *b ^= 0x01;
                    }
                    let req =
                        Request::from_parts(parts, s3s::Body::from(bytes::Bytes::from(bytes)));
                    Ok(inner.call(req).await.map_err(BoxError::from)?)
                }
                Fault::Delay(d) => {
                    stats.delays.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(d).await;
                    Ok(inner
                        .call(req.map(s3s::Body::from))
                        .await
                        .map_err(BoxError::from)?)
                }
            }
        })
    }
}

/// Reads and discards a request body.
async fn drain(mut body: Incoming) {
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            return;
        }
    }
}
