//! Content identifiers: an [`Md5`] digest and the [`ObjectId`] DVC stores it under.
//!
//! DVC 3 names every object by the lowercase hex md5 of its bytes; a directory's
//! manifest object carries a `.dir` suffix. DVC rejects uppercase hex, so parsing
//! does too: a pointer we accept is a pointer DVC accepts.

use std::fmt;
use std::str::FromStr;

/// An md5 digest (16 bytes). Displays as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Md5(pub [u8; 16]);

/// A string that is not a DVC md5 (`32 lowercase hex digits`, optionally `.dir`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid md5 {value:?}: {reason}")]
pub struct InvalidHash {
    /// The rejected text.
    pub value: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

impl Md5 {
    /// The md5 of `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> Md5 {
        let mut hasher = super::md5::Md5Hasher::new();
        hasher.update(bytes);
        hasher.finalize()
    }

    /// 32 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(32);
        for b in self.0 {
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 0xf) as usize] as char);
        }
        s
    }
}

impl fmt::Display for Md5 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Md5 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Md5({})", self.to_hex())
    }
}

impl FromStr for Md5 {
    type Err = InvalidHash;

    fn from_str(s: &str) -> Result<Md5, InvalidHash> {
        let bad = |reason| InvalidHash {
            value: s.to_string(),
            reason,
        };
        if s.len() != 32 {
            return Err(bad("expected 32 hex digits"));
        }
        let mut out = [0u8; 16];
        for (i, pair) in s.as_bytes().chunks(2).enumerate() {
            let hi = hex_digit(pair[0]).map_err(bad)?;
            let lo = hex_digit(pair[1]).map_err(bad)?;
            out[i] = (hi << 4) | lo;
        }
        Ok(Md5(out))
    }
}

fn hex_digit(c: u8) -> Result<u8, &'static str> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Err("uppercase hex digits are not accepted (DVC requires lowercase)"),
        _ => Err("not a hex digit"),
    }
}

/// What DVC stores an object under: an md5, and whether it is a `.dir` manifest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    /// The md5 of the object's bytes.
    pub md5: Md5,
    /// True for a directory manifest (`<hex>.dir`).
    pub dir: bool,
}

impl ObjectId {
    /// A plain file object.
    pub fn file(md5: Md5) -> ObjectId {
        ObjectId { md5, dir: false }
    }

    /// A directory manifest object.
    pub fn dir(md5: Md5) -> ObjectId {
        ObjectId { md5, dir: true }
    }

    /// The object's key under a DVC 3 remote (or cache) root:
    /// `files/md5/<2 hex>/<30 hex>[.dir]`.
    pub fn remote_key(&self) -> String {
        let hex = self.md5.to_hex();
        let suffix = if self.dir { ".dir" } else { "" };
        format!("files/md5/{}/{}{}", &hex[..2], &hex[2..], suffix)
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dir {
            write!(f, "{}.dir", self.md5)
        } else {
            write!(f, "{}", self.md5)
        }
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

impl FromStr for ObjectId {
    type Err = InvalidHash;

    /// Parses the `md5` field of a pointer: `hex` or `hex.dir`.
    fn from_str(s: &str) -> Result<ObjectId, InvalidHash> {
        let (hex, dir) = match s.strip_suffix(".dir") {
            Some(hex) => (hex, true),
            None => (s, false),
        };
        let md5 = hex.parse::<Md5>().map_err(|e| InvalidHash {
            value: s.to_string(),
            reason: e.reason,
        })?;
        Ok(ObjectId { md5, dir })
    }
}

impl serde::Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ObjectId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ObjectId, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Md5 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Md5 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Md5, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_hex_round_trip() {
        let m = Md5::of_bytes(b"foo");
        assert_eq!(m.to_string(), "acbd18db4cc2f85cedef654fccc4a4d8");
        assert_eq!(m.to_string().parse::<Md5>(), Ok(m));
    }

    #[test]
    fn uppercase_is_rejected_with_a_clear_reason() {
        let err = "ACBD18DB4CC2F85CEDEF654FCCC4A4D8"
            .parse::<Md5>()
            .unwrap_err();
        assert!(err.to_string().contains("lowercase"), "{err}");
        assert!("acbd18db4cc2f85cedef654fccc4a4d".parse::<Md5>().is_err());
        assert!("acbd18db4cc2f85cedef654fccc4a4dg".parse::<Md5>().is_err());
        assert!("acbd18db4cc2f85cedef654fccc4a4d8 ".parse::<Md5>().is_err());
    }

    #[test]
    fn object_id_display_parse_and_key() {
        let id: ObjectId = "849835d274483dc683eb416d6e4f887d.dir".parse().unwrap();
        assert!(id.dir);
        assert_eq!(id.to_string(), "849835d274483dc683eb416d6e4f887d.dir");
        assert_eq!(
            id.remote_key(),
            "files/md5/84/9835d274483dc683eb416d6e4f887d.dir"
        );
        let f: ObjectId = "acbd18db4cc2f85cedef654fccc4a4d8".parse().unwrap();
        assert!(!f.dir);
        assert_eq!(
            f.remote_key(),
            "files/md5/ac/bd18db4cc2f85cedef654fccc4a4d8"
        );
        assert!("acbd18db4cc2f85cedef654fccc4a4d8.DIR"
            .parse::<ObjectId>()
            .is_err());
    }
}
