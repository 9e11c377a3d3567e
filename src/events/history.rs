//! [`History`]: a project's retained frames, a bounded ring, and where a resume starts.
//!
//! **Invariant:** the ring holds at most `capacity` frames, and at most `max_bytes` of them
//! (but always the newest), with consecutive sequences ending at [`History::last_seq`];
//! memory per project is bounded whatever the publish rate and the size of events.

use std::collections::VecDeque;

use app::protocol::EventId;

use crate::events::Frame;

/// The retained frames of one project.
#[derive(Debug)]
pub struct History {
    frames: VecDeque<Frame>,
    capacity: usize,
    /// The most bytes of frames kept.
    max_bytes: usize,
    /// The bytes of the frames kept now.
    bytes: usize,
    last_seq: u64,
}

/// Where a stream that resumes after some id starts.
#[derive(Debug)]
pub enum Resume {
    /// Replay these frames (possibly none), then go live.
    Replay(Vec<Frame>),
    /// The id cannot be resumed from; the client must refetch.
    Resync(&'static str),
}

impl History {
    /// An empty history keeping at most `capacity` frames (at least one) and `max_bytes` of
    /// them (the newest frame whatever its size).
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            frames: VecDeque::with_capacity(capacity.clamp(1, 64)),
            capacity: capacity.max(1),
            max_bytes,
            bytes: 0,
            last_seq: 0,
        }
    }

    /// The sequence of the newest event, 0 before the first.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Appends the next frame, forgetting the oldest ones while over either bound.
    ///
    /// The caller assigns `frame.seq` as `last_seq() + 1`.
    pub fn push(&mut self, frame: Frame) {
        debug_assert_eq!(frame.seq, self.last_seq + 1, "sequences are consecutive");
        self.last_seq = frame.seq;
        self.bytes += frame.bytes.len();
        self.frames.push_back(frame);
        while self.frames.len() > self.capacity
            || (self.bytes > self.max_bytes && self.frames.len() > 1)
        {
            if let Some(oldest) = self.frames.pop_front() {
                self.bytes -= oldest.bytes.len();
            }
        }
    }

    /// Where a stream resuming after `last_event_id` starts, for a history of `epoch`.
    pub fn resume(&self, epoch: &str, last_event_id: &str) -> Resume {
        let Ok(id) = last_event_id.parse::<EventId>() else {
            return Resume::Resync("the Last-Event-ID is not an id of this server");
        };
        if id.epoch != epoch {
            return Resume::Resync("the event history was reset since the Last-Event-ID");
        }
        if id.seq > self.last_seq {
            return Resume::Resync("the Last-Event-ID is ahead of the event history");
        }
        let oldest = self
            .frames
            .front()
            .map_or(self.last_seq + 1, |frame| frame.seq);
        if id.seq + 1 < oldest {
            return Resume::Resync("the Last-Event-ID is older than the retained history");
        }
        let skip = usize::try_from(id.seq + 1 - oldest).unwrap_or(usize::MAX);
        Resume::Replay(self.frames.iter().skip(skip).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tokio::time::Instant;

    use super::*;

    fn history_with(capacity: usize, events: u64) -> History {
        let mut history = History::new(capacity, usize::MAX);
        for seq in 1..=events {
            history.push(Frame {
                seq,
                published_at: Instant::now(),
                bytes: Bytes::from(seq.to_string()),
            });
        }
        history
    }

    #[track_caller]
    fn check_replay(history: &History, last_event_id: &str, expected: &[u64]) {
        match history.resume("ep", last_event_id) {
            Resume::Replay(frames) => {
                let seqs: Vec<u64> = frames.iter().map(|frame| frame.seq).collect();
                assert_eq!(seqs, expected);
            }
            Resume::Resync(reason) => panic!("{last_event_id}: resync ({reason})"),
        }
    }

    #[track_caller]
    fn check_resync(history: &History, last_event_id: &str) {
        if let Resume::Replay(frames) = history.resume("ep", last_event_id) {
            panic!("{last_event_id}: replayed {} frames", frames.len());
        }
    }

    #[test]
    fn replays_exactly_the_frames_after_the_id() {
        let history = history_with(4, 10);
        check_replay(&history, "ep:6", &[7, 8, 9, 10]);
        check_replay(&history, "ep:8", &[9, 10]);
        check_replay(&history, "ep:10", &[]);
    }

    #[test]
    fn resyncs_ids_older_than_the_ring_foreign_or_ahead() {
        let history = history_with(4, 10);
        check_resync(&history, "ep:5");
        check_resync(&history, "ep:0");
        check_resync(&history, "other:8");
        check_resync(&history, "ep:11");
        check_resync(&history, "garbage");
    }

    #[test]
    fn an_empty_history_resumes_from_zero() {
        let history = history_with(4, 0);
        check_replay(&history, "ep:0", &[]);
        check_resync(&history, "ep:1");
        let short = history_with(4, 2);
        check_replay(&short, "ep:0", &[1, 2]);
    }

    #[test]
    fn the_ring_never_grows_past_its_capacity() {
        let history = history_with(3, 1000);
        assert_eq!(history.frames.len(), 3);
        assert_eq!(history.last_seq(), 1000);
    }

    #[test]
    fn the_ring_never_holds_more_bytes_than_its_bound_but_keeps_the_newest_frame() {
        let mut history = History::new(100, 10);
        let frame = |seq: u64, size: usize| Frame {
            seq,
            published_at: Instant::now(),
            bytes: Bytes::from(vec![b'x'; size]),
        };
        for seq in 1..=5 {
            history.push(frame(seq, 4));
        }
        assert_eq!(history.frames.len(), 2, "8 of 10 bytes");
        assert_eq!(history.bytes, 8);
        check_replay(&history, "ep:3", &[4, 5]);
        check_resync(&history, "ep:2");
        history.push(frame(6, 50));
        assert_eq!(
            history.frames.len(),
            1,
            "the newest frame stays, however large"
        );
        assert_eq!(history.bytes, 50);
        check_replay(&history, "ep:5", &[6]);
    }
}
