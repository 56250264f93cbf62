//! The per-node object store: a shared-memory arena plus the object table.

mod arena;
mod objects;

pub use arena::{remove_stale_arenas, round_up_page, Arena, Block, PAGE};
pub use objects::{Data, Located, ObjectId, ObjectStore, Resolved, StoreStats};
