//! The dashboard's bound on concurrent requests: at most [`MAX_REQUESTS`]
//! are served at once, across every route and connection; a request beyond
//! that is answered at once with 503 and `Retry-After` (load shedding),
//! never queued. So however many browsers poll or scripts hammer it, the
//! head holds at most that many requests' state (state-API fan-outs, rows,
//! JSON) at a time, and the gRPC API beside it keeps its CPU.

use axum::error_handling::HandleErrorLayer;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;

/// Requests served at once (a page polls a few endpoints a second).
pub const MAX_REQUESTS: usize = 32;
/// Seconds a refused client is told to wait.
pub const RETRY_AFTER_SECS: u32 = 1;

/// `router` with the bound: one semaphore shared by all its routes.
pub fn bounded<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                overloaded()
            }))
            .load_shed()
            .layer(GlobalConcurrencyLimitLayer::new(MAX_REQUESTS)),
    )
}

/// The answer to a request over the bound.
fn overloaded() -> Response {
    let mut reply = (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({
            "error": format!("the dashboard is serving {MAX_REQUESTS} requests already: \
                              retry in {RETRY_AFTER_SECS} s"),
            "code": "OVERLOADED",
        })),
    )
        .into_response();
    reply
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    reply
}
