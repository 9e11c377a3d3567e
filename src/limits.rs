//! Bounds on work anyone can ask for: [`Gate`] (so many at once, so many waiting) and
//! [`RateLimiter`] (so many per minute per key).
//!
//! **Invariant:** a refusal costs a few atomic operations or one short lock, never the work it
//! refuses; nothing here waits without a bound or keeps more than its capacity of keys.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::error::ApiError;

/// Lets `concurrency` callers work at once and `queue` more wait their turn; beyond that a
/// caller is refused at once with `503 overloaded`. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Gate {
    /// The callers working.
    working: Arc<Semaphore>,
    /// The callers working or waiting: `concurrency + queue` permits.
    admitted: Arc<Semaphore>,
    /// Which limit a refusal names.
    limit: &'static str,
}

/// A caller's turn through a [`Gate`]; the next caller goes when it is dropped.
#[derive(Debug)]
pub struct GatePass {
    _working: OwnedSemaphorePermit,
    _admitted: OwnedSemaphorePermit,
}

/// How long a caller refused by a full [`Gate`] is told to wait.
const GATE_RETRY_AFTER: Duration = Duration::from_secs(1);

impl Gate {
    /// A gate for `concurrency` (at least 1) at once and `queue` waiting; `limit` names it
    /// in refusals ("password checks").
    pub fn new(concurrency: usize, queue: usize, limit: &'static str) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            working: Arc::new(Semaphore::new(concurrency)),
            admitted: Arc::new(Semaphore::new(concurrency.saturating_add(queue))),
            limit,
        }
    }

    /// Waits for a turn, or refuses at once when `concurrency + queue` callers are in.
    ///
    /// # Errors
    ///
    /// [`ApiError::Overloaded`] when the gate is full.
    pub async fn enter(&self) -> Result<GatePass, ApiError> {
        let admitted =
            self.admitted
                .clone()
                .try_acquire_owned()
                .map_err(|_| ApiError::Overloaded {
                    limit: self.limit,
                    retry_after: GATE_RETRY_AFTER,
                })?;
        let working = self
            .working
            .clone()
            .acquire_owned()
            .await
            .expect("the gate never closes its semaphore");
        Ok(GatePass {
            _working: working,
            _admitted: admitted,
        })
    }
}

/// Why a [`RateLimiter`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The key used its allowance; it may try again after this long.
    Limited(Duration),
    /// The limiter remembers as many keys as it may and none has expired.
    Full,
}

/// So many events per minute per key, with a burst of the same size: the generic cell rate
/// algorithm, one instant per key ("theoretical arrival time").
///
/// **Invariant:** at most `capacity` keys are remembered. A key whose instant has passed is
/// as good as forgotten and is dropped when room is needed (at most one sweep a second); when
/// every key is still limited, a new key is refused rather than one forgotten, so a flood of
/// new keys cannot wash out the limits of the others.
#[derive(Debug)]
pub struct RateLimiter<K> {
    state: Mutex<LimiterState<K>>,
    /// Time one event costs: a minute divided by the rate.
    interval: Duration,
    /// How far ahead of now a key's instant may run: the burst.
    tolerance: Duration,
    capacity: usize,
}

#[derive(Debug)]
struct LimiterState<K> {
    instants: HashMap<K, Instant>,
    last_sweep: Option<Instant>,
}

