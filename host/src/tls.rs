//! The node's TLS listeners (`host start --tls-cert --tls-key`): the
//! acceptors of its ports, and [`Incoming`], the accepted (and, under TLS,
//! handshaken) connections of an HTTP listener (dashboard, `/metrics`).
//! The gRPC port splits its own connections (`transfer::split_listener`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use reef_core::tls::{self, MaybeTls, TlsError};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// A handshake not done in this long is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The node's server side of TLS: one certificate, two sets of protocols.
#[derive(Clone)]
pub struct ServerTls {
    /// The node's port: gRPC (`h2`) and raw object connections.
    pub node: TlsAcceptor,
    /// The dashboard and `/metrics` (HTTP/1.1).
    pub http: TlsAcceptor,
}

impl ServerTls {
    pub fn load(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        Ok(ServerTls {
            node: TlsAcceptor::from(tls::server_config(
                cert,
                key,
                &[tls::ALPN_H2, tls::ALPN_RAW],
            )?),
            http: TlsAcceptor::from(tls::server_config(cert, key, &[tls::ALPN_HTTP1])?),
        })
    }
}

/// Connections accepted on an HTTP listener, handshaken first under TLS
/// (each in a task of its own: a slow client holds no one up).
pub struct Incoming {
    rx: mpsc::Receiver<(MaybeTls, SocketAddr)>,
    local: SocketAddr,
}

impl Incoming {
    /// Accepts on `listener` until `stopping` is cancelled.
    pub fn new(
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        stopping: CancellationToken,
    ) -> std::io::Result<Incoming> {
        let local = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    () = stopping.cancelled() => return,
                    () = tx.closed() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            tracing::warn!("accepting a connection on {local}: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let _ = stream.set_nodelay(true);
                let Some(tls) = tls.clone() else {
                    let _ = tx.send((MaybeTls::Plain(stream), peer)).await;
                    continue;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx
                                .send((MaybeTls::Tls(Box::new(stream.into())), peer))
                                .await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake on {local}: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake on {local}: timed out"),
                    }
                });
            }
        });
        Ok(Incoming { rx, local })
    }

    /// The next connection; `None` once the node stops.
    pub async fn next(&mut self) -> Option<(MaybeTls, SocketAddr)> {
        self.rx.recv().await
    }
}

impl axum::serve::Listener for Incoming {
    type Io = MaybeTls;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (MaybeTls, SocketAddr) {
        match self.rx.recv().await {
            Some(accepted) => accepted,
            // Stopped: the server's graceful shutdown ends it.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
