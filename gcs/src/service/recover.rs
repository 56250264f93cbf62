//! Recovery: a control plane started on a store that a previous one wrote
//! (the same data directory, or the same Redis) takes its state over.
//!
//! Modules, jobs, KV and the id counters are read from storage as they are
//! needed. Nodes, actors and placement groups — hot state, kept in memory —
//! are loaded here:
//!
//! * every node the store says is alive comes back *reconnecting*: alive in
//!   the view, but its heartbeats are answered `unknown` until it registers
//!   again with its index and reports what it holds (`nodes.rs`). One that
//!   does not within the node timeout is declared dead like any silent
//!   node, and what it held dies with it;
//! * live actors on those nodes keep their ids, names and locations; a live
//!   actor whose node is not among them is marked dead;
//! * placement groups keep their state and bundles; a created group with a
//!   bundle on a node that is not among them goes back to pending.
//!
//! Named actors are stored before `PlaceActor` replies, placement groups
//! before any reply about them; other records written in the last flush
//! interval before a crash may be missing (see `persist.rs`).

use prost::Message;
use reef_proto::{PlacementGroupInfo, PlacementGroupState};
use tokio::sync::watch;

use super::nodes::Release;
use super::state::{ActorEntry, GroupEntry, NodeEntry, State, GROUP_TABLE};
use crate::error::GcsError;
use crate::storage::Storage;
use crate::tables::{ActorRecord, ActorTable, NodeInfo, NodeTable, Resources};

/// What a previous control plane left in the store.
pub(crate) struct Restored {
    nodes: Vec<NodeInfo>,
    actors: Vec<ActorRecord>,
    groups: Vec<PlacementGroupInfo>,
}

impl Restored {
    pub fn load(store: &std::sync::Arc<dyn Storage>) -> Result<Self, GcsError> {
        let nodes = NodeTable::new(store.clone())
            .all()?
            .into_iter()
            // Records from before indexes were kept cannot be reconnected.
            .filter(|n| n.is_alive() && n.node_index != 0)
            .collect();
        let actors = ActorTable::new(store.clone())
            .all()?
            .into_iter()
            .filter(ActorRecord::is_live)
            .collect();
        let mut groups = Vec::new();
        for (key, value) in store.scan(GROUP_TABLE)? {
            let info = PlacementGroupInfo::decode(value.as_slice()).map_err(|e| {
                GcsError::storage(format!(
                    "placement group record {}: {e}",
                    String::from_utf8_lossy(&key)
                ))
            })?;
            groups.push(info);
        }
        Ok(Self {
            nodes,
            actors,
            groups,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.actors.is_empty() && self.groups.is_empty()
    }
}

impl State {
    /// Takes over what [`Restored::load`] found; returns the
    /// `ReleaseBundles` calls owed for groups that lost a node.
    pub(crate) fn restore(&mut self, restored: Restored) -> Vec<Release> {
        let Restored {
            nodes,
            actors,
            groups,
        } = restored;
        tracing::info!(
            nodes = nodes.len(),
            actors = actors.len(),
            groups = groups.len(),
            "control plane: taking over the previous run's state"
        );
        for node in nodes {
            let view = reef_proto::NodeView {
                node_id: node.node_id.clone(),
                node_index: node.node_index,
                address: node.address.clone(),
                state: reef_proto::NodeState::Alive as i32,
                last_heartbeat_ms: node.last_heartbeat_ms,
                head: false,
                ..Default::default()
            };
            self.nodes.insert(
                node.node_id.clone(),
                NodeEntry {
                    view,
                    total: node.resources_total.clone(),
                    reported: node.resources_available.clone(),
                    credit: Resources::new(),
                    debit: Resources::new(),
                    last_seen: std::time::Instant::now(),
                    start_time_ms: node.start_time_ms,
                    reconnecting: true,
                },
            );
        }

        let mut orphans = Vec::new();
        for record in actors {
            let node = record.node_id.as_deref().and_then(|n| self.nodes.get(n));
            let address = node.map(|n| n.view.address.clone()).unwrap_or_default();
            let entry = ActorEntry::restored(&record, &address);
            if node.is_none() {
                orphans.push(record.actor_id);
            } else if !entry.name.is_empty() {
                self.names.insert(entry.name.clone(), record.actor_id);
            }
            self.actors.insert(record.actor_id, entry);
        }
        for id in orphans {
            self.kill_actor(id, "its node was gone when the control plane restarted");
        }

        let mut lost = Vec::new();
        for info in groups {
            let bundles: Vec<Resources> = info.bundles.iter().map(Resources::from_map).collect();
            let actors: Vec<u64> = self
                .actors
                .values()
                .filter(|a| a.live() && a.group == Some(info.id))
                .map(|a| a.location.actor_id)
                .collect();
            let created = info.state == PlacementGroupState::PgCreated as i32;
            if let Some(gone) = info
                .bundle_nodes
                .iter()
                .find(|n| created && !self.nodes.contains_key(*n))
            {
                lost.push((info.id, gone.clone()));
            }
            let (state_tx, _) = watch::channel(info.state);
            self.groups.insert(
                info.id,
                GroupEntry {
                    pinned: info.node_ids.clone(),
                    bundles,
                    attempting: false,
                    actors,
                    state_tx,
                    info,
                },
            );
        }
        let mut releases = Vec::new();
        for (id, node) in lost {
            releases.extend(self.lose_group(
                id,
                &node,
                "was gone when the control plane restarted",
            ));
        }
        self.bump();
        releases
    }
}
