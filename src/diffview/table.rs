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

use std::collections::HashSet;
use std::io::Read;

use super::tokenizer::{FieldSink, Tokenizer};
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
/// Hashes per chunk of [`OldRows`] (8 MiB).
const CHUNK: usize = 1 << 20;

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

/// A header: the first [`MAX_HEADER_COLUMNS`] names, and the column count.
struct Header {
    cols: Vec<Column>,
    total: usize,
}

struct Column {
    /// Hash of the whole name: names are compared by it.
    hash: u64,
    /// The first bytes of the name, for display.
    text: Vec<u8>,
    truncated: bool,
}

impl Column {
    fn display(&self) -> String {
        cell_text(&self.text, self.truncated)
    }
}

impl Header {
    fn read(tok: &mut Tokenizer<'_>) -> Result<Header, DiffError> {
        let mut sink = HeaderSink {
            header: Header {
                cols: Vec::new(),
                total: 0,
            },
            hash: StreamHash::default(),
            text: Vec::new(),
            truncated: false,
        };
        tok.next_record(&mut sink)?;
        Ok(sink.header)
    }

    fn too_wide(&self) -> bool {
        self.total > MAX_HEADER_COLUMNS
    }
}

struct HeaderSink {
    header: Header,
    hash: StreamHash,
    text: Vec<u8>,
    truncated: bool,
}

impl FieldSink for HeaderSink {
    fn part(&mut self, col: usize, bytes: &[u8]) {
        if col < MAX_HEADER_COLUMNS {
            self.hash.write(bytes);
            self.truncated |= capture(&mut self.text, bytes);
        }
    }

    fn end(&mut self, col: usize) {
        self.header.total = col + 1;
        if col < MAX_HEADER_COLUMNS {
            self.header.cols.push(Column {
                hash: std::mem::take(&mut self.hash).finish(),
                text: std::mem::take(&mut self.text),
                truncated: std::mem::take(&mut self.truncated),
            });
        }
    }
}

/// Appends up to [`CELL_BYTES`] in all; true when bytes were dropped.
fn capture(buf: &mut Vec<u8>, bytes: &[u8]) -> bool {
    let room = CELL_BYTES.saturating_sub(buf.len());
    buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    bytes.len() > room
}

/// Decodes captured bytes lossily, keeping at most [`CELL_CHARS`] characters.
fn cell_text(bytes: &[u8], truncated: bool) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.chars().take(CELL_CHARS).collect();
    if truncated || out.len() < text.len() {
        out.push('…');
    }
    out
}

/// Hashes one record at a time, optionally capturing its first cells.
struct RowSink<'a> {
    /// Column -> slot, or `None` to hash fields by position.
    slots: Option<&'a [Option<usize>]>,
    slot_hashes: Vec<u64>,
    field: StreamHash,
    record: StreamHash,
    fields: usize,
    capture: bool,
    cells: Vec<(Vec<u8>, bool)>,
}

/// Stands for a missing field of a ragged row (distinct from an empty one).
const ABSENT: u64 = 0x6162_7365_6e74_2121;

impl<'a> RowSink<'a> {
    fn new(slots: Option<&'a [Option<usize>]>, nslots: usize) -> RowSink<'a> {
        RowSink {
            slots,
            slot_hashes: vec![ABSENT; if slots.is_some() { nslots } else { 0 }],
            field: StreamHash::default(),
            record: StreamHash::default(),
            fields: 0,
            capture: false,
            cells: Vec::new(),
        }
    }

    /// The hash of the record just fed; resets for the next one (captured
    /// cells stay until [`RowSink::take_cells`] or cleared by the caller).
    fn finish(&mut self) -> u64 {
        let h = if self.slots.is_some() {
            let mut r = StreamHash::default();
            for h in &mut self.slot_hashes {
                r.write_u64(*h);
                *h = ABSENT;
            }
            r.finish()
        } else {
            let mut r = std::mem::take(&mut self.record);
            r.write_u64(self.fields as u64);
            r.finish()
        };
        self.fields = 0;
        h
    }

    /// Appends to captured cell `col`, creating the cells up to it.
    fn cell(&mut self, col: usize, bytes: &[u8]) {
        while self.cells.len() <= col {
            self.cells.push((Vec::new(), false));
        }
        let (buf, truncated) = &mut self.cells[col];
        *truncated |= capture(buf, bytes);
    }

    fn take_cells(&mut self) -> Vec<String> {
        std::mem::take(&mut self.cells)
            .into_iter()
            .map(|(bytes, truncated)| cell_text(&bytes, truncated))
            .collect()
    }
}

impl FieldSink for RowSink<'_> {
    fn part(&mut self, col: usize, bytes: &[u8]) {
        self.field.write(bytes);
        if self.capture && col < SAMPLE_COLUMNS {
            self.cell(col, bytes);
        }
    }

