//! A tower layer on the gRPC servers: requests and latency per method.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use tonic::codegen::http;
use tower::{Layer, Service};

use super::Metrics;

/// Counts every request the wrapped server answers (see [`super::RpcMethod`]).
#[derive(Clone)]
pub struct RpcLayer(Arc<Metrics>);

impl RpcLayer {
    /// The layer for `metrics`; `None` when they are off (nothing to wrap).
    pub fn of(metrics: &Arc<Metrics>) -> Option<RpcLayer> {
        metrics.is_on().then(|| RpcLayer(metrics.clone()))
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B, R> Service<http::Request<B>> for RpcMetrics<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = self.metrics.rpc(request.uri().path());
        let start = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            let Some(method) = method else {
                return response;
            };
            // An error before the body is in the headers ("trailers only");
            // otherwise the call started well (its final status is in trailers).
            let code = match &response {
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0"),
                Err(_) => "transport",
            };
            method.answered(start.elapsed(), code);
            response
        })
    }
}
