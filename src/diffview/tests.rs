//! Rendering tests across the module: a golden body, the size cap, escaping.

use std::time::Duration;

use super::*;
use crate::diffview::TaskState;
use crate::dvc::{ManifestEntry, Md5};

fn md5(s: &str) -> Md5 {
    s.parse().unwrap()
}

fn entry(path: &str, hex: &str, size: Option<u64>) -> ManifestEntry {
    ManifestEntry {
        relpath: path.to_string(),
        md5: md5(hex),
        size,
    }
}

fn run() -> RunView {
    RunView {
        id: "20240701T060000-employee_attrition".into(),
        trigger: "schedule 0 6 * * * (Europe/Paris)".into(),
        source: SourceCommit {
            sha: "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678".into(),
            url: Some(
                "https://github.com/acme/hr-data/commit/a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
                    .into(),
            ),
        },
        tasks: vec![
            TaskView {
                name: "extract".into(),
                state: TaskState::Succeeded { attempt: 1 },
                duration: Some(Duration::from_millis(12_400)),
            },
            TaskView {
                name: "clean".into(),
                state: TaskState::Succeeded { attempt: 2 },
                duration: Some(Duration::from_secs(184)),
            },
        ],
        url: Some("https://cairn.acme.dev/runs/20240701T060000-employee_attrition".into()),
    }
}

fn golden_view() -> PullRequestView {
    let old_m = Manifest::new(vec![
        entry("employees.csv", "0c1d2e3f405162738495a6b7c8d9eaf0", None),
        entry("departments.csv", "11111111111111111111111111111111", None),
        entry("tmp/scratch.csv", "22222222222222222222222222222222", None),
        entry("README.md", "33333333333333333333333333333333", None),
    ])
    .unwrap();
    let new_m = Manifest::new(vec![
        entry(
            "employees.csv",
            "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
            Some(14_336),
        ),
        entry(
            "departments.csv",
            "11111111111111111111111111111111",
            Some(310),
        ),
        entry("README.md", "33333333333333333333333333333333", Some(1_200)),
        entry(
            "reviews/2024-07.csv",
            "44444444444444444444444444444444",
            Some(2_048_000),
        ),
    ])
    .unwrap();
    let old = Output::dir(old_m.id(), 1_250_000, 4, "hr");
    let new = Output::dir(new_m.id(), 2_063_846, 4, "hr");
    let mut diff = DatasetDiff::new(Some(&old), &new, Some(&old_m), Some(&new_m)).unwrap();
    let old_csv = "id,name,dept,legacy_id\n1,Ann,Sales,A1\n2,Bob,R&D,B7\n3,Cy,Sales,C2\n";
    let new_csv = "id,name,dept,tenure_months\n1,Ann,Sales,14\n3,Cy,Sales,2\n4,Dee,\"Ops, EMEA\",0\n5,@eve,<b>R&D</b>,1\n";
    let table = table_diff(
        Some(&mut old_csv.as_bytes()),
        &mut new_csv.as_bytes(),
        &TableOptions::default(),
    )
    .unwrap();
    diff.tables.push(TableReport::diff("employees.csv", table));
    diff.tables.push(TableReport::skipped(
        "reviews/2024-07.csv",
        "the new version is 2.0 MiB, over the 1.0 MiB limit for table comparisons",
    ));
    PullRequestView {
        pipeline: "employee_attrition".into(),
        dataset: "data/hr".into(),
        diff,
        run: run(),
    }
}

