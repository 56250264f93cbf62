//! The object table: ids → immutable objects, reference counts, waiting for
//! pending task results, and spilling to disk when the arena is full.
//!
//! Lifetimes: an entry lives while its reference count is above zero (driver
//! handles, pending task arguments, objects a running guest created). Bytes
//! live while an `Arc<Data>` does: the table holds one, and every reader (a
//! guest view, a driver reading through its arena mapping, a running copy)
//! holds another — a *pin*. Only unpinned objects are spilled.
//!
//! Spilling, when an allocation finds the arena full (`allocate`):
//! 1. Under the table's lock, the least recently used unpinned arena object
//!    not already being spilled is chosen and marked `spilling`.
//! 2. The lock is released and its bytes are written to a file of its own in
//!    the spill directory, on a blocking thread (the runtime's other tasks
//!    move to another thread meanwhile). The object stays `Ready`: it can be
//!    read, and nothing else waits for the write.
//! 3. Under the lock again, the object becomes `Spilled { path }` and its
//!    arena block is freed, unless meanwhile a reader pinned it or it was
//!    freed: then the file is deleted and it stays as it is.
//!
//! The allocation then tries the arena again, spilling further objects until
//! the block fits or none can be spilled (`STORE_FULL`). A `get` of a spilled
//! object reads it back into a new block (`restore`), which may spill others.
//!
//! Per tenant: an object a tenant's driver or guest put, or its task made,
//! carries its tenant, and is spilled only while that tenant's spilled
//! bytes stay within its `--max-spill-bytes` (`cap_tenant_spills`); past it
//! the tenant's objects stay in memory, and its own put that needs room
//! fails with `QUOTA_EXCEEDED` when only spilling more of its objects could
//! have made it. The arena bytes of what a tenant's task or guest makes
//! count against its `--max-arena-bytes` while the object lives
//! (`charge_arena`, `keep_charge`), as its driver's puts do.

use crate::fastmap::FastMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use bytesize::ByteSize;
use reef_core::TenantId;
use tokio::sync::oneshot;

use super::arena::{free_bytes, Arena, Block};
use super::segment::Segment;
use crate::error::{ErrorCode, ReefError, ReefResult};

pub type ObjectId = u64;

/// The bytes of a sealed object.
pub enum Data {
    /// Small objects live on the heap, like Ray's in-process store.
    Inline(Bytes),
    /// Large objects live in the shared arena and can be mapped into guests.
    Arena(Block),
}

impl Data {
    pub fn len(&self) -> u64 {
        match self {
            Data::Inline(b) => b.len() as u64,
            Data::Arena(b) => b.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Data::Inline(b) => b,
            Data::Arena(b) => b.as_slice(),
        }
    }
}

pub type Resolved = Result<Arc<Data>, ReefError>;

/// Where a large object's bytes are counted: the arena, or the segment
/// copies made for drivers on this machine (`ObjectStore::segment_copy`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pool {
    Arena,
    Copies,
}

/// What one look at an entry found (see `ObjectStore::locate`).
enum Look {
    Sealed(ReefResult<Located>),
    /// With a wake-up when the look registered a waiter.
    Pending(Option<oneshot::Receiver<()>>),
    Spilled,
}

enum State {
    /// Waiters are only woken: each looks at the entry again (sealed, moved
    /// to another node, or gone).
    Pending(Vec<oneshot::Sender<()>>),
    Ready(Arc<Data>),
    Spilled {
        path: PathBuf,
        len: u64,
    },
    Failed(ReefError),
    /// Sealed on other nodes (by node id), not here: `ObjectDirectory::fetch` pulls it.
    Remote {
        size: u64,
        holders: Vec<String>,
    },
}

/// Where a sealed object's bytes are.
pub enum Located {
    Local(Arc<Data>),
    Remote { size: u64, holders: Vec<String> },
}

struct Entry {
    state: State,
    refs: u32,
    last_use: u64,
    /// Its bytes are being written to the spill directory (it is `Ready`).
    spilling: bool,
    /// The tenant whose driver or guest put it, or whose task made it (its
    /// spill counts against that tenant's quota); `None` for other objects
    /// (copies pulled from other nodes, actor calls' results).
    tenant: Option<TenantId>,
    /// The tenant's arena-bytes charge for it, given back with the entry.
    charge: Option<Held>,
}

#[derive(Default)]
struct Table {
    objects: FastMap<ObjectId, Entry>,
    clock: u64,
    spilled_bytes: u64,
    /// Bytes of objects being written to the spill directory now.
    spilling_bytes: u64,
    inline_bytes: u64,
    /// Since start: objects spilled and restored, and their bytes.
    spills: (u64, u64),
    /// Since start: objects moved into segments for same-machine drivers
    /// (`promote_to_segment`), and their bytes.
    moves: (u64, u64),
    restores: (u64, u64),
    /// Bytes of each tenant's objects spilled or being spilled (tenants
    /// with any).
    tenant_spilled: HashMap<TenantId, u64>,
}

impl Table {
    fn tenant_spilled(&self, tenant: &TenantId) -> u64 {
        self.tenant_spilled.get(tenant).copied().unwrap_or(0)
    }

    fn add_spilled(&mut self, tenant: Option<&TenantId>, len: u64) {
        if let Some(tenant) = tenant {
            *self.tenant_spilled.entry(tenant.clone()).or_default() += len;
        }
    }

    fn sub_spilled(&mut self, tenant: Option<&TenantId>, len: u64) {
        let Some(tenant) = tenant else { return };
        if let Some(n) = self.tenant_spilled.get_mut(tenant) {
            *n = n.saturating_sub(len);
            if *n == 0 {
                self.tenant_spilled.remove(tenant);
            }
        }
    }
}

