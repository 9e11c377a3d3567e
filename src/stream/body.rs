//! [`EventStream`]: the body of one `GET /api/events/stream` response.
//!
//! A hand-written `Stream` whose futures live as long as the connection, so a delivery
//! costs one poll and no registration churn. It yields `connected`, then the
//! subscription's `resync` when needed, the subscription's frames and heartbeats,
//! and ends with `auth_expired` at the token's expiry or when its session ends, or when the
//! server shuts down: then at a random moment within the shutdown spread, after a `retry:`
//! drawn at random too, so that the clients of a stopping server do not all come back in
//! the same second.
//!
//! **Invariant:** dropping it (the client went away) releases the subscription, the timers
//! and the open-streams gauge at once.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
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
            return Poll::Ready(Some(Ok(frame)));
        }
        if this
            .session_end
            .as_ref()
            .is_some_and(|end| end.ended(cx.waker()))
        {
            this.finished = true;
            let frame = notice_frame(control::AUTH_EXPIRED, "the session ended");
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Poll::Ready((delivery, subscription)) = this.delivery.poll(cx) {
            this.delivery.set(next_delivery(subscription));
            let frame = match delivery {
                Delivery::Frame(frame) => {
                    this.metrics.event_delivered(frame.published_at.elapsed());
                    frame.bytes
                }
                Delivery::Resync { reason } => {
                    this.metrics.resync_sent();
                    notice_frame(control::RESYNC, reason)
                }
                Delivery::Lagged { dropped } => {
                    this.metrics.backlog_dropped(dropped);
                    this.metrics.resync_sent();
                    notice_frame(
                        control::RESYNC,
                        "the stream fell too far behind and its backlog was dropped",
                    )
                }
                Delivery::Closed => {
                    this.finished = true;
                    return Poll::Ready(None);
                }
            };
            return Poll::Ready(Some(Ok(frame)));
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
            return Poll::Ready(Some(Ok(shutdown_retry_frame(this.shutdown_spread))));
        }
        Poll::Pending
    }
}
