//! cairn's integration tests, built as one test binary.
//!
//! Each file beside this one is a suite of its own (`cargo test --test
//! integration s3_remote::` runs one); `common/` and `support/` hold what the
//! suites share (scratch repositories, the real peers, the fake GitHub and
//! Kubernetes servers). One binary instead of one per file, because each
//! binary links the whole dependency graph: 22 of them made the test build
//! the slowest part of CI.

mod common;
mod support;

mod backends;
mod cli;
mod crash_safety;
mod dashboard;
mod docs;
mod dvc_interop;
mod dvc_vectors;
mod faults;
mod github_client;
mod hostile_input;
mod isolation;
mod kube_artifacts;
mod kube_controller;
mod kube_serve;
mod load_intake;
mod load_schedules;
mod local_run;
mod s3_interop;
mod s3_remote;
mod serve_github;
mod serve_local;
mod server_intake;
mod triggers_local;
mod webhook_examples;
