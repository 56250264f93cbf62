//! The puller's side of `Peer.Pull`: one transfer per object id, straight
//! into the destination's storage, failing over between holders.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use reef_proto as pb;
use reef_proto::auth::{AttachToken, TokenChannel};
use reef_proto::peer_client::PeerClient;
use tonic::transport::Endpoint;

use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::node::Node;
use crate::store::{Data, ObjectId};

/// A holder that sends nothing for this long is given up (the next one
/// takes over from the same byte).
pub const PROGRESS_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

type Transfer = Shared<BoxFuture<'static, ReefResult<()>>>;

/// Pulls objects from other nodes into this node's store. One per node;
/// cheap to share (`&Puller` from any task).
pub struct Puller {
    inner: Arc<Inner>,
}

struct Inner {
    node: Weak<Node>,
    token: AttachToken,
    progress_timeout: Duration,
    /// One channel per holder address (HTTP/2 multiplexes concurrent pulls).
    clients: Mutex<HashMap<String, PeerClient<TokenChannel>>>,
    /// Transfers in progress: a second `pull` of the same id awaits the first.
    inflight: Mutex<HashMap<ObjectId, Transfer>>,
    bytes_pulled: AtomicU64,
    transfers: AtomicU64,
    /// Transfers started per object id (for tests and `host status`).
    per_object: Mutex<HashMap<ObjectId, u32>>,
}

impl Puller {
    /// `node` is the node pulled into (a `Weak`, so the puller can live inside
    /// it: `Arc::new_cyclic`); `token` is the cluster token, presented to
    /// every holder.
    pub fn new(node: Weak<Node>, token: &str) -> ReefResult<Puller> {
        let token =
            AttachToken::new(token).map_err(|e| ReefError::new(ErrorCode::BadArgument, e))?;
        Ok(Puller {
            inner: Arc::new(Inner {
                node,
                token,
                progress_timeout: PROGRESS_TIMEOUT,
                clients: Mutex::default(),
                inflight: Mutex::default(),
                bytes_pulled: AtomicU64::new(0),
                transfers: AtomicU64::new(0),
                per_object: Mutex::default(),
            }),
        })
    }

    /// Gives a holder at most `timeout` without a chunk (default
    /// [`PROGRESS_TIMEOUT`]). Call before the puller is shared.
    pub fn with_progress_timeout(mut self, timeout: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.progress_timeout = timeout;
        }
        self
    }

    /// Makes object `id` (`size` bytes) local, pulling it from the first of
    /// `holders` (addresses `host:port` of their Peer service) that delivers;
    /// a holder that fails mid-way is replaced by the next, resuming at the
    /// byte where it stopped.
    ///
    /// * Already sealed here → `Ok` at once, nothing moves.
    /// * A pull of the same id in progress → waits for it (one transfer).
    /// * The transfer runs in its own task: a caller that gives up does not
    ///   stop it for the others.
    /// * Every holder failed → `OBJECT_LOST` naming the object and each holder
    ///   with its error; nothing half-written is left (the block is freed).
    ///
    /// See the module docs for the reference the new object gets.
    pub async fn pull(&self, id: ObjectId, size: u64, holders: Vec<String>) -> ReefResult<()> {
        self.pull_once(id, size, holders).await.map(|_| ())
    }

    /// [`Puller::pull`], saying whether this call is the one whose transfer
    /// sealed the object: `Ok(true)` for exactly one caller per transfer (the
    /// one that started it), `Ok(false)` for callers that waited for another's
    /// or found the object already here. Bookkeeping that must happen once
    /// per copy (a cached copy's reference, `AddLocation` to the owner) goes
    /// on `true`.
    pub async fn pull_once(
        &self,
        id: ObjectId,
        size: u64,
        holders: Vec<String>,
    ) -> ReefResult<bool> {
        let (transfer, started) = {
            let mut inflight = self.inner.inflight.lock().unwrap();
            match inflight.get(&id) {
                Some(t) => (t.clone(), false),
                None => {
                    let node = self.inner.node()?;
                    if node.store.local_size(id).is_some() {
                        return Ok(false);
                    }
                    let inner = self.inner.clone();
                    let task = tokio::spawn(async move {
                        let result = inner.transfer(id, size, &holders).await;
                        // Sealed (or failed) before anyone can miss both the
                        // transfer and the object.
                        inner.inflight.lock().unwrap().remove(&id);
                        result
                    });
                    let t = async move {
                        task.await.unwrap_or_else(|e| {
                            Err(ReefError::internal(format!(
                                "the transfer of object {id:#x} stopped: {e}"
                            )))
                        })
                    }
                    .boxed()
                    .shared();
                    inflight.insert(id, t.clone());
                    (t, true)
                }
            }
        };
        transfer.await.map(|()| started)
    }

    /// Object bytes received by this node since it started (each byte once,
    /// however many callers waited for it).
    pub fn bytes_pulled(&self) -> u64 {
        self.inner.bytes_pulled.load(Ordering::Relaxed)
    }

    /// Transfers started (one per object pulled, whatever the callers).
    pub fn transfers(&self) -> u64 {
        self.inner.transfers.load(Ordering::Relaxed)
    }

    /// Transfers started for `id` (0 when never pulled, or forgotten).
    pub fn pull_count(&self, id: ObjectId) -> u32 {
        self.inner
            .per_object
            .lock()
            .unwrap()
            .get(&id)
            .copied()
            .unwrap_or(0)
    }

    /// Drops the per-object count of a freed object.
    pub fn forget(&self, id: ObjectId) {
        self.inner.per_object.lock().unwrap().remove(&id);
    }

    /// Transfers in progress now.
    pub fn in_progress(&self) -> usize {
        self.inner.inflight.lock().unwrap().len()
    }
}

