//! When to try a GitHub request again, and how long to wait first (pure).
//!
//! GitHub's documented rules ("Rate limits for the REST API", "Best practices"):
//! - a `retry-after` header on a 403 or 429: wait that many seconds;
//! - `x-ratelimit-remaining: 0` on a 403 or 429 (the primary limit): wait until
//!   `x-ratelimit-reset` (Unix seconds);
//! - a secondary rate limit (a 403 or 429 whose message says so) without
//!   `retry-after`: wait at least a minute; a 429 without any of these is taken
//!   as a secondary limit too;
//! - a 403 without any of these is a real "forbidden": not retried.
//!
//! Server errors (5xx) and transport errors are retried with exponential backoff
//! and jitter, a bounded number of times. A rate-limit wait longer than
//! [`RetryPolicy::max_wait`] is not slept: the caller gets
//! [`GitHubError::RateLimited`](super::GitHubError::RateLimited) with the time
//! to come back.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, StatusCode};

/// How the client retries. The defaults suit a long-running service; tests use
/// tiny delays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (the first one included) for server errors and
    /// transport errors. At least 1.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubled for each further one.
    pub base_delay: Duration,
    /// Upper bound of one backoff delay.
    pub max_delay: Duration,
    /// Shortest wait after a secondary rate limit that came without `retry-after`.
    pub secondary_min_wait: Duration,
    /// Longest rate-limit wait that is slept; a longer one is an error.
    pub max_wait: Duration,
    /// Rate-limit waits in all for one call, after which it gives up.
    pub max_rate_limit_waits: u32,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            secondary_min_wait: Duration::from_secs(60),
            max_wait: Duration::from_secs(300),
            max_rate_limit_waits: 3,
        }
    }
}

impl RetryPolicy {
    /// The backoff before attempt `attempt + 1`, after `attempt` failed ones
    /// (1-based): `base * 2^(attempt-1)`, capped at `max_delay`, of which a
    /// random part of up to half is taken off ("equal jitter"), so that several
    /// clients failing together do not come back together.
    pub fn backoff(&self, attempt: u32) -> Duration {
        crate::backoff::Backoff {
            base: self.base_delay,
            cap: self.max_delay,
            jitter: crate::backoff::Jitter::Equal,
        }
        .delay(attempt)
    }
}

/// What one response means for the retry loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Final: success, or an error that asking again would not change.
    Final,
    /// A server error: retry with backoff while attempts remain.
    ServerError,
    /// A rate limit: do not ask again before `retry_at` (`wait` from now).
    RateLimited {
        wait: Duration,
        retry_at: SystemTime,
    },
}

/// Classifies one response by status, headers and body, at time `now`.
pub fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
    policy: &RetryPolicy,
) -> Verdict {
    if status.is_server_error() {
        return Verdict::ServerError;
    }
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return Verdict::Final;
    }
    let limited = |wait: Duration| Verdict::RateLimited {
        wait,
        retry_at: now + wait,
    };
    if let Some(wait) = retry_after(headers, now) {
        return limited(wait);
    }
    if header_str(headers, "x-ratelimit-remaining") == Some("0") {
        if let Some(reset) =
            header_str(headers, "x-ratelimit-reset").and_then(|v| v.trim().parse::<u64>().ok())
        {
            let reset = UNIX_EPOCH + Duration::from_secs(reset);
            // The reset second itself may still be limited: one more second.
            let wait = reset
                .duration_since(now)
                .unwrap_or_default()
                .saturating_add(Duration::from_secs(1));
            return limited(wait);
        }
        return limited(policy.secondary_min_wait);
    }
    if status == StatusCode::TOO_MANY_REQUESTS || mentions_secondary_limit(body) {
        return limited(policy.secondary_min_wait);
    }
    Verdict::Final
}

/// `retry-after`: delay seconds, or an HTTP date.
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = header_str(headers, "retry-after")?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(at.timestamp()).ok()?);
    Some(at.duration_since(now).unwrap_or_default())
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok()
}

