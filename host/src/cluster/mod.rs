//! This node's place in the cluster.
//!
//! * **Membership** — the node registers with the control plane (the head's
//!   `ControlPlane` service, reached through one `reef_gcs::ControlPlane`
//!   client: over gRPC, or in process on the head), gets its
//!   *index* (which names the owner of every object id it allocates, see
//!   `ids`), heartbeats, and receives the cluster view by subscription: the
//!   control plane pushes a new view when anything changes.
//! * **Peers** (`peers.rs`) — batched links to other nodes' `Peer` services.
//! * **Placement-group bundles** reserved here (`groups.rs`).
//!
//! What the node does with a view (a node died: fail its work) is the
//! node's business: [`Hooks`] carry it, so this module knows no service.
//!
//! **A head that goes away.** Heartbeats and the view subscription keep
//! retrying with exponential backoff (100 ms doubling to 2 s) while the
//! control plane cannot be reached; the node keeps its work, actors and
//! objects meanwhile, and work placed from its last view goes on. When a
//! heartbeat is answered `unknown` (the control plane restarted), the node
//! registers again with its index and what it holds ([`Hooks::rejoin`]),
//! and goes on as before; refused (it was declared dead meanwhile), it
//! stops.

pub mod groups;
mod peers;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::StreamExt;
use reef_gcs::{Backoff, ControlPlane};
use reef_proto as pb;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::{ErrorCode, ReefError, ReefResult};
use crate::scheduler::Resources;

pub use peers::{channel, PeerLink};

/// How long a node keeps retrying to reach the control plane at start.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Membership {
    /// This node's id and the cluster token it presents to peers.
    node_id: String,
    token: String,
    /// Our index (0 until registered; a standalone node is 1).
    index: AtomicU32,
    registered: watch::Sender<bool>,
    /// Set once, when the node joins (read on every placement: no lock).
    gcs: std::sync::OnceLock<Arc<dyn ControlPlane>>,
    /// The latest view (watched by the credential check: it carries the
    /// admin and tenant credentials in force).
    view: watch::Sender<Arc<pb::ClusterView>>,
    peers: Mutex<HashMap<String, PeerLink>>,
    spread_cursor: AtomicUsize,
}

/// What the node does when the cluster changes (set by `node.rs`).
pub struct Hooks {
    /// This node's load for a heartbeat; `None` once the node is gone.
    pub heartbeat: Box<dyn Fn() -> Option<pb::HeartbeatRequest> + Send + Sync>,
    /// A registration for a restarted control plane: this node with what
    /// it holds now (its live actors, its bundles); `None` once it is gone.
    pub rejoin: Box<dyn Fn() -> Option<pb::RegisterNodeRequest> + Send + Sync>,
    /// A node of the view was declared dead.
    pub node_died: Box<dyn Fn(&str) + Send + Sync>,
    /// The control plane declared this node dead: it must stop.
    pub forgotten: Box<dyn Fn() + Send + Sync>,
    /// Cancelled when the node stops: the background loops end.
    pub stopping: CancellationToken,
}

