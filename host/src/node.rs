//! A node: the parts of the daemon, wired together.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;
use wasmtime::Engine;

use crate::actors::Actors;
use crate::modules::Registry;
use crate::scheduler::{Resources, Scheduler};
use crate::store::{Arena, ObjectId, ObjectStore};
use crate::tasks::{StopReason, TaskTable};

/// An object id is `prefix << 40 | counter`; a prefix is `node_index << 14 |
/// slot`. The node index, given by the control plane when the node joins,
/// names the id's *owner*: the node that tracks where the object is (see
/// `cluster`). Slot 0 is the node's own (guest puts, nested tasks); driver
/// sessions take slots 1.. in turn.
pub const ID_PREFIX_SHIFT: u32 = 40;
const SLOT_BITS: u32 = 14;
const SLOTS: u64 = 1 << SLOT_BITS;

/// The index of the node that owns an object id.
pub fn owner_index(id: ObjectId) -> u32 {
    ((id >> ID_PREFIX_SHIFT) >> SLOT_BITS) as u32
}

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub head: bool,
    pub port: u16,
    pub num_cpus: f64,
    /// Bytes of the `memory` resource tasks can reserve.
    pub memory: u64,
    pub custom_resources: std::collections::BTreeMap<String, f64>,
    pub object_store_memory: u64,
    /// Where the arena file is created (a tmpfs, normally `/dev/shm`).
    pub arena_dir: PathBuf,
    pub spill_dir: PathBuf,
    pub data_dir: PathBuf,
    /// The Unix socket same-machine drivers use (see `Hello.socket_path`).
    pub socket_path: PathBuf,
    /// Objects below this size live on the heap rather than in the arena.
    pub inline_threshold: u64,
    pub default_memory_limit: u64,
    pub default_cpu_time_ms: u64,
    /// The cluster token: checked on every RPC this node serves, presented on
    /// every RPC it makes to other nodes and the control plane.
    pub token: String,
    /// The head's address when this node joins a cluster (`--address`); a
    /// head joins its own control plane.
    pub head_address: Option<String>,
    /// The host other nodes reach this one at (`--node-ip`).
    pub advertise_host: String,
}

pub struct Node {
    pub id: String,
    pub config: NodeConfig,
    pub engine: Engine,
    pub registry: Registry,
    pub store: ObjectStore,
    pub scheduler: Arc<Scheduler>,
    pub tasks: TaskTable,
    pub actors: Actors,
    /// This node's place in the cluster: index, view, peers, remote work.
    pub cluster: crate::cluster::Membership,
    /// Pulls objects from other nodes (set at start when the node has a token).
    pub puller: std::sync::OnceLock<crate::transfer::Puller>,
    next_object: AtomicU64,
    next_prefix: AtomicU64,
    /// Where guest code runs (see `GuestRuntime`).
    pub guests: GuestRuntime,
    /// Cancelled when the node begins to stop.
    pub stopping: CancellationToken,
    /// Cancelled once stopped tasks have sealed their results: driver
    /// sessions end (so they see NODE_STOPPING first, then the disconnect).
    pub closing: CancellationToken,
}

impl Node {
    pub async fn start(config: NodeConfig) -> Result<Arc<Node>> {
        let id = format!(
            "{:08x}{:08x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .subsec_nanos()
        );
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        let engine = crate::engine::new_engine()?;
        crate::engine::start_epoch_ticker(&engine);
        let arena_path = config
            .arena_dir
            .join(format!("reef-{}-{id}.arena", config.port));
        let arena = Arena::create(&arena_path, config.object_store_memory)?;
        {
            let arena = arena.clone();
            std::thread::spawn(move || {
                if let Err(e) = arena.prefault() {
                    tracing::warn!("{e:#}");
                }
            });
        }
        let store = ObjectStore::new(arena, config.spill_dir.clone(), config.inline_threshold);
        let registry = Registry::new(
            &engine,
            config.data_dir.join("modules"),
            config.data_dir.join("scratch"),
        )?;
        let scheduler = Scheduler::new(Resources {
            cpus: config.num_cpus,
            memory: config.memory,
            custom: config.custom_resources.clone(),
        });
        let node = Arc::new(Node {
            id,
            engine,
            registry,
            store,
            scheduler,
            tasks: TaskTable::default(),
            actors: Actors::default(),
            next_object: AtomicU64::new(1),
            next_prefix: AtomicU64::new(random_slot_base()),
            cluster: crate::cluster::Membership::new(),
            puller: Default::default(),
            guests: GuestRuntime::new(config.num_cpus)?,
            stopping: CancellationToken::new(),
            closing: CancellationToken::new(),
            config,
        });
        if !node.config.token.is_empty() {
            let puller = crate::transfer::Puller::new(Arc::downgrade(&node), &node.config.token)?;
            let _ = node.puller.set(puller);
        }
        node.start_free_listener();
        let loaded = node.registry.load_saved(&node).await?;
        if loaded > 0 {
            tracing::info!(loaded, "loaded saved modules");
        }
        Ok(node)
    }

