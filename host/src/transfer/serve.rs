//! The node's side of raw connections on its port ([`split_listener`]):
//! pulls (the path `Puller` and remote drivers' gets use) and pushes (remote
//! drivers' streamed puts, into `Uploads`).

use std::io::Write;
use std::net::Shutdown;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use reef_core::tls::{MaybeTls, SyncStream};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::upload::Uploads;
use reef_core::wire::{self, Kind, Request, MAGIC};

use crate::store::{ObjectId, ObjectStore};
use reef_core::{Caller, TenantId};

/// How long a holder waits for the first byte of a new connection (to tell a
/// pull from gRPC) and for the next request on an idle pull connection.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// A puller that takes nothing for this long is given up (it gives a holder
/// `PROGRESS_TIMEOUT`, 10 s, so it has failed over long before).
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request waits for a pending object to be sealed.
const SEAL_WAIT: Duration = Duration::from_secs(60);
/// Bytes per `write` of a reply (a bound on each blocking call, not a frame:
/// the bytes go out as one stream).
const WRITE_STEP: usize = 4 << 20;

/// Whose driver credential a whole `authorization` value (`Bearer <token>`)
/// is (a tenant's or the admin's); `None` when it is not a driver's.
pub type DriverCheck = Arc<dyn Fn(&[u8]) -> Option<Caller> + Send + Sync>;

/// Whether a tenant may read an object (`ObjectDirectory::may_use`: the
/// object's owner decides, asked over `Peer.ObjectAccess` when it is another
/// node).
pub type AccessCheck =
    Arc<dyn Fn(ObjectId, TenantId) -> futures::future::BoxFuture<'static, bool> + Send + Sync>;

/// Objects a connection's tenants were found allowed to read, so that the
/// stripes and chunks of one object are checked once. Bounded: when full it
/// is emptied and checks start again.
const ALLOWED_CACHE: usize = 1024;

/// What serving pull connections needs of the node.
pub struct Holder {
    pub store: Arc<ObjectStore>,
    /// The buffers remote drivers push into.
    pub uploads: Arc<Uploads>,
    /// The node credential: pulls between nodes carry it.
    pub token: String,
    /// Drivers' credentials: a remote driver's reads (pulls) and uploads
    /// (pushes) carry one. A push with the node credential is refused.
    pub drivers: DriverCheck,
    /// A tenant's pull reads only objects it may use (any other answers as
    /// an unknown id does); the admin's and nodes' read any.
    pub access: AccessCheck,
    /// Cancelled when the node stops: the listener and its connections end.
    pub stopping: tokio_util::sync::CancellationToken,
}

/// Accepts the connections of the node's TCP port: a pull connection (first
/// byte `MAGIC[0]`; under TLS, ALPN `reef-raw`) whose first request carries
/// the token is served on a blocking thread of its own (`serve_connection`);
/// every other connection goes, untouched (but handshaken under TLS), to the
/// returned stream, which the gRPC server serves. Ends when the stream is
/// dropped or the node stops; pull connections are then shut down (their
/// threads return at once, so the process does not wait for them to go idle).
pub fn split_listener(
    listener: TcpListener,
    holder: Holder,
    tls: Option<TlsAcceptor>,
) -> impl Stream<Item = std::io::Result<MaybeTls>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let stopping = holder.stopping.clone();
    let holder = Arc::new(holder);
    let open = Arc::new(OpenConnections::default());
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => break,
                () = stopping.cancelled() => break,
            };
            let stream = match accepted {
                Ok((stream, _)) => {
                    // Requests on it end the RPC thread's spin (`reef_core::spin`).
                    reef_core::spin::global().watch(&stream);
                    stream
                }
                Err(e) => {
                    // Out of descriptors and the like: the gRPC server would
                    // see the same error; keep accepting.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let tx = tx.clone();
            let holder = holder.clone();
            let open = open.clone();
            let tls = tls.clone();
            // Peeking (or the handshake) waits for the peer: never in the
            // accept loop.
            tokio::spawn(async move {
                let raw = match tls {
                    Some(tls) => match accept_tls(&tls, stream).await {
                        Some(Split::Raw(stream)) => stream,
                        Some(Split::Grpc(stream)) => return drop(tx.send(Ok(stream))),
                        None => return,
                    },
                    None => {
                        let mut first = [0u8; 1];
                        match tokio::time::timeout(IDLE_TIMEOUT, stream.peek(&mut first)).await {
                            Ok(Ok(1)) if first[0] == MAGIC[0] => MaybeTls::Plain(stream),
                            Ok(Ok(_)) => return drop(tx.send(Ok(MaybeTls::Plain(stream)))),
                            // Closed, failed or silent before its first byte.
                            Ok(Err(_)) | Err(_) => return,
                        }
                    }
                };
                serve_raw(holder, open, raw).await;
            });
        }
        open.close_all();
    });
    tokio_stream::wrappers::UnboundedReceiverStream::new(rx)
}

