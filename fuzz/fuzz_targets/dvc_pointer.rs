//! A `.dvc` pointer file from a repository. The checks are
//! `cairn::fuzzing::dvc_pointer`, shared with tests/hostile_input.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn::fuzzing::dvc_pointer(data));
