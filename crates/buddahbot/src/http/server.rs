//! Serving a router on a socket of our own (the dev server, or any long-running host), with
//! what Vercel's edge does in front of the functions: a request head that takes longer than
//! `REQUEST_HEAD_TIMEOUT_MS` has its connection closed, a body whose next piece takes longer
//! than `REQUEST_BODY_TIMEOUT_MS` is answered `408 request_timeout`, and each request carries
//! its peer's address (`ConnectInfo`, the client address of a public route's limit).
//!
//! It does not route, authenticate or limit anything: the router does.
//!
//! # Design
//! `axum::serve` exposes none of hyper's timeouts, so connections are served by hyper's own
//! HTTP/1.1 connection builder, whose `header_read_timeout` closes a connection whose head
//! stalls (slow-loris); a closed connection is all such a client gets, since no request was
//! read. A stalled body is different: the request is known, so it gets an answer. The body is
//! wrapped in [`StallGuard`], which fails the read once no piece came for the timeout (as
//! nginx's `client_body_timeout`, between pieces rather than for the whole body, so a large
//! import on a slow link still goes through); whatever the handler made of that failure, the
//! answer is replaced by the 408.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{ConnectInfo, Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use http_body::Frame;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::net::TcpListener;

use crate::{config::HttpConfig, error::ApiError};

/// How long open connections may take to finish once shutdown began.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long a request may take to arrive.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// The whole head (request line and headers); then the connection is closed.
    pub head: Duration,
    /// Between two pieces of the body; then `408 request_timeout`.
    pub body: Duration,
}

impl From<&HttpConfig> for Timeouts {
    fn from(http: &HttpConfig) -> Self {
        Self {
            head: http.head_timeout,
            body: http.body_timeout,
        }
    }
}

/// Serves `router` on `listener` (TCP_NODELAY on every connection) until `shutdown`
/// resolves, then lets open connections finish for up to 10 s.
///
/// # Errors
/// Never, today: a failed accept (out of descriptors) is logged and retried.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let router = router.layer((
        middleware::from_fn_with_state(timeouts.body, answer_stalled),
        super::shared::SharedLayer,
    ));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(timeouts.head);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Nagle plus delayed ACKs would add ~40 ms to small keep-alive responses.
        let _ = stream.set_nodelay(true);
        let service = tower::ServiceExt::map_request(
            router.clone(),
            move |mut request: Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        );
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "a connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period; closing them");
    }
    Ok(())
}

/// Guards the request body; answers 408 when it stalled, whatever the handler answered.
async fn answer_stalled(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let stalled = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let request = Request::from_parts(
        parts,
        Body::new(StallGuard {
            inner: body,
            limit,
            wait: None,
            stalled: Arc::clone(&stalled),
        }),
    );
    let response = next.run(request).await;
    if stalled.load(Ordering::Relaxed) {
        return ApiError::RequestTimeout.into_response();
    }
    response
}

/// A request body that fails once its next piece has not come for `limit`, and says so.
struct StallGuard {
    inner: Body,
    limit: Duration,
    /// Armed while a piece is awaited.
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
    stalled: Arc<AtomicBool>,
}

/// The error a stalled body's read ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body stalled")]
struct Stalled;

impl http_body::Body for StallGuard {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.wait = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let limit = this.limit;
                let wait = this
                    .wait
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if wait.as_mut().poll(cx).is_ready() {
                    this.stalled.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(Stalled.into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
