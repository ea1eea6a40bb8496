//! `.dvc` pointer files: reading any DVC 2/3 pointer, writing exactly what `dvc add` writes.
//!
//! A pointer commit is what reviewers see in a pull request, and DVC rewrites
//! pointers it considers different, so cairn writes byte-for-byte what
//! `dvc add` (DVC 3.67) writes for a fresh output:
//!
//! ```text
//! outs:
//! - md5: 849835d274483dc683eb416d6e4f887d.dir
//!   size: 4
//!   nfiles: 2
//!   hash: md5
//!   path: dir
//! ```
//!
//! Key order is `md5`, `size`, `nfiles` (directories), `isexec: true` (executable
//! single files), `hash: md5`, `path`; strings are quoted and folded as ruamel.yaml
//! does (see the private `yaml` module). Other keys (`desc`, `meta`, `remote`, ... at either
//! level) are kept in order and written back after the known ones in ruamel's block
//! style; for plain strings, numbers and simple nesting this matches DVC, for exotic
//! YAML it is best effort.
//!
//! DVC 2 pointers (no `hash: md5`, meaning the `md5-dos2unix` scheme) can be read
//! but never written: their md5 is not the md5 of the raw bytes.

use serde_yaml_ng::{Mapping, Value};

use super::ids::ObjectId;
use super::yaml::write_value;
use super::yaml_block::{emit_entry, key_string, Scalars};

/// How an output's md5 was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashScheme {
    /// DVC 3: md5 of the raw bytes (`hash: md5` in the pointer).
    Md5,
    /// DVC 2: `md5-dos2unix` (no `hash` key); readable, never written.
    LegacyMd5,
}

/// One entry of a pointer's `outs`.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The object id (`md5` field; `.dir` for directories).
    pub id: ObjectId,
    /// Total size in bytes.
    pub size: Option<u64>,
    /// Number of files (directories only).
    pub nfiles: Option<u64>,
    /// The (single) file is executable.
    pub isexec: bool,
    /// How `id` was computed.
    pub hash: HashScheme,
    /// Path of the output relative to the `.dvc` file's directory.
    pub path: String,
    /// Other keys of the entry (`desc`, `remote`, `cache`, ...), in file order.
    pub extra: Vec<(String, Value)>,
}

impl Output {
    /// A DVC 3 file output.
    pub fn file(id: ObjectId, size: u64, isexec: bool, path: impl Into<String>) -> Output {
        Output {
            id,
            size: Some(size),
            nfiles: None,
            isexec,
            hash: HashScheme::Md5,
            path: path.into(),
            extra: Vec::new(),
        }
    }

    /// A DVC 3 directory output.
    pub fn dir(id: ObjectId, size: u64, nfiles: u64, path: impl Into<String>) -> Output {
        Output {
            id,
            size: Some(size),
            nfiles: Some(nfiles),
            isexec: false,
            hash: HashScheme::Md5,
            path: path.into(),
            extra: Vec::new(),
        }
    }
}

/// A parsed `.dvc` file.
#[derive(Debug, Clone, PartialEq)]
pub struct PointerFile {
    /// The outputs (`outs`), usually exactly one.
    pub outs: Vec<Output>,
    /// Other top-level keys (`desc`, `meta`, `frozen`, `deps`, `wdir`, `md5`, ...),
    /// in file order; `true` when the key came before `outs`.
    pub extra: Vec<(String, Value, bool)>,
}

/// A pointer that cannot be read or written; names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct PointerError {
    /// The `.dvc` file.
    pub file: String,
    /// What is wrong.
    pub message: String,
}

impl PointerFile {
    /// A pointer with one output and nothing else.
    pub fn single(out: Output) -> PointerFile {
        PointerFile {
            outs: vec![out],
            extra: Vec::new(),
        }
    }

