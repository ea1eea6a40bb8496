//! A pull request comment with slash-commands: anyone who can comment writes it. The checks are
//! `cairn::fuzzing::slash_commands`, shared with tests/hostile_input.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn::fuzzing::slash_commands(data));
