//! [`LiveList`]: a list the server loaded, kept live by the stream. The page loads a
//! snapshot (with its `lastEventId`, so the stream resumes after it); the rows apply each
//! event they can follow (created, updated, deleted, batch) in place; a `resync`, or an
//! event the rows cannot follow without the server ([`Applied::Reload`]), reloads the
//! snapshot, at most once per pause, and replaces the rows in place.
//!
//! **Invariant:** no event is lost between a load and the stream. From the list's creation
//! until its rows are attached, and while a reload is under way, events are kept (at most
//! [`MAX_KEPT_EVENTS`]; beyond that the list reloads once more) and applied on top of the
//! snapshot once it is in: events carry newest values, so applying them again converges on
//! the server's state.
//!
//! The rows themselves are the page's ([`LiveRows`]): the documents table's, the document
//! page's chunks, the search page's hits. A list of notification titles, in full:
//!
//! ```
//! use app::data_updates::{Applied, LiveList, LiveRows};
//! use app::protocol::EntityEvent;
//! use leptos::prelude::*;
//!
//! #[derive(Clone, Copy)]
//! struct Titles(RwSignal<Vec<String>>);
//!
//! impl LiveRows for Titles {
//!     type Snapshot = Vec<String>;
//!
//!     fn apply(&self, event: &EntityEvent) -> Applied {
//!         match event.notification() {
//!             Some(notification) => self.0.update(|titles| titles.push(notification.title)),
//!             None => return Applied::Reload,
//!         }
//!         Applied::Followed
//!     }
//!
//!     fn replace(&self, titles: Vec<String>) {
//!         self.0.set(titles);
//!     }
//!
//!     // The browser build also asks for `reload`: the snapshot read again from the server.
//!     # #[cfg(feature = "hydrate")]
//!     # async fn reload(&self) -> Result<Vec<String>, app::error::AppError> {
//!     #     Ok(Vec::new())
//!     # }
//! }
//!
//! #[component]
//! fn NotificationTitles(first: Vec<String>) -> impl IntoView {
//!     // In a page, made before its first data is in; here the data is given.
//!     let list = LiveList::new("notification:*", std::time::Duration::from_millis(250));
//!     let titles = Titles(RwSignal::new(first));
//!     list.attach(titles);
//!     view! { <ul>{move || titles.0.get().into_iter().map(|title| view! { <li>{title}</li> }).collect_view()}</ul> }
//! }
//! ```

use std::time::Duration;

use leptos::prelude::*;

use crate::data_updates::pattern::IntoPattern;
use crate::data_updates::provider::{DataUpdates, use_data_updates};
use crate::data_updates::throttle::Throttle;
use crate::error::AppError;
use crate::protocol::EntityEvent;

/// The events kept during one load; beyond this, they are dropped and the list reloads
/// again once the load is in.
pub const MAX_KEPT_EVENTS: usize = 20_000;

/// What the rows made of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Applied, or not about these rows.
    Followed,
    /// The rows cannot follow it alone: the snapshot must be read again.
    Reload,
}

/// Rows a [`LiveList`] keeps live: a `Copy` handle (signals inside) that applies events and
/// takes a fresh snapshot.
pub trait LiveRows: Copy + Send + Sync + 'static {
    /// What a reload reads from the server.
    type Snapshot: 'static;

    /// Applies one event the list's pattern matched.
    fn apply(&self, event: &EntityEvent) -> Applied;

    /// Replaces the rows with a fresh `snapshot`, in place: rows that stay keep their state.
    fn replace(&self, snapshot: Self::Snapshot);

    /// Reads the snapshot again (browser only).
    #[cfg(feature = "hydrate")]
    fn reload(&self) -> impl std::future::Future<Output = Result<Self::Snapshot, AppError>>;

    /// A reload failed; the rows keep what they have (the next event or resync retries).
    fn reload_failed(&self, _error: &AppError) {}
}

/// Which events a list applies at once and which it keeps for after a load.
#[derive(Debug)]
pub struct KeptEvents<E> {
    /// `Some` while a load is under way: the events that came meanwhile.
    kept: Option<Vec<E>>,
    /// More than [`MAX_KEPT_EVENTS`] came during the load.
    overflowed: bool,
    /// A reload was asked while one was under way.
    again: bool,
}

/// What to do once a load is in.
#[derive(Debug, PartialEq, Eq)]
pub struct LoadDone<E> {
    /// The events that came during the load, in order, to apply on top of it.
    pub replay: Vec<E>,
    /// Whether to load again (events were dropped, or a reload was asked meanwhile).
    pub load_again: bool,
}