/// Store usage for `host status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreStats {
    pub objects: u64,
    pub arena_capacity: u64,
    pub arena_used: u64,
    pub spilled_bytes: u64,
    pub inline_bytes: u64,
    /// Since start: objects spilled and restored, and their bytes.
    pub spills: (u64, u64),
    pub restores: (u64, u64),
    /// Since start: objects moved into segments for same-machine drivers.
    pub moves: (u64, u64),
}

/// One entry of the table, as the state API lists it.
#[derive(Debug, Clone, Copy)]
pub struct ObjectRow {
    pub id: ObjectId,
    pub size: u64,
    pub state: &'static str,
    pub refs: u32,
}

/// Writes a spilled object's bytes to its file.
type SpillWriter = Box<dyn Fn(&Path, &[u8]) -> std::io::Result<()> + Send + Sync>;

/// A tenant's bound on its spilled bytes (`None`: only the node's).
pub type SpillCaps = Box<dyn Fn(&TenantId) -> Option<u64> + Send + Sync>;

/// Something held for as long as an object lives (a tenant's quota charge:
/// dropping it gives the charge back).
pub type Held = Box<dyn Send + Sync>;

/// Takes bytes of a tenant's arena-bytes quota (`None`: it has none).
pub type ArenaCharger = Box<dyn Fn(&TenantId, u64) -> ReefResult<Option<Held>> + Send + Sync>;

pub struct ObjectStore {
    /// Told the id of every object whose last reference goes (the owner then
    /// frees copies on other nodes).
    freed: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<ObjectId>>,
    arena: Arc<Arena>,
    spill_dir: PathBuf,
    /// Numbers spill files: an id may be spilled, freed and reused while an
    /// earlier write of it is still going.
    spill_files: AtomicU64,
    write_spill: SpillWriter,
    /// Bytes the spill directory may hold (`--max-spill-bytes`): the node's
    /// disk is bounded whatever its tenants put.
    max_spill_bytes: u64,
    /// Each tenant's bound (set once by the node, from its quotas).
    spill_caps: std::sync::OnceLock<SpillCaps>,
    /// Charges tenants for what their tasks and guests make (set once by
    /// the node, from its quotas).
    arena_charger: std::sync::OnceLock<ArenaCharger>,
    inline_threshold: u64,
    table: Mutex<Table>,
}

impl ObjectStore {
    pub fn new(arena: Arc<Arena>, spill_dir: PathBuf, inline_threshold: u64) -> Self {
        ObjectStore {
            freed: Default::default(),
            arena,
            spill_dir,
            spill_files: AtomicU64::new(0),
            write_spill: Box::new(|path, bytes| std::fs::write(path, bytes)),
            max_spill_bytes: u64::MAX,
            spill_caps: Default::default(),
            arena_charger: Default::default(),
            inline_threshold,
            table: Mutex::new(Table::default()),
        }
    }

    /// The same store, spilling at most `bytes` to disk in all.
    pub fn with_spill_limit(mut self, bytes: u64) -> Self {
        self.max_spill_bytes = bytes;
        self
    }

    /// Bounds each tenant's spilled bytes (`caps` answers a tenant's
    /// `--max-spill-bytes`).
    pub fn cap_tenant_spills(&self, caps: SpillCaps) {
        let _ = self.spill_caps.set(caps);
    }

    /// Charges each tenant's arena bytes for the objects its tasks and
    /// guests make (`charger` takes from its `--max-arena-bytes`).
    pub fn charge_tenant_arena(&self, charger: ArenaCharger) {
        let _ = self.arena_charger.set(charger);
    }

    /// `tenant`'s charge for `data`, an object its task or guest made: its
    /// arena bytes (an inline object is not in the arena), or
    /// QUOTA_EXCEEDED. Kept with the object by `keep_charge`.
    pub fn charge_arena(&self, tenant: &TenantId, data: &Data) -> ReefResult<Option<Held>> {
        match (data, self.arena_charger.get()) {
            (Data::Arena(block), Some(charge)) => charge(tenant, block.len()),
            _ => Ok(None),
        }
    }

    /// Keeps `charge` until object `id` is freed (at once when it is gone).
    pub fn keep_charge(&self, id: ObjectId, charge: Option<Held>) {
        let Some(charge) = charge else {
            return;
        };
        let mut t = self.table.lock().unwrap();
        if let Some(entry) = t.objects.get_mut(&id) {
            entry.charge = Some(charge);
        }
    }

    fn spill_cap(&self, tenant: &TenantId) -> Option<u64> {
        self.spill_caps.get().and_then(|caps| caps(tenant))
    }

    /// Bytes of `tenant`'s objects spilled (or being spilled) now.
    pub fn tenant_spilled(&self, tenant: &TenantId) -> u64 {
        self.table.lock().unwrap().tenant_spilled(tenant)
    }

    pub fn arena(&self) -> &Arc<Arena> {
        &self.arena
    }
    pub fn inline_threshold(&self) -> u64 {
        self.inline_threshold
    }

    /// Registers the id of a result that does not exist yet.
    pub fn create_pending(&self, id: ObjectId, refs: u32) -> ReefResult<()> {
        let mut t = self.table.lock().unwrap();
        if t.objects.contains_key(&id) {
            return Err(ReefError::new(
                ErrorCode::BadArgument,
                format!("object id {id:#x} is already in use"),
            ));
        }
        let last_use = t.tick();
        t.objects.insert(
            id,
            Entry {
                state: State::Pending(Vec::new()),
                refs,
                last_use,
                spilling: false,
                tenant: None,
                charge: None,
            },
        );
        Ok(())
    }

    /// Inserts a sealed object.
    pub fn insert_ready(&self, id: ObjectId, data: Arc<Data>, refs: u32) -> ReefResult<()> {
        self.create_pending(id, refs)?;
        self.resolve(id, Ok(data));
        Ok(())
    }

    /// Makes a pending object (a task's result) `tenant`'s: once sealed,
    /// its spills count against the tenant's `--max-spill-bytes`.
    pub fn tag_tenant(&self, id: ObjectId, tenant: &TenantId) {
        let mut t = self.table.lock().unwrap();
        if let Some(entry) = t.objects.get_mut(&id) {
            if entry.tenant.is_none() && matches!(entry.state, State::Pending(_)) {
                entry.tenant = Some(tenant.clone());
            }
        }
    }

