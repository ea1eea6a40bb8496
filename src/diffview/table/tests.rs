//! The table comparison, case by case.

use super::old_rows::CHUNK;
use super::*;

fn diff(old: Option<&str>, new: &str) -> TableDiff {
    diff_bytes(
        old.map(str::as_bytes),
        new.as_bytes(),
        &TableOptions::default(),
    )
}

fn diff_bytes(old: Option<&[u8]>, new: &[u8], opts: &TableOptions) -> TableDiff {
    let mut old = old;
    table_diff(
        old.as_mut().map(|r| r as &mut dyn Read),
        &mut &new[..],
        opts,
    )
    .unwrap()
}

fn names(l: &NameList) -> Vec<&str> {
    l.names.iter().map(String::as_str).collect()
}

#[test]
fn table_of_cases() {
    struct Case {
        name: &'static str,
        old: Option<&'static str>,
        new: &'static str,
        rows: (Option<u64>, u64),
        added: Option<u64>,
        removed: Option<u64>,
        cols_added: &'static [&'static str],
        cols_removed: &'static [&'static str],
        matched: RowMatch,
        sample: &'static [&'static [&'static str]],
    }
    let cases = [
        Case {
            name: "rows added and removed",
            old: Some("id,name\n1,ann\n2,bob\n3,cy\n"),
            new: "id,name\n1,ann\n3,cy\n4,dee\n5,ed\n",
            rows: (Some(3), 4),
            added: Some(2),
            removed: Some(1),
            cols_added: &[],
            cols_removed: &[],
            matched: RowMatch::SameColumns,
            sample: &[&["4", "dee"], &["5", "ed"]],
        },
        Case {
            name: "first version: first rows shown",
            old: None,
            new: "a,b\n1,2\n3,4\n",
            rows: (None, 2),
            added: None,
            removed: None,
            cols_added: &[],
            cols_removed: &[],
            matched: RowMatch::SameColumns,
            sample: &[&["1", "2"], &["3", "4"]],
        },
        Case {
            name: "removed column: rows compared on the shared ones",
            old: Some("id,legacy,name\n1,x,ann\n2,y,bob\n"),
            new: "name,id\nann,1\nbob,2\ncy,3\n",
            rows: (Some(2), 3),
            added: Some(1),
            removed: Some(0),
            cols_added: &[],
            cols_removed: &["legacy"],
            matched: RowMatch::SharedColumns(2),
            sample: &[&["cy", "3"]],
        },
        Case {
            name: "added column",
            old: Some("id\n1\n"),
            new: "id,score\n1,0.5\n2,0.7\n",
            rows: (Some(1), 2),
            added: Some(1),
            removed: Some(0),
            cols_added: &["score"],
            cols_removed: &[],
            matched: RowMatch::SharedColumns(1),
            sample: &[&["2", "0.7"]],
        },
        Case {
            name: "no shared column: by position",
            old: Some("a\n1\n"),
            new: "b\n1\n2\n",
            rows: (Some(1), 2),
            added: Some(1),
            removed: Some(0),
            cols_added: &["b"],
            cols_removed: &["a"],
            matched: RowMatch::ByPosition,
            sample: &[&["2"]],
        },
        Case {
            name: "quoted commas and quotes; same values unquoted are equal",
            old: Some("id,note\n1,plain\n2,\"a,b\"\n"),
            new: "id,note\n\"1\",\"plain\"\n2,\"a,b\"\n3,\"say \"\"hi\"\", ok\"\n",
            rows: (Some(2), 3),
            added: Some(1),
            removed: Some(0),
            cols_added: &[],
            cols_removed: &[],
            matched: RowMatch::SameColumns,
            sample: &[&["3", "say \"hi\", ok"]],
        },
        Case {
            name: "CRLF old, LF new: no change",
            old: Some("id,v\r\n1,a\r\n2,b\r\n"),
            new: "id,v\n1,a\n2,b",
            rows: (Some(2), 2),
            added: Some(0),
            removed: Some(0),
            cols_added: &[],
            cols_removed: &[],
            matched: RowMatch::SameColumns,
            sample: &[],
        },
        Case {
            name: "BOM on one side only",
            old: Some("id,v\n1,a\n"),
            new: "\u{feff}id,v\n1,a\n2,b\n",
            rows: (Some(1), 2),
            added: Some(1),
            removed: Some(0),
            cols_added: &[],
            cols_removed: &[],
            matched: RowMatch::SameColumns,
            sample: &[&["2", "b"]],
        },
        Case {
            name: "empty new file",
            old: Some("id\n1\n"),
            new: "",
            rows: (Some(1), 0),
            added: Some(0),
            removed: Some(1),
            cols_added: &[],
            cols_removed: &["id"],
            matched: RowMatch::ByPosition,
            sample: &[],
        },
        Case {
            name: "both empty",
            old: Some(""),
            new: "",
            rows: (Some(0), 0),
            added: Some(0),
            removed: Some(0),
            cols_added: &[],
            cols_removed: &[],
            matched: RowMatch::SameColumns,
            sample: &[],
        },
        Case {
            name: "ragged rows: a missing field is not an empty one",
            old: Some("a,b,c\n1,2\n1,2,\n"),
            new: "a,b,c\n1,2,\n1,2\n1\n1,2,3,4\n",
            rows: (Some(2), 4),
            added: Some(2),
            removed: Some(0),
            cols_added: &[],
            cols_removed: &[],
            matched: RowMatch::SameColumns,
            sample: &[&["1"], &["1", "2", "3", "4"]],
        },
        Case {
            name: "duplicates are counted",
            old: Some("x\n1\n1\n2\n"),
            new: "x\n1\n1\n1\n",
            rows: (Some(3), 3),
            added: Some(1),
            removed: Some(1),
            cols_added: &[],
            cols_removed: &[],
            matched: RowMatch::SameColumns,
            sample: &[&["1"]],
        },
    ];
    for c in cases {
        let d = diff(c.old, c.new);
        assert_eq!((d.old_rows, d.new_rows), c.rows, "{}", c.name);
        assert_eq!(d.rows_added, c.added, "{}", c.name);
        assert_eq!(d.rows_removed, c.removed, "{}", c.name);
        assert_eq!(names(&d.columns_added), c.cols_added, "{}", c.name);
        assert_eq!(names(&d.columns_removed), c.cols_removed, "{}", c.name);
        assert_eq!(d.matched, c.matched, "{}", c.name);
        assert_eq!(d.sample, c.sample, "{}", c.name);
        assert_eq!(d.old_rows_over_limit, None, "{}", c.name);
    }
}