impl<E> KeptEvents<E> {
    /// The state of a list whose first load is under way.
    pub fn loading() -> Self {
        Self {
            kept: Some(Vec::new()),
            overflowed: false,
            again: false,
        }
    }

    /// Keeps a copy of `event` when a load is under way (`true`: apply it after the load);
    /// `false`: apply it now.
    pub fn keep(&mut self, event: &E) -> bool
    where
        E: Clone,
    {
        let Some(kept) = &mut self.kept else {
            return false;
        };
        if self.overflowed {
            return true;
        }
        if kept.len() < MAX_KEPT_EVENTS {
            kept.push(event.clone());
        } else {
            kept.clear();
            self.overflowed = true;
        }
        true
    }

    /// Starts a reload: `false` when one is under way (it will load again once in).
    pub fn begin(&mut self) -> bool {
        if self.kept.is_some() {
            self.again = true;
            return false;
        }
        self.kept = Some(Vec::new());
        true
    }

    /// The load is in: events apply at once from now on.
    pub fn finish(&mut self) -> LoadDone<E> {
        let done = LoadDone {
            replay: self.kept.take().unwrap_or_default(),
            load_again: self.overflowed || self.again,
        };
        self.overflowed = false;
        self.again = false;
        done
    }
}

/// A live list: subscribes to its pattern when created (in the page, before the first load
/// is in), then keeps the rows given to [`LiveList::attach`] live for as long as the
/// component that attached them. `Copy`; it lives as long as the component that made it.
pub struct LiveList<R: LiveRows> {
    updates: DataUpdates,
    kept: StoredValue<KeptEvents<EntityEvent>>,
    /// The rows attached, with the number of their attachment: a reload whose rows were
    /// replaced (or disposed) while it ran is dropped.
    rows: StoredValue<Option<(u64, R)>>,
    attachments: StoredValue<u64>,
    throttle: Throttle,
}

impl<R: LiveRows> Clone for LiveList<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R: LiveRows> Copy for LiveList<R> {}

impl<R: LiveRows> LiveList<R> {
    /// A list of the events `pattern` matches, reloading at most once per `pause`. Events
    /// are kept until [`LiveList::attach`]; a `resync` reloads.
    #[track_caller]
    pub fn new(pattern: impl IntoPattern, pause: Duration) -> Self {
        let list = Self {
            updates: use_data_updates(),
            kept: StoredValue::new(KeptEvents::loading()),
            rows: StoredValue::new(None),
            attachments: StoredValue::new(0),
            throttle: Throttle::new(pause),
        };
        list.updates
            .subscribe(pattern, move |event| list.receive(event));
        let resyncs = list.updates.resyncs();
        Effect::new(move |previous: Option<u64>| {
            let count = resyncs.get();
            if previous.is_some_and(|previous| previous != count) {
                list.reload();
            }
            count
        });
        list
    }

    /// A snapshot's rows are in: the events kept since the list was made (or since the
    /// last rows went) apply to them, and every later one at once. When the component that
    /// attaches them is disposed, the list keeps events again for the next rows.
    pub fn attach(&self, rows: R) {
        let attachment = self
            .attachments
            .try_update_value(|count| {
                *count += 1;
                *count
            })
            .unwrap_or_default();
        self.rows.set_value(Some((attachment, rows)));
        let list = *self;
        on_cleanup(move || list.detach(attachment));
        self.loaded(rows);
    }

    fn detach(&self, attachment: u64) {
        let detached = self
            .rows
            .try_update_value(|rows| {
                let current = rows
                    .as_ref()
                    .is_some_and(|(number, _)| *number == attachment);
                if current {
                    *rows = None;
                }
                current
            })
            .unwrap_or(false);
        if detached {
            self.kept.set_value(KeptEvents::loading());
        }
    }

    fn attached(&self) -> Option<(u64, R)> {
        self.rows.try_get_value().flatten()
    }

    /// Reads the snapshot again, at most once per pause; events meanwhile are kept and
    /// applied on top.
    pub fn reload(&self) {
        let list = *self;
        self.throttle.run(move || list.reload_now());
    }

    fn receive(&self, event: &EntityEvent) {
        if self
            .kept
            .try_update_value(|kept| kept.keep(event))
            .unwrap_or(true)
        {
            return;
        }
        if let Some((_, rows)) = self.attached()
            && rows.apply(event) == Applied::Reload
        {
            self.reload();
        }
    }

