//! [`Coalescer`]: merges bursts of `entity.updated` for one entity, per project.
//!
//! An isolated update goes out at once and opens a window of `COALESCE_MS` for its entity;
//! updates inside the window merge into one pending update (newest value of each key wins),
//! which goes out when the window closes and opens the next window. An event of another type
//! for the entity sends the pending update first, so the entity's order holds.
//!
//! **Invariant:** at most one update per entity per window leaves, and the last state always
//! does. Pure: the caller supplies the time and runs the timers.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use app::protocol::{EntityId, EntityKind, EventId, EventType, NewEvent};

/// Which entity an update is about, within one project.
pub type EntityKey = (EntityKind, EntityId);

/// Publishers waiting for the id of the update their event was merged into.
pub type Waiters = watch::Sender<Option<EventId>>;

/// The coalescing state of one project.
#[derive(Debug)]
pub struct Coalescer {
    window: Duration,
    /// Entities with an open window; an entry lives until a window closes with nothing
    /// pending, so the map holds only entities updated within the last window or two.
    windows: HashMap<EntityKey, Window>,
}

#[derive(Debug)]
struct Window {
    closes_at: Instant,
    pending: Option<Pending>,
}

#[derive(Debug)]
struct Pending {
    event: NewEvent,
    waiters: Waiters,
}

/// An event to append now, and who waits for its id.
#[derive(Debug)]
pub struct Outgoing {
    /// The event (merged when it stood for several).
    pub event: NewEvent,
    /// Publishers whose events were merged into it; `None` when it stands for itself.
    pub waiters: Option<Waiters>,
}

/// What to do with an offered event.
// An offer is matched as soon as it is made; boxing its event would cost an allocation per
// published event for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Offer {
    /// Append `flushed` (pending updates that must precede it) then `event`.
    Send {
        /// Pending updates to send first, in order.
        flushed: Vec<Outgoing>,
        /// The offered event itself.
        event: NewEvent,
        /// A window opened: call [`Coalescer::close_window`] for this entity at that time.
        window: Option<(EntityKey, Instant)>,
    },
    /// Merged into a pending update; the receiver gets that update's id when it goes out.
    Merged(watch::Receiver<Option<EventId>>),
}

impl Coalescer {
    /// A coalescer with `window`; a zero window sends everything at once.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            windows: HashMap::new(),
        }
    }

    /// True when no window is open: nothing is pending and no timer refers to it.
    pub fn is_idle(&self) -> bool {
        self.windows.is_empty()
    }

    /// Decides what happens to `event`, offered at `now`.
    pub fn offer(&mut self, event: NewEvent, now: Instant) -> Offer {
        if self.window.is_zero() {
            return send(Vec::new(), event, None);
        }
        match (event.event_type, event.id.clone()) {
            (EventType::Updated, Some(id)) => {
                let key = (event.entity, id);
                match self.windows.get_mut(&key) {
                    Some(window) => Offer::Merged(merge(&mut window.pending, event)),
                    None => {
                        let closes_at = now + self.window;
                        self.windows.insert(
                            key.clone(),
                            Window {
                                closes_at,
                                pending: None,
                            },
                        );
                        send(Vec::new(), event, Some((key, closes_at)))
                    }
                }
            }
            (EventType::Batch, _) => {
                let ids = event.ids.clone().unwrap_or_default();
                let flushed = ids
                    .into_iter()
                    .filter_map(|id| self.take_pending(&(event.entity, id), false))
                    .collect();
                send(flushed, event, None)
            }
            (event_type, Some(id)) => {
                let close = event_type == EventType::Deleted;
                let flushed = self.take_pending(&(event.entity, id), close);
                send(flushed.into_iter().collect(), event, None)
            }
            (_, None) => send(Vec::new(), event, None),
        }
    }

    /// The window of `key` that was due to close at `due` closes at `now`: returns the
    /// pending update to send and when the next window closes, if one was pending.
    ///
    /// A timer for a window that was since closed or replaced does nothing.
    pub fn close_window(
        &mut self,
        key: &EntityKey,
        due: Instant,
        now: Instant,
    ) -> Option<(Outgoing, Instant)> {
        let window = self.windows.get_mut(key)?;
        if window.closes_at != due {
            return None;
        }
        match window.pending.take() {
            Some(pending) => {
                window.closes_at = now + self.window;
                let outgoing = Outgoing {
                    event: pending.event,
                    waiters: Some(pending.waiters),
                };
                Some((outgoing, window.closes_at))
            }
            None => {
                self.windows.remove(key);
                None
            }
        }
    }

    /// Stops coalescing: returns every pending update, to send now, and from then on sends
    /// everything at once. At shutdown no window will close, and no publisher may wait on one.
    pub fn shut_down(&mut self) -> Vec<Outgoing> {
        self.window = Duration::ZERO;
        self.windows
            .drain()
            .filter_map(|(_, window)| window.pending)
            .map(|pending| Outgoing {
                event: pending.event,
                waiters: Some(pending.waiters),
            })
            .collect()
    }

    /// Entities with an open window.
    #[cfg(test)]
    fn open_windows(&self) -> usize {
        self.windows.len()
    }

    fn take_pending(&mut self, key: &EntityKey, close: bool) -> Option<Outgoing> {
        let pending = if close {
            self.windows.remove(key)?.pending
        } else {
            self.windows.get_mut(key)?.pending.take()
        };
        pending.map(|pending| Outgoing {
            event: pending.event,
            waiters: Some(pending.waiters),
        })
    }
}

