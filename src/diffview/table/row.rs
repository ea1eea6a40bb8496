//! Hashing one data row at a time, by position or by matched column slot,
//! keeping the first cells of a row that may be shown.

use super::hash::StreamHash;
use super::header::{capture, cell_text};
use super::SAMPLE_COLUMNS;
use crate::diffview::tokenizer::FieldSink;

/// Hashes one record at a time, optionally capturing its first cells.
pub(super) struct RowSink<'a> {
    /// Column -> slot, or `None` to hash fields by position.
    slots: Option<&'a [Option<usize>]>,
    slot_hashes: Vec<u64>,
    field: StreamHash,
    record: StreamHash,
    fields: usize,
    pub(super) capture: bool,
    pub(super) cells: Vec<(Vec<u8>, bool)>,
}

/// Stands for a missing field of a ragged row (distinct from an empty one).
const ABSENT: u64 = 0x6162_7365_6e74_2121;

impl<'a> RowSink<'a> {
    pub(super) fn new(slots: Option<&'a [Option<usize>]>, nslots: usize) -> RowSink<'a> {
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
    pub(super) fn finish(&mut self) -> u64 {
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

    pub(super) fn take_cells(&mut self) -> Vec<String> {
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
