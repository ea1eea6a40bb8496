//! `X-Hub-Signature-256`: is this body really from GitHub?
//!
//! GitHub signs every delivery with HMAC-SHA256 over the raw request body,
//! keyed with the webhook secret, and sends `sha256=<64 lowercase hex digits>`.
//! [`verify_signature`] recomputes the MAC over the exact bytes received (never
//! over re-serialized JSON: key order and whitespace would differ) and compares
//! in constant time. The legacy SHA-1 `X-Hub-Signature` header is never
//! consulted: a delivery signed only with SHA-1 is treated as unsigned.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header [`verify_signature`] reads.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

const PREFIX: &str = "sha256=";
const MAC_LEN: usize = 32;

/// The webhook secret shared with GitHub.
///
/// Holds the HMAC key already expanded (GitHub's secrets are hashed into the
/// inner and outer pads once, here, not on every delivery). Its `Debug` and
/// `Display` print `[redacted]`, so it can sit in settings structs that are
/// logged. Bytes are used as given: a secret read from a file keeps a trailing
/// newline unless the caller trims it.
#[derive(Clone)]
pub struct WebhookSecret {
    keyed: HmacSha256,
}

/// A webhook secret was empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the webhook secret is empty")]
pub struct EmptySecret;

impl WebhookSecret {
    /// Wraps a secret. An empty secret is refused: anyone could sign with it.
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, EmptySecret> {
        let secret = secret.as_ref();
        if secret.is_empty() {
            return Err(EmptySecret);
        }
        let keyed = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
        Ok(Self { keyed })
    }

    /// The `X-Hub-Signature-256` value GitHub would send for `body`
    /// (`sha256=` and 64 lowercase hex digits). For tests and load generators.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = self.keyed.clone();
        mac.update(body);
        let tag = mac.finalize().into_bytes();
        let mut out = String::with_capacity(PREFIX.len() + 2 * MAC_LEN);
        out.push_str(PREFIX);
        for byte in tag.iter() {
            out.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(HEX_DIGITS[usize::from(byte & 0x0f)]));
        }
        out
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

impl fmt::Display for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Why a delivery's signature was refused. `Display` is a short reason fit for
/// the body of a 401 answer; none of them reveals the expected value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Hub-Signature-256` header (a delivery signed only with SHA-1
    /// `X-Hub-Signature` lands here too).
    #[error("missing X-Hub-Signature-256")]
    Missing,
    /// The header is not of the form `<algorithm>=<digest>`.
    #[error("malformed X-Hub-Signature-256: expected sha256=<hex>")]
    Malformed,
    /// The header names an algorithm other than `sha256`.
    #[error("X-Hub-Signature-256 must use sha256")]
    WrongAlgorithm,
    /// The digest is not 64 hexadecimal digits.
    #[error("X-Hub-Signature-256 digest is not 64 hex digits")]
    BadHex,
    /// Well-formed, but not the MAC of this body with this secret.
    #[error("signature does not match")]
    Mismatch,
}

