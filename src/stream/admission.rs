//! [`StreamAdmission`]: how many new streams this instance admits per second, so that a
//! crowd coming back at once (after a restart, a deploy, a network blip) is taken in at a
//! pace the instance can serve instead of all in the same second.
//!
//! **Invariant:** at most `rate` streams are admitted in any one second, however the second
//! is cut: a token bucket of a hundredth of `rate` (at least 1) refilled at the rest of `rate`
//! a second admits at most its capacity plus its refill in any second. A refused client is told to come back after
//! a random whole number of seconds, spread wider the more clients were refused in the last
//! second, so the crowd's retries do not arrive together either. Memory is constant.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::ApiError;
use crate::random::random_below;

/// The longest a refused client is told to wait.
const MAX_RETRY_AFTER_SECS: u64 = 60;

/// A token bucket of new streams; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct StreamAdmission {
    /// The setting: streams a second.
    rate: f64,
    /// Tokens the bucket holds at most: the burst.
    capacity: f64,
    /// Tokens added a second: `rate - capacity`, so a second never admits more than `rate`.
    refill: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
    /// Refusals since `window_start`, a second ago at most.
    refused: u64,
    window_start: Instant,
}

impl StreamAdmission {
    /// At most `rate` (at least 1) new streams a second.
    pub fn new(rate: usize) -> Self {
        let rate = rate.max(1) as f64;
        let capacity = (rate / 100.0).floor().max(1.0);
        // A rate of 1 refills one a second: the bucket's token and the refill never meet in
        // one second but at its very end.
        let refill = (rate - capacity).max(1.0);
        let now = Instant::now();
        Self {
            rate,
            capacity,
            refill,
            state: Mutex::new(Bucket {
                tokens: capacity,
                refilled_at: now,
                refused: 0,
                window_start: now,
            }),
        }
    }

    /// Admits one new stream.
    ///
    /// # Errors
    ///
    /// [`ApiError::Overloaded`] when this second's streams are all admitted, with a
    /// Retry-After of 1 to `1 + refused in the last second / rate` seconds, drawn at random.
    pub fn admit(&self) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut bucket = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = now.duration_since(bucket.refilled_at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.refill).min(self.capacity);
        bucket.refilled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        if now.duration_since(bucket.window_start) >= Duration::from_secs(1) {
            bucket.window_start = now;
            bucket.refused = 0;
        }
        bucket.refused += 1;
        let spread = (bucket.refused as f64 / self.rate).ceil() as u64;
        drop(bucket);
        let seconds = 1 + random_below(spread.clamp(1, MAX_RETRY_AFTER_SECS));
        Err(ApiError::Overloaded {
            limit: "new event streams",
            retry_after: Duration::from_secs(seconds),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry_after(result: Result<(), ApiError>) -> Duration {
        match result {
            Err(ApiError::Overloaded { retry_after, .. }) => retry_after,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// How many of `attempts` spread evenly over `seconds` are admitted.
    async fn admitted_over(admission: &StreamAdmission, attempts: u32, seconds: u64) -> u32 {
        let pause = Duration::from_secs(seconds) / attempts;
        let mut admitted = 0;
        for _ in 0..attempts {
            if admission.admit().is_ok() {
                admitted += 1;
            }
            tokio::time::advance(pause).await;
        }
        admitted
    }

    #[tokio::test(start_paused = true)]
    async fn no_second_admits_more_than_the_rate_and_every_second_nearly_as_many() {
        let admission = StreamAdmission::new(2_000);

        let first_second = admitted_over(&admission, 10_000, 1).await;
        let next_three = admitted_over(&admission, 30_000, 3).await;

        assert!((1_950..=2_000).contains(&first_second), "{first_second}");
        assert!((5_900..=6_000).contains(&next_three), "{next_three}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_small_rate_admits_one_at_once_then_one_a_second_or_so() {
        let admission = StreamAdmission::new(2);
        admission.admit().expect("the bucket's one token");
        let refused = retry_after(admission.admit());
        assert_eq!(refused, Duration::from_secs(1));

        tokio::time::advance(Duration::from_millis(990)).await;
        assert!(admission.admit().is_err(), "not before a second");
        tokio::time::advance(Duration::from_millis(20)).await;
        admission.admit().expect("refilled after a second");
    }

    #[tokio::test(start_paused = true)]
    async fn the_more_are_refused_the_wider_their_retries_are_spread() {
        let admission = StreamAdmission::new(10);
        admission.admit().expect("the bucket's one token");
        let waits: Vec<u64> = (0..400)
            .map(|_| retry_after(admission.admit()).as_secs())
            .collect();

        assert!(waits.iter().all(|wait| (1..=41).contains(wait)));
        let late = waits[300..].iter().filter(|wait| **wait > 10).count();
        assert!(
            late > 50,
            "the last refused spread over 40 s, {late} of 100 beyond 10 s"
        );
        assert!(
            waits[..10].iter().all(|wait| *wait == 1),
            "the first ten wait a second"
        );
    }
}