    /// Inserts a sealed object `tenant`'s driver or guest put: its spills
    /// count against the tenant's `--max-spill-bytes`.
    pub fn insert_put(
        &self,
        id: ObjectId,
        data: Arc<Data>,
        refs: u32,
        tenant: &TenantId,
    ) -> ReefResult<()> {
        self.create_pending(id, refs)?;
        if let Some(entry) = self.table.lock().unwrap().objects.get_mut(&id) {
            entry.tenant = Some(tenant.clone());
        }
        self.resolve(id, Ok(data));
        Ok(())
    }

    /// Seals a pending object with its value or its error and wakes its waiters.
    /// A result nobody refers to any more is dropped.
    pub fn resolve(&self, id: ObjectId, value: Resolved) {
        let mut t = self.table.lock().unwrap();
        let Some(entry) = t.objects.get_mut(&id) else {
            return;
        };
        let waiters = match &mut entry.state {
            State::Pending(w) => std::mem::take(w),
            _ => return, // already resolved (e.g. cancelled): first result wins
        };
        if let Ok(Data::Inline(b)) = value.as_deref() {
            t.inline_bytes += b.len() as u64;
        }
        let entry = t.objects.get_mut(&id).unwrap();
        entry.state = match &value {
            Ok(data) => State::Ready(data.clone()),
            Err(e) => State::Failed(e.clone()),
        };
        drop(t);
        for w in waiters {
            let _ = w.send(());
        }
    }

    pub fn contains(&self, id: ObjectId) -> bool {
        self.table.lock().unwrap().objects.contains_key(&id)
    }

    pub fn add_ref(&self, id: ObjectId) -> ReefResult<()> {
        let mut t = self.table.lock().unwrap();
        let entry = t
            .objects
            .get_mut(&id)
            .ok_or_else(|| ReefError::unknown_object(id))?;
        entry.refs += 1;
        Ok(())
    }

    /// Drops one reference; the last one frees the object (pinned bytes stay
    /// until their readers finish).
    pub fn release(&self, id: ObjectId) {
        let mut t = self.table.lock().unwrap();
        let Some(entry) = t.objects.get_mut(&id) else {
            return;
        };
        entry.refs = entry.refs.saturating_sub(1);
        if entry.refs > 0 {
            return;
        }
        let entry = t.objects.remove(&id).unwrap();
        if let Some(freed) = self.freed.get() {
            let _ = freed.send(id);
        }
        match entry.state {
            State::Ready(data) => {
                if let Data::Inline(b) = &*data {
                    t.inline_bytes -= b.len() as u64;
                }
            }
            State::Spilled { path, len } => {
                t.spilled_bytes -= len;
                t.sub_spilled(entry.tenant.as_ref(), len);
                let _ = std::fs::remove_file(path);
            }
            State::Pending(waiters) => {
                drop(t);
                for w in waiters {
                    let _ = w.send(());
                }
            }
            State::Failed(_) | State::Remote { .. } => {}
        }
    }

    /// Sends the id of every freed object to `listener` from now on.
    pub fn on_freed(&self, listener: tokio::sync::mpsc::UnboundedSender<ObjectId>) {
        let _ = self.freed.set(listener);
    }

    /// Seals a pending object as living on other nodes.
    pub fn set_remote(&self, id: ObjectId, size: u64, holders: Vec<String>) {
        let mut t = self.table.lock().unwrap();
        let Some(entry) = t.objects.get_mut(&id) else {
            return;
        };
        let waiters = match &mut entry.state {
            State::Pending(w) => std::mem::take(w),
            _ => return,
        };
        entry.state = State::Remote { size, holders };
        drop(t);
        for w in waiters {
            let _ = w.send(());
        }
    }

    /// Makes a remote object pending again when every copy is lost (its
    /// holders are still `lost`, the ones the caller saw fail): its task
    /// runs again, or its owner is asked again. False when another caller
    /// did so first or the object moved meanwhile.
    pub fn reopen(&self, id: ObjectId, lost: &[String]) -> bool {
        let mut t = self.table.lock().unwrap();
        let Some(entry) = t.objects.get_mut(&id) else {
            return false;
        };
        match &entry.state {
            State::Remote { holders, .. } if holders == lost => {
                entry.state = State::Pending(Vec::new());
                true
            }
            _ => false,
        }
    }

    /// A forwarded attempt arrives for `id`, which already has an entry here
    /// (a placeholder a task here waits on, a cached copy, a stale error):
    /// takes a reference for the attempt. `Some(true)`: the bytes are here
    /// already, the attempt need not run; `Some(false)`: the entry is (now)
    /// pending and the attempt runs to seal it; `None`: no entry.
    pub fn adopt(&self, id: ObjectId) -> Option<bool> {
        let mut t = self.table.lock().unwrap();
        let entry = t.objects.get_mut(&id)?;
        entry.refs += 1;
        Some(match &entry.state {
            State::Ready(_) | State::Spilled { .. } => true,
            State::Pending(_) => false,
            // Nobody waits on a sealed entry: it simply becomes pending.
            State::Failed(_) | State::Remote { .. } => {
                entry.state = State::Pending(Vec::new());
                false
            }
        })
    }

    /// Makes a remote object local with bytes pulled from a holder.
    pub fn fill(&self, id: ObjectId, data: Arc<Data>) {
        let mut t = self.table.lock().unwrap();
        if let Some(entry) = t.objects.get_mut(&id) {
            if matches!(entry.state, State::Remote { .. } | State::Pending(_)) {
                let waiters = match &mut entry.state {
                    State::Pending(w) => std::mem::take(w),
                    _ => Vec::new(),
                };
                entry.state = State::Ready(data.clone());
                if let Data::Inline(b) = &*data {
                    t.inline_bytes += b.len() as u64;
                }
                drop(t);
                for w in waiters {
                    let _ = w.send(());
                }
            }
        }
    }