/// Checks `header` (the value of `X-Hub-Signature-256`, if any) against
/// HMAC-SHA256 of the raw `body` keyed with `secret`.
///
/// Call this before looking inside the body. The comparison of the MAC is
/// constant-time; hex digits are accepted in either case (they denote the same
/// bytes), the `sha256=` prefix only in lower case, as GitHub sends it.
pub fn verify_signature(
    secret: &WebhookSecret,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let (algorithm, digest) = header.split_once('=').ok_or(SignatureError::Malformed)?;
    if algorithm.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if algorithm != "sha256" {
        return Err(SignatureError::WrongAlgorithm);
    }
    let expected = decode_mac(digest.as_bytes()).ok_or(SignatureError::BadHex)?;
    let mut mac = secret.keyed.clone();
    mac.update(body);
    // `verify_slice` compares in constant time (RustCrypto's `subtle`).
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// Exactly 64 hex digits -> 32 bytes.
fn decode_mac(hex: &[u8]) -> Option<[u8; MAC_LEN]> {
    if hex.len() != 2 * MAC_LEN {
        return None;
    }
    let mut out = [0u8; MAC_LEN];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // GitHub's documented example ("Validating webhook deliveries"), checked
    // with Python: hmac.new(b"It's a Secret to Everybody", b"Hello, World!",
    // hashlib.sha256).hexdigest().
    const DOC_SECRET: &str = "It's a Secret to Everybody";
    const DOC_BODY: &[u8] = b"Hello, World!";
    const DOC_SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    // hmac.new(DOC_SECRET, DOC_BODY, hashlib.sha1).hexdigest()
    const DOC_SHA1_SIGNATURE: &str = "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59";

    fn secret() -> WebhookSecret {
        WebhookSecret::new(DOC_SECRET).unwrap()
    }

    #[test]
    fn github_documented_vector_verifies() {
        assert_eq!(
            verify_signature(&secret(), DOC_BODY, Some(DOC_SIGNATURE)),
            Ok(())
        );
    }

    #[test]
    fn sign_reproduces_the_documented_vector() {
        assert_eq!(secret().sign(DOC_BODY), DOC_SIGNATURE);
    }

    #[test]
    fn sign_and_verify_round_trip_on_arbitrary_bytes() {
        let secret = WebhookSecret::new([0u8, 255, 10, 13]).unwrap();
        for body in [&b""[..], b"{}", &[0xff; 4096][..]] {
            let header = secret.sign(body);
            assert_eq!(verify_signature(&secret, body, Some(&header)), Ok(()));
        }
    }

    #[test]
    fn wrong_secret_is_a_mismatch() {
        let other = WebhookSecret::new("It's a Secret to Nobody").unwrap();
        assert_eq!(
            verify_signature(&other, DOC_BODY, Some(DOC_SIGNATURE)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn truncated_or_altered_body_is_a_mismatch() {
        let s = secret();
        for body in [
            &b"Hello, World"[..],
            b"",
            b"Hello, World!\n",
            b"hello, World!",
        ] {
            assert_eq!(
                verify_signature(&s, body, Some(DOC_SIGNATURE)),
                Err(SignatureError::Mismatch),
                "{body:?}"
            );
        }
    }

    #[test]
    fn missing_header_is_refused_even_with_a_valid_sha1_signature() {
        // A SHA-1-only delivery has no X-Hub-Signature-256: the caller passes None.
        assert_eq!(
            verify_signature(&secret(), DOC_BODY, None),
            Err(SignatureError::Missing)
        );
        // Nor is a SHA-1 value accepted when it is put in the SHA-256 header.
        assert_eq!(
            verify_signature(&secret(), DOC_BODY, Some(DOC_SHA1_SIGNATURE)),
            Err(SignatureError::WrongAlgorithm)
        );
    }

    #[test]
    fn uppercase_hex_digits_denote_the_same_mac() {
        let upper = format!("sha256={}", DOC_SIGNATURE[7..].to_ascii_uppercase());
        assert_eq!(verify_signature(&secret(), DOC_BODY, Some(&upper)), Ok(()));
    }

    #[test]
    fn the_prefix_is_required_and_exact() {
        let bare = &DOC_SIGNATURE[7..];
        let cases = [
            (bare.to_string(), SignatureError::Malformed),
            (format!("={bare}"), SignatureError::Malformed),
            (String::new(), SignatureError::Malformed),
            (format!("SHA256={bare}"), SignatureError::WrongAlgorithm),
            (format!("sha512={bare}"), SignatureError::WrongAlgorithm),
            (format!(" sha256={bare}"), SignatureError::WrongAlgorithm),
        ];
        for (header, want) in cases {
            assert_eq!(
                verify_signature(&secret(), DOC_BODY, Some(&header)),
                Err(want),
                "{header:?}"
            );
        }
    }

    #[test]
    fn digests_that_are_not_64_hex_digits_are_bad_hex() {
        let hex = &DOC_SIGNATURE[7..];
        let cases = [
            String::from("sha256="),
            format!("sha256={}", &hex[..63]),
            format!("sha256={}", &hex[..62]),
            format!("sha256={hex}0"),
            format!("sha256={hex}00"),
            format!("sha256={} ", hex),
            format!("sha256={}g", &hex[..63]),
            format!("sha256=0x{}", &hex[..62]),
            format!("sha256={}é", &hex[..62]),
        ];
        for header in cases {
            assert_eq!(
                verify_signature(&secret(), DOC_BODY, Some(&header)),
                Err(SignatureError::BadHex),
                "{header:?}"
            );
        }
    }

    #[test]
    fn reasons_are_short_and_distinct() {
        let all = [
            SignatureError::Missing,
            SignatureError::Malformed,
            SignatureError::WrongAlgorithm,
            SignatureError::BadHex,
            SignatureError::Mismatch,
        ];
        let reasons: std::collections::BTreeSet<String> =
            all.iter().map(ToString::to_string).collect();
        assert_eq!(reasons.len(), all.len());
        assert!(reasons.iter().all(|r| r.len() <= 60), "{reasons:?}");
        assert_eq!(
            SignatureError::Missing.to_string(),
            "missing X-Hub-Signature-256"
        );
        assert_eq!(
            SignatureError::Mismatch.to_string(),
            "signature does not match"
        );
    }

    #[test]
    fn the_secret_is_never_printed() {
        let s = WebhookSecret::new("hunter2-very-secret").unwrap();
        for shown in [format!("{s:?}"), format!("{s:#?}"), format!("{s}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("[redacted]"), "{shown}");
        }
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Settings {
            secret: WebhookSecret,
        }
        let shown = format!("{:?}", Settings { secret: s });
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn an_empty_secret_is_refused() {
        assert_eq!(WebhookSecret::new("").unwrap_err(), EmptySecret);
        assert_eq!(WebhookSecret::new(Vec::new()).unwrap_err(), EmptySecret);
    }
}
