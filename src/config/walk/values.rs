//! Reading typed values (strings, numbers, durations, enums, lists, maps)
//! out of TOML tables, recording a problem for each one of the wrong shape.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use toml_span::value::{Table, Value};
use toml_span::Span;

use super::Walker;
use crate::config::suggest::closest;
use crate::config::UnknownVariant;

impl Walker<'_> {
    pub(super) fn table<'v, 'de>(
        &mut self,
        what: impl fmt::Display,
        value: &'v Value<'de>,
    ) -> Option<&'v Table<'de>> {
        let table = value.as_table();
        if table.is_none() {
            self.wrong_type(what, "a table", value);
        }
        table
    }

    pub(super) fn string<'v>(&mut self, what: &str, value: &'v Value<'_>) -> Option<&'v str> {
        let s = value.as_str();
        if s.is_none() {
            self.wrong_type(what, "a string", value);
        }
        s
    }

    /// An optional string that, when present, must not be empty.
    pub(super) fn opt_text(&mut self, table: &Table<'_>, key: &str) -> Option<String> {
        let value = table.get(key)?;
        let s = self.string(key, value)?;
        if s.trim().is_empty() {
            let span = self.value_span(value);
            self.problem(span, format!("`{key}` cannot be empty"));
            return None;
        }
        Some(s.to_string())
    }

    /// An optional string checked by `check`, whose error explains the rule.
    pub(super) fn opt_checked(
        &mut self,
        table: &Table<'_>,
        key: &str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Option<String> {
        let value = table.get(key)?;
        let s = self.string(key, value)?;
        if let Err(e) = check(s) {
            let span = self.value_span(value);
            self.problem(span, format!("`{key}`: {e}"));
            return None;
        }
        Some(s.to_string())
    }

    pub(super) fn opt_u32(&mut self, table: &Table<'_>, key: &str) -> Option<u32> {
        let value = table.get(key)?;
        let Some(n) = value.as_integer() else {
            self.wrong_type(key, "an integer", value);
            return None;
        };
        match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                let why = if n < 0 {
                    "cannot be negative"
                } else {
                    "is too large"
                };
                self.problem(value.span, format!("`{key}` {why}"));
                None
            }
        }
    }

    pub(super) fn opt_duration(&mut self, table: &Table<'_>, key: &str) -> Option<Duration> {
        let value = table.get(key)?;
        let Some(s) = value.as_str() else {
            self.wrong_type(key, "a duration string such as \"30m\"", value);
            return None;
        };
        let span = self.value_span(value);
        match humantime::parse_duration(s) {
            Ok(d) if d.is_zero() => {
                self.problem(span, format!("`{key}` must be longer than zero"));
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(
                    span,
                    format!("`{key}`: invalid duration {s:?}: {e} (examples: \"90s\", \"10m\", \"1h30m\")"),
                );
                None
            }
        }
    }

    pub(super) fn opt_enum<T>(&mut self, table: &Table<'_>, key: &str) -> Option<T>
    where
        T: FromStr<Err = UnknownVariant>,
    {
        let value = table.get(key)?;
        let s = self.string(key, value)?;
        match s.parse() {
            Ok(v) => Some(v),
            Err(e) => {
                let mut message = format!("`{key}`: {e}");
                if let Some(s) = closest(s, e.expected().iter().copied()) {
                    message.push_str(&format!("; did you mean {s:?}?"));
                }
                let span = self.value_span(value);
                self.problem(span, message);
                None
            }
        }
    }

    /// An optional array of strings, each with its span. `None` when absent
    /// or when anything in it is not a string.
    pub(super) fn opt_strings(
        &mut self,
        table: &Table<'_>,
        key: &str,
    ) -> Option<Vec<(String, Span)>> {
        let value = table.get(key)?;
        self.strings(key, value)
    }

    pub(super) fn strings(&mut self, what: &str, value: &Value<'_>) -> Option<Vec<(String, Span)>> {
        let Some(items) = value.as_array() else {
            self.wrong_type(what, "an array of strings", value);
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            match item.as_str() {
                Some(s) => out.push((s.to_string(), self.value_span(item))),
                None => {
                    self.wrong_type(what, "a string", item);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// An optional table of string values, with the span of each key and value.
    pub(super) fn opt_string_map(
        &mut self,
        table: &Table<'_>,
        key: &str,
    ) -> Option<Vec<(String, Span, String, Span)>> {
        let value = table.get(key)?;
        let map = self.table(key, value)?;
        let mut out = Vec::with_capacity(map.len());
        let mut ok = true;
        for (k, v) in map {
            match v.as_str() {
                Some(s) => out.push((
                    k.name.to_string(),
                    self.key_span(k),
                    s.to_string(),
                    self.value_span(v),
                )),
                None => {
                    self.wrong_type(format_args!("{key}.{}", k.name), "a string", v);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}
