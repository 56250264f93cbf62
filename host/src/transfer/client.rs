//! The puller's side: one transfer per object id, over raw pull connections
//! (`wire`), in parallel stripes read straight into the destination's
//! storage, failing over between holders.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt, Shared};

use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::store::{Block, Data, ObjectId, ObjectStore};
use reef_core::tls::{ClientTls, SyncStream};
use reef_core::wire::{self, Request};

/// A holder that sends nothing for this long is given up (the next one
/// takes over from the same byte).
pub const PROGRESS_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// An object of at least two stripes' worth is pulled over several
/// connections at once, each a contiguous range (see the module docs for
/// the measurements behind these numbers).
const STRIPE_MIN: u64 = 32 << 20;
const MAX_STRIPES: u64 = 4;
/// Bytes asked of one `read` (a bound on each blocking call).
const READ_STEP: usize = 4 << 20;
/// Idle connections kept per holder.
const MAX_IDLE: usize = 8;

type Transfer = Shared<BoxFuture<'static, ReefResult<()>>>;

/// Pulls objects from other nodes into this node's store. One per node;
/// cheap to share (`&Puller` from any task).
pub struct Puller {
    inner: Arc<Inner>,
}

struct Inner {
    /// The store pulled into (a `Weak`: the puller does not keep it alive).
    store: Weak<ObjectStore>,
    /// `Bearer <token>`, presented with every request.
    auth: Vec<u8>,
    progress_timeout: Duration,
    /// The most connections one object is pulled over at once.
    max_stripes: u64,
    /// Idle pull connections per holder address, reused by the next pull.
    idle: Mutex<HashMap<String, Vec<SyncStream>>>,
    /// TLS to holders (ALPN `reef-raw`), verified against the cluster CA.
    tls: Option<ClientTls>,
    /// Transfers in progress: a second `pull` of the same id awaits the first.
    inflight: Mutex<HashMap<ObjectId, Transfer>>,
    bytes_pulled: AtomicU64,
    transfers: AtomicU64,
    /// Transfers started per object id (for tests and `host status`).
    per_object: Mutex<HashMap<ObjectId, u32>>,
}

impl Puller {
    /// Pulls into `store`; `token` is the cluster token, presented to every
    /// holder.
    pub fn new(store: &Arc<ObjectStore>, token: &str) -> ReefResult<Puller> {
        reef_proto::auth::validate_token(token)
            .map_err(|e| ReefError::new(ErrorCode::BadArgument, e))?;
        Ok(Puller {
            inner: Arc::new(Inner {
                store: Arc::downgrade(store),
                auth: format!("Bearer {token}").into_bytes(),
                progress_timeout: PROGRESS_TIMEOUT,
                max_stripes: MAX_STRIPES,
                idle: Mutex::default(),
                inflight: Mutex::default(),
                bytes_pulled: AtomicU64::new(0),
                transfers: AtomicU64::new(0),
                per_object: Mutex::default(),
                tls: None,
            }),
        })
    }

