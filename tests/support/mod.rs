//! Test-only servers the suites talk to, none of which ships: an in-process
//! S3 server (s3s + s3s-fs) with a seeded fault-injecting layer in front of
//! it, the fake GitHub and Kubernetes API servers, a served cairn process,
//! and the webhook examples package.

pub mod fake_github;
pub mod fake_kube;
pub mod faults;
pub mod folder_keys;
pub mod served;
pub mod server;
pub mod webhook_examples;

pub use faults::FaultPlan;
pub use server::{test_tuning, S3Server};
