//! [`Heartbeats`]: one ticker for every stream, its frame serialized once per tick.
//!
//! The streams are dealt into [`SLOTS`] slots, and each tick beats one slot, so that every
//! stream still beats once per interval but 10,000 streams never wake and write at the same
//! moment: a burst of heartbeats would delay the events sent during it. A new stream goes to
//! one of the half of the slots that beat longest ago next, in turn, so even streams that
//! connect together (after a restart) spread over half the interval.
//!
//! **Invariant:** each stream beats once per interval, at its slot's phase; its first beat
//! comes between half an interval and an interval after it subscribed.
//! **Invariant:** when the server shuts down the ticker stops and drops its senders, which
//! ends every open stream: shutdown never waits on a stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use app::protocol::sse::SseFrame;
use app::protocol::{Heartbeat, control};

use crate::clock::timestamp;

/// Phases of the heartbeat interval; a tick beats the streams of one.
const SLOTS: usize = 32;

/// The latest heartbeat frame of each slot; a stream sends it each time it changes.
#[derive(Clone, Debug)]
pub struct Heartbeats {
    slots: Arc<[watch::Receiver<Bytes>]>,
    /// The slot that beat last.
    beaten: Arc<AtomicUsize>,
    /// Counts the streams dealt, to deal the next into the next slot.
    dealt: Arc<AtomicUsize>,
}

impl Heartbeats {
    /// Starts the ticker on `tasks`; each slot beats every `interval`, the slots spread evenly
    /// over it, until `shutdown`.
    pub fn start(interval: Duration, tasks: &TaskTracker, shutdown: CancellationToken) -> Self {
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..SLOTS).map(|_| watch::channel(Bytes::new())).unzip();
        let period = interval / u32::try_from(SLOTS).expect("a few slots");
        let beaten = Arc::new(AtomicUsize::new(SLOTS - 1));
        let ticker_beaten = beaten.clone();
        tasks.spawn(async move {
            let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            for slot in (0..SLOTS).cycle() {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = ticker.tick() => {
                        senders[slot].send_replace(heartbeat_frame());
                        ticker_beaten.store(slot, Ordering::Relaxed);
                    }
                }
            }
        });
        Self {
            slots: receivers.into(),
            beaten,
            dealt: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A receiver for one stream that fires at its slot's beats from the next on: the slot
    /// is the next in turn of the half that beats in half an interval or later.
    pub fn subscribe(&self) -> watch::Receiver<Bytes> {
        let half = SLOTS / 2;
        let offset = half + 1 + self.dealt.fetch_add(1, Ordering::Relaxed) % half;
        let slot = (self.beaten.load(Ordering::Relaxed) + offset) % SLOTS;
        let mut receiver = self.slots[slot].clone();
        receiver.mark_unchanged();
        receiver
    }
}

fn heartbeat_frame() -> Bytes {
    let data = serde_json::to_string(&Heartbeat {
        timestamp: timestamp(),
    })
    .expect("a heartbeat is one string field");
    Bytes::from(SseFrame::new(control::HEARTBEAT, data).encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(32);

    #[tokio::test(start_paused = true)]
    async fn a_stream_beats_every_interval_and_stops_at_shutdown() {
        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let heartbeats = Heartbeats::start(INTERVAL, &tasks, shutdown.clone());
        let mut receiver = heartbeats.subscribe();
        let start = Instant::now();
        receiver.changed().await.expect("a beat");
        let first = start.elapsed();
        assert!(
            (INTERVAL / 2..=INTERVAL).contains(&first),
            "the first beat came after {first:?}"
        );
        let text = String::from_utf8(receiver.borrow_and_update().to_vec()).expect("utf-8");
        assert!(
            text.starts_with("event: heartbeat\ndata: {\"timestamp\":\""),
            "{text}"
        );
        receiver.changed().await.expect("a second beat");
        assert_eq!(start.elapsed(), first + INTERVAL);

        shutdown.cancel();
        assert!(
            receiver.changed().await.is_err(),
            "the stream did not learn of shutdown"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn streams_beat_at_phases_spread_over_the_interval() {
        let tasks = TaskTracker::new();
        let heartbeats = Heartbeats::start(INTERVAL, &tasks, CancellationToken::new());
        let start = Instant::now();
        let beats = (0..SLOTS * 2).map(|_| {
            let mut receiver = heartbeats.subscribe();
            async move {
                receiver.changed().await.expect("a beat");
                start.elapsed()
            }
        });
        let mut firsts = futures_util::future::join_all(beats).await;
        firsts.sort();

        // Streams that subscribe together go to the later half of the phases, four to each.
        let period = INTERVAL / u32::try_from(SLOTS).expect("a few slots");
        let phases: Vec<Duration> = (SLOTS / 2 + 1..=SLOTS)
            .flat_map(|phase| [period * u32::try_from(phase).expect("a few slots"); 4])
            .collect();
        assert_eq!(firsts, phases);
    }
}