impl Membership {
    pub fn new(node_id: &str, token: &str) -> Self {
        Membership {
            node_id: node_id.to_string(),
            token: token.to_string(),
            index: AtomicU32::new(0),
            registered: watch::channel(false).0,
            gcs: std::sync::OnceLock::new(),
            view: watch::channel(Arc::new(pb::ClusterView::default())).0,
            peers: Mutex::default(),
            spread_cursor: AtomicUsize::new(0),
        }
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
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

    /// Whether the node has its index already (no waiting).
    pub fn is_registered(&self) -> bool {
        *self.registered.borrow()
    }

    /// Waits until the node has its index (sessions start after that).
    pub async fn registered(&self) {
        if self.is_registered() {
            return;
        }
        let mut rx = self.registered.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    pub fn view(&self) -> Arc<pb::ClusterView> {
        self.view.borrow().clone()
    }

    /// Every view this node takes from now on (the current one marked seen).
    pub fn watch_views(&self) -> watch::Receiver<Arc<pb::ClusterView>> {
        self.view.subscribe()
    }

    /// Waits until `ready` holds for this node's view (checked now, then at
    /// each new view), or until `deadline`; returns whether it holds. For
    /// work that arrives before the view has caught up with the cluster (an
    /// owner that joined a moment ago, a dead node's replacement): bounded,
    /// so that a node that never comes costs time, never a hang.
    pub async fn view_until(
        &self,
        deadline: std::time::Instant,
        mut ready: impl FnMut(&Arc<pb::ClusterView>) -> bool,
    ) -> bool {
        let mut views = self.watch_views();
        let wait = async move { views.wait_for(|v| ready(v)).await.is_ok() };
        tokio::time::timeout_at(deadline.into(), wait)
            .await
            .unwrap_or(false)
    }

    /// The control-plane client (an error on a node running alone).
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
        alive_by_index(&self.view(), index).cloned()
    }

    /// The index of a node of the view (alive or dead).
    pub fn index_of(&self, node_id: &str) -> Option<u32> {
        self.node_view(node_id).map(|n| n.node_index)
    }

    pub fn next_spread(&self) -> usize {
        self.spread_cursor.fetch_add(1, Ordering::Relaxed)
    }

    /// Joins the cluster through `client` (on the head, its own control
    /// plane, in process): registers, then heartbeats and follows the view
    /// in the background. Fails when the control plane refuses us (a wrong
    /// token, resources it rejects) or cannot be reached in time.
    pub async fn join(
        self: &Arc<Self>,
        client: Arc<dyn ControlPlane>,
        request: pb::RegisterNodeRequest,
        hooks: Hooks,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + JOIN_TIMEOUT;
        let reply = loop {
            match client.register(request.clone()).await {
                Ok(reply) => break reply,
                // Not reached (yet), or the connection broke (a busy head):
                // try again. A refusal (token, resources) is final.
                Err(status)
                    if matches!(
                        status.code(),
                        tonic::Code::Unavailable
                            | tonic::Code::Unknown
                            | tonic::Code::Cancelled
                            | tonic::Code::DeadlineExceeded
                    ) && tokio::time::Instant::now() < deadline =>
                {
                    tracing::debug!("control plane {client:?} not reachable yet: {status}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(status) => {
                    anyhow::bail!(
                        "the control plane {client:?} refused this node: {}",
                        rpc_error("registering", status)
                    );
                }
            }
        };
        let _ = self.gcs.set(client.clone());
        if let Some(view) = reply.view {
            self.view.send_replace(Arc::new(view));
        }
        self.index.store(reply.node_index, Ordering::Relaxed);
        self.registered.send_replace(true);
        tracing::info!(index = reply.node_index, "joined the cluster of {client:?}");
        let interval = Duration::from_millis(reply.heartbeat_interval_ms.clamp(50, 10_000));
        let hooks = Arc::new(hooks);
        tokio::spawn(heartbeats(
            Arc::downgrade(self),
            hooks.clone(),
            client.clone(),
            interval,
        ));
        tokio::spawn(follow_view(Arc::downgrade(self), hooks, client));
        Ok(())
    }

    /// Takes a new view; the nodes it declares dead lose their links.
    fn apply_view(&self, view: pb::ClusterView, hooks: &Hooks) {
        let dead: Vec<String> = view
            .nodes
            .iter()
            .filter(|n| n.state == pb::NodeState::Dead as i32)
            .map(|n| n.node_id.clone())
            .collect();
        self.view.send_replace(Arc::new(view));
        for node_id in dead {
            self.peers.lock().unwrap().remove(&node_id);
            (hooks.node_died)(&node_id);
        }
    }
}

/// How a registration with a restarted control plane went.
enum Rejoin {
    Done,
    /// Not reachable (again): try later.
    Later,
    /// Refused: this node must stop.
    Refused,
}

impl Membership {
    /// Registers again with our index and what we hold, after the control
    /// plane answered a heartbeat `unknown`.
    async fn rejoin(&self, hooks: &Hooks, client: &dyn ControlPlane) -> Rejoin {
        let Some(mut request) = (hooks.rejoin)() else {
            return Rejoin::Refused;
        };
        request.node_index = self.index();
        let (actors, bundles) = (request.actors.len(), request.bundles.len());
        match client.register(request).await {
            Ok(reply) if reply.node_index == self.index() => {
                tracing::info!(
                    index = reply.node_index,
                    actors,
                    bundles,
                    "reconnected to the restarted control plane {client:?}"
                );
                if let Some(view) = reply.view {
                    self.apply_view(view, hooks);
                }
                Rejoin::Done
            }
            Ok(reply) => {
                tracing::error!(
                    index = reply.node_index,
                    "the control plane gave this node another index: stopping"
                );
                Rejoin::Refused
            }
            Err(status) if reef_gcs::client::is_unreachable(&status) => Rejoin::Later,
            Err(status) => {
                tracing::error!(
                    "the control plane refused this node: {}; stopping",
                    rpc_error("registering again", status)
                );
                Rejoin::Refused
            }
        }
    }
}

/// Heartbeats every `interval`; while the control plane is unreachable,
/// with backoff instead, and registers again when it comes back not knowing
/// this node.
async fn heartbeats(
    membership: Weak<Membership>,
    hooks: Arc<Hooks>,
    client: Arc<dyn ControlPlane>,
    interval: Duration,
) {
    let mut backoff = Backoff::default();
    let mut delay = interval;
    let mut unreachable_since: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = hooks.stopping.cancelled() => return,
        }
        let Some(request) = (hooks.heartbeat)() else {
            return;
        };
        let answer = client.heartbeat(request).await;
        let outcome = match answer {
            Ok(false) => Rejoin::Done,
            Ok(true) => {
                let Some(membership) = membership.upgrade() else {
                    return;
                };
                membership.rejoin(&hooks, client.as_ref()).await
            }
            Err(status) => {
                if unreachable_since.is_none() {
                    tracing::warn!("heartbeat failed: {status}; retrying with backoff");
                    unreachable_since = Some(tokio::time::Instant::now());
                }
                Rejoin::Later
            }
        };
        match outcome {
            Rejoin::Done => {
                if let Some(since) = unreachable_since.take() {
                    tracing::info!(
                        after_ms = since.elapsed().as_millis() as u64,
                        "the control plane is reachable again"
                    );
                }
                backoff.reset();
                delay = interval;
            }
            Rejoin::Later => delay = backoff.next_delay(),
            Rejoin::Refused => {
                (hooks.forgotten)();
                return;
            }
        }
    }
}

