//! The control plane as a gRPC service: `reef.v1.ControlPlane`
//! (`proto/cluster.proto`), served by the head node.
//!
//! # Model
//!
//! Hot state — nodes, the actor directory, placement groups — lives in
//! memory under one lock (`state`), so a placement or a heartbeat costs
//! microseconds. Changes are published to subscribers as a
//! [`ClusterView`] through a `tokio::sync::watch` channel: the full view
//! first, then the latest one after each change, at most one per
//! `view_interval` (50 ms), each with a higher `version`.
//!
//! Background tasks (spawned by [`ControlPlaneService::new`], ended when the
//! service is dropped): the view publisher, the failure detector (a node
//! silent for `node_timeout` is marked dead: its actors die, its placement
//! groups are rescheduled, every subscriber sees it), and the placement
//! group retry loop.
//!
//! # Durability
//!
//! * Node indexes and placement group ids come from durable counters
//!   (group ids reserved 4096 at a time), so they are never reused, even
//!   across restarts.
//! * Modules, jobs and KV are written synchronously and durably to the
//!   [`Storage`] before the call returns (they are rare; `registry.rs`).
//! * Node, actor and placement group records are written behind
//!   (`persist`): batched, one storage transaction every 5 ms. A crash of
//!   the head can lose the last few milliseconds of those records, except
//!   what a reply vouched for: `PlaceActor` of a named actor, and every
//!   placement group call, reply only once their record is stored.
//! * A restarted control plane (same store: data directory or Redis) takes
//!   its predecessor's state over (`recover`): nodes it left alive come back
//!   *reconnecting* until they register again with their index and report
//!   their actors and bundles (nodes learn it from `Heartbeat`, answered
//!   `unknown = true`); those that do not within the node timeout die like
//!   any silent node, and with them the actors and groups they held.
//!
//! # Callers
//!
//! Nodes and drivers elsewhere reach the service over gRPC
//! ([`crate::GcsClient`]); the head node, which runs it, calls it in process
//! ([`InProcess`]). Both implement [`crate::ControlPlane`] with the same
//! semantics: every operation is one method of the service state, and the gRPC
//! server is a thin adapter over them.
//!
//! Errors carry the Reef error (`reef.v1.Error`) in the status details, its
//! code name also prefixing the message (see `crate::status`).

mod actors;
mod groups;
mod in_process;
mod nodes;
mod peers;
mod persist;
mod recover;
mod registry;
mod state;
mod tenants;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::StreamExt;
use reef_proto::auth::{AttachToken, CheckToken};
use reef_proto::control_plane_server::{ControlPlane as ControlPlaneApi, ControlPlaneServer};
use reef_proto::*;
use tokio::sync::{watch, Notify};
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use crate::control_plane::ViewStream;
use crate::error::GcsError;
use crate::retained::Retained;
use crate::storage::Storage;
use crate::tables::{finished_jobs, Counters, JobTable, Kv, TenantTable};
use peers::PeerPool;
use persist::Persister;
use recover::Restored;
use state::{Retention, State};

pub use in_process::InProcess;
pub use registry::MODULE_BLOB_TABLE;

/// Largest message the service accepts or sends (modules can be big).
pub const MAX_MESSAGE_BYTES: usize = 512 << 20;

