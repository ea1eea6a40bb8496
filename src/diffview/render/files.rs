//! The body's file lists: added, removed and modified files, each list
//! cut to its share of the room.

use super::{path, total_text, NOTE_ROOM, SIZE_NOTE};
use crate::diffview::dir::{DirDiff, Total};
use crate::diffview::markdown as md;

pub(super) fn files_section(
    f: &DirDiff,
    first: bool,
    per_category: usize,
    budget: usize,
) -> String {
    let mut out = String::from("### Files\n");
    if f.is_empty() {
        out.push_str(if first {
            "\nThe directory is empty.\n"
        } else {
            "\nNo file was added, removed or changed.\n"
        });
        return out;
    }
    type Item<'a> = Box<dyn Fn(usize) -> String + 'a>;
    let sized = |p: &str, size: Option<u64>| match size {
        Some(s) => format!("- {} ({})\n", path(p), md::size(s)),
        None => format!("- {}\n", path(p)),
    };
    let categories: [(&str, usize, Total, Item); 3] = [
        (
            "Added",
            f.added.len(),
            f.added_total(),
            Box::new(|i| sized(&f.added[i].path, f.added[i].size)),
        ),
        (
            "Removed",
            f.removed.len(),
            f.removed_total(),
            Box::new(|i| sized(&f.removed[i].path, f.removed[i].size)),
        ),
        (
            "Changed",
            f.changed.len(),
            Total {
                files: f.changed.len() as u64,
                bytes: 0,
                unknown_sizes: 1,
            },
            Box::new(|i| {
                let c = &f.changed[i];
                let sizes = match (c.old_size, c.new_size) {
                    (Some(o), Some(n)) if o == n => format!(" ({}, same size)", md::size(n)),
                    (Some(o), Some(n)) => format!(" ({} → {})", md::size(o), md::size(n)),
                    (None, Some(n)) => format!(" (now {})", md::size(n)),
                    (Some(o), None) => format!(" (was {})", md::size(o)),
                    (None, None) => String::new(),
                };
                format!("- {}{sizes}\n", path(&c.path))
            }),
        ),
    ];
    let reserve = 3 * NOTE_ROOM;
    let mut full = false;
    for (label, n, total, item) in categories {
        if n == 0 {
            continue;
        }
        let label = if first && label == "Added" {
            "Files"
        } else {
            label
        };
        let heading = format!("\n**{label}** ({})\n\n", total_text(total));
        if full || out.len() + heading.len() + reserve > budget {
            full = true;
            out.push_str(&format!(
                "\n**{label}** ({}): not listed, {SIZE_NOTE}.\n",
                total_text(total)
            ));
            continue;
        }
        out.push_str(&heading);
        let mut shown = 0;
        for i in 0..n.min(per_category) {
            let line = item(i);
            if out.len() + line.len() + reserve > budget {
                full = true;
                break;
            }
            out.push_str(&line);
            shown += 1;
        }
        if shown < n {
            let more = md::thousands((n - shown) as u64);
            if full {
                out.push_str(&format!("- … and {more} more, not listed {SIZE_NOTE}\n"));
            } else {
                out.push_str(&format!("- … and {more} more\n"));
            }
        }
    }
    if f.unchanged > 0 {
        out.push_str(&format!(
            "\n{} unchanged.\n",
            md::count(f.unchanged, "other file", "other files")
        ));
    }
    out
}
