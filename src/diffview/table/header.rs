//! A table's header row: its column names, hashed in full and kept
//! truncated for display, and the capped text of a cell.

use super::hash::StreamHash;
use super::{CELL_BYTES, CELL_CHARS, MAX_HEADER_COLUMNS};
use crate::diffview::tokenizer::{FieldSink, Tokenizer};
use crate::diffview::DiffError;

/// A header: the first [`MAX_HEADER_COLUMNS`] names, and the column count.
pub(super) struct Header {
    pub(super) cols: Vec<Column>,
    pub(super) total: usize,
}

pub(super) struct Column {
    /// Hash of the whole name: names are compared by it.
    pub(super) hash: u64,
    /// The first bytes of the name, for display.
    text: Vec<u8>,
    truncated: bool,
}

impl Column {
    pub(super) fn display(&self) -> String {
        cell_text(&self.text, self.truncated)
    }
}

impl Header {
    pub(super) fn read(tok: &mut Tokenizer<'_>) -> Result<Header, DiffError> {
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

    pub(super) fn too_wide(&self) -> bool {
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
pub(super) fn capture(buf: &mut Vec<u8>, bytes: &[u8]) -> bool {
    let room = CELL_BYTES.saturating_sub(buf.len());
    buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    bytes.len() > room
}

/// Decodes captured bytes lossily, keeping at most [`CELL_CHARS`] characters.
pub(super) fn cell_text(bytes: &[u8], truncated: bool) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.chars().take(CELL_CHARS).collect();
    if truncated || out.len() < text.len() {
        out.push('…');
    }
    out
}