/// The whole body for a directory dataset: read it as a reviewer would.
#[test]
fn golden_body() {
    let pr = pull_request(&golden_view());
    assert_eq!(pr.title, "cairn: update data/hr (employee_attrition)");
    let want = r#"<!-- cairn:pipeline=employee_attrition -->
**employee\_attrition** produced a new version of `data/hr`: 1 file added, 1 removed, 1 changed; 1.2 MiB → 2.0 MiB (+794.8 KiB).

|  | before | after |
| --- | --- | --- |
| md5 | `c1f38378` | `047d1f4b` |
| size | 1.2 MiB (1,250,000 bytes) | 2.0 MiB (2,063,846 bytes) |
| files | 4 | 4 |

### Files

**Added** (1 file, 2.0 MiB)

- `reviews/2024-07.csv` (2.0 MiB)

**Removed** (1 file)

- `tmp/scratch.csv`

**Changed** (1 file)

- `employees.csv` (now 14.0 KiB)

2 other files unchanged.

### Tables

#### `employees.csv`

- **Rows:** 3 → 4: 2 added, 1 removed
- **Columns added (1):** `tenure_months`
- **Columns removed (1):** `legacy_id`
- Rows are compared on the 3 columns both versions share.

The 2 added rows:

| id | name | dept | tenure\_months |
| --- | --- | --- | --- |
| 4 | Dee | Ops, EMEA | 0 |
| 5 | @{ZWSP}eve | &lt;b&gt;R&amp;D&lt;/b&gt; | 1 |

#### `reviews/2024-07.csv`

Not compared: the new version is 2.0 MiB, over the 1.0 MiB limit for table comparisons.

### Run

- **Run:** `20240701T060000-employee_attrition` ([run page](https://cairn.acme.dev/runs/20240701T060000-employee_attrition))
- **Triggered by:** schedule 0 6 \* \* \* (Europe/Paris)
- **Source commit:** [`a1b2c3d`](https://github.com/acme/hr-data/commit/a1b2c3d4e5f60718293a4b5c6d7e8f9012345678)

| task | result | duration |
| --- | --- | --- |
| `extract` | succeeded | 12.4 s |
| `clean` | succeeded on attempt 2 | 3m 04s |

<details>
<summary>Full hashes</summary>

```text
before  c1f38378b6a1fe0c7054f1030125f3eb.dir
after   047d1f4bf8f07cbeedd1a0ae5278486c.dir
source  a1b2c3d4e5f60718293a4b5c6d7e8f9012345678
```

</details>

<sub>Opened by cairn. The new version's data is already on the DVC remote; merging this pull request updates its `.dvc` pointer.</sub>
"#
    .replace("{ZWSP}", "\u{200B}");
    assert_eq!(pr.body, want, "\n{}", pr.body);
}

/// A single CSV file, first version: the table section shows the first rows.
#[test]
fn single_file_first_version() {
    let new = Output::file(
        crate::dvc::ObjectId::file(md5("5f3c9a01e2b47d6c8a90b1c2d3e4f506")),
        14_336,
        false,
        "attrition.csv",
    );
    let mut diff = DatasetDiff::new(None, &new, None, None).unwrap();
    let table = table_diff(
        None,
        &mut &b"id,age,left\n1,30,No\n2,41,Yes\n"[..],
        &TableOptions::default(),
    )
    .unwrap();
    diff.tables
        .push(TableReport::diff("data/attrition.csv", table));
    let view = PullRequestView {
        pipeline: "employee_attrition".into(),
        dataset: "data/attrition.csv".into(),
        diff,
        run: RunView::new("r1", "manual", SourceCommit::new("not-a-sha")),
    };
    let pr = pull_request(&view);
    assert_eq!(
        pr.title,
        "cairn: add data/attrition.csv (employee_attrition)"
    );
    let expect = [
        "produced the first version of `data/attrition.csv`: 14.0 KiB.\n",
        "| md5 | — | `5f3c9a01` |\n| size | — | 14.0 KiB (14,336 bytes) |\n\n",
        "### Table\n\n- **Rows:** 2\n- **Columns (3):** `id`, `age`, `left`\n\nAll 2 rows:\n\n| id | age | left |\n| --- | --- | --- |\n| 1 | 30 | No |\n| 2 | 41 | Yes |\n",
        "- **Source commit:** `not-a-sha`\n",
        "```text\nafter   5f3c9a01e2b47d6c8a90b1c2d3e4f506\nsource  notasha\n```",
    ];
    for e in expect {
        assert!(pr.body.contains(e), "missing {e:?} in\n{}", pr.body);
    }
    assert!(!pr.body.contains("### Files"));
    assert!(!pr.body.contains("before  "));
}

#[test]
fn unchanged_and_type_change_headlines() {
    let id = crate::dvc::ObjectId::file(md5("5f3c9a01e2b47d6c8a90b1c2d3e4f506"));
    let same = Output::file(id, 3, false, "x.bin");
    let view = |diff| PullRequestView {
        pipeline: "p".into(),
        dataset: "x".into(),
        diff,
        run: RunView::new("r", "t", SourceCommit::new("abc")),
    };
    let pr = pull_request(&view(
        DatasetDiff::new(Some(&same), &same, None, None).unwrap(),
    ));
    assert!(
        pr.body.contains("**p** produced `x` again, unchanged.\n"),
        "{}",
        pr.body
    );

    let m = Manifest::new(vec![entry(
        "a",
        "11111111111111111111111111111111",
        Some(3),
    )])
    .unwrap();
    let dir = Output::dir(m.id(), 3, 1, "x");
    let pr = pull_request(&view(
        DatasetDiff::new(Some(&same), &dir, None, Some(&m)).unwrap(),
    ));
    for e in [
        "1 file added; 3 B, same size.",
        "The dataset was a single file; it is now a directory.",
        "| files | 1 (single file) | 1 |",
    ] {
        assert!(pr.body.contains(e), "missing {e:?} in\n{}", pr.body);
    }
}

#[test]
fn data_is_escaped_everywhere() {
    let new = Output::file(
        crate::dvc::ObjectId::file(md5("5f3c9a01e2b47d6c8a90b1c2d3e4f506")),
        9,
        false,
        "t.csv",
    );
    let mut diff = DatasetDiff::new(None, &new, None, None).unwrap();
    let csv = "\"a|b\",<i>c</i>\n\"x|y\",<script>alert(1)</script>\n\"multi\nline\",\\d+\n";
    let table = table_diff(None, &mut csv.as_bytes(), &TableOptions::default()).unwrap();
    diff.tables.push(TableReport::diff("we|ird`s.csv", table));
    diff.tables.push(TableReport::skipped(
        "<img src=x>.csv",
        "a [link](javascript:x) @admin",
    ));
    let mut run = RunView::new(
        "r",
        "push by @alice <img src=x onerror=alert(1)>",
        SourceCommit::new("abc"),
    );
    run.url = Some("javascript:alert(1)".into());
    run.tasks.push(TaskView {
        name: "t|x".into(),
        state: TaskState::Failed {
            attempt: 3,
            reason: "exit 1: <b>|boom|</b>\nsee log".into(),
        },
        duration: None,
    });
    run.tasks.push(TaskView {
        name: "after".into(),
        state: TaskState::Skipped { because: 0 },
        duration: None,
    });
    let view = PullRequestView {
        pipeline: "p".into(),
        dataset: "data/t.csv".into(),
        diff,
        run,
    };
    let body = pull_request(&view).body;
    println!(
        "{}",
        body.chars()
            .filter(|c| *c != '<' && *c != '&')
            .collect::<String>()
            .replace("lt;", "")
            .replace("amp;", "")
    );
    for e in [
        "| a\\|b | &lt;i&gt;c&lt;/i&gt; |\n| --- | --- |\n",
        "| x\\|y | &lt;script&gt;alert(1)&lt;/script&gt; |\n",
        "| multi<br>line | \\\\d+ |\n",
        "#### ``we|ird`s.csv``\n",
        "#### `<img src=x>.csv`\n\nNot compared: a \\[link\\](javascript:x) @\u{200B}admin.\n",
        "- **Run:** `r` (run page)\n",
        "- **Triggered by:** push by @\u{200B}alice &lt;img src=x onerror=alert(1)&gt;\n",
        "| `t\\|x` | failed after 3 attempts: exit 1: &lt;b&gt;\\|boom\\|&lt;/b&gt;<br>see log | — |\n",
        "| `after` | skipped: `t\\|x` did not succeed | — |\n",
    ] {
        assert!(body.contains(e), "missing {e:?} in\n{body}");
    }
    assert!(!body.contains("<script>"));
    assert!(!body.contains("[run page](javascript"));
}

#[test]
fn titles_are_one_line_and_bounded() {
    assert_eq!(
        title("p", "data/a.csv", false),
        "cairn: update data/a.csv (p)"
    );
    assert_eq!(title("p", "a\nb", true), "cairn: add a b (p)");
    let long = format!("data/{}/file.csv", "x".repeat(1000));
    let t = title(&"n".repeat(100), &long, false);
    assert!(t.chars().count() < TITLE_LIMIT, "{}", t.chars().count());
    assert!(
        t.ends_with(
            "xx/file.csv (nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn…)"
        ),
        "{t}"
    );
    assert!(t.starts_with("cairn: update data/xx"));
}

fn many_changed(n: usize, path_len: usize) -> (Manifest, Manifest) {
    let pad = "p".repeat(path_len);
    let make = |salt: &str| {
        Manifest::new(
            (0..n)
                .map(|i| ManifestEntry {
                    relpath: format!("shard-{i:06}/{pad}.csv"),
                    md5: Md5::of_bytes(format!("{salt}{i}").as_bytes()),
                    size: Some(i as u64),
                })
                .collect(),
        )
        .unwrap()
    };
    (make("old"), make("new"))
}

fn dir_view(old_m: &Manifest, new_m: &Manifest) -> PullRequestView {
    let old = Output::dir(old_m.id(), 1, old_m.len() as u64, "d");
    let new = Output::dir(new_m.id(), 2, new_m.len() as u64, "d");
    PullRequestView {
        pipeline: "big".into(),
        dataset: "data/big".into(),
        diff: DatasetDiff::new(Some(&old), &new, Some(old_m), Some(new_m)).unwrap(),
        run: run(),
    }
}

#[test]
fn hundred_thousand_changed_files_stay_under_the_limit() {
    let (old_m, new_m) = many_changed(100_000, 40);
    let view = dir_view(&old_m, &new_m);
    assert_eq!(view.diff.files.as_ref().unwrap().changed.len(), 100_000);

    let pr = pull_request(&view);
    assert!(pr.body.len() < BODY_LIMIT);
    assert!(pr
        .body
        .contains("produced a new version of `data/big`: 100,000 files changed;"));
    assert!(pr.body.contains("**Changed** (100,000 files)\n"));
    assert!(pr.body.contains("- … and 99,975 more\n"), "{}", pr.body);

    // Listing everything would be megabytes: the list stops at the limit, says
    // so, and the sections after it are intact.
    let unbounded = RenderLimits {
        files_per_category: usize::MAX,
        ..RenderLimits::default()
    };
    let pr = pull_request_with(&view, &unbounded);
    assert!(pr.body.len() < BODY_LIMIT, "{}", pr.body.len());
    assert!(
        pr.body.len() > BODY_LIMIT - 2_000,
        "the room is used: {}",
        pr.body.len()
    );
    assert!(pr.body.starts_with("<!-- cairn:pipeline=big -->\n"));
    assert!(
        pr.body
            .contains(" more, not listed to keep this description under GitHub's size limit\n"),
        "{}",
        &pr.body[pr.body.len() - 3000..]
    );
    assert!(pr.body.contains("### Run\n"));
    assert!(pr.body.ends_with("updates its `.dvc` pointer.</sub>\n"));
    assert!(!pr.body.contains("cut to stay under"));
}

#[test]
fn every_section_at_its_worst_stays_under_the_limit() {
    let (old_m, mut new_m) = many_changed(20_000, 900);
    new_m = Manifest::new(
        new_m
            .entries()
            .iter()
            .map(|e| ManifestEntry {
                relpath: format!("{}-new", e.relpath),
                ..e.clone()
            })
            .collect(),
    )
    .unwrap();
    let mut view = dir_view(&old_m, &new_m);
    // Cells that escape to 4-5 times their length, in many wide tables.
    let wide: String = (0..20)
        .map(|i| format!("<c{i}>"))
        .collect::<Vec<_>>()
        .join(",");
    let row = vec!["<&>".repeat(40); 20].join(",");
    let csv = format!("{wide}\n{}\n", vec![row; 6].join("\n"));
    let table = table_diff(None, &mut csv.as_bytes(), &TableOptions::default()).unwrap();
    for i in 0..500 {
        view.diff.tables.push(TableReport::diff(
            format!("{i}/{}", "<".repeat(300)),
            table.clone(),
        ));
    }
    view.diff.tables_not_compared = 7;
    view.run.tasks = (0..5_000)
        .map(|i| TaskView {
            name: format!("{i}{}", "&".repeat(200)),
            state: TaskState::Failed {
                attempt: 9,
                reason: "<".repeat(500),
            },
            duration: Some(Duration::from_secs(i)),
        })
        .collect();
    view.run.trigger = "<".repeat(10_000);
    view.pipeline = "p".repeat(1_000);
    view.dataset = "<".repeat(10_000);

    for body_limit in [BODY_LIMIT, 20_000, 3_000] {
        let limits = RenderLimits {
            files_per_category: 1_000,
            body_limit,
            ..RenderLimits::default()
        };
        let body = pull_request_with(&view, &limits).body;
        assert!(body.len() < body_limit, "{body_limit}: {}", body.len());
        assert!(body.starts_with(&marker(&view.pipeline)));
    }
    let limits = RenderLimits {
        files_per_category: 1_000,
        ..RenderLimits::default()
    };
    let body = pull_request_with(&view, &limits).body;
    for e in [
        "- … and 19,",
        " more, not listed to keep this description under GitHub's size limit\n",
        "Some rows and tables are not shown, to keep this description under GitHub's size limit (",
        "7 more changed tables were not compared: only the first 500 are.",
        "\n… and 4,983 more tasks.\n",
    ] {
        assert!(body.contains(e), "missing {e:?}");
    }
}

/// The table section of a single-file dataset, for one old/new pair.
fn table_section(old: &str, new: &str, opts: &TableOptions) -> String {
    let out = Output::file(
        crate::dvc::ObjectId::file(md5("5f3c9a01e2b47d6c8a90b1c2d3e4f506")),
        1,
        false,
        "t.csv",
    );
    let mut diff = DatasetDiff::new(Some(&out), &out, None, None).unwrap();
    let table = table_diff(Some(&mut old.as_bytes()), &mut new.as_bytes(), opts).unwrap();
    diff.tables.push(TableReport::diff("t.csv", table));
    let view = PullRequestView {
        pipeline: "p".into(),
        dataset: "t.csv".into(),
        diff,
        run: RunView::new("r", "t", SourceCommit::new("abc")),
    };
    let body = pull_request(&view).body;
    let start = body.find("### Table\n").unwrap();
    let end = body.find("### Run\n").unwrap();
    body[start..end].to_string()
}

#[test]
fn table_sections_say_what_was_compared() {
    let default = TableOptions::default();
    let small = TableOptions {
        max_old_rows: 1,
        ..TableOptions::default()
    };
    let cases: [(&str, &str, &TableOptions, &str); 5] = [
        (
            "x\n1\n2\n",
            "x\n1\n",
            &small,
            "### Table\n\n- **Rows:** 2 → 1 (not compared row by row: the previous version has over 1 row)\n\n",
        ),
        (
            "x\n1\n2\n",
            "x\n2\n1\n",
            &default,
            "### Table\n\n- **Rows:** 2 → 2, none added or removed (order or formatting changed)\n\n",
        ),
        (
            "a\n1\n",
            "b\n1\n2\n",
            &default,
            "### Table\n\n- **Rows:** 1 → 2: 1 added, 0 removed\n- **Columns added (1):** `b`\n\
             - **Columns removed (1):** `a`\n\
             - The headers share no column name: rows are compared by position.\n\n\
             The added row:\n\n| b |\n| --- |\n| 2 |\n\n",
        ),
        (
            "x\n0\n",
            "x\n0\n1\n2\n3\n4\n5\n6\n7\n",
            &default,
            "### Table\n\n- **Rows:** 1 → 8: 7 added, 0 removed\n\n\
             First 5 of 7 added rows:\n\n| x |\n| --- |\n| 1 |\n| 2 |\n| 3 |\n| 4 |\n| 5 |\n\n",
        ),
        (
            "",
            "id,name\n1,a\n",
            &default,
            "### Table\n\n- **Rows:** 0 → 1: 1 added, 0 removed\n- **Columns added (2):** `id`, `name`\n\n\
             The added row:\n\n| id | name |\n| --- | --- |\n| 1 | a |\n\n",
        ),
    ];
    for (old, new, opts, want) in cases {
        assert_eq!(table_section(old, new, opts), want, "{old:?} -> {new:?}");
    }
}
