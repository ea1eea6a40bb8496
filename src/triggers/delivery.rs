//! `X-GitHub-Delivery`: the id GitHub gives each delivery, and the key cairn
//! deduplicates on (GitHub redelivers with the same id).
//!
//! GitHub sends a UUID. Since the value becomes a store key and a log field,
//! anything that does not look like an id is refused rather than passed on:
//! it must be 1 to [`DeliveryId::MAX_LEN`] characters of visible ASCII
//! (`!` to `~`; no spaces, no control characters).

use std::fmt;
use std::str::FromStr;

/// The header [`DeliveryId::from_header`] reads.
pub const DELIVERY_HEADER: &str = "X-GitHub-Delivery";

/// A validated `X-GitHub-Delivery` value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeliveryId(String);

/// Why an `X-GitHub-Delivery` value was refused. `Display` fits a 400 body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryIdError {
    #[error("missing X-GitHub-Delivery")]
    Missing,
    #[error("empty X-GitHub-Delivery")]
    Empty,
    #[error("X-GitHub-Delivery is longer than {max} characters", max = DeliveryId::MAX_LEN)]
    TooLong,
    #[error("X-GitHub-Delivery must be visible ASCII")]
    InvalidCharacter,
}

impl DeliveryId {
    /// Longest id accepted (a UUID has 36 characters).
    pub const MAX_LEN: usize = 100;

    /// Validates a header value.
    pub fn parse(value: &str) -> Result<Self, DeliveryIdError> {
        if value.is_empty() {
            return Err(DeliveryIdError::Empty);
        }
        if value.len() > Self::MAX_LEN {
            return Err(DeliveryIdError::TooLong);
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(DeliveryIdError::InvalidCharacter);
        }
        Ok(Self(value.to_owned()))
    }

    /// Validates the header if present.
    pub fn from_header(value: Option<&str>) -> Result<Self, DeliveryIdError> {
        Self::parse(value.ok_or(DeliveryIdError::Missing)?)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DeliveryId {
    type Err = DeliveryIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for DeliveryId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_uuids_are_accepted() {
        for id in [
            "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "b9b4a640-5d5b-11ee-8c99-0242ac120002",
        ] {
            let parsed = DeliveryId::parse(id).unwrap();
            assert_eq!(parsed.as_str(), id);
            assert_eq!(parsed.to_string(), id);
            assert_eq!(id.parse::<DeliveryId>().unwrap(), parsed);
        }
    }

    #[test]
    fn other_visible_ascii_is_accepted_up_to_the_limit() {
        assert!(DeliveryId::parse("x").is_ok());
        assert!(DeliveryId::parse("!~{}").is_ok());
        assert!(DeliveryId::parse(&"a".repeat(DeliveryId::MAX_LEN)).is_ok());
    }

    #[test]
    fn bad_values_are_refused() {
        use DeliveryIdError::*;
        let too_long = "a".repeat(DeliveryId::MAX_LEN + 1);
        let cases: [(Option<&str>, DeliveryIdError); 9] = [
            (None, Missing),
            (Some(""), Empty),
            (Some(&too_long), TooLong),
            (Some(" 72d3162e"), InvalidCharacter),
            (Some("72d3162e "), InvalidCharacter),
            (Some("a b"), InvalidCharacter),
            (Some("a\tb"), InvalidCharacter),
            (Some("a\u{7f}"), InvalidCharacter),
            (Some("délivrance"), InvalidCharacter),
        ];
        for (value, want) in cases {
            assert_eq!(DeliveryId::from_header(value), Err(want), "{value:?}");
        }
    }

    #[test]
    fn a_long_multibyte_value_is_too_long_not_sliced() {
        let value = "é".repeat(60); // 120 bytes
        assert_eq!(DeliveryId::parse(&value), Err(DeliveryIdError::TooLong));
    }
}