    /// Size and holders of an object sealed elsewhere; None when not remote.
    pub fn remote_info(&self, id: ObjectId) -> Option<(u64, Vec<String>)> {
        match &self.table.lock().unwrap().objects.get(&id)?.state {
            State::Remote { size, holders } => Some((*size, holders.clone())),
            _ => None,
        }
    }

    /// Size of a sealed local object, without waiting or touching it.
    pub fn local_size(&self, id: ObjectId) -> Option<u64> {
        match &self.table.lock().unwrap().objects.get(&id)?.state {
            State::Ready(d) => Some(d.len()),
            State::Spilled { len, .. } => Some(*len),
            _ => None,
        }
    }

    /// Waits until the object is sealed; says where its bytes are (restoring
    /// a spilled object), or returns the error of the task that made it.
    pub async fn locate(&self, id: ObjectId) -> ReefResult<Located> {
        loop {
            match self.look(id, true) {
                Look::Sealed(located) => return located,
                // Woken (or the entry went away): look again.
                Look::Pending(Some(rx)) => {
                    let _ = rx.await;
                }
                Look::Pending(None) => {}
                Look::Spilled => self.restore(id)?,
            }
        }
    }

    /// As `locate`, without waiting: None while the object is pending.
    pub fn located_now(&self, id: ObjectId) -> Option<ReefResult<Located>> {
        loop {
            match self.look(id, false) {
                Look::Sealed(located) => return Some(located),
                Look::Pending(_) => return None,
                Look::Spilled => {
                    if let Err(e) = self.restore(id) {
                        return Some(Err(e));
                    }
                }
            }
        }
    }

    /// One look at an object's entry; a pending one gets a waiter if asked.
    fn look(&self, id: ObjectId, wait: bool) -> Look {
        let mut t = self.table.lock().unwrap();
        let now = t.tick();
        let Some(entry) = t.objects.get_mut(&id) else {
            return Look::Sealed(Err(ReefError::unknown_object(id)));
        };
        entry.last_use = now;
        match &mut entry.state {
            State::Ready(d) => Look::Sealed(Ok(Located::Local(d.clone()))),
            State::Failed(e) => Look::Sealed(Err(e.clone())),
            State::Remote { size, holders } => Look::Sealed(Ok(Located::Remote {
                size: *size,
                holders: holders.clone(),
            })),
            State::Pending(waiters) => Look::Pending(wait.then(|| {
                let (tx, rx) = oneshot::channel();
                waiters.push(tx);
                rx
            })),
            State::Spilled { .. } => Look::Spilled,
        }
    }

    /// Whether the object is sealed (with a value or an error), without waiting.
    pub fn is_ready(&self, id: ObjectId) -> ReefResult<bool> {
        let t = self.table.lock().unwrap();
        match t.objects.get(&id) {
            None => Err(ReefError::unknown_object(id)),
            Some(e) => Ok(!matches!(e.state, State::Pending(_))),
        }
    }

    /// Waits until the object is sealed and returns its bytes (restoring a
    /// spilled object into the arena), or the error of the task that made it.
    /// The returned `Arc` pins the bytes.
    pub async fn get(&self, id: ObjectId) -> Resolved {
        match self.locate(id).await? {
            Located::Local(data) => Ok(data),
            Located::Remote { .. } => Err(ReefError::new(
                ErrorCode::Internal,
                format!("object {id:#x} lives on another node (use ObjectDirectory::fetch)"),
            )),
        }
    }

    /// Waits until the object is sealed without touching its bytes.
    pub async fn wait_sealed(&self, id: ObjectId) -> ReefResult<()> {
        let rx = {
            let mut t = self.table.lock().unwrap();
            let entry = t
                .objects
                .get_mut(&id)
                .ok_or_else(|| ReefError::unknown_object(id))?;
            match &mut entry.state {
                State::Pending(waiters) => {
                    let (tx, rx) = oneshot::channel();
                    waiters.push(tx);
                    rx
                }
                _ => return Ok(()),
            }
        };
        let _ = rx.await;
        Ok(())
    }

    /// Copies `bytes` into a new sealed object's storage (heap or arena).
    pub fn new_data(&self, bytes: &[u8]) -> ReefResult<Arc<Data>> {
        self.new_data_for(bytes, None)
    }

    /// [`ObjectStore::new_data`] for a put of `tenant` (see [`ObjectStore::allocate_for`]).
    pub fn new_data_for(&self, bytes: &[u8], tenant: Option<&TenantId>) -> ReefResult<Arc<Data>> {
        if (bytes.len() as u64) < self.inline_threshold {
            return Ok(Arc::new(Data::Inline(Bytes::copy_from_slice(bytes))));
        }
        let block = self.allocate_for(bytes.len() as u64, tenant)?;
        // SAFETY: the block is new and ours alone until sealed.
        unsafe { block.as_mut_slice() }.copy_from_slice(bytes);
        Ok(Arc::new(Data::Arena(block)))
    }

    /// A buffer for a driver on this machine to write: a fresh segment of
    /// `len` bytes (see `segment`), whose arena range is reserved (spilling
    /// as `allocate` does) so that it counts against the store's capacity.
    pub fn allocate_segment(&self, len: u64, tenant: Option<&TenantId>) -> ReefResult<Block> {
        let reserved = self.allocate_for(len, tenant)?;
        Ok(reserved.into_segment(Segment::create(len)?))
    }

