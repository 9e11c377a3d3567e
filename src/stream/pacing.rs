//! [`Pacer`]: when a stream flooded with frames writes them, so that a flood costs its client
//! one network read per [`PACE`] instead of one per event.
//!
//! A quiet stream writes each frame the moment it comes. A stream is flooded while the
//! current or the last [`FLOOD_SPAN`] brought it at least [`FLOOD_FRAMES`] frames; then a
//! frame that comes within [`PACE`] of the stream's last write is held until [`PACE`] after
//! that write, and goes out in one write with every frame that came meanwhile.
//!
//! **Invariant:** a frame is held at most [`PACE`], and only while its stream is flooded; the
//! order of frames never changes. Pure: the caller supplies the time and runs the timer.

use std::time::Duration;

use tokio::time::Instant;

/// The least time between two writes of a flooded stream: two frames of a 60 Hz display,
/// as often as the browser's stream worker hands what it read to the page
/// (`POST_INTERVAL_MS` in `app/src/data_updates/stream_worker.js`). Chromium tells the page's
/// main thread of every network read of the stream, even one a worker does, so reads more
/// often than the worker's posts cost the page without showing anything sooner.
pub const PACE: Duration = Duration::from_millis(33);

/// The span over which a stream's frames are counted to tell a flood.
pub const FLOOD_SPAN: Duration = Duration::from_millis(100);

/// Frames within one [`FLOOD_SPAN`] that make a flood: 80 a second. A project's ordinary
/// traffic (a few events a second) never comes near it, so it never waits.
pub const FLOOD_FRAMES: u32 = 8;

/// Most frames held for one write: the frame that makes this many sends them all at once.
/// This bounds what a stream holds, about 3 KiB of handles once it has flooded (at [`PACE`],
/// a flood of 1,900 frames a second still waits the whole pace).
pub const MAX_HELD_FRAMES: usize = 64;

/// The pacing state of one stream: a few counters, no allocation.
#[derive(Debug)]
pub struct Pacer {
    /// When the current counting span began.
    span_start: Instant,
    /// Frames in the current span.
    in_span: u32,
    /// Frames in the span before, when it ended less than a span ago; otherwise 0.
    in_last_span: u32,
    /// When the stream last wrote frames.
    last_write: Option<Instant>,
}

impl Pacer {
    /// A stream that has written nothing yet, counting from `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            span_start: now,
            in_span: 0,
            in_last_span: 0,
            last_write: None,
        }
    }

    /// Counts a frame that came at `now`, and says until when to hold it: `None` to write it
    /// at once.
    pub fn hold_until(&mut self, now: Instant) -> Option<Instant> {
        let since_start = now.saturating_duration_since(self.span_start);
        if since_start >= FLOOD_SPAN {
            self.in_last_span = if since_start < 2 * FLOOD_SPAN {
                self.in_span
            } else {
                0
            };
            self.in_span = 0;
            self.span_start = now;
        }
        self.in_span = self.in_span.saturating_add(1);
        let flooded = self.in_span.max(self.in_last_span) >= FLOOD_FRAMES;
        let next_write = self.last_write? + PACE;
        (flooded && now < next_write).then_some(next_write)
    }

    /// The stream wrote its frames at `now`.
    pub fn wrote(&mut self, now: Instant) {
        self.last_write = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn a_quiet_stream_writes_every_frame_at_once() {
        let start = Instant::now();
        let mut pacer = Pacer::new(start);
        // Two frames 1 ms apart, then one a second: far below a flood.
        for at in [0, 1, 1_000, 1_001, 2_000, 2_001, 2_002] {
            let now = start + ms(at);
            assert_eq!(pacer.hold_until(now), None, "frame at {at} ms");
            pacer.wrote(now);
        }
    }

    #[test]
    fn a_flood_is_written_once_per_pace_and_no_frame_waits_longer() {
        let start = Instant::now();
        let mut pacer = Pacer::new(start);
        let mut writes = Vec::new();
        let mut release: Option<Instant> = None;
        // 1,000 frames a second for 200 ms; a write happens at a frame's time or at the
        // release the held frames wait for, whichever the caller meets first.
        for at in 0..200 {
            let now = start + ms(at);
            if let Some(due) = release.filter(|due| *due <= now) {
                pacer.wrote(due);
                writes.push(due);
                release = None;
            }
            match pacer.hold_until(now) {
                None => {
                    assert!(release.is_none(), "a frame overtook held ones at {at} ms");
                    pacer.wrote(now);
                    writes.push(now);
                }
                Some(until) => {
                    assert!(until - now <= PACE, "frame at {at} ms held too long");
                    assert_eq!(*release.get_or_insert(until), until);
                }
            }
        }
        // The first frames of the flood go at once; after that, one write per pace.
        let first_held = usize::try_from(FLOOD_FRAMES).expect("a small count");
        assert_eq!(
            writes[..first_held - 1],
            [0, 1, 2, 3, 4, 5, 6].map(|at| start + ms(at))
        );
        for pair in writes[first_held - 1..].windows(2) {
            assert!(pair[1] - pair[0] >= PACE, "writes closer than the pace");
        }
        assert!(writes.len() < 30, "{} writes for 200 frames", writes.len());
    }

    #[test]
    fn the_flood_ends_a_span_after_the_frames_thin_out() {
        let start = Instant::now();
        let mut pacer = Pacer::new(start);
        for at in 0..10 {
            let now = start + ms(at);
            if pacer.hold_until(now).is_none() {
                pacer.wrote(now);
            }
        }
        assert!(pacer.hold_until(start + ms(10)).is_some(), "still flooded");
        // A span later the last span still counts as a flood...
        assert!(
            pacer.hold_until(start + ms(105)).is_none(),
            "over a pace since the last write"
        );
        pacer.wrote(start + ms(105));
        assert!(pacer.hold_until(start + ms(106)).is_some());
        // ...but two quiet spans later a frame that follows a write closely goes at once.
        pacer.wrote(start + ms(400));
        assert_eq!(pacer.hold_until(start + ms(401)), None);
    }
}