/// The shortest time between two sweeps of expired keys when the limiter is full.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    /// `per_minute` events per minute per key (at least 1), in bursts of as many, for at
    /// most `capacity` keys at once.
    pub fn per_minute(per_minute: u32, capacity: usize) -> Self {
        let interval = Duration::from_secs(60) / per_minute.max(1);
        Self {
            state: Mutex::new(LimiterState {
                instants: HashMap::new(),
                last_sweep: None,
            }),
            interval,
            tolerance: interval * (per_minute.max(1) - 1),
            capacity: capacity.max(1),
        }
    }

    /// Counts one event of `key` at `now`, or says why not.
    ///
    /// # Errors
    ///
    /// [`Refusal::Limited`] when `key` used its allowance, [`Refusal::Full`] when there is no
    /// room to remember a new key.
    pub fn acquire(&self, key: &K, now: Instant) -> Result<(), Refusal> {
        self.check(key, now)?;
        self.record(key, now)
    }

    /// Whether one more event of `key` at `now` would be allowed, counting nothing.
    ///
    /// # Errors
    ///
    /// [`Refusal::Limited`] when `key` used its allowance.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Refusal> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match state.instants.get(key) {
            Some(&instant) => self.allowance(instant, now),
            None => Ok(()),
        }
    }

    /// Counts one event of `key` at `now`, allowed or not (a failed login that was let
    /// through still counts).
    ///
    /// # Errors
    ///
    /// [`Refusal::Full`] when there is no room to remember a new key.
    pub fn record(&self, key: &K, now: Instant) -> Result<(), Refusal> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !state.instants.contains_key(key) && state.instants.len() >= self.capacity {
            let may_sweep = state
                .last_sweep
                .is_none_or(|last| now.duration_since(last) >= SWEEP_INTERVAL);
            if may_sweep {
                state.instants.retain(|_, instant| *instant > now);
                state.last_sweep = Some(now);
            }
            if state.instants.len() >= self.capacity {
                return Err(Refusal::Full);
            }
        }
        let instant = state.instants.entry(key.clone()).or_insert(now);
        *instant = (*instant).max(now) + self.interval;
        Ok(())
    }

    fn allowance(&self, instant: Instant, now: Instant) -> Result<(), Refusal> {
        let ahead = instant.saturating_duration_since(now);
        if ahead <= self.tolerance {
            Ok(())
        } else {
            Err(Refusal::Limited(ahead - self.tolerance))
        }
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .instants
            .len()
    }

    /// True when no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_one_event_per_interval() {
        let limiter = RateLimiter::per_minute(6, 100);
        let start = Instant::now();
        for _ in 0..6 {
            assert_eq!(limiter.acquire(&"a", start), Ok(()));
        }
        assert_eq!(
            limiter.acquire(&"a", start),
            Err(Refusal::Limited(Duration::from_secs(10)))
        );
        assert_eq!(limiter.acquire(&"b", start), Ok(()), "keys are apart");
        assert_eq!(
            limiter.acquire(&"a", start + Duration::from_secs(9)),
            Err(Refusal::Limited(Duration::from_secs(1)))
        );
        assert_eq!(
            limiter.acquire(&"a", start + Duration::from_secs(10)),
            Ok(())
        );
        assert_eq!(
            limiter.acquire(&"a", start + Duration::from_secs(70)),
            Ok(()),
            "a quiet minute restores the burst"
        );
    }

    #[test]
    fn check_counts_nothing_and_record_counts_even_past_the_limit() {
        let limiter = RateLimiter::per_minute(2, 100);
        let now = Instant::now();
        assert_eq!(limiter.check(&"a", now), Ok(()));
        assert!(limiter.is_empty(), "a check remembers nothing");
        limiter.record(&"a", now).expect("room");
        limiter.record(&"a", now).expect("room");
        assert_eq!(
            limiter.check(&"a", now),
            Err(Refusal::Limited(Duration::from_secs(30)))
        );
        limiter.record(&"a", now).expect("room");
        assert_eq!(
            limiter.check(&"a", now),
            Err(Refusal::Limited(Duration::from_secs(60)))
        );
    }

    #[test]
    fn a_full_limiter_forgets_expired_keys_and_refuses_rather_than_forget_live_ones() {
        let limiter = RateLimiter::per_minute(1, 2);
        let start = Instant::now();
        limiter.acquire(&1, start).expect("room");
        limiter.acquire(&2, start).expect("room");
        assert_eq!(limiter.acquire(&3, start), Err(Refusal::Full));
        assert_eq!(
            limiter.acquire(&1, start),
            Err(Refusal::Limited(Duration::from_secs(60))),
            "a live key was not forgotten"
        );
        let later = start + Duration::from_secs(61);
        assert_eq!(limiter.acquire(&3, later), Ok(()), "expired keys made room");
        assert_eq!(limiter.len(), 1);
    }

    #[tokio::test]
    async fn a_gate_lets_some_work_some_wait_and_refuses_the_rest() {
        let gate = Gate::new(1, 1, "password checks");
        let first = gate.enter().await.expect("works at once");
        let waiting = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.enter().await.map(|_| ()) })
        };
        tokio::task::yield_now().await;
        match gate.enter().await {
            Err(ApiError::Overloaded { limit, retry_after }) => {
                assert_eq!(limit, "password checks");
                assert_eq!(retry_after, Duration::from_secs(1));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        drop(first);
        waiting
            .await
            .expect("no panic")
            .expect("the waiting caller got its turn");
        gate.enter().await.expect("room again");
    }
}
