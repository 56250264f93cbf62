//! Actors, as the service last persisted them.

use serde::{Deserialize, Serialize};

use super::{id_key, Record, Table};

/// Lifecycle of an actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActorState {
    /// Registered, not yet placed/constructed.
    Pending,
    Alive,
    /// Its node died (or its instance trapped) and it restarts.
    Restarting {
        reason: String,
    },
    Dead {
        reason: String,
    },
}

/// What the control plane records about an actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorRecord {
    pub actor_id: u64,
    /// Set for named actors; unique among live actors.
    pub name: Option<String>,
    /// Hash of the module exporting the class.
    pub module_hash: String,
    pub class: String,
    /// Node hosting the actor, once placed.
    pub node_id: Option<String>,
    pub state: ActorState,
    /// Job that created the actor.
    pub job_id: u64,
    /// Restarts allowed (-1: without limit) and made so far.
    #[serde(default)]
    pub max_restarts: i32,
    #[serde(default)]
    pub num_restarts: u32,
    /// Retries of a call in flight when the actor failed (-1: without limit).
    #[serde(default)]
    pub max_task_retries: i32,
    /// Outlives its creator (driver session and node).
    #[serde(default)]
    pub detached: bool,
    /// The placement group whose bundle holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_group: Option<u64>,
    /// Whose actor it is (a tenant's wire name; unset in older records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

impl ActorRecord {
    /// Not dead (pending or alive); only live actors hold their name.
    pub fn is_live(&self) -> bool {
        !matches!(self.state, ActorState::Dead { .. })
    }
}

impl Record for ActorRecord {
    const TABLE: &'static str = "actors";
    const WHAT: &'static str = "actor";
    type Key = u64;

    fn encode_key(key: &u64) -> Vec<u8> {
        id_key(*key)
    }

    fn storage_key(&self) -> Vec<u8> {
        id_key(self.actor_id)
    }
}

/// Actors keyed by actor id.
pub type ActorTable = Table<ActorRecord>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::file_store;

    #[test]
    fn roundtrip() {
        let (_dir, store) = file_store();
        let table = ActorTable::new(store);
        let record = |actor_id, state| ActorRecord {
            actor_id,
            name: None,
            module_hash: "ab12".into(),
            class: "Counter".into(),
            node_id: None,
            state,
            job_id: 1,
            max_restarts: 0,
            num_restarts: 0,
            max_task_retries: 0,
            detached: false,
            placement_group: None,
            tenant: Some("b".into()),
        };
        let mut a = record(300, ActorState::Pending);
        let b = ActorRecord {
            name: Some("b".into()),
            node_id: Some("n1".into()),
            ..record(2, ActorState::Alive)
        };
        table.put(&a).unwrap();
        table.put(&b).unwrap();
        assert_eq!(table.require(&300).unwrap(), a);

        a.state = ActorState::Dead {
            reason: "oom".into(),
        };
        table.put(&a).unwrap();
        assert!(!table.require(&300).unwrap().is_live());
        // Big-endian ids: numeric order, not lexicographic.
        assert_eq!(table.all().unwrap(), vec![b, a]);
    }
}
