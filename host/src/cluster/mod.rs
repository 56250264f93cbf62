//! This node's place in the cluster.
//!
//! * **Membership** — the node registers with the control plane (the head's
//!   `ControlPlane` service, reached through one `reef_gcs::ControlPlane`
//!   client: over gRPC, or in process on the head), gets its
//!   *index* (which names the owner of every object id it allocates, see
//!   `node::owner_index`), heartbeats, and receives the cluster view by
//!   subscription: the control plane pushes a new view when anything changes.
//! * **Placement** (`placement.rs`) — where a task runs: here when it fits
//!   here, else forwarded (spillback) to a node chosen from the view.
//! * **Remote work and objects** (`remote.rs`) — tasks forwarded to other
//!   nodes, the owner's directory of object copies, and fetching objects that
//!   live elsewhere (through `transfer`).
//!
//! Objects are owner-based, as in Ray: the node whose index is in an id is the
//! object's owner. It knows whether the object is ready and which nodes hold
//! a copy; any node asks the owner (`Peer.Locate`) and pulls from a holder.

pub mod actors;
pub mod groups;
mod peers;
pub mod placement;
pub mod remote;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use reef_gcs::ControlPlane;
use reef_proto as pb;
use reef_proto::auth::AttachToken;
use tokio::sync::watch;

use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::node::Node;
use crate::scheduler::Resources;

pub use peers::PeerLink;
pub use remote::Forwarded;

/// How long a node keeps retrying to reach the control plane at start.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Membership {
    /// Our index (0 until registered; a standalone node is 1).
    index: AtomicU32,
    registered: watch::Sender<bool>,
    /// Set once, when the node joins (read on every placement: no lock).
    gcs: std::sync::OnceLock<Arc<dyn ControlPlane>>,
    view: RwLock<Arc<pb::ClusterView>>,
    peers: Mutex<HashMap<String, PeerLink>>,
    /// Tasks this node forwarded, by result id (see `remote`).
    pub(crate) forwarded: Mutex<HashMap<u64, Forwarded>>,
    /// Owner side: nodes other than this one holding a copy of our objects.
    pub(crate) copies: Mutex<HashMap<u64, Vec<String>>>,
    spread_cursor: AtomicUsize,
    /// Placement-group bundles reserved here, by group id.
    pub(crate) groups: Mutex<HashMap<u64, groups::GroupHere>>,
    /// Groups as the control plane last answered through this node (the
    /// pushed view can lag behind a driver's create-and-wait).
    pub(crate) known_groups: Mutex<HashMap<u64, pb::PlacementGroupInfo>>,
    /// Actors that do not live here: where they are (see `actors`).
    pub(crate) actor_routes: Mutex<HashMap<u64, actors::Route>>,
}

impl Default for Membership {
    fn default() -> Self {
        Self::new()
    }
}

impl Membership {
    pub fn new() -> Self {
        Membership {
            index: AtomicU32::new(0),
            registered: watch::channel(false).0,
            gcs: std::sync::OnceLock::new(),
            view: RwLock::new(Arc::new(pb::ClusterView::default())),
            peers: Mutex::default(),
            forwarded: Mutex::default(),
            copies: Mutex::default(),
            spread_cursor: AtomicUsize::new(0),
            groups: Mutex::default(),
            known_groups: Mutex::default(),
            actor_routes: Mutex::default(),
        }
    }

    pub fn index(&self) -> u32 {
        self.index.load(Ordering::Relaxed)
    }

    /// Whether this node is part of a cluster (has a control plane).
    pub fn is_clustered(&self) -> bool {
        self.gcs.get().is_some()
    }

    /// A node with no control plane at all runs alone as index 1.
    pub fn run_standalone(&self) {
        self.index.store(1, Ordering::Relaxed);
        self.registered.send_replace(true);
    }