    fn end(&mut self, col: usize) {
        let h = std::mem::take(&mut self.field).finish();
        match self.slots {
            Some(slots) => {
                if let Some(Some(s)) = slots.get(col) {
                    self.slot_hashes[*s] = h;
                }
            }
            None => self.record.write_u64(h),
        }
        self.fields = col + 1;
        if self.capture && col < SAMPLE_COLUMNS {
            self.cell(col, b"");
        }
    }
}

/// The old version's row hashes.
///
/// Memory bound: 8 bytes per old row, in sorted chunks of 2^20 hashes (the last
/// chunk grows by doubling, so at most 8 MiB of slack), plus 1 bit per row that
/// pairs duplicates. At the default cap of 10 million rows: about 81 MB.
#[derive(Default)]
pub(crate) struct OldRows {
    chunks: Vec<Chunk>,
}

#[derive(Default)]
struct Chunk {
    hashes: Vec<u64>,
    /// Bit i set: `hashes[i]` was paired with a new row.
    paired: Vec<u64>,
}

impl OldRows {
    fn push(&mut self, h: u64) {
        match self.chunks.last_mut() {
            Some(c) if c.hashes.len() < CHUNK => c.hashes.push(h),
            _ => self.chunks.push(Chunk {
                hashes: vec![h],
                paired: Vec::new(),
            }),
        }
    }

    fn seal(&mut self) {
        for c in &mut self.chunks {
            c.hashes.sort_unstable();
            c.hashes.shrink_to_fit();
            c.paired = vec![0; c.hashes.len().div_ceil(64)];
        }
    }

    /// Pairs `h` with an unpaired equal old row; false when there is none.
    fn take(&mut self, h: u64) -> bool {
        for c in &mut self.chunks {
            let mut i = c.hashes.partition_point(|x| *x < h);
            while i < c.hashes.len() && c.hashes[i] == h {
                let (word, bit) = (i / 64, 1u64 << (i % 64));
                if c.paired[word] & bit == 0 {
                    c.paired[word] |= bit;
                    return true;
                }
                i += 1;
            }
        }
        false
    }

    fn unpaired(&self) -> u64 {
        self.chunks
            .iter()
            .map(|c| {
                let paired: u64 = c.paired.iter().map(|w| u64::from(w.count_ones())).sum();
                c.hashes.len() as u64 - paired
            })
            .sum()
    }
}

/// A 64-bit streaming hash whose result does not depend on how the input is
/// split into `write` calls (fields arrive in buffer-sized pieces). Rounds in
/// the style of xxHash64 over little-endian 8-byte words, then a final avalanche.
#[derive(Default)]
struct StreamHash {
    acc: u64,
    tail: u64,
    ntail: u32,
    len: u64,
}

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;

impl StreamHash {
    fn round(&mut self, word: u64) {
        self.acc = self
            .acc
            .wrapping_add(word.wrapping_mul(P2))
            .rotate_left(31)
            .wrapping_mul(P1);
    }

    fn write(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        while self.ntail != 0 && !bytes.is_empty() {
            self.tail |= u64::from(bytes[0]) << (8 * self.ntail);
            self.ntail = (self.ntail + 1) % 8;
            bytes = &bytes[1..];
            if self.ntail == 0 {
                let w = std::mem::take(&mut self.tail);
                self.round(w);
            }
        }
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            self.round(u64::from_le_bytes(a));
        }
        for &b in words.remainder() {
            self.tail |= u64::from(b) << (8 * self.ntail);
            self.ntail += 1;
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }

