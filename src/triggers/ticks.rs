//! Which schedule ticks are due (pure): given when a pipeline's schedule
//! last fired, the time now, its catch-up policy and the service's window,
//! the ticks to run now and the next fire time.
//!
//! Time is a parameter, never read here, so restarts, downtime and DST
//! changes are tested by passing instants. A tick is named by its UTC
//! instant, and a scheduled run by `<pipeline>-<tick as unix seconds>`
//! ([`run_id`]): a tick fires at most once across restarts and replicas,
//! because the second attempt finds the run already recorded.
//!
//! Daylight saving time is the schedule's business ([`Schedule::next_after`]
//! works in the pipeline's timezone): a skipped local time fires once at the
//! first valid instant after the gap, a repeated one fires once.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{Catchup, Schedule};

/// How late a tick may be evaluated and still count as on time rather than
/// missed: the worker is woken at the tick, but a sync or a busy machine can
/// delay it. With `catchup = "none"` only on-time ticks run.
pub const ON_TIME: Duration = Duration::from_secs(5 * 60);

/// What a schedule asks for at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// Ticks to run now, oldest first.
    pub ticks: Vec<DateTime<Utc>>,
    /// Ticks since the last firing that will not run (skipped by the policy,
    /// outside the window, or beyond the backfill bound). Counted only
    /// within the window; `older` says whether there were earlier ones.
    pub skipped: usize,
    /// Some ticks before the window were not even looked at.
    pub older: bool,
    /// The first tick after `now`.
    pub next: Option<DateTime<Utc>>,
}

/// The ticks of `schedule` in `(last, now]` to run under `catchup`, looking
/// back at most `window` from `now` and running at most `max_backfill` of
/// them (the newest, so the freshest data is made first in time).
pub fn due(
    schedule: &Schedule,
    last: DateTime<Utc>,
    now: DateTime<Utc>,
    catchup: Catchup,
    window: Duration,
    max_backfill: usize,
) -> Due {
    let next = schedule.next_after(now.max(last));
    if now <= last {
        return Due {
            ticks: Vec::new(),
            skipped: 0,
            older: false,
            next,
        };
    }
    let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    let start = now.checked_sub_signed(window).unwrap_or(last).max(last);
    let older = start > last && schedule.next_after(last).is_some_and(|t| t <= start);

    // Every tick in (start, now]; bounded by the window, and kept only as a
    // ring of the newest `keep` so a minutely cron over a long window costs
    // time, not memory.
    let keep = max_backfill.max(1);
    let mut missed = std::collections::VecDeque::with_capacity(keep.min(1024));
    let mut count = 0usize;
    let mut cursor = start;
    while let Some(t) = schedule.next_after(cursor) {
        if t > now {
            break;
        }
        count += 1;
        if missed.len() == keep {
            missed.pop_front();
        }
        missed.push_back(t);
        cursor = t;
    }
    let on_time = |t: &DateTime<Utc>| {
        now.signed_duration_since(*t)
            .to_std()
            .is_ok_and(|late| late <= ON_TIME)
    };
    let ticks: Vec<DateTime<Utc>> = match catchup {
        Catchup::None => missed.back().copied().filter(on_time).into_iter().collect(),
        Catchup::Latest => missed.back().copied().into_iter().collect(),
        Catchup::All => missed.into_iter().collect(),
    };
    Due {
        skipped: count - ticks.len(),
        ticks,
        older,
        next,
    }
}

