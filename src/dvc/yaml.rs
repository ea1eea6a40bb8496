//! Writing YAML scalars exactly as ruamel.yaml does when DVC dumps a `.dvc` file.
//!
//! A `.dvc` file is only byte-identical to what `dvc add` writes if every scalar
//! gets ruamel's style choice (plain, `'single'` or `"double"` quoted) and ruamel's
//! line folding at 80 columns. This module re-implements that behaviour for block
//! mapping values (the only place DVC's pointers put strings), following ruamel
//! 0.18/0.19 with YAML 1.2 resolution (so `yes`, `on`, `12:30` stay plain, while
//! `true`, `null`, `~`, `123`, `1e3`, `0x1F`, `.inf`, `2001-12-14`, `<<` and `=` are
//! quoted because a reader would take them for non-strings).
//!
//! The behaviour was checked against DVC 3.67.1 / ruamel.yaml 0.19.1 for a few
//! hundred names, including long names with spaces (folded onto continuation lines
//! indented by 4), quotes, control characters and non-ASCII text (written as is).

use super::yaml_resolve::resolves_to_str;

const BEST_WIDTH: usize = 80;

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_ws_or_end(c: Option<&char>) -> bool {
    match c {
        None => true,
        Some(c) => matches!(c, '\0' | ' ' | '\t' | '\r') || is_break(*c),
    }
}

/// Result of ruamel's `analyze_scalar`, reduced to what a block mapping value needs.
struct Analysis {
    allow_block_plain: bool,
    allow_single_quoted: bool,
}

