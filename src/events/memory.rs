//! [`InMemoryEventBus`]: the event bus of a single instance, the default.
//!
//! Per project: a mutex over the history ring, and a bounded `tokio::sync::broadcast` of
//! frames whose capacity is the subscriber backlog. Publishing goes through the shared
//! [`CoalescingPublisher`], which appends here; one task forgets idle projects.
//!
//! **Invariant:** appending to the history and sending to the broadcast happen under the
//! project's lock, and so does subscribing, so a subscriber's replay and live frames meet
//! exactly: no gap, no duplicate.
//! **Invariant:** a lock is never held across an `.await`.
//! **Invariant:** a project with no subscriber and no event or subscription for
//! `PROJECT_IDLE_SECS` is forgotten, history included, so memory follows the projects in use. Its next log has a new epoch, so a resume from an id of the forgotten one
//! gets `resync`, never a wrong replay; an operation that raced the eviction retries on the
//! new log.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use app::protocol::{EventId, NewEvent, ProjectId};

use crate::config::EventsConfig;
use crate::events::history::{History, Resume};
use crate::events::publisher::{Append, CoalescingPublisher};
use crate::events::{
    BusError, EventBus, Frame, Live, Publish, SESSION_NEWS_BACKLOG, SessionNews, Subscription,
    encode_frame, new_epoch,
};
use crate::metrics::Metrics;

/// The in-memory event bus; cheap to clone.
#[derive(Clone)]
pub struct InMemoryEventBus {
    inner: Arc<Inner>,
    publisher: Arc<CoalescingPublisher<Inner>>,
}

struct Inner {
    config: EventsConfig,
    projects: RwLock<HashMap<ProjectId, Arc<ProjectLog>>>,
    /// Ended sessions, for this one instance's listeners.
    session_news: broadcast::Sender<SessionNews>,
}

struct ProjectLog {
    /// Names this log's history: a restart or an eviction loses it, so ids of the old one
    /// resync.
    epoch: String,
    state: Mutex<ProjectState>,
    /// Live frames; a receiver more than `subscriber_backlog` behind lags and resyncs.
    live: broadcast::Sender<Live>,
}

struct ProjectState {
    history: History,
    /// The last publish or subscription.
    last_active: Instant,
    /// Set, under this lock, when the log is forgotten: whoever holds it looks again.
    evicted: bool,
}

impl InMemoryEventBus {
    /// A bus with `config`'s bounds; its window closer and idle sweeps run on `tasks` until
    /// `shutdown`.
    pub fn start(
        config: EventsConfig,
        metrics: Arc<Metrics>,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        let inner = Arc::new(Inner {
            config,
            projects: RwLock::new(HashMap::new()),
            session_news: broadcast::channel(SESSION_NEWS_BACKLOG).0,
        });
        let publisher =
            CoalescingPublisher::start(inner.clone(), &inner.config, metrics, tasks, &shutdown);
        tasks.spawn(forget_idle_projects(inner.clone(), shutdown));
        Self { inner, publisher }
    }
}

impl Inner {
    fn project(&self, project: &ProjectId) -> Arc<ProjectLog> {
        let projects = self.projects.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(log) = projects.get(project) {
            return log.clone();
        }
        drop(projects);
        let mut projects = self
            .projects
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        projects
            .entry(project.clone())
            .or_insert_with(|| {
                Arc::new(ProjectLog {
                    epoch: new_epoch(),
                    state: Mutex::new(ProjectState {
                        history: History::new(self.config.retain_events, self.config.retain_bytes),
                        last_active: Instant::now(),
                        evicted: false,
                    }),
                    live: broadcast::channel(self.config.subscriber_backlog).0,
                })
            })
            .clone()
    }

    /// Runs `operation` on `project`'s log under its lock, marking the project active; looks
    /// again when the log it found was forgotten in between.
    fn with_project<T>(
        &self,
        project: &ProjectId,
        mut operation: impl FnMut(&Arc<ProjectLog>, &mut ProjectState) -> T,
    ) -> T {
        loop {
            let log = self.project(project);
            let mut state = log.state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.evicted {
                continue;
            }
            state.last_active = Instant::now();
            return operation(&log, &mut state);
        }
    }

