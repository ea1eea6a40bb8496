//! Writing whole YAML values (mappings, lists, scalars) in ruamel.yaml's block style.
//!
//! Used for the keys of a `.dvc` file that cairn does not manage (`desc`, `meta`,
//! an output's `remote`, ...), so they survive a rewrite in the layout DVC itself
//! would give them: mappings indented by 2, list dashes at their key's indent,
//! scalars through [`super::yaml::write_value`]. Also the one-line double-quoted
//! form used when ruamel's own folding would not read back.

use serde_yaml_ng::Value;

use super::yaml::write_value;
use super::yaml_resolve::resolves_to_str;

/// A mapping key as text (numbers and bools as written).
pub(crate) fn key_string(k: &Value) -> Option<String> {
    match k {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A double-quoted YAML scalar on one line: every character a YAML reader could
/// fold, strip or reject is escaped.
pub(crate) fn one_line_double_quoted(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            '\u{a0}'..='\u{2027}' | '\u{202a}'..='\u{d7ff}' | '\u{e000}'..='\u{fefe}' => {
                out.push(c)
            }
            '\u{ff00}'..='\u{fffd}' | '\u{10000}'.. => out.push(c),
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// How string scalars are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scalars {
    /// As ruamel.yaml writes them: plain where possible, folded past column 80.
    Ruamel,
    /// One-line double-quoted: for a value ruamel's folding would not read back
    /// (a run of spaces at a fold loses all but one).
    OneLine,
}

impl Scalars {
    pub(crate) fn write(self, s: &mut String, column: usize, indent: usize, v: &str) {
        match self {
            Scalars::Ruamel => write_value(s, column, indent, v),
            Scalars::OneLine => {
                s.push(' ');
                s.push_str(&one_line_double_quoted(v));
            }
        }
    }
}

/// Writes `key: value` in ruamel's block style, starting at column `indent`
/// (the caller has already written the indentation); no trailing newline.
pub(crate) fn emit_entry(s: &mut String, indent: usize, key: &str, value: &Value, style: Scalars) {
    let key_text = key_repr(key);
    let col = indent + key_text.chars().count() + 1;
    s.push_str(&key_text);
    s.push(':');
    match value {
        Value::Null => {}
        Value::Bool(b) => s.push_str(if *b { " true" } else { " false" }),
        Value::Number(n) => s.push_str(&format!(" {n}")),
        Value::String(v) => style.write(s, col, indent + 2, v),
        Value::Sequence(items) if items.is_empty() => s.push_str(" []"),
        Value::Mapping(m) if m.is_empty() => s.push_str(" {}"),
        Value::Sequence(items) => {
            for item in items {
                s.push('\n');
                s.push_str(&" ".repeat(indent));
                emit_item(s, indent, item, style);
            }
        }
        Value::Mapping(m) => {
            for (k, v) in m {
                s.push('\n');
                s.push_str(&" ".repeat(indent + 2));
                emit_entry(s, indent + 2, &key_string(k).unwrap_or_default(), v, style);
            }
        }
        Value::Tagged(_) => push_tagged(s, indent + 2, value),
    }
}

/// A tagged value (`!tag ...`), as serde_yaml writes it, with every line
/// after the first indented to `indent`, so that a block collection under
/// the tag stays inside its key.
fn push_tagged(s: &mut String, indent: usize, value: &Value) {
    let text = serde_yaml_ng::to_string(value).unwrap_or_default();
    s.push(' ');
    for (i, line) in text.trim_end().lines().enumerate() {
        if i > 0 {
            s.push('\n');
            s.push_str(&" ".repeat(indent));
        }
        s.push_str(line);
    }
}

/// Writes `- item` at column `indent` (already indented).
fn emit_item(s: &mut String, indent: usize, item: &Value, style: Scalars) {
    s.push('-');
    match item {
        Value::Mapping(m) if !m.is_empty() => {
            for (i, (k, v)) in m.iter().enumerate() {
                if i == 0 {
                    s.push(' ');
                } else {
                    s.push('\n');
                    s.push_str(&" ".repeat(indent + 2));
                }
                emit_entry(s, indent + 2, &key_string(k).unwrap_or_default(), v, style);
            }
        }
        Value::String(v) => style.write(s, indent + 1, indent + 2, v),
        Value::Null => {}
        Value::Bool(b) => s.push_str(if *b { " true" } else { " false" }),
        Value::Number(n) => s.push_str(&format!(" {n}")),
        Value::Sequence(items) if items.is_empty() => s.push_str(" []"),
        Value::Mapping(_) => s.push_str(" {}"),
        Value::Sequence(items) => {
            for (i, it) in items.iter().enumerate() {
                if i == 0 {
                    s.push(' ');
                } else {
                    s.push('\n');
                    s.push_str(&" ".repeat(indent + 2));
                }
                emit_item(s, indent + 2, it, style);
            }
        }
        Value::Tagged(_) => push_tagged(s, indent + 2, item),
    }
}

/// A mapping key: plain when a reader would load it back as the same string,
/// single-quoted otherwise.
fn key_repr(key: &str) -> String {
    let mut probe = String::new();
    write_value(&mut probe, 0, 2, key);
    let plain = probe.strip_prefix(' ').unwrap_or(&probe);
    if resolves_to_str(key) && plain == key {
        key.to_string()
    } else {
        format!("'{}'", key.replace('\'', "''"))
    }
}
