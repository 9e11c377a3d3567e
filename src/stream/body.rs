//! [`EventStream`]: the body of one `GET /api/events/stream` response.
//!
//! A hand-written `Stream` whose futures live as long as the connection, so a delivery
//! costs one poll and no registration churn. It yields `connected`, then the
//! subscription's `resync` when needed, the subscription's frames and heartbeats,
//! and ends with `auth_expired` at the token's expiry or when its session ends, or when the
//! server shuts down: then at a random moment within the shutdown spread, after a `retry:`
//! drawn at random too, so that the clients of a stopping server do not all come back in
//! the same second. A flooded stream holds its frames and writes them together, at most once
//! per [`PACE`](crate::stream::pacing::PACE) ([`Pacer`]).
//!
//! **Invariant:** dropping it (the client went away) releases the subscription, the timers
//! and the open-streams gauge at once. It holds at most [`MAX_HELD_FRAMES`] frames, each at
//! most [`PACE`](crate::stream::pacing::PACE), and sends every held frame before its last one.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::ReusableBoxFuture;

use app::protocol::sse::SseFrame;
use app::protocol::{Notice, control};

use crate::auth::revocation::StreamEnd;
use crate::events::{Delivery, Subscription};
use crate::metrics::{Metrics, OpenStreamGuard};
use crate::random::random_below;
use crate::stream::pacing::{MAX_HELD_FRAMES, Pacer};
use crate::stream::per_user::UserStreamSlot;

type Next<T> = ReusableBoxFuture<'static, T>;

/// The least `retry:` a stopping server sends: its clients wait at least this long.
const MIN_SHUTDOWN_RETRY: Duration = Duration::from_secs(1);

/// When a stream ends, besides its client going away.
#[derive(Debug)]
pub struct StreamEnds {
    /// The token's expiry.
    pub expires_at: Instant,
    /// Says when the token's session ends (for a login's token; a service's names none).
    pub session_end: Option<Arc<StreamEnd>>,
    /// The window over which a stopping server ends its streams (`SHUTDOWN_SPREAD_SECS`).
    pub shutdown_spread: Duration,
}

/// The frames of one stream, as the response body.
pub struct EventStream {
    /// The `connected` frame, until it is sent.
    connected: Option<Bytes>,
    delivery: Next<(Delivery, Subscription)>,
    /// Frames taken from the subscription and not sent yet, oldest first, each with when its
    /// event was published (`None` for a notice); at most [`MAX_HELD_FRAMES`].
    held: Vec<(Bytes, Option<Instant>)>,
    pacer: Pacer,
    /// Fires when the held frames are due; made at the stream's first flood.
    release: Option<Pin<Box<Sleep>>>,
    heartbeat: Next<(bool, watch::Receiver<Bytes>)>,
    /// Fires at the token's `exp`.
    expiry: Pin<Box<Sleep>>,
    /// The window over which a stopping server ends its streams.
    shutdown_spread: Duration,
    /// Once the server stops: fires at this stream's moment to end.
    closing: Option<Pin<Box<Sleep>>>,
    /// Says when the token's session ends (for a login's token; a service's names none).
    session_end: Option<Arc<StreamEnd>>,
    metrics: Arc<Metrics>,
    finished: bool,
    _open: OpenStreamGuard,
    /// One of the user's `MAX_STREAMS_PER_USER`, given back when the stream ends.
    _user_slot: UserStreamSlot,
}

impl EventStream {
    /// A stream that sends `connected` (already encoded), then `subscription`'s frames and
    /// heartbeats until `ends.expires_at` or `ends.session_end`, or the server stops (then
    /// within `ends.shutdown_spread`), holding `user_slot` meanwhile.
    pub fn new(
        connected: Bytes,
        subscription: Subscription,
        heartbeats: watch::Receiver<Bytes>,
        ends: StreamEnds,
        metrics: Arc<Metrics>,
        user_slot: UserStreamSlot,
    ) -> Self {
        let StreamEnds {
            expires_at,
            session_end,
            shutdown_spread,
        } = ends;
        Self {
            connected: Some(connected),
            delivery: ReusableBoxFuture::new(next_delivery(subscription)),
            held: Vec::new(),
            pacer: Pacer::new(Instant::now()),
            release: None,
            heartbeat: ReusableBoxFuture::new(next_heartbeat(heartbeats)),
            expiry: Box::pin(tokio::time::sleep_until(expires_at)),
            shutdown_spread,
            closing: None,
            session_end,
            _open: metrics.stream_opened(),
            metrics,
            finished: false,
            _user_slot: user_slot,
        }
    }
}

async fn next_delivery(mut subscription: Subscription) -> (Delivery, Subscription) {
    let delivery = subscription.next().await;
    (delivery, subscription)
}

