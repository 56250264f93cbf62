//! How every Reef gRPC client connects, and the server settings that match.
//!
//! One set of settings serves every purpose (driver sessions, node-to-node
//! calls, the control plane):
//! * `TCP_NODELAY`: most calls are small and latency-bound; Nagle's
//!   algorithm would hold them back by up to 40 ms.
//! * a 5 s connect timeout: a dead or wrong address fails fast instead of
//!   after the kernel's SYN retries (about two minutes).
//! * HTTP/2 windows of 16 MiB per stream and 64 MiB per connection: a put,
//!   get or pull of a large object is not throttled by the 64 KiB default
//!   to one window per round trip.
//! * HTTP/2 keep-alive pings every 10 s, also while idle: long-lived streams
//!   (a driver's session, the control plane's view subscription) notice a
//!   peer that vanished without closing the connection.
//!
//! Clients are generic over the generated client type, so the per-client
//! message size limits stay with each client.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint, Server};

use crate::tls::ClientTls;
use crate::{ErrorCode, ReefError, ReefResult};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const STREAM_WINDOW: u32 = 16 << 20;
pub const CONNECTION_WINDOW: u32 = 64 << 20;
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// The endpoint for `address` (`host:port` or a URI) with Reef's settings;
/// change what a caller needs (say, a shorter connect timeout) on it. With
/// a TLS trust [installed](crate::tls::install) in the process, an address
/// without a scheme is dialled with TLS.
pub fn endpoint(address: &str) -> ReefResult<Endpoint> {
    endpoint_with(address, crate::tls::installed())
}

/// [`endpoint`] with TLS verifying servers against `tls` (`None`: plain
/// unless the address says `https://`, which needs a trust).
pub fn endpoint_with(address: &str, tls: Option<&ClientTls>) -> ReefResult<Endpoint> {
    let uri = match (address.contains("://"), tls) {
        (true, _) => address.to_owned(),
        (false, Some(_)) => format!("https://{address}"),
        (false, None) => format!("http://{address}"),
    };
    let endpoint = Endpoint::from_shared(uri.clone()).map_err(|e| {
        ReefError::new(
            ErrorCode::BadArgument,
            format!("bad address {address}: {e}"),
        )
    })?;
    let endpoint = match tls {
        Some(tls) if uri.starts_with("https://") => {
            endpoint.tls_config(tls.tonic()).map_err(|e| {
                ReefError::new(
                    ErrorCode::BadArgument,
                    format!("TLS settings for {address}: {e}"),
                )
            })?
        }
        None if uri.starts_with("https://") => {
            return Err(ReefError::new(
                ErrorCode::BadArgument,
                format!(
                    "{address} asks for TLS but no CA is given (the driver's tls_ca, \
                     $REEF_TLS_CA, or a node's --tls-ca)"
                ),
            ))
        }
        _ => endpoint,
    };
    Ok(configure(endpoint).connect_timeout(CONNECT_TIMEOUT))
}

fn configure(endpoint: Endpoint) -> Endpoint {
    endpoint
        .tcp_nodelay(true)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_while_idle(true)
}

/// A channel to `address` that dials on its first call (and redials after
/// a failure); a call made while the address is unreachable fails with
/// `Unavailable`. Needs a tokio runtime.
pub fn lazy(address: &str) -> ReefResult<Channel> {
    Ok(endpoint(address)?.connect_lazy())
}

/// A channel to `address`, connected now.
pub async fn connect(address: &str) -> ReefResult<Channel> {
    connect_with(address, crate::tls::installed()).await
}

/// [`connect`] with TLS verifying the server against `tls`.
pub async fn connect_with(address: &str, tls: Option<&ClientTls>) -> ReefResult<Channel> {
    endpoint_with(address, tls)?.connect().await.map_err(|e| {
        ReefError::new(
            ErrorCode::Internal,
            format!("cannot connect to {address}{}", causes(&e)),
        )
    })
}

/// `: cause: its cause ...` of a transport error (a TLS failure is a few
/// levels down).
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

/// A channel over the Unix socket at `path` (a node's socket for drivers on
/// its machine), connected now.
pub async fn connect_unix(path: &str) -> ReefResult<Channel> {
    let socket = path.to_owned();
    // The URI is required by the API but unused: the connector dials the socket.
    configure(Endpoint::from_static("http://node.local"))
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                crate::spin::global().watch(&stream);
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .map_err(|e| {
            ReefError::new(
                ErrorCode::Internal,
                format!("cannot connect to {path}{}", causes(&e)),
            )
        })
}

/// A gRPC server with the settings that match the clients'.
pub fn server() -> Server {
    Server::builder()
        .tcp_nodelay(true)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        // Peers keep one call open per object they wait for (`Locate`): the
        // HTTP/2 default of a few hundred streams would block the rest.
        .max_concurrent_streams(Some(1 << 20))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_get_a_scheme() {
        assert_eq!(
            endpoint("127.0.0.1:6390").unwrap().uri().scheme_str(),
            Some("http")
        );
        assert_eq!(
            endpoint("http://example.org:1").unwrap().uri().to_string(),
            "http://example.org:1/"
        );
        // TLS needs a CA to verify the node against.
        let err = endpoint("https://example.org:1").unwrap_err();
        assert_eq!(err.code, ErrorCode::BadArgument);
        assert!(err.message.contains("no CA"), "{err}");
        let err = endpoint("not an address").unwrap_err();
        assert_eq!(err.code, ErrorCode::BadArgument);
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_error_naming_the_address() {
        // Bind then drop: the port is free and nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let err = connect(&address).await.unwrap_err();
        assert!(err.message.contains(&address), "{err}");
        let err = connect_unix("/nonexistent/reef.sock").await.unwrap_err();
        assert!(err.message.contains("/nonexistent/reef.sock"), "{err}");
    }
}
