//! Event streams served straight on their TCP connection, without hyper.
//!
//! [`crate::serve`] hands over a connection whose first request is `GET /api/events/stream`.
//! The same extractors and [`super::open_stream`] decide the answer as on the Axum route; the
//! response is HTTP/1.1 with `Connection: close` and a body delimited by the close, so each
//! chunk of the stream body (a frame, or a flooded stream's held frames) goes out as one plain
//! write with no chunk framing.
//!
//! **Invariant:** the connection is watched for the client's close while the stream waits,
//! so a client that goes away releases its subscription at once; a client that takes no
//! bytes for the stall limit (two heartbeats) is closed by the [`StallGuard`] it is written
//! through, as on hyper's path, so one that cannot take even its `resync` does not hold a
//! connection for ever.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, Request, Version};
use axum::response::IntoResponse;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use app::protocol::EVENT_STREAM_PATH;

use crate::auth::ProjectAccess;
use crate::error::{ApiError, log_internal_cause};
use crate::serve::StallGuard;
use crate::stream::{DirectStreams, STREAM_HEADERS, open_stream};

/// Most headers read from a direct stream request.
const MAX_HEADERS: usize = 48;

/// The head of a `GET /api/events/stream` request, ready for the extractors.
#[derive(Debug)]
pub struct RequestHead(Parts);

impl RequestHead {
    /// The head in `bytes` when it is exactly one complete `GET` of the event stream (nothing
    /// after it), from `peer`; `None` for anything else, which hyper then serves.
    pub fn parse_event_stream(bytes: &[u8], peer: SocketAddr) -> Option<Self> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let httparse::Status::Complete(length) = request.parse(bytes).ok()? else {
            return None;
        };
        let path = request.path?;
        let is_stream = path == EVENT_STREAM_PATH
            || path
                .strip_prefix(EVENT_STREAM_PATH)
                .is_some_and(|rest| rest.starts_with('?'));
        if request.method != Some("GET") || !is_stream || length != bytes.len() {
            return None;
        }
        let mut builder = Request::builder().method(Method::GET).uri(path).version(
            if request.version == Some(0) {
                Version::HTTP_10
            } else {
                Version::HTTP_11
            },
        );
        for header in request.headers.iter() {
            let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
            let value = HeaderValue::from_bytes(header.value).ok()?;
            builder = builder.header(name, value);
        }
        let mut parts = builder.body(()).ok()?.into_parts().0;
        parts.extensions.insert(ConnectInfo(peer));
        Some(Self(parts))
    }
}

/// Answers the stream request on `tcp` and streams until either side ends it, or until the
/// client takes no bytes for `stall_limit`.
pub async fn serve_direct(
    mut tcp: TcpStream,
    head: RequestHead,
    context: Arc<DirectStreams>,
    stall_limit: Duration,
) {
    let RequestHead(mut parts) = head;
    let opened = match ProjectAccess::from_request_parts(&mut parts, &*context).await {
        Ok(access) => {
            open_stream(
                access,
                &parts.headers,
                context.event_bus.as_ref(),
                &context.streams,
                &context.authenticator.sessions,
            )
            .await
        }
        Err(error) => Err(error),
    };
    drop((parts, context));
    let stream = match opened {
        Ok(stream) => stream,
        Err(error) => {
            write_error(&mut tcp, error).await;
            return;
        }
    };

    let mut head = String::from("HTTP/1.1 200 OK\r\n");
    for (name, value) in STREAM_HEADERS {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("connection: close\r\n\r\n");
    let (mut reader, writer) = tcp.split();
    let mut writer = StallGuard::new(writer, stall_limit);
    if writer.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    tokio::pin!(stream);
    let mut probe = [0_u8; 64];
    loop {
        tokio::select! {
            biased;
            frame = stream.next() => match frame {
                Some(Ok(bytes)) => {
                    if writer.write_all(&bytes).await.is_err() {
                        tracing::debug!("closing a stream whose client went away or takes nothing");
                        return;
                    }
                }
                Some(Err(never)) => match never {},
                None => break,
            },
            // A stream's client sends nothing more; a read only tells that it went away.
            read = reader.read(&mut probe) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
        }
    }
    let _ = writer.shutdown().await;
}

/// Writes `error` as a complete `Connection: close` response, with its headers
/// (`Retry-After`, say).
async fn write_error(tcp: &mut TcpStream, error: ApiError) {
    let response = error.into_response();
    log_internal_cause(&response);
    let status = response.status();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    for (name, value) in response.headers() {
        if let Ok(value) = value.to_str() {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let Ok(body) = axum::body::to_bytes(response.into_body(), 64 * 1024).await else {
        return;
    };
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    if tcp.write_all(head.as_bytes()).await.is_ok() && tcp.write_all(&body).await.is_ok() {
        let _ = tcp.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_complete_lone_get_of_the_stream_is_served_directly() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().expect("an address");
        let head = |text: &str| RequestHead::parse_event_stream(text.as_bytes(), peer);
        let served = head(
            "GET /api/events/stream?projectId=p HTTP/1.1\r\nHost: x\r\nX-Project-Id: p\r\n\r\n",
        )
        .expect("a stream request");
        assert_eq!(served.0.uri.query(), Some("projectId=p"));
        assert_eq!(served.0.headers["x-project-id"], "p");
        assert_eq!(
            served
                .0
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(address)| *address),
            Some(peer)
        );

        assert!(
            head("GET /api/events/stream HTTP/1.1\r\nHost: x\r\n").is_none(),
            "partial"
        );
        assert!(head("POST /api/events/stream HTTP/1.1\r\n\r\n").is_none());
        assert!(head("GET /api/events/streams HTTP/1.1\r\n\r\n").is_none());
        assert!(head("GET /healthz HTTP/1.1\r\n\r\n").is_none());
        assert!(
            head("GET /api/events/stream HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n").is_none(),
            "a pipelined request after it goes to hyper"
        );
        assert!(head("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").is_none());
    }
}
