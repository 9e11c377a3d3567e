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

/// A number in `[0, 1)` for jitter: the clock's nanoseconds and a counter, mixed
/// (SplitMix64). Not for anything but spreading retries.
pub fn jitter() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};

    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since_epoch| u64::from(since_epoch.subsec_nanos()));
    let mut mixed = nanos
        ^ CALLS
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    mixed ^= mixed >> 31;
    // The top 53 bits make a uniform double in [0, 1).
    (mixed >> 11) as f64 / (1_u64 << 53) as f64
}
