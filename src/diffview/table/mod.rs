//! Comparing two versions of a CSV/TSV table in one streaming pass over each.
//!
//! The first record of each file is its header. The old file is read once,
//! keeping only a 64-bit hash per row; the new file is then read once, and a row
//! whose hash is not among the old ones (counting duplicates: two equal new rows
//! need two equal old rows) is "added"; old hashes left unpaired are "removed"
//! rows. Only the first few added rows are kept, for display.
//!
//! Memory is bounded whatever the input: the tokenizer streams fields in
//! pieces from a 64 KiB buffer (a huge cell is hashed, never held), sample cells
//! and header names are truncated as they are read, at most
//! [`MAX_HEADER_COLUMNS`] column names are kept, and the old rows' hashes are
//! capped by [`TableOptions::max_old_rows`] (see [`OldRows`] for the bound).
//! Beyond that cap the comparison reports row counts only, and says so.
//!
//! Rows are compared on their parsed fields, so quoting style and line endings
//! do not matter. When the headers differ, rows are compared on the columns both
//! versions share, by name (a reordered or added column does not make every row
//! "added"); with no shared column name they are compared by position.
//!
//! Hash collisions can hide an added row: with n old rows the chance that a
//! given new row is wrongly paired is about n / 2^64 (10^-12 at ten million rows).

mod hash;
mod header;
mod old_rows;
mod row;

use std::collections::HashSet;
use std::io::Read;

use header::Header;
use old_rows::OldRows;
use row::RowSink;

use super::tokenizer::Tokenizer;
use super::DiffError;

/// Column names kept per header; a wider table is compared by position only.
pub const MAX_HEADER_COLUMNS: usize = 10_000;
/// Cells kept per sample row (the first columns).
pub const SAMPLE_COLUMNS: usize = 8;
/// Characters kept per sample cell or column name; longer text ends in `…`.
pub const CELL_CHARS: usize = 60;
/// Names kept in a [`NameList`].
const LISTED_NAMES: usize = 50;
/// Bytes captured per cell before decoding (UTF-8 is at most 4 bytes a character).
const CELL_BYTES: usize = CELL_CHARS * 4 + 4;

/// How to read and compare a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableOptions {
    /// Field delimiter: `b','` for CSV, `b'\t'` for TSV.
    pub delimiter: u8,
    /// How many added rows to keep for display.
    pub sample_rows: usize,
    /// Most old rows whose hashes are kept (8 bytes each). Beyond this the diff
    /// reports row counts only. Default: 10 million (about 81 MB).
    pub max_old_rows: u64,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            delimiter: b',',
            sample_rows: 5,
            max_old_rows: 10_000_000,
        }
    }
}

/// Options for a path that names a table: `.csv` (comma) or `.tsv` / `.tab`
/// (tab), case-insensitively; `None` for anything else.
pub fn table_options_for(path: &str) -> Option<TableOptions> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let (_, ext) = name.rsplit_once('.')?;
    let delimiter = match ext.to_ascii_lowercase().as_str() {
        "csv" => b',',
        "tsv" | "tab" => b'\t',
        _ => return None,
    };
    Some(TableOptions {
        delimiter,
        ..TableOptions::default()
    })
}

/// A bounded list of names: the first few, and how many there are in all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameList {
    /// The first names (at most 50), each at most 60 characters (then `…`).
    pub names: Vec<String>,
    /// How many names there are in all.
    pub total: usize,
}

impl NameList {
    fn push(&mut self, name: String) {
        if self.names.len() < LISTED_NAMES {
            self.names.push(name);
        }
        self.total += 1;
    }
}

/// How the rows of the two versions were matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowMatch {
    /// Same header: rows compared field by field.
    SameColumns,
    /// Different headers: rows compared on this many columns both share, by name.
    SharedColumns(usize),
    /// No shared column name (or a header wider than [`MAX_HEADER_COLUMNS`]):
    /// rows compared field by field, by position.
    ByPosition,
}

