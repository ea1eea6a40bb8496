//! One line of the benchmark table that `bench/run.sh` prints: each bench
//! binary prints its own figures, and, when `CAIRN_BENCH_ROWS` names a file,
//! also appends one JSON object per target to it (`bench/table.py` reads them
//! back). Included by each bench with `#[path = "support/rows.rs"] mod rows;`.
#![allow(dead_code)] // each bench uses its own subset

use std::io::Write as _;

/// A target and what was measured against it.
pub struct Row<'a> {
    /// The benchmark and its data, e.g. "intake, signed pushes".
    pub bench: &'a str,
    /// The target as DESIGN.md states it.
    pub target: &'a str,
    /// The figure, with its unit.
    pub measured: String,
    /// The reference measured in the same run, with its figure ("" if the
    /// target is an absolute bound).
    pub reference: String,
    /// measured ÷ bound for bounds ("0.40x of the limit"), or the speed-up
    /// for "N times faster" targets; the table says which.
    pub ratio: f64,
    /// `None` for figures that are reported, not held to a target.
    pub met: Option<bool>,
}

/// Appends `row` to `$CAIRN_BENCH_ROWS`, if set.
pub fn record(row: Row<'_>) {
    let Ok(path) = std::env::var("CAIRN_BENCH_ROWS") else {
        return;
    };
    let line = serde_json::json!({
        "bench": row.bench,
        "target": row.target,
        "measured": row.measured,
        "reference": row.reference,
        "ratio": row.ratio,
        "met": row.met,
    });
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    writeln!(file, "{line}").unwrap_or_else(|e| panic!("{path}: {e}"));
}
