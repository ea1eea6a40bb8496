//! GitHub Markdown building blocks: escaping, code spans, sizes, links, the marker.

use std::time::Duration;

/// GitHub's limit on a pull request body (characters); bodies stay below it.
pub const BODY_LIMIT: usize = 65_536;
/// GitHub's limit on a pull request title (characters); titles stay below it.
pub const TITLE_LIMIT: usize = 256;

const MARKER_PREFIX: &str = "<!-- cairn:pipeline=";
const MARKER_SUFFIX: &str = " -->";

/// The hidden line that identifies the pull request (or comment) of a pipeline:
/// `<!-- cairn:pipeline=NAME -->`. Valid pipeline names (letters, digits, `_`,
/// `-`) appear as they are; any other character is percent-encoded, so the
/// comment cannot be closed early and [`pipeline_from_marker`] reads it back.
pub fn marker(pipeline: &str) -> String {
    let mut s = String::from(MARKER_PREFIX);
    for b in pipeline.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.' {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s.push_str(MARKER_SUFFIX);
    s
}

/// The pipeline named by the first [`marker`] in `body`, if any.
pub fn pipeline_from_marker(body: &str) -> Option<String> {
    let start = body.find(MARKER_PREFIX)? + MARKER_PREFIX.len();
    let rest = &body[start..];
    let encoded = &rest[..rest.find(MARKER_SUFFIX)?];
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut it = encoded.bytes();
    while let Some(b) = it.next() {
        match b {
            b'%' => {
                let hex = [it.next()?, it.next()?];
                let hex = std::str::from_utf8(&hex).ok()?;
                bytes.push(u8::from_str_radix(hex, 16).ok()?);
            }
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.' => bytes.push(b),
            _ => return None,
        }
    }
    String::from_utf8(bytes).ok().filter(|s| !s.is_empty())
}

/// Characters that could reorder or hide text (bidirectional controls) or break
/// lines invisibly; shown as U+FFFD.
pub(crate) fn is_suspicious(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
        || (c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

fn escape(s: &str, newline: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '~' | '|' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            // `@name` would notify a GitHub user; a zero-width space prevents it.
            '@' => out.push_str("@\u{200B}"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str(newline);
            }
            '\n' => out.push_str(newline),
            '\t' => out.push(' '),
            c if is_suspicious(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Text shown literally inline: Markdown and HTML are escaped, line breaks
/// become spaces, `@mentions` are defused.
pub(crate) fn text(s: &str) -> String {
    escape(s, " ")
}

/// Text shown literally in a table cell: like [`text`], with line breaks as `<br>`.
pub(crate) fn cell(s: &str) -> String {
    let escaped = escape(s, "<br>");
    if escaped.trim().is_empty() {
        // An empty cell still needs content for some renderers to keep the row.
        " ".to_string()
    } else {
        escaped
    }
}

/// An inline code span showing `s` literally (control characters as escapes);
/// `in_table` also escapes `|`, which GitHub's tables split on even in code.
pub(crate) fn code(s: &str, in_table: bool) -> String {
    let mut content = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => content.push_str("\\n"),
            '\r' => content.push_str("\\r"),
            '\t' => content.push_str("\\t"),
            c if is_suspicious(c) => content.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => content.push(c),
        }
    }
    if content.is_empty() {
        return "` `".to_string();
    }
    let mut longest = 0;
    let mut run = 0;
    for c in content.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = content.starts_with('`')
        || content.ends_with('`')
        || (content.starts_with(' ') && content.ends_with(' '));
    let space = if pad { " " } else { "" };
    let out = format!("{fence}{space}{content}{space}{fence}");
    if in_table {
        out.replace('|', "\\|")
    } else {
        out
    }
}

/// At most `max` characters of `s`, ending in `…` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// At most `max` characters of `s`, cut in the middle (the end of a path is
/// what tells files apart).
pub(crate) fn truncate_middle(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub(1);
    let head = keep / 3;
    let tail = keep - head;
    let mut out: String = s.chars().take(head).collect();
    out.push('…');
    out.extend(s.chars().skip(n - tail));
    out
}

/// `s` cut to at most `max` bytes, on a character boundary.
pub(crate) fn cut_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `1234567` -> `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` and the noun, singular or plural: `1 file`, `1,024 files`.
pub(crate) fn count(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// A short size: `312 B`, `13.1 KiB`, `2.0 GiB`.
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A size with the exact byte count: `13.1 KiB (13,420 bytes)`, `312 bytes`.
pub(crate) fn size_exact(bytes: u64) -> String {
    if bytes < 1024 {
        count(bytes, "byte", "bytes")
    } else {
        format!("{} ({})", size(bytes), count(bytes, "byte", "bytes"))
    }
}

/// The signed difference of two sizes: `+916 B`, `-1.2 MiB`, `±0 B`.
pub(crate) fn size_delta(old: u64, new: u64) -> String {
    match new.cmp(&old) {
        std::cmp::Ordering::Greater => format!("+{}", size(new - old)),
        std::cmp::Ordering::Less => format!("-{}", size(old - new)),
        std::cmp::Ordering::Equal => "±0 B".to_string(),
    }
}

/// A duration for humans: `850 ms`, `12.3 s`, `3m 04s`, `1h 02m`.
pub(crate) fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms} ms");
    }
    let secs = d.as_secs();
    if secs < 60 {
        return format!("{}.{} s", secs, d.subsec_millis() / 100);
    }
    if secs < 3600 {
        return format!("{}m {:02}s", secs / 60, secs % 60);
    }
    format!("{}h {:02}m", secs / 3600, (secs % 3600) / 60)
}

