//! A node: the daemon's services, wired together. Nothing below this module
//! knows `Node`; each service owns its state and is handed the few others it
//! uses when it is built here.
//!
//! ```text
//!  rpc::{service, session, peer, groups}      cli (host start)
//!                     \                          /
//!                      `----------- Node -------'
//!        tasks::Tasks      actors::ActorManager      modules::Registry
//!              \                 |                    /
//!               guest (HostServices, exec, host_api) --- Dispatch (here)
//!                                |
//!   objects::ObjectDirectory -- cluster::{Membership, groups::Bundles} -- placement
//!          |                                  |
//!   store::{ObjectStore, Arena}, transfer::Puller        scheduler::Scheduler
//! ```
//!
//! # Life of a node
//!
//! 1. **Start** ([`Node::start`]): the engine and its epoch ticker; the
//!    arena (pages faulted in on a background thread) and the object store;
//!    the cluster membership (not joined yet), the object directory and its
//!    puller; the scheduler and the placement-group bundles; the module
//!    registry; the task and actor services; the host services every guest
//!    gets; then the modules saved by an earlier run are loaded.
//! 2. **Join** ([`Node::join_cluster`], or `run_standalone`): register with
//!    the control plane, get the node index (ids are allocated from it:
//!    driver sessions wait for it), heartbeat and follow the cluster view.
//! 3. **Serve**: `cli` serves the gRPC services of `rpc` and raw pull
//!    connections (`transfer`) until the node stops.
//! 4. **Stop** ([`Node::stop`]): new work is refused; running and pending
//!    tasks fail with NODE_STOPPING; actors are killed.
//! 5. **Drain** ([`Node::drain`]): wait (bounded) until the stopped tasks
//!    have sealed their results, then close every driver session, so each
//!    driver sees NODE_STOPPING before the disconnect.

use std::sync::{Arc, Weak};

use anyhow::{Context, Result};
use futures::future::BoxFuture;
use reef_core::TenantId;
use reef_proto as pb;
use tokio_util::sync::CancellationToken;

use crate::actors::{ActorDeps, ActorManager};
use crate::cluster::groups::Bundles;
use crate::cluster::{to_map, Hooks, Membership};
use crate::error::ReefResult;
use crate::guest::{Dispatch, HostServices};
use crate::ids::{prefix, SLOTS};
use crate::jobs::Job;
use crate::logs::LogDir;
use crate::metrics::{Metrics, Snapshot};
use crate::modules::Registry;
use crate::objects::ObjectDirectory;
use crate::quotas::{Counted, Quotas};
use crate::runtime::GuestRuntime;
use crate::scheduler::{Resources, Scheduler};
use crate::session_slots::{Refused, SessionSlots, SlotLease};
use crate::spec::{ActorSpec, ArgSpec, Placed, TaskSpec};
use crate::store::{Arena, ObjectId, ObjectStore};
use crate::tasks::{StopReason, TaskDeps, Tasks};

pub use crate::config::NodeConfig;

/// How long forwarded work waits for this node to finish joining its cluster.
const JOIN_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

pub struct Node {
    pub id: String,
    pub config: Arc<NodeConfig>,
    /// Where objects are: the local store, copies, pulls, forwarded results.
    pub objects: Arc<ObjectDirectory>,
    pub registry: Arc<Registry>,
    /// The node's resources (placement-group bundles are carved out of it).
    pub scheduler: Arc<Scheduler>,
    pub bundles: Arc<Bundles>,
    pub tasks: Arc<Tasks>,
    pub actors: Arc<ActorManager>,
    /// This node's place in the cluster: index, view, peers.
    pub cluster: Arc<Membership>,
    /// Guests' output: files under `<data-dir>/logs`, by task and actor.
    pub logs: Arc<LogDir>,
    /// The node's metrics (served on `/metrics` by `cli`).
    pub metrics: Arc<Metrics>,
    /// Remote drivers' streamed puts in progress.
    pub uploads: Arc<crate::transfer::Uploads>,
    /// Tenants' quotas and what they use here.
    pub quotas: Arc<Quotas>,
    /// What guests may reach; holds `work` weakly.
    host: HostServices,
    _work: Arc<Work>,
    /// Session slots: a slot is never given while a live session holds it.
    session_slots: SessionSlots,
    /// Cancelled when the node begins to stop.
    pub stopping: CancellationToken,
    /// Cancelled once stopped tasks have sealed their results: driver
    /// sessions end (so they see NODE_STOPPING first, then the disconnect).
    pub closing: CancellationToken,
}

/// New work guests start, handed to the task and actor services.
struct Work {
    tasks: Arc<Tasks>,
    actors: Arc<ActorManager>,
}

impl Dispatch for Work {
    fn submit(&self, spec: TaskSpec) -> ReefResult<()> {
        self.tasks.submit(spec)
    }