/// Two versions of a table compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDiff {
    /// Data rows (after the header) in the old version; `None` without one.
    pub old_rows: Option<u64>,
    /// Data rows in the new version.
    pub new_rows: u64,
    /// The new header.
    pub columns: NameList,
    /// Columns only in the new header, in its order.
    pub columns_added: NameList,
    /// Columns only in the old header, in its order.
    pub columns_removed: NameList,
    /// A header was wider than [`MAX_HEADER_COLUMNS`]: columns were not compared
    /// by name.
    pub header_too_wide: bool,
    /// How rows were matched (`SameColumns` without an old version).
    pub matched: RowMatch,
    /// New rows with no equal old row; `None` without an old version or when
    /// the old version had more rows than [`TableOptions::max_old_rows`].
    pub rows_added: Option<u64>,
    /// Old rows with no equal new row; `None` like `rows_added`.
    pub rows_removed: Option<u64>,
    /// The old version had more rows than this limit: counts only.
    pub old_rows_over_limit: Option<u64>,
    /// The first added rows (the first rows, without an old version): the first
    /// [`SAMPLE_COLUMNS`] cells of each, decoded lossily, each at most
    /// [`CELL_CHARS`] characters (then `…`). Not escaped.
    pub sample: Vec<Vec<String>>,
}

/// One table of a dataset and what comparing it gave.
#[derive(Debug, Clone, PartialEq)]
pub struct TableReport {
    /// The file: the dataset path for a single-file dataset, else the path
    /// relative to the dataset directory.
    pub path: String,
    /// The comparison, or why there is none.
    pub result: TableResult,
}

/// A table's comparison, or why it was not compared.
#[derive(Debug, Clone, PartialEq)]
pub enum TableResult {
    /// Compared.
    Diff(TableDiff),
    /// Not compared; the reason is a sentence fragment such as
    /// "2.0 GiB is over the 100.0 MiB limit".
    Skipped(String),
}

impl TableReport {
    /// A compared table.
    pub fn diff(path: impl Into<String>, diff: TableDiff) -> TableReport {
        TableReport {
            path: path.into(),
            result: TableResult::Diff(diff),
        }
    }

    /// A table that was not compared, and why.
    pub fn skipped(path: impl Into<String>, reason: impl Into<String>) -> TableReport {
        TableReport {
            path: path.into(),
            result: TableResult::Skipped(reason.into()),
        }
    }
}

/// Compares two versions of a table, streaming each once (`old` is `None` for a
/// first version). See the module documentation for what is compared and the
/// memory bound. Fails only when a reader fails.
pub fn table_diff(
    old: Option<&mut dyn Read>,
    new: &mut dyn Read,
    opts: &TableOptions,
) -> Result<TableDiff, DiffError> {
    let mut new_tok = Tokenizer::new(new, opts.delimiter)?;
    let new_header = Header::read(&mut new_tok)?;
    let mut columns = NameList::default();
    new_header
        .cols
        .iter()
        .for_each(|c| columns.push(c.display()));
    columns.total = new_header.total;

    let mut diff = TableDiff {
        old_rows: None,
        new_rows: 0,
        columns,
        columns_added: NameList::default(),
        columns_removed: NameList::default(),
        header_too_wide: new_header.too_wide(),
        matched: RowMatch::SameColumns,
        rows_added: None,
        rows_removed: None,
        old_rows_over_limit: None,
        sample: Vec::new(),
    };

    let mut match_plan = None;
    let mut old_rows = None;
    if let Some(old) = old {
        let mut old_tok = Tokenizer::new(old, opts.delimiter)?;
        let old_header = Header::read(&mut old_tok)?;
        diff.header_too_wide |= old_header.too_wide();
        let plan = MatchPlan::new(&old_header, &new_header, diff.header_too_wide);
        if !diff.header_too_wide {
            let (added, removed) = column_changes(&old_header, &new_header);
            diff.columns_added = added;
            diff.columns_removed = removed;
        }
        diff.matched = plan.matched;
        let mut sink = RowSink::new(plan.old_slots.as_deref(), plan.nslots);
        let mut rows = OldRows::default();
        let mut count: u64 = 0;
        while old_tok.next_record(&mut sink)? {
            let h = sink.finish();
            count += 1;
            if count <= opts.max_old_rows {
                rows.push(h);
            } else if count == opts.max_old_rows + 1 {
                rows = OldRows::default();
            }
        }
        diff.old_rows = Some(count);
        if count > opts.max_old_rows {
            diff.old_rows_over_limit = Some(opts.max_old_rows);
        } else {
            rows.seal();
            old_rows = Some(rows);
        }
        match_plan = Some(plan);
    }

    let plan = match_plan.as_ref();
    let mut sink = RowSink::new(
        plan.and_then(|p| p.new_slots.as_deref()),
        plan.map_or(0, |p| p.nslots),
    );
    let compare = diff.old_rows.is_none() || old_rows.is_some();
    let mut added: u64 = 0;
    loop {
        sink.capture = compare && diff.sample.len() < opts.sample_rows;
        sink.cells.clear();
        if !new_tok.next_record(&mut sink)? {
            break;
        }
        let h = sink.finish();
        diff.new_rows += 1;
        let is_added = match old_rows.as_mut() {
            Some(rows) => !rows.take(h),
            None => compare,
        };
        if is_added {
            added += 1;
            if sink.capture {
                diff.sample.push(sink.take_cells());
            }
        }
    }
    if let Some(rows) = &old_rows {
        diff.rows_added = Some(added);
        diff.rows_removed = Some(rows.unpaired());
    }
    Ok(diff)
}

