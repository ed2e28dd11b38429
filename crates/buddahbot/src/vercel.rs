//! The adapter between `vercel_runtime` and our routers.
//!
//! # Design
//! `vercel_runtime::axum::VercelLayer` drops the runtime's `AppState`, and with it
//! `wait_until`, the only way to keep an invocation alive for work that outlives the response
//! (a reply still being read and stored after its client left). This layer does what
//! `VercelLayer` does (buffer the request body, stream the response) and also hands the router
//! a [`Background`] that registers tasks with `wait_until`.
//!
//! It also passes the response body straight to the runtime instead of pumping it through a
//! task and a channel as `VercelLayer` does, so a first chunk that is already queued (the chat
//! turn queues it before answering) leaves with the head.
//!
//! And it turns on `TCP_NODELAY` for the runtime's connections. `vercel_runtime::run` (2.4)
//! accepts them without it, so after a response's first write every further small write of a
//! stream waited for the client's delayed ACK: a flat ~40 ms on every streamed reply (measured
//! by `benches/chat.rs`). The runtime owns the listening socket and does not expose it, so on
//! the first request [`nodelay::on_port`] finds it (and the connections accepted so far) by
//! their local port and sets the option; Linux passes a listener's `TCP_NODELAY` on to every
//! connection it accepts later.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{Mutex, Once, PoisonError},
    task::{Context, Poll},
};

use axum::{
    body::{Body, Bytes},
    response::Response,
};
use http_body::Frame;
use http_body_util::BodyExt;
use tower::{Layer, Service, ServiceExt};
use vercel_runtime::{AppState, Error, Request, ResponseBody};

use crate::background::Background;

/// Wraps a router for `vercel_runtime::run`.
#[derive(Clone, Copy, Default)]
pub struct VercelAdapter;

impl<S> Layer<S> for VercelAdapter {
    type Service = VercelService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VercelService { inner }
    }
}

#[derive(Clone)]
pub struct VercelService<S> {
    inner: S,
}

impl<S> Service<(AppState, Request)> for VercelService<S>
where
    S: Service<axum::http::Request<Body>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = vercel_runtime::Response<ResponseBody>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, (state, request): (AppState, Request)) -> Self::Future {
        NODELAY.call_once(|| {
            let port = runtime_port();
            let sockets = nodelay::on_port(port);
            tracing::debug!(port, sockets, "TCP_NODELAY set on the runtime's sockets");
        });
        let service = self.inner.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let bytes = body.collect().await?.to_bytes();
            let mut request = axum::http::Request::from_parts(parts, Body::from(bytes));
            request
                .extensions_mut()
                .insert(Background::new(move |task| state.wait_until(task)));
            let response = match service.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let (parts, body) = response.into_parts();
            let body = SyncBody(Mutex::new(body)).map_err(|e| Box::new(e) as Error);
            Ok(vercel_runtime::Response::from_parts(
                parts,
                ResponseBody(body.boxed()),
            ))
        })
    }
}

static NODELAY: Once = Once::new();

/// The port `vercel_runtime::run` listens on: `VERCEL_DEV_PORT`, else 3000, as it decides.
fn runtime_port() -> u16 {
    std::env::var("VERCEL_DEV_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000)
}

/// Setting `TCP_NODELAY` on sockets this process did not create.
pub mod nodelay {
    /// Sets `TCP_NODELAY` on every TCP socket of this process whose local port is `port` (the
    /// listener and the connections it has accepted) and returns how many it changed. Linux
    /// only; elsewhere it does nothing.
    pub fn on_port(port: u16) -> usize {
        imp::on_port(port)
    }

    #[cfg(target_os = "linux")]
    mod imp {
        use std::mem::{size_of, zeroed};

        pub fn on_port(port: u16) -> usize {
            let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
                return 0;
            };
            fds.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
                .filter(|fd| local_port(*fd) == Some(port))
                .filter(|fd| set_nodelay(*fd))
                .count()
        }

        /// The local port of `fd` if it is an IPv4 or IPv6 socket.
        #[expect(
            unsafe_code,
            reason = "getsockname on a descriptor found in /proc/self/fd"
        )]
        fn local_port(fd: i32) -> Option<u16> {
            // SAFETY: `sockaddr_storage` is plain data for which all zeroes is valid, and it is
            // large enough for any address `getsockname` writes; `len` tells it so. A
            // descriptor that is not a socket (or was closed meanwhile) only makes the call
            // fail.
            let (rc, addr) = unsafe {
                let mut addr: libc::sockaddr_storage = zeroed();
                let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                let rc = libc::getsockname(fd, (&raw mut addr).cast(), &mut len);
                (rc, addr)
            };
            if rc != 0 {
                return None;
            }
            match i32::from(addr.ss_family) {
                // SAFETY: the family says which address type `getsockname` wrote.
                libc::AF_INET => Some(u16::from_be(unsafe {
                    (*(&raw const addr).cast::<libc::sockaddr_in>()).sin_port
                })),
                libc::AF_INET6 => Some(u16::from_be(unsafe {
                    (*(&raw const addr).cast::<libc::sockaddr_in6>()).sin6_port
                })),
                _ => None,
            }
        }

        #[expect(
            unsafe_code,
            reason = "setsockopt on a descriptor found in /proc/self/fd"
        )]
        fn set_nodelay(fd: i32) -> bool {
            let on: libc::c_int = 1;
            // SAFETY: passes a pointer to a live `c_int` and its size. On a descriptor that is
            // no TCP socket (or was reused meanwhile) the call fails and changes nothing.
            let rc = unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_NODELAY,
                    (&raw const on).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            rc == 0
        }
    }

    #[cfg(not(target_os = "linux"))]
    mod imp {
        pub fn on_port(_: u16) -> usize {
            0
        }
    }

    #[cfg(all(test, target_os = "linux"))]
    mod tests {
        use std::net::{TcpListener, TcpStream};

        #[test]
        fn the_listener_and_its_connections_get_tcp_nodelay() {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let _client = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let (before, _) = listener.accept().unwrap();
            assert!(!before.nodelay().unwrap());
            let other = TcpListener::bind("127.0.0.1:0").unwrap();

            let changed = super::on_port(port);

            assert_eq!(changed, 2, "the listener and the accepted connection");
            assert!(before.nodelay().unwrap());
            let _late_client = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let (after, _) = listener.accept().unwrap();
            assert!(after.nodelay().unwrap(), "inherited from the listener");
            let _c = TcpStream::connect(other.local_addr().unwrap()).unwrap();
            let (untouched, _) = other.accept().unwrap();
            assert!(!untouched.nodelay().unwrap(), "another port is left alone");
        }
    }
}

/// An axum [`Body`] (which is `Send` but not `Sync`) made `Sync` for the runtime's boxed body
/// type. The mutex is never contended: polling takes `&mut self` and uses `get_mut`.
struct SyncBody(Mutex<Body>);

impl http_body::Body for SyncBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let body = self
            .get_mut()
            .0
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        Pin::new(body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0
            .lock()
            .map(|body| body.is_end_stream())
            .unwrap_or(false)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0
            .lock()
            .map(|body| body.size_hint())
            .unwrap_or_default()
    }
}
