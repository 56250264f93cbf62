//! The per-node object store: a shared-memory arena plus the object table.

mod arena;
mod hugemap;
mod objects;
mod segment;

pub use arena::{round_up_page, Arena, Block, HUGE_OBJECT, PAGE};
pub use hugemap::HUGE_PAGE;
pub use objects::{Data, Held, Located, ObjectId, ObjectRow, ObjectStore, Resolved, StoreStats};
pub use segment::Segment;
