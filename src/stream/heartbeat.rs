//! [`Heartbeats`]: one ticker for every stream, its frame serialized once per tick.
//!
//! **Invariant:** when the server shuts down the ticker stops and drops its sender, which
//! ends every open stream: shutdown never waits on a stream.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use app::protocol::sse::SseFrame;
use app::protocol::{Heartbeat, control};

use crate::clock::timestamp;

/// The latest heartbeat frame; a stream sends it each time it changes.
#[derive(Clone, Debug)]
pub struct Heartbeats(watch::Receiver<Bytes>);

impl Heartbeats {
    /// Starts the ticker on `tasks`; it beats every `interval` until `shutdown`.
    pub fn start(interval: Duration, tasks: &TaskTracker, shutdown: CancellationToken) -> Self {
        let (sender, receiver) = watch::channel(Bytes::new());
        tasks.spawn(async move {
            let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = ticker.tick() => {
                        sender.send_replace(heartbeat_frame());
                    }
                }
            }
        });
        Self(receiver)
    }

    /// A receiver for one stream that fires at the next beat, not for past ones.
    pub fn subscribe(&self) -> watch::Receiver<Bytes> {
        let mut receiver = self.0.clone();
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

    #[tokio::test(start_paused = true)]
    async fn beats_every_interval_and_stops_at_shutdown() {
        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let heartbeats = Heartbeats::start(Duration::from_secs(30), &tasks, shutdown.clone());
        let mut receiver = heartbeats.subscribe();
        let start = Instant::now();
        receiver.changed().await.expect("a beat");
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        let text = String::from_utf8(receiver.borrow_and_update().to_vec()).expect("utf-8");
        assert!(
            text.starts_with("event: heartbeat\ndata: {\"timestamp\":\""),
            "{text}"
        );
        receiver.changed().await.expect("a second beat");
        assert_eq!(start.elapsed(), Duration::from_secs(60));

        shutdown.cancel();
        assert!(
            receiver.changed().await.is_err(),
            "the stream did not learn of shutdown"
        );
    }
}