fn send(flushed: Vec<Outgoing>, event: NewEvent, window: Option<(EntityKey, Instant)>) -> Offer {
    Offer::Send {
        flushed,
        event,
        window,
    }
}

/// Merges `event` into `pending` (newest value of each key wins).
fn merge(pending: &mut Option<Pending>, event: NewEvent) -> watch::Receiver<Option<EventId>> {
    match pending {
        Some(pending) => {
            if let Some(data) = event.data {
                pending
                    .event
                    .data
                    .get_or_insert_with(Default::default)
                    .extend(data);
            }
            pending.event.origins.extend(event.origins);
            pending.waiters.subscribe()
        }
        None => {
            let (waiters, receiver) = watch::channel(None);
            *pending = Some(Pending { event, waiters });
            receiver
        }
    }
}

/// A coalescing window to close: which entity of which project, and when.
pub struct WindowTimer<P> {
    /// When the window closes.
    pub due: Instant,
    /// The project, as the bus names or holds it.
    pub project: P,
    /// The entity whose updates the window merges.
    pub key: EntityKey,
}

/// The coalescing windows a bus has open, in deadline order, for the one task that closes
/// them.
///
/// **Invariant:** every window lasts the same time, so appending keeps the queue sorted; its
/// length is bounded by the windows open.
pub struct WindowTimers<P> {
    queue: Mutex<VecDeque<WindowTimer<P>>>,
    /// Wakes the closing task when a timer is queued into an empty queue.
    queued: Notify,
}