    /// Forgets the projects idle since `idle_since`, with no subscriber.
    fn forget_idle(&self, idle_since: Instant) {
        let mut projects = self
            .projects
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        projects.retain(|_, log| {
            let mut state = log.state.lock().unwrap_or_else(PoisonError::into_inner);
            let idle = log.live.receiver_count() == 0 && state.last_active <= idle_since;
            state.evicted = idle;
            !idle
        });
    }
}

impl Append for Inner {
    async fn append(&self, event: NewEvent) -> Result<EventId, BusError> {
        let project = event.project_id.clone();
        let mut event = Some(event);
        Ok(self.with_project(&project, |log, state| {
            let event = event.take().expect("an operation runs once, on a live log");
            let seq = state.history.last_seq() + 1;
            let id = EventId {
                epoch: log.epoch.clone(),
                seq,
            };
            let frame = Frame {
                seq,
                published_at: Instant::now(),
                bytes: Bytes::from(encode_frame(event, Some(&id))),
            };
            state.history.push(frame.clone());
            // An error only means nobody listens right now.
            let _ = log.live.send(Live::Frame(frame));
            id
        }))
    }
}

/// Forgets idle projects, looking every half `PROJECT_IDLE_SECS`, until `shutdown`.
async fn forget_idle_projects(inner: Arc<Inner>, shutdown: CancellationToken) {
    let idle = inner.config.project_idle;
    let mut sweeps = tokio::time::interval(idle / 2);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            now = sweeps.tick() => {
                if let Some(idle_since) = now.checked_sub(idle) {
                    inner.forget_idle(idle_since);
                }
            }
        }
    }
}

#[async_trait]
impl EventBus for InMemoryEventBus {
    async fn subscribe(
        &self,
        project: &ProjectId,
        last_event_id: Option<&str>,
    ) -> Result<Subscription, BusError> {
        Ok(self.inner.with_project(project, |log, state| {
            let live = log.live.subscribe();
            let last_seq = state.history.last_seq();
            match last_event_id.map(|id| state.history.resume(&log.epoch, id)) {
                None => Subscription::new(None, Vec::new(), live, last_seq),
                Some(Resume::Replay(frames)) => Subscription::new(None, frames, live, last_seq),
                Some(Resume::Resync(reason)) => {
                    Subscription::new(Some(reason), Vec::new(), live, last_seq)
                }
            }
        }))
    }

    async fn last_event_id(&self, project: &ProjectId) -> Result<EventId, BusError> {
        Ok(self.inner.with_project(project, |log, state| EventId {
            epoch: log.epoch.clone(),
            seq: state.history.last_seq(),
        }))
    }

    /// None: this history lives and dies with the process, and with the relay that published
    /// into it, which remembers what it published until it has deleted the rows.
    async fn published_origins(&self, _project: &ProjectId) -> Result<HashSet<i64>, BusError> {
        Ok(HashSet::new())
    }

    fn resync_local(&self, project: &ProjectId, reason: &'static str) {
        let log = self
            .inner
            .projects
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(project)
            .cloned();
        if let Some(log) = log {
            // An error only means nobody listens right now.
            let _ = log.live.send(Live::Resync(reason));
        }
    }

    async fn announce_session_end(&self, sid: &str) -> Result<(), BusError> {
        // An error only means nobody listens right now.
        let _ = self.inner.session_news.send(SessionNews::Ended(sid.into()));
        Ok(())
    }

    fn session_news(&self) -> broadcast::Receiver<SessionNews> {
        self.inner.session_news.subscribe()
    }

