//! Every input the fuzzers kept, were seeded with or ever crashed on
//! (`fuzz/corpus/<target>/`, `fuzz/seeds/<target>/`,
//! `fuzz/regressions/<target>/`), replayed through
//! the fuzz targets' own checks (`cairn::fuzzing`) on every test run, plus
//! hand-made hostile inputs the fuzzers reach only slowly. The parsers must answer with a value or an
//! error, never panic, hang or blow the stack.

use std::path::Path;

use cairn::dvc::{Manifest, PointerFile};
use cairn::triggers::parse_event;

/// The files under `fuzz/corpus/<target>`, `fuzz/seeds/<target>` and
/// `fuzz/regressions/<target>`.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for kind in ["corpus", "seeds", "regressions"] {
        let Ok(dir) = std::fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        for entry in dir {
            let path = entry.unwrap().path();
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

#[test]
fn corpus_seeds_and_regressions_replay_cleanly() {
    for (target, check) in cairn::fuzzing::TARGETS {
        let inputs = inputs(target);
        assert!(!inputs.is_empty(), "no seeds for fuzz target {target}");
        for (name, data) in inputs {
            let result = std::panic::catch_unwind(|| check(&data));
            assert!(result.is_ok(), "{target}: {name} panicked");
        }
    }
}

/// Each `[[bin]]` of fuzz/Cargo.toml has its check here, and each check a
/// fuzz target, so the two runs of every input never drift apart.
#[test]
fn every_fuzz_target_is_replayed() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/Cargo.toml"))
            .unwrap();
    let mut bins: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|name| *name != "cairn-fuzz")
        .collect();
    let mut checks: Vec<&str> = cairn::fuzzing::TARGETS.iter().map(|(n, _)| *n).collect();
    bins.sort();
    checks.sort();
    assert_eq!(bins, checks);
}

#[test]
fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
    for depth in [1_000usize, 100_000] {
        let body = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        for event in ["push", "issue_comment", "pull_request", "ping"] {
            assert!(
                parse_event(event, body.as_bytes()).is_err(),
                "{event} {depth}"
            );
        }
        let obj = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        assert!(parse_event("push", obj.as_bytes()).is_err());
        assert!(Manifest::parse(body.as_bytes()).is_err());
    }
}

#[test]
fn deeply_nested_toml_and_yaml_are_errors() {
    let toml = format!(
        "[pipelines.a]\ndataset = \"d.csv\"\nx = {}1{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert!(cairn::config::parse(&toml, "pipelines.toml").is_err());
    let yaml = format!("outs: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    assert!(PointerFile::parse(&yaml, "data.dvc").is_err());
}

#[test]
fn huge_and_odd_pipelines_files_are_answered() {
    // Many errors, each reported with its place, in reasonable time.
    let mut s = String::new();
    for i in 0..5_000 {
        s.push_str(&format!(
            "[pipelines.p{i}.tasks.t]\ncommand = [\"x\"]\nneeds = [\"missing{i}\"]\n"
        ));
    }
    let err = cairn::config::parse(&s, "pipelines.toml").unwrap_err();
    assert!(
        err.iter().count() >= 5_000,
        "every pipeline's problems are reported"
    );
    for odd in [
        "\u{feff}[pipelines.a]",
        "\0\0\0",
        "[pipelines.\"\u{202e}evil\"]\ndataset = \"d\"",
        "[pipelines.a]\ndataset = \"../../etc/passwd\"\n[pipelines.a.tasks.t]\ncommand=[\"x\"]",
    ] {
        let err = cairn::config::parse(odd, "pipelines.toml").unwrap_err();
        assert!(err.to_string().starts_with("pipelines.toml:"), "{err}");
    }
}

#[test]
fn manifests_that_escape_the_dataset_are_refused() {
    // (A backslash is an ordinary character in a POSIX file name.)
    for relpath in ["../x", "/etc/passwd", "a/../../b", "a/./b", ""] {
        let m = format!(
            "[{{\"md5\": \"60b725f10c9c85c70d97880dfe8191b3\", \"relpath\": {}}}]",
            serde_json::to_string(relpath).unwrap()
        );
        assert!(
            Manifest::parse(m.as_bytes()).is_err(),
            "{relpath:?} accepted"
        );
    }
}