    /// Parses a `.dvc` file's text; `file_name` is used in errors.
    pub fn parse(text: &str, file_name: &str) -> Result<PointerFile, PointerError> {
        let err = |message: String| PointerError {
            file: file_name.to_string(),
            message,
        };
        let value: Value =
            serde_yaml_ng::from_str(text).map_err(|e| err(format!("not valid YAML: {e}")))?;
        let map = match value {
            Value::Mapping(m) => m,
            Value::Null => return Err(err("empty file, expected `outs:`".into())),
            _ => return Err(err("expected a mapping with `outs:`".into())),
        };
        let mut outs = None;
        let mut extra = Vec::new();
        for (k, v) in map {
            let key = key_string(&k).ok_or_else(|| err("top-level keys must be strings".into()))?;
            if key == "outs" {
                let Value::Sequence(items) = v else {
                    return Err(err("`outs` must be a list".into()));
                };
                let mut parsed = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    let Value::Mapping(m) = item else {
                        return Err(err(format!("outs[{i}] must be a mapping")));
                    };
                    parsed.push(parse_output(m).map_err(|m| err(format!("outs[{i}]: {m}")))?);
                }
                outs = Some(parsed);
            } else {
                extra.push((key, v, outs.is_none()));
            }
        }
        let outs = outs.ok_or_else(|| err("no `outs:` (is this a DVC pointer file?)".into()))?;
        if outs.is_empty() {
            return Err(err("`outs` is empty".into()));
        }
        Ok(PointerFile { outs, extra })
    }

    /// The file text, exactly as `dvc add` writes it. Legacy (DVC 2) outputs are
    /// refused: their md5 would be wrong under `hash: md5`.
    ///
    /// One deliberate difference: where ruamel's folding would change a value when
    /// read back (a run of spaces at a fold past column 80, which DVC then misreads
    /// in its own pointer), the strings of that output (or of the top-level keys)
    /// are written as one-line double-quoted strings, so the pointer says what it
    /// was meant to.
    pub fn to_yaml(&self, file_name: &str) -> Result<String, PointerError> {
        if let Some(out) = self.outs.iter().find(|o| o.hash != HashScheme::Md5) {
            return Err(PointerError {
                file: file_name.to_string(),
                message: format!(
                    "output {:?} uses DVC 2's md5-dos2unix hash; cairn writes only DVC 3 pointers",
                    out.path
                ),
            });
        }
        let ruamel = vec![Scalars::Ruamel; self.outs.len()];
        let text = self.render(Scalars::Ruamel, &ruamel);
        // Where ruamel's folding would not read back (an output or a top-level
        // key changes), that part is written with one-line scalars instead.
        let (top, outs) = match PointerFile::parse(&text, file_name) {
            Ok(reread) if reread == *self => return Ok(text),
            Ok(reread) if reread.outs.len() == self.outs.len() => (
                exact_if(reread.extra != self.extra),
                self.outs
                    .iter()
                    .zip(&reread.outs)
                    .map(|(a, b)| exact_if(a != b))
                    .collect(),
            ),
            _ => (Scalars::OneLine, vec![Scalars::OneLine; self.outs.len()]),
        };
        let text = self.render(top, &outs);
        // A pointer cairn could not read back as it is would send DVC, or
        // cairn's next run, to other data: refuse to write it.
        match PointerFile::parse(&text, file_name) {
            Ok(reread) if reread == *self => Ok(text),
            _ => Err(PointerError {
                file: file_name.to_string(),
                message: "a key kept from the existing file cannot be written back unchanged \
                          (an unusual YAML tag or layout); remove or simplify it"
                    .into(),
            }),
        }
    }

    fn render(&self, top: Scalars, outs: &[Scalars]) -> String {
        let mut s = String::new();
        for (k, v, before) in &self.extra {
            if *before {
                emit_entry(&mut s, 0, k, v, top);
                s.push('\n');
            }
        }
        s.push_str("outs:\n");
        for (out, style) in self.outs.iter().zip(outs) {
            write_output(&mut s, out, *style);
        }
        for (k, v, before) in &self.extra {
            if !*before {
                emit_entry(&mut s, 0, k, v, top);
                s.push('\n');
            }
        }
        s
    }
}

fn exact_if(lossy: bool) -> Scalars {
    if lossy {
        Scalars::OneLine
    } else {
        Scalars::Ruamel
    }
}

