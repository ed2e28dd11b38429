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
//! task and a channel as `VercelLayer` does. The runtime's socket has no `TCP_NODELAY`; with
//! the pump, a streamed response's head could leave alone and its first chunk wait behind
//! Nagle's algorithm for the client's delayed ACK (~40 ms). Handed over directly, a first chunk
//! that is already queued (the chat turn queues it before answering) leaves with the head.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{Mutex, PoisonError},
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

use crate::chat::Background;

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