    /// A sealed segment holding a copy of `bytes` (an object of the arena
    /// a same-machine driver reads: it may map only that object's pages).
    /// Such copies are counted apart from the arena, all of them together
    /// at most the store's capacity; to make room, objects moved into such
    /// copies earlier (`promote_to_segment`) are spilled, least recently
    /// used first.
    pub fn segment_copy(&self, bytes: &[u8]) -> ReefResult<Block> {
        let len = bytes.len() as u64;
        let reserved = loop {
            if let Some(reserved) = self.arena.reserve_copy(len) {
                break Some(reserved);
            }
            if len > self.arena.capacity() || !self.spill_one(Pool::Copies)? {
                break None;
            }
        };
        let reserved = reserved.ok_or_else(|| {
            ReefError::new(
                ErrorCode::StoreFull,
                format!(
                    "no room for a {len}-byte copy of an object for a driver on this machine: \
                     such copies hold {} of at most {} bytes (the store's size); drop \
                     objects read earlier",
                    self.arena.copies(),
                    self.arena.capacity()
                ),
            )
        })?;
        let block = reserved.into_segment(Segment::create(len)?);
        let segment = block.segment().expect("allocate_segment makes a segment");
        segment.fill(bytes)?;
        segment.seal()?;
        Ok(block)
    }

    /// Moves the arena object `id` (whose bytes are `data`) into a sealed
    /// segment of its own, for drivers on this machine: the first such get
    /// copies it once, and every later one (of any session allowed to read
    /// it) maps that same segment, zero-copy. The segment is counted with
    /// the segment copies (`segment_copy`), and the object's arena range is
    /// freed once its last reader (a guest's view, a pin) is done with it.
    /// Returns the data the get should hand out.
    pub fn promote_to_segment(&self, id: ObjectId, data: &Arc<Data>) -> ReefResult<Arc<Data>> {
        let Data::Arena(block) = &**data else {
            return Ok(data.clone());
        };
        if block.segment().is_some() {
            return Ok(data.clone());
        }
        let moved = Arc::new(Data::Arena(self.segment_copy(block.as_slice())?));
        let mut t = self.table.lock().unwrap();
        // Unless it was spilled, freed or moved meanwhile: then `moved` is
        // this get's own copy, freed with its pin.
        if let Some(entry) = t
            .objects
            .get_mut(&id)
            .filter(|e| !e.spilling && matches!(&e.state, State::Ready(d) if Arc::ptr_eq(d, data)))
        {
            entry.state = State::Ready(moved.clone());
            t.moves = (t.moves.0 + 1, t.moves.1 + moved.len());
        }
        Ok(moved)
    }

    /// Reserves arena space, spilling least-recently-used unpinned objects
    /// until the block fits.
    pub fn allocate(&self, len: u64) -> ReefResult<Block> {
        self.allocate_for(len, None)
    }

    /// [`ObjectStore::allocate`] for a put of `tenant`: when no room can be
    /// made and only the tenant's own spill quota kept its objects in
    /// memory, the error is `QUOTA_EXCEEDED` naming it.
    pub fn allocate_for(&self, len: u64, tenant: Option<&TenantId>) -> ReefResult<Block> {
        if len > self.arena.capacity() {
            return Err(ReefError::new(
                ErrorCode::StoreFull,
                format!(
                    "object of {len} bytes is larger than the whole object store ({} bytes)",
                    self.arena.capacity()
                ),
            ));
        }
        loop {
            if let Some(block) = self.arena.allocate(len) {
                return Ok(block);
            }
            if !self.spill_one(Pool::Arena)? {
                if let Some(e) = tenant.and_then(|t| self.spill_quota_error(t, len)) {
                    return Err(e);
                }
                let (free, largest) = self.arena.free();
                let disk = free_bytes(&self.spill_dir).unwrap_or(0);
                let spilled = self.table.lock().unwrap().spilled_bytes;
                return Err(ReefError::new(
                    ErrorCode::StoreFull,
                    format!(
                        "object store full: needed {len} bytes, {free} bytes free \
                         ({largest} contiguous) and every object in memory is in use \
                         or would not fit the spill bound; spilled {spilled} of at most \
                         {} bytes (--max-spill-bytes), spill directory {} has {disk} \
                         bytes free",
                        self.max_spill_bytes,
                        self.spill_dir.display()
                    ),
                ));
            }
        }
    }

