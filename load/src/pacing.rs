//! Absolute schedules that spread work evenly over time: item i of a run at `per_second` items
//! per second is due `i / per_second` seconds after the start.
//!
//! **Invariant:** a due time depends only on the item's index, so a late item never shifts the
//! ones after it: work that fell behind catches up at once (a burst), and the average rate holds.

use std::time::Duration;

/// When item `index` is due, counted from the start, at `per_second` items per second
/// (`per_second` 0 is read as 1).
pub fn due_after(index: u64, per_second: u32) -> Duration {
    let nanos = u128::from(index) * 1_000_000_000 / u128::from(per_second.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// How long to wait after the server refused with `Retry-After: retry_after`: at least that,
/// plus up to half as much again (at least up to a second) as `random` (in `[0, 1)`) says, so
/// that clients refused together do not come back together; the browser's client waits alike.
pub fn retry_delay(retry_after: Duration, random: f64) -> Duration {
    let spread = (retry_after / 2).max(Duration::from_secs(1));
    retry_after + spread.mul_f64(random.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_waits_at_least_retry_after_with_a_spread_on_top() {
        assert_eq!(
            retry_delay(Duration::from_secs(5), 0.0),
            Duration::from_secs(5)
        );
        assert_eq!(
            retry_delay(Duration::from_secs(5), 0.5),
            Duration::from_millis(6250)
        );
        assert_eq!(
            retry_delay(Duration::from_secs(1), 0.5),
            Duration::from_millis(1500)
        );
    }

    #[test]
    fn items_are_due_at_even_intervals() {
        assert_eq!(due_after(0, 2000), Duration::ZERO);
        assert_eq!(due_after(1, 2000), Duration::from_micros(500));
        assert_eq!(due_after(2000, 2000), Duration::from_secs(1));
        assert_eq!(due_after(1, 3), Duration::from_nanos(333_333_333));
        assert_eq!(due_after(3, 3), Duration::from_secs(1));
        assert_eq!(due_after(5, 0), Duration::from_secs(5));
    }
}
