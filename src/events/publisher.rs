//! [`CoalescingPublisher`]: the publish path both buses share. It offers each event to its
//! project's [`Coalescer`], appends what goes out through the bus's [`Append`] (the one thing
//! the buses do differently), closes coalescing windows when they are due, sends every
//! pending update at shutdown, and forgets the coalescers of idle projects.
//!
//! **Invariant:** a project's coalescing decisions, and the appends they lead to, happen
//! under that project's lock, so its events are appended in the order they were decided.
//! **Invariant:** at shutdown every pending update is appended, and from then on nothing is
//! merged, so no publisher waits for ever.
//! **Invariant:** a project's coalescer is kept while it has an open window or a publish
//! holds it; a sweep every half `PROJECT_IDLE_SECS` forgets the others. There is one timer
//! per open window.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use app::protocol::{EventId, NewEvent, ProjectId};

use crate::config::EventsConfig;
use crate::events::coalesce::{Coalescer, Offer, Outgoing, WindowTimer, WindowTimers};
use crate::events::{BusError, Publication};
use crate::metrics::Metrics;

/// How a bus appends an event to its project's history and sends it to live subscribers.
pub(crate) trait Append: Send + Sync + 'static {
    /// Appends `event`, serialized once, and returns its id.
    fn append(&self, event: NewEvent) -> impl Future<Output = Result<EventId, BusError>> + Send;
}

/// The publish path of a bus, as [`EventBus::publish_nowait`](crate::events::EventBus::publish_nowait)
/// sees it.
#[async_trait]
pub trait Publish: Send + Sync {
    /// Publishes `event`: appends it now, or merges it into a pending update of its entity.
    ///
    /// # Errors
    ///
    /// The bus's append failed.
    async fn publish(&self, event: NewEvent) -> Result<Publication, BusError>;
}

/// A project's coalescing state; an async lock, because the appends a decision leads to may
/// wait (for Redis), and must leave in decision order.
type ProjectCoalescer = Arc<tokio::sync::Mutex<Coalescer>>;

/// Coalesces and appends the events of every project of one bus.
pub(crate) struct CoalescingPublisher<A> {
    appender: Arc<A>,
    window: Duration,
    metrics: Arc<Metrics>,
    /// The coalescers; `None` once shut down, when events go out at once.
    coalescers: Mutex<Option<HashMap<ProjectId, ProjectCoalescer>>>,
    /// Coalescing windows to close.
    timers: WindowTimers<ProjectId>,
}

impl<A: Append> CoalescingPublisher<A> {
    /// A publisher appending through `appender` with a coalescing `window`; its window
    /// closer and idle sweep (every half `project_idle`) run on `tasks` until `shutdown`.
    pub fn start(
        appender: Arc<A>,
        config: &EventsConfig,
        metrics: Arc<Metrics>,
        tasks: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> Arc<Self> {
        let window = config.coalesce_window;
        let publisher = Arc::new(Self {
            appender,
            window,
            metrics,
            coalescers: Mutex::new(Some(HashMap::new())),
            timers: WindowTimers::new(),
        });
        if !window.is_zero() {
            tasks.spawn(publisher.clone().close_windows(shutdown.clone()));
        }
        tasks.spawn(
            publisher
                .clone()
                .forget_idle(config.project_idle, shutdown.clone()),
        );
        publisher
    }

    /// The metrics the publisher counts into.
    #[cfg(test)]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// `project`'s coalescer; after shutdown, one that merges nothing.
    fn coalescer(&self, project: &ProjectId) -> ProjectCoalescer {
        match self
            .coalescers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            Some(coalescers) => coalescers
                .entry(project.clone())
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(Coalescer::new(self.window))))
                .clone(),
            None => Arc::new(tokio::sync::Mutex::new(Coalescer::new(Duration::ZERO))),
        }
    }

    /// Appends `outgoing` and gives its id to the publishers merged into it.
    async fn append(&self, outgoing: Outgoing) -> Result<EventId, BusError> {
        let id = self.appender.append(outgoing.event).await?;
        self.metrics.event_published();
        if let Some(waiters) = outgoing.waiters {
            waiters.send_replace(Some(id.clone()));
        }
        Ok(id)
    }

    /// Appends a pending update, logging a failure: its publishers learn of it when their
    /// watch closes, and the streams resync once the bus is back.
    async fn append_pending(&self, outgoing: Outgoing) {
        if let Err(error) = self.append(outgoing).await {
            tracing::warn!(%error, "a coalesced update could not be published");
        }
    }

    /// The window closer: sleeps until the first window is due, closes what is due, repeats;
    /// at shutdown it sends every pending update.
    async fn close_windows(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => {
                    self.shut_down().await;
                    return;
                }
                () = self.timers.wait() => self.close_due_windows(Instant::now()).await,
            }
        }
    }

    /// Closes every window due by `now`, sending what was pending in it.
    async fn close_due_windows(&self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            let coalescer = self.coalescer(&timer.project);
            let mut coalescer = coalescer.lock().await;
            if let Some((outgoing, next_due)) = coalescer.close_window(&timer.key, timer.due, now) {
                self.append_pending(outgoing).await;
                drop(coalescer);
                self.timers.push(WindowTimer {
                    due: next_due,
                    ..timer
                });
            }
        }
    }

    /// Stops merging and sends every pending update of every project.
    async fn shut_down(&self) {
        let coalescers = self
            .coalescers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_default();
        for coalescer in coalescers.into_values() {
            let mut coalescer = coalescer.lock().await;
            for outgoing in coalescer.shut_down() {
                self.append_pending(outgoing).await;
            }
        }
        self.timers.clear();
    }

    /// Forgets, every half `project_idle`, the coalescers nobody holds and no window needs.
    async fn forget_idle(self: Arc<Self>, project_idle: Duration, shutdown: CancellationToken) {
        let mut sweeps = tokio::time::interval(project_idle / 2);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = sweeps.tick() => {
                    // Under the map's lock nobody can take a new handle to a coalescer, so
                    // one only the map holds, and idle, can go.
                    if let Some(coalescers) = self
                        .coalescers
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .as_mut()
                    {
                        coalescers.retain(|_, coalescer| {
                            Arc::strong_count(coalescer) > 1
                                || coalescer.try_lock().map_or(true, |state| !state.is_idle())
                        });
                    }
                }
            }
        }
    }
}

#[async_trait]
impl<A: Append> Publish for CoalescingPublisher<A> {
    async fn publish(&self, event: NewEvent) -> Result<Publication, BusError> {
        let project = event.project_id.clone();
        let coalescer = self.coalescer(&project);
        let mut coalescer = coalescer.lock().await;
        match coalescer.offer(event, Instant::now()) {
            Offer::Send {
                flushed,
                event,
                window,
            } => {
                for outgoing in flushed {
                    self.append_pending(outgoing).await;
                }
                let id = self
                    .append(Outgoing {
                        event,
                        waiters: None,
                    })
                    .await?;
                drop(coalescer);
                if let Some((key, due)) = window {
                    self.timers.push(WindowTimer { due, project, key });
                }
                Ok(Publication::Sent(id))
            }
            Offer::Merged(receiver) => {
                self.metrics.event_coalesced();
                Ok(Publication::Merged(receiver))
            }
        }
    }
}
