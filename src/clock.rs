//! The wall clock as the server writes it: RFC 3339 timestamps (events, heartbeats, rows) and
//! Unix milliseconds (leases, sessions, the outbox).
//!
//! Its own home, so that storage and events both use it and neither depends on the other.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in ISO 8601 (UTC, milliseconds): the `timestamp` of events and heartbeats, and the
/// `created_at` / `updated_at` of rows.
pub fn timestamp() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Now, in milliseconds since the Unix epoch (0 before 1970).
pub fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

/// `duration` in whole milliseconds, saturating.
pub fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc_3339_utc_with_milliseconds() {
        let now = timestamp();
        assert_eq!(now.len(), "2026-11-29T12:00:00.000Z".len(), "{now}");
        assert!(now.ends_with('Z'));
        assert!(unix_millis() > 1_700_000_000_000);
        assert_eq!(millis(Duration::from_secs(2)), 2000);
        assert_eq!(millis(Duration::MAX), i64::MAX);
    }
}
