//! `GET /api/events/stream`: a project's events as Server-Sent Events.
//!
//! **Invariant:** a stream carries only the project its token allows and the request names;
//! it starts with `connected`, then the replay after `Last-Event-ID` (or `resync`), then live
//! frames and heartbeats; it ends with `auth_expired` at the token's expiry or when its
//! session ends, and at shutdown.
//! Nothing compresses its body; only a flooded stream holds frames, each at most
//! `pacing::PACE` (33 ms), to write them together.
//! **Invariant:** at most `MAX_STREAMS_PER_USER` streams are open per token subject, on both
//! paths; one more is answered `429 rate_limited` with `Retry-After`. At most
//! `STREAM_ADMISSION_RATE` new streams are admitted per second per instance; one more is
//! answered `503 overloaded` with a jittered `Retry-After`. A stopping server ends its
//! streams over `SHUTDOWN_SPREAD_SECS`, each after a jittered `retry:`.

mod admission;
mod body;
mod direct;
mod heartbeat;
mod pacing;
mod per_user;

pub use direct::{RequestHead, serve_direct};
pub use heartbeat::Heartbeats;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use tokio::time::Instant;

use app::protocol::sse::SseFrame;
use app::protocol::{Connected, EVENT_STREAM_PATH, control};

use crate::auth::revocation::SessionRegistry;
use crate::auth::{Authenticator, ProjectAccess};
use crate::error::ApiError;
use crate::events::EventBus;
use crate::metrics::Metrics;
use crate::state::AppState;
use admission::StreamAdmission;
use body::{EventStream, StreamEnds};
use per_user::StreamsPerUser;

/// What the stream handler needs besides the bus: heartbeats, metrics, connection ids, the
/// count of each user's open streams, the admission rate and the shutdown spread.
#[derive(Clone, Debug)]
pub struct Streams {
    heartbeats: Heartbeats,
    metrics: Arc<Metrics>,
    next_connection: Arc<AtomicU64>,
    per_user: StreamsPerUser,
    admission: Arc<StreamAdmission>,
    shutdown_spread: Duration,
}

/// The limits of [`Streams`], from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct StreamLimits {
    /// Streams open at once per token subject (`MAX_STREAMS_PER_USER`).
    pub max_streams_per_user: usize,
    /// New streams admitted per second (`STREAM_ADMISSION_RATE`).
    pub admission_rate: usize,
    /// Window over which a stopping server ends its streams (`SHUTDOWN_SPREAD_SECS`).
    pub shutdown_spread: Duration,
}

impl Streams {
    /// The counters the streams (and the connections) count into.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Streams that beat with `heartbeats`, count into `metrics` and keep to `limits`.
    pub fn new(heartbeats: Heartbeats, metrics: Arc<Metrics>, limits: StreamLimits) -> Self {
        Self {
            heartbeats,
            metrics,
            next_connection: Arc::new(AtomicU64::new(1)),
            per_user: StreamsPerUser::new(limits.max_streams_per_user),
            admission: Arc::new(StreamAdmission::new(limits.admission_rate)),
            shutdown_spread: limits.shutdown_spread,
        }
    }
}

/// What a stream served directly on its connection needs, shared by every connection through
/// one `Arc`, so that a stream's task, which lives for hours, holds one pointer to it.
#[derive(Clone, FromRef)]
pub struct DirectStreams {
    /// Verifies the stream's token and its session.
    pub authenticator: Authenticator,
    /// The bus the stream subscribes to.
    pub event_bus: Arc<dyn EventBus>,
    /// Heartbeats, metrics and the per-user cap.
    pub streams: Streams,
}

/// The event stream route, for streams requested on connections hyper serves.
pub fn router() -> Router<AppState> {
    Router::new().route(EVENT_STREAM_PATH, get(stream_events))
}

/// The response headers of a stream: SSE, never cached, never buffered by a proxy.
const STREAM_HEADERS: [(&str, &str); 3] = [
    ("content-type", "text/event-stream"),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),
];

/// Opens a project's event stream (for a request on a connection hyper serves).
async fn stream_events(
    access: ProjectAccess,
    State(event_bus): State<Arc<dyn EventBus>>,
    State(streams): State<Streams>,
    State(authenticator): State<Authenticator>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let stream = open_stream(
        access,
        &headers,
        event_bus.as_ref(),
        &streams,
        &authenticator.sessions,
    )
    .await?;
    Ok((STREAM_HEADERS, Body::from_stream(stream)).into_response())
}

/// Subscribes `access`'s project after the request's `Last-Event-ID` and builds the body,
/// which ends when `sessions` says the token's session ended.
async fn open_stream(
    access: ProjectAccess,
    headers: &HeaderMap,
    event_bus: &dyn EventBus,
    streams: &Streams,
    sessions: &SessionRegistry,
) -> Result<EventStream, ApiError> {
    let user_slot = streams.per_user.open(&access.claims.sub)?;
    if let Err(refused) = streams.admission.admit() {
        streams.metrics.stream_refused();
        return Err(refused);
    }
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty());
    let subscription = event_bus.subscribe(&access.project, last_event_id).await?;

    let connection_id = format!(
        "conn_{:x}",
        streams.next_connection.fetch_add(1, Ordering::Relaxed)
    );
    tracing::debug!(%connection_id, project = %access.project, sub = %access.claims.sub, "stream opened");
    let connected = serde_json::to_string(&Connected {
        connection_id,
        project_id: access.project,
    })
    .expect("two strings always serialize");
    let connected = Bytes::from(SseFrame::new(control::CONNECTED, connected).encode());

    Ok(EventStream::new(
        connected,
        subscription,
        streams.heartbeats.subscribe(),
        StreamEnds {
            expires_at: expiry_instant(access.claims.exp),
            session_end: access.claims.sid.as_deref().map(|sid| sessions.watch(sid)),
            shutdown_spread: streams.shutdown_spread,
        },
        streams.metrics.clone(),
        user_slot,
    ))
}

/// The monotonic instant of a Unix-seconds expiry; a past one is now.
fn expiry_instant(exp: u64) -> Instant {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let remaining = Duration::from_secs(exp).saturating_sub(now);
    Instant::now() + remaining.min(Duration::from_secs(10 * 365 * 24 * 3600))
}
