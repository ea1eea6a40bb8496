//! Retry delays: the one exponential backoff every retry loop in cairn uses.
//!
//! The delay after failed attempt `n` is `base * 2^(n-1)`, capped, then
//! jittered as the caller needs: not at all (the run state machine, which is
//! deterministic), "equal" (GitHub requests: at least half the delay, so a
//! rate-limited client still backs off) or "full" (S3 downloads, like the AWS
//! SDK's own retries).
//!
//! Why not the `backon` crate: its exponential builder multiplies in `f32`
//! seconds (100 ms doubled is 200.000003 ms, 700 ms doubled 1.399999976 s),
//! which the state machine's exact retry times cannot take, and its jitter
//! only ever adds (up to 100 %), so full jitter is not expressible. The
//! arithmetic here is exact integer nanoseconds.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How much of the delay is random.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// None: the delay itself, always.
    None,
    /// Up to half of the delay is taken off, uniformly: in `[d/2, d]`.
    Equal,
    /// Uniform in `[0, d]`.
    Full,
}

/// An exponential backoff: `base`, doubled for each further failure, at most
/// `cap`, jittered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub base: Duration,
    /// Upper bound of the (unjittered) delay.
    pub cap: Duration,
    /// How much of it is random.
    pub jitter: Jitter,
}

impl Backoff {
    /// The delay before the attempt that follows failed attempt `failed`
    /// (1-based; 0 is taken as 1).
    pub fn delay(&self, failed: u32) -> Duration {
        let factor = 2u32.saturating_pow(failed.saturating_sub(1));
        let full = self.base.saturating_mul(factor).min(self.cap);
        match self.jitter {
            Jitter::None => full,
            Jitter::Equal => full - random_up_to(full / 2),
            Jitter::Full => random_up_to(full),
        }
    }
}

/// A uniformly random duration in `[0, max]` (nanosecond steps).
fn random_up_to(max: Duration) -> Duration {
    match u64::try_from(max.as_nanos()) {
        Ok(0) => Duration::ZERO,
        Ok(n) => Duration::from_nanos(random_u64() % (n + 1)),
        // Over 584 years: no jitter matters at that scale.
        Err(_) => max,
    }
}

/// A random number from the standard library's per-process hash keys, enough
/// for jitter (no cryptographic use).
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn backoff(base: u64, cap: u64, jitter: Jitter) -> Backoff {
        Backoff {
            base: ms(base),
            cap: ms(cap),
            jitter,
        }
    }

    #[test]
    fn without_jitter_it_doubles_exactly_up_to_the_cap() {
        let b = backoff(700, 5000, Jitter::None);
        let delays: Vec<Duration> = (0..6).map(|n| b.delay(n)).collect();
        assert_eq!(
            delays,
            [ms(700), ms(700), ms(1400), ms(2800), ms(5000), ms(5000)]
        );
        // No overflow, however many failures.
        assert_eq!(b.delay(u32::MAX), ms(5000));
        assert_eq!(backoff(0, 5000, Jitter::None).delay(9), Duration::ZERO);
    }

    #[test]
    fn equal_jitter_keeps_at_least_half() {
        let b = backoff(100, 1000, Jitter::Equal);
        for _ in 0..50 {
            let d = b.delay(3);
            assert!(d >= ms(200) && d <= ms(400), "{d:?}");
        }
        assert_eq!(backoff(0, 1000, Jitter::Equal).delay(3), Duration::ZERO);
    }

    #[test]
    fn full_jitter_stays_under_the_delay() {
        let b = backoff(100, 1000, Jitter::Full);
        let delays: Vec<Duration> = (0..50).map(|_| b.delay(2)).collect();
        assert!(delays.iter().all(|d| *d <= ms(200)), "{delays:?}");
        // Random, not constant.
        assert!(delays.iter().any(|d| *d != delays[0]), "{delays:?}");
    }
}