    /// The error of `tenant`'s put of `len` bytes for which no room could be
    /// made, when the tenant's spill quota is why: some of its objects in
    /// memory could have been spilled but for it.
    fn spill_quota_error(&self, tenant: &TenantId, len: u64) -> Option<ReefError> {
        let cap = self.spill_cap(tenant)?;
        let t = self.table.lock().unwrap();
        let spilled = t.tenant_spilled(tenant);
        let held_back = t.objects.values().any(|e| {
            e.tenant.as_ref() == Some(tenant)
                && !e.spilling
                && matches!(&e.state, State::Ready(d)
                    if matches!(**d, Data::Arena(_)) && Arc::strong_count(d) == 1
                        && spilled + d.len() > cap)
        });
        held_back.then(|| {
            // Worded as `quotas::exceeded` words the others (not called:
            // the store is below `quotas` in the module graph).
            ReefError::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "tenant {:?}: spill bytes quota {} exceeded ({} of its objects spilled on \
                     this node; a put of {len} bytes needs room that only spilling more of \
                     them would make)",
                    tenant.as_str(),
                    ByteSize(cap),
                    ByteSize(spilled)
                ),
            )
        })
    }

    /// Writes the least recently used unpinned arena object to the spill
    /// directory and frees its block (the protocol is at the top of this
    /// module). Returns false when nothing can be spilled.
    fn spill_one(&self, pool: Pool) -> ReefResult<bool> {
        // 1. Choose and mark the victim.
        let (id, data, tenant) = {
            let mut t = self.table.lock().unwrap();
            // Only what still fits under the spill bound, and its tenant's.
            let room = self
                .max_spill_bytes
                .saturating_sub(t.spilled_bytes + t.spilling_bytes);
            let mut caps: HashMap<&TenantId, u64> = HashMap::new();
            let victim = t
                .objects
                .iter()
                .filter(|(_, e)| !e.spilling)
                .filter_map(|(id, e)| match &e.state {
                    // Only what frees room in `pool`.
                    State::Ready(d)
                        if matches!(&**d, Data::Arena(b) if b.in_arena() == (pool == Pool::Arena))
                            && Arc::strong_count(d) == 1
                            && d.len() <= room =>
                    {
                        if let Some(tenant) = &e.tenant {
                            let room = *caps.entry(tenant).or_insert_with(|| {
                                self.spill_cap(tenant).map_or(u64::MAX, |cap| {
                                    cap.saturating_sub(t.tenant_spilled(tenant))
                                })
                            });
                            if d.len() > room {
                                return None;
                            }
                        }
                        Some((e.last_use, *id))
                    }
                    _ => None,
                })
                .min();
            let Some((_, id)) = victim else {
                return Ok(false);
            };
            let entry = t.objects.get_mut(&id).unwrap();
            entry.spilling = true;
            let len = match &entry.state {
                State::Ready(d) => d.len(),
                _ => 0,
            };
            let tenant = entry.tenant.clone();
            t.spilling_bytes += len;
            t.add_spilled(tenant.as_ref(), len);
            let entry = t.objects.get_mut(&id).unwrap();
            let State::Ready(data) = &entry.state else {
                unreachable!()
            };
            (id, data.clone(), tenant)
        };
        // 2. Write it, without the lock.
        let n = self.spill_files.fetch_add(1, Ordering::Relaxed);
        let path = self.spill_dir.join(format!("{id:016x}-{n}.obj"));
        let written = blocking(|| {
            std::fs::create_dir_all(&self.spill_dir)?;
            (self.write_spill)(&path, data.as_slice())
        });
        // 3. Switch it to spilled, unless it was pinned or freed meanwhile.
        let len = data.len();
        let mut t = self.table.lock().unwrap();
        t.spilling_bytes -= len;
        let entry = t
            .objects
            .get_mut(&id)
            .filter(|e| matches!(&e.state, State::Ready(d) if Arc::ptr_eq(d, &data)));
        let spilled = match entry {
            Some(entry) => {
                entry.spilling = false;
                // Two holders: the table and `data`.
                if written.is_ok() && Arc::strong_count(&data) == 2 {
                    entry.state = State::Spilled {
                        path: path.clone(),
                        len,
                    };
                    t.spilled_bytes += len;
                    t.spills = (t.spills.0 + 1, t.spills.1 + len);
                    true
                } else {
                    false
                }
            }
            None => false,
        };
        // Not spilled after all (pinned, or freed while `Ready`): the
        // tenant's count taken when it was marked goes back.
        if !spilled {
            t.sub_spilled(tenant.as_ref(), len);
        }
        drop(t);
        // The block is freed here, without the lock, when `data` was the last holder.
        drop(data);
        if let Err(e) = written {
            let _ = std::fs::remove_file(&path);
            return Err(ReefError::new(
                ErrorCode::StoreFull,
                format!("spilling object {id:#x} to {}: {e}", path.display()),
            ));
        }
        if spilled {
            tracing::debug!(id, len, "spilled object");
        } else {
            let _ = std::fs::remove_file(&path);
            tracing::debug!(id, "object pinned or freed while spilling: kept");
        }
        Ok(true)
    }

    /// Reads a spilled object back into the arena.
    fn restore(&self, id: ObjectId) -> ReefResult<()> {
        let (path, len) = {
            let t = self.table.lock().unwrap();
            match t.objects.get(&id).map(|e| &e.state) {
                Some(State::Spilled { path, len }) => (path.clone(), *len),
                Some(_) => return Ok(()),
                None => return Err(ReefError::unknown_object(id)),
            }
        };
        let block = self.allocate(len)?;
        let bytes = blocking(|| std::fs::read(&path)).map_err(|e| {
            ReefError::internal(format!("restoring {id:#x} from {}: {e}", path.display()))
        })?;
        // SAFETY: the block is new and ours alone until sealed.
        unsafe { block.as_mut_slice() }.copy_from_slice(&bytes);
        let mut t = self.table.lock().unwrap();
        if let Some(entry) = t.objects.get_mut(&id) {
            if matches!(&entry.state, State::Spilled { path: p, .. } if *p == path) {
                entry.state = State::Ready(Arc::new(Data::Arena(block)));
                let tenant = entry.tenant.clone();
                t.spilled_bytes -= len;
                t.sub_spilled(tenant.as_ref(), len);
                t.restores = (t.restores.0 + 1, t.restores.1 + len);
                drop(t);
                let _ = std::fs::remove_file(&path);
                tracing::debug!(id, len, "restored spilled object");
            }
        }
        Ok(())
    }

    /// Every entry of the table (for the state API): id, size, state, references.
    pub fn rows(&self) -> Vec<ObjectRow> {
        let t = self.table.lock().unwrap();
        let mut rows: Vec<ObjectRow> = t
            .objects
            .iter()
            .map(|(id, e)| {
                let (state, size) = match &e.state {
                    State::Pending(_) => ("pending", 0),
                    State::Ready(data) => ("ready", data.len()),
                    State::Spilled { len, .. } => ("spilled", *len),
                    State::Failed(_) => ("failed", 0),
                    State::Remote { size, .. } => ("remote", *size),
                };
                ObjectRow {
                    id: *id,
                    size,
                    state,
                    refs: e.refs,
                }
            })
            .collect();
        rows.sort_unstable_by_key(|r| r.id);
        rows
    }

    pub fn stats(&self) -> StoreStats {
        let t = self.table.lock().unwrap();
        StoreStats {
            objects: t.objects.len() as u64,
            arena_capacity: self.arena.capacity(),
            arena_used: self.arena.used(),
            spilled_bytes: t.spilled_bytes,
            inline_bytes: t.inline_bytes,
            spills: t.spills,
            restores: t.restores,
            moves: t.moves,
        }
    }
}

