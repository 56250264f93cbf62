//! Cluster membership: one [`NodeInfo`] per node that ever registered.

use serde::{Deserialize, Serialize};

use super::{Record, Table};

/// Resource amounts (`"CPU"`, `"memory"`, custom); stored as a name → amount map.
pub use reef_core::Resources;

/// Liveness of a node as far as the control plane knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeState {
    Alive,
    /// Missed its heartbeats or was shut down; never comes back under the
    /// same id.
    Dead,
}

/// What the control plane records about a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub node_id: String,
    /// The node's index (0 in records written before it was kept).
    #[serde(default)]
    pub node_index: u32,
    /// Where the node's services listen (`host:port`).
    pub address: String,
    pub resources_total: Resources,
    pub resources_available: Resources,
    pub state: NodeState,
    /// Unix millis of the last heartbeat (registration counts as one).
    pub last_heartbeat_ms: u64,
    /// Unix millis of registration.
    pub start_time_ms: u64,
}

impl NodeInfo {
    pub fn is_alive(&self) -> bool {
        self.state == NodeState::Alive
    }
}

impl Record for NodeInfo {
    const TABLE: &'static str = "nodes";
    const WHAT: &'static str = "node";
    type Key = str;

    fn encode_key(key: &str) -> Vec<u8> {
        key.as_bytes().to_vec()
    }

    fn storage_key(&self) -> Vec<u8> {
        Self::encode_key(&self.node_id)
    }
}

/// Nodes keyed by node id.
pub type NodeTable = Table<NodeInfo>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::file_store;

    #[test]
    fn roundtrip() {
        let (_dir, store) = file_store();
        let table = NodeTable::new(store);
        let node = |id: &str, state| NodeInfo {
            node_id: id.into(),
            node_index: 3,
            address: "10.0.0.1:7000".into(),
            resources_total: Resources::from([("CPU".into(), 8.0), ("memory".into(), 1e9)]),
            resources_available: Resources::from([("CPU".into(), 2.5)]),
            state,
            last_heartbeat_ms: 10,
            start_time_ms: 5,
        };
        assert_eq!(table.get("n1").unwrap(), None);
        table.put(&node("n1", NodeState::Alive)).unwrap();
        assert!(table.require("n1").unwrap().is_alive());
        table.put(&node("n1", NodeState::Dead)).unwrap();
        table.put(&node("n0", NodeState::Alive)).unwrap();
        let all = table.all().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].node_id, "n0");
        assert_eq!(all[1], node("n1", NodeState::Dead));
        assert!(table.require("n2").is_err());
    }
}
