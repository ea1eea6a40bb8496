//! Triggers declared in a pipeline: a cron schedule and push filters.

use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use super::plain_cron;

/// A cron expression evaluated in a timezone.
///
/// Daylight saving time follows croner: a time skipped by a spring-forward
/// transition (02:30 in Europe/Paris on the last Sunday of March) fires at the
/// first valid instant after the gap (03:00 local), and a time repeated by a
/// fall-back transition fires once, at its first occurrence.
#[derive(Debug, Clone)]
pub struct Schedule {
    expr: String,
    tz: Tz,
    /// Parsed by croner during validation, or on first use for expressions
    /// that the fast path in `plain_cron` vouched for.
    cron: OnceLock<Option<Cron>>,
}

/// Why a cron expression was rejected; the reason is croner's own words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid cron expression {expr:?}: {reason}")]
    Invalid { expr: String, reason: String },
    #[error("cron expression {0:?} can never fire (no such date)")]
    Never(String),
}

/// Five fields, no seconds, no years.
fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
}

impl Schedule {
    /// Accepts 5-field expressions and `@daily`-style macros. Six fields
    /// (seconds) are refused: runs are minutes long, and a seconds field is far
    /// more often a mistake than an intent.
    pub fn new(expr: &str, tz: Tz) -> Result<Self, ScheduleError> {
        if plain_cron::surely_valid(expr) {
            return Ok(Schedule {
                expr: expr.to_string(),
                tz,
                cron: OnceLock::new(),
            });
        }
        Self::checked_by_croner(expr, tz)
    }

    /// Validation by croner itself, for everything the fast path declines.
    pub(crate) fn checked_by_croner(expr: &str, tz: Tz) -> Result<Self, ScheduleError> {
        let cron = parser().parse(expr).map_err(|e| ScheduleError::Invalid {
            expr: expr.to_string(),
            reason: e.to_string(),
        })?;
        if !can_fire(&cron) {
            return Err(ScheduleError::Never(expr.to_string()));
        }
        Ok(Schedule {
            expr: expr.to_string(),
            tz,
            cron: OnceLock::from(Some(cron)),
        })
    }

    /// The expression as written in the file.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first firing strictly after `after`; `None` only if croner finds
    /// none within its search horizon.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let cron = self
            .cron
            .get_or_init(|| parser().parse(&self.expr).ok())
            .as_ref()?;
        let local = after.with_timezone(&self.tz);
        cron.find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// Rejects expressions such as `0 0 30 2 *` up front, which croner would
/// otherwise accept and then spend a long search on at every tick. Checking
/// the days of a leap year is enough unless a weekday must coincide with a
/// date (`+` syntax), where a 28-year calendar cycle covers every case.
fn can_fire(cron: &Cron) -> bool {
    let p = &cron.pattern;
    let matches_in = |year: i32| {
        (1..=12).any(|m| {
            p.month_match(m).unwrap_or(false)
                && (1..=31).any(|d| {
                    NaiveDate::from_ymd_opt(year, m, d).is_some()
                        && p.day_match(year, m, d).unwrap_or(false)
                })
        })
    };
    matches_in(2028) || (2029..2057).any(matches_in)
}

/// Schedules are equal when written the same way for the same timezone.
impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr && self.tz == other.tz
    }
}

impl Eq for Schedule {}

/// Looks up an IANA timezone name, suggesting the intended one when the name
/// is off by case or a small typo.
pub(crate) fn parse_timezone(name: &str) -> Result<Tz, String> {
    if let Ok(tz) = name.parse::<Tz>() {
        return Ok(tz);
    }
    let close = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|tz| tz.name())
        .find(|n| n.eq_ignore_ascii_case(name))
        .or_else(|| {
            super::suggest::closest(name, chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()))
        });
    Err(match close {
        Some(n) => format!("unknown timezone {name:?} (did you mean {n:?}?)"),
        None => format!("unknown timezone {name:?} (use an IANA name such as \"Europe/Paris\")"),
    })
}

