//! The bookkeeping of one stream: which of the run's events it has seen, and what each frame
//! it reads counts as.
//!
//! **Invariant:** an entity event counts as received at most once per entity id, and only when
//! it is of the stream's project and one this run published; every other frame is counted as
//! a duplicate, leak, resync, heartbeat, unrecognized or malformed, never dropped unseen. The
//! memory it holds is one bit per event of its project.

use app::protocol::sse::SseFrame;
use app::protocol::{EntityEvent, ProjectId, StreamMessage};

use crate::naming;

/// The key of `data` in which the publisher puts its send time, in Unix microseconds.
pub const SENT_AT_KEY: &str = "sentAtUs";

/// What one entity event was to the stream that received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The first delivery of one of the run's events on its project's stream; with its latency
    /// when the event carried its send time.
    First {
        /// Receive time minus `data.sentAtUs`, 0 when the clocks disagree.
        latency_us: Option<u64>,
    },
    /// The same entity id again on this stream.
    Duplicate,
    /// An event of another project: the server's isolation failed.
    Leak,
    /// An event of this project that the run did not publish.
    Unrecognized,
}

/// Frame counts of one stream (or of one chunk of it), added to the shared tally in one go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// First deliveries.
    pub received: u64,
    /// Repeated deliveries of an entity id.
    pub duplicates: u64,
    /// Events of another project.
    pub leaks: u64,
    /// Entity events of this project that the run did not publish.
    pub unrecognized: u64,
    /// Frames that break the protocol: data not as its event name announces, or a second
    /// `connected`.
    pub malformed: u64,
    /// `resync` frames.
    pub resyncs: u64,
    /// `heartbeat` frames.
    pub heartbeats: u64,
}

/// What one stream has seen.
#[derive(Debug)]
pub struct ConnectionBook {
    /// The project this stream watches.
    project_id: ProjectId,
    /// Its index k in `load_proj_<k>`.
    project_index: u64,
    /// Number of projects of the run.
    project_count: u64,
    /// Events the run publishes: numbers at or past it are not the run's.
    event_count: u64,
    /// Bit `n / project_count` is set once event n (of this project) was delivered.
    seen: Vec<u64>,
}

impl ConnectionBook {
    /// The book of a stream on project `project_index` of `project_count`, in a run that
    /// publishes `event_count` events.
    pub fn new(project_index: u32, project_count: u32, event_count: u64) -> Self {
        Self {
            project_id: naming::project_id(project_index),
            project_index: u64::from(project_index),
            project_count: u64::from(project_count.max(1)),
            event_count,
            seen: Vec::new(),
        }
    }

    /// The project this stream watches.
    pub fn project_id(&self) -> &ProjectId {
        &self.project_id
    }

    /// Records one entity event received at `received_at_unix_us`.
    pub fn record(&mut self, event: &EntityEvent, received_at_unix_us: u64) -> Delivery {
        if event.project_id != self.project_id {
            return Delivery::Leak;
        }
        let Some(bit) = event
            .id
            .as_ref()
            .and_then(|entity_id| naming::event_number(entity_id.as_str()))
            .filter(|&number| {
                number < self.event_count && number % self.project_count == self.project_index
            })
            .map(|number| number / self.project_count)
        else {
            return Delivery::Unrecognized;
        };
        let word_index = usize::try_from(bit / 64).expect("the bit set of a run fits in memory");
        if word_index >= self.seen.len() {
            self.seen.resize(word_index + 1, 0);
        }
        let mask = 1u64 << (bit % 64);
        if self.seen[word_index] & mask != 0 {
            return Delivery::Duplicate;
        }
        self.seen[word_index] |= mask;
        let latency_us = event
            .data
            .as_ref()
            .and_then(|data| data.get(SENT_AT_KEY))
            .and_then(serde_json::Value::as_u64)
            .map(|sent_at_unix_us| received_at_unix_us.saturating_sub(sent_at_unix_us));
        Delivery::First { latency_us }
    }

