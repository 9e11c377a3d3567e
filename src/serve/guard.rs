//! [`StallGuard`]: a connection's I/O that fails a write the client has not taken for the
//! stall limit, and [`Prefixed`]: a connection with bytes already read put back in front.
//!
//! Both HTTP paths write through a [`StallGuard`] (hyper and the direct event streams), so a
//! client that stops reading is closed after the same limit on either, with one mechanism.
//!
//! **Invariant:** a write that cannot complete at once arms one timer; any progress disarms
//! it; when it fires, the write fails with `TimedOut` and the connection is dropped.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Wraps a connection's I/O; fails writes stalled for longer than the limit.
#[derive(Debug)]
pub struct StallGuard<Io> {
    io: Io,
    stall_limit: Duration,
    /// Armed while a write waits for the client to take bytes.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<Io> StallGuard<Io> {
    /// `io` whose writes fail after waiting `stall_limit` for the client.
    pub fn new(io: Io, stall_limit: Duration) -> Self {
        Self {
            io,
            stall_limit,
            stalled: None,
        }
    }

    /// Disarms the timer on progress, arms it on a wait, and turns a wait past the limit
    /// into an error.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let limit = self.stall_limit;
                let timer = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if timer.as_mut().poll(cx).is_ready() {
                    self.stalled = None;
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client took no bytes for the stall limit",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for StallGuard<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for StallGuard<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_shutdown(cx);
        self.watch(cx, poll)
    }
}

/// A connection with bytes already read from it put back in front.
#[derive(Debug)]
pub struct Prefixed<Io> {
    prefix: Bytes,
    io: Io,
}

impl<Io> Prefixed<Io> {
    /// `io`, whose reads first return `prefix`.
    pub fn new(prefix: Bytes, io: Io) -> Self {
        Self { prefix, io }
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for Prefixed<Io> {
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

impl<Io: AsyncWrite + Unpin> AsyncWrite for Prefixed<Io> {
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

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_write_the_client_never_takes_fails_at_the_stall_limit() {
        // A pipe of 16 bytes that nobody reads stands for a client that stopped reading.
        let (writer, _reader) = tokio::io::duplex(16);
        let mut guarded = StallGuard::new(writer, Duration::from_secs(60));
        let started = tokio::time::Instant::now();
        let error = guarded
            .write_all(&[0_u8; 64])
            .await
            .expect_err("the write stalls");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_taking_bytes_is_not_closed() {
        let (writer, mut reader) = tokio::io::duplex(16);
        let mut guarded = StallGuard::new(writer, Duration::from_secs(60));
        let draining = tokio::spawn(async move {
            let mut taken = Vec::new();
            let mut buffer = [0_u8; 16];
            while taken.len() < 256 {
                tokio::time::sleep(Duration::from_secs(30)).await;
                let read = tokio::io::AsyncReadExt::read(&mut reader, &mut buffer)
                    .await
                    .expect("reads");
                taken.extend_from_slice(&buffer[..read]);
            }
            taken.len()
        });
        guarded
            .write_all(&[7_u8; 256])
            .await
            .expect("every piece went out within the limit");
        assert_eq!(draining.await.expect("no panic"), 256);
    }

    #[tokio::test]
    async fn prefixed_bytes_are_read_first() {
        let (mut writer, reader) = tokio::io::duplex(64);
        writer.write_all(b" world").await.expect("writes");
        drop(writer);
        let mut prefixed = Prefixed::new(Bytes::from_static(b"hello"), reader);
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut prefixed, &mut text)
            .await
            .expect("reads");
        assert_eq!(text, "hello world");
    }
}
