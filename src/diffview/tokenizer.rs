//! A streaming CSV/TSV tokenizer that never holds a whole field or record.
//!
//! Fields are handed to a [`FieldSink`] in pieces as they are read from a fixed
//! 64 KiB buffer, so a 2 GB cell costs no more memory than a short one. The
//! dialect is the common one (RFC 4180, leniently):
//!
//! - a field that starts with `"` is quoted: it may hold delimiters and line
//!   breaks, and `""` inside it is one `"`; text after the closing quote is
//!   kept (`"ab"c` reads `abc`) and an unterminated quote runs to end of file;
//! - a `"` inside an unquoted field is an ordinary byte;
//! - `\n`, `\r\n` and a lone `\r` end a record; empty lines are skipped;
//! - a UTF-8 byte order mark at the start of the stream is dropped;
//! - bytes are bytes: nothing is decoded, so any encoding passes through.
//!
//! Records may have any number of fields (ragged rows).

use std::io::{self, Read};

const BUFFER: usize = 64 * 1024;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Receives one record's fields in order: zero or more `part`s, then `end`, per field.
pub(crate) trait FieldSink {
    /// More bytes of field `col` (0-based).
    fn part(&mut self, col: usize, bytes: &[u8]);
    /// Field `col` is complete.
    fn end(&mut self, col: usize);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field, nothing of it read yet.
    Start,
    Unquoted,
    Quoted,
    /// A `"` was read inside a quoted field: either `""` or the closing quote.
    QuoteInQuoted,
}

pub(crate) struct Tokenizer<'r> {
    reader: &'r mut dyn Read,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    eof: bool,
    delimiter: u8,
}

