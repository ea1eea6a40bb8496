//! The old version's row hashes, as a multiset in sorted chunks with one
//! bit per row to pair duplicates.

/// Hashes per chunk of [`OldRows`] (8 MiB).
pub(super) const CHUNK: usize = 1 << 20;

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
    pub(super) fn push(&mut self, h: u64) {
        match self.chunks.last_mut() {
            Some(c) if c.hashes.len() < CHUNK => c.hashes.push(h),
            _ => self.chunks.push(Chunk {
                hashes: vec![h],
                paired: Vec::new(),
            }),
        }
    }

    pub(super) fn seal(&mut self) {
        for c in &mut self.chunks {
            c.hashes.sort_unstable();
            c.hashes.shrink_to_fit();
            c.paired = vec![0; c.hashes.len().div_ceil(64)];
        }
    }

    /// Pairs `h` with an unpaired equal old row; false when there is none.
    pub(super) fn take(&mut self, h: u64) -> bool {
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

    pub(super) fn unpaired(&self) -> u64 {
        self.chunks
            .iter()
            .map(|c| {
                let paired: u64 = c.paired.iter().map(|w| u64::from(w.count_ones())).sum();
                c.hashes.len() as u64 - paired
            })
            .sum()
    }
}