fn analyze(s: &[char]) -> Analysis {
    if s.is_empty() {
        return Analysis {
            allow_block_plain: true,
            allow_single_quoted: true,
        };
    }
    let starts = |p: &str| s.iter().copied().take(3).eq(p.chars());
    let mut block_indicators = starts("---") || starts("...");
    let mut line_breaks = false;
    let mut special = false;
    let (mut leading_space, mut leading_break) = (false, false);
    let (mut trailing_space, mut trailing_break) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    let mut preceded_by_ws = true;
    let mut followed_by_ws = is_ws_or_end(s.get(1));
    let (mut prev_space, mut prev_break) = (false, false);
    let n = s.len();
    for (i, &ch) in s.iter().enumerate() {
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(ch) {
                block_indicators = true;
            }
            if (ch == '?' || ch == ':') && followed_by_ws {
                block_indicators = true;
            }
            if ch == '-' && followed_by_ws {
                block_indicators = true;
            }
        } else {
            if ch == ':' && followed_by_ws {
                block_indicators = true;
            }
            if ch == '#' && preceded_by_ws {
                block_indicators = true;
            }
        }
        if is_break(ch) {
            line_breaks = true;
        }
        if !(ch == '\n' || (' '..='~').contains(&ch)) {
            let unicode = ch == '\u{85}'
                || ('\u{a0}'..='\u{d7ff}').contains(&ch)
                || ('\u{e000}'..='\u{fffd}').contains(&ch)
                || ch >= '\u{10000}';
            if !unicode || ch == '\u{feff}' {
                special = true;
            }
        }
        if ch == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i == n - 1 {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break(ch) {
            if i == 0 {
                leading_break = true;
            }
            if i == n - 1 {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = matches!(ch, '\0' | ' ' | '\t' | '\r') || is_break(ch);
        followed_by_ws = is_ws_or_end(s.get(i + 2));
    }
    let mut allow_block_plain = true;
    let mut allow_single_quoted = true;
    if leading_space || leading_break || trailing_space || trailing_break {
        allow_block_plain = false;
    }
    if break_space || special || space_break {
        allow_block_plain = false;
        allow_single_quoted = false;
    }
    if line_breaks || block_indicators {
        allow_block_plain = false;
    }
    Analysis {
        allow_block_plain,
        allow_single_quoted,
    }
}

/// The emitter state ruamel keeps while writing one scalar.
struct Emitter<'a> {
    out: &'a mut String,
    column: usize,
    indent: usize,
    whitespace: bool,
    indention: bool,
}

impl Emitter<'_> {
    fn write(&mut self, chars: &[char]) {
        self.column += chars.len();
        self.out.extend(chars.iter());
    }

    fn write_str(&mut self, s: &str) {
        self.column += s.chars().count();
        self.out.push_str(s);
    }

    fn line_break(&mut self, c: char) {
        self.whitespace = true;
        self.indention = true;
        self.column = 0;
        self.out.push(c);
    }

    fn write_indent(&mut self) {
        if !self.indention
            || self.column > self.indent
            || (self.column == self.indent && !self.whitespace)
        {
            self.line_break('\n');
        }
        if self.column < self.indent {
            self.whitespace = true;
            let pad = self.indent - self.column;
            self.out.extend(std::iter::repeat_n(' ', pad));
            self.column = self.indent;
        }
    }

    fn indicator(&mut self, ind: &str, need_whitespace: bool) {
        if !self.whitespace && need_whitespace {
            self.write_str(" ");
        }
        self.write_str(ind);
        self.whitespace = false;
        self.indention = false;
    }

    fn plain(&mut self, text: &[char]) {
        if text.is_empty() {
            return;
        }
        if !self.whitespace {
            self.write_str(" ");
        }
        self.whitespace = false;
        self.indention = false;
        let (mut spaces, mut breaks) = (false, false);
        let (mut start, mut end) = (0usize, 0usize);
        while end <= text.len() {
            let ch = text.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column >= BEST_WIDTH {
                        self.write_indent();
                        self.whitespace = false;
                        self.indention = false;
                    } else {
                        self.write(&text[start..end]);
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    if text[start] == '\n' {
                        self.line_break('\n');
                    }
                    for &br in &text[start..end] {
                        self.line_break(br);
                    }
                    self.write_indent();
                    self.whitespace = false;
                    self.indention = false;
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ' || is_break(c)) {
                let data = &text[start..end];
                if data.len() + self.column > BEST_WIDTH && self.column > self.indent {
                    self.write_indent();
                }
                self.write(data);
                start = end;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
            end += 1;
        }
    }

    fn single_quoted(&mut self, text: &[char]) {
        self.indicator("'", true);
        let (mut spaces, mut breaks) = (false, false);
        let (mut start, mut end) = (0usize, 0usize);
        let n = text.len();
        while end <= n {
            let ch = text.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column > BEST_WIDTH && start != 0 && end != n {
                        self.write_indent();
                    } else {
                        self.write(&text[start..end]);
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    if text[start] == '\n' {
                        self.line_break('\n');
                    }
                    for &br in &text[start..end] {
                        self.line_break(br);
                    }
                    self.write_indent();
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ' || is_break(c) || c == '\'') && start < end {
                self.write(&text[start..end]);
                start = end;
            }
            if ch == Some('\'') {
                self.write_str("''");
                start = end + 1;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
            end += 1;
        }
        self.indicator("'", false);
    }

    fn double_quoted(&mut self, text: &[char]) {
        self.indicator("\"", true);
        let n = text.len();
        let (mut start, mut end) = (0usize, 0usize);
        while end <= n {
            let ch = text.get(end).copied();
            let needs_escape = match ch {
                None => true,
                Some(c) => {
                    "\"\\\u{85}\u{2028}\u{2029}\u{feff}".contains(c)
                        || !((' '..='~').contains(&c)
                            || ('\u{a0}'..='\u{d7ff}').contains(&c)
                            || ('\u{e000}'..='\u{fffd}').contains(&c)
                            || c >= '\u{10000}')
                }
            };
            if needs_escape {
                if start < end {
                    self.write(&text[start..end]);
                    start = end;
                }
                if let Some(c) = ch {
                    let esc = match c {
                        '\0' => "\\0".to_string(),
                        '\u{07}' => "\\a".to_string(),
                        '\u{08}' => "\\b".to_string(),
                        '\t' => "\\t".to_string(),
                        '\n' => "\\n".to_string(),
                        '\u{0b}' => "\\v".to_string(),
                        '\u{0c}' => "\\f".to_string(),
                        '\r' => "\\r".to_string(),
                        '\u{1b}' => "\\e".to_string(),
                        '"' => "\\\"".to_string(),
                        '\\' => "\\\\".to_string(),
                        '\u{85}' => "\\N".to_string(),
                        '\u{a0}' => "\\_".to_string(),
                        '\u{2028}' => "\\L".to_string(),
                        '\u{2029}' => "\\P".to_string(),
                        c if (c as u32) <= 0xff => format!("\\x{:02X}", c as u32),
                        c if (c as u32) <= 0xffff => format!("\\u{:04X}", c as u32),
                        c => format!("\\U{:08X}", c as u32),
                    };
                    self.write_str(&esc);
                    start = end + 1;
                }
            }
            if 0 < end
                && end + 1 < n
                && (ch == Some(' ') || start >= end)
                && self.column as isize + (end as isize - start as isize) > BEST_WIDTH as isize
            {
                let need_backslash = double_quoted_needs_backslash(text, start, end);
                let data_end = end.max(start);
                self.write(&text[start..data_end]);
                if need_backslash {
                    self.write_str("\\");
                }
                if start < end {
                    start = end;
                }
                self.write_indent();
                self.whitespace = false;
                self.indention = false;
                if text.get(start) == Some(&' ') {
                    if need_backslash {
                        self.write_str("\\");
                    } else {
                        start += 1;
                    }
                }
            }
            end += 1;
        }
        self.indicator("\"", false);
    }
}

/// ruamel's decision whether a fold inside a double-quoted scalar needs a trailing
/// backslash (kept as its quirks are).
fn double_quoted_needs_backslash(text: &[char], start: usize, end: usize) -> bool {
    let find = |c: char, from: usize, to: usize| -> Option<usize> {
        (from..to.min(text.len())).find(|&i| text[i] == c)
    };
    let Some(mut space_pos) = find(' ', end, text.len()) else {
        return true;
    };
    if let Some(nl) = find('\n', end, space_pos) {
        space_pos = nl;
    }
    let Some(&after) = text.get(space_pos + 1) else {
        return true; // Python raises IndexError here and keeps the backslash
    };
    if text[space_pos] == '\n' && after != ' ' {
        return true;
    }
    let between = &text[end..space_pos];
    let prev_two_spaces = end >= 1 && text[end - 1] == ' ' && text.get(end) == Some(&' ');
    between.contains(&'"')
        || between.contains(&'\'')
        || after == ' '
        || after == '\n'
        || prev_two_spaces
        || start == end
}

/// Appends `value` as ruamel writes a block mapping value. `column` is the column
/// just after the key's `:`; `indent` is where continuation lines start.
pub(crate) fn write_value(out: &mut String, column: usize, indent: usize, value: &str) {
    let text: Vec<char> = value.chars().collect();
    let analysis = analyze(&text);
    let mut e = Emitter {
        out,
        column,
        indent,
        whitespace: false,
        indention: false,
    };
    if !text.is_empty() && resolves_to_str(value) && analysis.allow_block_plain {
        e.plain(&text);
    } else if value.contains('\'') || value.contains('\n') {
        e.double_quoted(&text);
    } else if analysis.allow_single_quoted {
        e.single_quoted(&text);
    } else {
        e.double_quoted(&text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_line(v: &str) -> String {
        let mut s = String::from("  path:");
        write_value(&mut s, 7, 4, v);
        s
    }

    // Expected lines were produced by DVC 3.67.1 (`dvc add`) on files with these names.
    #[test]
    fn quoting_matches_dvc() {
        let cases: &[(&str, &str)] = &[
            ("employee_attrition.csv", "  path: employee_attrition.csv"),
            (" lead", "  path: ' lead'"),
            ("trail ", "  path: 'trail '"),
            ("a: b", "  path: 'a: b'"),
            ("#hash", "  path: '#hash'"),
            ("x#y", "  path: x#y"),
            ("a #b", "  path: 'a #b'"),
            ("-dash", "  path: -dash"),
            ("-", "  path: '-'"),
            ("- x", "  path: '- x'"),
            ("---", "  path: '---'"),
            ("...", "  path: '...'"),
            ("?q", "  path: ?q"),
            (":c", "  path: :c"),
            (",c", "  path: ',c'"),
            ("[b", "  path: '[b'"),
            ("]b", "  path: ']b'"),
            ("{b", "  path: '{b'"),
            ("}b", "  path: '}b'"),
            ("&a", "  path: '&a'"),
            ("*s", "  path: '*s'"),
            ("!b", "  path: '!b'"),
            ("|p", "  path: '|p'"),
            (">g", "  path: '>g'"),
            ("'q", "  path: \"'q\""),
            ("\"d", "  path: '\"d'"),
            ("%p", "  path: '%p'"),
            ("@a", "  path: '@a'"),
            ("`b", "  path: '`b'"),
            ("true", "  path: 'true'"),
            ("False", "  path: 'False'"),
            ("null", "  path: 'null'"),
            ("NULL", "  path: 'NULL'"),
            ("~", "  path: '~'"),
            ("123", "  path: '123'"),
            ("1.5", "  path: '1.5'"),
            ("1e3", "  path: '1e3'"),
            ("0x1F", "  path: '0x1F'"),
            ("0o17", "  path: '0o17'"),
            ("012", "  path: '012'"),
            ("+1", "  path: '+1'"),
            ("1_000", "  path: '1_000'"),
            (".inf", "  path: '.inf'"),
            (".nan", "  path: '.nan'"),
            ("2001-12-14", "  path: '2001-12-14'"),
            ("<<", "  path: '<<'"),
            ("=", "  path: '='"),
            ("= ", "  path: '= '"),
            ("yes", "  path: yes"),
            ("no", "  path: no"),
            ("on", "  path: on"),
            ("OFF", "  path: OFF"),
            ("y", "  path: y"),
            ("12:30", "  path: 12:30"),
            ("1:2:3", "  path: 1:2:3"),
            ("ends:", "  path: 'ends:'"),
            ("x: ", "  path: 'x: '"),
            ("it's", "  path: it's"),
            ("a[1]*?.txt", "  path: a[1]*?.txt"),
            ("a\\b", "  path: a\\b"),
            ("tab\tx", "  path: \"tab\\tx\""),
            ("é.txt", "  path: é.txt"),
        ];
        for (name, want) in cases {
            assert_eq!(&path_line(name), want, "name {name:?}");
        }
    }

    #[test]
    fn folding_matches_dvc() {
        let words = format!("{}end", "word ".repeat(20));
        assert_eq!(
            path_line(&words),
            "  path: word word word word word word word word word word word word word word \n    word word word word word word end"
        );
        assert_eq!(
            path_line(&format!("'{words}")),
            "  path: \"'word word word word word word word word word word word word word word word\n    word word word word word end\""
        );
        let long = format!("{} y z", "x".repeat(90));
        assert_eq!(
            path_line(&long),
            format!("  path: \n    {}\n    y z", "x".repeat(90))
        );
        assert_eq!(
            path_line(&format!(" {words}")),
            "  path: ' word word word word word word word word word word word word word word word\n    word word word word word end'"
        );
        let umlaut = format!("{}end", "wörd ".repeat(20));
        assert_eq!(
            path_line(&umlaut),
            "  path: wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd wörd \n    wörd wörd wörd wörd wörd wörd end"
        );
    }
}
