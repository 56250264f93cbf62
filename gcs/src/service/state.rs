//! The service's in-memory model of the cluster: nodes, actors, placement
//! groups, and the view built from them. Everything here is synchronous and
//! runs under the service's one state lock; records are queued for
//! write-behind persistence as they change.

use crate::retained::Retained;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use prost::Message;
use reef_proto::{
    ActorLifecycle, ActorLocation, ClusterView, NodeState, NodeView, PlacementGroupInfo,
    PlacementGroupState, Principal,
};
use tokio::sync::watch;

use super::persist::Persister;
use crate::tables::{self, id_key, ActorRecord, ActorState, NodeInfo, Record, Resources};

/// Storage table of placement group records (prost-encoded
/// `PlacementGroupInfo`, keyed by big-endian id).
pub(crate) const GROUP_TABLE: &str = "placement_groups";

/// Actor states as they appear in `ActorLocation.state`.
pub(crate) const PENDING: &str = "PENDING";
pub(crate) const ALIVE: &str = "ALIVE";
pub(crate) const DEAD: &str = "DEAD";
pub(crate) const RESTARTING: &str = "RESTARTING";

pub(crate) struct NodeEntry {
    /// The node as published; `total`/`available` are filled in by
    /// [`NodeEntry::to_view`].
    pub view: NodeView,
    pub total: Resources,
    /// Available resources as of the last heartbeat.
    pub reported: Resources,
    /// What the control plane committed since the last heartbeat: bundles
    /// released (`credit`), bundles reserved and actors placed (`debit`).
    pub credit: Resources,
    pub debit: Resources,
    pub last_seen: Instant,
    pub start_time_ms: u64,
    /// Restored from storage by a restarted control plane and not yet
    /// registered again: its heartbeats are answered `unknown` until the
    /// node re-registers and reports what it holds.
    pub reconnecting: bool,
}

impl NodeEntry {
    pub fn state(&self) -> NodeState {
        NodeState::try_from(self.view.state).unwrap_or(NodeState::Unspecified)
    }

    /// Alive and not draining: new work may go here.
    pub fn schedulable(&self) -> bool {
        self.state() == NodeState::Alive
    }

    pub fn is_dead(&self) -> bool {
        self.state() == NodeState::Dead
    }

    /// Last reported availability adjusted by what was committed since.
    pub fn available(&self) -> Resources {
        let mut available = self.reported.clone();
        available.add(&self.credit);
        available.subtract(&self.debit);
        available.clamp_to(&self.total);
        available
    }

    pub fn to_view(&self) -> NodeView {
        NodeView {
            total: Some(self.total.to_map()),
            available: Some(self.available().to_map()),
            ..self.view.clone()
        }
    }

    fn record(&self) -> NodeInfo {
        NodeInfo {
            node_id: self.view.node_id.clone(),
            node_index: self.view.node_index,
            address: self.view.address.clone(),
            resources_total: self.total.clone(),
            resources_available: self.available(),
            state: if self.is_dead() {
                tables::NodeState::Dead
            } else {
                tables::NodeState::Alive
            },
            last_heartbeat_ms: self.view.last_heartbeat_ms,
            start_time_ms: self.start_time_ms,
        }
    }
}

pub(crate) struct ActorEntry {
    pub location: ActorLocation,
    pub name: String,
    pub module: String,
    pub class: String,
    pub job_id: u64,
    /// The placement group whose bundle holds it.
    pub group: Option<u64>,
}

impl ActorEntry {
    pub fn live(&self) -> bool {
        self.location.state != DEAD
    }

    pub fn lifecycle(&self) -> ActorLifecycle {
        self.location.lifecycle.unwrap_or_default()
    }

    /// Whether one more restart is allowed.
    pub fn may_restart(&self) -> bool {
        let max = self.lifecycle().max_restarts;
        max < 0 || self.location.num_restarts < max as u32
    }

    /// The index of the node that created it (and restarts it after its
    /// node dies).
    pub fn creator_index(&self) -> u64 {
        self.location.actor_id >> reef_core::ids::ACTOR_INDEX_SHIFT
    }