/// Tuning of the control plane service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// How often nodes should heartbeat (told to them at registration).
    pub heartbeat_interval: Duration,
    /// A node silent this long is marked dead.
    pub node_timeout: Duration,
    /// Whether a node silent for a few heartbeats has its port probed: a
    /// refused connection (nothing listens: the process is gone) marks it
    /// dead before the timeout. Off by default (tests with fake nodes); on
    /// in `host start --head`.
    pub probe_silent_nodes: bool,
    /// The node flagged `head` in the view (the node of this process, never
    /// declared dead for silence); `None`: the first to register.
    pub head_node_id: Option<String>,
    /// Minimum time between two published views (bursts coalesce).
    pub view_interval: Duration,
    /// How often pending placement groups are retried (also on view changes).
    pub group_retry_interval: Duration,
    /// Timeout of the control plane's calls to nodes (`ReserveBundles`, ...).
    pub peer_timeout: Duration,
    /// Period of the write-behind flush of node/actor/group records.
    pub flush_interval: Duration,
    /// Dead actors kept in memory for lookups by id.
    pub retained_dead_actors: usize,
    /// Removed placement groups kept in memory for `GetPlacementGroup`.
    pub retained_removed_groups: usize,
    /// Finished jobs (driver sessions) whose records are kept; past it the
    /// tenant with the most loses its oldest.
    pub retained_finished_jobs: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(1),
            node_timeout: Duration::from_secs(10),
            probe_silent_nodes: false,
            head_node_id: None,
            view_interval: Duration::from_millis(50),
            group_retry_interval: Duration::from_millis(100),
            peer_timeout: Duration::from_secs(5),
            flush_interval: Duration::from_millis(5),
            retained_dead_actors: 100_000,
            retained_removed_groups: 10_000,
            retained_finished_jobs: 50_000,
        }
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) struct Inner {
    store: Arc<dyn Storage>,
    /// Node indexes, placement group and job ids.
    counters: Arc<Counters>,
    jobs: JobTable,
    /// The finished jobs whose records are kept (see `finished_jobs`).
    finished_jobs: Arc<Mutex<Retained>>,
    kv: Arc<Kv>,
    tenants: TenantTable,
    /// Serializes read-check-write of the tenant table.
    tenants_lock: Arc<Mutex<()>>,
    config: ServiceConfig,
    state: Mutex<State>,
    /// Something in `state` changed: wakes the view publisher. (The tasks
    /// hold these, not `Inner`, while they wait, so dropping the service
    /// closes the store promptly.)
    changed: Arc<Notify>,
    /// A new view was published: wakes the placement group retry loop.
    view_published: Arc<Notify>,
    views: watch::Sender<Arc<ClusterView>>,
    peers: PeerPool,
    /// Next group id and the last of the reserved block.
    group_ids: Mutex<(u64, u64)>,
    persist: Arc<Persister>,
    /// Nodes whose port is being probed (see `probe_silent_nodes`).
    probing: Mutex<HashSet<String>>,
}

impl Inner {
    /// Whether `node_id` is the head's own node (`head_node_id`), which is
    /// never declared dead for silence: it lives in this process, as long as
    /// this service does. A silence there is an overloaded process, and
    /// declaring it dead would stop the head, control plane included.
    pub(crate) fn is_head_node(&self, node_id: &str) -> bool {
        self.config.head_node_id.as_deref() == Some(node_id)
    }

    /// Runs `f` under the state lock; wakes the publisher if the version moved.
    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let before = st.version;
        let out = f(&mut st);
        let changed = st.version != before;
        drop(st);
        if changed {
            self.changed.notify_one();
        }
        out
    }

    /// Places an actor. A named one is stored before the reply (its name
    /// must survive a restart of the head); others are written behind.
    pub(crate) async fn place_actor(
        &self,
        req: PlaceActorRequest,
    ) -> Result<ActorLocation, Status> {
        let location = self.with_state(|st| st.place_actor(&req))?;
        if !req.name.is_empty() {
            // Waits for the batch holding the record: concurrent placements
            // share one storage transaction.
            let persist = self.persist.clone();
            tokio::task::spawn_blocking(move || persist.flush())
                .await
                .map_err(crate::status::internal)?;
        }
        Ok(location)
    }

    fn publish(&self) {
        let view = self.with_state(|st| st.view());
        self.views.send_replace(Arc::new(view));
    }

    /// The current state first (the last published view may lag by up to
    /// one `view_interval`), then every later published view.
    pub(crate) fn subscribe(&self, node_id: &str) -> ViewStream {
        tracing::debug!(node_id, "view subscriber");
        let changes = tokio_stream::wrappers::WatchStream::from_changes(self.views.subscribe());
        let first = self.with_state(|st| st.view());
        let seen = first.version;
        let later = changes
            .filter(move |view| futures::future::ready(view.version > seen))
            .map(|view| Ok(ClusterView::clone(&view)));
        Box::pin(futures::stream::once(futures::future::ready(Ok(first))).chain(later))
    }
}

/// The `ControlPlane` implementation. Cheap to clone (one shared state).
#[derive(Clone)]
pub struct ControlPlaneService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ControlPlaneService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlaneService")
            .finish_non_exhaustive()
    }
}

