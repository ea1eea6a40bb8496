//! Text rules of GitHub's API that cairn has to respect (pure): length limits,
//! hidden comment markers, percent-encoding of path segments and query values.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// GitHub rejects a commit status description longer than this (characters).
pub const STATUS_DESCRIPTION_MAX: usize = 140;

/// GitHub rejects an issue comment or pull request body longer than this (characters).
pub const BODY_MAX: usize = 65_536;

/// Cuts `text` to at most `max` characters, on a character boundary; a cut text
/// ends in `…` (counted in `max`).
pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// The hidden marker of the comment cairn keeps up to date for a pipeline:
/// `<!-- cairn:pipeline=NAME -->`.
pub fn pipeline_marker(pipeline: &str) -> String {
    format!("<!-- cairn:pipeline={pipeline} -->")
}

/// Whether `marker` is one HTML comment (`<!-- ... -->`, nothing around it and
/// no `--` inside), which GitHub renders as nothing.
pub fn is_valid_marker(marker: &str) -> bool {
    let Some(inner) = marker
        .strip_prefix("<!--")
        .and_then(|rest| rest.strip_suffix("-->"))
    else {
        return false;
    };
    !inner.trim().is_empty() && !inner.contains("--") && !inner.contains('\n')
}

/// Whether a comment body carries `marker`. The whole marker, closing `-->`
/// included, must be there, so `pipeline=a` never matches `pipeline=ab`.
/// GitHub may store line ends as `\r\n`; the marker is one line, so that does
/// not matter.
pub fn has_marker(body: &str, marker: &str) -> bool {
    body.contains(marker)
}

/// `body` with `marker` on its first line (unless it already holds it), cut to
/// GitHub's body limit without cutting the marker.
pub fn with_marker(body: &str, marker: &str) -> String {
    let full = if has_marker(body, marker) {
        body.to_owned()
    } else {
        format!("{marker}\n{body}")
    };
    if full.chars().count() <= BODY_MAX {
        return full;
    }
    let note = "\n\n… (cut to GitHub's comment size limit)";
    let keep = BODY_MAX - note.chars().count();
    let mut cut = truncate_chars(&full, keep);
    cut.pop(); // the `…` of truncate_chars; the note says it instead
    cut.push_str(note);
    cut
}

/// Characters left as they are in a path segment or query value: RFC 3986's
/// unreserved set. Everything else, `/`, `:`, `#`, `?`, `%` and spaces
/// included, is percent-encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One path segment (an owner, a repository name, a user name).
pub fn segment(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// A query value (`head=owner:cairn/pipeline`).
pub fn query_value(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// A git ref name in a `/git/refs/{ref}` path: each `/`-separated part
/// encoded, the slashes kept, which is how GitHub reads the rest of the path as
/// one ref name (`heads/cairn/daily`).
pub fn ref_path(name: &str) -> String {
    name.split('/').map(segment).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_chars("short", 140), "short");
        let exact = "x".repeat(140);
        assert_eq!(truncate_chars(&exact, 140), exact);
        let long = "é".repeat(200);
        let cut = truncate_chars(&long, 140);
        assert_eq!(cut.chars().count(), 140);
        assert!(cut.ends_with('…'));
        assert!(cut.starts_with("éé"));
        // Multi-byte characters right at the boundary.
        let mixed = format!("{}🦀🦀🦀", "a".repeat(138));
        let cut = truncate_chars(&mixed, 140);
        assert_eq!(cut, format!("{}🦀…", "a".repeat(138)));
        assert_eq!(truncate_chars("abc", 0), "");
        assert_eq!(truncate_chars("abc", 1), "…");
    }

    #[test]
    fn markers_match_exactly() {
        let marker = pipeline_marker("daily");
        assert_eq!(marker, "<!-- cairn:pipeline=daily -->");
        assert!(is_valid_marker(&marker));
        let body = format!("{marker}\n**daily** published");
        assert!(has_marker(&body, &marker));
        assert!(has_marker(&format!("intro\r\n{marker}\r\n"), &marker));
        // A longer pipeline name with the same prefix is another marker.
        assert!(!has_marker(
            &format!("{}\nx", pipeline_marker("daily-eu")),
            &marker
        ));
        assert!(!has_marker("cairn:pipeline=daily", &marker));
    }

    #[test]
    fn marker_validation() {
        assert!(is_valid_marker("<!-- x -->"));
        assert!(!is_valid_marker("cairn:pipeline=x"));
        assert!(!is_valid_marker("<!--  -->"));
        assert!(!is_valid_marker("<!-- a -- b -->"));
        assert!(!is_valid_marker("<!-- a\nb -->"));
        assert!(!is_valid_marker(" <!-- a -->"));
    }

    #[test]
    fn with_marker_prepends_once_and_fits_the_limit() {
        let marker = pipeline_marker("p");
        let body = with_marker("hello", &marker);
        assert_eq!(body, format!("{marker}\nhello"));
        assert_eq!(with_marker(&body, &marker), body);
        let huge = "y".repeat(BODY_MAX + 10);
        let cut = with_marker(&huge, &marker);
        assert!(cut.starts_with(&marker));
        assert!(cut.chars().count() <= BODY_MAX);
        assert!(cut.ends_with("(cut to GitHub's comment size limit)"));
    }

    #[test]
    fn encoding() {
        assert_eq!(segment("my-org"), "my-org");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
        assert_eq!(query_value("octo:cairn/daily"), "octo%3Acairn%2Fdaily");
        assert_eq!(query_value("x#y?z&w=1%"), "x%23y%3Fz%26w%3D1%25");
        assert_eq!(ref_path("heads/cairn/daily"), "heads/cairn/daily");
        assert_eq!(ref_path("heads/fix/#12 ü"), "heads/fix/%2312%20%C3%BC");
    }
}