    fn create_actor(&self, spec: ActorSpec) -> ReefResult<(u64, Placed)> {
        self.actors.create(spec)
    }

    fn lookup_actor(&self, tenant: &TenantId, name: String) -> BoxFuture<'static, ReefResult<u64>> {
        let actors = self.actors.clone();
        let tenant = tenant.clone();
        Box::pin(async move { actors.lookup(&tenant, &name).await })
    }

    fn call_actor(
        &self,
        caller: &TenantId,
        actor: u64,
        return_id: ObjectId,
        method: String,
        args: Vec<ArgSpec>,
    ) -> ReefResult<()> {
        self.actors
            .call(actor, return_id, method, args, Some(caller.clone()))
    }
}

impl Node {
    /// Builds and wires the node's services (steps 1 of the protocol above).
    pub async fn start(config: NodeConfig) -> Result<Arc<Node>> {
        let id = format!(
            "{:08x}{:08x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .subsec_nanos()
        );
        let config = Arc::new(config);
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        let engine = crate::engine::new_engine()?;
        crate::engine::start_epoch_ticker(&engine);
        // A memfd: no path, gone with the process however it ends.
        let arena = Arena::create(
            &format!("reef-{}.arena", config.port),
            config.object_store_memory,
        )?;
        {
            let arena = arena.clone();
            std::thread::spawn(move || {
                if let Err(e) = arena.prefault() {
                    tracing::warn!("{e:#}");
                }
            });
        }
        let store = Arc::new(
            ObjectStore::new(arena, config.spill_dir.clone(), config.inline_threshold)
                .with_spill_limit(config.max_spill_bytes),
        );
        let cluster = Arc::new(Membership::new(&id, &config.token));
        let quotas = Quotas::follow(cluster.watch_views());
        {
            let (spills, charges) = (quotas.clone(), quotas.clone());
            store.cap_tenant_spills(Box::new(move |tenant| spills.max_spill_bytes(tenant)));
            store.charge_tenant_arena(Box::new(move |tenant, bytes| {
                let charge = charges.charge(tenant, Counted::ArenaBytes, bytes)?;
                Ok(charge.map(|c| Box::new(c) as crate::store::Held))
            }));
        }
        let puller = if config.token.is_empty() {
            None
        } else {
            Some(
                crate::transfer::Puller::new(&store, &config.token)?
                    .with_tls(reef_core::tls::installed().cloned()),
            )
        };
        let metrics = Arc::new(if config.metrics {
            Metrics::new()
        } else {
            Metrics::off()
        });
        let lineage = crate::lineage::Lineage::new(config.lineage, metrics.lineage.clone());
        let objects = Arc::new(ObjectDirectory::new(
            store,
            cluster.clone(),
            puller,
            lineage,
        ));
        let scheduler = Scheduler::new(Resources {
            cpus: config.num_cpus,
            memory: config.memory,
            custom: config.custom_resources.clone(),
        });
        let bundles = Arc::new(Bundles::new(scheduler.clone(), cluster.clone()));
        let registry = Arc::new(Registry::new(
            &engine,
            config.data_dir.join("modules"),
            config.data_dir.join("scratch"),
            cluster.clone(),
            config.default_memory_limit,
        )?);
        let logs = LogDir::open(config.data_dir.join("logs"), config.log_limits)
            .with_context(|| format!("opening {}", config.data_dir.join("logs").display()))?;
        {
            let quotas = quotas.clone();
            logs.cap_tenants(Box::new(move |tenant| quotas.max_log_bytes(tenant)));
        }
        let guests = Arc::new(GuestRuntime::new(config.num_cpus, config.guest_niceness)?);
        let stopping = CancellationToken::new();
        let tasks = Arc::new(Tasks::new(TaskDeps {
            config: config.clone(),
            logs: logs.clone(),
            objects: objects.clone(),
            registry: registry.clone(),
            cluster: cluster.clone(),
            bundles: bundles.clone(),
            scheduler: scheduler.clone(),
            guests: guests.clone(),
            stopping: stopping.clone(),
            metrics: metrics.clone(),
            quotas: quotas.clone(),
        }));
        let actors = Arc::new(ActorManager::new(ActorDeps {
            config: config.clone(),
            logs: logs.clone(),
            objects: objects.clone(),
            registry: registry.clone(),
            cluster: cluster.clone(),
            bundles: bundles.clone(),
            guests,
            metrics: metrics.clone(),
            quotas: quotas.clone(),
        }));
        metrics.set_source(snapshot(
            Arc::downgrade(&objects),
            Arc::downgrade(&actors),
            Arc::downgrade(&registry),
            Arc::downgrade(&scheduler),
            Arc::downgrade(tasks.warm()),
            engine.pooling_allocator_metrics(),
        ));
        let work = Arc::new(Work {
            tasks: tasks.clone(),
            actors: actors.clone(),
        });
        let dispatch: Weak<dyn Dispatch> = Arc::downgrade(&work) as Weak<dyn Dispatch>;
        let host = HostServices::new(&id, engine, objects.clone(), dispatch);
        tasks.set_host(host.clone());
        objects.set_rebuilder(Arc::downgrade(&tasks) as Weak<dyn crate::objects::Rebuild>);
        actors.set_host(host.clone());
        objects.start_free_listener();
        let node = Arc::new(Node {
            id,
            config,
            objects,
            registry,
            scheduler,
            bundles,
            tasks,
            actors,
            cluster,
            logs,
            metrics,
            uploads: Arc::default(),
            quotas,
            host,
            _work: work,
            session_slots: SessionSlots::new(SLOTS, random_slot_base()),
            stopping,
            closing: CancellationToken::new(),
        });
        let loaded = node.registry.load_saved(&node.host).await?;
        if loaded > 0 {
            tracing::info!(loaded, "loaded saved modules");
        }
        Ok(node)
    }

