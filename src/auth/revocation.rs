//! [`SessionRegistry`]: whether the session a token names is still live, answered from memory
//! at steady state, and the open streams to end the moment it is not.
//!
//! The database is the truth (`storage::sessions`). This instance learns that a session ended
//! three ways: it ended it itself (logout), the bus says another instance did (milliseconds),
//! or the database says so when it is looked at every [`POLL_INTERVAL`] (an operator's
//! `docpulse admin end-sessions`, or news the bus lost). When the bus says news may have been
//! lost, every session believed live is looked up again at its next use.
//!
//! **Invariant:** a token of an ended session is refused on every instance within about one
//! poll interval of the end, and at once on the instance that ended it; its open streams end
//! with `auth_expired` as soon as the instance learns of it.
//! **Invariant:** at most `capacity` sessions are remembered, plus those with open streams
//! (themselves bounded by the connection limit); a forgotten one is looked up again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::Waker;
use std::time::Duration;

use futures_util::task::AtomicWaker;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::unix_millis;
use crate::error::ApiError;
use crate::events::{EventBus, SessionNews};
use crate::storage::Pool;
use crate::storage::sessions::{self, SessionState};

/// How often the database is asked which sessions ended lately.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How far back each look at the database reaches: ends written by an instance whose clock
/// lags this one's by less than this are still seen.
const POLL_REACH_MS: i64 = 5_000;
/// Most ends read per look.
const POLL_LIMIT: i64 = 1_000;
/// How often expired sessions are deleted from the database.
const FORGET_INTERVAL: Duration = Duration::from_secs(3600);

/// Answers "is this session live?"; cheap to clone.
#[derive(Clone)]
pub struct SessionRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    event_bus: Arc<dyn EventBus>,
    known: Mutex<Known>,
    capacity: usize,
}

#[derive(Default)]
struct Known {
    /// What this instance believes of each session it met.
    states: HashMap<Arc<str>, SessionState>,
    /// The open streams of each session, to end when it ends.
    streams: HashMap<Arc<str>, Vec<Weak<StreamEnd>>>,
}

/// Tells one stream that its session ended, and wakes it.
#[derive(Debug, Default)]
pub struct StreamEnd {
    ended: AtomicBool,
    waker: AtomicWaker,
}

impl StreamEnd {
    /// True once the session ended; `waker` is woken when it does.
    pub fn ended(&self, waker: &Waker) -> bool {
        self.waker.register(waker);
        self.ended.load(Ordering::Acquire)
    }

    fn end(&self) {
        self.ended.store(true, Ordering::Release);
        self.waker.wake();
    }
}