/// The service with token checking, ready for `Server::add_service`.
pub type ControlPlaneGrpc = InterceptedService<ControlPlaneServer<ControlPlaneService>, CheckToken>;

impl ControlPlaneService {
    /// The service over `store`; `token` authenticates its calls to nodes.
    /// Takes over what a previous control plane on the same store left (see
    /// `recover`). Must be called inside a tokio runtime (it spawns the
    /// background tasks).
    pub fn new(
        store: Arc<dyn Storage>,
        token: &str,
        config: ServiceConfig,
    ) -> Result<Self, GcsError> {
        let attach = AttachToken::new(token).map_err(GcsError::InvalidArgument)?;
        let restored = Restored::load(&store)?;
        let persist = Arc::new(Persister::new(store.clone(), config.flush_interval));
        let retention = Retention {
            dead_actors: config.retained_dead_actors,
            removed_groups: config.retained_removed_groups,
        };
        let mut state = State::new(persist.clone(), config.head_node_id.clone(), retention);
        state.principals = tenants::load_principals(&store)?;
        let releases = if restored.is_empty() {
            Vec::new()
        } else {
            state.restore(restored)
        };
        let jobs = JobTable::new(store.clone());
        let mut finished_jobs = finished_jobs(&jobs.all()?);
        for gone in finished_jobs.trim(config.retained_finished_jobs) {
            jobs.delete(&gone)?;
        }
        let (views, _) = watch::channel(Arc::new(state.view()));
        let inner = Arc::new(Inner {
            peers: PeerPool::new(attach, config.peer_timeout),
            state: Mutex::new(state),
            changed: Arc::new(Notify::new()),
            view_published: Arc::new(Notify::new()),
            views,
            group_ids: Mutex::new((1, 0)),
            persist,
            probing: Mutex::default(),
            counters: Arc::new(Counters::new(store.clone())),
            jobs,
            finished_jobs: Arc::new(Mutex::new(finished_jobs)),
            kv: Arc::new(Kv::new(store.clone())),
            tenants: TenantTable::new(store.clone()),
            tenants_lock: Arc::default(),
            store,
            config,
        });
        let weak = Arc::downgrade(&inner);
        tokio::spawn(publish_views(weak.clone(), inner.changed.clone()));
        tokio::spawn(detect_failures(weak.clone()));
        tokio::spawn(retry_groups(weak, inner.view_published.clone()));
        inner.release_later(releases);
        Ok(Self { inner })
    }

    /// The service for a tonic server whose listener authenticates callers
    /// itself (a node's: only the node credential opens this service).
    pub fn into_plain_server(self) -> ControlPlaneServer<Self> {
        ControlPlaneServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Wraps the service for a tonic server, checking `token` on every call.
    pub fn into_server(self, token: &str) -> ControlPlaneGrpc {
        let server = ControlPlaneServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        InterceptedService::new(server, CheckToken::new(token))
    }

    /// The current view (in process; subscribers get the same, pushed).
    pub fn view(&self) -> ClusterView {
        self.inner.with_state(|st| st.view())
    }

    /// A receiver of published views (in process).
    pub fn watch_views(&self) -> watch::Receiver<Arc<ClusterView>> {
        self.inner.views.subscribe()
    }

    /// Declares a node dead now (e.g. the head saw its process exit);
    /// returns whether it was alive.
    pub fn mark_node_dead(&self, node_id: &str, reason: &str) -> bool {
        self.inner.mark_dead(node_id, reason)
    }

    /// Writes every queued record to storage now (e.g. before shutdown).
    pub fn flush(&self) {
        self.inner.persist.flush();
    }

    /// A client calling this service in process (for the node running it).
    pub fn in_process(&self) -> InProcess {
        InProcess::new(self.inner.clone())
    }
}

/// Publishes the view after changes, at most one per `view_interval`.
async fn publish_views(weak: Weak<Inner>, changed: Arc<Notify>) {
    loop {
        let fired = tokio::time::timeout(Duration::from_secs(1), changed.notified())
            .await
            .is_ok();
        let Some(inner) = weak.upgrade() else { return };
        let interval = inner.config.view_interval;
        if fired {
            inner.publish();
            inner.view_published.notify_one();
        }
        drop(inner);
        if fired {
            tokio::time::sleep(interval).await;
        }
    }
}

/// Marks nodes dead that stopped heartbeating.
async fn detect_failures(weak: Weak<Inner>) {
    loop {
        let period = match weak.upgrade() {
            Some(inner) => (inner.config.node_timeout / 10)
                .clamp(Duration::from_millis(10), Duration::from_millis(250)),
            None => return,
        };
        tokio::time::sleep(period).await;
        let Some(inner) = weak.upgrade() else { return };
        inner.expire_silent_nodes();
        for (node_id, address) in inner.nodes_to_probe() {
            tokio::spawn(probe(weak.clone(), node_id, address));
        }
    }
}

/// How long a probe waits for a connection: one that neither connects nor
/// is refused in time says nothing.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Connects to a silent node's port; marks it dead when the connection is
/// refused. A process that is gone leaves nothing listening, while a busy
/// or stopped (SIGSTOP) one still has its connections accepted by the
/// kernel, so this never takes a slow node for a dead one.
async fn probe(weak: Weak<Inner>, node_id: String, address: String) {
    let target = address
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    let connect = tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(target)).await;
    let refused =
        matches!(&connect, Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused);
    let Some(inner) = weak.upgrade() else { return };
    if refused {
        inner.mark_silent_dead(
            &node_id,
            "its port refuses connections: its process is gone",
        );
    }
    inner.probing.lock().unwrap().remove(&node_id);
}

