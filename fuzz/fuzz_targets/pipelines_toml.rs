//! A pipelines.toml from any commit of a served repository. The checks are
//! `cairn::fuzzing::pipelines_toml`, shared with tests/hostile_input.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn::fuzzing::pipelines_toml(data));
