//! The bit layout of object and actor ids.
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

use crate::store::ObjectId;

/// Bits of an id below its prefix (object ids) or creator index (actor ids).
pub const ID_PREFIX_SHIFT: u32 = 40;
/// Bits of a prefix that name the session slot.
pub const SLOT_BITS: u32 = 14;
/// Session slots per node (slot 0 is the node's own).
pub const SLOTS: u64 = 1 << SLOT_BITS;

/// The index of the node that owns an object id.
pub fn owner_index(id: ObjectId) -> u32 {
    ((id >> ID_PREFIX_SHIFT) >> SLOT_BITS) as u32
}

/// The prefix of the ids a node (slot 0) or a session (slot 1..) allocates.
pub fn prefix(node_index: u32, slot: u64) -> u64 {
    (u64::from(node_index) << SLOT_BITS) | slot
}

/// The prefix an object id was allocated under.
pub fn prefix_of(id: ObjectId) -> u64 {
    id >> ID_PREFIX_SHIFT
}

/// The `counter`-th object id under `prefix`.
pub fn object_id(prefix: u64, counter: u64) -> ObjectId {
    (prefix << ID_PREFIX_SHIFT) | counter
}

/// The `counter`-th actor id created by node `index`.
pub fn actor_id(index: u32, counter: u64) -> u64 {
    (u64::from(index) << ID_PREFIX_SHIFT) | counter
}

/// The index of the node that created an actor.
pub fn creator_index(actor: u64) -> u32 {
    (actor >> ID_PREFIX_SHIFT) as u32
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
