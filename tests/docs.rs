//! The reference pages say what the code does: docs/configuration.md lists
//! exactly the keys the parsers accept, every `CAIRN_*` variable cairn
//! reads, and the defaults written in config/cairn.toml.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn page() -> String {
    std::fs::read_to_string(root().join("docs/configuration.md")).unwrap()
}

/// The table rows under each `### ` heading: heading -> rows, each row its
/// cells with surrounding backticks kept.
fn tables(page: &str) -> BTreeMap<String, Vec<Vec<String>>> {
    let mut out: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    let mut heading = String::new();
    let mut part = String::new();
    for line in page.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            part = h.trim().to_string();
        } else if let Some(h) = line.strip_prefix("### ") {
            heading = format!("{part}: {}", h.trim().trim_matches('`'));
        } else if line.starts_with('|') && !line.starts_with("| ---") {
            // Cells are split on `|` not preceded by a backslash.
            let mut cells = Vec::new();
            let mut cell = String::new();
            let mut prev = ' ';
            for c in line.trim().trim_matches('|').chars() {
                if c == '|' && prev != '\\' {
                    cells.push(cell.trim().to_string());
                    cell.clear();
                } else {
                    cell.push(c);
                }
                prev = c;
            }
            cells.push(cell.trim().to_string());
            out.entry(heading.clone()).or_default().push(cells);
        }
    }
    // Drop header rows.
    for rows in out.values_mut() {
        rows.retain(|r| r[0] != "key" && r[0] != "variable");
    }
    out
}

fn key_of(cell: &str) -> &str {
    cell.trim_matches('`')
}

#[test]
fn every_pipelines_toml_key_is_documented_in_its_table_and_nothing_else() {
    let tables = tables(&page());
    for (table, keys) in cairn::config::key_tables() {
        let heading = format!("pipelines.toml: {table}");
        let rows = tables.get(&heading).unwrap_or_else(|| {
            panic!("docs/configuration.md has no section `### {table}` under `## pipelines.toml`")
        });
        let documented: BTreeSet<&str> = rows.iter().map(|r| key_of(&r[0])).collect();
        let accepted: BTreeSet<&str> = keys.iter().copied().collect();
        assert_eq!(
            documented, accepted,
            "{heading}: the keys documented (left) and accepted (right) differ"
        );
        for row in rows {
            assert_eq!(
                row.len(),
                4,
                "{heading}: {row:?} needs key | type | default | meaning"
            );
            assert!(
                row.iter().all(|c| !c.is_empty()),
                "{heading}: {row:?} has an empty cell"
            );
        }
    }
    let sections = tables
        .keys()
        .filter(|h| h.starts_with("pipelines.toml: "))
        .count();
    assert_eq!(
        sections,
        cairn::config::key_tables().len(),
        "a section documents a table the parser does not have"
    );
}

#[test]
fn every_settings_key_is_documented_with_its_variable_and_its_default() {
    let tables = tables(&page());
    let example = std::fs::read_to_string(root().join("config/cairn.toml")).unwrap();
    let example = toml_values(&example);
    let mut documented_keys = 0;
    for (section, name, env) in cairn::settings::keys() {
        let heading = match section {
            Some(s) => format!("cairn.toml: [{s}]"),
            None => "cairn.toml: top level".to_string(),
        };
        let rows = tables
            .get(&heading)
            .unwrap_or_else(|| panic!("docs/configuration.md has no section for {heading}"));
        let row = rows
            .iter()
            .find(|r| key_of(&r[0]) == name)
            .unwrap_or_else(|| panic!("{heading}: `{name}` is not documented"));
        assert_eq!(
            row.len(),
            5,
            "{heading}: {row:?} needs key | type | default | environment | meaning"
        );
        assert_eq!(key_of(&row[3]), env, "{heading}: `{name}`'s variable");
        // The default written in config/cairn.toml is the one documented.
        let place = format!(
            "{}{name}",
            section.map(|s| format!("{s}.")).unwrap_or_default()
        );
        if let Some(value) = example.get(&place) {
            assert_eq!(
                key_of(&row[2]),
                value,
                "{heading}: `{name}`'s default (config/cairn.toml says {value})"
            );
        } else {
            assert_eq!(
                row[2], "none",
                "{heading}: `{name}` is not set in config/cairn.toml, so it has no default"
            );
        }
        documented_keys += 1;
    }
    let rows_in_doc: usize = tables
        .iter()
        .filter(|(h, _)| {
            h.starts_with("cairn.toml: ")
                && h.as_str() != "cairn.toml: Environment only"
                && !h.contains("Variables cairn sets")
                && !h.contains("cairn controller")
        })
        .map(|(_, rows)| rows.len())
        .sum();
    assert_eq!(
        rows_in_doc, documented_keys,
        "the page documents a settings key the code does not have"
    );
}

/// Top-level and one-table-deep values of a TOML text, as written.
fn toml_values(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut table = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(t) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = format!("{t}.");
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.insert(format!("{table}{}", k.trim()), v.trim().to_string());
        }
    }
    out
}

/// Every `"CAIRN_..."` string literal in the sources.
fn variables_in_code() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut stack = vec![root().join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split("\"CAIRN_").skip(1) {
                    let name: String = piece
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    if piece[name.len()..].starts_with('"') && !name.is_empty() {
                        found.insert(format!("CAIRN_{name}"));
                    }
                }
            }
        }
    }
    found
}

#[test]
fn every_cairn_variable_is_documented_and_every_documented_one_exists() {
    let page = page();
    let mut in_code = variables_in_code();
    in_code.extend(cairn::settings::ENV_ONLY.iter().map(|v| v.to_string()));
    in_code.extend(cairn::settings::keys().map(|(_, _, env)| env.to_string()));
    assert!(
        in_code.contains("CAIRN_S3_PART_SIZE"),
        "the scan finds variables: {in_code:?}"
    );
    for var in &in_code {
        assert!(
            page.contains(&format!("`{var}`")),
            "docs/configuration.md does not mention `{var}`"
        );
    }
    let mut in_page = BTreeSet::new();
    for piece in page.split("`CAIRN_").skip(1) {
        let name: String = piece
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if piece[name.len()..].starts_with('`') {
            in_page.insert(format!("CAIRN_{name}"));
        }
    }
    // `CAIRN_<KEY>` and `CAIRN_<TABLE>_<KEY>` describe the pattern.
    let unknown: Vec<&String> = in_page.difference(&in_code).collect();
    assert!(
        unknown.is_empty(),
        "documented but not read anywhere: {unknown:?}"
    );
}
