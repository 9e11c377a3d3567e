//! The event bus: publishers hand it entity events, streams subscribe to a project's frames.
//!
//! [`EventBus`] is the one interface publishers and the stream handler know; which
//! implementation runs is decided once, in `startup`. Each implementation keeps these
//! guarantees:
//!
//! **Invariant:** a project's sequence grows by one per event and ids carry the epoch of
//! the history they belong to.
//! **Invariant:** an event is serialized into its SSE frame once; every subscriber shares
//! those bytes.
//! **Invariant:** a subscription yields the retained frames after its `Last-Event-ID`, then
//! live frames, with no gap and no duplicate, or says `resync` first.
//! **Invariant:** a project's subscription never yields another project's frames.
//! **Invariant:** a publisher never waits for a subscriber; a subscriber that falls more
//! than the backlog behind loses its backlog and is told to resync.

mod coalesce;
mod history;
mod memory;
mod publisher;
mod redis;

pub use memory::InMemoryEventBus;
pub use publisher::Publish;
pub use redis::RedisEventBus;

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use app::protocol::sse::SseFrame;
use app::protocol::{EventId, NewEvent, ProjectId};

/// One event's SSE frame, serialized once and shared by every subscriber.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The event's position in its project's history.
    pub seq: u64,
    /// When the bus published it (the Redis bus: when the publishing instance appended it,
    /// by that instance's clock), to measure delivery latency.
    pub published_at: Instant,
    /// `id:`, `event:` and `data:` lines and the blank line that ends the frame.
    pub bytes: Bytes,
}

/// Why the bus could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The bus stopped (shutdown) before the event could be published.
    #[error("the event bus is shut down")]
    Closed,
    /// The bus's backing store (Redis) cannot be reached or did not answer in time.
    #[error("the event bus is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What a bus sends to the live subscribers of a project.
#[derive(Debug, Clone)]
pub enum Live {
    /// The next frame.
    Frame(Frame),
    /// The history was lost (a flushed or restarted Redis): subscribers must refetch, and
    /// sequences start again from the new history's.
    Resync(&'static str),
}

/// News of sessions that ended, from whichever instance ended them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionNews {
    /// This session ended: its streams end with `auth_expired`.
    Ended(Arc<str>),
    /// News may have been missed (the bus lost its connection, or a receiver fell behind):
    /// whatever a listener believes about sessions must be checked again.
    Lost,
}

/// Sessions' news a bus keeps for listeners that fall behind; one further behind gets `Lost`.
pub(crate) const SESSION_NEWS_BACKLOG: usize = 1024;

/// `event`, stamped now, as its SSE frame: with the `id:` line when `id` is given (the Redis
/// bus's script writes it once it knows the sequence). The one place an event is serialized.
pub(crate) fn encode_frame(event: NewEvent, id: Option<&EventId>) -> String {
    let event_type = event.event_type;
    let json = serde_json::to_string(&event.into_event(crate::clock::timestamp()))
        .expect("an event is strings, numbers and JSON values, which always serialize");
    let frame = SseFrame::new(event_type.as_str(), json);
    match id {
        Some(id) => frame.with_id(id.to_string()),
        None => frame,
    }
    .encode()
}

/// A fresh epoch: 12 random hex digits, so a restarted bus never reuses one.
pub(crate) fn new_epoch() -> String {
    crate::random::random_hex::<6>()
}

/// Carries entity events from publishers to the streams of their project.
///
/// The module documentation lists the guarantees every implementation keeps.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Publishes `event` to its project without waiting: it is sent at once, or merged into
    /// a pending update of the same entity that goes out when its coalescing window closes.
    /// Workers publish this way, so a burst of progress never slows them down. Every bus
    /// publishes through its [`CoalescingPublisher`](publisher::CoalescingPublisher).
    ///
    /// # Errors
    ///
    /// [`BusError::Closed`] when the bus is shut down, [`BusError::Unavailable`] when its
    /// store cannot be reached.
    async fn publish_nowait(&self, event: NewEvent) -> Result<Publication, BusError> {
        self.publisher().publish(event).await
    }

    /// Publishes `event` and returns the id of the stream event that carries it: its own,
    /// or, when coalescing merged it into a pending update, that update's id (in which case
    /// this waits for the coalescing window to close).
    ///
    /// # Errors
    ///
    /// [`BusError::Closed`] when the bus shut down before the event went out.
    async fn publish(&self, event: NewEvent) -> Result<EventId, BusError> {
        self.publish_nowait(event).await?.id().await
    }

    /// Subscribes to `project`'s frames after `last_event_id` (`None`: live frames only).
    ///
    /// # Errors
    ///
    /// [`BusError::Closed`] when the bus is shut down.
    async fn subscribe(
        &self,
        project: &ProjectId,
        last_event_id: Option<&str>,
    ) -> Result<Subscription, BusError>;

    /// The id of `project`'s latest event (sequence 0 when it has none yet), for snapshots
    /// that a stream resumes from.
    ///
    /// # Errors
    ///
    /// [`BusError::Closed`] when the bus is shut down.
    async fn last_event_id(&self, project: &ProjectId) -> Result<EventId, BusError>;

    /// The outbox rows that `project`'s retained events announce ([`NewEvent::origins`]), so
    /// that a relay taking over rows after a crash, or retrying after a failure whose outcome
    /// it cannot know, publishes none twice.
    ///
    /// # Errors
    ///
    /// [`BusError::Unavailable`] when the store cannot be reached.
    async fn published_origins(&self, project: &ProjectId) -> Result<HashSet<i64>, BusError>;

    /// Sends `resync` with `reason` to this instance's streams of `project`: what they show
    /// may be stale, and they must refetch.
    fn resync_local(&self, project: &ProjectId, reason: &'static str);

    /// Tells every instance that session `sid` ended.
    ///
    /// # Errors
    ///
    /// [`BusError::Unavailable`] when the store cannot be reached (the instances then learn
    /// it from the database, later).
    async fn announce_session_end(&self, sid: &str) -> Result<(), BusError>;

    /// The news of ended sessions, from every instance, this one included.
    fn session_news(&self) -> broadcast::Receiver<SessionNews>;

    /// The publish path this bus appends through.
    fn publisher(&self) -> &dyn Publish;
}