/// `url` if it is a plain `http(s)` URL safe to put in a Markdown link
/// (parentheses and `|` percent-encoded), else `None`.
pub(crate) fn safe_url(url: &str) -> Option<String> {
    let url = url.trim();
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    if !scheme_ok || url.len() > 2048 {
        return None;
    }
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            '|' => out.push_str("%7C"),
            c if c.is_whitespace()
                || c.is_control()
                || matches!(c, '<' | '>' | '"' | '`' | '\\')
                || is_suspicious(c) =>
            {
                return None
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// `[label](url)` when `url` is safe, else `label` alone (`label` is Markdown).
pub(crate) fn link(label: &str, url: Option<&str>) -> String {
    match url.and_then(safe_url) {
        Some(u) => format!("[{label}]({u})"),
        None => label.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_escape_markdown_html_and_mentions() {
        let cases = [
            ("a|b", "a\\|b"),
            (
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            ("back\\slash", "back\\\\slash"),
            ("line\nbreak\r\nand\rcr", "line<br>break<br>and<br>cr"),
            (
                "*bold* _it_ `code` [x](y) ~s~ #1",
                "\\*bold\\* \\_it\\_ \\`code\\` \\[x\\](y) \\~s\\~ \\#1",
            ),
            ("@octocat & co", "@\u{200B}octocat &amp; co"),
            ("rtl\u{202E}txt\u{0}", "rtl\u{FFFD}txt\u{FFFD}"),
            ("tab\there", "tab here"),
            ("", " "),
            ("plain 1.5", "plain 1.5"),
        ];
        for (input, want) in cases {
            assert_eq!(cell(input), want, "{input:?}");
        }
        assert_eq!(text("two\nlines <b>"), "two lines &lt;b&gt;");
    }

    #[test]
    fn code_spans_hold_anything() {
        let cases = [
            ("data/a.csv", false, "`data/a.csv`"),
            ("a`b", false, "``a`b``"),
            ("`x``", false, "``` `x`` ```"),
            (" both ", false, "`  both  `"),
            ("a|b", true, "`a\\|b`"),
            ("a|b", false, "`a|b`"),
            ("new\nline", false, "`new\\nline`"),
            ("<script>", false, "`<script>`"),
            ("", false, "` `"),
        ];
        for (input, table, want) in cases {
            assert_eq!(code(input, table), want, "{input:?}");
        }
    }

    #[test]
    fn sizes_and_counts() {
        let cases = [
            (0, "0 B", "0 bytes"),
            (1, "1 B", "1 byte"),
            (1023, "1023 B", "1,023 bytes"),
            (1024, "1.0 KiB", "1.0 KiB (1,024 bytes)"),
            (13_420, "13.1 KiB", "13.1 KiB (13,420 bytes)"),
            (1_048_575, "1.0 MiB", "1.0 MiB (1,048,575 bytes)"),
            (
                5 * 1024 * 1024 * 1024,
                "5.0 GiB",
                "5.0 GiB (5,368,709,120 bytes)",
            ),
            (
                u64::MAX,
                "16.0 EiB",
                "16.0 EiB (18,446,744,073,709,551,615 bytes)",
            ),
        ];
        for (n, short, exact) in cases {
            assert_eq!(size(n), short, "{n}");
            assert_eq!(size_exact(n), exact, "{n}");
        }
        assert_eq!(size_delta(13_420, 14_336), "+916 B");
        assert_eq!(size_delta(2048, 0), "-2.0 KiB");
        assert_eq!(size_delta(5, 5), "±0 B");
        assert_eq!(count(1, "row", "rows"), "1 row");
        assert_eq!(count(1000, "row", "rows"), "1,000 rows");
    }

    #[test]
    fn durations() {
        let cases = [
            (Duration::from_millis(850), "850 ms"),
            (Duration::from_millis(12_345), "12.3 s"),
            (Duration::from_secs(184), "3m 04s"),
            (Duration::from_secs(3720), "1h 02m"),
        ];
        for (d, want) in cases {
            assert_eq!(duration(d), want);
        }
    }

    #[test]
    fn truncation() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(
            truncate_middle("data/very/long/path/file.csv", 13),
            "data…file.csv"
        );
        assert_eq!(cut_bytes("aé", 2), "a");
    }

    #[test]
    fn urls() {
        assert_eq!(
            safe_url("https://github.com/o/r/commit/abc").as_deref(),
            Some("https://github.com/o/r/commit/abc")
        );
        assert_eq!(
            safe_url("https://x/a(b)").as_deref(),
            Some("https://x/a%28b%29")
        );
        for bad in [
            "javascript:alert(1)",
            "https://x/a b",
            "https://x/\"><script>",
            "ftp://x",
            "data:text/html,x",
        ] {
            assert_eq!(safe_url(bad), None, "{bad}");
        }
        assert_eq!(link("run", Some("javascript:x")), "run");
    }

    #[test]
    fn marker_round_trips() {
        assert_eq!(
            marker("employee_attrition"),
            "<!-- cairn:pipeline=employee_attrition -->"
        );
        for name in ["employee_attrition", "a-b", "we ird-->", "é"] {
            let body = format!("hello\n{}\nmore", marker(name));
            assert_eq!(pipeline_from_marker(&body).as_deref(), Some(name));
            assert_eq!(marker(name).matches("-->").count(), 1, "{name}");
        }
        assert_eq!(pipeline_from_marker("no marker"), None);
    }
}
