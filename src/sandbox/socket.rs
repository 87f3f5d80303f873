//! The sockets behind [`super::serve`], with a kill switch per connection so
//! that [`super::Fault::Reset`] and [`super::Fault::ResetAfterRun`] can
//! drop one without a byte of response.
//!
//! Why this way: a handler never sees its socket, and axum's `serve` owns
//! the connection task. Rather than re-implement that loop (accepting,
//! graceful shutdown) on hyper directly, `serve` gets a listener whose
//! streams carry a shared flag, and hands the same flag to every request of
//! the connection as its `ConnectInfo`. A `Reset` pulls the flag and
//! returns a throwaway response. From then on every read, write, flush or
//! shutdown of the stream fails, so hyper can put nothing on the wire: the
//! head it tries to write is refused, the connection errors out and is
//! dropped. Before failing, the stream sets `SO_LINGER` to zero, so the
//! drop sends a TCP reset rather than an orderly close. The guarantee rests
//! on the I/O layer, not on when hyper happens to flush.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Shared by one connection's stream and the requests on it.
#[derive(Clone, Debug, Default)]
pub(crate) struct KillSwitch(Arc<AtomicBool>);

impl KillSwitch {
    /// Dooms the connection: nothing more is read or written on it.
    pub fn pull(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn is_pulled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for KillSwitch {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        stream.io().switch.clone()
    }
}

/// A TCP listener whose streams can be killed.
#[derive(Debug)]
pub(crate) struct KillableListener(pub TcpListener);

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // axum's own accept loop: it retries and backs off on errors.
        let (inner, addr) = Listener::accept(&mut self.0).await;
        let stream = KillableStream {
            inner,
            switch: KillSwitch::default(),
        };
        (stream, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A TCP stream that fails every operation once its switch is pulled.
#[derive(Debug)]
pub(crate) struct KillableStream {
    inner: TcpStream,
    switch: KillSwitch,
}

impl KillableStream {
    /// The error once killed; also arms the reset for when the stream drops.
    fn killed(&self) -> io::Error {
        // Best effort: should it fail, the drop still closes the
        // connection, only with FIN instead of RST.
        let _ = self.inner.set_zero_linger();
        io::Error::new(io::ErrorKind::ConnectionReset, "sandbox fault: reset")
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.switch.is_pulled() {
            return Poll::Ready(Err(self.killed()));
        }
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.switch.is_pulled() {
            return Poll::Ready(Err(self.killed()));
        }
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.switch.is_pulled() {
            return Poll::Ready(Err(self.killed()));
        }
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.switch.is_pulled() {
            return Poll::Ready(Err(self.killed()));
        }
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    /// Refused once killed too: a shutdown would send FIN before the reset.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.switch.is_pulled() {
            return Poll::Ready(Err(self.killed()));
        }
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
