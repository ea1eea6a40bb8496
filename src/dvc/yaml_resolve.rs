//! Which plain YAML scalars a reader would not load back as strings.
//!
//! ruamel.yaml quotes a string only when a YAML 1.2 reader would resolve its plain
//! form to another type. These are hand-written equivalents of ruamel's 1.2
//! implicit resolvers (bool, int, float, null, timestamp, merge `<<`, value `=`),
//! including its first-character dispatch (so `_1` stays a string while `-_` is an
//! int, exactly as ruamel decides).

/// True when a YAML 1.2 reader (ruamel's resolver) would load the plain scalar
/// `s` as a string rather than a bool, number, null, timestamp, merge or value key.
pub(crate) fn resolves_to_str(s: &str) -> bool {
    // ruamel picks candidate resolvers by the first character.
    let first = s.bytes().next();
    let numeric_start = first.is_some_and(|c| c.is_ascii_digit() || c == b'-' || c == b'+');
    !(is_bool(s)
        || ((numeric_start || first == Some(b'.')) && is_float(s))
        || (numeric_start && is_int(s))
        || s == "<<"
        || is_null(s)
        || is_timestamp(s)
        || s == "=")
}

fn is_bool(s: &str) -> bool {
    matches!(s, "true" | "True" | "TRUE" | "false" | "False" | "FALSE")
}