    fn publisher(&self) -> &dyn Publish {
        &*self.publisher
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::FutureExt;

    use app::protocol::{DocumentChange, EntityData, EntityKind, EventType};

    use super::*;
    use crate::events::Delivery;

    fn bus(
        coalesce_ms: u64,
        retain: usize,
        backlog: usize,
    ) -> (InMemoryEventBus, CancellationToken) {
        let shutdown = CancellationToken::new();
        let config = EventsConfig::bounded(Duration::from_millis(coalesce_ms), retain, backlog);
        let bus = InMemoryEventBus::start(
            config,
            Arc::new(Metrics::new()),
            &TaskTracker::new(),
            shutdown.clone(),
        );
        (bus, shutdown)
    }

    fn project(name: &str) -> ProjectId {
        name.parse().expect("valid")
    }

    async fn epoch(bus: &InMemoryEventBus, project_name: &str) -> String {
        bus.last_event_id(&project(project_name))
            .await
            .expect("known")
            .epoch
    }

    fn update(project_name: &str, id: &str, progress: u32) -> NewEvent {
        NewEvent::single(
            EventType::Updated,
            EntityKind::Document,
            id.parse().expect("valid"),
            project(project_name),
            Some(
                DocumentChange {
                    embedded_chunks: Some(progress),
                    ..DocumentChange::default()
                }
                .to_data(),
            ),
        )
    }

    /// The next delivery if one is ready now.
    fn ready(subscription: &mut Subscription) -> Option<Delivery> {
        subscription.next().now_or_never()
    }

    #[track_caller]
    fn frame_text(delivery: Option<Delivery>) -> String {
        match delivery {
            Some(Delivery::Frame(frame)) => String::from_utf8(frame.bytes.to_vec()).expect("utf-8"),
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn subscribers_get_their_project_only_with_consecutive_ids() {
        let (bus, _shutdown) = bus(0, 16, 16);
        let mut first = bus
            .subscribe(&project("p1"), None)
            .await
            .expect("subscribes");
        let mut second = bus
            .subscribe(&project("p2"), None)
            .await
            .expect("subscribes");
        for n in 0..3 {
            bus.publish(update("p1", &format!("d{n}"), n))
                .await
                .expect("published");
            bus.publish(update("p2", &format!("e{n}"), n))
                .await
                .expect("published");
        }
        for n in 0..3 {
            let text = frame_text(ready(&mut first));
            assert!(text.starts_with(&format!("id: {}:{}\n", epoch(&bus, "p1").await, n + 1)));
            assert!(text.contains("\"projectId\":\"p1\""), "{text}");
            assert!(frame_text(ready(&mut second)).contains("\"projectId\":\"p2\""));
        }
        assert!(ready(&mut first).is_none());
    }

    #[tokio::test]
    async fn resume_replays_then_goes_live_without_gap_or_duplicate() {
        let (bus, _shutdown) = bus(0, 16, 16);
        for n in 1..=5 {
            bus.publish(update("p1", &format!("d{n}"), n))
                .await
                .expect("published");
        }
        let resume_from = format!("{}:2", epoch(&bus, "p1").await);
        let mut subscription = bus
            .subscribe(&project("p1"), Some(&resume_from))
            .await
            .expect("subscribes");
        bus.publish(update("p1", "d6", 6)).await.expect("published");
        let seqs: Vec<u64> = std::iter::from_fn(|| match ready(&mut subscription) {
            Some(Delivery::Frame(frame)) => Some(frame.seq),
            _ => None,
        })
        .collect();
        assert_eq!(seqs, vec![3, 4, 5, 6]);
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_the_backlog_lags_and_continues_live() {
        let (bus, _shutdown) = bus(0, 64, 4);
        let mut slow = bus
            .subscribe(&project("p1"), None)
            .await
            .expect("subscribes");
        for n in 1..=10 {
            bus.publish(update("p1", &format!("d{n}"), n))
                .await
                .expect("published");
        }
        match ready(&mut slow) {
            Some(Delivery::Lagged { dropped }) => assert_eq!(dropped, 6),
            other => panic!("expected a lag, got {other:?}"),
        }
        assert!(ready(&mut slow).is_none(), "the backlog was not dropped");
        bus.publish(update("p1", "d11", 11))
            .await
            .expect("published");
        match ready(&mut slow) {
            Some(Delivery::Frame(frame)) => assert_eq!(frame.seq, 11),
            other => panic!("expected the live frame, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_coalesced_into_one_update_when_the_window_closes() {
        let (bus, _shutdown) = bus(100, 64, 64);
        let mut subscription = bus
            .subscribe(&project("p1"), None)
            .await
            .expect("subscribes");
        let first = bus.publish(update("p1", "d1", 1)).await.expect("published");
        assert_eq!(first.seq, 1);
        let mut merged = Vec::new();
        for progress in 2..=5 {
            let bus = bus.clone();
            merged.push(tokio::spawn(async move {
                bus.publish(update("p1", "d1", progress)).await
            }));
        }
        tokio::task::yield_now().await;
        assert!(frame_text(ready(&mut subscription)).contains("\"embeddedChunks\":1"));
        assert!(
            ready(&mut subscription).is_none(),
            "a merged update left early"
        );

        let window_start = Instant::now();
        let delivery = tokio::time::timeout(Duration::from_secs(1), subscription.next()).await;
        assert_eq!(window_start.elapsed(), Duration::from_millis(100));
        let text = frame_text(delivery.ok());
        assert!(text.contains("\"embeddedChunks\":5"), "{text}");
        for publish in merged {
            let id = publish.await.expect("no panic").expect("published");
            assert_eq!(id.seq, 2, "merged publishers get the merged event's id");
        }
        assert!(
            bus.publisher
                .metrics()
                .render()
                .contains("docpulse_events_coalesced_total 4")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_sends_pending_updates_and_releases_their_publishers() {
        let (bus, shutdown) = bus(100, 64, 64);
        let mut subscription = bus
            .subscribe(&project("p1"), None)
            .await
            .expect("subscribes");
        bus.publish(update("p1", "d1", 1)).await.expect("published");
        let merged = {
            let bus = bus.clone();
            tokio::spawn(async move { bus.publish(update("p1", "d1", 2)).await })
        };
        tokio::task::yield_now().await;
        let start = Instant::now();
        shutdown.cancel();
        let id = tokio::time::timeout(Duration::from_secs(1), merged)
            .await
            .expect("the merged publisher was released")
            .expect("no panic")
            .expect("published");
        assert_eq!(id.seq, 2);
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "it waited for the window"
        );
        frame_text(ready(&mut subscription));
        assert!(frame_text(ready(&mut subscription)).contains("\"embeddedChunks\":2"));
        let after = bus
            .publish(update("p1", "d1", 3))
            .await
            .expect("published at once");
        assert_eq!(after.seq, 3);
    }

    #[tokio::test]
    async fn last_event_id_names_the_newest_event() {
        let (bus, _shutdown) = bus(0, 4, 4);
        let empty = bus.last_event_id(&project("p1")).await.expect("known");
        assert_eq!(empty.seq, 0);
        bus.publish(update("p1", "d1", 1)).await.expect("published");
        let id = bus.last_event_id(&project("p1")).await.expect("known");
        assert_eq!(id.to_string(), format!("{}:1", epoch(&bus, "p1").await));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_project_is_forgotten_and_a_resume_from_its_ids_resyncs() {
        let (bus, _shutdown) = bus(0, 16, 16);
        bus.publish(update("p1", "d1", 1)).await.expect("published");
        let old_id = bus.last_event_id(&project("p1")).await.expect("known");
        let watched = bus
            .subscribe(&project("p2"), None)
            .await
            .expect("subscribes");
        bus.publish(update("p2", "d1", 1)).await.expect("published");

        tokio::time::sleep(Duration::from_secs(601)).await;
        bus.inner
            .forget_idle(Instant::now() - Duration::from_secs(600));

        {
            let projects = bus.inner.projects.read().expect("not poisoned");
            assert!(!projects.contains_key(&project("p1")), "p1 was idle");
            assert!(projects.contains_key(&project("p2")), "p2 has a subscriber");
        }
        let mut resumed = bus
            .subscribe(&project("p1"), Some(&old_id.to_string()))
            .await
            .expect("subscribes");
        assert!(
            matches!(ready(&mut resumed), Some(Delivery::Resync { .. })),
            "a forgotten history is never replayed from"
        );
        let new_id = bus.publish(update("p1", "d1", 2)).await.expect("published");
        assert_ne!(new_id.epoch, old_id.epoch, "the new log has its own epoch");
        drop(watched);
    }
}
