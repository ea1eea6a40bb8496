//! A `.dvc` pointer file from a repository. Checks that parsing never panics
//! and that what parses survives a write and a second parse unchanged.
#![no_main]

use cairn::dvc::PointerFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(pointer) = PointerFile::parse(text, "data.dvc") else {
        return;
    };
    if let Ok(yaml) = pointer.to_yaml("data.dvc") {
        let again = PointerFile::parse(&yaml, "data.dvc")
            .unwrap_or_else(|e| panic!("cairn cannot read what it wrote: {e}\n{yaml}"));
        assert_eq!(again.outs, pointer.outs);
    }
});
