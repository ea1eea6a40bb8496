//! The IO edge: a [`DatasetDiff`] with table comparisons, from the workspace
//! (new files, when the run's data is on this machine) and the caller's
//! access to objects by md5 (the old version, and the new one when the run
//! happened elsewhere).
//!
//! Synchronous and blocking (it reads files): call it from a blocking thread.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::dvc::{Manifest, Md5, Output};

use super::markdown as md;
use super::table::{table_diff, table_options_for, TableOptions, TableReport};
use super::{DatasetDiff, DiffError};

/// Opens a file's content by its md5 (the reconciler downloads the object
/// from the remote).
///
/// Closures `Fn(&Md5) -> io::Result<Option<Box<dyn Read>>>` implement it,
/// with sizes unknown.
pub trait Objects {
    /// The object's bytes, or `None` when it is not available.
    fn open(&self, md5: &Md5) -> io::Result<Option<Box<dyn Read>>>;

    /// The object's size when it can be known without reading it, so that an
    /// object over the comparison limit is never fetched. `None`: unknown
    /// (the read is still capped).
    fn size(&self, md5: &Md5) -> io::Result<Option<u64>> {
        let _ = md5;
        Ok(None)
    }
}

impl<F> Objects for F
where
    F: Fn(&Md5) -> io::Result<Option<Box<dyn Read>>>,
{
    fn open(&self, md5: &Md5) -> io::Result<Option<Box<dyn Read>>> {
        self(md5)
    }
}

/// What [`collect`] compares.
#[derive(Debug, Clone, Copy)]
pub struct DiffInputs<'a> {
    /// The dataset path as configured (`data/attrition.csv`); its extension
    /// decides whether a single-file dataset is a table.
    pub dataset: &'a str,
    /// The new version on disk: the file, or the directory's root. `None`
    /// when it is not on this machine (a run on a cluster): new files are
    /// then read through [`Objects`] too.
    pub workspace: Option<&'a Path>,
    /// The previous version's pointer output, if any.
    pub old: Option<&'a Output>,
    /// The new version's pointer output.
    pub new: &'a Output,
    /// The previous `.dir` manifest (needed when `old` is a directory).
    pub old_manifest: Option<&'a Manifest>,
    /// The new `.dir` manifest (needed when `new` is a directory).
    pub new_manifest: Option<&'a Manifest>,
}

/// Bounds on the table comparisons [`collect`] makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectOptions {
    /// Most tables compared; the rest are counted in
    /// [`DatasetDiff::tables_not_compared`]. Default 5.
    pub max_tables: usize,
    /// Tables whose old or new version is larger than this are skipped (and
    /// the report says so). Default 256 MiB.
    pub max_table_bytes: u64,
    /// Sample size and old-row cap (the delimiter comes from each file's extension).
    pub table: TableOptions,
}

impl Default for CollectOptions {
    fn default() -> Self {
        CollectOptions {
            max_tables: 5,
            max_table_bytes: 256 * 1024 * 1024,
            table: TableOptions::default(),
        }
    }
}

struct Candidate {
    /// Shown in the report.
    path: String,
    /// The new version on disk, if it is here.
    file: Option<PathBuf>,
    new_md5: Md5,
    new_size: Option<u64>,
    old: Option<(Md5, Option<u64>)>,
    delimiter: u8,
}

