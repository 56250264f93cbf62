//! Large objects to and from a node the driver cannot map (another machine,
//! or the same-machine path turned off): raw push and pull connections to
//! the node's port (`reef_core::wire`, the framing nodes pull objects from
//! each other with), each moving one contiguous range with no per-chunk
//! envelope, several at once for large objects.
//!
//! * **put** — the session creates a buffer of the declared size
//!   (`CreateBuffer { stream }`), pushes write their ranges straight from the
//!   caller's slice to the socket, and `Seal` makes the object. A put that
//!   fails or is dropped half-way closes its connections (the node discards
//!   the buffer) and sends `Release` for it.
//! * **get** — the node answers a `Get` with `streamed` (the size, the
//!   object pinned); pulls read their ranges straight into the result
//!   buffer, then the driver sends `Unpin`.
//!
//! Connections are kept (a few per node) and reused. Measured on one 2-core
//! machine over loopback (1 GiB; see `make bench`): the inline gRPC put moved
//! ~0.1 GB/s (one 1 GiB message: copied into tonic's encode buffer, HTTP/2
//! framed, reassembled and decoded on the node's RPC thread, then copied
//! into the store); raw connections move the bytes with the kernel's copy
//! alone.

use std::sync::Mutex;

use futures::future::try_join_all;
use reef_core::tls::{ClientTls, MaybeTls};
use reef_core::wire::{self, Kind, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Error, ErrorCode, Result};

/// Objects at least this large go over raw connections, smaller ones inline
/// in the session stream: below it, the two extra session round trips
/// (create, seal) of a streamed put cost more than the inline path's copies.
pub const STREAM_THRESHOLD: u64 = 1 << 20;
/// Each stripe (one connection) moves at least this much...
const STRIPE_MIN: u64 = 64 << 20;
/// ...and an object is cut into at most this many.
const MAX_STRIPES: u64 = 2;
/// Bytes per `read`/`write` call.
const STEP: usize = 8 << 20;
/// Idle connections kept.
const MAX_IDLE: usize = 8;

/// Raw connections to one node.
pub(crate) struct Streamer {
    address: String,
    /// `Bearer <token>`, presented with every request.
    auth: Vec<u8>,
    idle: Mutex<Vec<MaybeTls>>,
    /// TLS to the node (ALPN `reef-raw`), when the session uses it.
    tls: Option<ClientTls>,
}

impl Streamer {
    pub fn new(address: &str, token: &str, tls: Option<ClientTls>) -> Streamer {
        let address = address
            .split_once("://")
            .map_or(address, |(_, rest)| rest)
            .trim_end_matches('/');
        Streamer {
            address: address.to_string(),
            auth: format!("Bearer {token}").into_bytes(),
            idle: Mutex::default(),
            tls,
        }
    }

    /// Sends `data` as the bytes of object `id`, whose buffer the session
    /// created with `CreateBuffer { stream: true }`.
    pub async fn push(&self, id: u64, data: &[u8]) -> Result<()> {
        try_join_all(
            stripes(data.len() as u64)
                .into_iter()
                .map(|(start, end)| async move {
                    let mut conn = self.open(id, Kind::Push, start, end).await?;
                    for step in data[start as usize..end as usize].chunks(STEP) {
                        conn.write_all(step)
                            .await
                            .map_err(|e| self.lost(e, "sending the object's bytes"))?;
                    }
                    conn.flush()
                        .await
                        .map_err(|e| self.lost(e, "sending the object's bytes"))?;
                    let landed = wire::read_reply_async(&mut conn)
                        .await
                        .map_err(|e| self.lost(e, "waiting for the bytes to land"))?;
                    landed.map_err(|(status, message)| wire::reply_error(status, &message))?;
                    self.keep(conn);
                    Ok::<(), Error>(())
                }),
        )
        .await?;
        Ok(())
    }

    /// Reads the `len` bytes of object `id` (pinned by the node for this
    /// session).
    pub async fn pull(&self, id: u64, len: u64) -> Result<Vec<u8>> {
        // Zeroed pages from the allocator (fresh, untouched for large
        // sizes), faulted in as the bytes land: in 2 MiB pages where the
        // kernel can, 512 times fewer faults than in 4 KiB ones.
        let mut buf = vec![0u8; len as usize];
        advise_huge_pages(&mut buf);
        let mut rest = &mut buf[..];
        let mut parts = Vec::new();
        for (start, end) in stripes(len) {
            let (part, tail) = rest.split_at_mut((end - start) as usize);
            rest = tail;
            parts.push((start, end, part));
        }
        try_join_all(parts.into_iter().map(|(start, end, part)| async move {
            let mut conn = self.open(id, Kind::Pull, start, end).await?;
            for step in part.chunks_mut(STEP) {
                conn.read_exact(step)
                    .await
                    .map_err(|e| self.lost(e, "receiving the object's bytes"))?;
            }
            self.keep(conn);
            Ok::<(), Error>(())
        }))
        .await?;
        Ok(buf)
    }

