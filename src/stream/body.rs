//! [`EventStream`]: the body of one `GET /api/events/stream` response.
//!
//! A hand-written `Stream` whose futures live as long as the connection, so a delivery
//! costs one poll and no registration churn. It yields `connected`, then the
//! subscription's `resync` when needed, the subscription's frames and heartbeats,
//! and ends with `auth_expired` at the token's expiry or when its session ends, or when the
//! server shuts down.
//!
//! **Invariant:** dropping it (the client went away) releases the subscription, the timers
//! and the open-streams gauge at once.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

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
use crate::stream::per_user::UserStreamSlot;

type Next<T> = ReusableBoxFuture<'static, T>;

/// The frames of one stream, as the response body.
pub struct EventStream {
    /// The `connected` frame, until it is sent.
    connected: Option<Bytes>,
    delivery: Next<(Delivery, Subscription)>,
    heartbeat: Next<(bool, watch::Receiver<Bytes>)>,
    /// Fires at the token's `exp`.
    expiry: Pin<Box<Sleep>>,
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
    /// heartbeats until `expires_at` or `session_end`, holding `user_slot` meanwhile.
    pub fn new(
        connected: Bytes,
        subscription: Subscription,
        heartbeats: watch::Receiver<Bytes>,
        expires_at: Instant,
        session_end: Option<Arc<StreamEnd>>,
        metrics: Arc<Metrics>,
        user_slot: UserStreamSlot,
    ) -> Self {
        Self {
            connected: Some(connected),
            delivery: ReusableBoxFuture::new(next_delivery(subscription)),
            heartbeat: ReusableBoxFuture::new(next_heartbeat(heartbeats)),
            expiry: Box::pin(tokio::time::sleep_until(expires_at)),
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
        if let Poll::Ready((beat, mut receiver)) = this.heartbeat.poll(cx) {
            if !beat {
                this.finished = true;
                return Poll::Ready(None);
            }
            let frame = receiver.borrow_and_update().clone();
            this.heartbeat.set(next_heartbeat(receiver));
            return Poll::Ready(Some(Ok(frame)));
        }
        Poll::Pending
    }
}
