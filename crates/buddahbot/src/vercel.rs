//! The adapter between `vercel_runtime` and our routers.
//!
//! # Design
//! `vercel_runtime::axum::VercelLayer` drops the runtime's `AppState`, and with it
//! `wait_until`, the only way to keep an invocation alive for work that outlives the response
//! (a reply still being read and stored after its client left). This layer does what
//! `VercelLayer` does (buffer the request body, stream `text/event-stream` and JSON responses)
//! and also hands the router a [`Background`] that registers tasks with `wait_until`.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use axum::{body::Body, response::Response};
use http_body_util::BodyExt;
use tower::{Layer, Service, ServiceExt};
use vercel_runtime::{AppState, Error, Request, ResponseBody, axum::StreamingUtils};

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
            StreamingUtils::process_response(response).await
        })
    }
}