    /// The host services guests get (and registration's `describe`).
    pub fn host(&self) -> &HostServices {
        &self.host
    }

    /// The local object store.
    pub fn store(&self) -> &Arc<ObjectStore> {
        self.objects.store()
    }

    /// The address other nodes and drivers reach this node at.
    pub fn address(&self) -> String {
        self.config.address()
    }

    /// Joins the cluster through `control_plane` (on the head, its own, in
    /// process): step 2 of the protocol above.
    pub async fn join_cluster(
        self: &Arc<Self>,
        control_plane: Arc<dyn reef_gcs::ControlPlane>,
    ) -> Result<()> {
        let request = self.registration();
        let (beat, rejoin, died, forgotten) = (
            Arc::downgrade(self),
            Arc::downgrade(self),
            Arc::downgrade(self),
            Arc::downgrade(self),
        );
        let hooks = Hooks {
            heartbeat: Box::new(move || beat.upgrade().map(|node| node.heartbeat())),
            rejoin: Box::new(move || {
                let node = rejoin.upgrade()?;
                let mut request = node.registration();
                // What a restarted control plane keeps records of: the
                // actors living here (not dead) and the bundles reserved.
                request.actors = node
                    .actors
                    .rows()
                    .into_iter()
                    .filter(|a| !a.state.starts_with("dead"))
                    .map(|a| a.id)
                    .collect();
                request.bundles = node.bundles.held();
                Some(request)
            }),
            node_died: Box::new(move |node_id| {
                if let Some(node) = died.upgrade() {
                    let (failed, calls) = node.objects.on_node_dead(node_id);
                    node.tasks.on_failed_elsewhere(failed);
                    node.actors.on_node_dead(node_id, calls);
                }
            }),
            forgotten: Box::new(move || {
                if let Some(node) = forgotten.upgrade() {
                    node.stop();
                }
            }),
            stopping: self.stopping.clone(),
        };
        self.cluster.join(control_plane, request, hooks).await
    }

    /// This node's registration with the control plane, as of now.
    fn registration(&self) -> pb::RegisterNodeRequest {
        pb::RegisterNodeRequest {
            node_id: self.id.clone(),
            address: self.address(),
            total: Some(to_map(self.scheduler.total())),
            available: Some(to_map(&self.scheduler.available())),
            ..Default::default()
        }
    }

    fn heartbeat(&self) -> pb::HeartbeatRequest {
        let stats = self.store().stats();
        pb::HeartbeatRequest {
            node_id: self.id.clone(),
            available: Some(to_map(&self.scheduler.available())),
            pending_tasks: self.scheduler.queued() as u64,
            running_tasks: self.tasks.table().len() as u64,
            store_used: stats.arena_used,
            store_capacity: stats.arena_capacity,
        }
    }

