//! The checks behind cairn's fuzz targets, one function per parser of
//! untrusted input. They live in the library, not in `fuzz/`, so that the
//! cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`, nightly + libFuzzer) and the
//! stable test that replays every seed and past crash
//! (`tests/hostile_input.rs`) run the very same assertions.
//!
//! Each check takes arbitrary bytes and panics only when cairn misbehaves:
//! a parser that panics, accepts what it must refuse, or cannot read back
//! what it wrote. Not part of cairn's API.

use crate::commands::{self, Command, MAX_COMMANDS, MAX_PIPELINES};
use crate::dvc::{Manifest, PointerFile};
use crate::triggers::{parse_event, verify_signature, WebhookSecret};

/// A fuzz target's check of one input.
pub type Check = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/<name>.rs`.
pub const TARGETS: [(&str, Check); 5] = [
    ("webhook", webhook),
    ("slash_commands", slash_commands),
    ("pipelines_toml", pipelines_toml),
    ("dvc_pointer", dvc_pointer),
    ("dir_manifest", dir_manifest),
];

/// The event names the webhook target tries a verified body as.
const EVENTS: [&str; 6] = [
    "push",
    "issue_comment",
    "pull_request",
    "ping",
    "installation",
    "",
];

/// A webhook delivery: the signature header and the body are both the
/// sender's. Input: one byte choosing the event name, then the header line,
/// then the body. Only the one right MAC (hex in either case) verifies, and
/// every event cairn acts on parses or answers an error that renders.
pub fn webhook(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let secret = WebhookSecret::new(b"fuzz-secret").expect("a non-empty secret");
    let (header, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&rest[..0], rest),
    };
    let header = std::str::from_utf8(header).ok();
    let good = secret.sign(body);
    if verify_signature(&secret, body, header).is_ok() {
        let header = header.expect("verified without a header");
        assert!(header.eq_ignore_ascii_case(&good), "{header:?} verified");
    }
    assert!(verify_signature(&secret, body, Some(&good)).is_ok());
    let event = EVENTS[usize::from(selector) % EVENTS.len()];
    match parse_event(event, body) {
        Ok(parsed) if !event.is_empty() => assert_eq!(parsed.name(), event),
        Ok(_) => {}
        // Errors become 400 bodies: they must say something.
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// The pipelines a slash-command comment is checked against.
const PIPELINES: [&str; 3] = ["etl", "nightly-report", "train_model"];

/// A pull request comment (anyone who can comment writes it). The parser's
/// bounds hold, a `run` names only known pipelines, each once, every command
/// reads back as itself, and every answer keeps its code spans closed (a
/// comment must not be able to break the markup of cairn's reply).
pub fn slash_commands(data: &[u8]) {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = commands::parse(body, &PIPELINES);
    // The commands, then at most one "too many" or "too long" note each.
    assert!(parsed.len() <= MAX_COMMANDS + 2, "{}", parsed.len());
    for result in &parsed {
        match result {
            Ok(command) => {
                if let Command::Run { pipelines } = command {
                    assert!(!pipelines.is_empty() && pipelines.len() <= MAX_PIPELINES);
                    for (i, p) in pipelines.iter().enumerate() {
                        assert!(PIPELINES.contains(&p.as_str()), "ran unknown {p:?}");
                        assert!(!pipelines[..i].contains(p), "{p:?} twice");
                    }
                }
                let again = commands::parse(&command.to_string(), &PIPELINES);
                assert_eq!(again, vec![Ok(command.clone())]);
            }
            Err(e) => {
                let answer = e.to_string();
                assert!(!answer.is_empty());
                assert_eq!(answer.matches('`').count() % 2, 0, "{answer}");
                assert!(answer.len() < 4096, "a {}-byte answer", answer.len());
            }
        }
    }
}

/// A pipelines.toml from any commit of a served repository. Loading never
/// panics, every diagnostic names the file, and a file that loads is stable
/// and holds only tasks with commands whose `needs` exist.
pub fn pipelines_toml(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    match crate::config::parse(source, "pipelines.toml") {
        Ok(config) => {
            let again = crate::config::parse(source, "pipelines.toml").expect("loads twice");
            assert_eq!(config, again);
            for p in config.pipelines.values() {
                let names: Vec<_> = p.tasks.iter().map(|t| &t.name).collect();
                for t in p.tasks.iter() {
                    assert!(!t.command.is_empty(), "a task without a command loaded");
                    for need in &t.needs {
                        assert!(names.contains(&need), "{need} is not a task of {}", p.name);
                    }
                }
            }
        }
        Err(diagnostics) => {
            let text = diagnostics.to_string();
            assert!(text.starts_with("pipelines.toml"), "{text}");
        }
    }
}

/// A `.dvc` pointer file from a repository. What parses survives a write and
/// a second parse unchanged: the outputs and every key cairn keeps.
pub fn dvc_pointer(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(pointer) = PointerFile::parse(text, "data.dvc") else {
        return;
    };
    if let Ok(yaml) = pointer.to_yaml("data.dvc") {
        let again = PointerFile::parse(&yaml, "data.dvc")
            .unwrap_or_else(|e| panic!("cairn cannot read what it wrote: {e}\n{yaml}"));
        assert_eq!(again, pointer, "{yaml}");
    }
}

/// A `.dir` manifest downloaded from a remote (anyone with write access to
/// the bucket controls it). What parses is written back byte for byte as DVC
/// would, with the same id.
pub fn dir_manifest(data: &[u8]) {
    let Ok(manifest) = Manifest::parse(data) else {
        return;
    };
    let bytes = manifest.to_bytes();
    let again =
        Manifest::parse(&bytes).unwrap_or_else(|e| panic!("cairn cannot read what it wrote: {e}"));
    assert_eq!(again.entries(), manifest.entries());
    assert_eq!(again.id(), manifest.id());
    assert_eq!(again.to_bytes(), bytes);
}
