//! The `.gitignore` entry `dvc add` writes next to a tracked output.
//!
//! DVC appends `/<name>` to the `.gitignore` in the output's parent directory so git
//! never sees the data itself. The name is escaped like pathspec's
//! `GitWildMatchPattern.escape`: a backslash before each of `\ [ ] ! * # ?`.
//! Spaces are not escaped, not even leading or trailing ones (DVC 3.67 writes
//! `/trail ` as is, which git then reads as `/trail`; we reproduce DVC).
//!
//! DVC adds nothing when git already ignores the path by any rule; cairn can only
//! see its own file, so it adds nothing when the exact line is already present
//! (ignoring a `\r` line ending). Unlike DVC, it also recognises the line when it is
//! the file's last line without a newline.

/// The line DVC writes for output `name` (a file name, or a `/`-separated path
/// relative to the `.gitignore`'s directory), without the newline.
pub fn gitignore_entry(name: &str) -> String {
    let name = name.strip_prefix('/').unwrap_or(name);
    let mut out = String::with_capacity(name.len() + 2);
    out.push('/');
    for c in name.chars() {
        if matches!(c, '\\' | '[' | ']' | '!' | '*' | '#' | '?') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The new `.gitignore` content after adding output `entry`, or `None` when the
/// line is already present. Adds a `\n` first if `existing` does not end with one.
pub fn gitignore_add(existing: &str, entry: &str) -> Option<String> {
    let line = gitignore_entry(entry);
    if existing
        .split('\n')
        .any(|l| l.strip_suffix('\r').unwrap_or(l) == line)
    {
        return None;
    }
    let mut out = String::with_capacity(existing.len() + line.len() + 2);
    out.push_str(existing);
    if !existing.is_empty() && !existing.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&line);
    out.push('\n');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_dvc() {
        // Lines written by DVC 3.67.1 for files with these names.
        for (name, want) in [
            ("employee_attrition.csv", "/employee_attrition.csv"),
            ("#hash", "/\\#hash"),
            ("x#y", "/x\\#y"),
            ("?q", "/\\?q"),
            ("!b", "/\\!b"),
            ("a[1]*?.txt", "/a\\[1\\]\\*\\?.txt"),
            ("a\\b", "/a\\\\b"),
            (" lead", "/ lead"),
            ("trail ", "/trail "),
            ("é.txt", "/é.txt"),
            ("{b", "/{b"),
        ] {
            assert_eq!(gitignore_entry(name), want);
        }
    }

    #[test]
    fn appends_once() {
        assert_eq!(gitignore_add("", "a.csv").as_deref(), Some("/a.csv\n"));
        assert_eq!(
            gitignore_add("/x", "a.csv").as_deref(),
            Some("/x\n/a.csv\n")
        );
        assert_eq!(
            gitignore_add("/x\n", "a.csv").as_deref(),
            Some("/x\n/a.csv\n")
        );
        assert_eq!(gitignore_add("/x\n/a.csv\n", "a.csv"), None);
        assert_eq!(gitignore_add("/a.csv\r\n", "a.csv"), None);
        assert_eq!(gitignore_add("/a.csv", "a.csv"), None);
        assert!(gitignore_add("a.csv\n", "a.csv").is_some());
    }
}