/// A connection of the node's port told apart.
enum Split {
    Raw(MaybeTls),
    Grpc(MaybeTls),
}

/// The TLS handshake of a new connection, and what it is by its ALPN
/// protocol; `None` when the handshake failed or took too long.
async fn accept_tls(tls: &TlsAcceptor, stream: tokio::net::TcpStream) -> Option<Split> {
    let peer = stream.peer_addr().ok();
    match tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
        Ok(Ok(stream)) => {
            let raw = stream.get_ref().1.alpn_protocol() == Some(reef_core::tls::ALPN_RAW);
            let stream = MaybeTls::Tls(Box::new(stream.into()));
            Some(if raw {
                Split::Raw(stream)
            } else {
                Split::Grpc(stream)
            })
        }
        Ok(Err(e)) => {
            tracing::debug!(?peer, "TLS handshake refused: {e}");
            None
        }
        Err(_) => {
            tracing::debug!(?peer, "TLS handshake timed out");
            None
        }
    }
}

/// A raw connection: its first request authenticated here, then served on
/// a blocking thread of its own.
async fn serve_raw(holder: Arc<Holder>, open: Arc<OpenConnections>, mut stream: MaybeTls) {
    let Some(request) = first_request(&holder, &mut stream).await else {
        return;
    };
    let handle = tokio::runtime::Handle::current();
    let stream = match stream {
        MaybeTls::Plain(tcp) => tcp.into_std().map(SyncStream::Plain),
        MaybeTls::Tls(tls) => match *tls {
            tokio_rustls::TlsStream::Server(tls) => {
                let (tcp, conn) = tls.into_inner();
                tcp.into_std()
                    .map(|tcp| SyncStream::ServerTls(Box::new(rustls::StreamOwned::new(conn, tcp))))
            }
            tokio_rustls::TlsStream::Client(_) => return,
        },
    };
    let stream = match stream {
        Ok(stream) => stream,
        Err(e) => return tracing::warn!("pull connection: {e}"),
    };
    let Some(key) = open.add(stream.tcp()) else {
        return;
    };
    tokio::task::spawn_blocking(move || {
        serve_connection(&holder, &handle, stream, request);
        open.remove(key);
    });
}

/// The first request of a pull connection, read without a thread of its own;
/// `None` (the connection is dropped) when it is malformed, late or carries
/// a wrong token (which is told so first).
async fn first_request(
    holder: &Holder,
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
) -> Option<Request> {
    use tokio::io::AsyncWriteExt;
    let request = tokio::time::timeout(IDLE_TIMEOUT, wire::read_request_async(stream)).await;
    let request = match request {
        Ok(Ok(Some(request))) => request,
        Ok(Ok(None)) => return None,
        Ok(Err(e)) => {
            tracing::debug!("a bad pull request: {e}");
            return None;
        }
        Err(_) => return None,
    };
    let node = reef_proto::auth::CheckToken::new(&holder.token);
    if admits(holder, &node, request.kind, &request.auth).is_some() {
        return Some(request);
    }
    let message = if request.auth.is_empty() {
        "missing cluster token"
    } else {
        "wrong cluster token"
    };
    tracing::debug!("pull refused: {message}");
    let mut reply = Vec::new();
    wire::write_reply(&mut reply, wire::Status::Unauthenticated, 0, message).ok()?;
    let _ = tokio::time::timeout(SEND_TIMEOUT, async {
        stream.write_all(&reply).await?;
        stream.flush().await
    })
    .await;
    None
}