/// Waits for the next heartbeat; `false` when the ticker stopped (shutdown).
async fn next_heartbeat(mut receiver: watch::Receiver<Bytes>) -> (bool, watch::Receiver<Bytes>) {
    let beat = receiver.changed().await.is_ok();
    (beat, receiver)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The last frame of a stream its stopping server ends: a `retry:` of at least
/// [`MIN_SHUTDOWN_RETRY`], plus up to `spread` at random (no event: it dispatches nothing).
fn shutdown_retry_frame(spread: Duration) -> Bytes {
    let retry = millis(MIN_SHUTDOWN_RETRY) + random_below(millis(spread));
    Bytes::from(format!("retry: {retry}\n\n"))
}

fn notice_frame(event: &str, reason: &str) -> Bytes {
    let data = serde_json::to_string(&Notice {
        reason: reason.to_owned(),
    })
    .expect("a notice is one string field");
    Bytes::from(SseFrame::new(event, data).encode())
}

impl EventStream {
    /// Takes what the subscription has ready, until a frame is due or [`MAX_HELD_FRAMES`] are
    /// held, and says what to send: `Some(Some(bytes))` the frames due, `Some(None)` the end
    /// (the bus stopped, nothing held), `None` nothing yet.
    ///
    /// A due frame goes at once, without polling the subscription again first: another poll
    /// would wait on the bus's channel a second time for every delivery.
    fn poll_deliveries(&mut self, cx: &mut Context<'_>) -> Option<Option<Bytes>> {
        let mut due = false;
        let mut closed = false;
        while !due && self.held.len() < MAX_HELD_FRAMES {
            let Poll::Ready((delivery, subscription)) = self.delivery.poll(cx) else {
                break;
            };
            self.delivery.set(next_delivery(subscription));
            match delivery {
                Delivery::Frame(frame) => {
                    match self.pacer.hold_until(Instant::now()) {
                        None => due = true,
                        Some(until) if self.held.is_empty() => {
                            let release = self
                                .release
                                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until)));
                            release.as_mut().reset(until);
                        }
                        Some(_) => {}
                    }
                    self.held.push((frame.bytes, Some(frame.published_at)));
                }
                Delivery::Resync { reason } => {
                    self.metrics.resync_sent();
                    self.held
                        .push((notice_frame(control::RESYNC, reason), None));
                    due = true;
                }
                Delivery::Lagged { dropped } => {
                    self.metrics.backlog_dropped(dropped);
                    self.metrics.resync_sent();
                    let reason = "the stream fell too far behind and its backlog was dropped";
                    self.held
                        .push((notice_frame(control::RESYNC, reason), None));
                    due = true;
                }
                Delivery::Closed => {
                    self.finished = true;
                    closed = true;
                    break;
                }
            }
        }
        if self.held.is_empty() {
            return closed.then_some(None);
        }
        if due
            || closed
            || self.held.len() >= MAX_HELD_FRAMES
            || self
                .release
                .as_mut()
                .is_some_and(|release| release.as_mut().poll(cx).is_ready())
        {
            return Some(Some(self.take_held()));
        }
        None
    }

    /// The held frames, then `last`, as one chunk.
    fn after_held(&mut self, last: Bytes) -> Bytes {
        if self.held.is_empty() {
            return last;
        }
        self.held.push((last, None));
        self.take_held()
    }

    /// Hands every held frame over as one chunk, and counts their events delivered.
    fn take_held(&mut self) -> Bytes {
        self.pacer.wrote(Instant::now());
        for published_at in self.held.iter().filter_map(|(_, published)| *published) {
            self.metrics.event_delivered(published_at.elapsed());
        }
        if let [(bytes, _)] = self.held.as_slice() {
            let bytes = bytes.clone();
            self.held.clear();
            return bytes;
        }
        let length = self.held.iter().map(|(bytes, _)| bytes.len()).sum();
        let mut chunk = BytesMut::with_capacity(length);
        for (bytes, _) in self.held.drain(..) {
            chunk.extend_from_slice(&bytes);
        }
        chunk.freeze()
    }
}

