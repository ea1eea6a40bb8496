//! A 64-bit streaming hash that does not depend on how its input is split.

/// A 64-bit streaming hash whose result does not depend on how the input is
/// split into `write` calls (fields arrive in buffer-sized pieces). Rounds in
/// the style of xxHash64 over little-endian 8-byte words, then a final avalanche.
#[derive(Default)]
pub(super) struct StreamHash {
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

    pub(super) fn write(&mut self, mut bytes: &[u8]) {
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

    pub(super) fn write_u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }

    pub(super) fn finish(self) -> u64 {
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
}