/// Columns added and removed, by name.
fn column_changes(old: &Header, new: &Header) -> (NameList, NameList) {
    let old_set: HashSet<u64> = old.cols.iter().map(|c| c.hash).collect();
    let new_set: HashSet<u64> = new.cols.iter().map(|c| c.hash).collect();
    let mut added = NameList::default();
    let mut removed = NameList::default();
    let mut seen = HashSet::new();
    for c in &new.cols {
        if !old_set.contains(&c.hash) && seen.insert(c.hash) {
            added.push(c.display());
        }
    }
    seen.clear();
    for c in &old.cols {
        if !new_set.contains(&c.hash) && seen.insert(c.hash) {
            removed.push(c.display());
        }
    }
    (added, removed)
}

/// Which field of each file goes to which slot of the compared row.
struct MatchPlan {
    matched: RowMatch,
    /// Column index -> slot, per file; `None` to hash every field by position.
    old_slots: Option<Vec<Option<usize>>>,
    new_slots: Option<Vec<Option<usize>>>,
    nslots: usize,
}

impl MatchPlan {
    fn new(old: &Header, new: &Header, too_wide: bool) -> MatchPlan {
        let positional = |matched| MatchPlan {
            matched,
            old_slots: None,
            new_slots: None,
            nslots: 0,
        };
        if too_wide {
            return positional(RowMatch::ByPosition);
        }
        let same = old.total == new.total
            && old
                .cols
                .iter()
                .zip(&new.cols)
                .all(|(a, b)| a.hash == b.hash);
        if same {
            return positional(RowMatch::SameColumns);
        }
        // Slots: the shared names, in the new header's order, first occurrences.
        let first_index = |h: &Header| {
            let mut m = std::collections::HashMap::new();
            for (i, c) in h.cols.iter().enumerate() {
                m.entry(c.hash).or_insert(i);
            }
            m
        };
        let old_index = first_index(old);
        let mut old_slots = vec![None; old.cols.len()];
        let mut new_slots = vec![None; new.cols.len()];
        let mut nslots = 0;
        for (j, c) in new.cols.iter().enumerate() {
            if let Some(&i) = old_index.get(&c.hash) {
                if old_slots[i].is_none() {
                    old_slots[i] = Some(nslots);
                    new_slots[j] = Some(nslots);
                    nslots += 1;
                }
            }
        }
        if nslots == 0 {
            return positional(RowMatch::ByPosition);
        }
        MatchPlan {
            matched: RowMatch::SharedColumns(nslots),
            old_slots: Some(old_slots),
            new_slots: Some(new_slots),
            nslots,
        }
    }
}

#[cfg(test)]
mod tests;
