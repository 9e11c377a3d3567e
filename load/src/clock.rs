//! Wall-clock time in Unix microseconds, the unit the publisher stamps events with and
//! latencies are measured in.
//!
//! **Invariant:** the publisher and the subscribers read the same clock, so a latency is the
//! difference of two readings of it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch now; 0 if the clock is set before 1970.
pub fn unix_micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since_epoch| u64::try_from(since_epoch.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Seconds since the Unix epoch now; 0 if the clock is set before 1970.
pub fn unix_secs_now() -> u64 {
    unix_micros_now() / 1_000_000
}
