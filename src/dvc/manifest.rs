//! The `.dir` manifest: the list of files of a directory dataset.
//!
//! DVC 3 identifies a directory by the md5 of this manifest's bytes, so the
//! bytes must be exactly what DVC writes: Python's
//! `json.dumps([{"md5": .., "relpath": ..}, ...], sort_keys=True)` with the
//! default `ensure_ascii=True` (separators `", "` and `": "`, no trailing
//! newline, every non-ASCII character as a lowercase `\uXXXX` escape, UTF-16
//! surrogate pairs beyond the BMP). Entries are sorted by the whole relpath in
//! code-point order (`a-b` before `a/b`), and only files are listed: empty
//! folders do not exist for DVC.
//!
//! Parsing is lenient about formatting (any key order, extra keys such as
//! `size` or `isexec` are ignored) but strict about paths, because a manifest
//! read from a remote decides where `fetch` writes files: absolute paths, `..`,
//! `.` or empty components, NUL bytes, duplicates and file/folder clashes are
//! rejected.

use std::collections::HashSet;

use super::ids::{Md5, ObjectId};

/// One file of a directory dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// Path relative to the dataset directory, `/`-separated.
    pub relpath: String,
    /// md5 of the file's bytes.
    pub md5: Md5,
    /// Size in bytes, when known (hashing knows it; DVC 3 manifests do not record it).
    pub size: Option<u64>,
}

/// A validated, sorted list of files: the content of a `.dir` object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    entries: Vec<ManifestEntry>,
}

/// A manifest that cannot be read or would be unsafe to materialise.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The bytes are not a JSON list of `{"md5", "relpath"}` objects.
    #[error("not a DVC .dir manifest: {0}")]
    Json(#[from] serde_json::Error),
    /// An entry's md5 is not 32 lowercase hex digits.
    #[error("manifest entry {relpath:?}: {source}")]
    Hash {
        /// The entry's path.
        relpath: String,
        /// Why the md5 was rejected.
        source: super::ids::InvalidHash,
    },
    /// A relpath that must not be written to disk.
    #[error("manifest entry {relpath:?}: {reason}")]
    Path {
        /// The offending path.
        relpath: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

#[derive(serde::Deserialize)]
struct RawEntry {
    md5: String,
    relpath: String,
    #[serde(default)]
    size: Option<u64>,
}

impl Manifest {
    /// Builds a manifest from entries in any order: sorts them the way DVC does and
    /// validates every path.
    pub fn new(mut entries: Vec<ManifestEntry>) -> Result<Manifest, ManifestError> {
        entries.sort_by(|a, b| a.relpath.cmp(&b.relpath));
        validate(&entries)?;
        Ok(Manifest { entries })
    }

    /// Reads manifest bytes as stored in a `.dir` object.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let raw: Vec<RawEntry> = serde_json::from_slice(bytes)?;
        let mut entries = Vec::with_capacity(raw.len());
        for r in raw {
            let md5 = r.md5.parse::<Md5>().map_err(|source| ManifestError::Hash {
                relpath: r.relpath.clone(),
                source,
            })?;
            entries.push(ManifestEntry {
                relpath: r.relpath,
                md5,
                size: r.size,
            });
        }
        Manifest::new(entries)
    }

    /// The files, sorted by relpath.
    pub fn entries(&self) -> &[ManifestEntry] {
        &self.entries
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the directory holds no files.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total size, when every entry's size is known.
    pub fn total_size(&self) -> Option<u64> {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// Exactly the bytes DVC 3 writes for this manifest.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(2 + self.entries.len() * 80);
        out.push('[');
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str("{\"md5\": \"");
            out.push_str(&e.md5.to_hex());
            out.push_str("\", \"relpath\": ");
            push_python_json_string(&mut out, &e.relpath);
            out.push('}');
        }
        out.push(']');
        out.into_bytes()
    }

    /// The `.dir` object id: md5 of [`Manifest::to_bytes`].
    pub fn id(&self) -> ObjectId {
        ObjectId::dir(Md5::of_bytes(&self.to_bytes()))
    }
}

/// Appends `s` as Python's `json.dumps(s, ensure_ascii=True)` writes it.
fn push_python_json_string(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "\\u{:04x}", u);
                }
            }
        }
    }
    out.push('"');
}

fn validate(entries: &[ManifestEntry]) -> Result<(), ManifestError> {
    let bad = |relpath: &str, reason| ManifestError::Path {
        relpath: relpath.to_string(),
        reason,
    };
    let mut dirs: HashSet<&str> = HashSet::new();
    for e in entries {
        let p = e.relpath.as_str();
        if p.is_empty() {
            return Err(bad(p, "empty path"));
        }
        if p.starts_with('/') {
            return Err(bad(p, "absolute path"));
        }
        if p.contains('\0') {
            return Err(bad(p, "NUL byte in path"));
        }
        for comp in p.split('/') {
            match comp {
                "" => return Err(bad(p, "empty path component")),
                "." | ".." => return Err(bad(p, "'.' or '..' path component")),
                _ => {}
            }
        }
        let mut idx = 0;
        while let Some(off) = p[idx..].find('/') {
            dirs.insert(&p[..idx + off]);
            idx += off + 1;
        }
    }
    for w in entries.windows(2) {
        if w[0].relpath == w[1].relpath {
            return Err(bad(&w[0].relpath, "listed twice"));
        }
    }
    for e in entries {
        if dirs.contains(e.relpath.as_str()) {
            return Err(bad(&e.relpath, "is both a file and a folder"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(p: &str, content: &[u8]) -> ManifestEntry {
        ManifestEntry {
            relpath: p.to_string(),
            md5: Md5::of_bytes(content),
            size: Some(content.len() as u64),
        }
    }

    #[test]
    fn python_escapes() {
        let mut s = String::new();
        push_python_json_string(&mut s, "é\"\\\n\r\t\u{8}\u{c}\u{1}\u{7f}😀/ok");
        assert_eq!(s, r#""\u00e9\"\\\n\r\t\b\f\u0001\u007f\ud83d\ude00/ok""#);
    }

    #[test]
    fn parse_accepts_any_key_order_and_extra_keys() {
        let bytes = br#"[{"relpath": "b", "md5": "acbd18db4cc2f85cedef654fccc4a4d8", "size": 3, "isexec": false},
            {"md5": "acbd18db4cc2f85cedef654fccc4a4d8", "relpath": "\u00e9"}]"#;
        let m = Manifest::parse(bytes).unwrap();
        assert_eq!(m.entries()[0].relpath, "b");
        assert_eq!(m.entries()[0].size, Some(3));
        assert_eq!(m.entries()[1].relpath, "é");
    }

    #[test]
    fn unsafe_paths_are_rejected() {
        for p in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            "a/",
            "a\0b",
        ] {
            let err = Manifest::new(vec![entry(p, b"x")]).unwrap_err();
            assert!(matches!(err, ManifestError::Path { .. }), "{p:?}: {err}");
        }
        assert!(Manifest::new(vec![entry("a", b"x"), entry("a", b"y")]).is_err());
        assert!(Manifest::new(vec![entry("a", b"x"), entry("a/b", b"y")]).is_err());
        assert!(Manifest::new(vec![entry("a-b", b"x"), entry("a/b", b"y")]).is_ok());
    }

    #[test]
    fn rejects_uppercase_md5_in_manifest() {
        let bytes = br#"[{"md5": "ACBD18DB4CC2F85CEDEF654FCCC4A4D8", "relpath": "a"}]"#;
        assert!(matches!(
            Manifest::parse(bytes),
            Err(ManifestError::Hash { .. })
        ));
    }
}