    /// Connects to holders with TLS, trusting `tls` (a node started with
    /// `--tls-cert`). Call before the puller is shared.
    pub fn with_tls(mut self, tls: Option<ClientTls>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.tls = tls;
        }
        self
    }

    /// Gives a holder at most `timeout` without a chunk (default
    /// [`PROGRESS_TIMEOUT`]). Call before the puller is shared.
    pub fn with_progress_timeout(mut self, timeout: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.progress_timeout = timeout;
        }
        self
    }

    /// Pulls an object over at most `stripes` connections at once (default
    /// `MAX_STRIPES`; for measurements). Call before the puller is shared.
    pub fn with_max_stripes(mut self, stripes: u64) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.max_stripes = stripes.max(1);
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
                    if self.inner.store()?.local_size(id).is_some() {
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
    fn store(&self) -> ReefResult<Arc<ObjectStore>> {
        self.store
            .upgrade()
            .ok_or_else(|| ReefError::new(ErrorCode::NodeStopping, "the node is stopping"))
    }

    async fn transfer(
        self: &Arc<Self>,
        id: ObjectId,
        size: u64,
        holders: &[String],
    ) -> ReefResult<()> {
        let store = self.store()?;
        *self.per_object.lock().unwrap().entry(id).or_default() += 1;
        self.transfers.fetch_add(1, Ordering::Relaxed);
        let store = &store;
        let started = Instant::now();
        // The destination, allocated once for the whole object; written only
        // by this transfer's stripes, sealed (shown to anyone) only when
        // complete, freed on failure.
        let dest = Arc::new(Dest::new(store, size)?);
        let mut stripes = stripes(size, self.max_stripes);
        let mut tried = Vec::with_capacity(holders.len());
        for holder in holders {
            let mut running = Vec::new();
            for (i, stripe) in stripes.iter().enumerate().filter(|(_, s)| !s.done) {
                let inner = self.clone();
                let dest = dest.clone();
                let holder = holder.clone();
                let (mut reached, end) = (stripe.reached, stripe.end);
                running.push(tokio::task::spawn_blocking(move || {
                    let result = inner.pull_range(&holder, id, &dest, &mut reached, end);
                    (i, reached, result)
                }));
            }
            let mut errors = Vec::new();
            for task in running {
                match task.await {
                    Ok((i, reached, result)) => {
                        stripes[i].reached = reached;
                        match result {
                            Ok(()) => stripes[i].done = true,
                            Err(e) => errors.push(e),
                        }
                    }
                    Err(e) => errors.push(format!("a stripe stopped: {e}")),
                }
            }
            if errors.is_empty() {
                break;
            }
            // A fresh connection next time (the old ones may be to a dead process).
            self.idle.lock().unwrap().remove(holder);
            let received = received(&stripes);
            tracing::warn!(id, holder, received, size, "pull failed: {}", errors[0]);
            tried.push(format!("{holder} ({})", errors[0]));
        }
        let received = received(&stripes);
        if !stripes.iter().all(|s| s.done) {
            // `dest` drops here: nothing was sealed.
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
        tracing::debug!(
            id,
            size,
            stripes = stripes.len(),
            ms = secs * 1e3,
            gb_per_s = size as f64 / secs.max(1e-9) / 1e9,
            "pulled"
        );
        // Every stripe's thread has returned (and dropped its handle).
        let dest = Arc::try_unwrap(dest).map_err(|_| {
            ReefError::internal(format!("object {id:#x}: a stripe still holds the block"))
        })?;
        let data = Arc::new(dest.into_data());
        if !store.contains(id) && store.insert_ready(id, data.clone(), 1).is_ok() {
            return Ok(());
        }
        // A placeholder (pending or remote) made by the node: fill it.
        store.fill(id, data);
        Ok(())
    }

    /// Receives `dest[*reached..end]` from one holder (blocking); `*reached`
    /// counts the bytes written, so a failure leaves where the next holder
    /// starts. A reused connection that the holder closed while it was idle
    /// fails before any reply: then once more on a new one.
    fn pull_range(
        &self,
        holder: &str,
        id: ObjectId,
        dest: &Dest,
        reached: &mut u64,
        end: u64,
    ) -> Result<(), String> {
        let (mut conn, reused) = match self.idle.lock().unwrap().get_mut(holder).and_then(Vec::pop)
        {
            Some(conn) => (conn, true),
            None => (self.connect(holder)?, false),
        };
        let mut result = self.request(&mut conn, id, dest, reached, end);
        if let (Err(RangeError::BeforeReply(_)), true) = (&result, reused) {
            conn = self.connect(holder)?;
            result = self.request(&mut conn, id, dest, reached, end);
        }
        match result {
            Ok(()) => {
                let mut idle = self.idle.lock().unwrap();
                let list = idle.entry(holder.to_string()).or_default();
                if list.len() < MAX_IDLE {
                    list.push(conn);
                }
                Ok(())
            }
            Err(RangeError::BeforeReply(e) | RangeError::After(e)) => Err(e),
        }
    }

    fn connect(&self, holder: &str) -> Result<SyncStream, String> {
        let address = holder
            .strip_prefix("http://")
            .unwrap_or(holder)
            .trim_end_matches('/');
        let mut last = format!("no address for {address}");
        let addrs = address
            .to_socket_addrs()
            .map_err(|e| format!("bad address: {e}"))?;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(conn) => {
                    let setup = || -> std::io::Result<()> {
                        conn.set_nodelay(true)?;
                        conn.set_read_timeout(Some(self.progress_timeout))?;
                        conn.set_write_timeout(Some(self.progress_timeout))
                    };
                    setup().map_err(|e| format!("setting up the connection: {e}"))?;
                    return match &self.tls {
                        Some(tls) => tls
                            .wrap_sync(address, conn)
                            .map_err(|e| format!("starting TLS: {e}")),
                        None => Ok(SyncStream::Plain(conn)),
                    };
                }
                Err(e) => last = format!("connecting: {e}"),
            }
        }
        Err(last)
    }

    /// One request on `conn`: the reply, then the bytes straight into `dest`.
    fn request(
        &self,
        conn: &mut SyncStream,
        id: ObjectId,
        dest: &Dest,
        reached: &mut u64,
        end: u64,
    ) -> Result<(), RangeError> {
        let size = dest.len() as u64;
        let timeout = self.progress_timeout;
        let io_error = |e: std::io::Error, what: &str, at: u64| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                format!("no {what} for {timeout:?} at byte {at}")
            }
            _ => format!("{what} at byte {at}: {e}"),
        };
        let request = Request {
            kind: wire::Kind::Pull,
            auth: self.auth.clone(),
            id,
            offset: *reached,
            end,
        };
        // A connection that failed at once (closed or reset) may be one the
        // holder closed while it sat idle here; a silent one is a hung holder.
        let before_reply = |e: std::io::Error, what: &str, at: u64| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                RangeError::After(io_error(e, what, at))
            }
            _ => RangeError::BeforeReply(io_error(e, what, at)),
        };
        request
            .write_to(conn)
            .and_then(|()| conn.flush())
            .map_err(|e| before_reply(e, "request sent", *reached))?;
        let reply = wire::read_reply(conn).map_err(|e| before_reply(e, "reply", *reached))?;
        let total = match reply {
            Ok(total) => total,
            Err((_, message)) => return Err(RangeError::After(message)),
        };
        if total != size {
            return Err(RangeError::After(format!(
                "the holder has {total} bytes, expected {size}"
            )));
        }
        while *reached < end {
            let at = *reached as usize;
            let step = (end as usize - at).min(READ_STEP);
            // SAFETY: this stripe alone writes `[*reached, end)` of the
            // destination, and nothing reads it before every stripe returned.
            let buf = unsafe { dest.range_mut(at, at + step) };
            let n = match conn.read(buf) {
                Ok(0) => {
                    return Err(RangeError::After(format!(
                        "the stream ended at byte {at} of {size}"
                    )))
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(RangeError::After(io_error(e, "data", *reached))),
            };
            *reached += n as u64;
            self.bytes_pulled.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Why one request failed: the connection was closed or reset before any
/// reply (a reused connection the holder had closed is retried once), or
/// anything else.
enum RangeError {
    BeforeReply(String),
    After(String),
}

/// A contiguous range of the object, pulled over a connection of its own.
struct Stripe {
    start: u64,
    reached: u64,
    end: u64,
    done: bool,
}

/// `size` cut into up to `max` ranges of at least `STRIPE_MIN` bytes,
/// page-aligned; always at least one (an empty object too).
fn stripes(size: u64, max: u64) -> Vec<Stripe> {
    let count = (size / STRIPE_MIN).clamp(1, max);
    let per = (size / count).div_ceil(4096) * 4096;
    (0..count)
        .map(|i| Stripe {
            start: (i * per).min(size),
            reached: (i * per).min(size),
            end: ((i + 1) * per).min(size),
            done: false,
        })
        .map(|mut s| {
            if s.reached == s.end && size > 0 {
                s.done = true; // rounding left nothing for it
            }
            s
        })
        .collect()
}

fn received(stripes: &[Stripe]) -> u64 {
    stripes.iter().map(|s| s.reached - s.start).sum()
}

/// The storage a transfer writes: heap below the store's inline threshold,
/// else an arena block.
struct Dest {
    storage: Storage,
    ptr: *mut u8,
    len: usize,
}

enum Storage {
    Heap(Vec<u8>),
    Arena(Block),
}

// SAFETY: `ptr` points into `storage`, which `Dest` owns and which is Send and
// Sync itself; writers through `range_mut` use disjoint ranges (its contract).
unsafe impl Send for Dest {}
// SAFETY: as above.
unsafe impl Sync for Dest {}

impl Dest {
    fn new(store: &ObjectStore, size: u64) -> ReefResult<Dest> {
        let mut storage = if size < store.inline_threshold() {
            Storage::Heap(vec![0; size as usize])
        } else {
            Storage::Arena(store.allocate(size)?)
        };
        let ptr = match &mut storage {
            Storage::Heap(v) => v.as_mut_ptr(),
            // SAFETY: the block is new and this transfer is its only writer
            // until it is sealed; this is the one call.
            Storage::Arena(b) => unsafe { b.as_mut_slice() }.as_mut_ptr(),
        };
        Ok(Dest {
            storage,
            ptr,
            len: size as usize,
        })
    }

    fn len(&self) -> usize {
        self.len
    }

    /// `dest[start..end]`, writable.
    ///
    /// # Safety
    /// No other reference to any byte of the range may exist while the
    /// returned one does (stripes write disjoint ranges, one read at a time).
    #[allow(clippy::mut_from_ref)]
    unsafe fn range_mut(&self, start: usize, end: usize) -> &mut [u8] {
        assert!(
            start <= end && end <= self.len,
            "{start}..{end} of {}",
            self.len
        );
        // SAFETY: in bounds (checked above) of storage we own; exclusive per
        // the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), end - start) }
    }

    fn into_data(self) -> Data {
        match self.storage {
            Storage::Heap(v) => Data::Inline(v.into()),
            Storage::Arena(b) => Data::Arena(b),
        }
    }
}