    /// A fresh id prefix for a driver session of `tenant`, with the lease
    /// that holds its slot until the session ends. Refused when every slot is
    /// held, or when the tenant holds `--max-sessions-per-tenant` already
    /// (`restricted`: a tenant's credential; the admin's sessions are not
    /// capped).
    pub fn new_id_prefix(
        &self,
        tenant: &TenantId,
        restricted: bool,
    ) -> Result<(u64, SlotLease), Refused> {
        let cap = restricted.then_some(self.config.max_sessions_per_tenant);
        let lease = self.session_slots.acquire(tenant, cap)?;
        Ok((prefix(self.cluster.index(), lease.slot()), lease))
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Step 4: begins a clean stop: running and pending tasks fail with
    /// NODE_STOPPING, actors are killed.
    pub fn stop(&self) {
        self.stopping.cancel();
        self.tasks.table().stop_all(None, StopReason::NodeStopping);
        self.actors.kill_all();
    }

    /// Step 5: waits (up to `grace`) for stopped tasks to seal their
    /// results, then ends every driver session.
    pub async fn drain(&self, grace: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        while !self.tasks.table().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // Let the last replies go out before the streams end.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        self.closing.cancel();
    }

    /// Results of work this node forwarded, reported by the nodes that ran
    /// it; failed task attempts go to the task service (retried or failed).
    pub fn objects_ready(&self, objects: Vec<pb::ReadyObject>) {
        let failed = self.objects.on_objects_ready(objects);
        self.tasks.on_failed_elsewhere(failed);
    }

    /// Waits until this node has joined its cluster (at most `JOIN_WAIT`:
    /// a node that never joins stops anyway).
    pub async fn joined(&self) {
        if self.cluster.is_registered() {
            return; // the hot path: no timer, no subscription
        }
        let _ = tokio::time::timeout(JOIN_WAIT, self.cluster.registered()).await;
    }

    /// Forwarded work arrived from another node.
    pub fn accept_forwarded(&self, work: pb::ForwardedWork) {
        use pb::forwarded_work::Work as W;
        let strategy = crate::placement::Strategy::from_proto(work.strategy.as_ref());
        let tenant = reef_core::TenantId::from_wire(&work.tenant);
        match work.work {
            Some(W::Task(task)) => self
                .tasks
                .accept_forwarded(task, strategy, work.hops, tenant),
            Some(W::CreateActor(create)) => self.actors.accept_create(create, strategy, tenant),
            Some(W::CallActor(call)) => self.actors.accept_call(call),
            None => tracing::warn!("empty forwarded work"),
        }
    }

    /// Records a session of the driver at `driver_address` as a job (in
    /// the background; nothing without a control plane); `submission_id`:
    /// the submitted job whose process the driver is ("" for none).
    pub fn start_job(
        &self,
        driver_address: String,
        description: String,
        submission_id: String,
        tenant: &reef_core::TenantId,
    ) -> Job {
        Job::start(
            self.cluster.gcs().ok(),
            &self.id,
            driver_address,
            description,
            submission_id,
            tenant.to_wire(),
        )
    }
}

/// What `/metrics` reads at each scrape (held weakly: the services hold
/// the metrics).
fn snapshot(
    objects: Weak<ObjectDirectory>,
    actors: Weak<ActorManager>,
    registry: Weak<Registry>,
    scheduler: Weak<Scheduler>,
    warm: Weak<crate::guest::warm::WarmPool>,
    pool: Option<wasmtime::PoolingAllocatorMetrics>,
) -> impl Fn() -> Snapshot + Send + Sync {
    move || {
        let mut s = Snapshot::default();
        if let Some(objects) = objects.upgrade() {
            let stats = objects.store().stats();
            s.objects = stats.objects;
            s.arena_capacity = stats.arena_capacity;
            s.arena_used = stats.arena_used;
            s.inline_bytes = stats.inline_bytes;
            s.spilled_bytes = stats.spilled_bytes;
            (s.spills, s.spilled_bytes_total) = stats.spills;
            (s.restores, s.restored_bytes_total) = stats.restores;
            (s.segment_moves, s.segment_moved_bytes) = stats.moves;
            if let Some(puller) = objects.puller() {
                s.pulled_bytes = puller.bytes_pulled();
                s.pulls = puller.transfers();
                s.pulls_in_progress = puller.in_progress() as u64;
            }
        }
        if let Some(actors) = actors.upgrade() {
            let mut by_state = [
                ("starting", 0),
                ("alive", 0),
                ("restarting", 0),
                ("dead", 0),
            ];
            for row in actors.rows() {
                // The state is the first word: "alive (restarts: 1)", "dead: <cause>".
                let state = row
                    .state
                    .split(|c: char| c == ':' || c.is_whitespace())
                    .next()
                    .unwrap_or_default();
                if let Some(n) = by_state.iter_mut().find(|(s, _)| *s == state) {
                    n.1 += 1;
                }
            }
            s.actors = by_state.to_vec();
        }
        if let Some(registry) = registry.upgrade() {
            for module in registry.list() {
                if module.cached {
                    s.modules_cached += 1;
                } else {
                    s.modules_compiled += 1;
                }
            }
        }
        if let Some(scheduler) = scheduler.upgrade() {
            s.tasks_queued = scheduler.queued() as u64;
        }
        if let Some(warm) = warm.upgrade() {
            s.warm_instances = warm.len() as u64;
        }
        if let Some(pool) = &pool {
            s.pool_instances = pool.component_instances();
            s.pool_memories = pool.memories() as u64;
            s.pool_capacity = crate::engine::POOL_INSTANCES.into();
        }
        s
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
