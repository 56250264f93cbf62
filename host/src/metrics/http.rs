//! `GET /metrics` over HTTP/1.1 (hyper, already in the tree through tonic):
//! the exposition of [`Metrics`](super::Metrics), behind the cluster token
//! unless the node was started with `--metrics-no-auth`.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use reef_proto::auth::CheckToken;
use tokio_util::sync::CancellationToken;

/// What the endpoint serves.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Who may scrape.
#[derive(Clone)]
pub enum Access {
    /// `Authorization: Bearer <cluster token>`, compared in constant time.
    Token(CheckToken),
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
                let reply = respond(&access, &render, &request);
                async move { Ok::<_, Infallible>(reply) }
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

fn respond(access: &Access, render: &Render, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: metrics are at /metrics\n",
        );
    }
    if let Access::Token(check) = access {
        let granted = request
            .headers()
            .get(AUTHORIZATION)
            .is_some_and(|v| check.accepts(v.as_bytes()));
        if !granted {
            let mut reply = plain(
                StatusCode::UNAUTHORIZED,
                "missing or wrong cluster token (header `Authorization: Bearer <token>`)\n",
            );
            reply
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return reply;
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
