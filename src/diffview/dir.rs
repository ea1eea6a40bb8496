//! Files added, removed and changed between two `.dir` manifests.

use crate::dvc::{Manifest, ManifestEntry, Md5};

/// A file present in only one of the two versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path relative to the dataset directory.
    pub path: String,
    /// md5 of the file's bytes.
    pub md5: Md5,
    /// Size in bytes, when the manifest knows it (DVC 3 manifests read from a
    /// remote do not record sizes; manifests cairn just hashed do).
    pub size: Option<u64>,
}

/// A file present in both versions with different content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedFile {
    /// Path relative to the dataset directory.
    pub path: String,
    /// md5 before.
    pub old_md5: Md5,
    /// md5 after.
    pub new_md5: Md5,
    /// Size before, when known.
    pub old_size: Option<u64>,
    /// Size after, when known.
    pub new_size: Option<u64>,
}

/// A count of files and the sum of the sizes that are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Total {
    /// Number of files.
    pub files: u64,
    /// Sum of the known sizes.
    pub bytes: u64,
    /// Files whose size is unknown (not counted in `bytes`).
    pub unknown_sizes: u64,
}

impl Total {
    fn add(&mut self, size: Option<u64>) {
        self.files += 1;
        match size {
            Some(s) => self.bytes = self.bytes.saturating_add(s),
            None => self.unknown_sizes += 1,
        }
    }

    /// The byte sum when every size is known.
    pub fn exact_bytes(&self) -> Option<u64> {
        (self.unknown_sizes == 0).then_some(self.bytes)
    }
}

/// The file-level difference between two versions of a directory dataset; each
/// list is sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirDiff {
    /// Files only in the new version.
    pub added: Vec<FileEntry>,
    /// Files only in the old version.
    pub removed: Vec<FileEntry>,
    /// Files in both whose md5 differs.
    pub changed: Vec<ChangedFile>,
    /// Files in both with the same md5.
    pub unchanged: u64,
}