/// Retries pending placement groups on every new view and periodically.
async fn retry_groups(weak: Weak<Inner>, view_published: Arc<Notify>) {
    loop {
        let Some(interval) = weak.upgrade().map(|i| i.config.group_retry_interval) else {
            return;
        };
        let _ = tokio::time::timeout(interval, view_published.notified()).await;
        let Some(inner) = weak.upgrade() else { return };
        for id in inner.retryable_groups() {
            inner.try_reserve(id, false).await;
        }
    }
}

/// The gRPC adapter: unwraps requests, calls the service state, wraps replies.
#[tonic::async_trait]
impl ControlPlaneApi for ControlPlaneService {
    async fn register_node(
        &self,
        request: Request<RegisterNodeRequest>,
    ) -> Result<Response<RegisterNodeReply>, Status> {
        self.inner
            .register_node(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatReply>, Status> {
        self.inner
            .heartbeat(request.into_inner())
            .map(Response::new)
    }

    type SubscribeStream = ViewStream;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        Ok(Response::new(
            self.inner.subscribe(&request.get_ref().node_id),
        ))
    }

    async fn drain_node(
        &self,
        request: Request<DrainNodeRequest>,
    ) -> Result<Response<Empty>, Status> {
        let req = request.into_inner();
        self.inner.drain_node(&req.node_id, &req.reason)?;
        Ok(Response::new(Empty {}))
    }

    async fn put_module(
        &self,
        request: Request<PutModuleRequest>,
    ) -> Result<Response<Empty>, Status> {
        let req = request.into_inner();
        self.inner.put_module(&req.hash, req.wasm).await?;
        Ok(Response::new(Empty {}))
    }

    async fn get_module(
        &self,
        request: Request<GetModuleRequest>,
    ) -> Result<Response<GetModuleReply>, Status> {
        let wasm = self.inner.get_module(&request.get_ref().hash).await?;
        Ok(Response::new(GetModuleReply { wasm }))
    }

    async fn place_actor(
        &self,
        request: Request<PlaceActorRequest>,
    ) -> Result<Response<PlaceActorReply>, Status> {
        let req = request.into_inner();
        let location = self.inner.place_actor(req).await?;
        Ok(Response::new(PlaceActorReply {
            location: Some(location),
        }))
    }

    async fn set_actor_state(
        &self,
        request: Request<SetActorStateRequest>,
    ) -> Result<Response<Empty>, Status> {
        let req = request.into_inner();
        self.inner.with_state(|st| st.set_actor_state(&req))?;
        Ok(Response::new(Empty {}))
    }

    async fn lookup_actor(
        &self,
        request: Request<LookupActorRequest>,
    ) -> Result<Response<ActorLocation>, Status> {
        let req = request.into_inner();
        self.inner
            .with_state(|st| st.lookup_actor(req.key.as_ref()))
            .map(Response::new)
    }

    async fn start_job(
        &self,
        request: Request<StartJobRequest>,
    ) -> Result<Response<StartJobReply>, Status> {
        let job_id = self.inner.start_job(request.into_inner()).await?;
        Ok(Response::new(StartJobReply { job_id }))
    }

    async fn end_job(&self, request: Request<EndJobRequest>) -> Result<Response<Empty>, Status> {
        self.inner.end_job(request.into_inner()).await?;
        Ok(Response::new(Empty {}))
    }

    async fn list_jobs(
        &self,
        _request: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsReply>, Status> {
        let jobs = self.inner.list_jobs().await?;
        Ok(Response::new(ListJobsReply { jobs }))
    }

    async fn kv_put(&self, request: Request<KvPutRequest>) -> Result<Response<KvPutReply>, Status> {
        let written = self.inner.kv_put(request.into_inner()).await?;
        Ok(Response::new(KvPutReply { written }))
    }

    async fn kv_get(&self, request: Request<KvGetRequest>) -> Result<Response<KvGetReply>, Status> {
        let req = request.into_inner();
        let value = self.inner.kv_get(req.ns, req.key).await?;
        Ok(Response::new(KvGetReply { value }))
    }

    async fn kv_delete(
        &self,
        request: Request<KvDeleteRequest>,
    ) -> Result<Response<KvDeleteReply>, Status> {
        let req = request.into_inner();
        let deleted = self.inner.kv_delete(req.ns, req.key).await?;
        Ok(Response::new(KvDeleteReply { deleted }))
    }

    async fn kv_keys(
        &self,
        request: Request<KvKeysRequest>,
    ) -> Result<Response<KvKeysReply>, Status> {
        let req = request.into_inner();
        let keys = self.inner.kv_keys(req.ns, req.prefix).await?;
        Ok(Response::new(KvKeysReply { keys }))
    }

    async fn create_placement_group(
        &self,
        request: Request<CreatePlacementGroupRequest>,
    ) -> Result<Response<PlacementGroupInfo>, Status> {
        self.inner
            .create_group(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_placement_group(
        &self,
        request: Request<PlacementGroupId>,
    ) -> Result<Response<PlacementGroupInfo>, Status> {
        self.inner
            .reported_group(request.get_ref().id)
            .await
            .map(Response::new)
    }

    async fn wait_placement_group(
        &self,
        request: Request<WaitPlacementGroupRequest>,
    ) -> Result<Response<PlacementGroupInfo>, Status> {
        let req = request.into_inner();
        self.inner
            .wait_group(req.id, Duration::from_millis(req.timeout_ms))
            .await
            .map(Response::new)
    }

    async fn remove_placement_group(
        &self,
        request: Request<PlacementGroupId>,
    ) -> Result<Response<Empty>, Status> {
        self.inner.remove_group(request.get_ref().id).await?;
        Ok(Response::new(Empty {}))
    }

    async fn authenticate(
        &self,
        request: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateReply>, Status> {
        let principal = self.inner.authenticate(&request.get_ref().token_sha256);
        Ok(Response::new(AuthenticateReply { principal }))
    }

    async fn add_tenant(
        &self,
        request: Request<AddTenantRequest>,
    ) -> Result<Response<TenantInfo>, Status> {
        let req = request.into_inner();
        self.inner
            .add_tenant(
                req.name,
                req.token_sha256.to_vec(),
                req.quotas.unwrap_or_default(),
            )
            .await
            .map(Response::new)
    }

    async fn list_tenants(
        &self,
        _request: Request<ListTenantsRequest>,
    ) -> Result<Response<ListTenantsReply>, Status> {
        let tenants = self.inner.list_tenants().await?;
        Ok(Response::new(ListTenantsReply { tenants }))
    }

    async fn set_tenant_quotas(
        &self,
        request: Request<SetTenantQuotasRequest>,
    ) -> Result<Response<TenantInfo>, Status> {
        let req = request.into_inner();
        self.inner
            .set_tenant_quotas(req.name, req.quotas.unwrap_or_default())
            .await
            .map(Response::new)
    }

    async fn remove_tenant(
        &self,
        request: Request<RemoveTenantRequest>,
    ) -> Result<Response<TenantInfo>, Status> {
        self.inner
            .remove_tenant(request.into_inner().name)
            .await
            .map(Response::new)
    }
}