/// What became of a published event.
#[derive(Debug)]
pub enum Publication {
    /// It went out with this id.
    Sent(EventId),
    /// It was merged into a pending update; the receiver gets that update's id when its
    /// window closes.
    Merged(watch::Receiver<Option<EventId>>),
}

impl Publication {
    /// The id of the stream event that carries the published event, waiting for the
    /// coalescing window when it was merged.
    ///
    /// # Errors
    ///
    /// [`BusError::Closed`] when the bus shut down before the merged update went out.
    pub async fn id(self) -> Result<EventId, BusError> {
        match self {
            Self::Sent(id) => Ok(id),
            Self::Merged(mut receiver) => {
                let id = receiver
                    .wait_for(Option::is_some)
                    .await
                    .map_err(|_| BusError::Closed)?;
                id.clone().ok_or(BusError::Closed)
            }
        }
    }
}

/// What a subscription yields next.
#[derive(Debug)]
pub enum Delivery {
    /// An event frame, replayed or live.
    Frame(Frame),
    /// The requested resume point is not retained; the client must refetch.
    Resync {
        /// Why, in words for logs.
        reason: &'static str,
    },
    /// The subscriber fell more than the backlog behind: `dropped` frames were skipped and it
    /// now continues with live frames; the client must refetch.
    Lagged {
        /// How many frames it lost.
        dropped: u64,
    },
    /// The bus stopped; nothing more will come.
    Closed,
}

/// One subscriber's view of a project: replayed frames, then live ones.
///
/// **Invariant:** a live frame whose sequence was already replayed is skipped, so an
/// implementation whose replay and live feed overlap still yields no duplicate.
#[derive(Debug)]
pub struct Subscription {
    resync: Option<&'static str>,
    replay: std::vec::IntoIter<Frame>,
    live: broadcast::Receiver<Live>,
    /// The highest sequence already yielded by the replay.
    replayed_up_to: u64,
}

impl Subscription {
    /// A subscription that first says `resync` (when `resync` is set) or replays `replay`,
    /// then yields `live` frames above `replayed_up_to`.
    pub fn new(
        resync: Option<&'static str>,
        replay: Vec<Frame>,
        live: broadcast::Receiver<Live>,
        replayed_up_to: u64,
    ) -> Self {
        Self {
            resync,
            replay: replay.into_iter(),
            live,
            replayed_up_to,
        }
    }

    /// The next frame or notice; waits for a live frame when nothing is queued.
    pub async fn next(&mut self) -> Delivery {
        if let Some(reason) = self.resync.take() {
            return Delivery::Resync { reason };
        }
        if let Some(frame) = self.replay.next() {
            return Delivery::Frame(frame);
        }
        loop {
            match self.live.recv().await {
                Ok(Live::Frame(frame)) if frame.seq <= self.replayed_up_to => {}
                Ok(Live::Frame(frame)) => return Delivery::Frame(frame),
                Ok(Live::Resync(reason)) => {
                    // The new history numbers its events from its own start.
                    self.replayed_up_to = 0;
                    return Delivery::Resync { reason };
                }
                Err(RecvError::Lagged(dropped)) => {
                    // Drop the whole backlog: the client refetches, then follows live frames.
                    // Every frame from here on is newer than the replay; a history reset lost
                    // in the backlog must not make its low sequences look replayed.
                    self.live = self.live.resubscribe();
                    self.replayed_up_to = 0;
                    return Delivery::Lagged { dropped };
                }
                Err(RecvError::Closed) => return Delivery::Closed,
            }
        }
    }
}
