//! When a stream counts as dead: nothing read for the silence limit.
//!
//! A read only notes its time. One timer, set for the limit, checks when it fires and waits
//! out the rest if a read came meanwhile. So a stream costs one timer per silence limit, not
//! a timer set and cleared per read: at 1,000 reads a second those took 3 µs of main thread
//! a read (`BENCH_PROFILE`), and left a callback a read for the garbage collector.

use std::time::Duration;

/// What the timer finds when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing was read for the whole limit: the stream is dead.
    Silent,
    /// A read came since; check again after this long.
    WaitMore(Duration),
}

/// The silence of one stream, in the browser's clock (milliseconds, as `Date.now()`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Silence {
    limit: Duration,
    last_read_ms: f64,
}

impl Silence {
    /// A stream that may stay silent for `limit`, counted from `now_ms`.
    pub fn new(limit: Duration, now_ms: f64) -> Self {
        Self {
            limit,
            last_read_ms: now_ms,
        }
    }

    /// A read began at `now_ms`: the silence counts from there.
    pub fn read_at(&mut self, now_ms: f64) {
        self.last_read_ms = now_ms;
    }

    /// What a timer firing at `now_ms` finds.
    pub fn check(&self, now_ms: f64) -> Verdict {
        let quiet = Duration::from_secs_f64((now_ms - self.last_read_ms).max(0.0) / 1000.0);
        match self.limit.checked_sub(quiet) {
            Some(rest) if !rest.is_zero() => Verdict::WaitMore(rest),
            _ => Verdict::Silent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(75);

    #[test]
    fn a_stream_read_from_within_the_limit_is_checked_again_when_its_silence_would_end() {
        let mut silence = Silence::new(LIMIT, 1_000.0);
        silence.read_at(31_000.0);

        assert_eq!(
            silence.check(76_000.0),
            Verdict::WaitMore(Duration::from_secs(30))
        );
        assert_eq!(silence.check(106_000.0), Verdict::Silent);
    }

    #[test]
    fn a_stream_never_read_is_silent_at_the_limit_and_a_clock_going_back_counts_as_no_silence() {
        let silence = Silence::new(LIMIT, 1_000.0);

        assert_eq!(silence.check(76_000.0), Verdict::Silent);
        assert_eq!(silence.check(500.0), Verdict::WaitMore(LIMIT));
    }
}