impl<'r> Tokenizer<'r> {
    pub(crate) fn new(reader: &'r mut dyn Read, delimiter: u8) -> io::Result<Tokenizer<'r>> {
        let mut t = Tokenizer {
            reader,
            buf: vec![0; BUFFER].into_boxed_slice(),
            pos: 0,
            len: 0,
            eof: false,
            delimiter,
        };
        while t.len < BOM.len() && !t.eof {
            let n = t.read_into(t.len)?;
            t.len += n;
        }
        if t.buf[..t.len].starts_with(BOM) {
            t.pos = BOM.len();
        }
        Ok(t)
    }

    /// Reads into `buf[at..]`; returns the count, 0 (and sets `eof`) at end of stream.
    fn read_into(&mut self, at: usize) -> io::Result<usize> {
        loop {
            match self.reader.read(&mut self.buf[at..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(0);
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Feeds the next record to `sink`; `false` at end of input (nothing fed).
    pub(crate) fn next_record(&mut self, sink: &mut dyn FieldSink) -> io::Result<bool> {
        let delim = self.delimiter;
        let mut state = State::Start;
        let mut col = 0usize;
        let mut started = false;
        loop {
            if self.pos >= self.len {
                if !self.eof {
                    self.pos = 0;
                    self.len = self.read_into(0)?;
                }
                if self.eof {
                    if started {
                        sink.end(col);
                    }
                    return Ok(started);
                }
            }
            let chunk = &self.buf[self.pos..self.len];
            // Start of the current run of field bytes within `chunk`.
            let mut run = 0;
            for (i, &b) in chunk.iter().enumerate() {
                let newline = b == b'\n' || b == b'\r';
                match state {
                    State::Start => {
                        if newline {
                            if started {
                                sink.end(col);
                                self.pos += i + 1;
                                return Ok(true);
                            }
                            // An empty line (or the `\n` of a `\r\n`): skip.
                        } else if b == delim {
                            started = true;
                            sink.end(col);
                            col += 1;
                        } else if b == b'"' {
                            started = true;
                            state = State::Quoted;
                            run = i + 1;
                        } else {
                            started = true;
                            state = State::Unquoted;
                            run = i;
                        }
                    }
                    State::Unquoted => {
                        if b == delim || newline {
                            sink.part(col, &chunk[run..i]);
                            sink.end(col);
                            if newline {
                                self.pos += i + 1;
                                return Ok(true);
                            }
                            col += 1;
                            state = State::Start;
                        }
                    }
                    State::Quoted => {
                        if b == b'"' {
                            sink.part(col, &chunk[run..i]);
                            state = State::QuoteInQuoted;
                        }
                    }
                    State::QuoteInQuoted => {
                        if b == b'"' {
                            state = State::Quoted;
                            run = i;
                        } else if b == delim || newline {
                            sink.end(col);
                            if newline {
                                self.pos += i + 1;
                                return Ok(true);
                            }
                            col += 1;
                            state = State::Start;
                        } else {
                            state = State::Unquoted;
                            run = i;
                        }
                    }
                }
            }
            if matches!(state, State::Unquoted | State::Quoted) {
                sink.part(col, &chunk[run..]);
            }
            self.pos = self.len;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Collects records as vectors of byte fields.
    #[derive(Default)]
    pub(crate) struct Collect {
        pub(crate) fields: Vec<Vec<u8>>,
    }

    impl FieldSink for Collect {
        fn part(&mut self, col: usize, bytes: &[u8]) {
            while self.fields.len() <= col {
                self.fields.push(Vec::new());
            }
            self.fields[col].extend_from_slice(bytes);
        }
        fn end(&mut self, col: usize) {
            while self.fields.len() <= col {
                self.fields.push(Vec::new());
            }
        }
    }

    /// Reads one byte at a time, to cross buffer boundaries everywhere.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.split_first() {
                Some((b, rest)) if !buf.is_empty() => {
                    buf[0] = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    fn records(reader: &mut dyn Read, delim: u8) -> Vec<Vec<String>> {
        let mut t = Tokenizer::new(reader, delim).unwrap();
        let mut out = Vec::new();
        loop {
            let mut c = Collect::default();
            if !t.next_record(&mut c).unwrap() {
                return out;
            }
            out.push(
                c.fields
                    .into_iter()
                    .map(|f| String::from_utf8_lossy(&f).into_owned())
                    .collect(),
            );
        }
    }

    #[test]
    fn dialect_cases() {
        type Case<'a> = (&'a str, &'a [u8], u8, &'a [&'a [&'a str]]);
        let cases: &[Case] = &[
            ("plain", b"a,b\n1,2\n", b',', &[&["a", "b"], &["1", "2"]]),
            (
                "no final newline",
                b"a,b\n1,2",
                b',',
                &[&["a", "b"], &["1", "2"]],
            ),
            ("crlf", b"a,b\r\n1,2\r\n", b',', &[&["a", "b"], &["1", "2"]]),
            ("lone cr", b"a\r1\r", b',', &[&["a"], &["1"]]),
            ("bom", b"\xEF\xBB\xBFid,x\n", b',', &[&["id", "x"]]),
            ("empty", b"", b',', &[]),
            ("only bom", b"\xEF\xBB\xBF", b',', &[]),
            ("blank lines", b"\n\na\n\r\n\nb\n", b',', &[&["a"], &["b"]]),
            (
                "quoted delimiter, newline and quote",
                b"\"a,b\",\"x\ny\",\"say \"\"hi\"\"\"\n",
                b',',
                &[&["a,b", "x\ny", "say \"hi\""]],
            ),
            ("empty fields", b",,\n\"\"\n", b',', &[&["", "", ""], &[""]]),
            ("trailing delimiter", b"a,\n", b',', &[&["a", ""]]),
            ("stray quote", b"a\"b,c\n", b',', &[&["a\"b", "c"]]),
            (
                "text after closing quote",
                b"\"ab\"c,d\n",
                b',',
                &[&["abc", "d"]],
            ),
            ("unterminated quote", b"\"abc\nd", b',', &[&["abc\nd"]]),
            (
                "ragged",
                b"a,b,c\n1\n1,2,3,4\n",
                b',',
                &[&["a", "b", "c"], &["1"], &["1", "2", "3", "4"]],
            ),
            (
                "tsv",
                b"a\tb,c\n1\t\"2\t3\"\n",
                b'\t',
                &[&["a", "b,c"], &["1", "2\t3"]],
            ),
        ];
        for (name, input, delim, want) in cases {
            let want: Vec<Vec<String>> = want
                .iter()
                .map(|r| r.iter().map(|s| s.to_string()).collect())
                .collect();
            assert_eq!(records(&mut &input[..], *delim), want, "{name}");
            assert_eq!(
                records(&mut Trickle(input), *delim),
                want,
                "{name} (1 byte reads)"
            );
        }
    }

    #[test]
    fn non_utf8_bytes_pass_through() {
        let mut input = &b"caf\xe9,x\n"[..];
        let mut t = Tokenizer::new(&mut input, b',').unwrap();
        let mut c = Collect::default();
        assert!(t.next_record(&mut c).unwrap());
        assert_eq!(c.fields, vec![b"caf\xe9".to_vec(), b"x".to_vec()]);
    }
}
