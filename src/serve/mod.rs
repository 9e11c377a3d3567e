//! The HTTP listener: accepts connections and serves each either as a direct event stream or
//! through hyper and the Axum router.
//!
//! A connection whose first request is `GET /api/events/stream` is the common shape of an
//! event-stream client (a dedicated connection that stays open for hours). It is served by
//! [`crate::stream::serve_direct`], which holds a few hundred bytes per stream instead of
//! hyper's two 8 KiB connection buffers, and writes each frame with one plain write. Every
//! other connection, including a stream requested on a reused keep-alive connection, goes to
//! hyper with the bytes already read put back in front.
//!
//! **Invariant:** when the shutdown token fires the listener closes, hyper connections finish
//! their in-flight requests, direct streams end, and [`serve`] returns once all are gone.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use bytes::{Buf, Bytes};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::state::AppState;
use crate::stream::{self, RequestHead};

/// Longest wait for a new connection's first request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest first request head read before deciding; hyper takes anything bigger.
const MAX_HEAD: usize = 16 * 1024;

/// Serves `listener` until `shutdown` fires, then waits for every connection to end.
///
/// A failed `accept` (such as too many open files) is logged and retried, never fatal.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    state: AppState,
    shutdown: CancellationToken,
) {
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(error) => {
                // Out of file descriptors, or a connection reset before accept: back off
                // briefly rather than spin.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Event frames are small and latency matters: never let Nagle hold them back.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        connections.spawn(serve_connection(
            tcp,
            router.clone(),
            state.clone(),
            shutdown.clone(),
        ));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

async fn serve_connection(
    mut tcp: TcpStream,
    router: Router,
    state: AppState,
    shutdown: CancellationToken,
) {
    let mut head = Vec::with_capacity(1024);
    let read = tokio::select! {
        () = shutdown.cancelled() => return,
        read = tokio::time::timeout(HEAD_TIMEOUT, read_first_head(&mut tcp, &mut head)) => read,
    };
    match read {
        Ok(Ok(())) => {}
        Ok(Err(_)) | Err(_) if head.is_empty() => return,
        Ok(Err(_)) | Err(_) => {}
    }
    if let Some(request) = RequestHead::parse_event_stream(&head) {
        drop((head, router));
        stream::serve_direct(tcp, request, state).await;
        return;
    }
    drop(state);
    // Boxed, so that the direct streams' tasks are not as large as hyper's connection state.
    Box::pin(serve_with_hyper(tcp, Bytes::from(head), router, shutdown)).await;
}

/// Serves the connection with hyper, `prefix` being the bytes already read from it.
async fn serve_with_hyper(
    tcp: TcpStream,
    prefix: Bytes,
    router: Router,
    shutdown: CancellationToken,
) {
    let io = TokioIo::new(Prefixed { prefix, io: tcp });
    let service = TowerToHyperService::new(router);
    let builder = Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection_with_upgrades(io, service);
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

/// A connection with bytes already read from it put back in front.
struct Prefixed {
    prefix: Bytes,
    io: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.has_remaining() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