/// Whether GitHub's error message names the secondary rate limit ("You have
/// exceeded a secondary rate limit...").
fn mentions_secondary_limit(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Message {
        #[serde(default)]
        message: String,
    }
    let message = match serde_json::from_slice::<Message>(body) {
        Ok(m) => m.message,
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    message
        .to_ascii_lowercase()
        .contains("secondary rate limit")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn policy() -> RetryPolicy {
        RetryPolicy::default()
    }

    fn check(status: u16, h: &[(&'static str, &str)], body: &str) -> Verdict {
        classify(
            StatusCode::from_u16(status).unwrap(),
            &headers(h),
            body.as_bytes(),
            at(1_000_000),
            &policy(),
        )
    }

    fn waits(verdict: Verdict) -> Duration {
        match verdict {
            Verdict::RateLimited { wait, retry_at } => {
                assert_eq!(retry_at, at(1_000_000) + wait);
                wait
            }
            other => panic!("expected a rate limit, got {other:?}"),
        }
    }

    #[test]
    fn success_and_client_errors_are_final() {
        assert_eq!(check(200, &[], "{}"), Verdict::Final);
        assert_eq!(
            check(404, &[], r#"{"message":"Not Found"}"#),
            Verdict::Final
        );
        assert_eq!(check(422, &[], "{}"), Verdict::Final);
        assert_eq!(check(401, &[("retry-after", "5")], "{}"), Verdict::Final);
    }

    #[test]
    fn server_errors_are_retried() {
        assert_eq!(check(500, &[], ""), Verdict::ServerError);
        assert_eq!(check(502, &[], "<html>"), Verdict::ServerError);
        assert_eq!(
            check(503, &[("retry-after", "1")], ""),
            Verdict::ServerError
        );
    }

    #[test]
    fn plain_forbidden_is_not_a_rate_limit() {
        let body = r#"{"message":"Resource not accessible by integration"}"#;
        assert_eq!(check(403, &[], body), Verdict::Final);
        // Remaining quota left: a real 403.
        assert_eq!(
            check(403, &[("x-ratelimit-remaining", "4999")], body),
            Verdict::Final
        );
    }

    #[test]
    fn retry_after_seconds_wins() {
        assert_eq!(
            waits(check(429, &[("retry-after", "7")], "{}")),
            Duration::from_secs(7)
        );
        let secondary = r#"{"message":"You have exceeded a secondary rate limit. Please wait."}"#;
        assert_eq!(
            waits(check(403, &[("retry-after", "2")], secondary)),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn retry_after_http_date() {
        // 1_000_030 s after the epoch.
        let date = "Mon, 12 Jan 1970 13:47:10 GMT";
        assert_eq!(
            waits(check(429, &[("retry-after", date)], "{}")),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn primary_limit_waits_for_the_reset() {
        let h = [
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1000042"),
        ];
        let body = r#"{"message":"API rate limit exceeded for user ID 1."}"#;
        assert_eq!(waits(check(403, &h, body)), Duration::from_secs(43));
        assert_eq!(waits(check(429, &h, body)), Duration::from_secs(43));
        // A reset in the past: just the extra second.
        let past = [("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "5")];
        assert_eq!(waits(check(403, &past, body)), Duration::from_secs(1));
    }

    #[test]
    fn secondary_limit_waits_the_minimum() {
        let body = r#"{"message":"You have exceeded a Secondary Rate Limit and have been temporarily blocked","documentation_url":"https://docs.github.com/rest"}"#;
        assert_eq!(waits(check(403, &[], body)), Duration::from_secs(60));
        // 429 without any header: a secondary limit too.
        assert_eq!(waits(check(429, &[], "{}")), Duration::from_secs(60));
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        for _ in 0..50 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = policy.backoff(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let late = policy.backoff(30);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_millis(1000));
        }
        let zero = RetryPolicy {
            base_delay: Duration::ZERO,
            ..RetryPolicy::default()
        };
        assert_eq!(zero.backoff(3), Duration::ZERO);
    }
}