impl Inner {
    fn node(&self) -> ReefResult<Arc<Node>> {
        self.node
            .upgrade()
            .ok_or_else(|| ReefError::new(ErrorCode::NodeStopping, "the node is stopping"))
    }

    async fn transfer(&self, id: ObjectId, size: u64, holders: &[String]) -> ReefResult<()> {
        let node = self.node()?;
        *self.per_object.lock().unwrap().entry(id).or_default() += 1;
        self.transfers.fetch_add(1, Ordering::Relaxed);
        let store = &node.store;
        let started = std::time::Instant::now();
        tracing::info!(id, size, "pull starting");
        // The destination, allocated once for the whole object; written only
        // here, sealed (shown to anyone) only when complete, freed on failure.
        let mut heap = Vec::new();
        let mut block = None;
        let dest: &mut [u8] = if size < store.inline_threshold() {
            heap.resize(size as usize, 0);
            &mut heap
        } else {
            let b = block.insert(store.allocate(size)?);
            b.populate();
            // SAFETY: the block is new and this transfer is its only writer
            // until it is sealed below; this is the one call.
            unsafe { b.as_mut_slice() }
        };
        tracing::info!(
            id,
            size,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "pull allocated"
        );
        let mut received = 0u64;
        let mut tried = Vec::with_capacity(holders.len());
        let mut done = false;
        for holder in holders {
            match self.pull_from(holder, id, dest, &mut received).await {
                Ok(()) => {
                    done = true;
                    break;
                }
                Err(e) => {
                    tracing::warn!(id, holder, received, size, "pull failed: {e}");
                    tried.push(format!("{holder} ({e})"));
                }
            }
        }
        if !done {
            // `heap` / `block` drop here: nothing was sealed.
            let tried = if tried.is_empty() {
                "no holders were given".to_string()
            } else {
                format!("tried {}", tried.join("; "))
            };
            return Err(ReefError::new(
                ErrorCode::ObjectLost,
                format!(
                    "object {id:#x} ({size} bytes) could not be pulled from any holder \
                     ({received} bytes received): {tried}"
                ),
            ));
        }
        let secs = started.elapsed().as_secs_f64();
        tracing::info!(
            id,
            size,
            ms = secs * 1e3,
            gb_per_s = size as f64 / secs.max(1e-9) / 1e9,
            "pulled"
        );
        let data = match block {
            Some(block) => Data::Arena(block),
            None => Data::Inline(heap.into()),
        };
        let data = Arc::new(data);
        if !store.contains(id) && store.insert_ready(id, data.clone(), 1).is_ok() {
            return Ok(());
        }
        // A placeholder (pending or remote) made by the node: fill it.
        store.fill(id, data);
        tracing::info!(id, size, "pull sealed");
        Ok(())
    }

