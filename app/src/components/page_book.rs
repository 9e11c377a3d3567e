//! The rest of a long list, loaded in pages once its first screen is live: the events that
//! come while the pages load, kept to apply to each page's rows as the page arrives.
//!
//! A page may have been read before an event about one of its rows was made, and reach the
//! browser after that event did (an event for a row not loaded yet changes nothing on
//! screen), or the event may change nothing stored at all (`POST /api/events/publish`).
//!
//! **Invariant:** each row of a page gets, in order, every booked event about it and nothing
//! about another row: an `entity.batch` is narrowed to the page's ids, so a row loaded
//! earlier never has an older change applied again over a newer one.

use std::collections::HashSet;

use crate::data_updates::live_list::MAX_KEPT_EVENTS;
use crate::protocol::EntityEvent;

/// The events of a list since its pages started loading; at most [`MAX_KEPT_EVENTS`].
#[derive(Debug, Default)]
pub struct PageBook {
    events: Vec<EntityEvent>,
    /// More than [`MAX_KEPT_EVENTS`] came: the booked ones were dropped, and the list must
    /// be read whole once the pages are in.
    overflowed: bool,
}

impl PageBook {
    /// Books `event`, unless the book overflowed.
    pub fn record(&mut self, event: &EntityEvent) {
        if self.overflowed {
            return;
        }
        if self.events.len() < MAX_KEPT_EVENTS {
            self.events.push(event.clone());
        } else {
            self.events = Vec::new();
            self.overflowed = true;
        }
    }

    /// Whether events were dropped: the pages cannot be brought up to date alone.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// The booked events about the rows `ids`, in order, each about those rows only.
    pub fn replays(&self, ids: &HashSet<&str>) -> Vec<EntityEvent> {
        self.events
            .iter()
            .filter_map(|event| {
                if let Some(id) = &event.id {
                    return ids.contains(id.as_str()).then(|| event.clone());
                }
                let batch = event.ids.as_ref()?;
                let in_page: Vec<_> = batch
                    .iter()
                    .filter(|id| ids.contains(id.as_str()))
                    .cloned()
                    .collect();
                (!in_page.is_empty()).then(|| EntityEvent {
                    ids: Some(in_page),
                    ..event.clone()
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::protocol::{EntityId, EntityKind, EventType, NewEvent, ProjectId};

    fn id(text: &str) -> EntityId {
        text.parse().expect("a valid id")
    }

    fn project() -> ProjectId {
        "proj_1".parse().expect("a valid project")
    }

    fn updated(of: &str) -> EntityEvent {
        NewEvent::single(
            EventType::Updated,
            EntityKind::Document,
            id(of),
            project(),
            None,
        )
        .into_event("2026-12-07T00:00:00.000Z".to_owned())
    }

    fn batch(of: &[&str]) -> EntityEvent {
        EntityEvent {
            event_type: EventType::Batch,
            id: None,
            ids: Some(of.iter().map(|of| id(of)).collect()),
            ..updated("doc_x")
        }
    }

    #[test]
    fn a_page_gets_the_events_about_its_rows_in_order_and_a_batch_narrowed_to_them() {
        let mut book = PageBook::default();
        for event in [
            updated("doc_a"),
            batch(&["doc_a", "doc_z", "doc_b"]),
            updated("doc_z"),
            updated("doc_b"),
        ] {
            book.record(&event);
        }

        let page = HashSet::from(["doc_a", "doc_b"]);
        let replays = book.replays(&page);

        assert_eq!(
            replays,
            [
                updated("doc_a"),
                batch(&["doc_a", "doc_b"]),
                updated("doc_b")
            ]
        );
        assert!(book.replays(&HashSet::from(["doc_q"])).is_empty());
        assert!(!book.overflowed());
    }

    #[test]
    fn a_book_past_its_bound_drops_its_events_and_says_so() {
        let mut book = PageBook::default();
        for _ in 0..=MAX_KEPT_EVENTS {
            book.record(&updated("doc_a"));
        }

        assert!(book.overflowed());
        assert!(book.replays(&HashSet::from(["doc_a"])).is_empty());
        book.record(&updated("doc_a"));
        assert!(book.replays(&HashSet::from(["doc_a"])).is_empty());
    }
}