impl<P> WindowTimers<P> {
    /// No open window.
    pub fn new() -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            queued: Notify::new(),
        }
    }

    /// Queues `timer`, behind every window opened before it.
    pub fn push(&self, timer: WindowTimer<P>) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.push_back(timer);
        if queue.len() == 1 {
            self.queued.notify_one();
        }
    }

    /// Takes the first timer if it is due by `now`.
    pub fn pop_due(&self, now: Instant) -> Option<WindowTimer<P>> {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        match queue.front() {
            Some(timer) if timer.due <= now => queue.pop_front(),
            _ => None,
        }
    }

    /// Forgets every timer (at shutdown, once the pending updates are sent).
    pub fn clear(&self) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Waits until the first window is due, or, when none is open, until one is queued.
    pub async fn wait(&self) {
        let first_due = self
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .front()
            .map(|timer| timer.due);
        match first_due {
            Some(due) => tokio::time::sleep_until(due).await,
            // A timer queued since the look above left a permit, so this returns at once.
            None => self.queued.notified().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use app::protocol::{DocumentChange, EntityData};
    use app::resources::DocumentStatus;

    use super::*;

    const WINDOW: Duration = Duration::from_millis(100);

    /// A document event; `change` is its `data` (`None`: none, as a deletion has).
    fn event(event_type: EventType, id: &str, change: Option<DocumentChange>) -> NewEvent {
        NewEvent::single(
            event_type,
            EntityKind::Document,
            id.parse().expect("valid"),
            "proj_1".parse().expect("valid"),
            change.as_ref().map(EntityData::to_data),
        )
    }

    fn update(id: &str, progress: u32) -> NewEvent {
        event(
            EventType::Updated,
            id,
            Some(DocumentChange {
                embedded_chunks: Some(progress),
                ..DocumentChange::default()
            }),
        )
    }

    fn key(id: &str) -> EntityKey {
        (EntityKind::Document, id.parse().expect("valid"))
    }

    #[track_caller]
    fn expect_send(offer: Offer) -> (Vec<Outgoing>, NewEvent, Option<(EntityKey, Instant)>) {
        match offer {
            Offer::Send {
                flushed,
                event,
                window,
            } => (flushed, event, window),
            Offer::Merged(_) => panic!("the event was merged"),
        }
    }

    #[test]
    fn an_isolated_update_goes_out_at_once_and_opens_a_window() {
        let mut coalescer = Coalescer::new(WINDOW);
        let now = Instant::now();
        let (flushed, sent, window) = expect_send(coalescer.offer(update("d1", 1), now));
        assert!(flushed.is_empty());
        assert_eq!(sent, update("d1", 1));
        assert_eq!(window, Some((key("d1"), now + WINDOW)));
        assert!(
            coalescer
                .close_window(&key("d1"), now + WINDOW, now + WINDOW)
                .is_none()
        );
        assert_eq!(coalescer.open_windows(), 0);
    }

    #[test]
    fn a_burst_leaves_as_one_merged_update_per_window_with_the_last_state() {
        let mut coalescer = Coalescer::new(WINDOW);
        let start = Instant::now();
        expect_send(coalescer.offer(update("d1", 1), start));
        let mut receivers = Vec::new();
        for progress in 2..=10 {
            match coalescer.offer(
                update("d1", progress),
                start + Duration::from_millis(u64::from(progress)),
            ) {
                Offer::Merged(receiver) => receivers.push(receiver),
                Offer::Send { .. } => panic!("update {progress} was not merged"),
            }
        }
        let due = start + WINDOW;
        let (outgoing, next) = coalescer
            .close_window(&key("d1"), due, due)
            .expect("the pending update leaves");
        assert_eq!(outgoing.event, update("d1", 10));
        assert_eq!(next, due + WINDOW);

        let id = EventId::new("ep", 2).expect("valid");
        outgoing
            .waiters
            .expect("merged events wait")
            .send_replace(Some(id.clone()));
        for receiver in receivers {
            assert_eq!(*receiver.borrow(), Some(id.clone()));
        }
        assert!(coalescer.close_window(&key("d1"), next, next).is_none());
        assert_eq!(coalescer.open_windows(), 0);
    }

    #[test]
    fn a_merged_update_names_every_origin_it_stands_for() {
        let mut coalescer = Coalescer::new(WINDOW);
        let start = Instant::now();
        let from = |origin: i64, progress: u32| NewEvent {
            origins: vec![origin],
            ..update("d1", progress)
        };
        let (_, sent, _) = expect_send(coalescer.offer(from(7, 1), start));
        assert_eq!(sent.origins, [7]);
        for (origin, progress) in [(8, 2), (9, 3)] {
            assert!(matches!(
                coalescer.offer(from(origin, progress), start),
                Offer::Merged(_)
            ));
        }
        let (outgoing, _) = coalescer
            .close_window(&key("d1"), start + WINDOW, start + WINDOW)
            .expect("the pending update leaves");
        assert_eq!(outgoing.event.origins, [8, 9]);
    }

    #[test]
    fn merging_keeps_keys_the_newer_update_does_not_mention() {
        let mut coalescer = Coalescer::new(WINDOW);
        let now = Instant::now();
        expect_send(coalescer.offer(update("d1", 1), now));
        let _first = coalescer.offer(
            event(
                EventType::Updated,
                "d1",
                Some(DocumentChange {
                    status: Some(DocumentStatus::Embedding),
                    chunks: Some(9),
                    ..DocumentChange::default()
                }),
            ),
            now,
        );
        let _second = coalescer.offer(
            event(
                EventType::Updated,
                "d1",
                Some(DocumentChange {
                    status: Some(DocumentStatus::Ready),
                    ..DocumentChange::default()
                }),
            ),
            now,
        );
        let (outgoing, _) = coalescer
            .close_window(&key("d1"), now + WINDOW, now + WINDOW)
            .expect("pending");
        assert_eq!(
            DocumentChange::from_data(&outgoing.event.data.expect("data")),
            Some(DocumentChange {
                status: Some(DocumentStatus::Ready),
                chunks: Some(9),
                ..DocumentChange::default()
            })
        );
    }

    #[test]
    fn a_delete_after_pending_updates_sends_them_first_and_closes_the_window() {
        let mut coalescer = Coalescer::new(WINDOW);
        let now = Instant::now();
        expect_send(coalescer.offer(update("d1", 1), now));
        let _merged = coalescer.offer(update("d1", 2), now);
        let (flushed, sent, window) =
            expect_send(coalescer.offer(event(EventType::Deleted, "d1", None), now));
        assert_eq!(flushed.len(), 1);
        assert_eq!(flushed[0].event, update("d1", 2));
        assert_eq!(sent.event_type, EventType::Deleted);
        assert!(window.is_none());
        assert_eq!(coalescer.open_windows(), 0);
        assert!(
            coalescer
                .close_window(&key("d1"), now + WINDOW, now + WINDOW)
                .is_none()
        );
    }

    #[test]
    fn a_batch_flushes_the_pending_updates_of_its_ids() {
        let mut coalescer = Coalescer::new(WINDOW);
        let now = Instant::now();
        for id in ["d1", "d2"] {
            expect_send(coalescer.offer(update(id, 1), now));
            let _merged = coalescer.offer(update(id, 2), now);
        }
        let batch = NewEvent::batch(
            EntityKind::Document,
            vec!["d2".parse().expect("valid"), "d3".parse().expect("valid")],
            "proj_1".parse().expect("valid"),
            None,
        );
        let (flushed, _, _) = expect_send(coalescer.offer(batch, now));
        assert_eq!(flushed.len(), 1);
        assert_eq!(flushed[0].event, update("d2", 2));
        let (still_pending, _) = coalescer
            .close_window(&key("d1"), now + WINDOW, now + WINDOW)
            .expect("d1 still pending");
        assert_eq!(still_pending.event, update("d1", 2));
    }

    #[test]
    fn shutting_down_hands_over_what_is_pending_and_stops_merging() {
        let mut coalescer = Coalescer::new(WINDOW);
        let now = Instant::now();
        expect_send(coalescer.offer(update("d1", 1), now));
        let _merged = coalescer.offer(update("d1", 2), now);
        let pending = coalescer.shut_down();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].event, update("d1", 2));
        let (_, _, window) = expect_send(coalescer.offer(update("d1", 3), now));
        assert!(window.is_none());
        assert_eq!(coalescer.open_windows(), 0);
    }

    #[test]
    fn other_entities_and_a_zero_window_are_never_merged() {
        let mut coalescer = Coalescer::new(WINDOW);
        let now = Instant::now();
        expect_send(coalescer.offer(update("d1", 1), now));
        expect_send(coalescer.offer(update("d2", 1), now));
        let mut off = Coalescer::new(Duration::ZERO);
        for progress in 0..5 {
            let (_, _, window) = expect_send(off.offer(update("d1", progress), now));
            assert!(window.is_none());
        }
        assert_eq!(off.open_windows(), 0);
    }
}
