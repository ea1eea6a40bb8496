//! Where the npm package `@octokit/webhooks-examples` (GitHub's documented
//! webhook payloads) is, for the tests that replay it.
//!
//! scripts/peers.sh (sourced by scripts/test.sh) installs it and exports
//! CAIRN_TEST_WEBHOOK_EXAMPLES; without it, or the package in the cache, the
//! tests fail: they never skip.

use std::path::{Path, PathBuf};

/// Keep in step with WEBHOOKS_EXAMPLES_VERSION in scripts/peers.sh.
pub const PACKAGE_VERSION: &str = "7.6.1";

/// The package's folder (the one holding its `package.json`).
pub fn package_dir() -> PathBuf {
    const HINT: &str = "run the tests through scripts/test.sh, which installs \
        @octokit/webhooks-examples (scripts/peers.sh) and exports CAIRN_TEST_WEBHOOK_EXAMPLES; \
        or `export CAIRN_CACHE=...; source scripts/peers.sh` first";
    if let Some(dir) = std::env::var_os("CAIRN_TEST_WEBHOOK_EXAMPLES") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("package.json").is_file(),
            "CAIRN_TEST_WEBHOOK_EXAMPLES={} holds no package.json; {HINT}",
            dir.display()
        );
        return dir;
    }
    // Where scripts/peers.sh puts it with scripts/test.sh's default cache.
    let cache = std::env::var_os("CAIRN_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/cairn-ci")));
    let candidate = cache.map(|c| {
        c.join(format!("webhooks-examples-{PACKAGE_VERSION}"))
            .join("node_modules/@octokit/webhooks-examples")
    });
    match candidate {
        Some(dir) if dir.join("package.json").is_file() => dir,
        _ => panic!(
            "CAIRN_TEST_WEBHOOK_EXAMPLES is not set and the package is not in the cache; {HINT}"
        ),
    }
}
