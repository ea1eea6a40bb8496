//! The body's table (CSV/TSV) comparisons: row counts, column changes and
//! a sample of the added rows, per table.

use super::{path, INLINE_NAMES, NOTE_ROOM, SIZE_NOTE};
use crate::diffview::markdown as md;
use crate::diffview::table::{
    NameList, RowMatch, TableDiff, TableReport, TableResult, CELL_CHARS, MAX_HEADER_COLUMNS,
    SAMPLE_COLUMNS,
};
use crate::diffview::DatasetDiff;

pub(super) fn tables_section(
    d: &DatasetDiff,
    blocks: &[(String, String)],
    single: bool,
    budget: usize,
) -> String {
    if blocks.is_empty() && d.tables_not_compared == 0 {
        return String::new();
    }
    let mut out = String::from(if single {
        "### Table\n"
    } else {
        "### Tables\n"
    });
    let mut shrunk = false;
    let mut omitted = 0u64;
    for (full, short) in blocks {
        if !shrunk && out.len() + full.len() + NOTE_ROOM <= budget {
            out.push_str(full);
            continue;
        }
        shrunk = true;
        if omitted == 0 && out.len() + short.len() + NOTE_ROOM <= budget {
            out.push_str(short);
        } else {
            omitted += 1;
        }
    }
    if shrunk {
        out.push_str(&format!(
            "\nSome rows and tables are not shown, {SIZE_NOTE}"
        ));
        if omitted > 0 {
            out.push_str(&format!(
                " ({} left out)",
                md::count(omitted, "table", "tables")
            ));
        }
        out.push_str(".\n");
    }
    if d.tables_not_compared > 0 {
        out.push_str(&format!(
            "\n{} not compared: only the first {} are.\n",
            md::count(
                d.tables_not_compared,
                "more changed table was",
                "more changed tables were"
            ),
            md::thousands(blocks.len() as u64),
        ));
    }
    out
}

/// One table's comparison; `short` leaves out the sample rows.
pub(super) fn table_block(t: &TableReport, single: bool, short: bool) -> String {
    let mut out = String::new();
    if !single {
        out.push_str(&format!("\n#### {}\n", path(&t.path)));
    }
    let d = match &t.result {
        TableResult::Skipped(reason) => {
            out.push_str(&format!(
                "\nNot compared: {}.\n",
                md::text(&md::truncate(reason, 300))
            ));
            return out;
        }
        TableResult::Diff(d) => d,
    };
    out.push('\n');
    out.push_str(&rows_line(d));
    if d.old_rows.is_none() {
        out.push_str(&format!(
            "- **Columns ({}):** {}\n",
            md::thousands(d.columns.total as u64),
            names(&d.columns)
        ));
    }
    if !d.columns_added.names.is_empty() {
        out.push_str(&format!(
            "- **Columns added ({}):** {}\n",
            md::thousands(d.columns_added.total as u64),
            names(&d.columns_added)
        ));
    }
    if !d.columns_removed.names.is_empty() {
        out.push_str(&format!(
            "- **Columns removed ({}):** {}\n",
            md::thousands(d.columns_removed.total as u64),
            names(&d.columns_removed)
        ));
    }
    let compared = d.old_rows.is_some_and(|n| n > 0) && d.new_rows > 0;
    if d.header_too_wide && d.old_rows.is_some() {
        out.push_str(&format!(
            "- Over {} columns: columns are not compared by name, rows are compared by position.\n",
            md::thousands(MAX_HEADER_COLUMNS as u64)
        ));
    } else if compared {
        match d.matched {
            RowMatch::SameColumns => {}
            RowMatch::SharedColumns(n) => out.push_str(&format!(
                "- Rows are compared on the {} both versions share.\n",
                md::count(n as u64, "column", "columns")
            )),
            RowMatch::ByPosition => {
                out.push_str("- The headers share no column name: rows are compared by position.\n")
            }
        }
    }
    if !short {
        out.push_str(&sample(d));
    }
    out
}

fn rows_line(d: &TableDiff) -> String {
    let new = md::thousands(d.new_rows);
    let Some(old_rows) = d.old_rows else {
        return format!("- **Rows:** {new}\n");
    };
    let old = md::thousands(old_rows);
    if let Some(limit) = d.old_rows_over_limit {
        return format!(
            "- **Rows:** {old} → {new} (not compared row by row: the previous version has over {})\n",
            md::count(limit, "row", "rows")
        );
    }
    match (d.rows_added, d.rows_removed) {
        (Some(0), Some(0)) => {
            format!(
                "- **Rows:** {old} → {new}, none added or removed (order or formatting changed)\n"
            )
        }
        (Some(a), Some(r)) => format!(
            "- **Rows:** {old} → {new}: {} added, {} removed\n",
            md::thousands(a),
            md::thousands(r)
        ),
        _ => format!("- **Rows:** {old} → {new}\n"),
    }
}

/// `` `a`, `b` and 3 more ``.
fn names(l: &NameList) -> String {
    if l.total == 0 {
        return "none".to_string();
    }
    let shown: Vec<String> = l
        .names
        .iter()
        .take(INLINE_NAMES)
        .map(|n| md::code(&md::truncate(n, CELL_CHARS + 1), false))
        .collect();
    let mut s = shown.join(", ");
    if l.total > shown.len() {
        s.push_str(&format!(
            " and {} more",
            md::thousands((l.total - shown.len()) as u64)
        ));
    }
    s
}

/// The caption and Markdown table of the sample rows.
fn sample(d: &TableDiff) -> String {
    let n = d.sample.len();
    let widest = d.sample.iter().map(Vec::len).max().unwrap_or(0);
    let ncols = d.columns.names.len().max(widest).min(SAMPLE_COLUMNS);
    if n == 0 || ncols == 0 {
        return String::new();
    }
    let caption = match (d.old_rows, d.rows_added) {
        (None, _) if n as u64 == d.new_rows => {
            if n == 1 {
                "The only row:".to_string()
            } else {
                format!("All {n} rows:")
            }
        }
        (None, _) => format!("First {n} rows:"),
        (Some(_), Some(a)) if a == n as u64 => {
            if n == 1 {
                "The added row:".to_string()
            } else {
                format!("The {n} added rows:")
            }
        }
        (Some(_), Some(a)) => format!("First {n} of {} added rows:", md::thousands(a)),
        (Some(_), None) => format!("First {n} added rows:"),
    };
    let hidden = d.columns.total.saturating_sub(ncols);
    let cell = |s: &str| md::cell(&md::truncate(s, CELL_CHARS + 1));
    let mut out = format!("\n{caption}\n\n|");
    for i in 0..ncols {
        let name = d.columns.names.get(i).map_or("", String::as_str);
        out.push_str(&format!(" {} |", cell(name)));
    }
    if hidden > 0 {
        out.push_str(&format!(" … {} more |", md::thousands(hidden as u64)));
    }
    out.push_str("\n|");
    for _ in 0..ncols + usize::from(hidden > 0) {
        out.push_str(" --- |");
    }
    out.push('\n');
    for row in &d.sample {
        out.push('|');
        for i in 0..ncols {
            out.push_str(&format!(
                " {} |",
                cell(row.get(i).map_or("", String::as_str))
            ));
        }
        if hidden > 0 {
            out.push_str(" … |");
        }
        out.push('\n');
    }
    out
}
