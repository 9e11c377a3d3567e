//! [`Backoff`]: how long the stream client waits before reconnecting.
//!
//! Exponential from a base (the server's `retry:` when it sent one), capped, with "equal
//! jitter": half the delay is fixed, half random, so clients that lost the same server do
//! not come back in step.
//!
//! **Invariant:** the delay never exceeds the cap and never goes below half the base; the
//! randomness is passed in, so the schedule is testable.

use std::time::Duration;

/// First delay when the server did not say (`retry:`).
pub const DEFAULT_BASE: Duration = Duration::from_secs(1);
/// Longest delay between attempts; the client never gives up while the page is open.
pub const DEFAULT_CAP: Duration = Duration::from_secs(30);

/// Reconnection delays for one connection.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(DEFAULT_BASE, DEFAULT_CAP)
    }
}

impl Backoff {
    /// Delays that start at `base` (at most `cap`) and double up to `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base: base.min(cap),
            cap,
            attempt: 0,
        }
    }

    /// Takes the server's `retry:` (milliseconds) as the new base, raising the cap to it if
    /// needed: the server knows best when it can take clients back.
    pub fn set_base_millis(&mut self, retry: u64) {
        self.base = Duration::from_millis(retry);
        self.cap = self.cap.max(self.base);
    }

    /// Attempts made since the last success.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The delay before the next attempt; `random` is uniform in `[0, 1)`.
    pub fn next_delay(&mut self, random: f64) -> Duration {
        let factor = 2_u32.saturating_pow(self.attempt.min(16));
        let ceiling = self.base.saturating_mul(factor).min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        half + half.mul_f64(random.clamp(0.0, 1.0))
    }

    /// The delay before the next attempt when the server said to wait `retry_after`
    /// (`Retry-After`): at least that, plus up to half as much again (at least up to a
    /// second) at random, so that clients refused together do not come back together; never
    /// less than the usual backoff. `random` is uniform in `[0, 1)`.
    pub fn next_delay_after(&mut self, retry_after: Duration, random: f64) -> Duration {
        let usual = self.next_delay(random);
        let spread = (retry_after / 2).max(Duration::from_secs(1));
        usual.max(retry_after + spread.mul_f64(random.clamp(0.0, 1.0)))
    }

    /// The connection worked: the next failure starts from the base again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_in_the_upper_half() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let lows: Vec<u64> = (0..7)
            .map(|_| backoff.next_delay(0.0).as_millis() as u64)
            .collect();
        assert_eq!(lows, [500, 1000, 2000, 4000, 8000, 15_000, 15_000]);
        let mut backoff = Backoff::default();
        let highs: Vec<u64> = (0..7)
            .map(|_| backoff.next_delay(1.0).as_millis() as u64)
            .collect();
        assert_eq!(highs, [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
        assert_eq!(backoff.attempt(), 7);
    }

    #[test]
    fn a_success_resets_and_the_server_retry_sets_the_base() {
        let mut backoff = Backoff::default();
        for _ in 0..5 {
            backoff.next_delay(0.5);
        }
        backoff.reset();
        backoff.set_base_millis(200);
        assert_eq!(backoff.next_delay(1.0), Duration::from_millis(200));
        assert_eq!(backoff.next_delay(0.0), Duration::from_millis(200));
    }

    #[test]
    fn a_retry_after_is_waited_at_least_with_jitter_on_top() {
        let first = |retry_after: u64, random: f64| {
            Backoff::default().next_delay_after(Duration::from_secs(retry_after), random)
        };
        assert_eq!(first(10, 0.0), Duration::from_secs(10));
        assert_eq!(first(10, 0.5), Duration::from_millis(12_500));
        assert_eq!(
            first(1, 0.99),
            Duration::from_millis(1990),
            "a short Retry-After still spreads clients over a second"
        );
        let mut backoff = Backoff::default();
        backoff.next_delay_after(Duration::from_secs(1), 0.5);
        assert_eq!(backoff.attempt(), 1, "it counts as an attempt");
        let mut late = Backoff::default();
        for _ in 0..6 {
            late.next_delay(0.0);
        }
        assert!(
            late.next_delay_after(Duration::from_secs(1), 0.0) >= Duration::from_secs(15),
            "never shorter than the usual backoff"
        );
    }

    #[test]
    fn many_attempts_never_overflow_or_pass_the_cap() {
        let mut backoff = Backoff::new(Duration::from_secs(3600), Duration::from_secs(30));
        for _ in 0..1000 {
            assert!(backoff.next_delay(0.99) <= Duration::from_secs(30));
        }
    }
}