    /// Waits until the node has its index (sessions start after that).
    pub async fn registered(&self) {
        let mut rx = self.registered.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    pub fn view(&self) -> Arc<pb::ClusterView> {
        self.view.read().unwrap().clone()
    }

    /// The control plane client: every call to the control plane goes here.
    pub fn gcs(&self) -> ReefResult<Arc<dyn ControlPlane>> {
        self.gcs
            .get()
            .cloned()
            .ok_or_else(|| ReefError::new(ErrorCode::Internal, "this node has no control plane"))
    }

    /// The view's entry for a node id.
    pub fn node_view(&self, node_id: &str) -> Option<pb::NodeView> {
        self.view()
            .nodes
            .iter()
            .find(|n| n.node_id == node_id)
            .cloned()
    }

    /// The alive node with this index.
    pub fn node_by_index(&self, index: u32) -> Option<pb::NodeView> {
        self.view()
            .nodes
            .iter()
            .find(|n| n.node_index == index && n.state == pb::NodeState::Alive as i32)
            .cloned()
    }

    pub fn next_spread(&self) -> usize {
        self.spread_cursor.fetch_add(1, Ordering::Relaxed)
    }
}

/// A `Resources` as the wire's resource map ("CPU", "memory", custom names).
pub fn to_map(r: &Resources) -> pb::ResourceMap {
    pb::ResourceMap {
        amounts: r.rows().into_iter().collect(),
    }
}

/// The wire's resource map as `Resources`.
pub fn from_map(m: &pb::ResourceMap) -> Resources {
    let mut r = Resources::default();
    for (name, amount) in &m.amounts {
        match name.as_str() {
            "CPU" => r.cpus = *amount,
            "memory" => r.memory = *amount as u64,
            other => {
                r.custom.insert(other.to_string(), *amount);
            }
        }
    }
    r
}

/// Connects a token-carrying channel to `address` (lazily: the first call dials).
pub fn channel(address: &str, token: &str) -> ReefResult<tonic::transport::Channel> {
    let url = if address.starts_with("http") {
        address.to_string()
    } else {
        format!("http://{address}")
    };
    let _ = AttachToken::new(token).map_err(|e| ReefError::new(ErrorCode::BadArgument, e))?;
    Ok(tonic::transport::Endpoint::from_shared(url)
        .map_err(|e| {
            ReefError::new(
                ErrorCode::BadArgument,
                format!("bad address {address}: {e}"),
            )
        })?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .initial_stream_window_size(16 << 20)
        .initial_connection_window_size(64 << 20)
        .connect_lazy())
}

fn rpc_error(what: &str, status: tonic::Status) -> ReefError {
    // Control-plane errors start with the Reef error-code name.
    let message = status.message();
    let code = message
        .split_once(':')
        .and_then(|(name, _)| ErrorCode::from_str_name(name.trim()))
        .unwrap_or(match status.code() {
            tonic::Code::Unauthenticated => ErrorCode::Unauthenticated,
            tonic::Code::NotFound => ErrorCode::UnknownObject,
            _ => ErrorCode::Internal,
        });
    let message = match message.split_once(':') {
        Some((name, rest)) if ErrorCode::from_str_name(name.trim()).is_some() => rest.trim(),
        _ => message,
    };
    ReefError::new(code, format!("{what}: {message}"))
}

impl Node {
    /// Joins the cluster through `control_plane` (for the head, its own, in
    /// process): registers, then heartbeats and follows the view in the
    /// background. Fails when the control plane refuses us (a wrong token,
    /// resources it rejects) or cannot be reached in time.
    pub async fn join_cluster(
        self: &Arc<Self>,
        control_plane: Arc<dyn ControlPlane>,
    ) -> anyhow::Result<()> {
        let request = pb::RegisterNodeRequest {
            node_id: self.id.clone(),
            address: self.address(),
            total: Some(to_map(self.scheduler.total())),
            available: Some(to_map(&self.scheduler.available())),
            arena_path: self.store.arena().path().display().to_string(),
        };
        let deadline = tokio::time::Instant::now() + JOIN_TIMEOUT;
        let reply = loop {
            match control_plane.register(request.clone()).await {
                Ok(reply) => break reply,
                Err(status)
                    if status.code() == tonic::Code::Unavailable
                        && tokio::time::Instant::now() < deadline =>
                {
                    tracing::debug!("{control_plane:?} is not reachable yet: {status}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(status) => {
                    anyhow::bail!(
                        "{control_plane:?} refused this node: {}",
                        rpc_error("registering", status)
                    );
                }
            }
        };
        let _ = self.cluster.gcs.set(control_plane.clone());
        if let Some(view) = reply.view {
            *self.cluster.view.write().unwrap() = Arc::new(view);
        }
        self.cluster
            .index
            .store(reply.node_index, Ordering::Relaxed);
        self.cluster.registered.send_replace(true);
        tracing::info!(
            index = reply.node_index,
            "joined the cluster of {control_plane:?}"
        );
        let interval = Duration::from_millis(reply.heartbeat_interval_ms.clamp(50, 10_000));
        tokio::spawn(heartbeats(
            Arc::downgrade(self),
            control_plane.clone(),
            interval,
        ));
        tokio::spawn(follow_view(Arc::downgrade(self), control_plane));
        Ok(())
    }

    /// The address other nodes and drivers reach this node at.
    pub fn address(&self) -> String {
        format!("{}:{}", self.config.advertise_host, self.config.port)
    }
}

async fn heartbeats(
    node: std::sync::Weak<Node>,
    client: Arc<dyn ControlPlane>,
    interval: Duration,
) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(node) = node.upgrade() else { return };
        if node.is_stopping() {
            return;
        }
        let stats = node.store.stats();
        let request = pb::HeartbeatRequest {
            node_id: node.id.clone(),
            available: Some(to_map(&node.scheduler.available())),
            pending_tasks: node.scheduler.queued() as u64,
            running_tasks: node.tasks.len() as u64,
            store_used: stats.arena_used,
            store_capacity: stats.arena_capacity,
        };
        match client.heartbeat(request).await {
            Ok(true) => {
                tracing::error!("the control plane declared this node dead: stopping");
                node.stop();
                return;
            }
            Ok(false) => {}
            Err(status) => tracing::warn!("heartbeat failed: {status}"),
        }
    }
}

/// Follows the control plane's view; reconnects when the stream breaks.
async fn follow_view(node: std::sync::Weak<Node>, client: Arc<dyn ControlPlane>) {
    loop {
        let Some(id) = node.upgrade().map(|n| n.id.clone()) else {
            return;
        };
        match client.subscribe(&id).await {
            Ok(mut stream) => {
                while let Some(Ok(view)) = stream.next().await {
                    let Some(node) = node.upgrade() else { return };
                    node.apply_view(view);
                }
            }
            Err(status) => tracing::warn!("subscribing to the cluster view: {status}"),
        }
        let Some(n) = node.upgrade() else { return };
        if n.is_stopping() {
            return;
        }
        drop(n);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

impl Node {
    fn apply_view(self: &Arc<Self>, view: pb::ClusterView) {
        let dead: Vec<String> = view
            .nodes
            .iter()
            .filter(|n| n.state == pb::NodeState::Dead as i32)
            .map(|n| n.node_id.clone())
            .collect();
        *self.cluster.view.write().unwrap() = Arc::new(view);
        for node_id in dead {
            self.cluster.peers.lock().unwrap().remove(&node_id);
            self.on_node_dead(&node_id);
        }
    }
}
