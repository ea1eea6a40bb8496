//! The settings file: TOML text -> a [`Layer`], or every problem found, each
//! pinned to `file:line:col`.
//!
//! Like `pipelines.toml`, the file is read with `toml-span` so that problems
//! name their place, and the walk carries on past a bad value so one round
//! trip fixes them all. A diagnostic shows the offending line; when that line
//! may hold a secret (a secret-looking key, or any unknown key), the value is
//! replaced by `***` in the copy of the line it shows.

use std::path::Path;

use toml_span::value::{Key as TomlKey, Value, ValueInner};
use toml_span::Span;

use super::layer::{find_key, Layer, Origin, Raw, KEYS, SECTIONS};
use crate::config::{closest, Diagnostic, Diagnostics};

/// Walks the settings file `source` (named `file` in messages) into `layer`.
pub(super) fn walk(
    source: &str,
    file: &str,
    base: Option<&Path>,
    layer: &mut Layer,
) -> Result<(), Diagnostics> {
    let mut w = Walker {
        src: source,
        file,
        problems: Vec::new(),
    };
    match toml_span::parse(source) {
        Ok(root) => w.root(&root, base, layer),
        Err(e) => w.problem(e.span, None, format!("invalid TOML: {e}")),
    }
    // The walk goes through tables in key order; report in source order.
    w.problems.sort_by_key(|d| d.span.start);
    match Diagnostics::from_vec(w.problems) {
        None => Ok(()),
        Some(d) => Err(d),
    }
}

struct Walker<'s> {
    src: &'s str,
    file: &'s str,
    problems: Vec<Diagnostic>,
}

impl Walker<'_> {
    /// Records `message` at `span`; `redact` is a span whose text must not be
    /// shown (it is replaced by `***` in the quoted line).
    fn problem(&mut self, span: Span, redact: Option<Span>, message: String) {
        let diagnostic = match redact {
            Some(r) if r.start >= span.end => {
                let mut shown = String::with_capacity(self.src.len());
                shown.push_str(&self.src[..r.start]);
                shown.push_str("***");
                shown.push_str(&self.src[r.end..]);
                Diagnostic::new(self.file, &shown, span.start..span.end, message)
            }
            // A value that starts before its key cannot happen; show nothing
            // of the line rather than risk it.
            Some(_) => Diagnostic::new(self.file, "", 0..0, message),
            None => Diagnostic::new(self.file, self.src, span.start..span.end, message),
        };
        self.problems.push(diagnostic);
    }

    /// toml-span gives the inside of a quoted string; users think of the
    /// quotes as part of the value.
    fn value_span(&self, value: &Value<'_>) -> Span {
        let span = value.span;
        if value.as_str().is_none() {
            return span;
        }
        let b = self.src.as_bytes();
        // Multi-line strings (""" or ''') have up to three quotes each side.
        let mut start = span.start;
        let mut end = span.end;
        while start > 0 && matches!(b[start - 1], b'"' | b'\'') && span.start - start < 3 {
            start -= 1;
        }
        while end < b.len() && matches!(b[end], b'"' | b'\'') && end - span.end < 3 {
            end += 1;
        }
        Span::new(start, end)
    }

    fn root(&mut self, root: &Value<'_>, base: Option<&Path>, layer: &mut Layer) {
        let Some(table) = root.as_table() else {
            return;
        };
        for (key, value) in table {
            let name = key.name.as_ref();
            if SECTIONS.contains(&name) {
                match value.as_table() {
                    Some(section) => {
                        for (k, v) in section {
                            self.entry(Some(name), k, v, base, layer);
                        }
                    }
                    None => {
                        let span = self.value_span(value);
                        self.problem(span, None, format!("`{name}` must be a table (`[{name}]`)"));
                    }
                }
            } else {
                self.entry(None, key, value, base, layer);
            }
        }
    }

    fn entry(
        &mut self,
        section: Option<&str>,
        key: &TomlKey<'_>,
        value: &Value<'_>,
        base: Option<&Path>,
        layer: &mut Layer,
    ) {
        let name = key.name.as_ref();
        let place = match section {
            Some(s) => format!("`[{s}] {name}`"),
            None => format!("`{name}`"),
        };
        let redact = Some(self.value_span(value));
        if let Some(hint) = secret_hint(section, name) {
            let message = format!(
                "{place}: secrets are never read from the settings file, which is meant to \
                 be committed and shared; {hint}"
            );
            self.problem(key.span, redact, message);
            return;
        }
        let Some(spec) = find_key(section, name) else {
            let mut message = format!("unknown key {place}");
            let candidates = KEYS
                .iter()
                .filter(|k| k.section == section)
                .map(|k| k.name)
                .chain(
                    section
                        .is_none()
                        .then_some(SECTIONS)
                        .into_iter()
                        .flatten()
                        .copied(),
                );
            if name.contains("insecure") {
                message.push_str(
                    " (signature checks can only be turned off with the \
                     --insecure-no-signature flag)",
                );
            } else if let Some(near) = closest(name, candidates) {
                message.push_str(&format!(" (did you mean `{near}`?)"));
            } else if let Some(other) = KEYS.iter().find(|k| k.name == name) {
                let table = other
                    .section
                    .map_or("the top level".to_owned(), |s| format!("[{s}]"));
                message.push_str(&format!(" (it belongs in {table})"));
            }
            self.problem(key.span, redact, message);
            return;
        };
        let raw = match value.as_ref() {
            ValueInner::String(s) => Raw::Str(s),
            ValueInner::Integer(n) => Raw::Int(*n),
            ValueInner::Boolean(b) => Raw::Bool(*b),
            ValueInner::Array(items) => {
                let mut strings = Vec::with_capacity(items.len());
                for item in items {
                    let Some(s) = item.as_str() else {
                        let span = self.value_span(item);
                        let found = type_name(item);
                        self.problem(
                            span,
                            None,
                            format!("{place}: expected strings, found {found}"),
                        );
                        return;
                    };
                    strings.push(s);
                }
                Raw::Strings(strings)
            }
            _ => Raw::Other(type_name(value)),
        };
        let span = self.value_span(value);
        if let Err(reason) = layer.set(spec, raw, Origin::File(span), base) {
            self.problem(span, None, format!("{place}: {reason}"));
        }
    }
}