    /// Applies the events kept during a load to `rows`, and loads again if needed.
    fn loaded(&self, rows: R) {
        let Some(done) = self.kept.try_update_value(KeptEvents::finish) else {
            return;
        };
        let mut reload = done.load_again;
        for event in &done.replay {
            reload |= rows.apply(event) == Applied::Reload;
        }
        if reload {
            self.reload();
        }
    }

    fn reload_now(&self) {
        let Some((attachment, rows)) = self.attached() else {
            return;
        };
        if !self
            .kept
            .try_update_value(KeptEvents::begin)
            .unwrap_or(false)
        {
            return;
        }
        #[cfg(feature = "hydrate")]
        {
            let list = *self;
            leptos::task::spawn_local(async move {
                let result = rows.reload().await;
                if list.attached().map(|(number, _)| number) != Some(attachment) {
                    return;
                }
                match result {
                    Ok(snapshot) => rows.replace(snapshot),
                    Err(error) => rows.reload_failed(&error),
                }
                list.loaded(rows);
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (attachment, rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::protocol::{EntityKind, EventType, NewEvent};

    /// Rows that note the ids of the events they apply.
    #[derive(Clone, Copy)]
    struct Noted(StoredValue<Vec<String>>);

    impl LiveRows for Noted {
        type Snapshot = ();

        fn apply(&self, event: &EntityEvent) -> Applied {
            let id = event.id.as_ref().map(|id| id.as_str().to_owned());
            self.0.update_value(|seen| seen.extend(id));
            Applied::Followed
        }

        fn replace(&self, _snapshot: ()) {}

        #[cfg(feature = "hydrate")]
        async fn reload(&self) -> Result<(), AppError> {
            Ok(())
        }
    }

    fn noted() -> Noted {
        Noted(StoredValue::new(Vec::new()))
    }

    fn updated(id: &str) -> EntityEvent {
        let id = id.parse().expect("a valid id");
        let project = "proj_1".parse().expect("a valid project");
        NewEvent::single(EventType::Updated, EntityKind::Document, id, project, None)
            .into_event("2026-11-29T00:00:00.000Z".to_owned())
    }

    #[test]
    fn events_before_the_rows_are_in_apply_to_them_and_later_ones_at_once() {
        Owner::new().with(|| {
            let updates = DataUpdates::new();
            provide_context(updates);
            let list = LiveList::new("document:*", Duration::ZERO);
            updates.dispatch(&updated("doc_1"));
            let first = noted();
            let view = Owner::new();

            view.with(|| list.attach(first));
            updates.dispatch(&updated("doc_2"));

            assert_eq!(first.0.get_value(), ["doc_1", "doc_2"]);

            // The view goes (a new query, another project): the next rows get what came
            // in between, the old ones nothing more.
            view.cleanup();
            updates.dispatch(&updated("doc_3"));
            let second = noted();
            list.attach(second);

            assert_eq!(first.0.get_value(), ["doc_1", "doc_2"]);
            assert_eq!(second.0.get_value(), ["doc_3"]);
        });
    }

    #[test]
    fn events_during_a_load_are_kept_in_order_then_pass_through() {
        let mut kept = KeptEvents::loading();
        assert!(kept.keep(&1));
        assert!(kept.keep(&2));

        assert_eq!(
            kept.finish(),
            LoadDone {
                replay: vec![1, 2],
                load_again: false
            }
        );
        assert!(!kept.keep(&3), "applied at once");
    }

    #[test]
    fn a_reload_asked_during_a_load_runs_once_that_load_is_in() {
        let mut kept = KeptEvents::loading();
        kept.finish();
        assert!(kept.begin());
        assert!(!kept.begin(), "one load at a time");
        assert!(kept.keep(&7));

        let done = kept.finish();

        assert_eq!(done.replay, [7]);
        assert!(done.load_again);
        assert!(kept.begin());
        assert!(!kept.finish().load_again);
    }

    #[test]
    fn too_many_events_during_a_load_drop_them_all_and_load_again() {
        let mut kept = KeptEvents::loading();
        for event in 0..=MAX_KEPT_EVENTS + 1 {
            assert!(kept.keep(&event));
        }

        let done = kept.finish();

        assert!(done.load_again);
        assert!(
            done.replay.is_empty(),
            "the next load reads what they changed"
        );
        assert!(!kept.keep(&0), "applied at once after the load");
    }
}