    /// Records `frames` received at `received_at_unix_us`: adds them to `counts` and pushes the
    /// latency of each first delivery onto `latencies`.
    ///
    /// Returns why the stream ends when a frame says so (`auth_expired`); frames after it are
    /// not counted. Frames with an event name this version does not know are skipped, as
    /// API.md asks of clients.
    pub fn absorb(
        &mut self,
        frames: &[SseFrame],
        received_at_unix_us: u64,
        counts: &mut FrameCounts,
        latencies: &mut Vec<u64>,
    ) -> Option<String> {
        for frame in frames {
            match StreamMessage::from_frame(frame) {
                Ok(Some(StreamMessage::Entity { event, .. })) => {
                    match self.record(&event, received_at_unix_us) {
                        Delivery::First { latency_us } => {
                            counts.received += 1;
                            latencies.extend(latency_us);
                        }
                        Delivery::Duplicate => counts.duplicates += 1,
                        Delivery::Leak => counts.leaks += 1,
                        Delivery::Unrecognized => counts.unrecognized += 1,
                    }
                }
                Ok(Some(StreamMessage::Heartbeat(_))) => counts.heartbeats += 1,
                Ok(Some(StreamMessage::Resync(_))) => counts.resyncs += 1,
                Ok(Some(StreamMessage::AuthExpired(notice))) => {
                    return Some(format!("the server sent auth_expired: {}", notice.reason));
                }
                Ok(Some(StreamMessage::Connected(_))) | Err(_) => counts.malformed += 1,
                Ok(None) => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use app::protocol::sse::SseFrame;
    use app::protocol::{EntityKind, EventType, NewEvent};
    use serde_json::json;

    use super::*;

    fn event(entity_id: &str, project_id: &str, sent_at_unix_us: Option<u64>) -> EntityEvent {
        let data = sent_at_unix_us.map(|sent_at| {
            serde_json::from_value(json!({ SENT_AT_KEY: sent_at })).expect("an object")
        });
        NewEvent::single(
            EventType::Created,
            EntityKind::Notification,
            entity_id.parse().expect("valid"),
            project_id.parse().expect("valid"),
            data,
        )
        .into_event("2025-12-04T12:00:00Z".to_owned())
    }

    fn entity_frame(sequence: u64, event: &EntityEvent) -> SseFrame {
        SseFrame::new(
            event.event_type.as_str(),
            serde_json::to_string(event).expect("json"),
        )
        .with_id(format!("e1:{sequence}"))
    }

    #[test]
    fn the_first_delivery_counts_with_its_latency_and_a_repeat_is_a_duplicate() {
        let mut book = ConnectionBook::new(3, 10, 1000);
        let first = event("load_13", "load_proj_3", Some(1_000_000));
        assert_eq!(
            book.record(&first, 1_001_250),
            Delivery::First {
                latency_us: Some(1_250)
            }
        );
        assert_eq!(book.record(&first, 1_002_000), Delivery::Duplicate);
        let other = event("load_993", "load_proj_3", None);
        assert_eq!(book.record(&other, 5), Delivery::First { latency_us: None });
        assert_eq!(book.record(&other, 6), Delivery::Duplicate);
        assert_eq!(book.seen.len(), 2, "one bit per event of the project");
    }

    #[test]
    fn a_clock_step_back_reads_as_zero_latency() {
        let mut book = ConnectionBook::new(0, 1, 10);
        assert_eq!(
            book.record(&event("load_1", "load_proj_0", Some(2_000)), 1_000),
            Delivery::First {
                latency_us: Some(0)
            }
        );
    }

    #[test]
    fn another_projects_event_is_a_leak_even_with_a_known_id() {
        let mut book = ConnectionBook::new(3, 10, 1000);
        assert_eq!(
            book.record(&event("load_14", "load_proj_4", Some(1)), 2),
            Delivery::Leak
        );
        assert_eq!(
            book.record(&event("load_13", "load_proj_4", Some(1)), 2),
            Delivery::Leak
        );
        assert!(book.seen.is_empty());
    }

    #[test]
    fn ids_the_run_did_not_publish_on_this_project_are_unrecognized() {
        let mut book = ConnectionBook::new(3, 10, 1000);
        for entity_id in ["doc_13", "load_14", "load_1003", "load_013"] {
            assert_eq!(
                book.record(&event(entity_id, "load_proj_3", Some(1)), 2),
                Delivery::Unrecognized,
                "{entity_id}"
            );
        }
        let batch = NewEvent::batch(
            EntityKind::Document,
            vec!["load_13".parse().expect("valid")],
            "load_proj_3".parse().expect("valid"),
            None,
        )
        .into_event("t".to_owned());
        assert_eq!(book.record(&batch, 2), Delivery::Unrecognized);
    }

    #[test]
    fn absorb_counts_every_kind_of_frame() {
        let mut book = ConnectionBook::new(1, 2, 100);
        let delivered = event("load_1", "load_proj_1", Some(100));
        let frames = vec![
            entity_frame(1, &delivered),
            entity_frame(2, &delivered),
            entity_frame(3, &event("load_2", "load_proj_0", Some(100))),
            entity_frame(4, &event("load_3", "load_proj_1", None)),
            SseFrame::new("heartbeat", r#"{"timestamp":"t"}"#),
            SseFrame::new("resync", r#"{"reason":"lagged"}"#),
            SseFrame::new("entity.updated", "not json"),
            SseFrame::new(
                "connected",
                r#"{"connectionId":"c","projectId":"load_proj_1"}"#,
            ),
            SseFrame::new("some_future_event", "{}"),
        ];
        let mut counts = FrameCounts::default();
        let mut latencies = Vec::new();
        assert_eq!(book.absorb(&frames, 400, &mut counts, &mut latencies), None);
        assert_eq!(
            counts,
            FrameCounts {
                received: 2,
                duplicates: 1,
                leaks: 1,
                unrecognized: 0,
                malformed: 2,
                resyncs: 1,
                heartbeats: 1,
            }
        );
        assert_eq!(latencies, vec![300]);
    }

    #[test]
    fn auth_expired_ends_the_stream_and_later_frames_are_not_counted() {
        let mut book = ConnectionBook::new(0, 1, 10);
        let frames = vec![
            SseFrame::new("auth_expired", r#"{"reason":"token expired"}"#),
            SseFrame::new("heartbeat", r#"{"timestamp":"t"}"#),
        ];
        let mut counts = FrameCounts::default();
        let ended = book.absorb(&frames, 0, &mut counts, &mut Vec::new());
        assert_eq!(
            ended.as_deref(),
            Some("the server sent auth_expired: token expired")
        );
        assert_eq!(counts, FrameCounts::default());
    }
}