impl SessionRegistry {
    /// A registry over `pool`'s sessions, remembering at most `capacity` of them, that
    /// announces ends on `event_bus`.
    pub fn new(pool: Pool, event_bus: Arc<dyn EventBus>, capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                event_bus,
                known: Mutex::new(Known::default()),
                capacity: capacity.max(1),
            }),
        }
    }

    /// Starts listening to the bus's news and polling the database, on `tasks`, until
    /// `shutdown`.
    pub fn start(&self, tasks: &TaskTracker, shutdown: CancellationToken) {
        tasks.spawn(self.clone().follow(shutdown));
    }

    /// Refuses session `sid` once it ended (or when it never existed).
    ///
    /// # Errors
    ///
    /// [`ApiError::SessionEnded`]; internal when the database fails.
    pub async fn check(&self, sid: &str) -> Result<(), ApiError> {
        let known = self.known_state(sid);
        let state = match known {
            Some(state) => state,
            None => {
                let state = sessions::state(&self.inner.pool, sid).await?;
                self.remember(sid, state);
                state
            }
        };
        match state {
            SessionState::Live { expires_at_ms } if expires_at_ms > unix_millis() => Ok(()),
            _ => Err(ApiError::SessionEnded),
        }
    }

    /// Ends session `sid`: in the database, here at once, and on the other instances through
    /// the bus.
    ///
    /// # Errors
    ///
    /// The database fails.
    pub async fn end(&self, sid: &str) -> sqlx::Result<()> {
        sessions::end(&self.inner.pool, sid).await?;
        self.ended(sid);
        if let Err(error) = self.inner.event_bus.announce_session_end(sid).await {
            // The other instances read it from the database within a poll.
            tracing::warn!(%error, "cannot announce an ended session on the bus");
        }
        Ok(())
    }

    /// A handle that says when session `sid` ends, for one of its streams.
    pub fn watch(&self, sid: &str) -> Arc<StreamEnd> {
        let end = Arc::new(StreamEnd::default());
        let mut known = self.lock();
        if known.states.get(sid) == Some(&SessionState::Ended) {
            end.end();
        }
        let streams = known.streams.entry(sid.into()).or_default();
        streams.retain(|stream| stream.strong_count() > 0);
        streams.push(Arc::downgrade(&end));
        end
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.inner
            .known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn known_state(&self, sid: &str) -> Option<SessionState> {
        self.lock().states.get(sid).copied()
    }

    fn remember(&self, sid: &str, state: SessionState) {
        let mut known = self.lock();
        if known.states.len() >= self.inner.capacity && !known.states.contains_key(sid) {
            // Forget what is cheapest to learn again: everything of sessions without a
            // stream (the database still knows it).
            let Known { states, streams } = &mut *known;
            states.retain(|sid, _| streams.contains_key(sid));
        }
        known.states.insert(sid.into(), state);
    }

    /// Records that `sid` ended and ends its streams.
    fn ended(&self, sid: &str) {
        self.remember(sid, SessionState::Ended);
        let streams = self.lock().streams.remove(sid);
        for stream in streams.into_iter().flatten() {
            if let Some(stream) = stream.upgrade() {
                stream.end();
            }
        }
    }

    /// Forgets every session believed live, so each is looked up again at its next use, and
    /// looks up those with open streams now.
    async fn recheck(&self) {
        let watched: Vec<Arc<str>> = {
            let mut known = self.lock();
            known
                .states
                .retain(|_, state| *state == SessionState::Ended);
            known.streams.keys().cloned().collect()
        };
        for sid in watched {
            match sessions::state(&self.inner.pool, &sid).await {
                Ok(SessionState::Ended) => self.ended(&sid),
                Ok(state) => self.remember(&sid, state),
                Err(error) => tracing::warn!(%error, "cannot check a session"),
            }
        }
    }

    /// Ends what the database says ended lately.
    async fn poll(&self) {
        let since = unix_millis().saturating_sub(POLL_REACH_MS);
        match sessions::ended_since(&self.inner.pool, since, POLL_LIMIT).await {
            Ok(ended) => {
                for (sid, _) in ended {
                    if self.known_state(&sid) != Some(SessionState::Ended)
                        || self.lock().streams.contains_key(sid.as_str())
                    {
                        self.ended(&sid);
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read the ended sessions"),
        }
        // Streams that ended on their own leave their slots behind.
        self.lock().streams.retain(|_, streams| {
            streams.retain(|stream| stream.strong_count() > 0);
            !streams.is_empty()
        });
    }

    async fn follow(self, shutdown: CancellationToken) {
        let mut news = self.inner.event_bus.session_news();
        let mut polls = tokio::time::interval(POLL_INTERVAL);
        let mut forgets = tokio::time::interval(FORGET_INTERVAL);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                heard = news.recv() => match heard {
                    Ok(SessionNews::Ended(sid)) => self.ended(&sid),
                    Ok(SessionNews::Lost) | Err(RecvError::Lagged(_)) => self.recheck().await,
                    Err(RecvError::Closed) => return,
                },
                _ = polls.tick() => self.poll().await,
                _ = forgets.tick() => {
                    if let Err(error) = sessions::forget_expired(&self.inner.pool, unix_millis()).await {
                        tracing::warn!(%error, "cannot forget expired sessions");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::Wake;

    use super::*;
    use crate::config::EventsConfig;
    use crate::events::InMemoryEventBus;
    use crate::metrics::Metrics;
    use crate::storage::{self, projects};

    struct CountWakes(std::sync::atomic::AtomicUsize);

    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    async fn registry() -> (SessionRegistry, Pool, tempfile::TempDir) {
        let (pool, data_dir) = storage::test_pool().await;
        projects::create_user(&pool, "user_1", "ada@example.com", "hash")
            .await
            .expect("a user");
        let bus = Arc::new(InMemoryEventBus::start(
            EventsConfig::bounded(Duration::ZERO, 16, 16),
            Arc::new(Metrics::new()),
            &TaskTracker::new(),
            CancellationToken::new(),
        ));
        (SessionRegistry::new(pool.clone(), bus, 2), pool, data_dir)
    }

    #[tokio::test]
    async fn a_live_session_is_remembered_and_an_ended_one_refused_and_its_streams_woken() {
        let (registry, pool, _data_dir) = registry().await;
        let far = unix_millis() + 3_600_000;
        sessions::create(&pool, "ses_1", "user_1", far)
            .await
            .expect("a session");
        registry.check("ses_1").await.expect("live");
        assert!(matches!(
            registry.check("ses_unknown").await,
            Err(ApiError::SessionEnded)
        ));

        let stream = registry.watch("ses_1");
        let wakes = Arc::new(CountWakes(0.into()));
        let waker = Waker::from(wakes.clone());
        assert!(!stream.ended(&waker));
        registry.end("ses_1").await.expect("ended");
        assert!(stream.ended(&waker));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "the stream was woken");
        assert!(matches!(
            registry.check("ses_1").await,
            Err(ApiError::SessionEnded)
        ));
        assert!(
            registry.watch("ses_1").ended(&waker),
            "late streams end at once"
        );
    }

    #[tokio::test]
    async fn an_end_written_elsewhere_is_found_by_the_poll() {
        let (registry, pool, _data_dir) = registry().await;
        let far = unix_millis() + 3_600_000;
        sessions::create(&pool, "ses_1", "user_1", far)
            .await
            .expect("a session");
        registry.check("ses_1").await.expect("live, and remembered");
        let stream = registry.watch("ses_1");
        // Another instance, or the admin command, ends it in the database only.
        sessions::end(&pool, "ses_1").await.expect("ended");
        registry.check("ses_1").await.expect("still believed live");
        registry.poll().await;
        assert!(stream.ended(Waker::noop()));
        assert!(registry.check("ses_1").await.is_err());
    }

    #[tokio::test]
    async fn memory_is_bounded_and_a_forgotten_session_is_looked_up_again() {
        let (registry, pool, _data_dir) = registry().await;
        let far = unix_millis() + 3_600_000;
        for sid in ["ses_1", "ses_2", "ses_3"] {
            sessions::create(&pool, sid, "user_1", far)
                .await
                .expect("a session");
            registry.check(sid).await.expect("live");
        }
        assert!(registry.lock().states.len() <= 2);
        sessions::end(&pool, "ses_1").await.expect("ended");
        assert!(registry.check("ses_1").await.is_err(), "looked up again");
    }
}
