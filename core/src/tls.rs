//! TLS for Reef's TCP connections (rustls with ring): reading certificates
//! and keys, the client side every Reef client shares (gRPC through tonic,
//! raw object connections through rustls directly) and the streams that may
//! or may not be encrypted.
//!
//! One port carries gRPC and raw object connections; under TLS they are told
//! apart by ALPN: gRPC clients ask for `h2`, raw ones for [`ALPN_RAW`].
//!
//! A node installs its cluster CA once ([`install`]): every client inside
//! the node process then connects with TLS, verifying the peer against that
//! CA. Drivers pass theirs explicitly ([`crate::channel::endpoint_with`]).

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, StreamOwned};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{ErrorCode, ReefError};

/// The ALPN protocol of raw object connections (pulls and pushes).
pub const ALPN_RAW: &[u8] = b"reef-raw";
/// The ALPN protocol of gRPC (HTTP/2).
pub const ALPN_H2: &[u8] = b"h2";
/// The ALPN protocol of the dashboard and `/metrics` (HTTP/1.1).
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Why a certificate, key or CA could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key")]
    NoKey { path: PathBuf },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("the certificate {cert} does not go with the key {key}: {message}")]
    KeyMismatch {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
}

impl From<TlsError> for ReefError {
    fn from(e: TlsError) -> ReefError {
        ReefError::new(ErrorCode::BadArgument, e.to_string())
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The certificates (PEM) in `path`, in order; at least one.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Invalid {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The private key (PEM: PKCS#8, PKCS#1 or SEC1) in `path`.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_owned(),
        },
        e => TlsError::Invalid {
            path: path.to_owned(),
            message: e.to_string(),
        },
    })
}

/// A server's TLS settings from its certificate chain and key, offering
/// the ALPN protocols `alpn` (most preferred first).
pub fn server_config(
    cert: &Path,
    key: &Path,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = read_certs(cert)?;
    let private = read_key(key)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid {
            path: cert.to_owned(),
            message: e.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| TlsError::KeyMismatch {
            cert: cert.to_owned(),
            key: key.to_owned(),
            message: e.to_string(),
        })?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// What a client trusts: the CA certificates (PEM) servers' certificates
/// must chain to.
#[derive(Clone)]
pub struct ClientTls {
    ca_pem: Arc<Vec<u8>>,
    /// For raw object connections (ALPN [`ALPN_RAW`]).
    raw: Arc<ClientConfig>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTls")
    }
}

impl ClientTls {
    /// Trusts the certificates in the PEM file `path` (a CA, or a
    /// self-signed server certificate).
    pub fn from_ca_file(path: &Path) -> Result<ClientTls, TlsError> {
        let certs = read_certs(path)?;
        let mut roots = RootCertStore::empty();
        for cert in certs {
            roots.add(cert).map_err(|e| TlsError::Invalid {
                path: path.to_owned(),
                message: format!("not a usable CA certificate: {e}"),
            })?;
        }
        let mut raw = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Invalid {
                path: path.to_owned(),
                message: e.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        raw.alpn_protocols = vec![ALPN_RAW.to_vec()];
        Ok(ClientTls {
            ca_pem: Arc::new(read(path)?),
            raw: Arc::new(raw),
        })
    }

    /// The same trust for a tonic channel (which asks for `h2`).
    pub fn tonic(&self) -> tonic::transport::ClientTlsConfig {
        tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&*self.ca_pem))
    }

    /// Starts TLS on a raw object connection to `address` (`host:port`)
    /// (blocking; the handshake happens with the first read or write).
    pub fn wrap_sync(&self, address: &str, tcp: std::net::TcpStream) -> io::Result<SyncStream> {
        let conn = ClientConnection::new(self.raw.clone(), server_name(address)?)
            .map_err(io::Error::other)?;
        Ok(SyncStream::Tls(Box::new(StreamOwned::new(conn, tcp))))
    }

    /// Completes a TLS handshake on a raw object connection to `address`.
    pub async fn wrap_async(
        &self,
        address: &str,
        tcp: tokio::net::TcpStream,
    ) -> io::Result<MaybeTls> {
        let connector = tokio_rustls::TlsConnector::from(self.raw.clone());
        let tls = connector.connect(server_name(address)?, tcp).await?;
        Ok(MaybeTls::Tls(Box::new(tls.into())))
    }
}

