//! Test-only helpers for the S3 remote: an in-process S3 server (s3s + s3s-fs)
//! and a seeded fault-injecting layer in front of it. None of this ships.
#![allow(dead_code, unused_imports)] // each test binary uses its own subset

pub mod faults;
pub mod folder_keys;
pub mod server;

pub use faults::FaultPlan;
pub use server::{test_tuning, S3Server};
