//! `GET /metrics` over HTTP/1.1 (hyper, already in the tree through tonic):
//! the exposition of [`Metrics`](super::Metrics), for the operator: the admin
//! or node credential, unless the node was started with `--metrics-no-auth`.
//! A tenant's token is refused (403): the series name every tenant's
//! modules, functions and failures.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

/// What the endpoint serves.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// What a scrape's `Authorization` header value is worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The admin or node credential.
    Granted,
    /// A tenant's credential: known, but not the operator's.
    Forbidden,
    /// Missing or unknown.
    Refused,
}

/// Judges a scrape's `Authorization` header (the node's API credential
/// check, given by the caller so this module needs no RPC types).
pub type Check = Arc<dyn Fn(Option<Vec<u8>>) -> BoxFuture<'static, Verdict> + Send + Sync>;

/// Who may scrape.
#[derive(Clone)]
pub enum Access {
    /// The credentials `Check` grants.
    Checked(Check),
    /// Anyone who reaches the port (`--metrics-no-auth`).
    Open,
}

/// Serves `/metrics` on `listener` (plain or TLS) until `stopping` is
/// cancelled.
pub async fn serve(
    mut listener: crate::tls::Incoming,
    access: Access,
    render: Render,
    stopping: CancellationToken,
) {
    loop {
        let (stream, _) = tokio::select! {
            _ = stopping.cancelled() => return,
            accepted = listener.next() => match accepted {
                Some(a) => a,
                None => return,
            },
        };
        let (access, render, stopping) = (access.clone(), render.clone(), stopping.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (access, render) = (access.clone(), render.clone());
                async move { Ok::<_, Infallible>(respond(&access, &render, &request).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => if let Err(e) = r {
                    tracing::debug!("metrics endpoint: {e}");
                },
                _ = stopping.cancelled() => {}
            }
        });
    }
}

async fn respond(
    access: &Access,
    render: &Render,
    request: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    if request.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: metrics are at /metrics\n",
        );
    }
    if let Access::Checked(check) = access {
        let header = request
            .headers()
            .get(AUTHORIZATION)
            .map(|v| v.as_bytes().to_vec());
        match check(header).await {
            Verdict::Granted => {}
            Verdict::Forbidden => {
                return plain(
                    StatusCode::FORBIDDEN,
                    "a tenant's token cannot read the node's metrics (they name every tenant's \
                     work): present the admin credential (<head data dir>/admin-token) or the \
                     node credential\n",
                )
            }
            Verdict::Refused => {
                let mut reply = plain(
                    StatusCode::UNAUTHORIZED,
                    "missing or unknown credential (header `Authorization: Bearer <admin token>`)\n",
                );
                reply
                    .headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return reply;
            }
        }
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    let mut reply = Response::new(Full::new(Bytes::from(render())));
    reply
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(super::CONTENT_TYPE));
    reply
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut reply = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    reply
}
