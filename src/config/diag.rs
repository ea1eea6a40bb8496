//! Diagnostics: an error message pinned to a place in the source.
//!
//! A diagnostic carries its own copy of the offending line so that it can be
//! rendered (CLI) or summarised (commit status) long after the source text is
//! gone, and so that `Display` needs nothing but the value itself.

use std::fmt;
use std::ops::Range;

/// One problem in a `pipelines.toml`, located at `file:line:col`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in characters (not bytes) so editors agree.
    pub col: usize,
    pub message: String,
    /// Byte range in the source that the diagnostic is about.
    pub span: Range<usize>,
    /// The source line holding `span.start`, without its line terminator.
    snippet: String,
    /// How many characters of `snippet` the underline covers (at least 1).
    width: usize,
}

impl Diagnostic {
    /// Pins `message` to `span` (byte offsets into `source`); offsets past the
    /// end or inside a character are clamped rather than trusted.
    pub fn new(file: &str, source: &str, span: Range<usize>, message: impl Into<String>) -> Self {
        Self::with_index(file, source, &LineIndex::new(source), span, message.into())
    }

    pub(crate) fn with_index(
        file: &str,
        source: &str,
        index: &LineIndex,
        span: Range<usize>,
        message: String,
    ) -> Self {
        let start = floor_char_boundary(source, span.start);
        let (line, line_start, line_end) = index.line_of(source, start);
        let snippet = &source[line_start..line_end];
        let col = source[line_start..start].chars().count() + 1;
        let end = floor_char_boundary(source, span.end.min(line_end).max(start));
        let width = source[start..end].chars().count().max(1);
        Diagnostic {
            file: file.to_string(),
            line,
            col,
            message,
            span,
            snippet: snippet.to_string(),
            width,
        }
    }

    /// `file:line:col: message`, the one line that fits in a commit status.
    pub fn headline(&self) -> String {
        format!("{}:{}:{}: {}", self.file, self.line, self.col, self.message)
    }
}

/// Renders the headline, then the source line with the span underlined:
///
/// ```text
/// pipelines.toml:12:10: task "push" needs unknown task "pul"
///    |
/// 12 | needs = ["pul"]
///    |          ^^^^^
/// ```
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let num = self.line.to_string();
        let pad = " ".repeat(num.len());
        writeln!(f, "{}", self.headline())?;
        writeln!(f, "{pad} |")?;
        writeln!(f, "{num} | {}", self.snippet)?;
        // Echo tabs from the source so the carets line up whatever the tab width.
        let lead: String = self
            .snippet
            .chars()
            .take(self.col - 1)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, "{pad} | {lead}{}", "^".repeat(self.width))
    }
}

impl std::error::Error for Diagnostic {}

/// Every problem found in one file, in source order; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    /// `None` for an empty list: "no diagnostics" is spelled `Ok`.
    pub fn from_vec(diagnostics: Vec<Diagnostic>) -> Option<Self> {
        (!diagnostics.is_empty()).then_some(Self(diagnostics))
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false; present because `len` is.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[Diagnostic] {
        &self.0
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Self(vec![d])
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// All diagnostics rendered, separated by blank lines.
impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            d.fmt(f)?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Byte offsets of line starts, built once per file so that many diagnostics
/// (or line references inside messages) don't each rescan the source.
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(source: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// 1-based line number of `offset`, and the byte range of that line's text
    /// without its `\n` or `\r\n` terminator.
    pub(crate) fn line_of(&self, source: &str, offset: usize) -> (usize, usize, usize) {
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let mut end = self.starts.get(line).map_or(source.len(), |&next| next - 1);
        if end > start && source.as_bytes()[end - 1] == b'\r' {
            end -= 1;
        }
        (line, start, end.max(start))
    }

    pub(crate) fn line_number(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset).max(1)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_caret_under_span() {
        let src = "[pipelines.a]\nneeds = [\"pul\"]\n";
        let start = src.find("\"pul\"").unwrap();
        let d = Diagnostic::new("pipelines.toml", src, start..start + 5, "boom");
        assert_eq!((d.line, d.col), (2, 10));
        assert_eq!(
            d.to_string(),
            "pipelines.toml:2:10: boom\n  |\n2 | needs = [\"pul\"]\n  |          ^^^^^"
        );
    }

    #[test]
    fn columns_count_characters_and_handle_crlf() {
        let src = "a = \"é\"\r\nbé = \"x\"\r\n";
        let start = src.find("\"x\"").unwrap();
        let d = Diagnostic::new("f", src, start..start + 3, "m");
        assert_eq!((d.line, d.col), (2, 6));
        assert_eq!(d.snippet, "bé = \"x\"");
        // A span running past the end of the line is cut at the line end.
        let d = Diagnostic::new("f", src, 0..src.len(), "m");
        assert_eq!((d.line, d.col, d.width), (1, 1, 7));
    }

    #[test]
    fn tabs_and_out_of_range_offsets() {
        let src = "\tx = 1";
        let d = Diagnostic::new("f", src, 1..2, "m");
        assert!(d.to_string().ends_with("| \t^"));
        let d = Diagnostic::new("f", src, 100..200, "eof");
        assert_eq!((d.line, d.col, d.width), (1, 7, 1));
        let d = Diagnostic::new("f", "", 0..0, "empty");
        assert_eq!(d.headline(), "f:1:1: empty");
    }
}
