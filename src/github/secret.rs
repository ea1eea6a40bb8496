//! [`Secret`]: a token, JWT or private key that must never be printed.

use std::fmt;

use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretString};

/// A credential (personal access token, installation token, App private key).
///
/// A thin newtype over [`secrecy::SecretString`], which keeps the text in a
/// box of its own and zeroizes it when dropped. `Debug` prints `***` (the
/// shape the log-redaction tests look for) and there is no `Display`: the only
/// way to the text is [`Secret::expose`], which call sites use just where the
/// credential is handed to the peer that needs it (an HTTP header, git's
/// credential prompt).
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        let mut value: String = value.into();
        // Copied into a box of the exact size: `SecretString::from(String)`
        // would shrink the String, and a reallocation would leave the old
        // buffer unzeroized. This one is zeroized, spare capacity included.
        let secret = Secret(SecretString::from(value.as_str()));
        value.zeroize();
        secret
    }

    /// The credential itself. Never log or format the result.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

/// Equal credentials (to tell whether a cached token is the one GitHub refused).
impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let secret = Secret::new("ghp_supersecret");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(***)");
        assert_eq!(secret.expose(), "ghp_supersecret");
    }

    #[test]
    fn equal_by_value() {
        assert_eq!(Secret::from("a"), Secret::new(String::from("a")));
        assert_ne!(Secret::from("a"), Secret::from("b"));
        assert!(Secret::from("").is_empty());
    }
}
