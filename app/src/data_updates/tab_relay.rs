//! What the tabs of one browser tell each other about one project's stream (pure): the
//! messages ([`TabMessage`]), the leader's book of recent events that a tab joining late is
//! replayed from ([`ReplayBook`]), and the ids a tab saw lately, so that an event that comes
//! twice around a change of leader is applied once ([`RecentIds`]).
//!
//! **Invariant:** event ids stay opaque, as API.md asks: they are compared for equality only.
//! **Invariant:** the book and the memory of ids are bounded ([`REPLAY_EVENTS`] events and
//! [`REPLAY_BYTES`] of their data, [`RECENT_IDS`] ids); a tab whose point is no longer in the
//! book refetches instead.

use std::collections::{HashSet, VecDeque};
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::data_updates::provider::ConnectionState;

/// Events the leader keeps for tabs that join: a few seconds of a heavy burst, minutes of
/// ordinary traffic.
pub const REPLAY_EVENTS: usize = 4_096;
/// Bytes of event data the leader keeps for tabs that join: events may be up to 64 KiB each,
/// and 4,096 of those would be a quarter of a gigabyte.
pub const REPLAY_BYTES: usize = 4 * 1024 * 1024;
/// Ids each tab remembers: more than the events a new leader can repeat.
pub const RECENT_IDS: usize = 4_096;

/// One entity event as the stream framed it: its id and its JSON data, as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayedEvent {
    /// The frame's `id:`.
    pub id: String,
    /// The frame's data: the event's JSON.
    pub data: String,
}

/// The leader's connection state, as the other tabs show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RelayedState {
    /// The leader is connecting.
    Connecting,
    /// The stream is open.
    Open,
    /// The leader lost the stream and tries again.
    #[serde(rename_all = "camelCase")]
    Reconnecting {
        /// Attempts since it was last open.
        attempt: u32,
        /// The delay before the next one, in milliseconds.
        retry_in_ms: u64,
    },
    /// The session is over, or the project refused.
    Unauthorized,
}

impl RelayedState {
    /// The state to tell the other tabs; `None` for [`ConnectionState::Closed`], which a
    /// leader never is while it leads.
    pub fn of(state: ConnectionState) -> Option<Self> {
        match state {
            ConnectionState::Connecting => Some(Self::Connecting),
            ConnectionState::Open => Some(Self::Open),
            ConnectionState::Reconnecting { attempt, retry_in } => Some(Self::Reconnecting {
                attempt,
                retry_in_ms: u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX),
            }),
            ConnectionState::Unauthorized => Some(Self::Unauthorized),
            ConnectionState::Closed => None,
        }
    }

    /// The state a tab shows for this.
    pub fn connection_state(self) -> ConnectionState {
        match self {
            Self::Connecting => ConnectionState::Connecting,
            Self::Open => ConnectionState::Open,
            Self::Reconnecting {
                attempt,
                retry_in_ms,
            } => ConnectionState::Reconnecting {
                attempt,
                retry_in: std::time::Duration::from_millis(retry_in_ms),
            },
            Self::Unauthorized => ConnectionState::Unauthorized,
        }
    }
}

/// A message on the project's channel between the tabs of a browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TabMessage {
    /// Tab `tab`, which follows, asks for the events after `after` (the id its data was
    /// loaded at; `None`: from now on).
    Join {
        /// The asking tab.
        tab: String,
        /// Its point.
        after: Option<String>,
    },
    /// The leader's answer to tab `tab`'s [`TabMessage::Join`]: the events after its point,
    /// or `None` when the book does not reach back to it (the tab refetches); and the state.
    Welcome {
        /// The tab answered.
        tab: String,
        /// The events it missed, in order.
        events: Option<Vec<RelayedEvent>>,
        /// The leader's connection state.
        state: RelayedState,
    },
    /// Tab `tab` now leads: tabs still waiting for a welcome ask it again.
    Leader {
        /// The new leader.
        tab: String,
    },
    /// Events the leader's stream delivered, in order.
    Events {
        /// The events.
        events: Vec<RelayedEvent>,
    },
    /// The leader's connection state changed.
    State {
        /// The new state.
        state: RelayedState,
    },
    /// The server said `resync`: every tab refetches.
    Resync,
}

