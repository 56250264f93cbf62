//! Cluster membership: one [`NodeInfo`] per node that ever registered.

use serde::{Deserialize, Serialize};

use super::{Record, Table};
use crate::clock::now_millis;

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
    /// A freshly started, alive node with everything available.
    pub fn new(node_id: impl Into<String>, address: impl Into<String>, total: Resources) -> Self {
        let now = now_millis();
        Self {
            node_id: node_id.into(),
            address: address.into(),
            resources_available: total.clone(),
            resources_total: total,
            state: NodeState::Alive,
            last_heartbeat_ms: now,
            start_time_ms: now,
        }
    }

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
    use crate::test_util::on_both_stores;

    #[test]
    fn roundtrip() {
        on_both_stores(|store| {
            let table = NodeTable::new(store);
            let mut node = NodeInfo::new(
                "n1",
                "10.0.0.1:7000",
                Resources::from([("CPU".into(), 8.0), ("memory".into(), 1e9)]),
            );
            assert_eq!(table.get("n1").unwrap(), None);
            table.put(&node).unwrap();
            assert_eq!(table.get("n1").unwrap(), Some(node.clone()));

            node.state = NodeState::Dead;
            node.resources_available.set("CPU", 2.5);
            table.put(&node).unwrap();
            table
                .put(&NodeInfo::new("n0", "a:1", Resources::new()))
                .unwrap();
            let all = table.all().unwrap();
            assert_eq!(all.len(), 2);
            assert_eq!(all[0].node_id, "n0");
            assert_eq!(all[1], node);

            assert!(table.delete("n1").unwrap());
            assert!(!table.delete("n1").unwrap());
            assert!(table.require("n1").is_err());
        });
    }
}
