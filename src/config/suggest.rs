//! "Did you mean ...?" hints: most config mistakes are typos of a name that
//! exists a few lines away.

/// Edits beyond this are more likely a different word than a typo.
const MAX_DISTANCE: usize = 2;

/// The candidate nearest to `word`, if within [`MAX_DISTANCE`] edits and
/// shorter than `word` itself (so "a" never suggests "b"). Ties go to the
/// earliest candidate, so callers control preference by order.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = MAX_DISTANCE.min(word.chars().count().saturating_sub(1));
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        if c == word {
            continue;
        }
        let d = distance(word, c, limit);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Optimal string alignment distance (Levenshtein plus adjacent swaps, the
/// commonest typo), giving up early once every path exceeds `limit`.
fn distance(a: &str, b: &str, limit: usize) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > limit {
        return limit + 1;
    }
    let mut prev2 = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
        }
        if cur.iter().min().is_some_and(|&m| m > limit) {
            return limit + 1;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let keys = ["image", "needs", "env", "env_from", "timeout"];
        assert_eq!(closest("imgae", keys), Some("image"));
        assert_eq!(closest("need", keys), Some("needs"));
        assert_eq!(closest("timeouts", keys), Some("timeout"));
        assert_eq!(closest("envfrom", keys), Some("env_from"));
        assert_eq!(closest("resources", keys), None);
        assert_eq!(closest("x", ["y"]), None);
        assert_eq!(closest("pul", ["pull", "push"]), Some("pull"));
    }

    #[test]
    fn distances() {
        assert_eq!(distance("kitten", "sitting", 5), 3);
        assert_eq!(distance("ab", "ba", 2), 1);
        assert_eq!(distance("abc", "abc", 2), 0);
        assert_eq!(distance("a", "abcdef", 2), 3);
    }
}