fn is_null(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

/// A tiny cursor for hand-written versions of ruamel's resolver regexes.
struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cur<'_> {
    fn eat(&mut self, f: impl Fn(u8) -> bool) -> bool {
        if self.i < self.b.len() && f(self.b[self.i]) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn eat_many(&mut self, f: impl Fn(u8) -> bool) -> usize {
        let start = self.i;
        while self.eat(&f) {}
        self.i - start
    }
    fn lit(&mut self, s: &str) -> bool {
        if self.b[self.i..].starts_with(s.as_bytes()) {
            self.i += s.len();
            true
        } else {
            false
        }
    }
    fn done(&self) -> bool {
        self.i == self.b.len()
    }
}

fn digit(c: u8) -> bool {
    c.is_ascii_digit()
}
fn digit_(c: u8) -> bool {
    c.is_ascii_digit() || c == b'_'
}
fn sign(c: u8) -> bool {
    c == b'-' || c == b'+'
}

/// `[eE][-+]?[0-9]+` (`sign_required` for the `.5e+1` form).
fn exponent(c: &mut Cur, sign_required: bool) -> bool {
    if !c.eat(|x| x == b'e' || x == b'E') {
        return false;
    }
    let signed = c.eat(sign);
    if sign_required && !signed {
        return false;
    }
    c.eat_many(digit) > 0
}

/// Whether `f` consumes all of `s` (one alternative of a resolver regex).
fn whole(s: &str, f: &dyn Fn(&mut Cur) -> bool) -> bool {
    let mut c = Cur {
        b: s.as_bytes(),
        i: 0,
    };
    f(&mut c) && c.done()
}

fn is_float(s: &str) -> bool {
    let alt = |f: &dyn Fn(&mut Cur) -> bool| whole(s, f);
    // [-+]?([0-9][0-9_]*)\.[0-9_]*([eE][-+]?[0-9]+)?
    alt(&|c| {
        c.eat(sign);
        if !c.eat(digit) {
            return false;
        }
        c.eat_many(digit_);
        if !c.lit(".") {
            return false;
        }
        c.eat_many(digit_);
        let save = c.i;
        if !exponent(c, false) {
            c.i = save;
        }
        true
    }) || alt(&|c| {
        // [-+]?([0-9][0-9_]*)([eE][-+]?[0-9]+)
        c.eat(sign);
        if !c.eat(digit) {
            return false;
        }
        c.eat_many(digit_);
        exponent(c, false)
    }) || alt(&|c| {
        // [-+]?\.[0-9_]+([eE][-+][0-9]+)?
        c.eat(sign);
        if !c.lit(".") || c.eat_many(digit_) == 0 {
            return false;
        }
        let save = c.i;
        if !exponent(c, true) {
            c.i = save;
        }
        true
    }) || alt(&|c| {
        // [-+]?\.(inf|Inf|INF)
        c.eat(sign);
        c.lit(".inf") || c.lit(".Inf") || c.lit(".INF")
    }) || matches!(s, ".nan" | ".NaN" | ".NAN")
}

fn is_int(s: &str) -> bool {
    let alt = |f: &dyn Fn(&mut Cur) -> bool| whole(s, f);
    alt(&|c| {
        c.eat(sign);
        c.lit("0b") && c.eat_many(|x| x == b'0' || x == b'1' || x == b'_') > 0
    }) || alt(&|c| {
        c.eat(sign);
        if !c.lit("0") {
            return false;
        }
        c.eat(|x| x == b'o');
        c.eat_many(|x| (b'0'..=b'7').contains(&x) || x == b'_') > 0
    }) || alt(&|c| {
        c.eat(sign);
        c.eat_many(digit_) > 0
    }) || alt(&|c| {
        c.eat(sign);
        c.lit("0x") && c.eat_many(|x| x.is_ascii_hexdigit() || x == b'_') > 0
    })
}

fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if !b.first().is_some_and(|c| c.is_ascii_digit()) {
        return false;
    }
    let ymd_strict = |c: &mut Cur| {
        (0..4).all(|_| c.eat(digit))
            && c.lit("-")
            && (0..2).all(|_| c.eat(digit))
            && c.lit("-")
            && (0..2).all(|_| c.eat(digit))
    };
    let mut c = Cur { b, i: 0 };
    if ymd_strict(&mut c) && c.done() {
        return true;
    }
    // [0-9]{4}-[0-9][0-9]?-[0-9][0-9]?([Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9]
    // (\.[0-9]*)?([ \t]*(Z|[-+][0-9][0-9]?(:[0-9][0-9])?))?
    let mut c = Cur { b, i: 0 };
    let one_or_two = |c: &mut Cur| {
        let ok = c.eat(digit);
        c.eat(digit);
        ok
    };
    let ok = (0..4).all(|_| c.eat(digit))
        && c.lit("-")
        && one_or_two(&mut c)
        && c.lit("-")
        && one_or_two(&mut c)
        && (c.eat(|x| x == b'T' || x == b't') || c.eat_many(|x| x == b' ' || x == b'\t') > 0)
        && one_or_two(&mut c)
        && c.lit(":")
        && c.eat(digit)
        && c.eat(digit)
        && c.lit(":")
        && c.eat(digit)
        && c.eat(digit);
    if !ok {
        return false;
    }
    if c.lit(".") {
        c.eat_many(digit);
    }
    if c.done() {
        return true;
    }
    c.eat_many(|x| x == b' ' || x == b'\t');
    if c.lit("Z") {
        return c.done();
    }
    if !c.eat(sign) || !one_or_two(&mut c) {
        return false;
    }
    if c.lit(":") && !(c.eat(digit) && c.eat(digit)) {
        return false;
    }
    c.done()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolver() {
        for s in [
            "true",
            "False",
            "null",
            "~",
            "",
            "123",
            "+1",
            "-_",
            "012",
            "0o17",
            "0x1F",
            "0b10",
            "1_000",
            "1.5",
            "1e3",
            "1.",
            ".5",
            ".inf",
            "-.Inf",
            ".nan",
            "2001-12-14",
            "2001-12-14 21:59:43.10 -5",
            "2001-12-14t21:59:43Z",
            "<<",
            "=",
        ] {
            assert!(!resolves_to_str(s), "{s:?} should not be a str");
        }
        for s in [
            "yes", "no", "on", "OFF", "y", "12:30", "1:2:3", "1e", "e3", ".", "..", "0x", "1.5.6",
            "2001-1-1", "0o8", "nan", "inf", "-", "+", "_1", "1e+", ".5e3",
        ] {
            assert!(resolves_to_str(s), "{s:?} should be a str");
        }
    }
}
