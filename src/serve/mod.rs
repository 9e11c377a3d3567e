//! The HTTP listener: accepts connections within the connection limits and serves each either
//! as a direct event stream or through hyper and the Axum router.
//!
//! A connection whose first request is `GET /api/events/stream` is the common shape of an
//! event-stream client (a dedicated connection that stays open for hours). It is served by
//! [`crate::stream::serve_direct`], which holds a few hundred bytes per stream instead of
//! hyper's two 8 KiB connection buffers, and writes each chunk with one plain write. Every
//! other connection, including a stream requested on a reused keep-alive connection, goes to
//! hyper with the bytes already read put back in front.
//!
//! The limits of [`ConnectionLimits`] hold on both paths through shared code: the connection
//! cap and the first head's timeout here, before the paths part; the write-stall close in
//! [`StallGuard`], which both paths write through; the per-user stream cap in
//! [`crate::stream`]. Only hyper's connections read later heads (the idle timeout) and bodies
//! (the body and request timeouts of the router).
//!
//! **Invariant:** at most `max_connections` connections are served at once; one more is
//! answered `503 overloaded` with `Retry-After` and closed, at the cost of one small write.
//! **Invariant:** when the shutdown token fires the listener closes, hyper connections finish
//! their in-flight requests, direct streams end, and [`serve`] returns once all are gone, or
//! after `shutdown_timeout`, closing what is left.

mod deadline;
mod guard;

pub use deadline::{RequestDeadline, limit_request_time};
pub use guard::{Prefixed, StallGuard};

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use bytes::Bytes;
use hyper::server::conn::http1::Builder;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::stream::{self, DirectStreams, RequestHead};

