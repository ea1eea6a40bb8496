//! The crate's one md5: a safe, incremental wrapper over aws-lc's assembly MD5.
//!
//! aws-lc is linked already (rustls uses it) and its MD5 is about a fifth
//! faster than the portable md-5 crate's; hashing is most of what publishing
//! costs when the data did not change. Everything that needs an md5 (dataset
//! objects, S3 part checksums, pod names, pipeline digests) goes through here,
//! so there is one implementation to trust.

use super::ids::Md5;

/// An md5 being computed: [`update`](Md5Hasher::update) with the bytes in
/// order, then [`finalize`](Md5Hasher::finalize).
pub struct Md5Hasher {
    ctx: aws_lc_sys::MD5_CTX,
}

impl Md5Hasher {
    /// A hasher of nothing yet.
    pub fn new() -> Md5Hasher {
        let mut ctx = std::mem::MaybeUninit::<aws_lc_sys::MD5_CTX>::zeroed();
        // SAFETY: MD5_Init fills in the (plain-data) context it is given.
        unsafe {
            aws_lc_sys::MD5_Init(ctx.as_mut_ptr());
            Md5Hasher {
                ctx: ctx.assume_init(),
            }
        }
    }

    /// Hashes `data` next.
    pub fn update(&mut self, data: impl AsRef<[u8]>) {
        let data = data.as_ref();
        // SAFETY: reads `data.len()` bytes from `data`; the context is ours.
        unsafe {
            aws_lc_sys::MD5_Update(&mut self.ctx, data.as_ptr().cast(), data.len());
        }
    }

    /// The md5 of everything hashed.
    pub fn finalize(mut self) -> Md5 {
        let mut out = [0u8; 16];
        // SAFETY: writes the 16-byte digest to `out`.
        unsafe {
            aws_lc_sys::MD5_Final(out.as_mut_ptr(), &mut self.ctx);
        }
        Md5(out)
    }
}

impl Default for Md5Hasher {
    fn default() -> Md5Hasher {
        Md5Hasher::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1321's test suite, fed in two pieces split at every offset, so
    /// each block boundary of the incremental API is crossed.
    #[test]
    fn rfc_1321_vectors_in_any_pieces() {
        let vectors = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, want) in vectors {
            for split in 0..=input.len() {
                let (a, b) = input.as_bytes().split_at(split);
                let mut h = Md5Hasher::new();
                h.update(a);
                h.update(b);
                assert_eq!(h.finalize().to_hex(), want, "{input:?} split at {split}");
            }
            assert_eq!(Md5::of_bytes(input.as_bytes()).to_hex(), want);
        }
    }

    #[test]
    fn md5_hasher_agrees_with_md5_at_every_block_boundary() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 % 256) as u8).collect();
        for len in [0, 1, 55, 56, 63, 64, 65, 119, 128, 300] {
            let mut h = Md5Hasher::new();
            let (a, b) = data[..len].split_at(len / 3);
            h.update(a);
            h.update(b);
            assert_eq!(h.finalize(), Md5::of_bytes(&data[..len]), "{len} bytes");
        }
        assert_eq!(
            Md5Hasher::default().finalize().to_hex(),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
    }
}
