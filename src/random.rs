//! Random hex strings for ids and epochs, and random numbers for jitter: the one place the
//! server draws them.
//!
//! **Invariant:** two calls in one process never return the same string, even when the OS
//! has no randomness to give (the clock and a counter stand in).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// `BYTES` random bytes as `2 × BYTES` lowercase hex digits.
pub fn random_hex<const BYTES: usize>() -> String {
    random_bytes::<BYTES>()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A number in `0..bound` (0 when `bound` is 0), for spreading retries; not for secrets.
pub fn random_below(bound: u64) -> u64 {
    if bound == 0 {
        return 0;
    }
    u64::from_le_bytes(random_bytes::<8>()) % bound
}

/// `BYTES` random bytes; the clock and a counter stand in when the OS has none to give.
fn random_bytes<const BYTES: usize>() -> [u8; BYTES] {
    let mut bytes = [0_u8; BYTES];
    if getrandom::fill(&mut bytes).is_err() {
        static CALLS: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        let call = CALLS.fetch_add(1, Ordering::Relaxed);
        let stand_in = (nanos ^ (u128::from(call) << 64)).to_le_bytes();
        for (byte, fallback) in bytes.iter_mut().zip(stand_in.iter().cycle()) {
            *byte = *fallback;
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_strings_have_two_digits_per_byte_and_differ() {
        let first = random_hex::<6>();
        let second = random_hex::<6>();

        assert_eq!(first.len(), 12);
        assert!(
            first
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(first, second);
    }

    #[test]
    fn numbers_below_a_bound_stay_below_it_and_vary() {
        let drawn: Vec<u64> = (0..200).map(|_| random_below(10)).collect();

        assert!(drawn.iter().all(|number| *number < 10));
        assert!(drawn.iter().any(|number| *number != drawn[0]));
        assert_eq!(random_below(0), 0);
    }
}