/// The diff of `inputs`, with a table comparison for each added or changed
/// `.csv`/`.tsv` file (in path order, at most [`CollectOptions::max_tables`]),
/// or for the dataset itself when it is a single table file.
///
/// A table that cannot be compared (too large, old version unavailable, a read
/// error) becomes a [`TableReport`] saying why; only a missing manifest is an
/// error.
pub fn collect(
    inputs: &DiffInputs<'_>,
    objects: &dyn Objects,
    opts: &CollectOptions,
) -> Result<DatasetDiff, DiffError> {
    let mut diff = DatasetDiff::new(
        inputs.old,
        inputs.new,
        inputs.old_manifest,
        inputs.new_manifest,
    )?;
    let mut candidates = Vec::new();
    match &diff.files {
        None => {
            if let Some(t) = table_options_for(inputs.dataset).filter(|_| !diff.is_unchanged()) {
                candidates.push(Candidate {
                    path: inputs.dataset.to_string(),
                    file: inputs.workspace.map(Path::to_path_buf),
                    new_md5: inputs.new.id.md5,
                    new_size: inputs.new.size,
                    old: inputs.old.filter(|o| !o.id.dir).map(|o| (o.id.md5, o.size)),
                    delimiter: t.delimiter,
                });
            }
        }
        Some(files) => {
            let changed = files.changed.iter().map(|c| {
                let old = Some((c.old_md5, c.old_size));
                (&c.path, c.new_md5, c.new_size, old)
            });
            let added = files.added.iter().map(|a| (&a.path, a.md5, a.size, None));
            for (path, new_md5, new_size, old) in changed.chain(added) {
                if let Some(t) = table_options_for(path) {
                    candidates.push(Candidate {
                        path: path.clone(),
                        file: inputs.workspace.map(|w| w.join(path)),
                        new_md5,
                        new_size,
                        old,
                        delimiter: t.delimiter,
                    });
                }
            }
            candidates.sort_by(|a, b| a.path.cmp(&b.path));
        }
    }
    let compared = candidates.len().min(opts.max_tables);
    diff.tables_not_compared = (candidates.len() - compared) as u64;
    for c in candidates.into_iter().take(compared) {
        let table = TableOptions {
            delimiter: c.delimiter,
            ..opts.table.clone()
        };
        let result = compare(&c, objects, opts.max_table_bytes, &table);
        diff.tables.push(match result {
            Ok(report) => report,
            Err(reason) => TableReport::skipped(c.path, reason),
        });
    }
    Ok(diff)
}

/// One table's report, or why it was skipped.
fn compare(
    c: &Candidate,
    objects: &dyn Objects,
    cap: u64,
    table: &TableOptions,
) -> Result<TableReport, String> {
    let over = |what: &str, size: u64| {
        format!(
            "{what} is {}, over the {} limit for table comparisons",
            md::size(size),
            md::size(cap)
        )
    };
    // Sizes first, from what is recorded or cheap to ask, so that nothing
    // over the limit is read (or downloaded).
    let new_size = match (c.new_size, &c.file) {
        (Some(size), _) => Some(size),
        (None, Some(file)) => Some(
            std::fs::metadata(file)
                .map_err(|e| format!("could not read the new version: {e}"))?
                .len(),
        ),
        (None, None) => objects
            .size(&c.new_md5)
            .map_err(|e| format!("could not read the new version: {e}"))?,
    };
    if let Some(size) = new_size.filter(|&s| s > cap) {
        return Err(over("the new version", size));
    }
    if let Some((md5, recorded)) = c.old {
        let old_size = match recorded {
            Some(size) => Some(size),
            None => objects
                .size(&md5)
                .map_err(|e| format!("could not read the previous version: {e}"))?,
        };
        if let Some(size) = old_size.filter(|&s| s > cap) {
            return Err(over("the previous version", size));
        }
    }
    let new: Box<dyn Read> = match &c.file {
        Some(file) => {
            Box::new(File::open(file).map_err(|e| format!("could not read the new version: {e}"))?)
        }
        None => match objects.open(&c.new_md5) {
            Ok(Some(r)) => r,
            Ok(None) => return Err("the new version is not available".to_string()),
            Err(e) => return Err(format!("could not read the new version: {e}")),
        },
    };
    let mut new_reader = Capped::new(new, cap);
    let mut old_reader = match c.old {
        None => None,
        Some((md5, _)) => match objects.open(&md5) {
            Ok(Some(r)) => Some(Capped::new(r, cap)),
            Ok(None) => return Err("the previous version is not available".to_string()),
            Err(e) => return Err(format!("could not read the previous version: {e}")),
        },
    };
    let result = table_diff(
        old_reader.as_mut().map(|r| r as &mut dyn Read),
        &mut new_reader,
        table,
    );
    match result {
        Ok(d) => Ok(TableReport::diff(c.path.clone(), d)),
        Err(_) if new_reader.over => Err(format!(
            "the new version is over the {} limit for table comparisons",
            md::size(cap)
        )),
        Err(_) if old_reader.as_ref().is_some_and(|r| r.over) => Err(format!(
            "the previous version is over the {} limit for table comparisons",
            md::size(cap)
        )),
        Err(e) => Err(format!("could not read it: {e}")),
    }
}