    /// A fresh id for an object the node creates itself.
    pub fn new_object_id(&self) -> ObjectId {
        let prefix = (self.cluster.index() as u64) << SLOT_BITS;
        (prefix << ID_PREFIX_SHIFT) | self.next_object.fetch_add(1, Ordering::Relaxed)
    }

    /// A fresh id prefix for a driver session (slots wrap after 16383 sessions).
    pub fn new_id_prefix(&self) -> u64 {
        let slot = self.next_prefix.fetch_add(1, Ordering::Relaxed) % (SLOTS - 1) + 1;
        ((self.cluster.index() as u64) << SLOT_BITS) | slot
    }

    /// Whether this node owns the object id (it tracks the object's copies).
    pub fn owns(&self, id: ObjectId) -> bool {
        owner_index(id) == self.cluster.index()
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Begins a clean stop: running and pending tasks fail with NODE_STOPPING.
    pub fn stop(&self) {
        self.stopping.cancel();
        self.tasks.stop_all(None, StopReason::NodeStopping);
        self.actors.kill_all();
    }

    /// Waits (up to `grace`) for stopped tasks to seal their results, then
    /// ends every driver session.
    pub async fn drain(&self, grace: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        while !self.tasks.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // Let the last replies go out before the streams end.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        self.closing.cancel();
    }
}

/// The threads that run tasks and actors, apart from the runtime that serves
/// RPCs: a guest computing between epoch ticks then never delays a driver's
/// request, and the RPC side stays on one thread, where a request costs no
/// cross-thread wake-ups (~60 µs of a round trip on this kind of VM).
pub struct GuestRuntime {
    runtime: Option<tokio::runtime::Runtime>,
    /// Whether a guest runs on the RPC thread right now (see `claim_inline`).
    inline_busy: std::sync::atomic::AtomicBool,
}

/// The RPC thread's guest slot, given back on drop.
pub struct InlineSlot<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for InlineSlot<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl GuestRuntime {
    fn new(num_cpus: f64) -> Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = (num_cpus.ceil() as usize).clamp(1, cores.max(1));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(GUEST_THREAD)
            .enable_all()
            .build()
            .context("starting the guest runtime")?;
        Ok(GuestRuntime {
            runtime: Some(runtime),
            inline_busy: Default::default(),
        })
    }

    /// Whether the calling thread is one of the guest threads.
    pub fn on_guest_thread(&self) -> bool {
        std::thread::current().name() == Some(GUEST_THREAD)
    }

    /// Lets one guest at a time start on the RPC thread (see `Node::run_task`).
    pub fn claim_inline(&self) -> Option<InlineSlot<'_>> {
        self.inline_busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| InlineSlot(&self.inline_busy))
    }

    pub fn spawn<F>(&self, future: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        if let Some(rt) = &self.runtime {
            rt.spawn(future);
        }
    }
}

const GUEST_THREAD: &str = "reef-guest";

impl Drop for GuestRuntime {
    fn drop(&mut self) {
        // Dropping a runtime may not block inside another one.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A random first session slot, so ids from two separate clusters (a driver
/// mixing them up) are unlikely to collide.
fn random_slot_base() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish() % (SLOTS - 1)
}
