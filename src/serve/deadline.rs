//! [`limit_request_time`]: the deadline of every request but the event stream, body included.
//!
//! **Invariant:** a request other than `GET /api/events/stream` gets its answer, or
//! `408 request_timeout`, within `REQUEST_TIMEOUT_SECS`: a client sending its body a byte at
//! a time, or a handler stuck on a slow dependency, cannot hold the connection longer.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use app::protocol::EVENT_STREAM_PATH;

use crate::error::ApiError;

/// The time a request may take, as the middleware's state.
#[derive(Debug, Clone, Copy)]
pub struct RequestDeadline(pub Duration);

/// Middleware: answers `408` when the request is not answered within the deadline.
pub async fn limit_request_time(
    State(RequestDeadline(limit)): State<RequestDeadline>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == EVENT_STREAM_PATH {
        return next.run(request).await;
    }
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::RequestTimeout.into_response(),
    }
}