/// The name a server's certificate must carry: the host of `address`
/// (`host:port`, `[v6]:port`, or a URI).
fn server_name(address: &str) -> io::Result<ServerName<'static>> {
    let rest = address.split_once("://").map_or(address, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{address}: not a TLS server name: {e}"),
        )
    })
}

static INSTALLED: OnceLock<ClientTls> = OnceLock::new();

/// Makes `tls` the trust of every client of this process that is not given
/// one (a node's `--tls-ca`): from then on their addresses without a scheme
/// are dialled with TLS. Once per process; a second call is refused.
pub fn install(tls: ClientTls) -> Result<(), ReefError> {
    INSTALLED.set(tls).map_err(|_| {
        ReefError::new(
            ErrorCode::Internal,
            "the process's TLS trust is already installed",
        )
    })
}

/// The trust [`install`]ed in this process, if any.
pub fn installed() -> Option<&'static ClientTls> {
    INSTALLED.get()
}

/// A blocking connection: plain TCP, or TLS over it (a raw object
/// connection's client or server side).
pub enum SyncStream {
    Plain(std::net::TcpStream),
    Tls(Box<StreamOwned<ClientConnection, std::net::TcpStream>>),
    ServerTls(Box<StreamOwned<rustls::ServerConnection, std::net::TcpStream>>),
}

impl SyncStream {
    /// The TCP socket underneath (timeouts, shutdown).
    pub fn tcp(&self) -> &std::net::TcpStream {
        match self {
            SyncStream::Plain(s) => s,
            SyncStream::Tls(s) => s.get_ref(),
            SyncStream::ServerTls(s) => s.get_ref(),
        }
    }
}

impl Read for SyncStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            SyncStream::Plain(s) => s.read(buf),
            SyncStream::Tls(s) => s.read(buf),
            SyncStream::ServerTls(s) => s.read(buf),
        }
    }
}

impl Write for SyncStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            SyncStream::Plain(s) => s.write(buf),
            SyncStream::Tls(s) => s.write(buf),
            SyncStream::ServerTls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            SyncStream::Plain(s) => s.flush(),
            SyncStream::Tls(s) => s.flush(),
            SyncStream::ServerTls(s) => s.flush(),
        }
    }
}

/// An async connection: plain TCP, or TLS over it (either side).
pub enum MaybeTls {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::TlsStream<tokio::net::TcpStream>>),
}

impl MaybeTls {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &tokio::net::TcpStream {
        match self {
            MaybeTls::Plain(s) => s,
            MaybeTls::Tls(s) => s.get_ref().0,
        }
    }
}

impl AsyncRead for MaybeTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTls::Plain(s) => s.is_write_vectored(),
            MaybeTls::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}

impl tonic::transport::server::Connected for MaybeTls {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.tcp().connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_come_from_the_host_of_an_address() {
        let name = |a: &str| server_name(a).unwrap().to_str().into_owned();
        assert_eq!(name("127.0.0.1:6390"), "127.0.0.1");
        assert_eq!(name("https://node-a.example:6390/"), "node-a.example");
        assert_eq!(name("[::1]:6390"), "::1");
        assert_eq!(name("localhost"), "localhost");
        assert!(server_name("bad name:1").is_err());
    }

    #[test]
    fn a_missing_or_empty_file_is_named() {
        let err = ClientTls::from_ca_file(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let dir = std::env::temp_dir().join(format!("reef-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = ClientTls::from_ca_file(&empty).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
        let err = read_key(&empty).unwrap_err();
        assert!(matches!(err, TlsError::NoKey { .. }), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