/// The leader's book of the events it relayed, for the tabs that join after them.
#[derive(Debug, Clone)]
pub struct ReplayBook {
    /// The id the book starts after: the leader's point when it began, or the last event the
    /// book let go; `None` when it starts at no known event.
    start: Option<String>,
    /// The events after `start`, oldest first; at most `capacity`.
    events: VecDeque<RelayedEvent>,
    capacity: usize,
    /// The bytes of the events' ids and data, at most `byte_capacity` (but always the newest
    /// event).
    bytes: usize,
    byte_capacity: usize,
}

impl ReplayBook {
    /// An empty book of at most [`REPLAY_EVENTS`] events and [`REPLAY_BYTES`], starting
    /// after `start`.
    pub fn new(start: Option<String>) -> Self {
        Self::with_capacity(start, REPLAY_EVENTS, REPLAY_BYTES)
    }

    /// An empty book of at most `capacity` events (1 or more) and `byte_capacity` bytes,
    /// starting after `start`.
    pub fn with_capacity(start: Option<String>, capacity: usize, byte_capacity: usize) -> Self {
        Self {
            start,
            events: VecDeque::new(),
            capacity: capacity.max(1),
            bytes: 0,
            byte_capacity,
        }
    }

    /// Adds `event`, letting the oldest go while the book is over its bounds.
    pub fn record(&mut self, event: RelayedEvent) {
        self.bytes += event.id.len() + event.data.len();
        self.events.push_back(event);
        while self.events.len() > 1
            && (self.events.len() > self.capacity || self.bytes > self.byte_capacity)
            && let Some(oldest) = self.events.pop_front()
        {
            self.bytes -= oldest.id.len() + oldest.data.len();
            self.start = Some(oldest.id);
        }
    }

    /// Forgets everything: after a `resync` the events before it tell no tab anything.
    pub fn clear(&mut self) {
        self.start = None;
        self.events.clear();
        self.bytes = 0;
    }

    /// The events after `after`: none for `None` (from now on), and `None` when `after` is not
    /// in the book (too old, or from before this leader began).
    pub fn after(&self, after: Option<&str>) -> Option<Vec<RelayedEvent>> {
        let Some(after) = after else {
            return Some(Vec::new());
        };
        if self.start.as_deref() == Some(after) {
            return Some(self.events.iter().cloned().collect());
        }
        let position = self.events.iter().position(|event| event.id == after)?;
        Some(self.events.iter().skip(position + 1).cloned().collect())
    }
}

/// The ids a tab saw lately, at most a bound of them.
#[derive(Debug, Clone)]
pub struct RecentIds {
    /// The ids, oldest first; each shared with `seen`, so an id costs one allocation.
    order: VecDeque<Rc<str>>,
    seen: HashSet<Rc<str>>,
    capacity: usize,
}

impl Default for RecentIds {
    fn default() -> Self {
        Self::with_capacity(RECENT_IDS)
    }
}