fn write_output(s: &mut String, out: &Output, style: Scalars) {
    s.push_str("- md5:");
    write_value(s, 6, 4, &out.id.to_string());
    if let Some(size) = out.size {
        s.push_str(&format!("\n  size: {size}"));
    }
    if out.id.dir {
        if let Some(n) = out.nfiles {
            s.push_str(&format!("\n  nfiles: {n}"));
        }
    } else if out.isexec {
        s.push_str("\n  isexec: true");
    }
    s.push_str("\n  hash: md5\n  path:");
    style.write(s, 7, 4, &out.path);
    for (k, v) in &out.extra {
        s.push_str("\n  ");
        emit_entry(s, 2, k, v, style);
    }
    s.push('\n');
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_output(m: Mapping) -> Result<Output, String> {
    let mut id = None;
    let (mut size, mut nfiles, mut isexec) = (None, None, false);
    let mut hash = HashScheme::LegacyMd5;
    let mut path = None;
    let mut extra = Vec::new();
    let uint = |k: &str, v: &Value| match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("`{k}` must be a non-negative integer")),
        _ => Err(format!("`{k}` must be a non-negative integer")),
    };
    for (k, v) in m {
        let key = key_string(&k).ok_or("keys must be strings")?;
        match key.as_str() {
            "md5" => {
                let Value::String(s) = &v else {
                    return Err("`md5` must be a string".into());
                };
                id = Some(s.parse::<ObjectId>().map_err(|e| e.to_string())?);
            }
            "size" => size = uint("size", &v)?,
            "nfiles" => nfiles = uint("nfiles", &v)?,
            "isexec" => {
                isexec = match v {
                    Value::Bool(b) => b,
                    Value::Null => false,
                    _ => return Err("`isexec` must be true or false".into()),
                }
            }
            "hash" => {
                hash = match &v {
                    Value::String(s) if s == "md5" => HashScheme::Md5,
                    other => {
                        return Err(format!(
                            "unsupported hash {:?} (cairn reads `hash: md5` and DVC 2 pointers)",
                            scalar_text(other).unwrap_or_default()
                        ))
                    }
                }
            }
            "path" => {
                let p = scalar_text(&v).ok_or("`path` must be a string")?;
                if p.is_empty() {
                    return Err("`path` is empty".into());
                }
                path = Some(p);
            }
            _ => extra.push((key, v)),
        }
    }
    Ok(Output {
        id: id.ok_or("no `md5` (cairn needs a cached output with an md5)")?,
        size,
        nfiles,
        isexec,
        hash,
        path: path.ok_or("no `path`")?,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dvc::yaml_block::one_line_double_quoted;

    const FILE: &str = "outs:\n- md5: d1a0b622cd467ce72b35413f361b44b6\n  size: 13420\n  hash: md5\n  path: employee_attrition.csv\n";

    #[test]
    fn round_trips_dvc_add_output() {
        let p = PointerFile::parse(FILE, "x.dvc").unwrap();
        assert_eq!(p.outs[0].hash, HashScheme::Md5);
        assert_eq!(p.to_yaml("x.dvc").unwrap(), FILE);
    }

    #[test]
    fn reads_legacy_and_refuses_to_write_it() {
        let text = "outs:\n- md5: d1a0b622cd467ce72b35413f361b44b6\n  size: 3\n  path: a.csv\n";
        let p = PointerFile::parse(text, "a.csv.dvc").unwrap();
        assert_eq!(p.outs[0].hash, HashScheme::LegacyMd5);
        let err = p.to_yaml("a.csv.dvc").unwrap_err();
        assert!(err.to_string().starts_with("a.csv.dvc: "), "{err}");
    }

    #[test]
    fn executable_file_key_order() {
        let id = "25ed1bcb423b0b7200f485fc5ff71c8e".parse().unwrap();
        let p = PointerFile::single(Output::file(id, 2, true, "ex2.sh"));
        assert_eq!(
            p.to_yaml("ex2.sh.dvc").unwrap(),
            "outs:\n- md5: 25ed1bcb423b0b7200f485fc5ff71c8e\n  size: 2\n  isexec: true\n  hash: md5\n  path: ex2.sh\n"
        );
    }

    #[test]
    fn keeps_unknown_keys() {
        let text = "desc: my data\nouts:\n- md5: d1a0b622cd467ce72b35413f361b44b6\n  size: 3\n  hash: md5\n  path: a\n  remote: backup\n  push: false\nmeta:\n  owner: me\n  tags:\n  - x\n  - y\nfrozen: true\nwdir: ..\n";
        let p = PointerFile::parse(text, "a.dvc").unwrap();
        assert_eq!(p.outs[0].extra.len(), 2);
        assert_eq!(p.to_yaml("a.dvc").unwrap(), text);
        // Written by DVC's own dumper (ruamel.yaml 0.19.1) for the same data.
        let nested = "outs:\n- md5: d1a0b622cd467ce72b35413f361b44b6\n  size: 3\n  hash: md5\n  path: a\n  labels:\n  - x\n  - y\n  meta:\n    k:\n    - a: 1\n      b:\n    e: []\n    f: {}\n";
        let p = PointerFile::parse(nested, "a.dvc").unwrap();
        assert_eq!(p.to_yaml("a.dvc").unwrap(), nested);
    }

    #[test]
    fn errors_name_the_file() {
        for bad in [
            "",
            "outs: 3",
            "outs:\n- size: 3\n  path: a\n",
            "outs:\n- md5: ACBD18DB4CC2F85CEDEF654FCCC4A4D8\n  path: a\n",
            "outs:\n- md5: acbd18db4cc2f85cedef654fccc4a4d8\n  hash: etag\n  path: a\n",
            "outs: [",
            "deps: []\n",
        ] {
            let err = PointerFile::parse(bad, "data/x.dvc").unwrap_err();
            assert!(err.to_string().starts_with("data/x.dvc: "), "{err}");
        }
    }

    /// 267 pointers written by DVC's own dumper (DVC 3.67.1, ruamel.yaml 0.19.1) for
    /// random paths mixing quotes, indicators, control and non-ASCII characters, and
    /// long runs of words that fold at 80 columns; each is also read back.
    #[test]
    fn matches_dvc_dumper_on_random_paths() {
        let cases: Vec<(String, String, u64, String)> =
            serde_json::from_str(include_str!("ruamel_cases.json")).unwrap();
        assert!(cases.len() > 200);
        let mut lossy = 0;
        for (path, md5, size, want) in &cases {
            let id: ObjectId = md5.parse().unwrap();
            let out = if id.dir {
                Output::dir(id, *size, 3, path.clone())
            } else {
                Output::file(id, *size, false, path.clone())
            };
            let got = PointerFile::single(out.clone()).to_yaml("x.dvc").unwrap();
            assert_eq!(PointerFile::parse(&got, "x.dvc").unwrap().outs[0], out);
            let dvc_reads_back = PointerFile::parse(want, "x.dvc").is_ok_and(|p| p.outs[0] == out);
            if dvc_reads_back {
                assert_eq!(&got, want, "path {path:?}");
            } else {
                // ruamel's fold lost spaces: we write a correct pointer instead.
                lossy += 1;
                assert!(got.contains(&format!("  path: {}\n", one_line_double_quoted(path))));
            }
        }
        assert!(lossy > 0 && lossy < cases.len() / 4, "{lossy}");
    }

    /// Found by the dvc_pointer fuzz target: a kept key whose long value has two
    /// spaces where ruamel would fold lost one of them on the way back.
    #[test]
    fn kept_keys_that_ruamel_would_fold_wrongly_survive() {
        let mut one_line = 0;
        for words in 1..30 {
            let value = format!("{}  tail end", "word ".repeat(words));
            let text = format!("{FILE}  note: '{value}'\nmeta: '{value}'\n");
            let pointer = PointerFile::parse(&text, "x.dvc").unwrap();
            let yaml = pointer.to_yaml("x.dvc").unwrap();
            assert_eq!(
                PointerFile::parse(&yaml, "x.dvc").unwrap(),
                pointer,
                "{yaml}"
            );
            let quoted = one_line_double_quoted(&value);
            for key in ["  note", "\nmeta"] {
                if yaml.contains(&format!("{key}: {quoted}")) {
                    one_line += 1;
                }
            }
        }
        // Each of the two keys meets a fold at its double space at least once.
        assert!(one_line >= 2, "{one_line}");
    }

    /// Found by the dvc_pointer fuzz target: a kept key holding a tagged
    /// block mapping was written with the mapping's lines outside the key.
    #[test]
    fn kept_tagged_collections_survive_or_are_refused() {
        for kept in [
            "  k: !t\n    ? a long key\n    : 4\n",
            "  k: !t\n    a: 1\n    b: [1, 2]\n",
            "  k: !t\n  - 1\n  - !u x\n",
            "meta: !t\n  a: !u\n    b: 2\n",
        ] {
            let pointer = PointerFile::parse(&format!("{FILE}{kept}"), "x.dvc").unwrap();
            match pointer.to_yaml("x.dvc") {
                Ok(yaml) => assert_eq!(
                    PointerFile::parse(&yaml, "x.dvc").unwrap(),
                    pointer,
                    "{yaml}"
                ),
                Err(e) => assert!(e.to_string().contains("cannot be written back"), "{e}"),
            }
        }
    }

    #[test]
    fn numeric_looking_paths_survive() {
        let id: ObjectId = "acbd18db4cc2f85cedef654fccc4a4d8".parse().unwrap();
        let p = PointerFile::single(Output::file(id, 3, false, "123"));
        let text = p.to_yaml("123.dvc").unwrap();
        assert!(text.contains("path: '123'\n"), "{text}");
        assert_eq!(PointerFile::parse(&text, "123.dvc").unwrap(), p);
    }
}