    /// A live actor as a previous control plane persisted it, on the node
    /// at `address`.
    pub fn restored(record: &ActorRecord, address: &str) -> Self {
        ActorEntry {
            location: ActorLocation {
                actor_id: record.actor_id,
                node_id: record.node_id.clone().unwrap_or_default(),
                address: address.to_owned(),
                state: match record.state {
                    ActorState::Alive => ALIVE.into(),
                    ActorState::Restarting { .. } => RESTARTING.into(),
                    _ => PENDING.into(),
                },
                death_reason: match &record.state {
                    ActorState::Restarting { reason } => reason.clone(),
                    _ => String::new(),
                },
                num_restarts: record.num_restarts,
                lifecycle: Some(ActorLifecycle {
                    max_restarts: record.max_restarts,
                    max_task_retries: record.max_task_retries,
                    detached: record.detached,
                    num_restarts: record.num_restarts,
                }),
                tenant: record.tenant.clone(),
            },
            name: record.name.clone().unwrap_or_default(),
            module: record.module_hash.clone(),
            class: record.class.clone(),
            job_id: record.job_id,
            group: record.placement_group,
        }
    }

    fn record(&self) -> ActorRecord {
        ActorRecord {
            actor_id: self.location.actor_id,
            name: (!self.name.is_empty()).then(|| self.name.clone()),
            module_hash: self.module.clone(),
            class: self.class.clone(),
            node_id: (!self.location.node_id.is_empty()).then(|| self.location.node_id.clone()),
            state: match self.location.state.as_str() {
                ALIVE => ActorState::Alive,
                RESTARTING => ActorState::Restarting {
                    reason: self.location.death_reason.clone(),
                },
                DEAD => ActorState::Dead {
                    reason: self.location.death_reason.clone(),
                },
                _ => ActorState::Pending,
            },
            job_id: self.job_id,
            max_restarts: self.lifecycle().max_restarts,
            num_restarts: self.location.num_restarts,
            max_task_retries: self.lifecycle().max_task_retries,
            detached: self.lifecycle().detached,
            placement_group: self.group,
            tenant: self.location.tenant.clone(),
        }
    }
}

pub(crate) struct GroupEntry {
    /// The group as published (state, bundle nodes, error).
    pub info: PlacementGroupInfo,
    pub bundles: Vec<Resources>,
    /// Requested node per bundle (empty: none requested).
    pub pinned: Vec<String>,
    /// A reservation round is in flight; no other may start.
    pub attempting: bool,
    /// Actors placed into the group's bundles.
    pub actors: Vec<u64>,
    /// The group's state, for `WaitPlacementGroup`.
    pub state_tx: watch::Sender<i32>,
}

impl GroupEntry {
    pub fn state(&self) -> PlacementGroupState {
        PlacementGroupState::try_from(self.info.state).unwrap_or(PlacementGroupState::Unspecified)
    }
}

/// Limits on history kept in memory (past them the tenant keeping the most
/// loses its oldest: see `Retained`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retention {
    pub dead_actors: usize,
    pub removed_groups: usize,
}

pub(crate) struct State {
    /// Increases with every change; published views carry it.
    pub version: u64,
    pub nodes: BTreeMap<String, NodeEntry>,
    /// The node flagged `head` in the view.
    pub head: Option<String>,
    pub actors: HashMap<u64, ActorEntry>,
    /// Live actor per claimed name.
    pub names: HashMap<String, u64>,
    pub groups: BTreeMap<u64, GroupEntry>,
    /// Cursor of the `spread` round robin.
    pub spread_cursor: usize,
    /// Dead actors and removed groups kept for lookups (see `Retained`).
    dead_actors: Retained,
    removed_groups: Retained,
    retention: Retention,
    pub persist: Arc<Persister>,
    /// The admin and tenant credentials in force (published in the view).
    pub principals: Vec<Principal>,
    /// Groups with `ReleaseBundles` calls still in flight in the background
    /// (how many): not placed again until they are done, or a late release
    /// would undo the new reservation on a node the group goes back to.
    pub releasing: HashMap<u64, usize>,
}

impl State {
    pub fn new(persist: Arc<Persister>, head: Option<String>, retention: Retention) -> Self {
        Self {
            version: 1,
            nodes: BTreeMap::new(),
            head,
            actors: HashMap::new(),
            names: HashMap::new(),
            groups: BTreeMap::new(),
            spread_cursor: 0,
            dead_actors: Retained::default(),
            removed_groups: Retained::default(),
            retention,
            persist,
            principals: Vec::new(),
            releasing: HashMap::new(),
        }
    }

    /// Records that something visible changed.
    pub fn bump(&mut self) {
        self.version += 1;
    }

