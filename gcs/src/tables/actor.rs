//! Actors and the name index used for named-actor lookup.

use serde::{Deserialize, Serialize};

use super::{id_key, Record, Table};

/// Lifecycle of an actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActorState {
    /// Registered, not yet placed/constructed.
    Pending,
    Alive,
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
}

impl ActorRecord {
    /// A pending, unnamed, unplaced actor.
    pub fn new(
        actor_id: u64,
        module_hash: impl Into<String>,
        class: impl Into<String>,
        job_id: u64,
    ) -> Self {
        Self {
            actor_id,
            name: None,
            module_hash: module_hash.into(),
            class: class.into(),
            node_id: None,
            state: ActorState::Pending,
            job_id,
        }
    }

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

/// Name index entry: which actor last claimed a name.
///
/// The index may point at a dead or renamed actor; readers must check the
/// actor record itself (the [`crate::Gcs`] does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorName {
    pub name: String,
    pub actor_id: u64,
}

impl Record for ActorName {
    const TABLE: &'static str = "actor_names";
    const WHAT: &'static str = "actor name";
    type Key = str;

    fn encode_key(key: &str) -> Vec<u8> {
        key.as_bytes().to_vec()
    }

    fn storage_key(&self) -> Vec<u8> {
        Self::encode_key(&self.name)
    }
}

/// Actor name -> actor id index.
pub type ActorNameTable = Table<ActorName>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::on_both_stores;

    #[test]
    fn roundtrip() {
        on_both_stores(|store| {
            let table = ActorTable::new(store.clone());
            let mut a = ActorRecord::new(300, "ab12", "Counter", 1);
            let b = ActorRecord {
                name: Some("b".into()),
                node_id: Some("n1".into()),
                state: ActorState::Alive,
                ..ActorRecord::new(2, "ab12", "Counter", 1)
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
            assert_eq!(table.all().unwrap(), vec![b.clone(), a]);

            let names = ActorNameTable::new(store);
            let entry = ActorName {
                name: "b".into(),
                actor_id: 2,
            };
            names.put(&entry).unwrap();
            assert_eq!(names.get("b").unwrap(), Some(entry));
        });
    }
}
