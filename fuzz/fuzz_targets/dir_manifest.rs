//! A `.dir` manifest downloaded from a remote (anyone with write access to
//! the bucket controls it). Checks that parsing never panics and that a
//! manifest that parses is written back byte for byte as DVC would, with the
//! same id.
#![no_main]

use cairn::dvc::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(manifest) = Manifest::parse(data) else {
        return;
    };
    let bytes = manifest.to_bytes();
    let again = Manifest::parse(&bytes)
        .unwrap_or_else(|e| panic!("cairn cannot read what it wrote: {e}"));
    assert_eq!(again.entries(), manifest.entries());
    assert_eq!(again.id(), manifest.id());
    assert_eq!(again.to_bytes(), bytes);
});
