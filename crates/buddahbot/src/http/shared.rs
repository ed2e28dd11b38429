//! [`Shared`]: what is beneath a router's layer, behind an `Arc`.
//!
//! axum clones a route's service for every request, and each `from_fn` middleware clones the
//! service beneath it again before calling it. With a stack of layers, every one boxed by
//! `Router::layer`, a request made a deep copy of the whole stack beneath each layer (seven
//! copies of a function's method router, ~40 allocations per request). Put between the
//! layers, [`Shared`] makes each copy a reference count; the service it holds is cloned once,
//! when it is called.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use tower::{Layer, Service, ServiceExt, util::Oneshot};

/// A service behind an `Arc`, cloned when called.
///
/// It reports ready at once and lets the clone it calls be polled ready first (`oneshot`), so
/// it suits services that are always ready, as axum's routes and middleware are.
#[derive(Debug)]
pub struct Shared<S>(Arc<S>);

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<S, R> Service<R> for Shared<S>
where
    S: Service<R> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Oneshot<S, R>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: R) -> Self::Future {
        S::clone(&self.0).oneshot(request)
    }
}

/// The layer that makes [`Shared`]s: `router.layer((middleware, SharedLayer))` puts the
/// router's routes behind an `Arc` under `middleware`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SharedLayer;

impl<S> Layer<S> for SharedLayer {
    type Service = Shared<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Shared(Arc::new(inner))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A service that counts its clones and answers with the request.
    struct Counted(Arc<AtomicUsize>);

    impl Clone for Counted {
        fn clone(&self) -> Self {
            self.0.fetch_add(1, Ordering::Relaxed);
            Self(Arc::clone(&self.0))
        }
    }

    impl Service<u32> for Counted {
        type Response = u32;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<u32, Self::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: u32) -> Self::Future {
            std::future::ready(Ok(request))
        }
    }

    #[tokio::test]
    async fn copies_share_the_service_and_a_call_clones_it_once() {
        let clones = Arc::new(AtomicUsize::new(0));
        let shared = SharedLayer.layer(Counted(Arc::clone(&clones)));
        let copies: Vec<_> = (0..10).map(|_| shared.clone()).collect();
        assert_eq!(clones.load(Ordering::Relaxed), 0);
        for (n, copy) in copies.into_iter().enumerate() {
            let n = u32::try_from(n).unwrap();
            assert_eq!(copy.oneshot(n).await.unwrap(), n);
        }
        assert_eq!(clones.load(Ordering::Relaxed), 10);
    }
}
