//! A webhook delivery from the network: signature header and body are both
//! attacker-controlled. The checks are
//! `cairn::fuzzing::webhook`, shared with tests/hostile_input.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn::fuzzing::webhook(data));