/// Who sent a raw request of `kind` with `auth`, if it may: a pull the node
/// credential or a driver's, a push a driver's.
fn admits(
    holder: &Holder,
    node: &reef_proto::auth::CheckToken,
    kind: Kind,
    auth: &[u8],
) -> Option<Caller> {
    match kind {
        Kind::Pull if node.accepts(auth) => Some(Caller::Node),
        Kind::Pull | Kind::Push => (holder.drivers)(auth),
    }
}

/// The pull connections being served, to shut them down when the node stops.
#[derive(Default)]
struct OpenConnections {
    state: std::sync::Mutex<OpenState>,
}

#[derive(Default)]
struct OpenState {
    next: u64,
    closed: bool,
    streams: std::collections::HashMap<u64, std::net::TcpStream>,
}

impl OpenConnections {
    /// Registers a connection (a clone of its socket); `None` once closed.
    fn add(&self, stream: &std::net::TcpStream) -> Option<u64> {
        let clone = stream.try_clone().ok()?;
        let mut state = self.state.lock().unwrap();
        if state.closed {
            return None;
        }
        state.next += 1;
        let key = state.next;
        state.streams.insert(key, clone);
        Some(key)
    }

    fn remove(&self, key: u64) {
        self.state.lock().unwrap().streams.remove(&key);
    }

