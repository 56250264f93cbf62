//! The web dashboard the head serves (`--dashboard-port`, 8265 by default,
//! loopback unless `--dashboard-host` says otherwise): HTML pages with a
//! little JavaScript that polls the JSON endpoints under `/api/`, which call
//! this node's [`StateApi`] and log reader in process.
//!
//! Every page and endpoint but `/login` and the static assets needs the
//! API's credentials ([`auth`]): a session cookie from `/login`, or
//! `Authorization: Bearer <token>`. Nothing here keeps anything per browser
//! beyond its (bounded) session, and every answer is one page of rows, so a
//! dashboard left open does not grow the node; at most
//! [`limit::MAX_REQUESTS`] requests are served at once, more are refused
//! with 503 ([`limit`]).

pub mod api;
pub mod auth;
pub mod limit;
mod pages;
mod shared;
pub mod timeline;

use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use reef_proto as pb;
use tokio_util::sync::CancellationToken;

use crate::node::Node;
use crate::rpc::state::api::StateApi;
use auth::{Access, Sessions};
pub use shared::Caller;
use shared::Dashboard;

/// The dashboard's routes for `node`, accepting `access`.
pub fn router(node: &Arc<Node>, access: Access) -> Router {
    let dashboard = Arc::new(Dashboard {
        api: StateApi::of(node),
        access,
        sessions: Sessions::default(),
    });
    let rows = |kind: pb::StateKind| {
        move |State(d): State<Arc<Dashboard>>, caller: Caller, Query(page): Query<api::Page>| {
            api::rows(d, caller, kind, page)
        }
    };
    let guarded = Router::new()
        .route("/api/overview", get(api::overview))
        .route("/api/tasks", get(api::tasks))
        .route("/api/actors", get(rows(pb::StateKind::Actors)))
        .route("/api/objects", get(rows(pb::StateKind::Objects)))
        .route("/api/groups", get(rows(pb::StateKind::Groups)))
        .route("/api/jobs", get(rows(pb::StateKind::Jobs)))
        .route("/api/logs", get(api::logs))
        .route("/api/timeline", get(api::timeline))
        .route("/api/{*rest}", get(not_found))
        .route("/", get(pages::page))
        .route("/{page}", get(pages::page))
        .route_layer(middleware::from_fn_with_state(
            dashboard.clone(),
            authenticate,
        ));
    let all = Router::new()
        .route("/login", get(pages::login_get).post(pages::login_post))
        .route("/logout", get(pages::logout).post(pages::logout))
        .route("/assets/{file}", get(pages::asset))
        .merge(guarded);
    limit::bounded(all)
        .layer(middleware::from_fn(harden))
        .with_state(dashboard)
}

/// Serves the dashboard on `listener` (plain or TLS) until `stopping` is
/// cancelled.
pub async fn serve(
    listener: crate::tls::Incoming,
    node: Arc<Node>,
    access: Access,
    stopping: CancellationToken,
) {
    let app = router(&node, access);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stopping.cancelled_owned())
        .await
    {
        tracing::warn!("dashboard: {e}");
    }
}

/// Lets a request through with its caller, or answers 401: JSON for the
/// API, the login page for a browser.
async fn authenticate(
    State(d): State<Arc<Dashboard>>,
    mut request: Request,
    next: Next,
) -> Response {
    match auth::caller(&d.access, &d.sessions, request.headers()).await {
        Some(viewer) => {
            request.extensions_mut().insert(Caller(viewer));
            next.run(request).await
        }
        None if request.uri().path().starts_with("/api/") => {
            let mut reply = (
                StatusCode::UNAUTHORIZED,
                Json(serde_json::json!({
                    "error": "missing or wrong credentials: log in at /login, or send \
                              `Authorization: Bearer <cluster token>`",
                    "code": "UNAUTHENTICATED",
                })),
            )
                .into_response();
            reply
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            reply
        }
        None => pages::login_page(StatusCode::UNAUTHORIZED, None),
    }
}

/// Headers every answer carries: nothing cached, framed or loaded from
/// elsewhere.
async fn harden(request: Request, next: Next) -> Response {
    let mut reply = next.run(request).await;
    let headers = reply.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"),
    );
    reply
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({"error": "no such endpoint", "code": "NOT_FOUND"})),
    )
        .into_response()
}