/// Follows the control plane's view; reconnects when the stream breaks.
async fn follow_view(
    membership: Weak<Membership>,
    hooks: Arc<Hooks>,
    client: Arc<dyn ControlPlane>,
) {
    let mut backoff = Backoff::default();
    loop {
        let Some(id) = membership.upgrade().map(|m| m.node_id.clone()) else {
            return;
        };
        match client.subscribe(&id).await {
            Ok(mut stream) => {
                while let Some(Ok(view)) = stream.next().await {
                    let Some(membership) = membership.upgrade() else {
                        return;
                    };
                    membership.apply_view(view, &hooks);
                    backoff.reset();
                }
            }
            Err(status) => tracing::debug!("subscribing to the cluster view: {status}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_delay()) => {}
            _ = hooks.stopping.cancelled() => return,
        }
    }
}

/// A `Resources` as the wire's resource map ("CPU", "memory", custom names).
pub fn to_map(r: &Resources) -> pb::ResourceMap {
    r.to_map()
}

/// The wire's resource map as `Resources`.
pub fn from_map(m: &pb::ResourceMap) -> Resources {
    Resources::from_map(m)
}

/// A failed call's error (its code from the status details), saying `what` failed.
pub(crate) fn rpc_error(what: &str, status: tonic::Status) -> ReefError {
    ReefError::from(status).context(what)
}

impl Membership {
    /// The link to a node in the view (opened on first use).
    pub fn peer(&self, node_id: &str) -> ReefResult<PeerLink> {
        if let Some(link) = self.peers.lock().unwrap().get(node_id) {
            return Ok(link.clone());
        }
        let view = self.node_view(node_id).ok_or_else(|| {
            ReefError::new(
                ErrorCode::UnknownNode,
                format!("node {node_id} is not in the cluster"),
            )
        })?;
        if view.state != pb::NodeState::Alive as i32 {
            return Err(ReefError::new(
                ErrorCode::NodeDied,
                format!("node {node_id} is dead ({})", view.death_reason),
            ));
        }
        let link = PeerLink::open(&self.node_id, node_id, &view.address, &self.token)?;
        self.peers
            .lock()
            .unwrap()
            .insert(node_id.to_string(), link.clone());
        Ok(link)
    }
}

/// The alive node of `view` whose index is `index`.
pub fn alive_by_index(view: &pb::ClusterView, index: u32) -> Option<&pb::NodeView> {
    view.nodes
        .iter()
        .find(|n| n.node_index == index && n.state == pb::NodeState::Alive as i32)
}