impl RecentIds {
    /// A memory of at most `capacity` ids (1 or more).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            order: VecDeque::new(),
            seen: HashSet::new(),
            capacity: capacity.max(1),
        }
    }

    /// Records `id`; `false` when it was seen already (a repeat, to drop).
    pub fn first_sight(&mut self, id: &str) -> bool {
        // Inserted first and checked by the insert: an id is hashed once to be recorded, and
        // a repeat (rare) costs its copy. The set holds one id over `capacity` until the
        // oldest goes.
        let id: Rc<str> = Rc::from(id);
        if !self.seen.insert(Rc::clone(&id)) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.order.push_back(id);
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn event(id: &str) -> RelayedEvent {
        RelayedEvent {
            id: id.to_owned(),
            data: format!("{{\"id\":\"{id}\"}}"),
        }
    }

    fn ids(events: Option<Vec<RelayedEvent>>) -> Option<Vec<String>> {
        events.map(|events| events.into_iter().map(|event| event.id).collect())
    }

    #[test]
    fn a_joining_tab_gets_the_events_after_its_point_or_is_told_to_refetch() {
        let mut book = ReplayBook::new(Some("e:10".to_owned()));
        for id in ["e:11", "e:12", "e:13"] {
            book.record(event(id));
        }
        assert_eq!(
            ids(book.after(Some("e:10"))),
            Some(vec!["e:11".into(), "e:12".into(), "e:13".into()])
        );
        assert_eq!(ids(book.after(Some("e:12"))), Some(vec!["e:13".into()]));
        assert_eq!(ids(book.after(Some("e:13"))), Some(vec![]));
        assert_eq!(ids(book.after(None)), Some(vec![]), "no point: from now on");
        assert_eq!(ids(book.after(Some("e:9"))), None, "before the book");
        assert_eq!(ids(book.after(Some("other:11"))), None, "another history");
    }

    #[test]
    fn a_full_book_lets_the_oldest_go_and_moves_its_start() {
        let mut book = ReplayBook::with_capacity(Some("e:0".to_owned()), 2, usize::MAX);
        for id in ["e:1", "e:2", "e:3"] {
            book.record(event(id));
        }
        assert_eq!(ids(book.after(Some("e:0"))), None, "let go");
        assert_eq!(
            ids(book.after(Some("e:1"))),
            Some(vec!["e:2".into(), "e:3".into()])
        );
        book.clear();
        assert_eq!(ids(book.after(Some("e:3"))), None, "a resync forgets");
    }

    #[test]
    fn a_book_keeps_to_its_bytes_but_always_holds_the_newest_event() {
        // Each event is 3 bytes of id and 12 of data: 15.
        let mut book = ReplayBook::with_capacity(Some("e:0".to_owned()), 100, 40);
        for id in ["e:1", "e:2", "e:3"] {
            book.record(event(id));
        }
        assert_eq!(
            ids(book.after(Some("e:0"))),
            None,
            "45 bytes: the oldest let go"
        );
        assert_eq!(
            ids(book.after(Some("e:1"))),
            Some(vec!["e:2".into(), "e:3".into()])
        );
        let mut tiny = ReplayBook::with_capacity(None, 100, 1);
        tiny.record(event("e:9"));
        tiny.record(event("e:10"));
        assert_eq!(ids(tiny.after(Some("e:9"))), Some(vec!["e:10".into()]));
    }

    #[test]
    fn an_id_seen_lately_is_a_repeat_and_the_memory_is_bounded() {
        let mut recent = RecentIds::with_capacity(2);
        assert!(recent.first_sight("e:1"));
        assert!(!recent.first_sight("e:1"));
        assert!(recent.first_sight("e:2"));
        assert!(recent.first_sight("e:3"));
        assert!(recent.first_sight("e:1"), "forgotten beyond the bound");
        assert!(!recent.first_sight("e:3"));
    }

    #[test]
    fn messages_and_states_round_trip_through_json() {
        let messages = [
            TabMessage::Join {
                tab: "t1".to_owned(),
                after: Some("e:4".to_owned()),
            },
            TabMessage::Welcome {
                tab: "t1".to_owned(),
                events: Some(vec![event("e:5")]),
                state: RelayedState::Reconnecting {
                    attempt: 2,
                    retry_in_ms: 1_500,
                },
            },
            TabMessage::Leader {
                tab: "t2".to_owned(),
            },
            TabMessage::Events {
                events: vec![event("e:6")],
            },
            TabMessage::State {
                state: RelayedState::Open,
            },
            TabMessage::Resync,
        ];
        for message in messages {
            let text = serde_json::to_string(&message).expect("serializes");
            assert_eq!(
                serde_json::from_str::<TabMessage>(&text).expect("parses"),
                message
            );
        }
        let reconnecting = ConnectionState::Reconnecting {
            attempt: 3,
            retry_in: Duration::from_millis(2_250),
        };
        assert_eq!(
            RelayedState::of(reconnecting).map(RelayedState::connection_state),
            Some(reconnecting)
        );
        assert_eq!(RelayedState::of(ConnectionState::Closed), None);
    }
}
