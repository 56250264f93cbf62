//! The bit layout of object and actor ids, as the host uses them (plain
//! `u64`s; the layout itself is `reef_core::ids`).
//!
//! ```text
//! object id:  | node index (10) | slot (14) | counter (40) |
//!              `--- prefix (24): who allocated it ---'
//! actor id:   | creator node index (24)     | counter (40) |
//! ```
//!
//! The node index, given by the control plane when the node joins, names an
//! object id's *owner*: the node that tracks where the object is. Slot 0 is
//! the node's own (guest puts, nested tasks); driver sessions take slots 1..
//! in turn, each allocating ids in its own range without asking the node.

use reef_core::{ActorId, IdPrefix};

use crate::store::ObjectId;

pub use reef_core::ids::{ID_PREFIX_SHIFT, SLOTS, SLOT_BITS};

/// The index of the node that owns an object id.
pub fn owner_index(id: ObjectId) -> u32 {
    reef_core::ObjectId(id).owner_index()
}

/// The prefix of the ids a node (slot 0) or a session (slot 1..) allocates.
pub fn prefix(node_index: u32, slot: u64) -> u64 {
    IdPrefix::new(node_index, slot).0
}

/// The prefix an object id was allocated under.
pub fn prefix_of(id: ObjectId) -> u64 {
    reef_core::ObjectId(id).prefix().0
}

/// The `counter`-th object id under `prefix`.
pub fn object_id(prefix: u64, counter: u64) -> ObjectId {
    IdPrefix(prefix).object(counter).0
}

/// The `counter`-th actor id created by node `index`.
pub fn actor_id(index: u32, counter: u64) -> u64 {
    ActorId::new(index, counter).0
}

/// The index of the node that created an actor.
pub fn creator_index(actor: u64) -> u32 {
    ActorId(actor).creator_index()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_round_trips() {
        let p = prefix(3, 17);
        let id = object_id(p, 42);
        assert_eq!(owner_index(id), 3);
        assert_eq!(prefix_of(id), p);
        assert_eq!(id & ((1 << ID_PREFIX_SHIFT) - 1), 42);
        assert_eq!(creator_index(actor_id(5, 9)), 5);
    }
}