    fn close_all(&self) {
        let mut state = self.state.lock().unwrap();
        state.closed = true;
        for (_, stream) in state.streams.drain() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Serves the pull requests of one connection (`first`, already read and
/// authenticated, then the next ones), one after the other, until the
/// puller closes it, stays idle for `IDLE_TIMEOUT`, sends a bad request or
/// a wrong token. Blocking: runs on a thread of its own.
fn serve_connection(
    holder: &Holder,
    handle: &tokio::runtime::Handle,
    stream: SyncStream,
    first: Request,
) {
    let tcp = stream.tcp().try_clone();
    let peer = stream
        .tcp()
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    if let Err(e) = serve_requests(holder, handle, stream, first) {
        tracing::debug!(peer, "pull connection closed: {e:#}");
    }
    if let Ok(tcp) = tcp {
        let _ = tcp.shutdown(Shutdown::Both);
    }
}

fn serve_requests(
    holder: &Holder,
    handle: &tokio::runtime::Handle,
    stream: SyncStream,
    first: Request,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let tcp = stream.tcp();
    tcp.set_nonblocking(false)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(IDLE_TIMEOUT))?;
    tcp.set_write_timeout(Some(SEND_TIMEOUT))?;
    let check = reef_proto::auth::CheckToken::new(&holder.token);
    // Replies are written through `conn.get_mut()` (and flushed: under TLS
    // they are records to send).
    let mut conn = std::io::BufReader::with_capacity(256, stream);
    let mut first = Some(first);
    let mut allowed = std::collections::HashSet::new();
    loop {
        let req = match first.take() {
            Some(req) => req,
            None => match Request::read_from(&mut conn).context("reading a pull request")? {
                Some(req) => req,
                None => return Ok(()),
            },
        };
        let Request {
            kind,
            auth,
            id,
            offset,
            end,
        } = req;
        let Some(caller) = admits(holder, &check, kind, &auth) else {
            let message = if auth.is_empty() {
                "missing cluster token"
            } else {
                "wrong cluster token"
            };
            reply(&mut conn, wire::Status::Unauthenticated, 0, message)?;
            anyhow::bail!("{message}");
        };
        if kind == Kind::Push {
            receive(holder, &mut conn, &caller, id, offset, end)?;
            continue;
        }
        if let Caller::Tenant(tenant) = &caller {
            let key = (tenant.clone(), id);
            if !allowed.contains(&key) {
                if !handle.block_on((holder.access)(id, tenant.clone())) {
                    // Answered as an id that never existed is.
                    let e = crate::error::ReefError::unknown_object(id);
                    reply(&mut conn, wire::error_status(e.code), 0, &e.to_string())?;
                    anyhow::bail!("object {id:#x}: refused to tenant {tenant}");
                }
                if allowed.len() >= ALLOWED_CACHE {
                    allowed.clear();
                }
                allowed.insert(key);
            }
        }
        let data = handle.block_on(async {
            match tokio::time::timeout(SEAL_WAIT, holder.store.get(id)).await {
                Ok(r) => r.map_err(|e| (wire::error_status(e.code), e.to_string())),
                Err(_) => Err((
                    wire::Status::Internal,
                    format!("TIMEOUT: object {id:#x} was not sealed within {SEAL_WAIT:?}"),
                )),
            }
        });
        let data = match data {
            Ok(data) => data,
            Err((status, message)) => {
                reply(&mut conn, status, 0, &message)?;
                anyhow::bail!("object {id:#x}: {message}");
            }
        };
        let total = data.len();
        if offset > total {
            let message =
                format!("offset {offset} is past the end of object {id:#x} ({total} bytes)");
            reply(&mut conn, wire::Status::OutOfRange, 0, &message)?;
            anyhow::bail!("{message}");
        }
        let end = end.min(total);
        wire::write_reply(conn.get_mut(), wire::Status::Ok, total, "")?;
        // Straight from the stored bytes (pinned by `data` until sent).
        let bytes = &data.as_slice()[offset as usize..end.max(offset) as usize];
        let writer = conn.get_mut();
        for step in bytes.chunks(WRITE_STEP) {
            writer
                .write_all(step)
                .with_context(|| format!("sending object {id:#x}"))?;
        }
        writer.flush()?;
    }
}

/// Writes a reply and sends it.
fn reply(
    conn: &mut std::io::BufReader<SyncStream>,
    status: wire::Status,
    size: u64,
    message: &str,
) -> std::io::Result<()> {
    let writer = conn.get_mut();
    wire::write_reply(writer, status, size, message)?;
    writer.flush()
}

/// Bytes asked of one `read` of a push (a bound on each blocking call).
const READ_STEP: u64 = 4 << 20;

/// One push: `[offset, end)` of object `id`'s upload, read from the socket
/// straight into the buffer. A refused range is told so; a connection that
/// ends or stalls mid-range discards the upload (the claim is dropped).
fn receive(
    holder: &Holder,
    conn: &mut std::io::BufReader<SyncStream>,
    caller: &Caller,
    id: u64,
    offset: u64,
    end: u64,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Read;
    let mut claim = match holder.uploads.claim(id, caller, offset, end) {
        Ok(claim) => claim,
        Err(e) => {
            reply(conn, wire::error_status(e.code), 0, &e.to_string())?;
            anyhow::bail!("push refused: {e}");
        }
    };
    reply(conn, wire::Status::Ok, claim.size(), "")?;
    let len = claim.len();
    let mut reached = 0;
    while reached < len {
        let step = (len - reached).min(READ_STEP);
        let n = match conn.read(claim.range_mut(reached, reached + step)) {
            Ok(0) => anyhow::bail!(
                "object {id:#x}: the push ended at byte {}",
                offset + reached
            ),
            Ok(n) => n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("object {id:#x}: receiving byte {}", offset + reached)
                })
            }
        };
        reached += n;
    }
    claim.complete();
    reply(conn, wire::Status::Ok, len, "")?;
    Ok(())
}
