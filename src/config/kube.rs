//! Syntax checks for values that only Kubernetes consumes.
//!
//! The local executor ignores these fields, so without checking them here a
//! typo would surface only when the pipeline first runs on a cluster, as an
//! API-server rejection far from the file that caused it.

/// A resource quantity as Kubernetes parses it: a non-negative decimal number
/// with an optional suffix (`500m`, `1.5`, `1Gi`, `2e3`). Signs are refused:
/// a negative request is never meant.
pub(crate) fn check_quantity(s: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "{s:?} is not a Kubernetes quantity (examples: \"500m\", \"2\", \"1Gi\", \"512Mi\")"
        )
    };
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    let mut halves = number.splitn(2, '.');
    let whole = halves.next().unwrap_or("");
    let frac = halves.next();
    let number_ok = match frac {
        None => !whole.is_empty(),
        Some(f) if f.contains('.') => false,
        Some(f) => !whole.is_empty() || !f.is_empty(),
    };
    if !number_ok {
        return Err(bad());
    }
    let suffix_ok = match suffix {
        "" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" => true,
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => true,
        e => e
            .strip_prefix(['e', 'E'])
            .map(|exp| exp.strip_prefix(['+', '-']).unwrap_or(exp))
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())),
    };
    if suffix_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// Memory in millibytes (`512m`) is valid syntax but never what anyone means.
pub(crate) fn check_memory(s: &str) -> Result<(), String> {
    check_quantity(s)?;
    if let Some(n) = s.strip_suffix('m') {
        return Err(format!(
            "{s:?} means {n} thousandths of a byte; did you mean \"{n}Mi\"?"
        ));
    }
    Ok(())
}

/// A DNS-1123 subdomain: what Secret, ConfigMap and ServiceAccount names
/// must be.
pub(crate) fn check_object_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid Kubernetes object name (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)"
        ))
    }
}

/// The name part of a label key, or a label value (which may also be empty).
fn label_segment_ok(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b.first().is_none_or(u8::is_ascii_alphanumeric)
        && b.last().is_none_or(u8::is_ascii_alphanumeric)
}

/// `[prefix/]name`, as in `kubernetes.io/arch` or `disktype`.
pub(crate) fn check_label_key(s: &str) -> Result<(), String> {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    let ok = !name.is_empty()
        && label_segment_ok(name)
        && prefix.is_none_or(|p| check_object_name(p).is_ok());
    if ok {
        Ok(())
    } else {
        Err(format!("{s:?} is not a valid Kubernetes label key"))
    }
}

pub(crate) fn check_label_value(s: &str) -> Result<(), String> {
    if label_segment_ok(s) {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid Kubernetes label value (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)"
        ))
    }
}

pub(crate) fn check_toleration_operator(s: &str) -> Result<(), String> {
    match s {
        "Equal" | "Exists" => Ok(()),
        _ => Err(format!(
            "{s:?} is not a toleration operator (expected \"Equal\" or \"Exists\")"
        )),
    }
}

pub(crate) fn check_taint_effect(s: &str) -> Result<(), String> {
    match s {
        "NoSchedule" | "PreferNoSchedule" | "NoExecute" => Ok(()),
        _ => Err(format!(
            "{s:?} is not a taint effect (expected \"NoSchedule\", \"PreferNoSchedule\" or \"NoExecute\")"
        )),
    }
}

/// The rules the API server applies across a toleration's fields.
pub(crate) fn check_toleration(
    key: Option<&str>,
    operator: Option<&str>,
    value: Option<&str>,
) -> Result<(), String> {
    let exists = operator == Some("Exists");
    if exists && value.is_some_and(|v| !v.is_empty()) {
        return Err("value must be empty when operator is \"Exists\"".into());
    }
    if key.is_none() && !exists {
        return Err("a toleration without a key must have operator \"Exists\" (it then tolerates every taint)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        for ok in [
            "500m", "2", "1Gi", "512Mi", "1.5", ".5", "1.", "2e3", "1E-2", "100k", "0",
        ] {
            assert!(check_quantity(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-1", "+1", "1GB", "1gi", "abc", "1..2", ".", "1e", "1 Gi", "1e+",
        ] {
            assert!(check_quantity(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_memory("512m").unwrap_err(),
            "\"512m\" means 512 thousandths of a byte; did you mean \"512Mi\"?"
        );
        assert!(check_memory("1Gi").is_ok());
    }

    #[test]
    fn object_names_and_labels() {
        assert!(check_object_name("secret-name").is_ok());
        assert!(check_object_name("a.b-c").is_ok());
        for bad in ["", "Secret", "a_b", "-a", "a..b", "a-"] {
            assert!(check_object_name(bad).is_err(), "{bad}");
        }
        assert!(check_label_key("disktype").is_ok());
        assert!(check_label_key("kubernetes.io/arch").is_ok());
        assert!(check_label_key("a/b/c").is_err());
        assert!(check_label_key("/x").is_err());
        assert!(check_label_key("x/").is_err());
        assert!(check_label_value("").is_ok());
        assert!(check_label_value("amd64").is_ok());
        assert!(check_label_value("-x").is_err());
    }
}
