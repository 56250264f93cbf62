//! The bit layout of ids (`IdLayout` in `reef.proto`, the one source every
//! language reads).
//!
//! An object id is `prefix << COUNTER_BITS | counter`; a prefix is
//! `node_index << SLOT_BITS | slot`. The node index, given by the control
//! plane when a node joins, names the id's *owner*: the node that tracks
//! where the object is. Slot 0 is the node's own (guest puts, nested tasks);
//! driver sessions take slots `1..SLOTS` in turn, so every session allocates
//! ids without asking anyone.
//!
//! An actor id is `creator_index << COUNTER_BITS | counter`: unique in the
//! cluster and naming the node that created the actor.
//!
//! Ids cross the wire as plain `u64`; these newtypes only name the fields.

use std::fmt;

use reef_proto::IdLayout;

/// Bits of the counter below the prefix (object ids) or the creator's
/// index (actor ids).
pub const COUNTER_BITS: u32 = IdLayout::CounterBits as u32;
/// Bits of the session slot in a prefix.
pub const SLOT_BITS: u32 = IdLayout::SlotBits as u32;
/// Where the prefix starts in an object id.
pub const ID_PREFIX_SHIFT: u32 = COUNTER_BITS;
/// Where the creator's node index starts in an actor id.
pub const ACTOR_INDEX_SHIFT: u32 = COUNTER_BITS;
/// Slots per node index (slot 0 included).
pub const SLOTS: u64 = 1 << SLOT_BITS;
/// The largest counter an id can hold.
pub const MAX_COUNTER: u64 = (1 << COUNTER_BITS) - 1;

// The node index keeps some bits above the slot and the counter.
const _: () = assert!(COUNTER_BITS + SLOT_BITS < 64);

/// An object id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(pub u64);

impl ObjectId {
    /// The `counter`-th id under `prefix`.
    pub const fn new(prefix: IdPrefix, counter: u64) -> Self {
        ObjectId((prefix.0 << ID_PREFIX_SHIFT) | (counter & MAX_COUNTER))
    }
    /// The prefix the id was allocated under.
    pub const fn prefix(self) -> IdPrefix {
        IdPrefix(self.0 >> ID_PREFIX_SHIFT)
    }
    /// The index of the node that owns the object.
    pub const fn owner_index(self) -> u32 {
        self.prefix().node_index()
    }
    pub const fn counter(self) -> u64 {
        self.0 & MAX_COUNTER
    }
}

/// The high bits every id of one allocator shares: a node index and a
/// session slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdPrefix(pub u64);

impl IdPrefix {
    /// The prefix of `slot` on the node with `node_index` (`slot` is taken
    /// modulo [`SLOTS`]).
    pub const fn new(node_index: u32, slot: u64) -> Self {
        IdPrefix(((node_index as u64) << SLOT_BITS) | (slot & (SLOTS - 1)))
    }
    /// The node's own prefix (slot 0).
    pub const fn node(node_index: u32) -> Self {
        Self::new(node_index, 0)
    }
    pub const fn node_index(self) -> u32 {
        (self.0 >> SLOT_BITS) as u32
    }
    pub const fn slot(self) -> u64 {
        self.0 & (SLOTS - 1)
    }
    /// The `counter`-th object id under this prefix.
    pub const fn object(self, counter: u64) -> ObjectId {
        ObjectId::new(self, counter)
    }
    /// Whether `id` was allocated under this prefix.
    pub const fn contains(self, id: ObjectId) -> bool {
        id.prefix().0 == self.0
    }
}

/// An actor id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActorId(pub u64);

impl ActorId {
    /// The `counter`-th actor created by the node with `creator_index`.
    pub const fn new(creator_index: u32, counter: u64) -> Self {
        ActorId(((creator_index as u64) << ACTOR_INDEX_SHIFT) | (counter & MAX_COUNTER))
    }
    /// The index of the node that created the actor.
    pub const fn creator_index(self) -> u32 {
        (self.0 >> ACTOR_INDEX_SHIFT) as u32
    }
    pub const fn counter(self) -> u64 {
        self.0 & MAX_COUNTER
    }
}

macro_rules! wire_u64 {
    ($($t:ident),*) => {$(
        impl From<u64> for $t {
            fn from(raw: u64) -> Self {
                $t(raw)
            }
        }
        impl From<$t> for u64 {
            fn from(id: $t) -> u64 {
                id.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }
    )*};
}
wire_u64!(ObjectId, IdPrefix, ActorId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_the_protos() {
        assert_eq!(COUNTER_BITS, 40);
        assert_eq!(SLOT_BITS, 14);
    }

    #[test]
    fn object_ids_round_trip() {
        for (index, slot, counter) in [
            (0, 0, 0),
            (1, 0, 1),
            (1, 1, 1),
            (3, SLOTS - 1, MAX_COUNTER),
            (1023, 77, 123_456_789),
        ] {
            let prefix = IdPrefix::new(index, slot);
            assert_eq!((prefix.node_index(), prefix.slot()), (index, slot));
            let id = prefix.object(counter);
            assert_eq!(id.prefix(), prefix);
            assert_eq!(id.owner_index(), index);
            assert_eq!(id.counter(), counter);
            assert!(prefix.contains(id));
            assert_eq!(ObjectId::from(u64::from(id)), id);
        }
    }

    #[test]
    fn the_wire_form_is_unchanged() {
        // `prefix << 40 | counter`, prefix `node_index << 14 | slot`.
        let id = IdPrefix::new(2, 5).object(9);
        assert_eq!(id.0, (((2u64 << 14) | 5) << 40) | 9);
        assert_eq!(IdPrefix::node(2).0, 2 << 14);
        assert_eq!(ActorId::new(3, 7).0, (3u64 << 40) | 7);
        assert_eq!(format!("{id}"), format!("{:#x}", id.0));
    }

    #[test]
    fn prefixes_keep_apart() {
        let a = IdPrefix::new(1, 1);
        let b = IdPrefix::new(1, 2);
        let other_node = IdPrefix::new(2, 1);
        assert!(!a.contains(b.object(1)));
        assert!(!a.contains(other_node.object(1)));
        assert_ne!(a.object(1), other_node.object(1));
        // A slot past the last wraps instead of spilling into the node index.
        assert_eq!(IdPrefix::new(1, SLOTS).node_index(), 1);
    }

    #[test]
    fn actor_ids_round_trip() {
        for (index, counter) in [(0, 1), (1, 1), (7, MAX_COUNTER), (u32::MAX >> 8, 42)] {
            let id = ActorId::new(index, counter);
            assert_eq!(id.creator_index(), index);
            assert_eq!(id.counter(), counter);
            assert_eq!(ActorId::from(u64::from(id)), id);
        }
    }
}