/// A reader that fails once more than `left` bytes are read (sizes recorded in
/// manifests may be missing, and a file may grow).
struct Capped<R> {
    inner: R,
    left: u64,
    over: bool,
}

impl<R: Read> Capped<R> {
    fn new(inner: R, limit: u64) -> Capped<R> {
        Capped {
            inner,
            left: limit,
            over: false,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.over = true;
                    Err(io::Error::other("over the size limit"))
                }
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::diffview::TableResult;
    use crate::dvc::{ManifestEntry, ObjectId};

    fn write(dir: &Path, rel: &str, content: &str) -> ManifestEntry {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        ManifestEntry {
            relpath: rel.to_string(),
            md5: Md5::of_bytes(content.as_bytes()),
            size: Some(content.len() as u64),
        }
    }

    fn old_store(files: &[&str]) -> HashMap<Md5, Vec<u8>> {
        files
            .iter()
            .map(|c| (Md5::of_bytes(c.as_bytes()), c.as_bytes().to_vec()))
            .collect()
    }

    fn opener(store: HashMap<Md5, Vec<u8>>) -> impl Fn(&Md5) -> io::Result<Option<Box<dyn Read>>> {
        move |md5| {
            Ok(store
                .get(md5)
                .map(|b| Box::new(io::Cursor::new(b.clone())) as Box<dyn Read>))
        }
    }

    fn diff_of(r: &TableReport) -> &crate::diffview::TableDiff {
        match &r.result {
            TableResult::Diff(d) => d,
            TableResult::Skipped(why) => panic!("{} skipped: {why}", r.path),
        }
    }

    #[test]
    fn directory_tables_are_compared_bounded_and_skipped_with_reasons() {
        let ws = tempfile::tempdir().unwrap();
        let old_a = "id\n1\n";
        let old_big = "x\n1\n";
        let entries = [
            write(ws.path(), "a.csv", "id\n1\n2\n"),
            write(ws.path(), "b/new.tsv", "k\tv\n1\t2\n"),
            write(ws.path(), "big.csv", &format!("x\n{}\n", "9".repeat(200))),
            write(ws.path(), "gone.csv", "only old\n"),
            write(ws.path(), "notes.txt", "text"),
            write(ws.path(), "z1.csv", "q\n1\n"),
            write(ws.path(), "z2.csv", "q\n2\n"),
        ];
        let new_m = Manifest::new(
            entries
                .iter()
                .filter(|e| e.relpath != "gone.csv")
                .cloned()
                .collect(),
        )
        .unwrap();
        let old_entry = |rel: &str, content: &str| ManifestEntry {
            relpath: rel.to_string(),
            md5: Md5::of_bytes(content.as_bytes()),
            size: None,
        };
        let old_m = Manifest::new(vec![
            old_entry("a.csv", old_a),
            old_entry("big.csv", old_big),
            old_entry("gone.csv", "only old\n"),
            old_entry("z1.csv", "missing from the store"),
        ])
        .unwrap();
        let old_out = Output::dir(old_m.id(), 0, 3, "data");
        let new_out = Output::dir(new_m.id(), 0, 6, "data");
        let inputs = DiffInputs {
            dataset: "data",
            workspace: Some(ws.path()),
            old: Some(&old_out),
            new: &new_out,
            old_manifest: Some(&old_m),
            new_manifest: Some(&new_m),
        };
        let opts = CollectOptions {
            max_tables: 4,
            max_table_bytes: 100,
            ..CollectOptions::default()
        };
        let d = collect(&inputs, &opener(old_store(&[old_a, old_big])), &opts).unwrap();
        let paths: Vec<&str> = d.tables.iter().map(|t| t.path.as_str()).collect();
        assert_eq!(paths, ["a.csv", "b/new.tsv", "big.csv", "z1.csv"]);
        assert_eq!(d.tables_not_compared, 1);
        assert_eq!(diff_of(&d.tables[0]).rows_added, Some(1));
        let tsv = diff_of(&d.tables[1]);
        assert_eq!((tsv.old_rows, tsv.new_rows), (None, 1));
        assert_eq!(tsv.columns.names, ["k", "v"]);
        assert!(
            matches!(&d.tables[2].result, TableResult::Skipped(w) if w == "the new version is 203 B, over the 100 B limit for table comparisons"),
            "{:?}",
            d.tables[2]
        );
        assert!(
            matches!(&d.tables[3].result, TableResult::Skipped(w) if w == "the previous version is not available"),
            "{:?}",
            d.tables[3]
        );
    }

    #[test]
    fn single_file_table_and_oversized_old_version() {
        let ws = tempfile::tempdir().unwrap();
        let new_content = "id,name\n1,ann\n2,bob\n";
        let file = ws.path().join("attrition.csv");
        std::fs::write(&file, new_content).unwrap();
        let old_content = "id,name\n1,ann\n";
        let old = Output::file(
            ObjectId::file(Md5::of_bytes(old_content.as_bytes())),
            15,
            false,
            "attrition.csv",
        );
        let new = Output::file(
            ObjectId::file(Md5::of_bytes(new_content.as_bytes())),
            new_content.len() as u64,
            false,
            "attrition.csv",
        );
        let inputs = DiffInputs {
            dataset: "data/attrition.csv",
            workspace: Some(&file),
            old: Some(&old),
            new: &new,
            old_manifest: None,
            new_manifest: None,
        };
        let store = || opener(old_store(&[old_content]));
        let d = collect(&inputs, &store(), &CollectOptions::default()).unwrap();
        assert!(d.files.is_none());
        assert_eq!(d.tables.len(), 1);
        assert_eq!(d.tables[0].path, "data/attrition.csv");
        assert_eq!(diff_of(&d.tables[0]).sample, vec![vec!["2", "bob"]]);

        // The old object is larger than its pointer said, and over the cap.
        let opts = CollectOptions {
            max_table_bytes: 20,
            ..CollectOptions::default()
        };
        let padded = format!("{old_content}{}", "3,x\n".repeat(10));
        let lying = move |_: &Md5| -> io::Result<Option<Box<dyn Read>>> {
            Ok(Some(Box::new(io::Cursor::new(padded.clone().into_bytes()))))
        };
        let d = collect(&inputs, &lying, &opts).unwrap();
        assert!(
            matches!(&d.tables[0].result, TableResult::Skipped(w) if w.starts_with("the previous version is over")),
            "{:?}",
            d.tables[0]
        );

        // Not a table: no comparison.
        let inputs = DiffInputs {
            dataset: "data/model.bin",
            ..inputs
        };
        assert!(collect(&inputs, &store(), &CollectOptions::default())
            .unwrap()
            .tables
            .is_empty());
    }

    /// Objects with known sizes, counting what is opened.
    struct Sized {
        store: HashMap<Md5, Vec<u8>>,
        opened: std::cell::RefCell<Vec<Md5>>,
    }

    impl Objects for Sized {
        fn open(&self, md5: &Md5) -> io::Result<Option<Box<dyn Read>>> {
            self.opened.borrow_mut().push(*md5);
            Ok(self
                .store
                .get(md5)
                .map(|b| Box::new(io::Cursor::new(b.clone())) as Box<dyn Read>))
        }
        fn size(&self, md5: &Md5) -> io::Result<Option<u64>> {
            Ok(self.store.get(md5).map(|b| b.len() as u64))
        }
    }

    /// A run on a cluster: no workspace here, manifests without sizes (as
    /// read from a remote), both versions read as objects, and nothing over
    /// the limit opened.
    #[test]
    fn without_a_workspace_both_versions_come_from_objects_sized_first() {
        let entry = |rel: &str, content: &str| ManifestEntry {
            relpath: rel.to_string(),
            md5: Md5::of_bytes(content.as_bytes()),
            size: None,
        };
        let (old_a, new_a) = ("id\n1\n", "id\n1\n2\n");
        let new_added = "k,v\n1,2\n3,4\n";
        let huge_old = format!("x\n{}\n", "1".repeat(300));
        let huge_new = format!("x\n{}\n", "2".repeat(300));
        let old_m = Manifest::new(vec![entry("a.csv", old_a), entry("h.csv", &huge_old)]).unwrap();
        let new_m = Manifest::new(vec![
            entry("a.csv", new_a),
            entry("b.csv", new_added),
            entry("h.csv", &huge_new),
        ])
        .unwrap();
        let objects = Sized {
            store: [old_a, new_a, new_added, &huge_old, &huge_new]
                .iter()
                .map(|c| (Md5::of_bytes(c.as_bytes()), c.as_bytes().to_vec()))
                .collect(),
            opened: Default::default(),
        };
        let old_out = Output::dir(old_m.id(), 0, 2, "data");
        let new_out = Output::dir(new_m.id(), 0, 3, "data");
        let inputs = DiffInputs {
            dataset: "data",
            workspace: None,
            old: Some(&old_out),
            new: &new_out,
            old_manifest: Some(&old_m),
            new_manifest: Some(&new_m),
        };
        let opts = CollectOptions {
            max_table_bytes: 100,
            ..CollectOptions::default()
        };
        let d = collect(&inputs, &objects, &opts).unwrap();
        let paths: Vec<&str> = d.tables.iter().map(|t| t.path.as_str()).collect();
        assert_eq!(paths, ["a.csv", "b.csv", "h.csv"]);
        let a = diff_of(&d.tables[0]);
        assert_eq!(
            (a.old_rows, a.new_rows, a.rows_added),
            (Some(1), 2, Some(1))
        );
        let b = diff_of(&d.tables[1]);
        assert_eq!((b.old_rows, b.new_rows), (None, 2));
        assert!(
            matches!(&d.tables[2].result, TableResult::Skipped(w) if w.starts_with("the new version is 303 B, over")),
            "{:?}",
            d.tables[2]
        );
        let opened = objects.opened.borrow();
        for huge in [&huge_old, &huge_new] {
            assert!(
                !opened.contains(&Md5::of_bytes(huge.as_bytes())),
                "an object over the limit was opened"
            );
        }
        assert_eq!(opened.len(), 3, "a.csv twice, b.csv once");
    }

    #[test]
    fn a_directory_needs_its_manifests() {
        let m = Manifest::new(vec![]).unwrap();
        let dir = Output::dir(m.id(), 0, 0, "d");
        let inputs = DiffInputs {
            dataset: "d",
            workspace: None,
            old: Some(&dir),
            new: &dir,
            old_manifest: None,
            new_manifest: Some(&m),
        };
        let none = |_: &Md5| -> io::Result<Option<Box<dyn Read>>> { Ok(None) };
        let err = collect(&inputs, &none, &CollectOptions::default()).unwrap_err();
        assert!(
            matches!(err, DiffError::MissingManifest { which: "old", .. }),
            "{err}"
        );
    }
}
