//! Accepting connections under a limit: at most `limits.maxConnections` open at once (each
//! holds a permit until it closes; while none is free, new ones wait in the kernel's backlog),
//! so a flood of idle connections cannot take every file descriptor from a node's fellow
//! orderers, peers and clients.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// An accepted connection that gives its permit back when it closes.
pub struct Connection {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

/// Connections from `listener`, at most `max` open at once.
pub fn limited(listener: TcpListener, max: usize) -> impl Stream<Item = io::Result<Connection>> {
    let permits = Arc::new(Semaphore::new(max));
    futures::stream::unfold((listener, permits), |(listener, permits)| async move {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore stays open");
        let item = match listener.accept().await {
            // No TCP_NODELAY here: with it the end-to-end benchmark spent 5-10 % more CPU per
            // transaction on 2 cores (more, smaller packets), and nodes never had it (tonic
            // ignores `Server::tcp_nodelay` for a custom incoming stream).
            Ok((stream, _)) => Ok(Connection {
                stream,
                _permit: permit,
            }),
            Err(err) => {
                // Out of descriptors or a reset before accept: do not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(err)
            }
        };
        Some((item, (listener, permits)))
    })
}

impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
