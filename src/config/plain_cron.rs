//! A fast yes for the cron expressions people mostly write.
//!
//! croner takes ~12 µs to parse any expression (it expands a 5,000-year
//! field bit by bit), which would be most of the time spent validating a file
//! with a thousand schedules. Expressions made only of `*`, plain numbers in
//! range and `*/step` are certainly accepted by croner and certainly fire, so
//! for those validation can skip croner and let the schedule parse on first
//! use. This function only ever says "surely fine": anything else, including
//! every invalid expression, goes through croner, so all error messages (and
//! every decision to reject) still come from croner.

/// Inclusive value ranges of minute, hour, day of month, month, day of week
/// (0 and 7 both mean Sunday), as croner checks them.
const RANGES: [(u16, u16); 5] = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];

enum Field {
    Any,
    Step,
    Number(u16),
}

fn field(text: &str, (min, max): (u16, u16)) -> Option<Field> {
    if text == "*" {
        return Some(Field::Any);
    }
    if let Some(step) = text.strip_prefix("*/") {
        return (all_digits(step) && step.parse::<u16>().is_ok_and(|s| s > 0))
            .then_some(Field::Step);
    }
    if !all_digits(text) {
        return None;
    }
    let n = text.parse::<u16>().ok()?;
    (min..=max).contains(&n).then_some(Field::Number(n))
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// True only if croner accepts `expr` (5 fields, no seconds) and it fires.
pub(crate) fn surely_valid(expr: &str) -> bool {
    let mut parts = expr.split_whitespace();
    let mut fields = Vec::with_capacity(5);
    for range in RANGES {
        match parts.next().and_then(|p| field(p, range)) {
            Some(f) => fields.push(f),
            None => return false,
        }
    }
    if parts.next().is_some() {
        return false;
    }
    // Only a fixed day in a fixed month with any weekday can be a date that
    // does not exist (`31 4`); `*/step` months include January, which has
    // every day, and a restricted weekday also matches (POSIX OR rule).
    match (&fields[2], &fields[3], &fields[4]) {
        (Field::Number(day), Field::Number(month), Field::Any) => {
            chrono::NaiveDate::from_ymd_opt(2028, u32::from(*month), u32::from(*day)).is_some()
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Schedule;

    #[test]
    fn plain_expressions_take_the_fast_path() {
        for e in [
            "0 2 * * *",
            "*/5 * * * *",
            " 30  2 29 2 * ",
            "0 0 31 1 7",
            "59 23 31 12 0",
        ] {
            assert!(surely_valid(e), "{e}");
        }
        for e in [
            "@daily",
            "0 2 * * mon",
            "0-5 * * * *",
            "1,2 * * * *",
            "+5 * * * *",
            "0 0 30 2 *",
            "0 0 * * * *",
            "60 * * * *",
            "*/0 * * * *",
        ] {
            assert!(!surely_valid(e), "{e}");
        }
    }

    /// The fast path must never accept what croner (plus the never-fires
    /// check) would reject. Exhaustive over a grid of plain and edge values.
    #[test]
    fn fast_path_agrees_with_croner() {
        let values = [
            "*", "*/1", "*/7", "*/70", "*/65536", "0", "1", "7", "8", "12", "13", "23", "24", "28",
            "29", "30", "31", "32", "59", "60",
        ];
        let mut accepted = 0;
        for day in values {
            for month in values {
                for dow in ["*", "0", "7", "8", "*/2"] {
                    for (minute, hour) in [("0", "0"), ("59", "23"), ("60", "0"), ("*/15", "*/70")]
                    {
                        let expr = format!("{minute} {hour} {day} {month} {dow}");
                        if surely_valid(&expr) {
                            accepted += 1;
                            let parsed = Schedule::checked_by_croner(&expr, chrono_tz::UTC);
                            assert!(
                                parsed.is_ok(),
                                "fast path accepted {expr:?}, croner said {parsed:?}"
                            );
                        }
                    }
                }
            }
        }
        assert!(accepted > 1000, "{accepted}");
    }
}