    /// A connection on which a request for `[start, end)` of object `id`
    /// was sent and accepted: the bytes come (pull) or go (push) next.
    async fn open(&self, id: u64, kind: Kind, start: u64, end: u64) -> Result<MaybeTls> {
        let mut request = Vec::new();
        Request {
            kind,
            auth: self.auth.clone(),
            id,
            offset: start,
            end,
        }
        .write_to(&mut request)
        .map_err(|e| self.lost(e, "writing a request"))?;
        // A kept connection the node closed while it sat idle fails before
        // any reply: then once more on a new one.
        let kept = self.idle.lock().unwrap().pop();
        let answered = match kept {
            Some(mut conn) => match request_reply(&mut conn, &request).await {
                Ok(reply) => Some((conn, reply)),
                Err(_) => None,
            },
            None => None,
        };
        let (conn, reply) = match answered {
            Some(answered) => answered,
            None => {
                let mut conn = self.connect().await?;
                let reply = request_reply(&mut conn, &request)
                    .await
                    .map_err(|e| self.lost(e, "sending a request"))?;
                (conn, reply)
            }
        };
        reply.map_err(|(status, message)| wire::reply_error(status, &message))?;
        Ok(conn)
    }

    /// Keeps a connection whose exchange completed, for the next one.
    fn keep(&self, conn: MaybeTls) {
        let mut idle = self.idle.lock().unwrap();
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    async fn connect(&self) -> Result<MaybeTls> {
        let conn = tokio::time::timeout(
            reef_core::channel::CONNECT_TIMEOUT,
            TcpStream::connect(&self.address),
        )
        .await
        .map_err(|_| {
            Error::new(
                ErrorCode::Internal,
                format!("cannot connect to {}: timed out", self.address),
            )
        })?
        .map_err(|e| {
            Error::new(
                ErrorCode::Internal,
                format!("cannot connect to {}: {e}", self.address),
            )
        })?;
        conn.set_nodelay(true)
            .map_err(|e| self.lost(e, "setting up a connection"))?;
        match &self.tls {
            Some(tls) => tls.wrap_async(&self.address, conn).await.map_err(|e| {
                Error::new(
                    ErrorCode::Internal,
                    format!("TLS with {} failed: {e}", self.address),
                )
            }),
            None => Ok(MaybeTls::Plain(conn)),
        }
    }

    fn lost(&self, e: std::io::Error, what: &str) -> Error {
        Error::new(
            ErrorCode::Internal,
            format!("the connection to {} failed {what}: {e}", self.address),
        )
    }
}

/// Asks for 2 MiB pages over the 2 MiB-aligned part of `buf` (advice only:
/// its contents do not change; ignored where transparent huge pages are off).
fn advise_huge_pages(buf: &mut [u8]) {
    const HUGE: usize = 2 << 20;
    let start = (buf.as_ptr() as usize).next_multiple_of(HUGE);
    let end = (buf.as_ptr() as usize + buf.len()) / HUGE * HUGE;
    if end > start {
        // SAFETY: `[start, end)` lies inside `buf`, which we borrow mutably;
        // MADV_HUGEPAGE changes how its pages are backed, never their bytes.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

/// Writes a request and reads the node's reply header.
async fn request_reply(
    conn: &mut MaybeTls,
    request: &[u8],
) -> std::io::Result<std::result::Result<u64, (wire::Status, String)>> {
    conn.write_all(request).await?;
    conn.flush().await?;
    wire::read_reply_async(conn).await
}

/// `[0, len)` cut into up to `MAX_STRIPES` contiguous ranges of at least
/// `STRIPE_MIN` bytes, page-aligned; always at least one.
fn stripes(len: u64) -> Vec<(u64, u64)> {
    let count = (len / STRIPE_MIN).clamp(1, MAX_STRIPES);
    let per = (len / count).div_ceil(4096) * 4096;
    (0..count)
        .map(|i| ((i * per).min(len), ((i + 1) * per).min(len)))
        .filter(|(s, e)| s < e || len == 0)
        .collect()
}