impl Stream for EventStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        if let Some(frame) = this.connected.take() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if this.expiry.as_mut().poll(cx).is_ready() {
            this.finished = true;
            let frame = notice_frame(control::AUTH_EXPIRED, "the access token expired");
            return Poll::Ready(Some(Ok(this.after_held(frame))));
        }
        if this
            .session_end
            .as_ref()
            .is_some_and(|end| end.ended(cx.waker()))
        {
            this.finished = true;
            let frame = notice_frame(control::AUTH_EXPIRED, "the session ended");
            return Poll::Ready(Some(Ok(this.after_held(frame))));
        }
        if let Some(frames) = this.poll_deliveries(cx) {
            return Poll::Ready(frames.map(Ok));
        }
        if this.closing.is_none()
            && let Poll::Ready((beat, mut receiver)) = this.heartbeat.poll(cx)
        {
            if beat {
                let frame = receiver.borrow_and_update().clone();
                this.heartbeat.set(next_heartbeat(receiver));
                return Poll::Ready(Some(Ok(frame)));
            }
            // The server stops: this stream ends at its own moment within the spread.
            let moment = Duration::from_millis(random_below(millis(this.shutdown_spread)));
            this.closing = Some(Box::pin(tokio::time::sleep(moment)));
        }
        if let Some(closing) = &mut this.closing
            && closing.as_mut().poll(cx).is_ready()
        {
            this.finished = true;
            let frame = shutdown_retry_frame(this.shutdown_spread);
            return Poll::Ready(Some(Ok(this.after_held(frame))));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use tokio::sync::broadcast;

    use super::*;
    use crate::events::{Frame, Live};
    use crate::stream::pacing::{FLOOD_FRAMES, PACE};
    use crate::stream::per_user::StreamsPerUser;

    fn frame(seq: u64) -> Frame {
        Frame {
            seq,
            published_at: Instant::now(),
            bytes: Bytes::from(format!("id: {seq}\ndata: {{}}\n\n")),
        }
    }

    /// A stream of `live`'s frames, after its `connected` (already taken), and its heartbeat
    /// ticker: dropping that would start the stream's shutdown.
    async fn stream_of(live: broadcast::Receiver<Live>) -> (EventStream, watch::Sender<Bytes>) {
        let (ticker, heartbeats) = watch::channel(Bytes::new());
        let ends = StreamEnds {
            expires_at: Instant::now() + Duration::from_secs(3_600),
            session_end: None,
            shutdown_spread: Duration::from_secs(1),
        };
        let slot = StreamsPerUser::new(1).open("user").expect("a free slot");
        let subscription = Subscription::new(None, Vec::new(), live, 0);
        let mut stream = EventStream::new(
            Bytes::from_static(b"connected\n\n"),
            subscription,
            heartbeats,
            ends,
            Arc::new(Metrics::new()),
            slot,
        );
        assert_eq!(
            stream.next().await,
            Some(Ok(Bytes::from_static(b"connected\n\n")))
        );
        (stream, ticker)
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_goes_out_in_order_in_few_chunks_each_held_at_most_the_pace() {
        let (publisher, live) = broadcast::channel(1_024);
        let (mut stream, _ticker) = stream_of(live).await;
        let (chunks, collected) = tokio::join!(
            async {
                let mut chunks = Vec::new();
                while let Some(Ok(chunk)) = stream.next().await {
                    chunks.push((Instant::now(), chunk));
                }
                chunks
            },
            async {
                let mut sent = Vec::new();
                // 200 frames, one a millisecond.
                for seq in 1..=200 {
                    sent.push(Instant::now());
                    publisher
                        .send(Live::Frame(frame(seq)))
                        .expect("a subscriber");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                drop(publisher);
                sent
            }
        );
        let all: Vec<u8> = chunks
            .iter()
            .flat_map(|(_, chunk)| chunk.to_vec())
            .collect();
        let expected: Vec<u8> = (1..=200)
            .flat_map(|seq| frame(seq).bytes.to_vec())
            .collect();
        assert_eq!(all, expected, "every frame, once, in order");
        assert!(chunks.len() < 40, "{} chunks for 200 frames", chunks.len());
        // Each frame went out within the pace of its publication.
        let mut seq = 0;
        for (written_at, chunk) in &chunks {
            let frames = chunk.windows(2).filter(|pair| pair == b"\n\n").count();
            for _ in 0..frames {
                assert!(
                    *written_at - collected[seq] <= PACE,
                    "frame {} held too long",
                    seq + 1
                );
                seq += 1;
            }
        }
        // The flood's first frames went out alone, at once.
        let alone = usize::try_from(FLOOD_FRAMES).expect("a small count") - 1;
        assert!(
            chunks[..alone]
                .iter()
                .all(|(_, chunk)| chunk.starts_with(b"id: "))
        );
        assert_eq!(chunks[alone - 1].1, frame(7).bytes);
    }

    #[tokio::test(start_paused = true)]
    async fn held_frames_go_out_before_a_resync() {
        let (publisher, live) = broadcast::channel(1_024);
        let (mut stream, _ticker) = stream_of(live).await;
        for seq in 1..=10 {
            publisher
                .send(Live::Frame(frame(seq)))
                .expect("a subscriber");
            let chunk = stream.next().await.expect("a chunk").expect("infallible");
            assert_eq!(
                chunk,
                frame(seq).bytes,
                "each frame alone: nothing else was ready"
            );
        }
        // Flooded now: the next frame waits for the pace, and a resync sends it first.
        publisher
            .send(Live::Frame(frame(11)))
            .expect("a subscriber");
        let waiting = tokio::time::timeout(Duration::from_millis(1), stream.next()).await;
        assert!(waiting.is_err(), "frame 11 is held");
        publisher.send(Live::Resync("test")).expect("a subscriber");
        let chunk = stream.next().await.expect("a chunk").expect("infallible");
        let text = String::from_utf8(chunk.to_vec()).expect("text");
        assert!(text.starts_with("id: 11\n"), "{text}");
        assert!(text.contains("event: resync"), "{text}");
    }
}
