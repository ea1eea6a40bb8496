//! Client-side rate limit for API calls: a token bucket of `burst` tokens
//! refilled at `qps` per second. A controller that falls behind must not
//! answer by hammering the API server that every other workload shares.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Throttle {
    qps: f64,
    burst: f64,
    bucket: Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Throttle {
    /// `qps` calls per second on average, at most `burst` at once.
    pub fn new(qps: f64, burst: u32) -> Throttle {
        let burst = f64::from(burst.max(1));
        Throttle {
            qps: qps.max(0.001),
            burst,
            bucket: Mutex::new(Bucket {
                tokens: burst,
                at: Instant::now(),
            }),
        }
    }

    /// How long to wait before a call made at `now` may go, taking its token.
    fn reserve(&self, now: Instant) -> Duration {
        // A poisoned lock only means another caller panicked mid-update;
        // the numbers are still usable.
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.qps).min(self.burst);
        bucket.at = now;
        bucket.tokens -= 1.0;
        if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.tokens / self.qps)
        }
    }

    /// Waits for a token.
    pub async fn acquire(&self) {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_goes_at_once_then_calls_are_spaced_by_the_rate() {
        let throttle = Throttle::new(10.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(throttle.reserve(start), Duration::ZERO);
        }
        // The fourth and fifth wait one and two tenths of a second.
        let fourth = throttle.reserve(start);
        let fifth = throttle.reserve(start);
        assert!((fourth.as_secs_f64() - 0.1).abs() < 1e-6, "{fourth:?}");
        assert!((fifth.as_secs_f64() - 0.2).abs() < 1e-6, "{fifth:?}");
        // After a quiet second the bucket is full again, not fuller.
        let later = start + Duration::from_secs(5);
        for _ in 0..3 {
            assert_eq!(throttle.reserve(later), Duration::ZERO);
        }
        assert!(throttle.reserve(later) > Duration::ZERO);
    }
}
