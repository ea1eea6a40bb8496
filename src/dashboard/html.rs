//! The few things every page needs: escaping, and numbers people can read.
//!
//! Everything that reaches a page from outside cairn's own code (pipeline and
//! task names, log lines, commit messages, error texts, repository names)
//! goes through [`esc`] (text and attribute values alike) or [`url_param`]
//! (query values). Pages are built with `format!`, so a value that skips
//! both is a bug: the render tests feed hostile names through every page.

use std::fmt::Write as _;

/// `text` made safe inside an element or a double- or single-quoted attribute.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab and newline are invisible at
            // best and break XML (the SVGs) at worst.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// `value` percent-encoded for a query string or a path segment (everything
/// but unreserved characters), so `&`, `#`, `/` and `?` in names stay data.
pub fn url_param(value: &str) -> String {
    const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(value, UNRESERVED).to_string()
}

/// A link target is shown only when it is a web address: a commit URL built
/// from GitHub's answer is trusted to be one, but `javascript:` must never
/// become a link whatever produced it.
pub fn safe_href(url: &str) -> Option<&str> {
    let lower = url.trim_start().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")).then_some(url)
}

/// `a` linking to `url` when there is a safe one, else the plain text.
pub fn link_or_text(url: Option<&str>, text: &str) -> String {
    match url.and_then(safe_href) {
        Some(url) => format!("<a href=\"{}\">{}</a>", esc(url), esc(text)),
        None => esc(text),
    }
}

/// Milliseconds as a person reads a duration: `850 ms`, `4.2 s`, `3 min 04 s`,
/// `2 h 05 min`.
pub fn duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        return format!("{ms} ms");
    }
    if ms < 60_000 {
        return format!("{:.1} s", ms as f64 / 1000.0);
    }
    let secs = ms / 1000;
    if secs < 3600 {
        return format!("{} min {:02} s", secs / 60, secs % 60);
    }
    format!("{} h {:02} min", secs / 3600, (secs % 3600) / 60)
}

/// Bytes in binary units, as `ls -h` would: `512 B`, `13.1 KiB`, `1.0 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Unix milliseconds as a UTC time, to the second.
pub fn time_utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "?".into())
}

/// How long before `now` a moment was, coarsely: `just now`, `5 min ago`.
pub fn ago(ms: i64, now: i64) -> String {
    let d = (now - ms).max(0) / 1000;
    match d {
        0..=9 => "just now".into(),
        10..=59 => format!("{d} s ago"),
        60..=3599 => format!("{} min ago", d / 60),
        3600..=86_399 => format!("{} h ago", d / 3600),
        _ => format!("{} d ago", d / 86_400),
    }
}

/// The first `n` characters of a commit id (ids are ASCII hex).
pub fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// Joins rendered pieces with a separator (they are already escaped).
pub fn join(pieces: impl IntoIterator<Item = String>, sep: &str) -> String {
    let mut out = String::new();
    for (i, p) in pieces.into_iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        let _ = write!(out, "{p}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_quotes_and_controls() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("a\u{1b}[31mb"), "a\u{FFFD}[31mb");
        assert_eq!(esc("tab\tand\nline"), "tab\tand\nline");
    }

    #[test]
    fn query_values_keep_their_separators_as_data() {
        assert_eq!(url_param("acme/data"), "acme%2Fdata");
        assert_eq!(url_param("a&b=c#d e"), "a%26b%3Dc%23d%20e");
        assert_eq!(url_param("p-1_x.y~"), "p-1_x.y~");
    }

    #[test]
    fn only_web_addresses_become_links() {
        assert_eq!(
            link_or_text(Some("javascript:alert(1)"), "x"),
            "x",
            "a script URL is shown as text"
        );
        assert_eq!(
            link_or_text(Some("https://github.com/a/b/commit/1"), "<1>"),
            "<a href=\"https://github.com/a/b/commit/1\">&lt;1&gt;</a>"
        );
        assert_eq!(link_or_text(None, "abc"), "abc");
    }

    #[test]
    fn numbers_read_like_a_person_writes_them() {
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(4200), "4.2 s");
        assert_eq!(duration_ms(184_000), "3 min 04 s");
        assert_eq!(duration_ms(7_500_000), "2 h 05 min");
        assert_eq!(duration_ms(-5), "0 ms");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(13420), "13.1 KiB");
        assert_eq!(bytes(1 << 30), "1.0 GiB");
        assert_eq!(time_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(ago(0, 300_000), "5 min ago");
        assert_eq!(ago(0, 5_000), "just now");
        assert_eq!(short("0123456789abcdef"), "0123456789ab");
        assert_eq!(short("abc"), "abc");
    }
}