    /// Receives `dest[*received..]` from one holder; `*received` counts the
    /// bytes written, so a failure leaves where the next holder starts.
    async fn pull_from(
        &self,
        holder: &str,
        id: ObjectId,
        dest: &mut [u8],
        received: &mut u64,
    ) -> Result<(), String> {
        let result = self.stream_from(holder, id, dest, received).await;
        if result.is_err() {
            // A fresh connection next time (the old one may be to a dead process).
            self.clients.lock().unwrap().remove(holder);
        }
        result
    }

    async fn stream_from(
        &self,
        holder: &str,
        id: ObjectId,
        dest: &mut [u8],
        received: &mut u64,
    ) -> Result<(), String> {
        let size = dest.len() as u64;
        let mut client = self.client(holder)?;
        let request = pb::PullRequest {
            id,
            offset: *received,
        };
        let timeout = self.progress_timeout;
        let mut stream = tokio::time::timeout(timeout, client.pull(request))
            .await
            .map_err(|_| format!("no reply within {timeout:?}"))?
            .map_err(|s| status_text(&s))?
            .into_inner();
        loop {
            let chunk = tokio::time::timeout(timeout, stream.message())
                .await
                .map_err(|_| format!("no data for {timeout:?} at byte {received}"))?
                .map_err(|s| status_text(&s))?
                .ok_or_else(|| format!("the stream ended at byte {received} of {size}"))?;
            if chunk.total_size != size {
                return Err(format!(
                    "the holder has {} bytes, expected {size}",
                    chunk.total_size
                ));
            }
            let len = chunk.data.len() as u64;
            if chunk.offset != *received || *received + len > size {
                return Err(format!(
                    "bad chunk: {len} bytes at offset {} while expecting offset {received} of {size}",
                    chunk.offset
                ));
            }
            let at = *received as usize;
            dest[at..at + len as usize].copy_from_slice(&chunk.data);
            *received += len;
            self.bytes_pulled.fetch_add(len, Ordering::Relaxed);
            if *received == size {
                return Ok(());
            }
        }
    }

    fn client(&self, holder: &str) -> Result<PeerClient<TokenChannel>, String> {
        let mut clients = self.clients.lock().unwrap();
        if let Some(client) = clients.get(holder) {
            return Ok(client.clone());
        }
        let url = if holder.starts_with("http://") || holder.starts_with("https://") {
            holder.to_string()
        } else {
            format!("http://{holder}")
        };
        let channel = Endpoint::from_shared(url)
            .map_err(|e| format!("bad address: {e}"))?
            .tcp_nodelay(true)
            .connect_timeout(CONNECT_TIMEOUT)
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_frame_size(MAX_FRAME)
            .connect_lazy();
        let client = PeerClient::with_interceptor(channel, self.token.clone())
            .max_decoding_message_size(usize::MAX);
        clients.insert(holder.to_string(), client.clone());
        Ok(client)
    }
}

/// HTTP/2 flow-control windows of pull connections (as the node's server and
/// the driver use): a 64 KiB default would stall every chunk on a round trip.
pub(crate) const STREAM_WINDOW: u32 = 16 << 20;
pub(crate) const CONNECTION_WINDOW: u32 = 64 << 20;
/// The largest HTTP/2 DATA frame a holder may send us (the default is 16
/// KiB): 1 MiB frames cut the CPU cost of a pull by ~40% (1.15 → 0.69
/// CPU-seconds per GiB, both nodes together).
pub(crate) const MAX_FRAME: u32 = 1 << 20;

fn status_text(s: &tonic::Status) -> String {
    if s.message().is_empty() {
        format!("{:?}", s.code())
    } else {
        s.message().to_string()
    }
}
