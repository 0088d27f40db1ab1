//! One client connection's controls: the [`ConnHandle`] every request carries in its
//! extensions, and the TCP stream that honours it. The `reset` fault aborts the handle, and the
//! stream then closes with `SO_LINGER` 0 so the client sees a TCP reset and no response.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// The handle of one client connection; in every request's extensions.
#[derive(Clone)]
pub struct ConnHandle(Arc<ConnControl>);

struct ConnControl {
    aborted: AtomicBool,
    notify: Notify,
}

impl fmt::Debug for ConnHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnHandle")
            .field("aborted", &self.is_aborted())
            .finish()
    }
}

impl ConnHandle {
    pub(crate) fn new() -> Self {
        ConnHandle(Arc::new(ConnControl {
            aborted: AtomicBool::new(false),
            notify: Notify::new(),
        }))
    }

    /// Drops the connection as soon as possible with a TCP reset; nothing more is sent. For an
    /// upgraded connection (a WebSocket), the reset happens when the socket is dropped.
    pub fn abort(&self) {
        self.0.aborted.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    /// Whether [`ConnHandle::abort`] was called.
    pub fn is_aborted(&self) -> bool {
        self.0.aborted.load(Ordering::SeqCst)
    }

    /// Resolves once [`ConnHandle::abort`] was called.
    pub(crate) async fn aborted(&self) {
        loop {
            let notified = self.0.notify.notified();
            if self.is_aborted() {
                return;
            }
            notified.await;
        }
    }
}

/// A TCP stream that closes with RST (SO_LINGER 0) when its connection was aborted.
pub(crate) struct AbortableStream {
    pub(crate) inner: TcpStream,
    pub(crate) handle: ConnHandle,
}

impl Drop for AbortableStream {
    fn drop(&mut self) {
        if self.handle.is_aborted() {
            let sock = socket2::SockRef::from(&self.inner);
            if let Err(e) = sock.set_linger(Some(Duration::ZERO)) {
                tracing::debug!(error = %e, "cannot set SO_LINGER for a reset");
            }
        }
    }
}

impl AsyncRead for AbortableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for AbortableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.handle.is_aborted() {
            return Poll::Ready(Err(std::io::ErrorKind::ConnectionAborted.into()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        if self.handle.is_aborted() {
            return Poll::Ready(Err(std::io::ErrorKind::ConnectionAborted.into()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