/// The run id of a scheduled tick: `<pipeline>-<unix seconds>`.
pub fn run_id(pipeline: &str, tick: DateTime<Utc>) -> String {
    format!("{pipeline}-{}", tick.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::Tz;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn paris(expr: &str) -> Schedule {
        Schedule::new(expr, "Europe/Paris".parse::<Tz>().unwrap()).unwrap()
    }

    /// A service that stays up sees each tick once, on time, whatever the
    /// policy; DST moves the UTC instant of a local-time schedule.
    #[test]
    fn on_time_ticks_across_dst_in_paris() {
        let s = paris("30 2 * * *");
        for catchup in [Catchup::None, Catchup::Latest, Catchup::All] {
            // Walk a week around each transition, evaluating 10 s after each
            // fire time, as the worker's timer does.
            for (from, expected) in [
                // Spring forward on 2025-03-30: 02:30 does not exist, fires
                // at 03:00 CEST = 01:00 UTC; then 02:30 CEST = 00:30 UTC.
                (
                    utc(2025, 3, 28, 12, 0),
                    vec![
                        utc(2025, 3, 29, 1, 30),
                        utc(2025, 3, 30, 1, 0),
                        utc(2025, 3, 31, 0, 30),
                    ],
                ),
                // Fall back on 2025-10-26: 02:30 happens twice, fires once.
                (
                    utc(2025, 10, 24, 12, 0),
                    vec![
                        utc(2025, 10, 25, 0, 30),
                        utc(2025, 10, 26, 0, 30),
                        utc(2025, 10, 27, 1, 30),
                    ],
                ),
            ] {
                let mut last = from;
                let mut fired = Vec::new();
                for _ in 0..3 {
                    let d = due(&s, last, last, catchup, DAY, 100);
                    let at = d.next.unwrap() + chrono::Duration::seconds(10);
                    let d = due(&s, last, at, catchup, DAY, 100);
                    assert_eq!(d.skipped, 0, "{catchup} {at}");
                    assert_eq!(d.ticks.len(), 1, "{catchup} {at}");
                    fired.push(d.ticks[0]);
                    last = d.ticks[0];
                }
                assert_eq!(fired, expected, "{catchup}");
            }
        }
    }

    /// Down from 2025-03-29 23:00 UTC to 2025-03-31 09:00 UTC across the
    /// spring-forward night, with an hourly schedule in Paris (the local hour
    /// 02:00 does not exist on the 30th, so that day has 23 ticks).
    #[test]
    fn downtime_for_each_catchup_mode() {
        let s = paris("0 * * * *");
        let last = utc(2025, 3, 29, 23, 0);
        let now = utc(2025, 3, 31, 9, 0) + chrono::Duration::minutes(20);
        let window = Duration::from_secs(48 * 3600);
        // Ticks in (last, now]: every UTC hour from 00:00 on the 30th to 09:00
        // on the 31st = 34 instants (Paris hours map 1:1 to UTC hours, the gap
        // only renames them).
        let all = due(&s, last, now, Catchup::All, window, 1000);
        assert_eq!(all.ticks.len(), 34);
        assert_eq!(all.ticks[0], utc(2025, 3, 30, 0, 0));
        assert_eq!(*all.ticks.last().unwrap(), utc(2025, 3, 31, 9, 0));
        assert!(all.ticks.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(all.skipped, 0);
        assert!(!all.older);

        let latest = due(&s, last, now, Catchup::Latest, window, 1000);
        assert_eq!(latest.ticks, vec![utc(2025, 3, 31, 9, 0)]);
        assert_eq!(latest.skipped, 33);

        // 20 minutes late is not on time: nothing runs with "none".
        let none = due(&s, last, now, Catchup::None, window, 1000);
        assert!(none.ticks.is_empty());
        assert_eq!(none.skipped, 34);
        assert_eq!(none.next, Some(utc(2025, 3, 31, 10, 0)));

        // Within ON_TIME, "none" runs the tick that just came.
        let soon = utc(2025, 3, 31, 9, 2);
        let none = due(&s, last, soon, Catchup::None, window, 1000);
        assert_eq!(none.ticks, vec![utc(2025, 3, 31, 9, 0)]);
        assert_eq!(none.skipped, 33);
    }

    #[test]
    fn backfill_is_bounded_by_the_window_and_the_count() {
        let s = Schedule::new("*/10 * * * *", chrono_tz::UTC).unwrap();
        let last = utc(2025, 1, 1, 0, 0);
        let now = utc(2025, 1, 11, 0, 5); // ten days down
                                          // A six-hour window: ticks from 18:05 on the 10th.
        let d = due(
            &s,
            last,
            now,
            Catchup::All,
            Duration::from_secs(6 * 3600),
            1000,
        );
        assert_eq!(d.ticks.len(), 36);
        assert_eq!(d.ticks[0], utc(2025, 1, 10, 18, 10));
        assert_eq!(*d.ticks.last().unwrap(), utc(2025, 1, 11, 0, 0));
        assert!(d.older);
        // At most five: the newest five.
        let d = due(
            &s,
            last,
            now,
            Catchup::All,
            Duration::from_secs(6 * 3600),
            5,
        );
        assert_eq!(d.ticks.len(), 5);
        assert_eq!(d.ticks[0], utc(2025, 1, 10, 23, 20));
        assert_eq!(d.skipped, 31);
        // "latest" still runs the newest tick of a long outage.
        let d = due(&s, last, now, Catchup::Latest, Duration::from_secs(3600), 5);
        assert_eq!(d.ticks, vec![utc(2025, 1, 11, 0, 0)]);
        // A window shorter than the time since the newest tick: nothing.
        let d = due(&s, last, now, Catchup::Latest, Duration::from_secs(60), 5);
        assert!(d.ticks.is_empty());
        assert!(d.older);
    }

    #[test]
    fn nothing_is_due_twice_and_clocks_going_back_are_harmless() {
        let s = Schedule::new("@daily", chrono_tz::UTC).unwrap();
        let tick = utc(2025, 6, 2, 0, 0);
        let d = due(&s, tick, tick, Catchup::All, DAY, 10);
        assert!(d.ticks.is_empty());
        assert_eq!(d.next, Some(utc(2025, 6, 3, 0, 0)));
        let d = due(&s, tick, utc(2025, 6, 1, 12, 0), Catchup::All, DAY, 10);
        assert!(d.ticks.is_empty());
        assert_eq!(d.next, Some(utc(2025, 6, 3, 0, 0)));
        assert_eq!(run_id("nightly", tick), "nightly-1748822400");
    }
}