/// Where a secret goes instead, when `key` looks like one.
fn secret_hint(section: Option<&str>, key: &str) -> Option<&'static str> {
    let k = key.to_ascii_lowercase();
    if k.ends_with("_file") || k.ends_with("_path") {
        return None;
    }
    if section == Some("api") && (k.contains("token") || k.contains("secret")) {
        return Some(
            "set CAIRN_API_TOKEN, or put the token in a file and name it with \
             `[api] token_file` or CAIRN_API_TOKEN_FILE",
        );
    }
    if k.contains("secret") {
        Some(
            "set CAIRN_WEBHOOK_SECRET, or put the secret in a file and name it with \
             `[webhook] secret_file` or CAIRN_WEBHOOK_SECRET_FILE",
        )
    } else if k.contains("token") || k.contains("password") {
        Some(
            "set CAIRN_GITHUB_TOKEN, or put the token in a file and name it with \
             `[github] token_file` or CAIRN_GITHUB_TOKEN_FILE",
        )
    } else if k.contains("private_key") || k == "app_key" || k == "key" || k.ends_with("_pem") {
        Some(
            "name the GitHub App's private key file (PEM) with `[github] app_key_file` \
             or CAIRN_GITHUB_APP_KEY_FILE",
        )
    } else {
        None
    }
}

fn type_name(value: &Value<'_>) -> &'static str {
    match value.as_ref() {
        ValueInner::String(_) => "a string",
        ValueInner::Integer(_) => "an integer",
        ValueInner::Float(_) => "a float",
        ValueInner::Boolean(_) => "a boolean",
        ValueInner::Array(_) => "an array",
        ValueInner::Table(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(src: &str) -> Vec<String> {
        let mut layer = Layer::default();
        match walk(src, "cairn.toml", None, &mut layer) {
            Ok(()) => Vec::new(),
            Err(d) => d.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn every_problem_is_reported_at_its_place() {
        let src = "listen = \"nowhere\"\n[webhook]\nbody_limt = \"1MiB\"\nqueue_capacity = 0\n[github]\nrepositories = [\"acme/data\", 3]\n";
        let p = problems(src);
        assert_eq!(p.len(), 4, "{p:#?}");
        assert!(
            p[0].starts_with("cairn.toml:1:10: `listen`: `nowhere` is not an IP"),
            "{}",
            p[0]
        );
        assert!(
            p[1].starts_with(
                "cairn.toml:3:1: unknown key `[webhook] body_limt` (did you mean `body_limit`?)"
            ),
            "{}",
            p[1]
        );
        assert!(
            p[2].starts_with("cairn.toml:4:18: `[webhook] queue_capacity`: 0 is too small"),
            "{}",
            p[2]
        );
        assert!(
            p[3].starts_with(
                "cairn.toml:6:30: `[github] repositories`: expected strings, found an integer"
            ),
            "{}",
            p[3]
        );
    }

    #[test]
    fn misplaced_keys_are_pointed_to_their_table() {
        let p = problems("[webhook]\ninsecure_no_signature = true\n");
        assert!(p[0].contains("--insecure-no-signature flag"), "{}", p[0]);
        let p = problems("api_url = \"https://x\"\n");
        assert!(
            p[0].contains("unknown key `api_url` (it belongs in [github])"),
            "{}",
            p[0]
        );
    }

    #[test]
    fn secret_values_are_never_shown() {
        for src in [
            "[webhook]\nsecret = \"hunter2-xyz\"\n",
            "[github]\ntoken = 'hunter2-xyz'\n",
            "webhook_secret = \"\"\"hunter2-xyz\"\"\"\n",
            "[github]\napp_private_key = \"hunter2-xyz\"\n",
            "passwd = \"hunter2-xyz\"\n",
        ] {
            let p = problems(src);
            assert_eq!(p.len(), 1, "{src}");
            assert!(!p[0].contains("hunter2"), "{}", p[0]);
            assert!(p[0].contains("***"), "{}", p[0]);
        }
        let p = problems("[webhook]\nsecret = \"hunter2-xyz\"\n");
        assert!(
            p[0].starts_with(
                "cairn.toml:2:1: `[webhook] secret`: secrets are never read from the settings file"
            ),
            "{}",
            p[0]
        );
        assert!(p[0].contains("CAIRN_WEBHOOK_SECRET"), "{}", p[0]);
    }

    #[test]
    fn syntax_errors_have_a_place() {
        let p = problems("listen = \n");
        assert!(p[0].starts_with("cairn.toml:1:"), "{}", p[0]);
        assert!(p[0].contains("invalid TOML"), "{}", p[0]);
    }
}
