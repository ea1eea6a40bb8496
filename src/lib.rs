//! cairn: a GitOps reconciler for versioned datasets.
//!
//! Layers, from the edges in (see docs/architecture.md):
//! - [`config`]: `pipelines.toml` text -> a validated [`config::Config`] (pure).
//! - [`dvc`]: DVC 3's formats: md5 hashing, `.dir` manifests, `.dvc` pointers, `.dvc/config`.
//! - [`remote`]: where dataset objects live ([`remote::Remote`]): a local directory or S3.
//! - [`dataset`]: the built-in steps: publish a workspace output to a remote, fetch it back.
//! - [`pipeline`]: the run state machine: (plan, status, observed attempts, now) -> actions (pure).
//! - [`backend`]: where a run's steps execute ([`backend::RunBackend`]): local processes or pods.
//! - [`k8s`]: Kubernetes mode: PipelineRuns reconciled into one pod per step.
//! - [`forge`]: where pointer commits go (a local git repository).
//! - [`store`]: run history (SQLite).
//! - [`service`]: `cairn serve`'s engine: a worker per served repository, plain methods for
//!   its triggers, and the read model ([`service::ReadModel`]) read-only views go through.
//! - [`dashboard`]: the read-only HTML pages `cairn serve` shows, built from the read model
//!   (pure rendering; no git).
//! - [`http`]: every route of `cairn serve` (webhook, probes, metrics, run API, dashboard),
//!   one file per concern, put together by [`http::app`](fn@http::app).
//! - [`commands`]: `/cairn` slash-commands in comments, and who may use them (pure).
//! - [`reconciler`]: the one place that carries out a run's decisions through the traits above.

pub mod backend;
pub mod backoff;
pub mod commands;
pub mod config;
pub mod dashboard;
pub mod dataset;
pub mod diffview;
pub mod dvc;
pub mod failpoint;
pub mod forge;
#[doc(hidden)]
pub mod fuzzing;
pub mod github;
pub mod http;
pub mod k8s;
pub mod metrics;
pub mod pipeline;
pub mod reconciler;
pub mod remote;
pub mod service;
pub mod settings;
pub mod store;
pub mod triggers;