/// Runs blocking file I/O so that it holds up no other task: on a worker of a
/// multi-threaded runtime, that worker's other tasks move to another thread
/// while `f` runs. Elsewhere (a current-thread runtime, no runtime) `f` just runs.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl Table {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(capacity: u64) -> (ObjectStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let arena = Arena::create("test.arena", capacity).unwrap();
        (ObjectStore::new(arena, dir.path().join("spill"), 1024), dir)
    }

    #[test]
    fn padding_after_an_object_is_zeroed() {
        let (store, _dir) = store(1 << 20);
        let first = store.new_data(&[0xFFu8; 8192]).unwrap();
        drop(first);
        let second = store.new_data(&[1u8; 5000]).unwrap();
        let Data::Arena(block) = &*second else {
            panic!("expected an arena object")
        };
        // SAFETY: reading the block's own padding, inside its pages.
        let tail = unsafe { std::slice::from_raw_parts(block.as_ptr().add(5000), 8192 - 5000) };
        assert!(tail.iter().all(|&b| b == 0), "stale bytes after the object");
    }

    #[test]
    fn the_last_reference_frees_the_object() {
        let (store, _dir) = store(1 << 20);
        let data = store.new_data(&[3u8; 100_000]).unwrap();
        store.insert_ready(7, data, 1).unwrap();
        store.add_ref(7).unwrap();
        store.release(7);
        assert!(store.contains(7));
        store.release(7);
        assert!(!store.contains(7));
        assert_eq!(store.stats().arena_used, 0);
    }

    #[test]
    fn a_forwarded_attempt_adopts_what_is_there() {
        let (store, _dir) = store(1 << 20);
        assert_eq!(store.adopt(1), None);
        // A cached copy: already here, one more reference.
        let data = store.new_data(&[5u8; 2000]).unwrap();
        store.insert_ready(1, data, 1).unwrap();
        assert_eq!(store.adopt(1), Some(true));
        store.release(1);
        assert!(store.contains(1));
        // A placeholder stays pending; a stale error or remote entry becomes pending.
        store.create_pending(2, 1).unwrap();
        assert_eq!(store.adopt(2), Some(false));
        store.create_pending(4, 1).unwrap();
        store.resolve(4, Err(ReefError::internal("stale")));
        assert_eq!(store.adopt(4), Some(false));
        assert!(!store.is_ready(4).unwrap());
        store.resolve(4, Ok(Arc::new(Data::Inline(Bytes::from_static(b"y")))));
        assert!(store.is_ready(4).unwrap());
    }

    #[tokio::test]
    async fn least_recently_used_objects_spill_and_come_back() {
        let (store, _dir) = store(64 << 10);
        for id in 1..=4u64 {
            let data = store.new_data(&vec![id as u8; 24 << 10]).unwrap();
            store.insert_ready(id, data, 1).unwrap();
        }
        let stats = store.stats();
        assert_eq!(stats.spilled_bytes, 2 * (24 << 10), "{stats:?}");
        // Object 1 was the least recently used: it was spilled, and reads back intact.
        let back = store.get(1).await.unwrap();
        assert!(back.as_slice().iter().all(|&b| b == 1));
        // Pinned objects are never spilled: with the arena's objects pinned,
        // an allocation that needs their space fails clearly.
        let _pinned: Vec<_> = [3u64, 4].iter().map(|id| store.get(*id)).collect();
        let _pinned = futures::future::join_all(_pinned).await;
        let err = store.new_data(&vec![9u8; 40 << 10]).err().unwrap();
        assert_eq!(err.code, ErrorCode::StoreFull, "{err}");
    }

    #[tokio::test]
    async fn spilling_stops_at_the_spill_bound() {
        let (store, _dir) = store(64 << 10);
        // Room on disk for one 24 KiB object only.
        let store = store.with_spill_limit(30 << 10);
        for id in 1..=3u64 {
            let data = store.new_data(&vec![id as u8; 24 << 10]).unwrap();
            store.insert_ready(id, data, 1).unwrap();
        }
        assert_eq!(store.stats().spilled_bytes, 24 << 10);
        let err = store.new_data(&vec![4u8; 24 << 10]).err().unwrap();
        assert_eq!(err.code, ErrorCode::StoreFull, "{err}");
        assert!(err.message.contains("--max-spill-bytes"), "{err}");
        assert_eq!(store.stats().spilled_bytes, 24 << 10);
        // Freeing the spilled object makes room again.
        store.release(1);
        store.new_data(&vec![4u8; 24 << 10]).unwrap();
    }

    #[tokio::test]
    async fn a_tenant_past_its_spill_quota_keeps_its_objects_in_memory() {
        let (store, _dir) = store(64 << 10);
        let (a, b) = (TenantId::new("a"), TenantId::new("b"));
        let capped = b.clone();
        // B may have one 24 KiB object on disk; A has no quota.
        store.cap_tenant_spills(Box::new(move |t| (*t == capped).then_some(30 << 10)));
        let put = |id: u64, tenant: &TenantId| {
            let data = store.new_data_for(&vec![id as u8; 24 << 10], Some(tenant))?;
            store.insert_put(id, data, 1, tenant)
        };
        put(1, &b).unwrap();
        put(2, &b).unwrap();
        // Object 1 (B's, the least recently used) is spilled to make room.
        put(3, &b).unwrap();
        assert_eq!(store.tenant_spilled(&b), 24 << 10);
        // Only spilling more of B's would make room: B's put is refused.
        let err = put(4, &b).unwrap_err();
        assert_eq!(err.code, ErrorCode::QuotaExceeded, "{err}");
        assert_eq!(
            err.message,
            r#"tenant "b": spill bytes quota 30.0 KiB exceeded (24.0 KiB of its objects spilled on this node; a put of 24576 bytes needs room that only spilling more of them would make)"#
        );
        assert_eq!(store.tenant_spilled(&b), 24 << 10);
        // A's object spilled does not count against B; A's put, finding
        // only B's objects (held back by B's quota), is refused as full.
        let err = put(5, &a).unwrap_err();
        assert_eq!(err.code, ErrorCode::StoreFull, "{err}");
        // B freeing one and reading its spilled object back (into the room
        // made) gives its quota back.
        store.release(3);
        let back = store.get(1).await.unwrap();
        assert!(back.as_slice().iter().all(|&x| x == 1));
        drop(back);
        assert_eq!(store.tenant_spilled(&b), 0);
        // Freeing B's objects makes room for A.
        store.release(1);
        store.release(2);
        assert_eq!(store.tenant_spilled(&b), 0);
        put(5, &a).unwrap();
    }

    #[test]
    fn a_tasks_result_is_spilled_as_its_tenants() {
        let (store, _dir) = store(64 << 10);
        let b = TenantId::new("b");
        let capped = b.clone();
        store.cap_tenant_spills(Box::new(move |t| (*t == capped).then_some(0)));
        // B's task result, tagged while pending: B may spill nothing.
        store.create_pending(1, 1).unwrap();
        store.tag_tenant(1, &b);
        store.resolve(1, store.new_data(&[1u8; 40 << 10]));
        let err = store
            .new_data_for(&[2u8; 40 << 10], Some(&b))
            .err()
            .unwrap();
        assert_eq!(err.code, ErrorCode::QuotaExceeded, "{err}");
        assert_eq!(store.tenant_spilled(&b), 0);
    }

    /// A spill paused in the middle of its write (see `spill_blocks_no_reader`).
    struct PausedWrite {
        started: std::sync::mpsc::Receiver<()>,
        resume: std::sync::mpsc::SyncSender<()>,
    }

    /// Makes the store's first spill write wait (up to 5 s) for `resume`;
    /// the writer reports whether it was resumed before it gave up waiting.
    fn pause_first_spill(store: &mut ObjectStore) -> (PausedWrite, Arc<Mutex<Option<bool>>>) {
        let (started_tx, started) = std::sync::mpsc::sync_channel(1);
        let (resume, resume_rx) = std::sync::mpsc::sync_channel(1);
        let resumed = Arc::new(Mutex::new(None));
        let seen = resumed.clone();
        let first = std::sync::atomic::AtomicBool::new(true);
        let resume_rx = Mutex::new(resume_rx);
        store.write_spill = Box::new(move |path, bytes| {
            if first.swap(false, Ordering::SeqCst) {
                started_tx.send(()).unwrap();
                let waited = resume_rx
                    .lock()
                    .unwrap()
                    .recv_timeout(std::time::Duration::from_secs(5));
                *seen.lock().unwrap() = Some(waited.is_ok());
            }
            std::fs::write(path, bytes)
        });
        (PausedWrite { started, resume }, resumed)
    }

    #[test]
    fn spill_blocks_no_reader() {
        const MIB: usize = 1 << 20;
        let (mut store, _dir) = store(2 << 20);
        let (paused, resumed) = pause_first_spill(&mut store);
        let store = Arc::new(store);
        // The arena holds exactly two objects; `a` is the least recently used.
        for (id, fill) in [(1u64, 0xaau8), (2, 0xbb)] {
            let data = store.new_data(&vec![fill; MIB]).unwrap();
            store.insert_ready(id, data, 1).unwrap();
        }
        // A third object needs a spill; its write stops half way.
        let writer = {
            let store = store.clone();
            std::thread::spawn(move || store.new_data(&vec![0xcc; MIB]))
        };
        paused.started.recv().unwrap();
        // Meanwhile the store answers: the other object, and the one being
        // written (which stays readable, intact).
        let Some(Ok(Located::Local(b))) = store.located_now(2) else {
            panic!("object 2 is not readable")
        };
        assert!(b.as_slice().iter().all(|&x| x == 0xbb));
        drop(b);
        let Some(Ok(Located::Local(a))) = store.located_now(1) else {
            panic!("object 1 is not readable while it is being spilled")
        };
        assert_eq!(store.stats().objects, 2);
        paused.resume.send(()).unwrap();
        // `a` was pinned while written: it stays in memory and `b` is spilled instead.
        let c = writer.join().unwrap().unwrap();
        assert_eq!(c.len(), MIB as u64);
        assert_eq!(
            *resumed.lock().unwrap(),
            Some(true),
            "readers waited for the spill's write"
        );
        assert!(a.as_slice().iter().all(|&x| x == 0xaa));
        assert_eq!(store.local_size(1), Some(MIB as u64));
        assert_eq!(store.stats().spilled_bytes, MIB as u64);
        drop(a);
        // `b` comes back intact (spilling `a`, now unpinned), then `a` does.
        let b = store.located_now(2).unwrap().unwrap();
        let Located::Local(b) = b else { panic!() };
        assert!(b.as_slice().iter().all(|&x| x == 0xbb));
        drop(b);
        assert_eq!(store.stats().spilled_bytes, MIB as u64);
        let Some(Ok(Located::Local(a))) = store.located_now(1) else {
            panic!("object 1 did not come back")
        };
        assert!(a.as_slice().iter().all(|&x| x == 0xaa));
        assert_eq!(store.local_size(2), Some(MIB as u64));
        assert_eq!(store.stats().spilled_bytes, MIB as u64);
        assert!(c.as_slice().iter().all(|&x| x == 0xcc));
    }

    #[tokio::test]
    async fn waiters_get_the_value_or_the_error() {
        let (store, _dir) = store(1 << 20);
        store.create_pending(1, 1).unwrap();
        store.create_pending(2, 1).unwrap();
        let (a, b, ()) = tokio::join!(store.get(1), store.get(2), async {
            store.resolve(1, Ok(Arc::new(Data::Inline(Bytes::from_static(b"ok")))));
            store.resolve(2, Err(ReefError::new(ErrorCode::GuestTrap, "boom")));
        });
        assert_eq!(a.unwrap().as_slice(), b"ok");
        assert_eq!(b.err().unwrap().code, ErrorCode::GuestTrap);
    }
}