    fn finish(self) -> u64 {
        let mut h = self.acc ^ self.len.wrapping_mul(P1);
        if self.ntail > 0 {
            h = (h ^ self.tail.wrapping_mul(P2))
                .rotate_left(27)
                .wrapping_mul(P1);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        h ^= h >> 33;
        h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        h ^ (h >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(old: Option<&str>, new: &str) -> TableDiff {
        diff_bytes(
            old.map(str::as_bytes),
            new.as_bytes(),
            &TableOptions::default(),
        )
    }

    fn diff_bytes(old: Option<&[u8]>, new: &[u8], opts: &TableOptions) -> TableDiff {
        let mut old = old;
        table_diff(
            old.as_mut().map(|r| r as &mut dyn Read),
            &mut &new[..],
            opts,
        )
        .unwrap()
    }

    fn names(l: &NameList) -> Vec<&str> {
        l.names.iter().map(String::as_str).collect()
    }

    #[test]
    fn stream_hash_ignores_how_input_is_split() {
        let data: Vec<u8> = (0..100u8).collect();
        let whole = {
            let mut h = StreamHash::default();
            h.write(&data);
            h.finish()
        };
        for split in [1, 3, 7, 8, 9, 64] {
            let mut h = StreamHash::default();
            data.chunks(split).for_each(|c| h.write(c));
            assert_eq!(h.finish(), whole, "split {split}");
        }
        let one = |b: &[u8]| {
            let mut h = StreamHash::default();
            h.write(b);
            h.finish()
        };
        assert_ne!(one(b""), one(b"\0"));
        assert_ne!(one(b"ab"), one(b"ba"));
    }

    #[test]
    fn table_of_cases() {
        struct Case {
            name: &'static str,
            old: Option<&'static str>,
            new: &'static str,
            rows: (Option<u64>, u64),
            added: Option<u64>,
            removed: Option<u64>,
            cols_added: &'static [&'static str],
            cols_removed: &'static [&'static str],
            matched: RowMatch,
            sample: &'static [&'static [&'static str]],
        }
        let cases = [
            Case {
                name: "rows added and removed",
                old: Some("id,name\n1,ann\n2,bob\n3,cy\n"),
                new: "id,name\n1,ann\n3,cy\n4,dee\n5,ed\n",
                rows: (Some(3), 4),
                added: Some(2),
                removed: Some(1),
                cols_added: &[],
                cols_removed: &[],
                matched: RowMatch::SameColumns,
                sample: &[&["4", "dee"], &["5", "ed"]],
            },
            Case {
                name: "first version: first rows shown",
                old: None,
                new: "a,b\n1,2\n3,4\n",
                rows: (None, 2),
                added: None,
                removed: None,
                cols_added: &[],
                cols_removed: &[],
                matched: RowMatch::SameColumns,
                sample: &[&["1", "2"], &["3", "4"]],
            },
            Case {
                name: "removed column: rows compared on the shared ones",
                old: Some("id,legacy,name\n1,x,ann\n2,y,bob\n"),
                new: "name,id\nann,1\nbob,2\ncy,3\n",
                rows: (Some(2), 3),
                added: Some(1),
                removed: Some(0),
                cols_added: &[],
                cols_removed: &["legacy"],
                matched: RowMatch::SharedColumns(2),
                sample: &[&["cy", "3"]],
            },
            Case {
                name: "added column",
                old: Some("id\n1\n"),
                new: "id,score\n1,0.5\n2,0.7\n",
                rows: (Some(1), 2),
                added: Some(1),
                removed: Some(0),
                cols_added: &["score"],
                cols_removed: &[],
                matched: RowMatch::SharedColumns(1),
                sample: &[&["2", "0.7"]],
            },
            Case {
                name: "no shared column: by position",
                old: Some("a\n1\n"),
                new: "b\n1\n2\n",
                rows: (Some(1), 2),
                added: Some(1),
                removed: Some(0),
                cols_added: &["b"],
                cols_removed: &["a"],
                matched: RowMatch::ByPosition,
                sample: &[&["2"]],
            },
            Case {
                name: "quoted commas and quotes; same values unquoted are equal",
                old: Some("id,note\n1,plain\n2,\"a,b\"\n"),
                new: "id,note\n\"1\",\"plain\"\n2,\"a,b\"\n3,\"say \"\"hi\"\", ok\"\n",
                rows: (Some(2), 3),
                added: Some(1),
                removed: Some(0),
                cols_added: &[],
                cols_removed: &[],
                matched: RowMatch::SameColumns,
                sample: &[&["3", "say \"hi\", ok"]],
            },
            Case {
                name: "CRLF old, LF new: no change",
                old: Some("id,v\r\n1,a\r\n2,b\r\n"),
                new: "id,v\n1,a\n2,b",
                rows: (Some(2), 2),
                added: Some(0),
                removed: Some(0),
                cols_added: &[],
                cols_removed: &[],
                matched: RowMatch::SameColumns,
                sample: &[],
            },
            Case {
                name: "BOM on one side only",
                old: Some("id,v\n1,a\n"),
                new: "\u{feff}id,v\n1,a\n2,b\n",
                rows: (Some(1), 2),
                added: Some(1),
                removed: Some(0),
                cols_added: &[],
                cols_removed: &[],
                matched: RowMatch::SameColumns,
                sample: &[&["2", "b"]],
            },
            Case {
                name: "empty new file",
                old: Some("id\n1\n"),
                new: "",
                rows: (Some(1), 0),
                added: Some(0),
                removed: Some(1),
                cols_added: &[],
                cols_removed: &["id"],
                matched: RowMatch::ByPosition,
                sample: &[],
            },
            Case {
                name: "both empty",
                old: Some(""),
                new: "",
                rows: (Some(0), 0),
                added: Some(0),
                removed: Some(0),
                cols_added: &[],
                cols_removed: &[],
                matched: RowMatch::SameColumns,
                sample: &[],
            },
            Case {
                name: "ragged rows: a missing field is not an empty one",
                old: Some("a,b,c\n1,2\n1,2,\n"),
                new: "a,b,c\n1,2,\n1,2\n1\n1,2,3,4\n",
                rows: (Some(2), 4),
                added: Some(2),
                removed: Some(0),
                cols_added: &[],
                cols_removed: &[],
                matched: RowMatch::SameColumns,
                sample: &[&["1"], &["1", "2", "3", "4"]],
            },
            Case {
                name: "duplicates are counted",
                old: Some("x\n1\n1\n2\n"),
                new: "x\n1\n1\n1\n",
                rows: (Some(3), 3),
                added: Some(1),
                removed: Some(1),
                cols_added: &[],
                cols_removed: &[],
                matched: RowMatch::SameColumns,
                sample: &[&["1"]],
            },
        ];
        for c in cases {
            let d = diff(c.old, c.new);
            assert_eq!((d.old_rows, d.new_rows), c.rows, "{}", c.name);
            assert_eq!(d.rows_added, c.added, "{}", c.name);
            assert_eq!(d.rows_removed, c.removed, "{}", c.name);
            assert_eq!(names(&d.columns_added), c.cols_added, "{}", c.name);
            assert_eq!(names(&d.columns_removed), c.cols_removed, "{}", c.name);
            assert_eq!(d.matched, c.matched, "{}", c.name);
            assert_eq!(d.sample, c.sample, "{}", c.name);
            assert_eq!(d.old_rows_over_limit, None, "{}", c.name);
        }
    }

    #[test]
    fn header_and_bom_are_not_rows() {
        let d = diff(None, "\u{feff}\"id\",name\r\n");
        assert_eq!(d.new_rows, 0);
        assert_eq!(names(&d.columns), ["id", "name"]);
        assert_eq!(d.columns.total, 2);
    }

    #[test]
    fn huge_cell_is_truncated_and_still_compared_in_full() {
        let big = "x".repeat(3 * 1024 * 1024);
        let old = format!("id,blob\n1,{big}\n");
        let new = format!("id,blob\n1,{big}\n2,{big}y\n");
        let d = diff(Some(&old), &new);
        assert_eq!(d.rows_added, Some(1));
        assert_eq!(d.sample.len(), 1);
        let cell = &d.sample[0][1];
        assert_eq!(cell.chars().count(), CELL_CHARS + 1);
        assert!(cell.ends_with('…'));
        // Differs only in its last byte, 3 MiB in: still a different row.
        let changed = format!("id,blob\n1,{big}z\n");
        assert_eq!(diff(Some(&old), &changed).rows_added, Some(1));
    }

    #[test]
    fn non_utf8_is_decoded_lossily() {
        let d = diff_bytes(None, b"name\ncaf\xe9\n", &TableOptions::default());
        assert_eq!(d.sample, vec![vec!["caf\u{fffd}".to_string()]]);
    }

    #[test]
    fn wide_rows_keep_the_first_columns() {
        let header: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
        let row: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        let text = format!("{}\n{}\n", header.join(","), row.join(","));
        let d = diff(None, &text);
        assert_eq!(d.columns.total, 20);
        assert_eq!(d.sample[0].len(), SAMPLE_COLUMNS);
        assert_eq!(d.sample[0][7], "7");
    }

    #[test]
    fn headers_wider_than_the_cap_compare_by_position() {
        let n = MAX_HEADER_COLUMNS + 1;
        let header: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        let row = |v: &str| vec![v; n].join(",");
        let old = format!("{}\n{}\n", header.join(","), row("1"));
        let new = format!("{},more\n{}\n{}\n", header.join(","), row("1"), row("2"));
        let d = diff(Some(&old), &new);
        assert!(d.header_too_wide);
        assert_eq!(d.matched, RowMatch::ByPosition);
        assert_eq!((d.rows_added, d.rows_removed), (Some(1), Some(0)));
        assert_eq!(d.columns_added.total, 0);
        assert_eq!(
            (d.columns.total, d.columns.names.len()),
            (n + 1, LISTED_NAMES)
        );
    }

    #[test]
    fn sample_is_capped_and_only_added_rows_are_kept() {
        let old = "n\n0\n2\n4\n6\n8\n10\n";
        let new: String = std::iter::once("n".to_string())
            .chain((0..12).map(|i| i.to_string()))
            .collect::<Vec<_>>()
            .join("\n");
        let d = diff(Some(old), &new);
        assert_eq!(d.rows_added, Some(6));
        let firsts: Vec<&str> = d.sample.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(firsts, ["1", "3", "5", "7", "9"]);
    }

    #[test]
    fn over_the_old_row_cap_counts_only() {
        let opts = TableOptions {
            max_old_rows: 3,
            ..TableOptions::default()
        };
        let d = diff_bytes(Some(b"x\n1\n2\n3\n4\n"), b"x\n1\n5\n", &opts);
        assert_eq!((d.old_rows, d.new_rows), (Some(4), 2));
        assert_eq!(d.old_rows_over_limit, Some(3));
        assert_eq!((d.rows_added, d.rows_removed), (None, None));
        assert!(d.sample.is_empty());
        // At the cap exactly, rows are still compared.
        let d = diff_bytes(Some(b"x\n1\n2\n3\n"), b"x\n1\n5\n", &opts);
        assert_eq!((d.rows_added, d.rows_removed), (Some(1), Some(2)));
    }

    #[test]
    fn many_rows_span_chunks() {
        let n = CHUNK as u64 + 10;
        let mut old = String::from("k\n");
        let mut new = String::from("k\n");
        for i in 0..n {
            old.push_str(&format!("{i}\n"));
            new.push_str(&format!("{}\n", i + 3));
        }
        let d = diff(Some(&old), &new);
        assert_eq!((d.rows_added, d.rows_removed), (Some(3), Some(3)));
        let firsts: Vec<&str> = d.sample.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(
            firsts,
            [n.to_string(), (n + 1).to_string(), (n + 2).to_string()]
        );
    }

    #[test]
    fn options_by_extension() {
        assert_eq!(table_options_for("data/a.CSV").unwrap().delimiter, b',');
        assert_eq!(table_options_for("a.tsv").unwrap().delimiter, b'\t');
        assert_eq!(table_options_for("x/a.tab").unwrap().delimiter, b'\t');
        assert!(table_options_for("a.csv.gz").is_none());
        assert!(table_options_for("csv").is_none());
        assert!(table_options_for("dir.csv/readme").is_none());
    }
}
