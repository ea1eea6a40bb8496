//! A `.dir` manifest downloaded from a remote (anyone with write access to
//! the bucket controls it). The checks are
//! `cairn::fuzzing::dir_manifest`, shared with tests/hostile_input.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn::fuzzing::dir_manifest(data));