/// Largest first request head read before deciding; hyper takes anything bigger.
const MAX_HEAD: usize = 16 * 1024;
/// Largest read buffer of a hyper connection: a request head must fit in it.
const MAX_HYPER_BUFFER: usize = 64 * 1024;
/// How long a refused connection is given to read its `503` before it is closed.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);
/// Refused connections lingering at once; past this, a refused connection is closed at once.
pub(crate) const MAX_LINGERING_REFUSALS: usize = 256;
/// How long a client refused for the connection limit is told to wait.
const CONNECTIONS_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The limits every connection is served within, whichever path serves it.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections served at once (`MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Time for a new connection's first request head (`HEADER_TIMEOUT_SECS`).
    pub header_timeout: Duration,
    /// Time a kept-alive connection waits for its next whole head (`IDLE_TIMEOUT_SECS`).
    pub idle_timeout: Duration,
    /// Time a write may wait for the client to take bytes (two heartbeats).
    pub stall_limit: Duration,
    /// Time a graceful stop waits for connections to finish (`SHUTDOWN_TIMEOUT_SECS`).
    pub shutdown_timeout: Duration,
}

/// Serves `listener` until `shutdown` fires, then waits for every connection to end, at most
/// `limits.shutdown_timeout`.
///
/// A failed `accept` (such as too many open files) is logged and retried, never fatal.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    direct: Arc<DirectStreams>,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let metrics = direct.streams.metrics();
    // A JoinSet, not a TaskTracker, so that the connections left at the shutdown deadline can
    // be aborted without each connection polling a cancellation future on every wake-up (that
    // cost 1 µs per delivery at 10,000 streams: they all shared the token's lock).
    let mut connections = JoinSet::new();
    let open = Arc::new(AtomicUsize::new(0));
    let lingering = Arc::new(AtomicUsize::new(0));
    let refusal = Bytes::from(refusal_response());
    // HTTP/1.1 only: browsers speak HTTP/2 only over TLS, which a proxy in front terminates.
    let mut hyper = Builder::new();
    hyper
        .timer(TokioTimer::new())
        // hyper restarts this timer whenever a connection goes idle, so it bounds both the
        // wait for the next request and the time to send its head.
        .header_read_timeout(limits.idle_timeout)
        .max_buf_size(MAX_HYPER_BUFFER);
    let hyper = Arc::new(hyper);
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        // Finished connections are collected here, so the set holds at most the connections
        // open since the last accept.
        while connections.try_join_next().is_some() {}
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, or a connection reset before accept: back off
                // briefly rather than spin.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if open.load(Ordering::Relaxed) >= limits.max_connections {
            metrics.connection_refused();
            refuse(tcp, refusal.clone(), &lingering);
            continue;
        }
        // Event frames are small and latency matters: never let Nagle hold them back.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        // The future is spawned as it is, with no wrapper: a direct stream's task lives for
        // hours, and each handle an async fn keeps is stored in every one of them.
        let accepted = Accepted {
            tcp,
            peer,
            _open: OpenConnection::new(&open, &metrics),
        };
        connections.spawn(serve_connection(
            accepted,
            router.clone(),
            direct.clone(),
            hyper.clone(),
            Timeouts {
                header: limits.header_timeout,
                stall: limits.stall_limit,
            },
            shutdown.clone(),
        ));
    }
    drop(listener);
    let finished = tokio::time::timeout(limits.shutdown_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            open = connections.len(),
            "connections still open at the shutdown deadline; closing them"
        );
        connections.shutdown().await;
    }
}

/// Counts a connection open until dropped.
struct OpenConnection {
    open: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
}

impl OpenConnection {
    fn new(open: &Arc<AtomicUsize>, metrics: &Arc<Metrics>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        metrics.connection_opened();
        Self {
            open: open.clone(),
            metrics: metrics.clone(),
        }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        self.metrics.connection_closed();
    }
}

/// The whole `503 overloaded` answer to a connection over the limit, written before reading.
fn refusal_response() -> Vec<u8> {
    let error = ApiError::Overloaded {
        limit: "connections",
        retry_after: CONNECTIONS_RETRY_AFTER,
    };
    let body = error.envelope();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        crate::error::whole_seconds(CONNECTIONS_RETRY_AFTER),
        body.len()
    )
    .into_bytes()
}

/// Answers `tcp` with `response` and closes it. The answer fits in the socket's buffer, so
/// it is written at once; the connection lingers a moment, reading what the client sent, so
/// that closing it does not reset the connection before the client reads the answer.
fn refuse(tcp: TcpStream, response: Bytes, lingering: &Arc<AtomicUsize>) {
    if tcp.try_write(&response).is_err()
        || lingering.fetch_add(1, Ordering::Relaxed) >= MAX_LINGERING_REFUSALS
    {
        lingering.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let lingering = lingering.clone();
    tokio::spawn(async move {
        let mut tcp = tcp;
        let _ = tokio::time::timeout(REFUSAL_LINGER, async {
            let _ = tcp.shutdown().await;
            let mut sink = [0_u8; 1024];
            while matches!(tcp.read(&mut sink).await, Ok(read) if read > 0) {}
        })
        .await;
        lingering.fetch_sub(1, Ordering::Relaxed);
    });
}

/// An accepted connection, counted open until dropped.
struct Accepted {
    tcp: TcpStream,
    peer: SocketAddr,
    _open: OpenConnection,
}

/// The timeouts [`serve_connection`] applies itself.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    /// For the first request head.
    header: Duration,
    /// For a write the client does not take.
    stall: Duration,
}

/// Reads the first request head within the header timeout, then serves the connection
/// directly (an event stream) or with hyper.
async fn serve_connection(
    accepted: Accepted,
    router: Router,
    direct: Arc<DirectStreams>,
    hyper: Arc<Builder>,
    timeouts: Timeouts,
    shutdown: CancellationToken,
) {
    let Accepted {
        mut tcp,
        peer,
        _open,
    } = accepted;
    let mut head = Vec::with_capacity(1024);
    let read = tokio::select! {
        () = shutdown.cancelled() => return,
        read = tokio::time::timeout(timeouts.header, read_first_head(&mut tcp, &mut head)) => read,
    };
    // Nothing, or half a head, within the header timeout (or before the client closed):
    // there is no request to answer.
    if !matches!(read, Ok(Ok(()))) {
        return;
    }
    if let Some(request) = RequestHead::parse_event_stream(&head, peer) {
        drop((head, router, hyper));
        stream::serve_direct(tcp, request, direct, timeouts.stall).await;
        return;
    }
    drop(direct);
    // Boxed, so that the direct streams' tasks are not as large as hyper's connection state.
    Box::pin(serve_with_hyper(
        tcp,
        peer,
        Bytes::from(head),
        router,
        &hyper,
        timeouts.stall,
        shutdown,
    ))
    .await;
}

/// Serves the connection with hyper, `prefix` being the bytes already read from it.
async fn serve_with_hyper(
    tcp: TcpStream,
    peer: SocketAddr,
    prefix: Bytes,
    router: Router,
    hyper: &Builder,
    stall_limit: Duration,
    shutdown: CancellationToken,
) {
    let io = TokioIo::new(StallGuard::new(Prefixed::new(prefix, tcp), stall_limit));
    let service = TowerToHyperService::new(
        router.map_request(move |request: Request<_>| with_peer(request, peer)),
    );
    let connection = hyper.serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::trace!(error = %error, "connection ended with an error");
            }
            return;
        }
        () = shutdown.cancelled() => connection.as_mut().graceful_shutdown(),
    }
    if let Err(error) = connection.await {
        tracing::trace!(error = %error, "connection ended with an error");
    }
}

/// `request` with the connection's peer address, as [`ConnectInfo`], for the extractors.
fn with_peer<B>(mut request: Request<B>, peer: SocketAddr) -> Request<B> {
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

/// Reads until the end of the first request head (a blank line), the size limit, or EOF.
async fn read_first_head(tcp: &mut TcpStream, head: &mut Vec<u8>) -> io::Result<()> {
    let mut chunk = [0_u8; 2048];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let read = tcp.read(&mut chunk).await?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..read]);
    }
    Ok(())
}
