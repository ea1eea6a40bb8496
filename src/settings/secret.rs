//! Secret values: never printed, read from the environment or from files.

use std::io;
use std::path::Path;

/// The one secret type of the crate (over `secrecy`): `Debug` prints `***`,
/// the value is only reachable through `expose` and is zeroized on drop.
pub use crate::github::Secret;

/// A secret, `None` when it is empty (an empty secret is a mistake, never a
/// credential).
pub(crate) fn non_empty(value: impl Into<String>) -> Option<Secret> {
    let value = value.into();
    (!value.is_empty()).then(|| Secret::new(value))
}

/// Reads a secret file, as Kubernetes and Docker mount them. Trailing line
/// breaks are dropped (`echo secret > file` adds one, and no secret GitHub
/// issues ends with one); every other byte is kept. `Ok(None)` for a file
/// that holds nothing else.
pub(crate) fn read_secret_file(path: &Path) -> io::Result<Option<Secret>> {
    let mut text = std::fs::read_to_string(path)?;
    let kept = text.trim_end_matches(['\n', '\r']).len();
    text.truncate(kept);
    // `Secret::new` copies the text and zeroizes this buffer.
    Ok(non_empty(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = non_empty("ghp_abcdef").unwrap();
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(s.expose(), "ghp_abcdef");
        assert!(non_empty("").is_none());
    }

    #[test]
    fn files_lose_trailing_line_breaks_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        for (content, want) in [
            ("abc\n", Some("abc")),
            ("abc\r\n\n", Some("abc")),
            (" abc \n", Some(" abc ")),
            ("a\nb\n", Some("a\nb")),
            ("\n", None),
            ("", None),
        ] {
            std::fs::write(&path, content).unwrap();
            let got = read_secret_file(&path).unwrap();
            assert_eq!(got.as_ref().map(Secret::expose), want, "{content:?}");
        }
        assert!(read_secret_file(&dir.path().join("missing")).is_err());
    }
}