    /// The full cluster view: every node (dead ones keep their reason) by
    /// index, every group not removed.
    pub fn view(&self) -> ClusterView {
        let mut nodes: Vec<NodeView> = self.nodes.values().map(NodeEntry::to_view).collect();
        nodes.sort_by_key(|n| n.node_index);
        ClusterView {
            version: self.version,
            nodes,
            placement_groups: self
                .groups
                .values()
                .filter(|g| g.state() != PlacementGroupState::PgRemoved)
                .map(|g| g.info.clone())
                .collect(),
            principals: self.principals.clone(),
        }
    }

    /// Schedulable nodes, by index.
    pub fn schedulable_nodes(&self) -> Vec<&NodeEntry> {
        let mut nodes: Vec<&NodeEntry> = self.nodes.values().filter(|n| n.schedulable()).collect();
        nodes.sort_by_key(|n| n.view.node_index);
        nodes
    }

    pub fn save_node(&self, node_id: &str) {
        if let Some(node) = self.nodes.get(node_id) {
            if let Ok((key, value)) = tables::encode(&node.record()) {
                self.persist.put(NodeInfo::TABLE, key, value);
            }
        }
    }

    pub fn save_actor(&self, actor_id: u64) {
        if let Some(actor) = self.actors.get(&actor_id) {
            if let Ok((key, value)) = tables::encode(&actor.record()) {
                self.persist.put(ActorRecord::TABLE, key, value);
            }
        }
    }

    pub fn save_group(&self, id: u64) {
        match self.groups.get(&id) {
            Some(g) if g.state() != PlacementGroupState::PgRemoved => {
                self.persist
                    .put(GROUP_TABLE, id_key(id), g.info.encode_to_vec());
            }
            _ => self.persist.delete(GROUP_TABLE, id_key(id)),
        }
    }

    /// Marks a live actor dead with `reason`, frees its name, and keeps it
    /// for lookups until it ages out of the retained history.
    pub fn kill_actor(&mut self, actor_id: u64, reason: &str) {
        let Some(actor) = self.actors.get_mut(&actor_id) else {
            return;
        };
        if !actor.live() {
            return;
        }
        actor.location.state = DEAD.into();
        actor.location.death_reason = reason.to_owned();
        if !actor.name.is_empty() && self.names.get(&actor.name) == Some(&actor_id) {
            self.names.remove(&actor.name);
        }
        let tenant = actor.location.tenant.clone().unwrap_or_default();
        self.save_actor(actor_id);
        self.dead_actors.push(&tenant, actor_id);
        for old in self.dead_actors.trim(self.retention.dead_actors) {
            if self.actors.get(&old).is_some_and(|a| !a.live()) {
                self.actors.remove(&old);
            }
        }
    }

    /// Sets a group's state (and wakes its waiters); a removed group ages
    /// out of memory after enough later removals.
    pub fn set_group_state(&mut self, id: u64, state: PlacementGroupState, error: String) {
        let Some(g) = self.groups.get_mut(&id) else {
            return;
        };
        g.info.state = state as i32;
        g.info.error = error;
        g.state_tx.send_replace(state as i32);
        let tenant = g.info.tenant.clone();
        self.save_group(id);
        if state == PlacementGroupState::PgRemoved {
            self.removed_groups.push(&tenant, id);
            for old in self.removed_groups.trim(self.retention.removed_groups) {
                self.groups.remove(&old);
            }
        }
        self.bump();
    }

    /// Node id → address of the nodes hosting `group`'s bundles.
    pub fn group_nodes(&self, group: u64) -> Vec<(String, String)> {
        let Some(g) = self.groups.get(&group) else {
            return Vec::new();
        };
        let mut ids: Vec<&String> = g.info.bundle_nodes.iter().collect();
        ids.sort();
        ids.dedup();
        ids.into_iter()
            .filter_map(|id| {
                self.nodes
                    .get(id)
                    .map(|n| (id.clone(), n.view.address.clone()))
            })
            .collect()
    }

    /// Gives a group's bundle resources back to its nodes' view.
    pub fn credit_bundles(&mut self, nodes: &[String], bundles: &[Resources]) {
        for (node_id, bundle) in nodes.iter().zip(bundles) {
            if let Some(node) = self.nodes.get_mut(node_id) {
                node.credit.add(bundle);
            }
        }
    }

    /// Takes a group's bundle resources from its nodes' view.
    pub fn debit_bundles(&mut self, nodes: &[String], bundles: &[Resources]) {
        for (node_id, bundle) in nodes.iter().zip(bundles) {
            if let Some(node) = self.nodes.get_mut(node_id) {
                node.debit.add(bundle);
            }
        }
    }
}