impl DirDiff {
    /// Compares two manifests; `old` is `None` for a first version (every file is added).
    ///
    /// Linear in the number of entries: both manifests are sorted by path.
    pub fn between(old: Option<&Manifest>, new: &Manifest) -> DirDiff {
        let old: &[ManifestEntry] = old.map_or(&[], |m| m.entries());
        let new = new.entries();
        let mut d = DirDiff::default();
        let (mut i, mut j) = (0, 0);
        while i < old.len() || j < new.len() {
            let ord = match (old.get(i), new.get(j)) {
                (Some(o), Some(n)) => o.relpath.cmp(&n.relpath),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match ord {
                std::cmp::Ordering::Less => {
                    d.removed.push(entry(&old[i]));
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    d.added.push(entry(&new[j]));
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    let (o, n) = (&old[i], &new[j]);
                    if o.md5 == n.md5 {
                        d.unchanged += 1;
                    } else {
                        d.changed.push(ChangedFile {
                            path: n.relpath.clone(),
                            old_md5: o.md5,
                            new_md5: n.md5,
                            old_size: o.size,
                            new_size: n.size,
                        });
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        d
    }

    /// Files added and their sizes.
    pub fn added_total(&self) -> Total {
        let mut t = Total::default();
        self.added.iter().for_each(|f| t.add(f.size));
        t
    }

    /// Files removed and their (old) sizes.
    pub fn removed_total(&self) -> Total {
        let mut t = Total::default();
        self.removed.iter().for_each(|f| t.add(f.size));
        t
    }

    /// Files changed and their new sizes.
    pub fn changed_total(&self) -> Total {
        let mut t = Total::default();
        self.changed.iter().for_each(|f| t.add(f.new_size));
        t
    }

    /// True when no file was added, removed or changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

fn entry(e: &ManifestEntry) -> FileEntry {
    FileEntry {
        path: e.relpath.clone(),
        md5: e.md5,
        size: e.size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(files: &[(&str, &str, Option<u64>)]) -> Manifest {
        Manifest::new(
            files
                .iter()
                .map(|(p, content, size)| ManifestEntry {
                    relpath: p.to_string(),
                    md5: Md5::of_bytes(content.as_bytes()),
                    size: *size,
                })
                .collect(),
        )
        .unwrap()
    }

    fn paths<T>(v: &[T], f: fn(&T) -> &str) -> Vec<String> {
        v.iter().map(|x| f(x).to_string()).collect()
    }

    #[test]
    fn table_of_cases() {
        struct Case {
            name: &'static str,
            old: Option<Vec<(&'static str, &'static str, Option<u64>)>>,
            new: Vec<(&'static str, &'static str, Option<u64>)>,
            added: &'static [&'static str],
            removed: &'static [&'static str],
            changed: &'static [&'static str],
            unchanged: u64,
        }
        let cases = [
            Case {
                name: "first version: everything added",
                old: None,
                new: vec![("b", "1", Some(1)), ("a/x", "2", Some(1))],
                added: &["a/x", "b"],
                removed: &[],
                changed: &[],
                unchanged: 0,
            },
            Case {
                name: "mixed",
                old: Some(vec![
                    ("keep", "k", None),
                    ("gone", "g", None),
                    ("edit", "e1", None),
                    ("z/last", "z", None),
                ]),
                new: vec![
                    ("keep", "k", Some(1)),
                    ("edit", "e2", Some(2)),
                    ("new", "n", Some(1)),
                    ("a-first", "a", Some(1)),
                ],
                added: &["a-first", "new"],
                removed: &["gone", "z/last"],
                changed: &["edit"],
                unchanged: 1,
            },
            Case {
                name: "identical",
                old: Some(vec![("a", "1", None), ("b", "2", None)]),
                new: vec![("a", "1", Some(1)), ("b", "2", Some(1))],
                added: &[],
                removed: &[],
                changed: &[],
                unchanged: 2,
            },
            Case {
                name: "everything replaced, code-point order (a-b before a/b)",
                old: Some(vec![("a/b", "1", None)]),
                new: vec![("a-b", "1", Some(1)), ("a/c", "2", Some(1))],
                added: &["a-b", "a/c"],
                removed: &["a/b"],
                changed: &[],
                unchanged: 0,
            },
            Case {
                name: "new version empty",
                old: Some(vec![("a", "1", Some(1))]),
                new: vec![],
                added: &[],
                removed: &["a"],
                changed: &[],
                unchanged: 0,
            },
        ];
        for c in cases {
            let old = c.old.as_deref().map(manifest);
            let d = DirDiff::between(old.as_ref(), &manifest(&c.new));
            assert_eq!(paths(&d.added, |f| &f.path), c.added, "{}", c.name);
            assert_eq!(paths(&d.removed, |f| &f.path), c.removed, "{}", c.name);
            assert_eq!(paths(&d.changed, |f| &f.path), c.changed, "{}", c.name);
            assert_eq!(d.unchanged, c.unchanged, "{}", c.name);
            assert_eq!(
                d.is_empty(),
                c.added.is_empty() && c.removed.is_empty() && c.changed.is_empty()
            );
        }
    }

    #[test]
    fn changed_files_carry_both_hashes_and_sizes_and_totals_add_up() {
        let old = manifest(&[("a", "old", Some(3)), ("b", "x", None)]);
        let new = manifest(&[
            ("a", "newer", Some(5)),
            ("c", "y", Some(7)),
            ("d", "z", None),
        ]);
        let d = DirDiff::between(Some(&old), &new);
        assert_eq!(
            d.changed,
            vec![ChangedFile {
                path: "a".into(),
                old_md5: Md5::of_bytes(b"old"),
                new_md5: Md5::of_bytes(b"newer"),
                old_size: Some(3),
                new_size: Some(5),
            }]
        );
        let added = d.added_total();
        assert_eq!((added.files, added.bytes, added.unknown_sizes), (2, 7, 1));
        assert_eq!(added.exact_bytes(), None);
        assert_eq!(d.removed_total().exact_bytes(), None);
        assert_eq!(d.changed_total().exact_bytes(), Some(5));
    }
}