#[test]
fn header_and_bom_are_not_rows() {
    let d = diff(None, "\u{feff}\"id\",name\r\n");
    assert_eq!(d.new_rows, 0);
    assert_eq!(names(&d.columns), ["id", "name"]);
    assert_eq!(d.columns.total, 2);
}

#[test]
fn huge_cell_is_truncated_and_still_compared_in_full() {
    let big = "x".repeat(3 * 1024 * 1024);
    let old = format!("id,blob\n1,{big}\n");
    let new = format!("id,blob\n1,{big}\n2,{big}y\n");
    let d = diff(Some(&old), &new);
    assert_eq!(d.rows_added, Some(1));
    assert_eq!(d.sample.len(), 1);
    let cell = &d.sample[0][1];
    assert_eq!(cell.chars().count(), CELL_CHARS + 1);
    assert!(cell.ends_with('…'));
    // Differs only in its last byte, 3 MiB in: still a different row.
    let changed = format!("id,blob\n1,{big}z\n");
    assert_eq!(diff(Some(&old), &changed).rows_added, Some(1));
}

#[test]
fn non_utf8_is_decoded_lossily() {
    let d = diff_bytes(None, b"name\ncaf\xe9\n", &TableOptions::default());
    assert_eq!(d.sample, vec![vec!["caf\u{fffd}".to_string()]]);
}

#[test]
fn wide_rows_keep_the_first_columns() {
    let header: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
    let row: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    let text = format!("{}\n{}\n", header.join(","), row.join(","));
    let d = diff(None, &text);
    assert_eq!(d.columns.total, 20);
    assert_eq!(d.sample[0].len(), SAMPLE_COLUMNS);
    assert_eq!(d.sample[0][7], "7");
}

#[test]
fn headers_wider_than_the_cap_compare_by_position() {
    let n = MAX_HEADER_COLUMNS + 1;
    let header: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    let row = |v: &str| vec![v; n].join(",");
    let old = format!("{}\n{}\n", header.join(","), row("1"));
    let new = format!("{},more\n{}\n{}\n", header.join(","), row("1"), row("2"));
    let d = diff(Some(&old), &new);
    assert!(d.header_too_wide);
    assert_eq!(d.matched, RowMatch::ByPosition);
    assert_eq!((d.rows_added, d.rows_removed), (Some(1), Some(0)));
    assert_eq!(d.columns_added.total, 0);
    assert_eq!(
        (d.columns.total, d.columns.names.len()),
        (n + 1, LISTED_NAMES)
    );
}

#[test]
fn sample_is_capped_and_only_added_rows_are_kept() {
    let old = "n\n0\n2\n4\n6\n8\n10\n";
    let new: String = std::iter::once("n".to_string())
        .chain((0..12).map(|i| i.to_string()))
        .collect::<Vec<_>>()
        .join("\n");
    let d = diff(Some(old), &new);
    assert_eq!(d.rows_added, Some(6));
    let firsts: Vec<&str> = d.sample.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(firsts, ["1", "3", "5", "7", "9"]);
}

#[test]
fn over_the_old_row_cap_counts_only() {
    let opts = TableOptions {
        max_old_rows: 3,
        ..TableOptions::default()
    };
    let d = diff_bytes(Some(b"x\n1\n2\n3\n4\n"), b"x\n1\n5\n", &opts);
    assert_eq!((d.old_rows, d.new_rows), (Some(4), 2));
    assert_eq!(d.old_rows_over_limit, Some(3));
    assert_eq!((d.rows_added, d.rows_removed), (None, None));
    assert!(d.sample.is_empty());
    // At the cap exactly, rows are still compared.
    let d = diff_bytes(Some(b"x\n1\n2\n3\n"), b"x\n1\n5\n", &opts);
    assert_eq!((d.rows_added, d.rows_removed), (Some(1), Some(2)));
}

#[test]
fn many_rows_span_chunks() {
    let n = CHUNK as u64 + 10;
    let mut old = String::from("k\n");
    let mut new = String::from("k\n");
    for i in 0..n {
        old.push_str(&format!("{i}\n"));
        new.push_str(&format!("{}\n", i + 3));
    }
    let d = diff(Some(&old), &new);
    assert_eq!((d.rows_added, d.rows_removed), (Some(3), Some(3)));
    let firsts: Vec<&str> = d.sample.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        firsts,
        [n.to_string(), (n + 1).to_string(), (n + 2).to_string()]
    );
}

#[test]
fn options_by_extension() {
    assert_eq!(table_options_for("data/a.CSV").unwrap().delimiter, b',');
    assert_eq!(table_options_for("a.tsv").unwrap().delimiter, b'\t');
    assert_eq!(table_options_for("x/a.tab").unwrap().delimiter, b'\t');
    assert!(table_options_for("a.csv.gz").is_none());
    assert!(table_options_for("csv").is_none());
    assert!(table_options_for("dir.csv/readme").is_none());
}