/// Which pushes trigger a pipeline.
///
/// Globs are checked when the file is parsed but only compiled into matchers
/// on first use: building a `GlobSet` costs tens of microseconds, which
/// would dominate validating a file with a thousand pipelines.
#[derive(Debug, Clone)]
pub struct OnPush {
    branches: Vec<Glob>,
    paths: Vec<Glob>,
    branch_set: OnceLock<Option<GlobSet>>,
    path_set: OnceLock<Option<GlobSet>>,
}

/// The one glob dialect used for both lists: `*` stays within one path
/// component (so `release/*` does not match `release/a/b`), `**` crosses them.
pub(crate) fn compile_glob(pattern: &str) -> Result<Glob, String> {
    if pattern.is_empty() {
        return Err("a glob cannot be empty".into());
    }
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| e.kind().to_string())
}

impl OnPush {
    /// An empty `branches` means the repository's default branch; an empty
    /// `paths` means any change.
    pub fn new<S: AsRef<str>>(branches: &[S], paths: &[S]) -> Result<Self, String> {
        let compile = |list: &[S]| {
            list.iter()
                .map(|p| {
                    compile_glob(p.as_ref())
                        .map_err(|e| format!("invalid glob {:?}: {e}", p.as_ref()))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self::from_globs(compile(branches)?, compile(paths)?))
    }

    pub(crate) fn from_globs(branches: Vec<Glob>, paths: Vec<Glob>) -> Self {
        OnPush {
            branches,
            paths,
            branch_set: OnceLock::new(),
            path_set: OnceLock::new(),
        }
    }

    /// The branch patterns as written; empty means the default branch.
    pub fn branches(&self) -> Vec<&str> {
        self.branches.iter().map(Glob::glob).collect()
    }

    /// The path patterns as written; empty means any path.
    pub fn paths(&self) -> Vec<&str> {
        self.paths.iter().map(Glob::glob).collect()
    }

    /// Whether a push to `branch` (a short name; a `refs/heads/` prefix is
    /// tolerated) should trigger the pipeline. `default_branch` is needed
    /// because "no branches listed" means "the default branch", whatever it is
    /// called in that repository.
    pub fn matches_branch(&self, branch: &str, default_branch: &str) -> bool {
        let strip = |b: &'_ str| b.strip_prefix("refs/heads/").unwrap_or(b).to_string();
        let branch = strip(branch);
        if self.branches.is_empty() {
            return branch == strip(default_branch);
        }
        matches(&self.branch_set, &self.branches, &branch)
    }

    /// Whether any of the changed paths (repository-relative, `/`-separated)
    /// is covered by `paths`; always true when no paths are listed.
    pub fn matches_paths<I, S>(&self, changed: I) -> bool
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        if self.paths.is_empty() {
            return true;
        }
        changed
            .into_iter()
            .any(|p| matches(&self.path_set, &self.paths, p.as_ref()))
    }
}

/// Builds the set on first use. Should building fail (the globs all parsed,
/// so only a regex size limit could cause it) this fails open, matching
/// everything: an extra run is visible, a pipeline that silently never runs
/// is not.
fn matches(cell: &OnceLock<Option<GlobSet>>, globs: &[Glob], candidate: &str) -> bool {
    let set = cell.get_or_init(|| {
        let mut builder = GlobSetBuilder::new();
        for g in globs {
            builder.add(g.clone());
        }
        builder.build().ok()
    });
    set.as_ref().is_none_or(|s| s.is_match(candidate))
}

/// Push filters are equal when their patterns are.
impl PartialEq for OnPush {
    fn eq(&self, other: &Self) -> bool {
        self.branches == other.branches && self.paths == other.paths
    }
}

impl Eq for OnPush {}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn macros_and_five_fields_accepted_six_refused() {
        for ok in [
            "0 2 * * *",
            "@daily",
            "@hourly",
            "@weekly",
            "*/15 * * * mon-fri",
        ] {
            assert!(Schedule::new(ok, Tz::UTC).is_ok(), "{ok}");
        }
        let err = Schedule::new("0 0 2 * * *", Tz::UTC).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid cron expression \"0 0 2 * * *\": Invalid pattern: Pattern must have 5 fields when seconds are disallowed."
        );
        assert!(Schedule::new("61 * * * *", Tz::UTC).is_err());
        assert_eq!(
            Schedule::new("0 0 30 2 *", Tz::UTC).unwrap_err(),
            ScheduleError::Never("0 0 30 2 *".into())
        );
        assert!(Schedule::new("0 0 29 2 *", Tz::UTC).is_ok());
    }

    #[test]
    fn next_after_in_utc_and_macros() {
        let s = Schedule::new("@hourly", Tz::UTC).unwrap();
        assert_eq!(
            s.next_after(utc(2025, 1, 1, 10, 0)),
            Some(utc(2025, 1, 1, 11, 0))
        );
        let s = Schedule::new("@daily", Tz::UTC).unwrap();
        assert_eq!(
            s.next_after(utc(2025, 1, 1, 10, 0)),
            Some(utc(2025, 1, 2, 0, 0))
        );
    }

    /// Europe/Paris springs forward on 2025-03-30 at 02:00 -> 03:00, so 02:30
    /// does not exist that day: croner fires at 03:00 CEST (01:00 UTC) instead
    /// of skipping the day. The day after, 02:30 CEST is 00:30 UTC. In autumn
    /// (2025-10-26, 03:00 -> 02:00) 02:30 happens twice and fires once, at the
    /// first (CEST, 00:30 UTC).
    #[test]
    fn dst_transitions_in_paris() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let s = Schedule::new("30 2 * * *", paris).unwrap();
        let t1 = s.next_after(utc(2025, 3, 29, 12, 0)).unwrap();
        assert_eq!(t1, utc(2025, 3, 30, 1, 0));
        let t2 = s.next_after(t1).unwrap();
        assert_eq!(t2, utc(2025, 3, 31, 0, 30));
        let t3 = s.next_after(utc(2025, 10, 25, 12, 0)).unwrap();
        assert_eq!(t3, utc(2025, 10, 26, 0, 30));
        let t4 = s.next_after(t3).unwrap();
        assert_eq!(t4, utc(2025, 10, 27, 1, 30));
        // Winter: 02:00 Paris is 01:00 UTC.
        let s = Schedule::new("0 2 * * *", paris).unwrap();
        assert_eq!(
            s.next_after(utc(2025, 1, 10, 3, 0)),
            Some(utc(2025, 1, 11, 1, 0))
        );
    }

    #[test]
    fn timezones() {
        assert_eq!(parse_timezone("Europe/Paris"), Ok(chrono_tz::Europe::Paris));
        assert_eq!(
            parse_timezone("europe/paris").unwrap_err(),
            "unknown timezone \"europe/paris\" (did you mean \"Europe/Paris\"?)"
        );
        assert_eq!(
            parse_timezone("Europe/Pariss").unwrap_err(),
            "unknown timezone \"Europe/Pariss\" (did you mean \"Europe/Paris\"?)"
        );
        assert!(parse_timezone("Mars/Olympus").unwrap_err().contains("IANA"));
    }

    fn on_push(branches: &[&str], paths: &[&str]) -> OnPush {
        OnPush::new(branches, paths).unwrap()
    }

    #[test]
    fn push_filters() {
        let any = on_push(&[], &[]);
        assert!(any.matches_branch("main", "main"));
        assert!(any.matches_branch("refs/heads/trunk", "trunk"));
        assert!(!any.matches_branch("dev", "main"));
        assert!(any.matches_paths(["anything"]));

        let p = on_push(&["main", "release/*"], &["etl/**", "*.toml"]);
        assert_eq!(p.branches(), ["main", "release/*"]);
        assert!(p.matches_branch("release/1.0", "main"));
        assert!(!p.matches_branch("release/1.0/x", "main"));
        assert!(!p.matches_branch("dev", "dev"));
        assert!(p.matches_paths(["README.md", "etl/sub/run.py"]));
        assert!(p.matches_paths(vec![String::from("pipelines.toml")]));
        assert!(!p.matches_paths(["docs/pipelines.toml", "etl"]));
        assert!(!p.matches_paths(Vec::<String>::new()));

        assert!(compile_glob("etl/[")
            .unwrap_err()
            .contains("unclosed character class"));
        assert_eq!(compile_glob("").unwrap_err(), "a glob cannot be empty");
        assert_eq!(
            OnPush::new(&["{a"], &[]).unwrap_err(),
            "invalid glob \"{a\": unclosed alternate group; missing '}' (maybe escape '{' with '[{]'?)"
        );
    }
}
